//! The settings as clap parses them (each a `FLEET_*` variable and a flag),
//! in groups a worker composes, and their validation into the types workers
//! take. A value is kept as text until validation, so that every bad value
//! is reported the same way: the variable, the value and the expected form.

use crate::values::{Compression, Date, GlueTarget, InputFormat, LogFormat, Partition, Shard, SpecSource};
use crate::{ConfigError, Var, available_cpus, parse_size, vars};

/// The settings every worker takes: where its output goes, which shard it
/// is, and how it runs.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output and shard")]
pub struct CommonArgs {
    #[arg(long, env = vars::OUTPUT.name, value_name = "URI", help = vars::OUTPUT.help, long_help = vars::OUTPUT.long_help())]
    pub output: Option<String>,
    #[arg(long, env = vars::SHARD_INDEX.name, value_name = "I", help = vars::SHARD_INDEX.help, long_help = vars::SHARD_INDEX.long_help())]
    pub shard_index: Option<String>,
    #[arg(long, env = vars::SHARD_COUNT.name, value_name = "N", help = vars::SHARD_COUNT.help, long_help = vars::SHARD_COUNT.long_help())]
    pub shard_count: Option<String>,
    #[arg(long, env = vars::RUN_ID.name, value_name = "ID", help = vars::RUN_ID.help, long_help = vars::RUN_ID.long_help())]
    pub run_id: Option<String>,
    #[arg(long, env = vars::THREADS.name, value_name = "N", help = vars::THREADS.help, long_help = vars::THREADS.long_help(), help_heading = "Run")]
    pub threads: Option<String>,
    #[arg(long, env = vars::LOG_FORMAT.name, value_name = "FORMAT", help = vars::LOG_FORMAT.help, long_help = vars::LOG_FORMAT.long_help(), help_heading = "Run")]
    pub log_format: Option<String>,
    #[arg(long, env = vars::PROGRESS_SECONDS.name, value_name = "S", help = vars::PROGRESS_SECONDS.help, long_help = vars::PROGRESS_SECONDS.long_help(), help_heading = "Run")]
    pub progress_seconds: Option<String>,
    #[arg(long, env = vars::TASK_VCPU.name, value_name = "VCPU", help = vars::TASK_VCPU.help, long_help = vars::TASK_VCPU.long_help(), help_heading = "Run")]
    pub task_vcpu: Option<String>,
    #[arg(long, env = vars::TASK_MEMORY_GIB.name, value_name = "GIB", help = vars::TASK_MEMORY_GIB.help, long_help = vars::TASK_MEMORY_GIB.long_help(), help_heading = "Run")]
    pub task_memory_gib: Option<String>,
}

/// A shard's input: a prefix, an object or a manifest, read in batches.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    #[arg(long, env = vars::INPUT.name, value_name = "URI", help = vars::INPUT.help, long_help = vars::INPUT.long_help())]
    pub input: Option<String>,
    #[arg(long, env = vars::INPUT_FORMAT.name, value_name = "FORMAT", help = vars::INPUT_FORMAT.help, long_help = vars::INPUT_FORMAT.long_help())]
    pub input_format: Option<String>,
    #[arg(long, env = vars::BATCH_ROWS.name, value_name = "ROWS", help = vars::BATCH_ROWS.help, long_help = vars::BATCH_ROWS.long_help())]
    pub batch_rows: Option<String>,
}

/// The table a worker writes: its partition, its Parquet files and its
/// catalog entry.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output table")]
pub struct TableArgs {
    #[arg(long, env = vars::PARTITION.name, value_name = "K=V", help = vars::PARTITION.help, long_help = vars::PARTITION.long_help())]
    pub partition: Option<String>,
    #[command(flatten)]
    pub files: TableFileArgs,
}

