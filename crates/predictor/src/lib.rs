//! The batch-predictor worker: reads its shard of a raw table, computes the
//! features with the same spec and the same code as feature-parser
//! ([`fleet_features::Features`]), evaluates one or more models on them and
//! writes the predictions partition (FEATURES.md §4: `pid`,
//! `predicted_age_<model>` per model, `model_version`), with the same keys,
//! rejects, run summary and commit marker as feature-parser.
//!
//! Every raw row gets a prediction: a cell that is malformed or NULL gives
//! NULL features, which every model handles (ridge: the training mean; trees:
//! their learned or declared direction for missing values; docs/MODELS.md).
//!
//! ```no_run
//! # async fn demo() -> Result<(), fleet_worker::JobError> {
//! let config = fleet_predictor::Config::from_vars([
//!     ("FLEET_INPUT", "file:///data/raw/"),
//!     ("FLEET_MODEL", "file:///data/trained/models/gbdt/"),
//!     ("FLEET_OUTPUT", "file:///data/predictions/"),
//! ])?;
//! let summary = fleet_predictor::BatchPredictor::new(config).await?.run().await?;
//! println!("{} rows", summary.rows_out);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_contract::{
    Cli, Common, ConfigError, Input, Rejects, SpecSettings, SpecShard, SpecShardArgs, Table, Var, required,
};
use fleet_features::Features;
use fleet_models::{Matrix, Model, ModelError};
use fleet_store::{InputObject, Location};
use fleet_worker::{Cut, Exit, Job, JobError, Plan, RejectsPlan, RunSummary, Transform, Transformed, Worker};
use serde::{Deserialize, Serialize};

/// `FLEET_MODEL`: the models to evaluate.
pub const MODEL: Var = Var {
    name: "FLEET_MODEL",
    form: "a model directory (holding model.json) or a model file URI (a fleet model.json, a LightGBM text model, \
           an XGBoost JSON model), or several separated by commas, each optionally NAME=URI to name its column",
    default: None,
    help: "Models to evaluate; each adds a column predicted_age_<name>",
};

/// batch-predictor's own setting.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Models")]
pub struct ModelArgs {
    #[arg(long, env = MODEL.name, value_name = "URI[,URI...]", help = MODEL.help, long_help = MODEL.long_help())]
    pub model: Option<String>,
}

/// batch-predictor's settings besides the common ones: feature-parser's
/// (input, table, reject threshold, spec) and the models.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub shard: SpecShardArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// One entry of `FLEET_MODEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    /// The column's model name when given as `NAME=URI`.
    pub name: Option<String>,
    pub uri: String,
}

impl ModelSource {
    /// The file to read: `model.json` inside a directory (a URI ending in
    /// `/`, or whose last segment has no `.`), else the URI itself.
    pub fn file_uri(&self) -> String {
        let last = self.uri.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        if self.uri.ends_with('/') {
            format!("{}model.json", self.uri)
        } else if !last.contains('.') {
            format!("{}/model.json", self.uri)
        } else {
            self.uri.clone()
        }
    }
}

/// Parses `FLEET_MODEL`: comma-separated entries, each `URI` or `NAME=URI`
/// (a name of letters, digits and `_`; a URI's own `=`, as in
/// `s3://b/dt=2025-07-01/`, does not count, as a name has no `/` or `:`).
pub fn parse_models(value: &str) -> Result<Vec<ModelSource>, ConfigError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(MODEL.invalid(value));
        }
        let source = match entry.split_once('=') {
            Some((n, uri)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                ModelSource { name: Some(n.to_string()), uri: uri.to_string() }
            }
            _ => ModelSource { name: None, uri: entry.to_string() },
        };
        if source.uri.is_empty() {
            return Err(MODEL.invalid(value));
        }
        out.push(source);
    }
    Ok(out)
}

/// batch-predictor's validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub common: Common,
    pub input: Input,
    pub table: Table,
    pub rejects: Rejects,
    pub spec: SpecSettings,
    pub models: Vec<ModelSource>,
}

impl Config {
    /// The settings from `FLEET_*` pairs alone (the process environment is
    /// not read).
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        fleet_worker::configure_from_vars::<BatchPredictor, K, V>(vars)
    }
}

impl AsRef<Common> for Config {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

/// The batch-predictor worker.
#[derive(Debug)]
pub struct BatchPredictor {
    config: Config,
    features: Features,
    spec_name: String,
    id: String,
    evaluator: &'static str,
    models: Vec<Model>,
    job: Job,
}

/// A model as the run summary names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelUsed {
    pub name: String,
    /// `<name>-<crc32 of its model.json>`.
    pub version: String,
    pub uri: String,
    pub column: String,
}

