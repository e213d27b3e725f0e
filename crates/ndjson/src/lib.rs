//! ndjson-converter: NDJSON files (plain, gzip or zstd) to Parquet files of
//! about a target size, with the schema given or inferred over every line,
//! bad lines quarantined with file, line number and reason, and the same
//! commit protocol, run summary and Glue registration as every worker.
//!
//! - [`shape`]: inference (a shape per member path, merged in input order,
//!   widened as documented there), the columns and their Hive types, schema
//!   files (Glue's `Columns` list).
//! - [`scan`]: a line as events, by a strict scan of its bytes, or from
//!   simd-json's tape for the lines the scan is not sure of.
//! - [`build`]: a line's events checked against the columns, then appended
//!   into Arrow builders (structs, lists, decimals, JSON text).
//! - [`literal`]: numbers' literal text in simd-json's lines, so no number
//!   is rounded on its way to a string or a decimal.
//!
//! A shard runs in up to two passes over its input: the inference pass
//! (skipped when `FLEET_SCHEMA` is given) reads every line of the whole
//! input, so every shard of a fan-out infers the same schema; the
//! conversion pass reads its own objects. Both stream: memory is a few
//! batches of lines (4 MiB each) per thread and the largest line.

pub mod build;
pub mod config;
pub mod literal;
pub mod scan;
pub mod shape;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::SchemaRef;
use fleet_contract::{Cli, ConfigError, Reject, Table};
use fleet_spec::{CellParser, Parsed};
use fleet_store::{InputObject, Location, list_inputs, open_lines, trim_line};
use fleet_worker::{Cut, Exit, Job, JobError, Plan, RejectsPlan, Source, Transform, Transformed, Worker};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::ser::SerializeStruct;
use simd_json::Tape;
use tracing::info;

pub use config::{Args, Config, SchemaSource, Settings, vars};
pub use shape::{Column, Kind, PROCESSING_TIMESTAMP, SOURCE_FILE, Shape};

use crate::build::Rows;
use crate::scan::Event;

/// The worker.
#[derive(Debug)]
pub struct NdjsonConverter;

/// ndjson-converter's own errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NdjsonError {
    #[error("FLEET_SCHEMA from {origin}: {reason}")]
    Schema { origin: String, reason: String },
    #[error(
        "no line of the input {input} is a JSON object with a member, so there are no columns to write; give FLEET_SCHEMA"
    )]
    NoColumns { input: String },
}

impl From<NdjsonError> for JobError {
    fn from(e: NdjsonError) -> Self {
        let exit = match e {
            NdjsonError::Schema { .. } => Exit::Config,
            NdjsonError::NoColumns { .. } => Exit::BadInput,
        };
        JobError::worker(exit, e)
    }
}

/// The name of the quarantine file's id column: the line's byte offset in
/// the decompressed file (its `row` column is the 1-based line number).
pub const QUARANTINE_ID: &str = "byte_offset";

impl Worker for NdjsonConverter {
    const NAME: &'static str = "ndjson-converter";
    const ABOUT: &'static str = "convert NDJSON files (plain, gzip or zstd) to Parquet files of about a target size, the schema given or inferred over every line, bad lines quarantined with file, line and reason";
    const EXITS: &'static [Exit] = &Exit::ALL;
    type Args = Args;
    type Config = Config;

    fn configure(cli: Cli<Args>) -> Result<Config, ConfigError> {
        Config::validate(cli)
    }

    fn table(config: &Config) -> Option<&Table> {
        Some(&config.settings.table)
    }

    async fn run(config: Config) -> Result<(), JobError> {
        let job = Job::new(Self::NAME, config.common)?;
        convert(&job, &config.settings).await?;
        Ok(())
    }
}

/// What the run summary adds for ndjson-converter.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `inferred`, `inline` or the schema file's URI.
    pub schema: String,
    /// Where the columns written were saved (a `FLEET_SCHEMA` for later runs).
    pub schema_file: String,
    pub all_strings: bool,
    /// Empty or blank lines, skipped: lines in = rows in + blank lines, and
    /// rows in = rows out + rows rejected (quarantined).
    pub blank_lines: Arc<AtomicU64>,
    pub processing_timestamp_us: i64,
}

impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Metrics", 5)?;
        m.serialize_field("schema", &self.schema)?;
        m.serialize_field("schema_file", &self.schema_file)?;
        m.serialize_field("all_strings", &self.all_strings)?;
        m.serialize_field("blank_lines", &self.blank_lines.load(Ordering::Relaxed))?;
        m.serialize_field("processing_timestamp_us", &self.processing_timestamp_us)?;
        m.end()
    }
}

/// `_runs/<run id>/schema.json`: the columns a run wrote.
pub fn schema_key(run_id: &str) -> String {
    format!("_runs/{run_id}/schema.json")
}

