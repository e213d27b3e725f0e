//! A compaction run on a [`Job`]: the table listed and planned
//! ([`crate::plan`]), each unit this shard owns rewritten bin by bin into
//! the output, its files near the target copied as they are, the rows
//! written checked against the rows the footers declare, the output files
//! this run did not write removed, then the commit markers (through
//! [`Job::finish`]), and the table registered when Glue is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringViewArray, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_catalog::{CommittedFile, SchemaUnion};
use fleet_contract::{Partition, Table};
use fleet_store::{InputFormat, InputObject, Location, ParquetSink, open_batches, parquet_footer, read_type};
use fleet_worker::{Exit, Job, JobError, Outcome};
use futures::TryStreamExt;
use serde::Serialize;
use tracing::info;

use crate::plan::{Mode, PartitionMode, SourceFile, UnitPlan, plan_units, source_file};

/// What a compaction takes besides the job.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The table location (a prefix).
    pub input: String,
    pub mode: Mode,
    pub partition_mode: PartitionMode,
    /// About the size of an output file, in bytes (of the input files packed).
    pub target_bytes: u64,
    /// Files of at least this size are left as they are.
    pub near_bytes: u64,
    pub batch_rows: usize,
    pub table: Table,
}

/// The run's own figures, in the run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    pub units: u64,
    pub files_in: u64,
    pub files_rewritten: u64,
    pub files_kept: u64,
    pub files_out: u64,
    pub stale_files_removed: u64,
}

/// The error of a table that cannot be compacted as it is (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadTable(String);

fn bad(e: impl std::fmt::Display) -> JobError {
    JobError::worker(Exit::BadInput, BadTable(e.to_string()))
}

/// Runs the compaction of this shard's units.
pub async fn compact(job: &Job, s: &Settings) -> Result<Metrics, JobError> {
    let input = Location::parse(&s.input)?;
    input.check().await?;
    job.output().check().await?;
    let base = input.path().as_ref().len();
    let mut files = Vec::new();
    for meta in input.list().await? {
        let rel = meta.location.as_ref()[base..].trim_start_matches('/');
        if let Some(f) = source_file(rel, meta.size).map_err(bad)? {
            files.push(f);
        }
    }
    let near = if s.partition_mode == PartitionMode::Day && files.iter().any(|f| f.hour.is_some()) {
        // a day of hours: every file gets its hour as a column, so none is copied as it is
        u64::MAX
    } else {
        s.near_bytes
    };
    let plans = plan_units(files, s.partition_mode, s.mode, s.target_bytes, near);
    let shard = job.common().shard;
    let mine: Vec<UnitPlan> = plans.into_iter().enumerate().filter(|(i, _)| shard.owns(*i)).map(|(_, p)| p).collect();
    info!(
        units = mine.len(),
        files = mine.iter().map(|u| u.unit.files.len()).sum::<usize>(),
        input = %s.input,
        output = %job.common().output,
        "Compaction planned."
    );
    let mut metrics = Metrics { units: mine.len() as u64, ..Metrics::default() };
    let mut outcome = Outcome { input: s.input.clone(), ..Outcome::default() };
    let mut table_schema: Option<SchemaRef> = None;
    for plan in &mine {
        job.withdraw(&plan.unit.partition).await?;
    }
    // every bin and kept file of the shard as a task, FLEET_THREADS at once
    // (decoding and encoding run on the task that polls them)
    let permits = Arc::new(tokio::sync::Semaphore::new(job.common().threads.max(1)));
    let mut tasks = Vec::new();
    for plan in &mine {
        let mut unit_tasks = Vec::new();
        let partition = &plan.unit.partition;
        for (b, bin) in plan.bins.iter().enumerate() {
            let (out, s, input, partition, files, permits) =
                (job.output().clone(), s.clone(), input.clone(), partition.clone(), bin.files.clone(), permits.clone());
            unit_tasks.push(tokio::spawn(async move {
                let _p = permits.acquire_owned().await.expect("semaphore open");
                let (file, schema, rows) = rewrite(&out, &s, &input, &partition, b, &files).await?;
                Ok::<_, JobError>((file, Some(schema), rows))
            }));
        }
        for f in &plan.kept {
            let (out, input, partition, f, permits) =
                (job.output().clone(), input.clone(), partition.clone(), f.clone(), permits.clone());
            unit_tasks.push(tokio::spawn(async move {
                let _p = permits.acquire_owned().await.expect("semaphore open");
                let (file, rows) = copy(&out, &input, &partition, &f).await?;
                Ok::<_, JobError>((file, None, rows))
            }));
        }
        tasks.push(unit_tasks);
    }
    for (plan, unit_tasks) in mine.iter().zip(tasks) {
        let partition = &plan.unit.partition;
        let mut rows_in = 0u64;
        let mut written = Vec::new();
        for t in unit_tasks {
            let (file, schema, rows) = t.await.map_err(|e| JobError::Internal(format!("a compaction task: {e}")))??;
            rows_in += rows;
            if let Some(schema) = schema {
                table_schema.get_or_insert(schema);
            }
            written.push(file);
        }
        let rows_out: u64 = written.iter().map(|f| f.rows).sum();
        if rows_out != rows_in {
            return Err(JobError::Internal(format!(
                "partition {}: the footers of its {} files declare {rows_in} rows, but {rows_out} were written; nothing is committed",
                partition.path(),
                plan.unit.files.len()
            )));
        }
        info!(partition = %partition.path(), files_in = plan.unit.files.len(), files_out = written.len(), rows = rows_out, "Partition compacted.");
        metrics.files_in += plan.unit.files.len() as u64;
        metrics.files_rewritten += plan.bins.iter().map(|b| b.files.len() as u64).sum::<u64>();
        metrics.files_kept += plan.kept.len() as u64;
        metrics.files_out += written.len() as u64;
        outcome.objects += plan.unit.files.len() as u64;
        outcome.rows_in += rows_in;
        outcome.bytes_read += plan.unit.files.iter().map(|f| f.bytes).sum::<u64>();
        outcome.partitions.push(partition.clone());
        outcome.files.insert(partition.clone(), written);
    }
    outcome.bytes_processed = outcome.bytes_read;
    if let Some(schema) = &table_schema {
        let keys: Vec<&str> = mine.first().map(|p| p.unit.partition.keys().collect()).unwrap_or_default();
        let glue = &s.table.glue;
        let ti = fleet_catalog::table_input(
            &glue.database,
            &glue.table,
            &job.output().uri(),
            schema,
            keys,
            s.table.compression.name(),
        );
        job.put_json(&fleet_worker::layout::table_input_key(&job.common().run_id), &ti).await?;
    }
    // the partitions are withdrawn: what an earlier run left under other names goes before the commit
    metrics.stale_files_removed = remove_stale(job, &outcome.files).await?;
    let partitions = outcome.partitions.clone();
    job.finish(outcome, metrics.clone()).await?;
    if s.table.glue.register {
        job.register(&s.table.glue, &partitions).await?;
    }
    Ok(metrics)
}

