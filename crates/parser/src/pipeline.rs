//! The shard pipeline: a reader task, parallel evaluation on the Rayon pool,
//! and the writer, overlapped so that reading the next batches, evaluating
//! the [`IN_FLIGHT`] batches before them and writing the oldest happen at
//! once. Memory is bounded by a few batches and two row groups (the next
//! object's first one is fetched ahead), whatever the shard size.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_contract::InputFormat as CfgFormat;
use fleet_spec::{Evaluator, Reject, Workspace};
use fleet_store::{InputFormat, InputObject, ParquetSink, list_inputs, open_batches};
use futures::StreamExt;
use rayon::prelude::*;
use tracing::{info, warn};

use crate::summary::{CommitMarker, CommittedFile, RunSummary, fargate_cost, peak_rss_bytes};
use crate::{FeatureParser, ParserError, catalog, layout};

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// The features of one batch.
#[derive(Debug)]
pub struct Evaluated {
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
    pub rows_rejected: u64,
    pub json_bytes: u64,
}

/// Evaluates `batch` on `pool`, in row chunks, each thread reusing its own
/// parse buffers.
pub fn evaluate_parallel(
    ev: &Evaluator,
    batch: &RecordBatch,
    pool: &rayon::ThreadPool,
    schema: SchemaRef,
) -> Result<Evaluated, ParserError> {
    let n = batch.num_rows();
    let mut out =
        Evaluated { batch: RecordBatch::new_empty(schema.clone()), rejects: vec![], rows_rejected: 0, json_bytes: 0 };
    if n == 0 {
        return Ok(out);
    }
    let threads = pool.current_num_threads().max(1);
    // several chunks per thread for balance; heavy batches are few rows
    let chunk = n.div_ceil(threads * 4).clamp(8, 8192);
    let ranges: Vec<Range<usize>> = (0..n).step_by(chunk).map(|s| s..(s + chunk).min(n)).collect();
    let parts: Vec<fleet_spec::Evaluated> = pool.install(|| {
        ranges.into_par_iter().map(|r| WORKSPACE.with(|ws| ev.evaluate(batch, r, &mut ws.borrow_mut()))).collect()
    });
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for c in 0..schema.fields().len() {
        let arrays: Vec<&dyn arrow_array::Array> = parts.iter().map(|p| p.columns[c].as_ref()).collect();
        columns.push(if arrays.len() == 1 {
            parts[0].columns[c].clone()
        } else {
            arrow_select::concat::concat(&arrays)?
        });
    }
    for p in parts {
        out.rows_rejected += p.rows_rejected as u64;
        out.json_bytes += p.json_bytes;
        out.rejects.extend(p.rejects);
    }
    out.batch = RecordBatch::try_new(schema, columns)?;
    Ok(out)
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

fn rejects_batch(
    schema: &SchemaRef,
    rejects: &[Reject],
    source: &str,
    row_base: u64,
) -> Result<RecordBatch, ParserError> {
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

#[derive(Default)]
struct Progress {
    rows: AtomicU64,
    json_bytes: AtomicU64,
}

struct Totals {
    rows: u64,
    rows_rejected: u64,
    cells_rejected: u64,
    by_column: BTreeMap<String, u64>,
    json_bytes: u64,
    bytes_read: u64,
    files: Vec<CommittedFile>,
}

pub(crate) async fn run(fp: &FeatureParser) -> Result<RunSummary, ParserError> {
    let cfg = &fp.config;
    let started = Instant::now();
    // Before any work: a missing bucket, denied access or an unreachable endpoint, told apart.
    fleet_store::Location::parse(&cfg.input)?.check().await?;
    fp.output.check().await?;
    let all = list_inputs(&cfg.input).await?;
    let total_objects = all.len();
    let mine: Vec<InputObject> =
        all.into_iter().enumerate().filter(|(i, _)| cfg.shard.owns(*i)).map(|(_, o)| o).collect();
    info!(shard = %cfg.shard.name(), objects = mine.len(), of = total_objects, input = %cfg.input, output = %cfg.output, partition = %cfg.partition.path(), threads = cfg.threads, evaluator = if fp.spec.is_native() { "native" } else { "interpreted" }, "Shard assigned.");

    // A retry starts by withdrawing this shard's marker: until the new one is
    // written, the shard is not complete.
    let commit_key = layout::commit_key(&cfg.partition, cfg.shard);
    fp.output.delete(&fp.output.join(&commit_key)?).await?;

    let progress = Arc::new(Progress::default());
    let reporter = {
        let p = progress.clone();
        let every = std::time::Duration::from_secs(cfg.progress_seconds);
        tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let rows = p.rows.load(Ordering::Relaxed);
                let mb = p.json_bytes.load(Ordering::Relaxed) as f64 / 1e6;
                info!(
                    rows,
                    json_mb = format!("{mb:.1}"),
                    rows_per_second = format!("{:.0}", rows as f64 / secs),
                    "Progress."
                );
            }
        })
    };
    let result = process(fp, &mine, &progress).await;
    reporter.abort();
    let totals = result?;

    let schema = fp.spec.output_schema();
    let table_input = catalog::table_input(
        &cfg.glue.database,
        &cfg.glue.table,
        &fp.output.uri(),
        &schema,
        cfg.partition.keys(),
        fp.compression_name(),
    );
    fp.output.put_bytes(&layout::table_input_key(&cfg.run_id), pretty(&table_input)).await?;

    let wall = started.elapsed().as_secs_f64();
    let ratio = if totals.rows == 0 { 0.0 } else { totals.rows_rejected as f64 / totals.rows as f64 };
    let over = ratio > cfg.max_reject_ratio;
    let summary = RunSummary {
        status: if over { "failed: reject threshold exceeded".into() } else { "committed".into() },
        run_id: cfg.run_id.clone(),
        shard_index: cfg.shard.index,
        shard_count: cfg.shard.count,
        input: cfg.input.clone(),
        output: fp.output.uri(),
        partition: cfg.partition.path(),
        objects: mine.len() as u64,
        rows_in: totals.rows,
        rows_out: totals.files.iter().map(|f| f.rows).sum(),
        rows_rejected: totals.rows_rejected,
        rejected_cells: totals.cells_rejected,
        rejected_cells_by_column: totals.by_column.clone(),
        reject_ratio: ratio,
        max_reject_ratio: cfg.max_reject_ratio,
        bytes_read: totals.bytes_read,
        json_bytes: totals.json_bytes,
        bytes_written: totals.files.iter().map(|f| f.bytes).sum(),
        wall_seconds: wall,
        rows_per_second: totals.rows as f64 / wall.max(1e-9),
        json_mb_per_second: totals.json_bytes as f64 / 1e6 / wall.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
        threads: cfg.threads,
        fargate_vcpu: cfg.task_vcpu,
        fargate_memory_gib: cfg.task_memory_gib,
        fargate_cost_usd: fargate_cost(cfg.task_vcpu, cfg.task_memory_gib, wall),
        files: totals.files.clone(),
    };
    let summary_key = layout::summary_key(&cfg.run_id, cfg.shard);
    fp.output.put_bytes(&summary_key, pretty(&summary)).await?;

    if over {
        warn!(rows_rejected = totals.rows_rejected, rows = totals.rows, ratio, max = cfg.max_reject_ratio, summary = %fp.output.child(&summary_key)?.uri(), "Too many rejected rows; the shard is not committed.");
        return Err(ParserError::RejectThreshold {
            rows_rejected: totals.rows_rejected,
            rows: totals.rows,
            ratio,
            max: cfg.max_reject_ratio,
        });
    }
    let marker = CommitMarker {
        run_id: cfg.run_id.clone(),
        shard_index: cfg.shard.index,
        shard_count: cfg.shard.count,
        partition: cfg.partition.path(),
        rows: summary.rows_out,
        files: totals.files,
        rejects_key: layout::rejects_key(&cfg.partition, cfg.shard),
        rejected_cells: totals.cells_rejected,
    };
    fp.output.put_bytes(&commit_key, pretty(&marker)).await?;
    info!(
        rows_in = summary.rows_in,
        rows_out = summary.rows_out,
        rows_rejected = summary.rows_rejected,
        rejected_cells = summary.rejected_cells,
        files = marker.files.len(),
        json_mb = format!("{:.1}", summary.json_bytes as f64 / 1e6),
        wall_seconds = format!("{:.2}", summary.wall_seconds),
        rows_per_second = format!("{:.0}", summary.rows_per_second),
        json_mb_per_second = format!("{:.1}", summary.json_mb_per_second),
        peak_rss_mib = summary.peak_rss_bytes >> 20,
        fargate_cost_usd = format!("{:.6}", summary.fargate_cost_usd),
        summary = %fp.output.child(&summary_key)?.uri(),
        "Run summary."
    );
    Ok(summary)
}

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("summaries serialize");
    b.push(b'\n');
    b
}