/// Runs one shard: the columns (given, or inferred over the whole input),
/// then the conversion of the shard's objects.
pub async fn convert(job: &Job, s: &Settings) -> Result<fleet_worker::RunSummary<Metrics>, JobError> {
    let (origin, mut columns) = match &s.schema {
        SchemaSource::Infer => {
            let all = list_inputs(&s.input).await?;
            let shape = infer(job, &all, s).await?;
            ("inferred".to_string(), shape.columns())
        }
        SchemaSource::Inline(text) => ("inline".to_string(), shape::parse_schema(text, "FLEET_SCHEMA")?),
        SchemaSource::Uri(u) => {
            let loc = Location::parse(u)?;
            let bytes = loc.get_path(loc.path()).await?;
            (u.clone(), shape::parse_schema(&String::from_utf8_lossy(&bytes), u)?)
        }
    };
    if columns.is_empty() {
        return Err(NdjsonError::NoColumns { input: s.input.clone() }.into());
    }
    if s.all_strings {
        columns.iter_mut().for_each(|c| c.kind = Kind::Text);
    }
    let key = schema_key(&job.common().run_id);
    job.put_json(&key, &shape::schema_file(&columns)).await?;
    let schema_file = job.output().child(&key)?.uri();
    info!(columns = columns.len(), schema = %origin, file = %schema_file, "Columns decided.");
    let schema = shape::schema(&columns);
    let blank_lines = Arc::new(AtomicU64::new(0));
    let transform = Convert {
        columns: Arc::new(columns),
        schema: schema.clone(),
        processing_time_us: s.processing_time_us,
        blank_lines: blank_lines.clone(),
    };
    let source = Lines { batch_rows: s.batch_rows, batch_bytes: s.batch_bytes };
    let plan = Plan::new(s.input.clone(), source, transform, schema, s.table.clone())
        .with_cut(Cut::Rolling { target_bytes: s.target_bytes })
        .with_rejects(RejectsPlan { id_column: QUARANTINE_ID.into(), max_ratio: s.rejects.max_ratio });
    let metrics = Metrics {
        schema: origin,
        schema_file,
        all_strings: s.all_strings,
        blank_lines,
        processing_timestamp_us: s.processing_time_us,
    };
    job.run(plan, metrics).await
}

/// The shape of every line of `objects`, merged in input order. Objects
/// are read two at a time (each decompresses on its own thread), their
/// batches scanned on the pool.
pub async fn infer(job: &Job, objects: &[InputObject], s: &Settings) -> Result<Shape, JobError> {
    /// Objects read at once.
    const OBJECTS: usize = 2;
    let in_flight = job.common().threads + 1;
    let one = |obj: &InputObject| {
        let (obj, pool) = (obj.clone(), job.pool().clone());
        let (batch_rows, batch_bytes) = (s.batch_rows, s.batch_bytes);
        async move {
            let mut shape = Shape::default();
            let (mut lines, mut bytes) = (0u64, 0u64);
            let mut stream = open_lines(&obj, batch_rows, batch_bytes).await?;
            let mut pending = VecDeque::new();
            loop {
                let next = stream.next().await;
                let done = next.is_none();
                if let Some(b) = next {
                    let b = b?;
                    lines += b.num_rows() as u64;
                    let pool = pool.clone();
                    pending.push_back(tokio::task::spawn_blocking(move || pool.install(|| infer_batch(&b))));
                }
                while pending.len() > if done { 0 } else { in_flight } {
                    let (part, n) =
                        pending.pop_front().expect("not empty").await.map_err(|e| JobError::Internal(e.to_string()))?;
                    shape.merge(part);
                    bytes += n;
                }
                if done {
                    return Ok::<_, JobError>((shape, lines, bytes));
                }
            }
        }
    };
    let mut each = futures::stream::iter(objects).map(one).buffered(OBJECTS);
    let mut shape = Shape::default();
    let (mut lines, mut bytes) = (0u64, 0u64);
    while let Some(part) = each.next().await {
        let (part, l, b) = part?;
        shape.merge(part);
        (lines, bytes) = (lines + l, bytes + b);
    }
    info!(
        objects = objects.len(),
        lines,
        mb = format!("{:.1}", bytes as f64 / 1e6),
        "Inferred the columns over every line."
    );
    Ok(shape)
}

thread_local! {
    /// simd-json's parser and the storage of a tape and of a line's events,
    /// reused line after line.
    static PARSER: RefCell<(CellParser, Tape<'static>, Vec<Event<'static>>)> =
        RefCell::new((CellParser::default(), Tape(Vec::new()), Vec::new()));
}

/// An emptied vector of events, its storage lent to another lifetime.
fn lend<'b>(mut v: Vec<Event<'_>>) -> Vec<Event<'b>> {
    v.clear();
    v.into_iter().map(|_| Event::Null).collect()
}