/// The object of a source file.
fn object(input: &Location, f: &SourceFile) -> Result<InputObject, JobError> {
    Ok(InputObject { location: input.clone(), path: input.join(&f.key)?, size: f.bytes, e_tag: None })
}

/// Rewrites one bin into `<partition>/part-<bin>-<crc of its sources>.parquet`:
/// the union of the files' columns (a column missing from a file is null
/// there), plus `hour` when a day's hours are compacted together. Returns
/// the file, its schema and the rows the sources' footers declare.
async fn rewrite(
    out: &Location,
    s: &Settings,
    input: &Location,
    partition: &Partition,
    index: usize,
    files: &[SourceFile],
) -> Result<(CommittedFile, SchemaRef, u64), JobError> {
    let mut union = SchemaUnion::default();
    let mut footers = Vec::new();
    for f in files {
        let obj = object(input, f)?;
        let (schema, rows) = parquet_footer(&obj).await?;
        union.add(&obj.uri(), &schema).map_err(bad)?;
        footers.push((obj, schema, rows));
    }
    let hour_column = s.partition_mode == PartitionMode::Day && files.iter().any(|f| f.hour.is_some());
    // the columns as the reader gives them (strings as views)
    let mut fields: Vec<Field> = union
        .into_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(read_type(f.data_type())))
        .collect();
    if hour_column && !fields.iter().any(|f| f.name() == "hour") {
        fields.push(Field::new("hour", DataType::Utf8View, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let crc = files.iter().fold(0u32, |c, f| crc32c::crc32c_append(crc32c::crc32c_append(c, f.key.as_bytes()), b"\n"));
    let key = format!("{}/part-{index:05}-{crc:08x}.parquet", partition.path());
    let mut sink = ParquetSink::create(out, out.join(&key)?, schema.clone(), &fleet_worker::write_options(&s.table))?;
    let mut declared = 0u64;
    for ((obj, file_schema, rows), f) in footers.iter().zip(files) {
        declared += rows;
        let hour = if hour_column { f.hour.map(|h| format!("{h:02}")) } else { None };
        let columns: Vec<&str> = file_schema.fields().iter().map(|c| c.name().as_str()).collect();
        let mut stream =
            open_batches(obj, InputFormat::Parquet, &columns, &[], file_schema.clone(), s.batch_rows).await?;
        while let Some(batch) = stream.try_next().await? {
            let batch = conform(&batch, &schema, hour.as_deref()).map_err(|e| bad(format!("{}: {e}", obj.uri())))?;
            sink.write(&batch).await?;
        }
    }
    let stats = sink.close().await?;
    info!(file = %stats.uri, sources = files.len(), rows = stats.rows, bytes = stats.bytes, "Wrote a compacted file.");
    let source = format!("{}/{}/ ({} files)", input.uri(), partition.path(), files.len());
    Ok((CommittedFile { key, source, rows: stats.rows, bytes: stats.bytes, crc32c: stats.crc32c }, schema, declared))
}

/// `batch` with the columns of `schema`, in its order: a column the batch
/// lacks is null, `hour` (when given) is the file's hour.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    hour: Option<&str>,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            // the same Glue type (SchemaUnion checked), another Arrow type: not cast
            // (arrow's cast kernels would add megabytes to the image for a case not seen)
            Some(c) => Err(arrow_schema::ArrowError::SchemaError(format!(
                "column `{}` is {} here but {} in another file of the partition",
                f.name(),
                c.data_type(),
                f.data_type()
            ))),
            None if f.name() == "hour"
                && let Some(h) = hour =>
            {
                Ok(Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(h, n))) as ArrayRef)
            }
            None => Ok(new_null_array(f.data_type(), n)),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Copies a file already near the target into the output partition under
