//! The feature-parser worker: reads its shard of a raw table, parses the
//! JSON columns with simd-json across Rayon threads, evaluates the feature
//! spec and writes a typed Parquet partition (one file per input object),
//! with rejects, a run summary, the local Glue table definition and, last,
//! the shard's commit marker: the [`fleet_worker`] machinery around one
//! [`Transform`], the spec's evaluation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fleet_worker::JobError> {
//! let config = fleet_features::Config::from_vars([
//!     ("FLEET_INPUT", "file:///data/raw/"),
//!     ("FLEET_OUTPUT", "file:///data/features/"),
//! ])?;
//! let summary = fleet_features::FeatureParser::new(config).await?.run().await?;
//! println!("{} rows", summary.rows_out);
//! # Ok(()) }
//! ```

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_contract::{
    Cli, Common, ConfigError, Date, Input, Rejects, SpecSettings, SpecShard, SpecShardArgs, SpecSource, Table,
};
use fleet_spec::{Evaluator, InputType, Spec, Workspace, Ymd};
use fleet_store::{InputObject, Location};
use fleet_worker::{Cut, Exit, Job, JobError, Plan, ReadBatches, RejectsPlan, RunSummary, Transformed, Worker};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The feature-parser worker.
#[derive(Debug)]
pub struct FeatureParser {
    config: Config,
    spec: Spec,
    spec_name: String,
    job: Job,
}

/// feature-parser's settings besides the common ones: its input, its
/// table, the reject threshold and the spec.
pub type Args = SpecShardArgs;

/// feature-parser's validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub common: Common,
    pub input: Input,
    pub table: Table,
    pub rejects: Rejects,
    pub spec: SpecSettings,
}

impl Config {
    /// The settings from `FLEET_*` pairs alone (the process environment is
    /// not read).
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        fleet_worker::configure_from_vars::<FeatureParser, K, V>(vars)
    }
}

impl AsRef<Common> for Config {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

/// What feature-parser adds to the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMetrics {
    /// `builtin:predict-age` or the spec's URI.
    pub spec: String,
    /// `native` (the built-in spec compiled in) or `interpreted`.
    pub evaluator: String,
}

impl Worker for FeatureParser {
    const NAME: &'static str = "feature-parser";
    const ABOUT: &'static str = "parse the JSON columns of a raw table shard into a typed feature partition (Parquet), with rejects, a run summary, the Glue table definition and a commit marker";
    const EXITS: &'static [Exit] = &Exit::ALL;
    type Args = Args;
    type Config = Config;

    fn configure(cli: Cli<Args>) -> Result<Config, ConfigError> {
        let SpecShard { common, input, table, rejects, spec } = cli.own.validate(&cli.common)?;
        Ok(Config { common, input, table, rejects, spec })
    }

    fn table(config: &Config) -> Option<&Table> {
        Some(&config.table)
    }

    async fn run(config: Config) -> Result<(), JobError> {
        FeatureParser::new(config).await?.run().await?;
        Ok(())
    }
}

/// Why feature-parser could not use its spec or an input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeaturesError {
    #[error("feature spec {source_name}")]
    Spec {
        source_name: String,
        #[source]
        source: fleet_spec::SpecError,
    },
    #[error("input {uri} does not fit the spec")]
    Schema {
        uri: String,
        #[source]
        source: fleet_spec::SpecError,
    },
}

impl From<FeaturesError> for JobError {
    fn from(e: FeaturesError) -> Self {
        let exit = match e {
            FeaturesError::Spec { .. } => Exit::Config,
            FeaturesError::Schema { .. } => Exit::BadInput,
        };
        JobError::worker(exit, e)
    }
}

