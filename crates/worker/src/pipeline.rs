//! The shard pipeline: a reader task, the worker's per-batch [`Transform`]
//! on the Rayon pool, and the writer, overlapped so that reading the next
//! batches, transforming the [`IN_FLIGHT`] batches before them and writing
//! the oldest happen at once. Memory is bounded by a few batches and two
//! row groups (the next object's first one is fetched ahead), whatever the
//! shard size. How output files are cut is the worker's choice ([`Cut`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_catalog::CommittedFile;
use fleet_contract::Reject;
use fleet_contract::{Compression, InputFormat, Partition, Table};
use fleet_store::{BatchStream, InputObject, Location, ParquetSink, WriteOptions, open_batches};
use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::info;

use crate::job::{Outcome, Progress, RejectsWritten};
use crate::{Job, JobError, layout};

/// What a transform made of one batch.
#[derive(Debug)]
pub struct Transformed {
    /// The output rows, in the plan's schema.
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
    /// Rows with at least one reject: in `batch` all the same, except the
    /// `rows_dropped` of them.
    pub rows_rejected: u64,
    /// Rows of the input batch that are not in `batch` (ndjson-converter's
    /// quarantined lines); each is a rejected row, and rows in counts them.
    pub rows_dropped: u64,
    /// Bytes of input processed, for MB/s (feature-parser: the JSON cells).
    pub bytes: u64,
}

/// What a worker does to each batch.
pub trait Transform: Send + Sync + 'static {
    /// The transform prepared for one input object.
    type Bound: Send + Sync + 'static;

    /// Prepares for `object`, whose batches have `schema` (called with its
    /// first batch). An object that does not fit is bad input
    /// ([`crate::Exit::BadInput`]).
    fn bind(&self, object: &InputObject, schema: &SchemaRef) -> Result<Self::Bound, JobError>;

    /// Transforms one batch; runs off the async runtime and may use `pool`.
    fn apply(
        &self,
        bound: &Self::Bound,
        batch: &RecordBatch,
        pool: &rayon::ThreadPool,
    ) -> Result<Transformed, JobError>;
}

/// How a worker's input objects are read.
pub trait Source: Send + Sync + 'static {
    /// Opens one object as a stream of batches.
    fn open(&self, object: InputObject) -> BoxFuture<'static, Result<BatchStream, JobError>>;
}

/// The usual source: Parquet or NDJSON by `fleet_store::open_batches`.
#[derive(Debug, Clone)]
pub struct ReadBatches {
    pub format: InputFormat,
    pub batch_rows: usize,
    /// The columns read (Parquet reads only these).
    pub columns: Vec<String>,
    /// String columns read as binary, their UTF-8 left to the transform.
    pub unchecked: Vec<String>,
    /// The schema NDJSON is decoded with.
    pub ndjson_schema: SchemaRef,
}

impl Source for ReadBatches {
    fn open(&self, object: InputObject) -> BoxFuture<'static, Result<BatchStream, JobError>> {
        let r = self.clone();
        Box::pin(async move {
            let columns: Vec<&str> = r.columns.iter().map(String::as_str).collect();
            let unchecked: Vec<&str> = r.unchecked.iter().map(String::as_str).collect();
            let format = match r.format {
                InputFormat::Auto => fleet_store::InputFormat::from_name(object.name()),
                InputFormat::Parquet => fleet_store::InputFormat::Parquet,
                InputFormat::Ndjson => fleet_store::InputFormat::Ndjson,
            };
            Ok(open_batches(&object, format, &columns, &unchecked, r.ndjson_schema, r.batch_rows).await?)
        })
    }
}

/// How output files are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// One data file per input object, named after it
    /// ([`layout::data_key`]): feature-parser, batch-predictor.
    PerObject,
    /// Files of about `target_bytes`, numbered ([`layout::numbered_key`]),
    /// in the table's partition: ndjson-converter.
    Rolling { target_bytes: u64 },
    /// Files in the partition of their input object (its `key=value`
    /// folders below the input prefix), rolled at `target_bytes`: compactor.
    PerPartition { target_bytes: u64 },
}