/// What batch-predictor adds to the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictMetrics {
    pub spec: String,
    pub evaluator: String,
    pub models: Vec<ModelUsed>,
}

impl Worker for BatchPredictor {
    const NAME: &'static str = "batch-predictor";
    const ABOUT: &'static str = "compute a raw table shard's features as feature-parser does, evaluate the models (fleet, LightGBM or XGBoost) and write the predictions partition (Parquet), with rejects, a run summary, the Glue table definition and a commit marker";
    const EXITS: &'static [Exit] = &Exit::ALL;
    type Args = Args;
    type Config = Config;

    fn configure(cli: Cli<Args>) -> Result<Config, ConfigError> {
        let SpecShard { common, input, table, rejects, spec } = cli.own.shard.validate(&cli.common)?;
        let models = parse_models(required(&cli.own.model.model, &MODEL)?)?;
        Ok(Config { common, input, table, rejects, spec, models })
    }

    fn table(config: &Config) -> Option<&Table> {
        Some(&config.table)
    }

    async fn run(config: Config) -> Result<(), JobError> {
        BatchPredictor::new(config).await?.run().await?;
        Ok(())
    }
}

/// Why batch-predictor cannot use a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    #[error("FLEET_MODEL: {uri} does not exist; expected a model directory holding model.json, or a model file")]
    NotFound { uri: String },
    #[error("FLEET_MODEL: {uri}")]
    Model {
        uri: String,
        #[source]
        source: ModelError,
    },
    #[error("FLEET_MODEL: two models would write the column {column} ({first} and {second}); name one with NAME=URI")]
    SameColumn { column: String, first: String, second: String },
    #[error("FLEET_SPEC {spec} has no id column; the predictions table needs one (pid)")]
    NoId { spec: String },
    #[error("evaluating model {name}")]
    Predict {
        name: String,
        #[source]
        source: ModelError,
    },
}

impl From<PredictError> for JobError {
    fn from(e: PredictError) -> Self {
        let exit = match e {
            PredictError::Predict { .. } => Exit::BadInput,
            _ => Exit::Config,
        };
        JobError::worker(exit, e)
    }
}

/// `predicted_<target without "actual_">_<name>`: `predicted_age_gbdt`.
pub fn prediction_column(model: &Model) -> String {
    let target = model.target.strip_prefix("actual_").unwrap_or(&model.target);
    format!("predicted_{target}_{}", model.name)
}

/// Reads and checks one model.
pub async fn load_model(source: &ModelSource) -> Result<Model, JobError> {
    let uri = source.file_uri();
    let loc = Location::parse(&uri)?;
    let bytes = match loc.get_path(loc.path()).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Err(PredictError::NotFound { uri }.into()),
        Err(e) => return Err(e.into()),
    };
    let mut model =
        Model::from_bytes(&uri, &bytes).map_err(|source| PredictError::Model { uri: uri.clone(), source })?;
    if let Some(n) = &source.name {
        model.name = n.clone();
    }
    Ok(model)
}

