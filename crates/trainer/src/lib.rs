//! The trainer-feeder worker: reads the features table and the targets
//! table, joins them on pid, splits the rows by a hash of pid into train,
//! validation and test, writes the splits (Parquet, JSON lines on request)
//! and per-feature statistics, trains the built-in models on all of the
//! task's threads and writes each model's artifact, its metrics and a
//! report.
//!
//! Under `FLEET_OUTPUT`:
//!
//! ```text
//! splits/{train,validation,test}/part-00000.parquet   pid, the features, actual_age
//! jsonl/{train,validation,test}/part-00000.jsonl      with FLEET_JSONL=true
//! stats.json                                          rows joined and dropped; per split, per column statistics
//! models/<model>/model.json                           the model (docs/MODELS.md)
//! models/<model>/metrics.json                         MAE, RMSE, R² on train, validation, test; fit seconds
//! models/metrics.json                                 all models' metrics
//! models/report.html                                  metrics and charts, self-contained
//! _runs/<run id>/shard-00000-of-00001.json            the run summary
//! _commits/shard-00000-of-00001.json                  written last: the output is complete
//! ```
//!
//! The same inputs and settings give the same bytes in every file but the
//! `fit_seconds` of the metrics and the report (and the run summary).

mod config;
mod data;
mod report;
mod stats;
mod train;

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_contract::{Cli, ConfigError, Partition};
use fleet_models::ModelError;
use fleet_store::Location;
use fleet_worker::{Exit, Job, JobError, Outcome, RunSummary, Worker};
use serde::Serialize;

pub use config::{Args, Config, ModelKind, Split, VARS, vars};
pub use data::{AGES, JoinCounts, SPLITS, jsonl_key, split_key};
pub use stats::{ColumnStats, QUANTILES, Stats, quantile};
pub use train::{GbdtTraining, ModelMetrics, SplitRows};

/// The id column both tables are joined on.
pub const ID: &str = "pid";
/// The target column, in the targets table and in the splits.
pub const TARGET: &str = "actual_age";

/// The trainer-feeder worker.
#[derive(Debug)]
pub struct TrainerFeeder;

/// What trainer-feeder adds to the run summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainMetrics {
    pub features: String,
    pub targets: String,
    pub rows: JoinCounts,
    /// JSON lines files written (with FLEET_JSONL=true).
    pub jsonl: Vec<String>,
    pub models: Vec<ModelMetrics>,
    pub report: String,
}