/// Everything the standard shard run needs from a worker.
#[derive(Debug)]
pub struct Plan<S, T> {
    pub input: String,
    pub source: S,
    pub transform: T,
    /// The schema of the transform's output.
    pub schema: SchemaRef,
    pub table: Table,
    pub cut: Cut,
    /// Columns written without dictionary encoding (row ids).
    pub unique_columns: Vec<String>,
    pub rejects: Option<RejectsPlan>,
}

/// A worker that rejects rows: its rejects file's id column and threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectsPlan {
    pub id_column: String,
    pub max_ratio: f64,
}

impl<S: Source, T: Transform> Plan<S, T> {
    /// One data file per input object, no rejects, no unique columns.
    pub fn new(input: impl Into<String>, source: S, transform: T, schema: SchemaRef, table: Table) -> Self {
        Self {
            input: input.into(),
            source,
            transform,
            schema,
            table,
            cut: Cut::PerObject,
            unique_columns: vec![],
            rejects: None,
        }
    }
    /// Default [`Cut::PerObject`].
    pub fn with_cut(self, cut: Cut) -> Self {
        Self { cut, ..self }
    }
    /// Default none.
    pub fn with_unique_columns(self, unique_columns: Vec<String>) -> Self {
        Self { unique_columns, ..self }
    }
    /// Default none: the worker rejects nothing.
    pub fn with_rejects(self, rejects: RejectsPlan) -> Self {
        Self { rejects: Some(rejects), ..self }
    }

    /// The partitions a shard over `objects` commits, in order.
    pub(crate) fn partitions(&self, objects: &[InputObject]) -> Vec<Partition> {
        match self.cut {
            Cut::PerObject | Cut::Rolling { .. } => vec![self.table.partition.clone()],
            Cut::PerPartition { .. } => {
                let mut p: Vec<Partition> = objects.iter().map(|o| self.object_partition(o)).collect();
                p.sort();
                p.dedup();
                p
            }
        }
    }

    /// The partition `object`'s rows go to.
    fn object_partition(&self, object: &InputObject) -> Partition {
        match self.cut {
            Cut::PerPartition { .. } => {
                let base = Location::parse(&self.input).map(|l| l.path().as_ref().to_string()).unwrap_or_default();
                let path = object.path.as_ref();
                Partition::of_path(path.strip_prefix(base.as_str()).unwrap_or(path))
                    .unwrap_or_else(|| self.table.partition.clone())
            }
            _ => self.table.partition.clone(),
        }
    }

    fn write_options(&self) -> WriteOptions {
        write_options(&self.table).with_unique_columns(self.unique_columns.clone())
    }
}

/// How the data files of `table` are written: its compression and row
/// group size.
pub fn write_options(table: &fleet_contract::Table) -> WriteOptions {
    use fleet_store::Compression as C;
    let compression = match table.compression {
        Compression::None => C::UNCOMPRESSED,
        Compression::Snappy => C::SNAPPY,
        Compression::Lz4 => C::LZ4_RAW,
        Compression::Gzip => C::GZIP(fleet_store::GzipLevel::default()),
        Compression::Zstd(l) => C::ZSTD(fleet_store::ZstdLevel::try_new(l).unwrap_or_default()),
    };
    WriteOptions::default()
        .with_compression(compression)
        .with_row_group_bytes(usize::try_from(table.row_group_bytes).unwrap_or(usize::MAX))
}

fn rejects_schema(id: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(id, DataType::Utf8, false),
        Field::new("column", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("prefix", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
    ]))
}

fn rejects_batch(schema: &SchemaRef, rejects: &[Reject], source: &str, row_base: u64) -> Result<RecordBatch, JobError> {
    let s =
        |f: &dyn Fn(&Reject) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(rejects.iter().map(f))) };
    Ok(RecordBatch::try_new(
        schema.clone(),
        vec![
            s(&|r| r.id.as_str()),
            s(&|r| r.column.as_str()),
            s(&|r| r.message.as_str()),
            s(&|r| r.prefix.as_str()),
            Arc::new(StringArray::from_iter_values(rejects.iter().map(|_| source))),
            Arc::new(Int64Array::from_iter_values(rejects.iter().map(|r| row_base as i64 + r.row as i64))),
        ],
    )?)
}