/// Batches being evaluated at once, besides the one being written: enough
/// that the Rayon pool always has the next batch while the oldest is
/// written, few enough to bound memory.
const IN_FLIGHT: usize = 3;

/// Decoded batches waiting for evaluation. The reader shares the two cores
/// with the evaluation, and falls behind for a moment now and then (a new
/// row group to fetch, the scheduler); with two waiting, the pool ran dry
/// and a core idled several times a second (docs/PERFORMANCE.md, session 6).
const DECODED_AHEAD: usize = 6;

type Closing = (String, String, tokio::task::JoinHandle<fleet_store::Result<fleet_store::SinkStats>>);

/// Waits for a data file's sink to complete.
async fn finish((key, source, close): Closing) -> Result<CommittedFile, ParserError> {
    let stats = close.await.map_err(|e| ParserError::Pool(e.to_string()))??;
    info!(source = %source, file = %stats.uri, rows = stats.rows, bytes = stats.bytes, "Wrote a data file.");
    Ok(CommittedFile { key, source, rows: stats.rows, bytes: stats.bytes, crc32c: stats.crc32c })
}

async fn process(fp: &FeatureParser, mine: &[InputObject], progress: &Progress) -> Result<Totals, ParserError> {
    let cfg = &fp.config;
    let schema = fp.spec.output_schema();
    let opts = fp.write_options();
    let rschema = rejects_schema(fp.spec.id_column().unwrap_or("id"));
    let rejects_key = layout::rejects_key(&cfg.partition, cfg.shard);
    let rejects_sink = ParquetSink::create(&fp.output, fp.output.join(&rejects_key)?, rschema.clone(), &opts)?;
    let columns = fp.spec.input_columns();
    let ndjson_schema = fp.ndjson_schema();
    let t = Totals {
        rows: 0,
        rows_rejected: 0,
        cells_rejected: 0,
        by_column: BTreeMap::new(),
        json_bytes: 0,
        bytes_read: 0,
        files: vec![],
    };
    // One reader for all the shard's objects, in order, so that the next
    // object is opened and decoded while the last batches of this one are
    // still being evaluated. `None` ends an object.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Option<fleet_store::Result<RecordBatch>>)>(DECODED_AHEAD);
    let mut reader = {
        let objects = mine.to_vec();
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        // JSON cells are checked for UTF-8 by the evaluator, as it parses them
        let json: Vec<String> =
            fp.spec.json_columns().iter().filter(|c| fp.spec.input_type(c).is_none()).map(|c| c.to_string()).collect();
        let (input_format, batch_rows) = (cfg.input_format, cfg.batch_rows);
        // Opens an object and decodes its first batch, in a task of its own.
        let open = move |obj: InputObject| {
            let (columns, json) = (columns.clone(), json.clone());
            let schema = ndjson_schema.clone();
            Ahead(tokio::spawn(async move {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let json: Vec<&str> = json.iter().map(String::as_str).collect();
                let format = match input_format {
                    CfgFormat::Auto => InputFormat::from_name(obj.name()),
                    CfgFormat::Parquet => InputFormat::Parquet,
                    CfgFormat::Ndjson => InputFormat::Ndjson,
                };
                let mut stream = open_batches(&obj, format, &columns, &json, schema, batch_rows).await?;
                let first = stream.next().await;
                Ok::<_, fleet_store::StoreError>((stream, first))
            }))
        };
        tokio::spawn(async move {
            // The next object is opened, its first row group fetched and its
            // first batch decoded while this one is read: alone, that left
            // the pool idle at every object's start (session 8).
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
                    next = stream.next().await;
                }
                if tx.send((i, None)).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut w = Writer {
        fp,
        mine,
        schema: &schema,
        opts: &opts,
        rschema: &rschema,
        rejects_sink,
        t,
        sink: None,
        closing: None,
        progress,
    };
    // Batches in input order, each object's end after its last batch: the
    // last batches of an object are evaluated while the next object's first
    // ones already are, so the pipeline does not drain between objects.
    let mut queue: VecDeque<Entry> = VecDeque::new();
    let objects = async {
        let mut evaluator: Option<(usize, Evaluator)> = None;
        let (mut rows_in_obj, mut ended) = (0u64, 0usize);
        loop {
            let Some((j, got)) = rx.recv().await else {
                if ended == mine.len() {
                    break;
                }
                // the reader sends the error that stops it, so an early end is a panic
                let why = match (&mut reader).await {
                    Err(e) => e.to_string(),
                    Ok(()) => "without an error".into(),
                };
                w.complete_before(&mut queue, ended).await?;
                return Err(ParserError::Pool(format!(
                    "the reader stopped before the end of {}: {why}",
                    mine[ended].uri()
                )));
            };
            match got {
                Some(batch) => {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            w.complete_before(&mut queue, j).await?;
                            return Err(e.into());
                        }
                    };
                    if evaluator.as_ref().is_none_or(|(obj, _)| *obj != j) {
                        match fp.spec.bind(&batch.schema(), fp.reference_date()) {
                            Ok(ev) => evaluator = Some((j, ev)),
                            Err(source) => {
                                w.complete_before(&mut queue, j).await?;
                                return Err(ParserError::Schema { uri: mine[j].uri(), source });
                            }
                        }
                        rows_in_obj = 0;
                    }
                    let ev = evaluator.as_ref().expect("bound above").1.clone();
                    let (pool, schema) = (fp.pool.clone(), schema.clone());
                    let base = rows_in_obj;
                    rows_in_obj += batch.num_rows() as u64;
                    let handle = tokio::task::spawn_blocking(move || evaluate_parallel(&ev, &batch, &pool, schema));
                    queue.push_back(Entry::Batch { obj: j, base, handle });
                }
                None => {
                    queue.push_back(Entry::End { obj: j });
                    ended += 1;
                }
            }
            // Up to IN_FLIGHT batches are evaluated while the oldest is written.
            while queue.iter().filter(|e| matches!(e, Entry::Batch { .. })).count() > IN_FLIGHT {
                let e = queue.pop_front().expect("not empty");
                w.take(e).await?;
            }
        }
        while let Some(e) = queue.pop_front() {
            w.take(e).await?;
        }
        Ok::<(), ParserError>(())
    }
    .await;
    // the earlier objects are completed even when a later one fails
    let Writer { mut t, closing, rejects_sink, .. } = w;
    if let Some(last) = closing {
        let file = finish(last).await;
        if objects.is_ok() {
            t.files.push(file?);
        }
    }
    objects?;
    reader.await.map_err(|e| ParserError::Pool(e.to_string()))?;
    rejects_sink.close().await?;
    Ok(t)
}