/// How a table's files are written and catalogued: everything of
/// [`TableArgs`] but the partition (for a worker that keeps the partitions
/// it finds, such as the compactor).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Output table")]
pub struct TableFileArgs {
    #[arg(long, env = vars::ROW_GROUP_BYTES.name, value_name = "SIZE", help = vars::ROW_GROUP_BYTES.help, long_help = vars::ROW_GROUP_BYTES.long_help())]
    pub row_group_bytes: Option<String>,
    #[arg(long, env = vars::COMPRESSION.name, value_name = "CODEC", help = vars::COMPRESSION.help, long_help = vars::COMPRESSION.long_help())]
    pub compression: Option<String>,
    #[arg(long, env = vars::GLUE_DATABASE.name, value_name = "NAME", help = vars::GLUE_DATABASE.help, long_help = vars::GLUE_DATABASE.long_help())]
    pub glue_database: Option<String>,
    #[arg(long, env = vars::GLUE_TABLE.name, value_name = "NAME", help = vars::GLUE_TABLE.help, long_help = vars::GLUE_TABLE.long_help())]
    pub glue_table: Option<String>,
    #[arg(long, env = vars::GLUE_PARTITION_PROJECTION.name, value_name = "BOOL", help = vars::GLUE_PARTITION_PROJECTION.help, long_help = vars::GLUE_PARTITION_PROJECTION.long_help())]
    pub glue_partition_projection: Option<String>,
}

/// The reject threshold, for workers that reject cells or lines.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Rejects")]
pub struct RejectArgs {
    #[arg(long, env = vars::MAX_REJECT_RATIO.name, value_name = "RATIO", help = vars::MAX_REJECT_RATIO.help, long_help = vars::MAX_REJECT_RATIO.long_help())]
    pub max_reject_ratio: Option<String>,
}

/// The feature spec and the date it is evaluated at, for workers that
/// compute features.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Features")]
pub struct SpecArgs {
    #[arg(long, env = vars::SPEC.name, value_name = "SPEC", help = vars::SPEC.help, long_help = vars::SPEC.long_help())]
    pub spec: Option<String>,
    #[arg(long, env = vars::REFERENCE_DATE.name, value_name = "DATE", help = vars::REFERENCE_DATE.help, long_help = vars::REFERENCE_DATE.long_help())]
    pub reference_date: Option<String>,
}

/// The validated [`CommonArgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub output: String,
    pub shard: Shard,
    pub run_id: String,
    pub threads: usize,
    pub log_format: LogFormat,
    pub progress_seconds: u64,
    /// vCPUs billed, for the Fargate cost estimate.
    pub task_vcpu: f64,
    /// GiB billed, for the Fargate cost estimate.
    pub task_memory_gib: f64,
}

/// The validated [`InputArgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub uri: String,
    pub format: InputFormat,
    pub batch_rows: usize,
}

/// The validated [`TableArgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub partition: Partition,
    pub row_group_bytes: u64,
    pub compression: Compression,
    pub glue: GlueTarget,
}

/// The validated [`RejectArgs`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rejects {
    pub max_ratio: f64,
}

/// The validated [`SpecArgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpecSettings {
    pub spec: SpecSource,
    pub reference_date: Date,
}

/// A set value; empty or blank counts as not set (`-e FLEET_X=` in a task
/// definition override, for instance).
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// The value of a required setting.
pub fn required<'a>(v: &'a Option<String>, var: &Var) -> Result<&'a str, ConfigError> {
    given(v).ok_or(ConfigError::Missing { var: var.name, form: var.form })
}

/// A number within `lo..=hi`, or `default` when not set.
pub fn number<T: std::str::FromStr + PartialOrd>(
    v: &Option<String>,
    var: &Var,
    default: T,
    lo: T,
    hi: T,
) -> Result<T, ConfigError> {
    match given(v) {
        None => Ok(default),
        Some(s) => match s.trim().parse::<T>() {
            Ok(n) if n >= lo && n <= hi => Ok(n),
            _ => Err(var.invalid(s)),
        },
    }
}

/// `true`/`1` or `false`/`0`, `default` when not set.
pub fn boolean(v: &Option<String>, var: &Var, default: bool) -> Result<bool, ConfigError> {
    match given(v).map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(s) => Err(var.invalid(s)),
    }
}