/// Reads each line of `batch` (a batch of [`fleet_store::lines_schema`])
/// into events ([`scan`], simd-json for the lines the scan is not sure
/// of) and gives `each` its index, the trimmed line and the events, or
/// why it is not JSON; blank lines are counted and skipped. Returns blank
/// lines and bytes.
fn each_line(batch: &RecordBatch, mut each: impl FnMut(usize, &[u8], Result<&[Event], String>)) -> (u64, u64) {
    let lines = batch.column(0).as_binary::<i64>();
    let (mut blank, mut bytes) = (0u64, 0u64);
    PARSER.with(|p| {
        let (parser, stored_tape, stored_events) = &mut *p.borrow_mut();
        for i in 0..lines.len() {
            let raw = lines.value(i);
            bytes += raw.len() as u64;
            let line = trim_line(raw);
            if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                blank += 1;
                continue;
            }
            let mut events = lend(std::mem::take(stored_events));
            if scan::scan(line, &mut events) {
                each(i, line, Ok(&events));
                *stored_events = lend(events);
                continue;
            }
            // the tape's storage, lent for this line (no allocation)
            let mut tape = std::mem::replace(stored_tape, Tape(Vec::new())).reset();
            match parser.parse(line, &mut tape) {
                Ok(Parsed::Document) => {
                    scan::from_tape(&tape.0, line, &mut events);
                    each(i, line, Ok(&events));
                }
                Ok(Parsed::Empty) => each(i, line, Err("expected a JSON object per line, found null".into())),
                Err(e) => each(i, line, Err(e.to_string())),
            }
            *stored_events = lend(events);
            *stored_tape = tape.reset();
        }
    });
    (blank, bytes)
}

/// The shape of a batch's lines (lines that do not parse, or are not
/// objects, are left to the conversion pass to quarantine); and its bytes.
fn infer_batch(batch: &RecordBatch) -> (Shape, u64) {
    let mut shape = Shape::default();
    let (_, bytes) = each_line(batch, |_, _, events| {
        if let Ok(ev) = events
            && matches!(ev[0], Event::Object { .. })
        {
            shape.replay(ev, 0);
        }
    });
    (shape, bytes)
}

/// The conversion pass's source: each object's lines ([`open_lines`]).
#[derive(Debug, Clone)]
struct Lines {
    batch_rows: usize,
    batch_bytes: usize,
}

impl Source for Lines {
    fn open(&self, object: InputObject) -> BoxFuture<'static, Result<fleet_store::BatchStream, JobError>> {
        let Lines { batch_rows, batch_bytes } = *self;
        Box::pin(async move { Ok(open_lines(&object, batch_rows, batch_bytes).await?) })
    }
}

/// Lines to rows of the columns, plus `_source_file` and
/// `_processing_timestamp`; lines that do not parse or fit are quarantined.
#[derive(Debug)]
struct Convert {
    columns: Arc<Vec<Column>>,
    schema: SchemaRef,
    processing_time_us: i64,
    blank_lines: Arc<AtomicU64>,
}

impl Transform for Convert {
    /// The object's URI.
    type Bound = Arc<str>;

    fn bind(&self, object: &InputObject, _schema: &SchemaRef) -> Result<Self::Bound, JobError> {
        Ok(object.uri().into())
    }

    fn apply(&self, uri: &Arc<str>, batch: &RecordBatch, pool: &rayon::ThreadPool) -> Result<Transformed, JobError> {
        pool.install(|| self.convert(uri, batch))
    }
}

impl Convert {
    fn convert(&self, uri: &str, batch: &RecordBatch) -> Result<Transformed, JobError> {
        let offsets = batch.column(1).as_primitive::<Int64Type>();
        let mut rows = Rows::new(&self.columns);
        let mut rejects = Vec::new();
        let (blank, bytes) = each_line(batch, |i, line, parsed| {
            let (column, message) = match parsed {
                Ok(events) => match rows.add(events) {
                    Ok(()) => return,
                    Err(m) => (m.pointer(), m.to_string()),
                },
                Err(message) => (String::new(), message),
            };
            rejects.push(Reject {
                // the pipeline adds the rows before the batch: the 1-based line number
                row: i + 1,
                id: offsets.value(i).to_string(),
                column,
                message,
                prefix: Reject::prefix_of(line),
            });
        });
        self.blank_lines.fetch_add(blank, Ordering::Relaxed);
        let n = rows.len;
        let mut columns: Vec<ArrayRef> = rows.finish();
        columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(uri, n))));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from_iter_values(std::iter::repeat_n(self.processing_time_us, n))
                .with_timezone("UTC"),
        ));
        let quarantined = rejects.len() as u64;
        Ok(Transformed {
            batch: RecordBatch::try_new(self.schema.clone(), columns)?,
            rejects,
            rows_rejected: quarantined,
            rows_dropped: quarantined,
            bytes,
        })
    }
}