impl BatchPredictor {
    /// Loads the spec and the models and checks that the spec computes
    /// every feature each model needs, as a number.
    pub async fn new(config: Config) -> Result<Self, JobError> {
        let (spec_name, spec) = fleet_features::load_spec(&config.spec.spec).await?;
        let id = spec.id_column().map(str::to_string).ok_or(PredictError::NoId { spec: spec_name.clone() })?;
        let evaluator = if spec.is_native() { "native" } else { "interpreted" };
        let features = Features::new(spec, config.spec.reference_date);
        let empty = RecordBatch::new_empty(features.schema());
        let mut models: Vec<Model> = Vec::new();
        for source in &config.models {
            let model = load_model(source).await?;
            let uri = source.file_uri();
            Matrix::from_batch(&empty, &model.features)
                .map_err(|source| PredictError::Model { uri: uri.clone(), source })?;
            let column = prediction_column(&model);
            if let Some(i) = models.iter().position(|m| prediction_column(m) == column) {
                let first = config.models[i].file_uri();
                return Err(PredictError::SameColumn { column, first, second: uri }.into());
            }
            models.push(model);
        }
        let job = Job::new(Self::NAME, config.common.clone())?;
        Ok(Self { config, features, spec_name, id, evaluator, models, job })
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// Runs the shard. Errors after the data was written (the reject
    /// threshold) come back as `Err` too, with the summary already written.
    pub async fn run(&self) -> Result<RunSummary<PredictMetrics>, JobError> {
        let source = fleet_features::read_batches(self.features.spec(), &self.config.input);
        let transform = Predict::new(self.features.clone(), &self.id, self.models.clone());
        let schema = transform.schema.clone();
        let plan = Plan::new(&self.config.input.uri, source, transform, schema, self.config.table.clone())
            .with_cut(Cut::PerObject)
            .with_unique_columns(vec![self.id.clone()])
            .with_rejects(RejectsPlan { id_column: self.id.clone(), max_ratio: self.config.rejects.max_ratio });
        let models: Vec<ModelUsed> = self
            .models
            .iter()
            .zip(&self.config.models)
            .map(|(m, s)| ModelUsed {
                name: m.name.clone(),
                version: m.version(),
                uri: s.file_uri(),
                column: prediction_column(m),
            })
            .collect();
        for m in &models {
            tracing::info!(model = %m.name, version = %m.version, uri = %m.uri, column = %m.column, "Model loaded.");
        }
        tracing::info!(spec = %self.spec_name, evaluator = self.evaluator, "Spec loaded.");
        let metrics = PredictMetrics { spec: self.spec_name.clone(), evaluator: self.evaluator.into(), models };
        self.job.run(plan, metrics).await
    }
}

/// The per-batch transform: the features, as feature-parser computes them,
/// then each model on them.
#[derive(Debug, Clone)]
pub struct Predict {
    features: Features,
    id: String,
    models: Arc<Vec<Model>>,
    /// The models' versions, comma-separated, in `FLEET_MODEL` order.
    version: String,
    schema: SchemaRef,
}

impl Predict {
    pub fn new(features: Features, id: &str, models: Vec<Model>) -> Self {
        let id_field = features.schema().field_with_name(id).cloned().unwrap_or(Field::new(id, DataType::Utf8, true));
        let mut fields = vec![id_field];
        fields.extend(models.iter().map(|m| Field::new(prediction_column(m), DataType::Float32, false)));
        fields.push(Field::new("model_version", DataType::Utf8, false));
        let version = models.iter().map(Model::version).collect::<Vec<_>>().join(",");
        Self { features, id: id.to_string(), models: Arc::new(models), version, schema: Arc::new(Schema::new(fields)) }
    }

    /// `pid`, one `predicted_*` column per model, `model_version`.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Transform for Predict {
    type Bound = <Features as Transform>::Bound;

    fn bind(&self, object: &InputObject, schema: &SchemaRef) -> Result<Self::Bound, JobError> {
        self.features.bind(object, schema)
    }

    fn apply(
        &self,
        bound: &Self::Bound,
        batch: &RecordBatch,
        pool: &rayon::ThreadPool,
    ) -> Result<Transformed, JobError> {
        let t = self.features.apply(bound, batch, pool)?;
        let f = &t.batch;
        let n = f.num_rows();
        let id = f.column_by_name(&self.id).cloned().expect("the spec's output has its id column");
        let mut columns: Vec<ArrayRef> = vec![id];
        for m in self.models.iter() {
            let x = Matrix::from_batch(f, &m.features)
                .map_err(|source| PredictError::Predict { name: m.name.clone(), source })?;
            let predicted = pool.install(|| m.predict(&x));
            columns.push(Arc::new(Float32Array::from(predicted.iter().map(|&v| v as f32).collect::<Vec<f32>>())));
        }
        columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(&self.version, n))));
        Ok(Transformed {
            batch: RecordBatch::try_new(self.schema.clone(), columns)?,
            rejects: t.rejects,
            rows_rejected: t.rows_rejected,
            rows_dropped: t.rows_dropped,
            bytes: t.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_entries_are_uris_or_named_uris() {
        let m = parse_models("s3://b/models/gbdt/, lgb=file:///m/model.txt,s3://b/dt=2025-07-01/ridge").unwrap();
        assert_eq!(m[0], ModelSource { name: None, uri: "s3://b/models/gbdt/".into() });
        assert_eq!(m[0].file_uri(), "s3://b/models/gbdt/model.json");
        assert_eq!(m[1], ModelSource { name: Some("lgb".into()), uri: "file:///m/model.txt".into() });
        assert_eq!(m[1].file_uri(), "file:///m/model.txt");
        assert_eq!(m[2].name, None);
        assert_eq!(m[2].file_uri(), "s3://b/dt=2025-07-01/ridge/model.json");
        let err = parse_models("a,,b").unwrap_err().to_string();
        assert!(err.starts_with("FLEET_MODEL=\"a,,b\" is invalid: expected a model directory"), "{err}");
        assert!(parse_models("x=").is_err());
    }
}