/// A URI that does not climb out of its root.
fn uri(v: &str, var: &Var) -> Result<String, ConfigError> {
    if v.split('/').any(|seg| seg == "..") {
        return Err(var.invalid(v));
    }
    Ok(v.to_string())
}

fn default_run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let d = Date::from_days_since_epoch(days);
    format!("run-{:04}{:02}{:02}T{:02}{:02}{:02}Z", d.year, d.month, d.day, rem / 3600, rem / 60 % 60, rem % 60)
}

impl CommonArgs {
    pub fn validate(&self) -> Result<Common, ConfigError> {
        use vars::*;
        let output = uri(required(&self.output, &OUTPUT)?, &OUTPUT)?;
        let count: u32 = number(&self.shard_count, &SHARD_COUNT, 1, 1, 100_000)?;
        let index: u32 = number(&self.shard_index, &SHARD_INDEX, 0, 0, u32::MAX)?;
        if index >= count {
            return Err(ConfigError::Relation {
                var: SHARD_INDEX.name,
                value: index.to_string(),
                other: SHARD_COUNT.name,
                other_value: count.to_string(),
            });
        }
        let run_id = match given(&self.run_id) {
            None => default_run_id(),
            Some(v) => {
                let ok = v.len() <= 128
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                    && v != "."
                    && v != "..";
                if !ok {
                    return Err(RUN_ID.invalid(v));
                }
                v.to_string()
            }
        };
        let threads = number(&self.threads, &THREADS, available_cpus(), 1, 1024)?;
        let log_format = match given(&self.log_format).map(str::trim) {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(v) => return Err(LOG_FORMAT.invalid(v)),
        };
        let progress_seconds = number(&self.progress_seconds, &PROGRESS_SECONDS, 5, 1, 3600)?;
        let task_vcpu = number(&self.task_vcpu, &TASK_VCPU, threads as f64, 0.25, 192.0)?;
        let task_memory_gib = number(&self.task_memory_gib, &TASK_MEMORY_GIB, (task_vcpu * 2.0).max(0.5), 0.5, 1024.0)?;
        Ok(Common {
            output,
            shard: Shard { index, count },
            run_id,
            threads,
            log_format,
            progress_seconds,
            task_vcpu,
            task_memory_gib,
        })
    }
}

impl InputArgs {
    /// Validates the input against the (validated) output: an output inside
    /// an input prefix would be read back as input.
    pub fn validate(&self, common: &Common) -> Result<Input, ConfigError> {
        use vars::*;
        let input = uri(required(&self.input, &INPUT)?, &INPUT)?;
        let norm = |u: &str| u.trim_end_matches('/').to_string() + "/";
        if input.ends_with('/') && norm(&common.output).starts_with(&norm(&input)) {
            return Err(ConfigError::OutputInsideInput { input, output: common.output.clone() });
        }
        let format = match given(&self.input_format).map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("auto") => InputFormat::Auto,
            Some("parquet") => InputFormat::Parquet,
            Some("ndjson" | "jsonl" | "json") => InputFormat::Ndjson,
            Some(_) => return Err(INPUT_FORMAT.invalid(given(&self.input_format).unwrap_or_default())),
        };
        let batch_rows = number(&self.batch_rows, &BATCH_ROWS, 8192, 1, 1 << 20)?;
        Ok(Input { uri: input, format, batch_rows })
    }
}

impl TableArgs {
    /// Validates the table settings; `default_partition` is the worker's
    /// (feature-parser's is `dt=<reference date>`).
    pub fn validate(&self, common: &Common, default_partition: Partition) -> Result<Table, ConfigError> {
        let partition = match given(&self.partition) {
            None => default_partition,
            Some(v) => Partition::parse(v).ok_or_else(|| vars::PARTITION.invalid(v))?,
        };
        self.files.validate(common, partition)
    }
}