/// Why trainer-feeder cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error("{uri} is not a Parquet file; trainer-feeder reads Parquet tables")]
    NotParquet { uri: String },
    #[error("FLEET_FEATURES={uri} holds no Parquet file")]
    NoFeatures { uri: String },
    #[error("{uri}: column {column} {message}")]
    Column { uri: String, column: String, message: String },
    /// A feature or the target that is not a number (the cause says which).
    #[error("{uri}")]
    NotNumeric {
        uri: String,
        #[source]
        source: ModelError,
    },
    #[error("writing {key}")]
    Write {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl From<TrainError> for JobError {
    fn from(e: TrainError) -> Self {
        let exit = match e {
            TrainError::Write { .. } => Exit::Retryable,
            _ => Exit::BadInput,
        };
        JobError::worker(exit, e)
    }
}

impl Worker for TrainerFeeder {
    const NAME: &'static str = "trainer-feeder";
    const ABOUT: &'static str = "join the features table to the targets on pid, split it by a hash of pid into train/validation/test (Parquet), write per-feature statistics, train the mean, ridge and GBDT models and write their artifacts, metrics and an HTML report";
    const EXITS: &'static [Exit] = Exit::COMMON;
    type Args = Args;
    type Config = Config;

    fn configure(cli: Cli<Args>) -> Result<Config, ConfigError> {
        Config::validate(cli)
    }

    async fn run(config: Config) -> Result<(), JobError> {
        train_and_report(config).await?;
        Ok(())
    }
}

/// `models/<model>/model.json`.
pub fn model_key(model: &str) -> String {
    format!("models/{model}/model.json")
}

/// `models/<model>/metrics.json`.
pub fn metrics_key(model: &str) -> String {
    format!("models/{model}/metrics.json")
}

/// `models/report.html`.
pub const REPORT_KEY: &str = "models/report.html";

/// The whole run: the splits, the statistics, the models, the report, then
/// the summary and the commit marker.
pub async fn train_and_report(config: Config) -> Result<RunSummary<TrainMetrics>, JobError> {
    let job = Job::new(TrainerFeeder::NAME, config.common.clone())?;
    for uri in [&config.features, &config.targets] {
        Location::parse(uri)?.check().await?;
    }
    job.output().check().await?;
    // the output is not partitioned: its marker is _commits/<shard>.json
    let root = Partition(Vec::new());
    job.withdraw(&root).await?;
    tracing::info!(
        worker = TrainerFeeder::NAME,
        features = %config.features,
        targets = %config.targets,
        output = %config.common.output,
        threads = config.common.threads,
        "Reading the training data."
    );
    let joined =
        data::join_and_split(job.output(), &config.features, &config.targets, config.split, config.jsonl).await?;
    let counts = joined.counts.clone();
    tracing::info!(
        features_rows = counts.features_rows,
        joined = counts.rows_joined,
        without_target = counts.features_without_target,
        invalid_target = counts.features_with_invalid_target,
        train = counts.rows_per_split[0],
        validation = counts.rows_per_split[1],
        test = counts.rows_per_split[2],
        features = joined.features.len(),
        "Splits written."
    );
    let splits = Arc::new(joined.splits);
    let stats = {
        let (pool, splits, counts) = (job.pool().clone(), splits.clone(), counts.clone());
        blocking(move || pool.install(|| stats::compute(&counts, &splits, TARGET))).await?
    };
    job.put_json("stats.json", &stats).await?;

    let config = Arc::new(config);
    let mut trained = Vec::new();
    for &kind in &config.models {
        let (pool, splits, c) = (job.pool().clone(), splits.clone(), config.clone());
        let t = blocking(move || pool.install(|| train::train(kind, &c, &splits))).await??;
        let m = &t.metrics;
        tracing::info!(
            model = %m.model,
            version = %m.version,
            validation_mae = format!("{:.3}", m.validation.mae),
            test_mae = format!("{:.3}", m.test.mae),
            test_r2 = format!("{:.4}", m.test.r2),
            fit_seconds = format!("{:.2}", m.fit_seconds),
            "Model trained."
        );
        job.output().put_bytes(&model_key(kind.name()), t.model.to_json()).await?;
        job.put_json(&metrics_key(kind.name()), &t.metrics).await?;
        trained.push(t);
    }
    let all: Vec<ModelMetrics> = trained.iter().map(|t| t.metrics.clone()).collect();
    job.put_json("models/metrics.json", &BTreeMap::from([("models", &all)])).await?;
    let html = report::html(
        &format!("trainer-feeder: {}", config.features),
        &counts,
        &trained,
        &splits[2].y,
        &joined.features,
    );
    job.output().put_bytes(REPORT_KEY, html.into_bytes()).await?;
    let report = job.output().child(REPORT_KEY)?.uri();
    tracing::info!(report = %report, "Report written.");

    let (parquet, jsonl): (Vec<_>, Vec<_>) = joined.files.into_iter().partition(|f| f.key.ends_with(".parquet"));
    let outcome = Outcome {
        input: config.features.clone(),
        objects: joined.objects,
        rows_in: counts.features_rows,
        bytes_read: joined.bytes_read,
        bytes_processed: joined.bytes_read,
        partitions: vec![root.clone()],
        files: BTreeMap::from([(root, parquet)]),
        ..Outcome::default()
    };
    let metrics = TrainMetrics {
        features: config.features.clone(),
        targets: config.targets.clone(),
        rows: counts,
        jsonl: jsonl.into_iter().map(|f| f.key).collect(),
        models: all,
        report,
    };
    job.finish(outcome, metrics).await
}

/// Runs CPU-bound work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| JobError::Internal(format!("a training task failed: {e}")))
}
