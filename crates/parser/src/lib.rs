//! The feature-parser job: reads its shard of a raw table, parses the JSON
//! columns with simd-json across Rayon threads, evaluates the feature spec
//! and writes a typed Parquet partition, a rejects table, a run summary, the
//! local Glue table definition and, last, the shard's commit marker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fleet_parser::ParserError> {
//! let config = fleet_contract::Config::from_vars([
//!     ("FLEET_INPUT", "file:///data/raw/"),
//!     ("FLEET_OUTPUT", "file:///data/features/"),
//! ]).unwrap();
//! let summary = fleet_parser::FeatureParser::new(config).await?.run().await?;
//! println!("{} rows", summary.rows_out);
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod layout;
mod pipeline;
mod summary;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_contract::{Compression, Config, SpecSource};
use fleet_spec::{InputType, Spec, Ymd};
use fleet_store::{Location, StoreError};

pub use pipeline::{Evaluated, evaluate_parallel};
pub use summary::{CommitMarker, CommittedFile, RunSummary};

/// One line on what the worker does, for `--help`.
pub const ABOUT: &str = "parse the JSON columns of a raw table shard into a typed feature partition (Parquet), with rejects, a run summary, the Glue table definition and a commit marker";

/// The exit code for an error chain that may hold a [`ParserError`].
pub fn exit_code(e: &(dyn std::error::Error + 'static)) -> i32 {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<ParserError>() {
            return p.exit_code();
        }
        cur = err.source();
    }
    1
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParserError {
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building a batch of features or rejects")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(
        "{rows_rejected} of {rows} rows ({ratio:.4}) had a rejected cell, more than FLEET_MAX_REJECT_RATIO={max}; data and rejects were written, the shard was not committed"
    )]
    RejectThreshold { rows_rejected: u64, rows: u64, ratio: f64, max: f64 },
    #[error("thread pool: {0}")]
    Pool(String),
}

impl ParserError {
    /// 2 for a bad spec (configuration), 3 for the reject threshold, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ParserError::Spec { .. } => 2,
            ParserError::RejectThreshold { .. } => 3,
            _ => 1,
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, ParserError::Store(e) if e.is_retryable())
    }
}

/// A configured feature-parser run for one shard.
#[derive(Debug)]
pub struct FeatureParser {
    config: Config,
    spec: Spec,
    output: Location,
    pool: Arc<rayon::ThreadPool>,
}

impl FeatureParser {
    /// Loads the spec (built in, or a file/URI) and prepares the thread pool.
    pub async fn new(config: Config) -> Result<Self, ParserError> {
        let (name, text) = match &config.spec {
            SpecSource::Builtin(n) if n == "json-resume" => {
                (format!("builtin:{n}"), fleet_spec::JSON_RESUME.to_string())
            }
            SpecSource::Builtin(n) => (format!("builtin:{n}"), fleet_spec::PREDICT_AGE.to_string()),
            SpecSource::Uri(u) => {
                let loc = Location::parse(u)?;
                let bytes = loc.get_path(loc.path()).await?;
                (u.clone(), String::from_utf8_lossy(&bytes).into_owned())
            }
        };
        let spec = Spec::parse(&text).map_err(|source| ParserError::Spec { source_name: name, source })?;
        let output = Location::parse(&config.output)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("parse-{i}"))
            .build()
            .map_err(|e| ParserError::Pool(e.to_string()))?;
        Ok(Self { config, spec, output, pool: Arc::new(pool) })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the shard. Errors after the data was written (the reject
    /// threshold) come back as `Err` too, with the summary already written.
    pub async fn run(&self) -> Result<RunSummary, ParserError> {
        pipeline::run(self).await
    }

    fn reference_date(&self) -> Ymd {
        let d = self.config.reference_date;
        Ymd::new(d.year, d.month, d.day).expect("the contract validated the date")
    }

    /// The schema NDJSON input is decoded with: the spec's columns, typed.
    fn ndjson_schema(&self) -> SchemaRef {
        let prog_inputs = self.spec.input_columns();
        let json = self.spec.json_columns();
        let fields: Vec<Field> = prog_inputs
            .iter()
            .map(|name| {
                let dt = if json.contains(name) {
                    DataType::Utf8
                } else {
                    match self.spec.input_type(name) {
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

    fn write_options(&self) -> fleet_store::WriteOptions {
        use fleet_store::Compression as C;
        let compression = match self.config.compression {
            Compression::None => C::UNCOMPRESSED,
            Compression::Snappy => C::SNAPPY,
            Compression::Lz4 => C::LZ4_RAW,
            Compression::Gzip => C::GZIP(fleet_store::GzipLevel::default()),
            Compression::Zstd(l) => C::ZSTD(fleet_store::ZstdLevel::try_new(l).unwrap_or_default()),
        };
        fleet_store::WriteOptions::default()
            .with_compression(compression)
            .with_row_group_bytes(usize::try_from(self.config.row_group_bytes).unwrap_or(usize::MAX))
            .with_unique_columns(self.spec.id_column().map(str::to_string).into_iter().collect())
    }

    fn compression_name(&self) -> &'static str {
        match self.config.compression {
            Compression::None => "UNCOMPRESSED",
            Compression::Snappy => "SNAPPY",
            Compression::Lz4 => "LZ4",
            Compression::Gzip => "GZIP",
            Compression::Zstd(_) => "ZSTD",
        }
    }
}

/// The parse-only ceiling: simd-json over every JSON cell of `batches`, on
/// `pool`, with the same per-thread reusable parser the evaluator uses and
/// nothing else (no evaluation, no I/O). Returns (cells, bytes, seconds).
pub fn parse_only(cells: &[&[u8]], pool: &rayon::ThreadPool) -> (usize, u64, f64) {
    use rayon::prelude::*;
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