impl TableFileArgs {
    /// Validates the file and catalog settings of a table of `partition`.
    pub fn validate(&self, common: &Common, partition: Partition) -> Result<Table, ConfigError> {
        use vars::*;
        let row_group_bytes = match given(&self.row_group_bytes) {
            None => 128 << 20,
            Some(v) => parse_size(v).filter(|n| *n >= 1 << 10).ok_or_else(|| ROW_GROUP_BYTES.invalid(v))?,
        };
        let compression = match given(&self.compression) {
            None => Compression::Zstd(3),
            Some(v) => Compression::parse(v).ok_or_else(|| COMPRESSION.invalid(v))?,
        };
        let mut glue = glue_target(given(&self.glue_database), given(&self.glue_table), &common.output)?;
        glue.projection = boolean(&self.glue_partition_projection, &GLUE_PARTITION_PROJECTION, false)?;
        Ok(Table { partition, row_group_bytes, compression, glue })
    }
}

/// The Glue database and table of the table at `location`: the table
/// defaults to the last segment of the location; registering in Glue is on
/// when either name is given.
pub fn glue_target(database: Option<&str>, table: Option<&str>, location: &str) -> Result<GlueTarget, ConfigError> {
    use vars::*;
    let register = database.is_some() || table.is_some();
    let database = database.unwrap_or("fleet").to_string();
    let table = match table {
        Some(v) => v.to_string(),
        None => location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("features")
            .replace(['-', '.'], "_")
            .to_ascii_lowercase(),
    };
    for (var, v) in [(&GLUE_DATABASE, &database), (&GLUE_TABLE, &table)] {
        if v.is_empty()
            || v.len() > 255
            || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(var.invalid(v));
        }
    }
    Ok(GlueTarget { database, table, register, projection: false })
}

impl RejectArgs {
    pub fn validate(&self) -> Result<Rejects, ConfigError> {
        Ok(Rejects { max_ratio: number(&self.max_reject_ratio, &vars::MAX_REJECT_RATIO, 0.01, 0.0, 1.0)? })
    }
}

impl SpecArgs {
    pub fn validate(&self) -> Result<SpecSettings, ConfigError> {
        use vars::*;
        let spec = match given(&self.spec) {
            None => SpecSource::Builtin("predict-age".into()),
            Some(v) => match v.strip_prefix("builtin:") {
                Some(name @ ("predict-age" | "json-resume")) => SpecSource::Builtin(name.to_string()),
                Some(_) => return Err(SPEC.invalid(v)),
                None => SpecSource::Uri(v.to_string()),
            },
        };
        let reference_date = match given(&self.reference_date) {
            None => Date { year: 2025, month: 7, day: 1 },
            Some(v) => v.trim().parse().map_err(|_| REFERENCE_DATE.invalid(v))?,
        };
        Ok(SpecSettings { spec, reference_date })
    }
}

/// The settings of a worker that evaluates a feature spec over a raw table
/// shard (feature-parser, batch-predictor): its input, its table, the
/// reject threshold and the spec.
#[derive(Debug, Clone, clap::Args)]
pub struct SpecShardArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub rejects: RejectArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// [`SpecShardArgs`] validated, with the common settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecShard {
    pub common: Common,
    pub input: Input,
    pub table: Table,
    pub rejects: Rejects,
    pub spec: SpecSettings,
}

impl SpecShardArgs {
    /// Validates these and the common settings; the input first, as it is
    /// what a new user leaves out first. The partition defaults to
    /// `dt=<reference date>`.
    pub fn validate(&self, common: &CommonArgs) -> Result<SpecShard, ConfigError> {
        required(&self.input.input, &vars::INPUT)?;
        let common = common.validate()?;
        let input = self.input.validate(&common)?;
        let spec = self.spec.validate()?;
        let rejects = self.rejects.validate()?;
        let table = self.table.validate(&common, Partition::date(spec.reference_date))?;
        Ok(SpecShard { common, input, table, rejects, spec })
    }
}