/// Batches being transformed at once, besides the one being written: enough
/// that the Rayon pool always has the next batch while the oldest is
/// written, few enough to bound memory.
const IN_FLIGHT: usize = 3;

/// Decoded batches waiting for the transform. The reader shares the cores
/// with the transform, and falls behind for a moment now and then (a new
/// row group to fetch, the scheduler); with two waiting, the pool ran dry
/// and a core idled several times a second (docs/PERFORMANCE.md).
const DECODED_AHEAD: usize = 6;

/// A data file being completed: its partition, key, source and upload.
type Closing = (Partition, String, String, tokio::task::JoinHandle<fleet_store::Result<fleet_store::SinkStats>>);

/// Waits for a data file's sink to complete.
async fn finish((partition, key, source, close): Closing) -> Result<(Partition, CommittedFile), JobError> {
    let stats = close.await.map_err(|e| JobError::Internal(e.to_string()))??;
    info!(source = %source, file = %stats.uri, rows = stats.rows, bytes = stats.bytes, "Wrote a data file.");
    Ok((partition, CommittedFile { key, source, rows: stats.rows, bytes: stats.bytes, crc32c: stats.crc32c }))
}

/// What the reader sends: a batch of object `i`, or `None` at its end.
type Read = (usize, Option<Result<RecordBatch, JobError>>);