impl FeatureParser {
    /// Loads the spec (built in, or a file/URI) and prepares the job.
    pub async fn new(config: Config) -> Result<Self, JobError> {
        let (spec_name, spec) = load_spec(&config.spec.spec).await?;
        let job = Job::new(Self::NAME, config.common.clone())?;
        Ok(Self { config, spec, spec_name, job })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the shard. Errors after the data was written (the reject
    /// threshold) come back as `Err` too, with the summary already written.
    pub async fn run(&self) -> Result<RunSummary<FeatureMetrics>, JobError> {
        let spec = &self.spec;
        let source = read_batches(spec, &self.config.input);
        let transform = Features::new(spec.clone(), self.config.spec.reference_date);
        let schema = transform.schema();
        let id = spec.id_column().map(str::to_string);
        let plan = Plan::new(&self.config.input.uri, source, transform, schema, self.config.table.clone())
            .with_cut(Cut::PerObject)
            .with_unique_columns(id.clone().into_iter().collect())
            .with_rejects(RejectsPlan {
                id_column: id.unwrap_or_else(|| "id".into()),
                max_ratio: self.config.rejects.max_ratio,
            });
        let evaluator = if spec.is_native() { "native" } else { "interpreted" };
        tracing::info!(spec = %self.spec_name, evaluator, "Spec loaded.");
        let metrics = FeatureMetrics { spec: self.spec_name.clone(), evaluator: evaluator.into() };
        self.job.run(plan, metrics).await
    }
}

/// Loads a spec (built in, or a file/URI): its name for the run summary
/// (`builtin:predict-age` or the URI) and the spec. A spec that does not
/// parse is a configuration error (exit 2) with line and column.
pub async fn load_spec(source: &SpecSource) -> Result<(String, Spec), JobError> {
    let (name, text) = match source {
        SpecSource::Builtin(n) if n == "json-resume" => (format!("builtin:{n}"), fleet_spec::JSON_RESUME.to_string()),
        SpecSource::Builtin(n) => (format!("builtin:{n}"), fleet_spec::PREDICT_AGE.to_string()),
        SpecSource::Uri(u) => {
            let loc = Location::parse(u)?;
            let bytes = loc.get_path(loc.path()).await?;
            (u.clone(), String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let spec = Spec::parse(&text).map_err(|source| FeaturesError::Spec { source_name: name.clone(), source })?;
    Ok((name, spec))
}

/// How a spec's input is read: only the columns it names, the JSON columns
/// as binary (the evaluator checks their UTF-8 as it parses them), NDJSON
/// decoded with the spec's input types.
pub fn read_batches(spec: &Spec, input: &Input) -> ReadBatches {
    ReadBatches {
        format: input.format,
        batch_rows: input.batch_rows,
        columns: spec.input_columns().iter().map(|c| c.to_string()).collect(),
        unchecked: spec.json_columns().iter().filter(|c| spec.input_type(c).is_none()).map(|c| c.to_string()).collect(),
        ndjson_schema: ndjson_schema(spec),
    }
}

/// The schema NDJSON input is decoded with: the spec's columns, typed.
fn ndjson_schema(spec: &Spec) -> SchemaRef {
    let json = spec.json_columns();
    let fields: Vec<Field> = spec
        .input_columns()
        .iter()
        .map(|name| {
            let dt = if json.contains(name) {
                DataType::Utf8
            } else {
                match spec.input_type(name) {
                    Some(InputType::Int) => DataType::Int64,
                    Some(InputType::Float) => DataType::Float64,
                    Some(InputType::Bool) => DataType::Boolean,
                    Some(InputType::Date) => DataType::Date32,
                    _ => DataType::Utf8,
                }
            };
            Field::new(*name, dt, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The per-batch transform: the spec evaluated over a batch, on the Rayon
/// pool. Another worker that needs the features (batch-predictor) wraps it.
#[derive(Debug, Clone)]
pub struct Features {
    spec: Spec,
    date: Ymd,
    schema: SchemaRef,
}

impl Features {
    /// The spec, evaluated at `reference_date`.
    pub fn new(spec: Spec, reference_date: Date) -> Self {
        let d = reference_date;
        let date = Ymd::new(d.year, d.month, d.day).expect("the contract validated the date");
        let schema = spec.output_schema();
        Self { spec, date, schema }
    }

    /// The output schema: the spec's features.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }
}

impl fleet_worker::Transform for Features {
    type Bound = Evaluator;

    fn bind(&self, object: &InputObject, schema: &SchemaRef) -> Result<Evaluator, JobError> {
        self.spec.bind(schema, self.date).map_err(|source| FeaturesError::Schema { uri: object.uri(), source }.into())
    }

    fn apply(&self, ev: &Evaluator, batch: &RecordBatch, pool: &rayon::ThreadPool) -> Result<Transformed, JobError> {
        evaluate_parallel(ev, batch, pool, self.schema.clone())
    }
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

/// Evaluates `batch` on `pool`, in row chunks, each thread reusing its own
/// parse buffers.
fn evaluate_parallel(
    ev: &Evaluator,
    batch: &RecordBatch,
    pool: &rayon::ThreadPool,
    schema: SchemaRef,
) -> Result<Transformed, JobError> {
    let n = batch.num_rows();
    let mut out = Transformed {
        batch: RecordBatch::new_empty(schema.clone()),
        rejects: vec![],
        rows_rejected: 0,
        rows_dropped: 0,
        bytes: 0,
    };
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
        out.bytes += p.json_bytes;
        out.rejects.extend(p.rejects);
    }
    out.batch = RecordBatch::try_new(schema, columns)?;
    Ok(out)
}

/// The parse-only ceiling: simd-json over every JSON cell of `batches`, on
/// `pool`, with the same per-thread reusable parser the evaluator uses and
/// nothing else (no evaluation, no I/O). Returns (cells, bytes, seconds).
pub fn parse_only(cells: &[&[u8]], pool: &rayon::ThreadPool) -> (usize, u64, f64) {
    let start = std::time::Instant::now();
    let bytes: u64 = pool.install(|| {
        cells
            .par_chunks(1024)
            .map_init(fleet_spec::CellParser::default, |parser, chunk| {
                let mut tape = simd_json::Tape(Vec::new());
                let mut n = 0u64;
                for c in chunk {
                    let mut t = std::mem::replace(&mut tape, simd_json::Tape(Vec::new())).reset();
                    if parser.parse(c, &mut t).is_ok() {
                        n += c.len() as u64;
                    }
                    tape = t.reset();
                }
                n
            })
            .sum()
    });
    (cells.len(), bytes, start.elapsed().as_secs_f64())
}