/// its own name, streamed (memory stays at a part's size, whatever the
/// file's) and checksummed. Returns it and the rows its footer declares.
async fn copy(
    out: &Location,
    input: &Location,
    partition: &Partition,
    f: &SourceFile,
) -> Result<(CommittedFile, u64), JobError> {
    use object_store::ObjectStoreExt;
    use tokio::io::AsyncWriteExt;
    let obj = object(input, f)?;
    let (_, rows) = parquet_footer(&obj).await?;
    let name = f.key.rsplit('/').next().unwrap_or(&f.key);
    let key = format!("{}/{name}", partition.path());
    let target = out.join(&key)?;
    let store_err =
        |op: &'static str, uri: String| move |e| fleet_store::StoreError::ObjectStore { op, uri, source: e };
    let mut body = input.store().get(&obj.path).await.map_err(store_err("get", obj.uri()))?.into_stream();
    let mut w = object_store::buffered::BufWriter::with_capacity(out.store().clone(), target.clone(), 8 << 20);
    let (mut crc, mut size) = (0u32, 0u64);
    let copied: Result<(), JobError> = async {
        while let Some(chunk) = body.try_next().await.map_err(store_err("read", obj.uri()))? {
            crc = crc32c::crc32c_append(crc, &chunk);
            size += chunk.len() as u64;
            w.put(chunk).await.map_err(store_err("put", out.uri_of(&target)))?;
        }
        w.shutdown()
            .await
            .map_err(|e| JobError::Internal(format!("copying {} to {}: {e}", obj.uri(), out.uri_of(&target))))
    }
    .await;
    if let Err(e) = copied {
        // no half-written object and no upload left behind
        let _ = w.abort().await;
        return Err(e);
    }
    info!(source = %obj.uri(), key = %key, rows, "Kept a file near the target size.");
    Ok((CommittedFile { key, source: obj.uri(), rows, bytes: size, crc32c: format!("{crc:08x}") }, rows))
}

/// Removes the data files of the compacted partitions that this run did
/// not write (a previous run's, with other bins). Returns how many.
async fn remove_stale(job: &Job, committed: &BTreeMap<Partition, Vec<CommittedFile>>) -> Result<u64, JobError> {
    let mut removed = 0;
    for (partition, files) in committed {
        let loc = job.output().child(&partition.path())?;
        let base = job.output().path().as_ref().len();
        for meta in loc.list().await? {
            let rel = meta.location.as_ref()[base..].trim_start_matches('/');
            let data =
                rel.ends_with(".parquet") && !rel.split('/').any(|seg| seg.starts_with('_') || seg.starts_with('.'));
            if data && !files.iter().any(|f| f.key == rel) {
                loc.delete(&meta.location).await?;
                info!(key = %rel, "Removed a file of an earlier compaction.");
                removed += 1;
            }
        }
    }
    Ok(removed)
}