pub(crate) async fn run<S: Source, T: Transform>(
    job: &Job,
    plan: Plan<S, T>,
    objects: &[InputObject],
    partitions: Vec<Partition>,
    progress: &Progress,
) -> Result<Outcome, JobError> {
    let c = job.common();
    let output = job.output();
    let opts = plan.write_options();
    let places: Vec<Partition> = objects.iter().map(|o| plan.object_partition(o)).collect();
    let mut rejects = None;
    let mut written = None;
    if let Some(r) = &plan.rejects {
        let key = layout::rejects_key(&plan.table.partition, c.shard);
        let schema = rejects_schema(&r.id_column);
        rejects = Some((schema.clone(), ParquetSink::create(output, output.join(&key)?, schema, &opts)?));
        written = Some(RejectsWritten { key, max_ratio: r.max_ratio });
    }
    let out = Outcome {
        input: plan.input.clone(),
        objects: objects.len() as u64,
        partitions,
        rejects: written,
        ..Outcome::default()
    };
    let Plan { input, source, transform, schema, cut, .. } = plan;
    let source = Arc::new(source);
    // One reader for all the shard's objects, in order, so that the next
    // object is opened and decoded while the last batches of this one are
    // still being transformed. `None` ends an object.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(DECODED_AHEAD);
    let mut reader = {
        let objects = objects.to_vec();
        // Opens an object and decodes its first batch, in a task of its own.
        let open = move |obj: InputObject| {
            let opening = source.open(obj);
            Ahead(tokio::spawn(async move {
                let mut stream = opening.await?;
                let first = stream.next().await.map(|b| b.map_err(JobError::from));
                Ok::<_, JobError>((stream, first))
            }))
        };
        tokio::spawn(async move {
            // The next object is opened, its first row group fetched and its
            // first batch decoded while this one is read: alone, that left
            // the pool idle at every object's start.
            let mut ahead = objects.first().cloned().map(&open);
            for i in 0..objects.len() {
                let Some(mut this) = ahead.take() else { return };
                ahead = objects.get(i + 1).cloned().map(&open);
                let (mut stream, mut next) = match (&mut this.0).await {
                    Ok(Ok(opened)) => opened,
                    Ok(Err(e)) => {
                        let _ = tx.send((i, Some(Err(e)))).await;
                        return;
                    }
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => return,
                };
                while let Some(b) = next {
                    let failed = b.is_err();
                    if tx.send((i, Some(b))).await.is_err() || failed {
                        return;
                    }
                    next = stream.next().await.map(|b| b.map_err(JobError::from));
                }
                if tx.send((i, None)).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut w = Writer {
        job,
        objects,
        places: &places,
        input: &input,
        schema: &schema,
        opts: &opts,
        cut,
        rejects,
        out,
        open: None,
        closing: None,
        numbered: BTreeMap::new(),
        progress,
    };
    let transform = Arc::new(transform);
    // Batches in input order, each object's end after its last batch: the
    // last batches of an object are transformed while the next object's
    // first ones already are, so the pipeline does not drain between objects.
    let mut queue: VecDeque<Entry> = VecDeque::new();
    let done = async {
        let mut bound: Option<(usize, Arc<T::Bound>)> = None;
        let (mut rows_in_obj, mut ended) = (0u64, 0usize);
        loop {
            let Some((j, got)) = rx.recv().await else {
                if ended == objects.len() {
                    break;
                }
                // the reader sends the error that stops it, so an early end is a panic
                let why = match (&mut reader).await {
                    Err(e) => e.to_string(),
                    Ok(()) => "without an error".into(),
                };
                w.complete_before(&mut queue, ended).await?;
                return Err(JobError::Internal(format!(
                    "the reader stopped before the end of {}: {why}",
                    objects[ended].uri()
                )));
            };
            match got {
                Some(batch) => {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            w.complete_before(&mut queue, j).await?;
                            return Err(e);
                        }
                    };
                    if bound.as_ref().is_none_or(|(obj, _)| *obj != j) {
                        match transform.bind(&objects[j], &batch.schema()) {
                            Ok(b) => bound = Some((j, Arc::new(b))),
                            Err(e) => {
                                w.complete_before(&mut queue, j).await?;
                                return Err(e);
                            }
                        }
                        rows_in_obj = 0;
                    }
                    let b = bound.as_ref().expect("bound above").1.clone();
                    let (t, pool) = (transform.clone(), job.pool().clone());
                    let base = rows_in_obj;
                    rows_in_obj += batch.num_rows() as u64;
                    let handle = tokio::task::spawn_blocking(move || t.apply(&b, &batch, &pool));
                    queue.push_back(Entry::Batch { obj: j, base, handle });
                }
                None => {
                    queue.push_back(Entry::End { obj: j });
                    ended += 1;
                }
            }
            // Up to IN_FLIGHT batches are transformed while the oldest is written.
            while queue.iter().filter(|e| matches!(e, Entry::Batch { .. })).count() > IN_FLIGHT {
                let e = queue.pop_front().expect("not empty");
                w.take(e).await?;
            }
        }
        while let Some(e) = queue.pop_front() {
            w.take(e).await?;
        }
        w.close_open().await
    }
    .await;
    // the earlier objects are completed even when a later one fails
    let Writer { mut out, closing, rejects, .. } = w;
    if let Some(last) = closing {
        let file = finish(last).await;
        if done.is_ok() {
            let (p, f) = file?;
            out.files.entry(p).or_default().push(f);
        }
    }
    done?;
    reader.await.map_err(|e| JobError::Internal(e.to_string()))?;
    if let Some((_, sink)) = rejects {
        sink.close().await?;
    }
    Ok(out)
}

/// An object being opened ahead of its turn; dropped (the reader stopping
/// early), its task stops too.
struct Ahead<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A transformed batch of input object `obj` (rows from `base`), or the end of `obj`.
enum Entry {
    Batch { obj: usize, base: u64, handle: tokio::task::JoinHandle<Result<Transformed, JobError>> },
    End { obj: usize },
}

impl Entry {
    fn obj(&self) -> usize {
        match self {
            Entry::Batch { obj, .. } | Entry::End { obj } => *obj,
        }
    }
}

/// The data file being written.
struct OpenFile {
    obj: usize,
    partition: Partition,
    key: String,
    source: String,
    sink: ParquetSink,
}

/// The writing end of the pipeline: takes the queue's entries in order,
/// writes each batch into the data file its cut gives it and completes a
/// file when it is full or its object ended (while the next batches are
/// transformed).
struct Writer<'a> {
    job: &'a Job,
    objects: &'a [InputObject],
    /// The partition of each object's rows.
    places: &'a [Partition],
    input: &'a str,
    schema: &'a SchemaRef,
    opts: &'a WriteOptions,
    cut: Cut,
    rejects: Option<(SchemaRef, ParquetSink)>,
    out: Outcome,
    open: Option<OpenFile>,
    /// The last data file, being completed.
    closing: Option<Closing>,
    /// Files numbered so far, by partition.
    numbered: BTreeMap<Partition, u32>,
    progress: &'a Progress,
}

impl Writer<'_> {
    async fn take(&mut self, e: Entry) -> Result<(), JobError> {
        match e {
            Entry::Batch { obj, base, handle } => {
                self.file_for(obj).await?;
                let t = handle.await.map_err(|e| JobError::Internal(e.to_string()))??;
                let file = self.open.as_mut().expect("opened above");
                file.sink.write(&t.batch).await?;
                let full = match self.cut {
                    Cut::PerObject => false,
                    Cut::Rolling { target_bytes } | Cut::PerPartition { target_bytes } => {
                        file.sink.bytes_written() >= target_bytes
                    }
                };
                let out = &mut self.out;
                if !t.rejects.is_empty() {
                    for r in &t.rejects {
                        *out.rejected_cells_by_column.entry(r.column.clone()).or_default() += 1;
                    }
                    out.rejected_cells += t.rejects.len() as u64;
                    if let Some((schema, sink)) = &mut self.rejects {
                        let uri = self.objects[obj].uri();
                        sink.write(&rejects_batch(schema, &t.rejects, &uri, base)?).await?;
                    }
                }
                let rows = t.batch.num_rows() as u64 + t.rows_dropped;
                out.rows_rejected += t.rows_rejected;
                out.bytes_processed += t.bytes;
                out.rows_in += rows;
                self.progress.add(rows, t.bytes);
                if full {
                    self.close_open().await?;
                }
            }
            Entry::End { obj } => {
                if self.cut == Cut::PerObject {
                    // The last row group is encoded and the file completed
                    // while the next object's batches are transformed.
                    self.file_for(obj).await?;
                    self.close_open().await?;
                }
                self.out.bytes_read += self.objects[obj].size;
            }
        }
        Ok(())
    }

    /// Makes the open data file the one object `obj`'s rows go to.
    async fn file_for(&mut self, obj: usize) -> Result<(), JobError> {
        let partition = &self.places[obj];
        let keep = self.open.as_ref().is_some_and(|f| match self.cut {
            Cut::PerObject => f.obj == obj,
            Cut::Rolling { .. } => true,
            Cut::PerPartition { .. } => f.partition == *partition,
        });
        if keep {
            return Ok(());
        }
        self.close_open().await?;
        let partition = partition.clone();
        let (key, source) = match self.cut {
            Cut::PerObject => {
                let uri = self.objects[obj].uri();
                (layout::data_key(&partition, &uri), uri)
            }
            Cut::Rolling { .. } | Cut::PerPartition { .. } => {
                let seq = self.numbered.entry(partition.clone()).or_default();
                *seq += 1;
                (layout::numbered_key(&partition, self.job.common().shard, *seq - 1), self.input.to_string())
            }
        };
        let output = self.job.output();
        let sink = ParquetSink::create(output, output.join(&key)?, self.schema.clone(), self.opts)?;
        self.open = Some(OpenFile { obj, partition, key, source, sink });
        Ok(())
    }

    /// Starts completing the open data file, and waits for the one before it.
    async fn close_open(&mut self) -> Result<(), JobError> {
        let Some(f) = self.open.take() else { return Ok(()) };
        let closing = (f.partition, f.key, f.source, tokio::spawn(f.sink.close()));
        if let Some(previous) = self.closing.replace(closing) {
            let (p, file) = finish(previous).await?;
            self.out.files.entry(p).or_default().push(file);
        }
        Ok(())
    }

    /// Writes and completes the objects before `obj` (when `obj` fails).
    async fn complete_before(&mut self, queue: &mut VecDeque<Entry>, obj: usize) -> Result<(), JobError> {
        while queue.front().is_some_and(|e| e.obj() < obj) {
            let e = queue.pop_front().expect("not empty");
            self.take(e).await?;
        }
        Ok(())
    }
}