/// An object being opened ahead of its turn; dropped (the reader stopping
/// early), its task stops too.
struct Ahead<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An evaluated batch of input object `obj` (rows from `base`), or the end of `obj`.
enum Entry {
    Batch { obj: usize, base: u64, handle: tokio::task::JoinHandle<Result<Evaluated, ParserError>> },
    End { obj: usize },
}

impl Entry {
    fn obj(&self) -> usize {
        match self {
            Entry::Batch { obj, .. } | Entry::End { obj } => *obj,
        }
    }
}

/// The writing end of the pipeline: takes the queue's entries in order,
/// writes each batch into its object's data file and completes the file at
/// the object's end (while the next object is evaluated).
struct Writer<'a> {
    fp: &'a FeatureParser,
    mine: &'a [InputObject],
    schema: &'a SchemaRef,
    opts: &'a fleet_store::WriteOptions,
    rschema: &'a SchemaRef,
    rejects_sink: ParquetSink,
    t: Totals,
    /// The object being written, its data file's key and sink.
    sink: Option<(usize, String, ParquetSink)>,
    /// The last object's data file, being completed.
    closing: Option<Closing>,
    progress: &'a Progress,
}

impl Writer<'_> {
    async fn take(&mut self, e: Entry) -> Result<(), ParserError> {
        if self.sink.as_ref().is_none_or(|(obj, _, _)| *obj != e.obj()) {
            let key = layout::data_key(&self.fp.config.partition, &self.mine[e.obj()].uri());
            let sink =
                ParquetSink::create(&self.fp.output, self.fp.output.join(&key)?, self.schema.clone(), self.opts)?;
            self.sink = Some((e.obj(), key, sink));
        }
        match e {
            Entry::Batch { obj, base, handle } => {
                let e = handle.await.map_err(|e| ParserError::Pool(e.to_string()))??;
                let (_, _, sink) = self.sink.as_mut().expect("opened above");
                sink.write(&e.batch).await?;
                let t = &mut self.t;
                if !e.rejects.is_empty() {
                    for r in &e.rejects {
                        *t.by_column.entry(r.column.clone()).or_default() += 1;
                    }
                    t.cells_rejected += e.rejects.len() as u64;
                    let uri = self.mine[obj].uri();
                    self.rejects_sink.write(&rejects_batch(self.rschema, &e.rejects, &uri, base)?).await?;
                }
                t.rows_rejected += e.rows_rejected;
                t.json_bytes += e.json_bytes;
                t.rows += e.batch.num_rows() as u64;
                self.progress.rows.fetch_add(e.batch.num_rows() as u64, Ordering::Relaxed);
                self.progress.json_bytes.fetch_add(e.json_bytes, Ordering::Relaxed);
            }
            Entry::End { obj } => {
                // The last row group is encoded and the file completed while
                // the next object's batches are evaluated.
                let (_, key, sink) = self.sink.take().expect("opened above");
                let uri = self.mine[obj].uri();
                if let Some(previous) = self.closing.replace((key, uri, tokio::spawn(sink.close()))) {
                    self.t.files.push(finish(previous).await?);
                }
                self.t.bytes_read += self.mine[obj].size;
            }
        }
        Ok(())
    }

    /// Writes and completes the objects before `obj` (when `obj` fails).
    async fn complete_before(&mut self, queue: &mut VecDeque<Entry>, obj: usize) -> Result<(), ParserError> {
        while queue.front().is_some_and(|e| e.obj() < obj) {
            let e = queue.pop_front().expect("not empty");
            self.take(e).await?;
        }
        Ok(())
    }
}
