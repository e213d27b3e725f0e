//! The shard contract: the one place where every worker's configuration is
//! named, documented, parsed and validated.
//!
//! Workers are configured by `FLEET_*` environment variables so that
//! `aws ecs run-task --overrides`, a Step Functions Map item and
//! `docker run -e` all work the same; each variable is also a command-line
//! flag (`--input`, `--fleet-input` or `--FLEET_INPUT`, with `=` or a space),
//! and a flag wins over the environment.
//!
//! ```
//! use fleet_contract::Config;
//! let cfg = Config::from_vars([
//!     ("FLEET_INPUT", "file:///data/raw/"),
//!     ("FLEET_OUTPUT", "file:///data/features/"),
//!     ("FLEET_SHARD_INDEX", "3"),
//!     ("FLEET_SHARD_COUNT", "8"),
//! ]).unwrap();
//! assert_eq!((cfg.shard.index, cfg.shard.count), (3, 8));
//! assert_eq!(cfg.partition.path(), "dt=2025-07-01");
//!
//! let err = Config::from_vars([("FLEET_INPUT", "x"), ("FLEET_OUTPUT", "y"), ("FLEET_SHARD_INDEX", "7"), ("FLEET_SHARD_COUNT", "4")]).unwrap_err();
//! assert_eq!(err.to_string(), "FLEET_SHARD_INDEX=7 must be less than FLEET_SHARD_COUNT=4");
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// Names of the variables, documented in [`VARS`].
pub mod vars {
    pub const INPUT: &str = "FLEET_INPUT";
    pub const OUTPUT: &str = "FLEET_OUTPUT";
    pub const SHARD_INDEX: &str = "FLEET_SHARD_INDEX";
    pub const SHARD_COUNT: &str = "FLEET_SHARD_COUNT";
    pub const RUN_ID: &str = "FLEET_RUN_ID";
    pub const THREADS: &str = "FLEET_THREADS";
    pub const SPEC: &str = "FLEET_SPEC";
    pub const REFERENCE_DATE: &str = "FLEET_REFERENCE_DATE";
    pub const MAX_REJECT_RATIO: &str = "FLEET_MAX_REJECT_RATIO";
    pub const PARTITION: &str = "FLEET_PARTITION";
    pub const INPUT_FORMAT: &str = "FLEET_INPUT_FORMAT";
    pub const BATCH_ROWS: &str = "FLEET_BATCH_ROWS";
    pub const ROW_GROUP_BYTES: &str = "FLEET_ROW_GROUP_BYTES";
    pub const COMPRESSION: &str = "FLEET_COMPRESSION";
    pub const GLUE_DATABASE: &str = "FLEET_GLUE_DATABASE";
    pub const GLUE_TABLE: &str = "FLEET_GLUE_TABLE";
    pub const GLUE_PARTITION_PROJECTION: &str = "FLEET_GLUE_PARTITION_PROJECTION";
    pub const LOG_FORMAT: &str = "FLEET_LOG_FORMAT";
    pub const PROGRESS_SECONDS: &str = "FLEET_PROGRESS_SECONDS";
    pub const TASK_VCPU: &str = "FLEET_TASK_VCPU";
    pub const TASK_MEMORY_GIB: &str = "FLEET_TASK_MEMORY_GIB";
}

/// One documented variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The expected form, as shown in errors and `--help`.
    pub form: &'static str,
    /// The default, or `None` when the variable is required.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

/// Every variable of the contract, in `--help` order.
pub const VARS: &[Var] = &[
    Var {
        name: vars::INPUT,
        form: "a URI: a prefix ending in '/', one object, or a manifest (*.manifest or *.manifest.json)",
        default: None,
        help: "Raw input: file:///path/, s3://bucket/prefix/ or memory:///...",
    },
    Var {
        name: vars::OUTPUT,
        form: "a URI of the table location (file:///path/ or s3://bucket/prefix/)",
        default: None,
        help: "Table location; data goes under its Hive partition, bookkeeping under _runs/, _rejects/ and <partition>/_commits/",
    },
    Var {
        name: vars::SHARD_INDEX,
        form: "an integer from 0 to FLEET_SHARD_COUNT - 1",
        default: Some("0"),
        help: "Which shard this task is; input objects sorted by key go to shard (i mod count)",
    },
    Var {
        name: vars::SHARD_COUNT,
        form: "an integer from 1 to 100000",
        default: Some("1"),
        help: "How many shards the input is split into",
    },
    Var {
        name: vars::RUN_ID,
        form: "1-128 characters of A-Z a-z 0-9 . _ -",
        default: Some("run-<UTC time of start>"),
        help: "Names this run's summaries under _runs/<run id>/",
    },
    Var {
        name: vars::THREADS,
        form: "an integer from 1 to 1024",
        default: Some("the CPUs this container may use (cgroup quota included)"),
        help: "Parsing threads",
    },
    Var {
        name: vars::SPEC,
        form: "builtin:predict-age, builtin:json-resume, or a path/URI of a spec file",
        default: Some("builtin:predict-age"),
        help: "Feature spec",
    },
    Var {
        name: vars::REFERENCE_DATE,
        form: "a date YYYY-MM-DD",
        default: Some("2025-07-01"),
        help: "Date R at which features are evaluated (never the wall clock)",
    },
    Var {
        name: vars::MAX_REJECT_RATIO,
        form: "a number from 0 to 1",
        default: Some("0.01"),
        help: "The run fails (exit 3, after writing) when the share of rows with a rejected cell is greater",
    },
    Var {
        name: vars::PARTITION,
        form: "key=value[/key=value...], keys of a-z 0-9 _",
        default: Some("dt=<FLEET_REFERENCE_DATE>"),
        help: "Hive partition the output goes to",
    },
    Var {
        name: vars::INPUT_FORMAT,
        form: "auto, parquet or ndjson",
        default: Some("auto"),
        help: "Raw input format; auto decides by file name (.parquet, .json, .jsonl, .ndjson)",
    },
    Var {
        name: vars::BATCH_ROWS,
        form: "an integer from 1 to 1048576",
        default: Some("8192"),
        help: "Rows per batch read and parsed; bounds memory",
    },
    Var {
        name: vars::ROW_GROUP_BYTES,
        form: "a size in bytes, e.g. 134217728 or 128MiB",
        default: Some("128MiB"),
        help: "Target uncompressed size of an output row group",
    },
    Var {
        name: vars::COMPRESSION,
        form: "zstd, zstd(1-22), snappy, lz4, gzip or none",
        default: Some("zstd(3)"),
        help: "Parquet compression of the output",
    },
    Var {
        name: vars::GLUE_DATABASE,
        form: "a Glue database name (a-z 0-9 _)",
        default: Some("fleet, local catalog only"),
        help: "Glue database. When this or FLEET_GLUE_TABLE is set, `fleetctl run` and \
               `fleetctl catalog sync` create the table and register committed partitions in Glue; \
               otherwise _runs/<run>/table_input.json is the catalog",
    },
    Var {
        name: vars::GLUE_TABLE,
        form: "a Glue table name (a-z 0-9 _)",
        default: Some("the last segment of FLEET_OUTPUT"),
        help: "Glue table (see FLEET_GLUE_DATABASE)",
    },
    Var {
        name: vars::GLUE_PARTITION_PROJECTION,
        form: "true or false",
        default: Some("false"),
        help: "Use Athena partition projection (table properties) instead of registering partitions",
    },
    Var {
        name: vars::LOG_FORMAT,
        form: "auto, json or text",
        default: Some("auto"),
        help: "Logs: JSON when stdout is not a terminal, text when it is",
    },
    Var {
        name: vars::PROGRESS_SECONDS,
        form: "an integer from 1 to 3600",
        default: Some("5"),
        help: "Seconds between progress lines",
    },
    Var {
        name: vars::TASK_VCPU,
        form: "a number of vCPUs, e.g. 4",
        default: Some("FLEET_THREADS"),
        help: "vCPUs billed, for the Fargate cost estimate",
    },
    Var {
        name: vars::TASK_MEMORY_GIB,
        form: "a number of GiB, e.g. 8",
        default: Some("2 GiB per vCPU"),
        help: "Memory billed, for the Fargate cost estimate",
    },
];

/// What is wrong with the configuration. The binary exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{var} is required: expected {form}")]
    Missing { var: &'static str, form: &'static str },
    #[error("{var}={value:?} is invalid: expected {form}")]
    Invalid { var: &'static str, value: String, form: &'static str },
    #[error("{var}={value} must be less than {other}={other_value}")]
    Relation { var: &'static str, value: String, other: &'static str, other_value: String },
    #[error(
        "FLEET_OUTPUT={output} is inside FLEET_INPUT={input}: the output would be read back as input; choose an output outside the input prefix"
    )]
    OutputInsideInput { input: String, output: String },
    #[error("unknown flag {flag:?}; see --help for the FLEET_* variables and their flags")]
    UnknownFlag { flag: String },
    #[error("flag {flag} needs a value")]
    FlagWithoutValue { flag: String },
}

impl ConfigError {
    /// The exit code a worker uses for a configuration error.
    pub const EXIT_CODE: i32 = 2;
}

/// Deterministic assignment of input objects to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Object keys (sorted by the caller) at positions `i` with
    /// `i % count == index` belong to this shard: balanced, and stable
    /// across retries over the same listing or manifest.
    pub fn owns(&self, position: usize) -> bool {
        position % self.count as usize == self.index as usize
    }
    /// `shard-00007-of-00050`, the stem of this shard's marker and summary names.
    pub fn name(&self) -> String {
        format!("shard-{:05}-of-{:05}", self.index, self.count)
    }
}

/// A calendar date (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian; `None` for a month outside 1-12.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

impl Date {
    /// The date `days` after 1970-01-01 (Arrow's `Date32`), proleptic Gregorian
    /// (Howard Hinnant's `civil_from_days`).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Date { year: (yoe + era * 400 + i64::from(month <= 2)) as i32, month, day }
    }

    /// Days since 1970-01-01 (Arrow's `Date32`), the inverse of
    /// [`Date::from_days_since_epoch`] (Howard Hinnant's `days_from_civil`).
    pub fn days_since_epoch(&self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for Date {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let b = s.as_bytes();
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !s.chars().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        {
            return Err(());
        }
        let year: i32 = s[0..4].parse().map_err(|_| ())?;
        let month: u32 = s[5..7].parse().map_err(|_| ())?;
        let day: u32 = s[8..10].parse().map_err(|_| ())?;
        let dim = days_in_month(year, month).ok_or(())?;
        if day == 0 || day > dim {
            return Err(());
        }
        Ok(Date { year, month, day })
    }
}

/// Hive partition values, in path order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition(pub Vec<(String, String)>);

impl Partition {
    /// The keys, in path order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    /// `dt=2025-07-01` or `year=2025/month=07`.
    pub fn path(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("/")
    }
    /// Parses `dt=2025-07-01` or `year=2025/month=07`; `None` when a key or value is not Hive-safe.
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = Vec::new();
        for part in s.trim_matches('/').split('/') {
            let (k, v) = part.split_once('=')?;
            let key_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let val_ok = !v.is_empty()
                && v != "."
                && v != ".."
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+'));
            if !key_ok || !val_ok || out.iter().any(|(x, _): &(String, String)| x == k) {
                return None;
            }
            out.push((k.to_string(), v.to_string()));
        }
        (!out.is_empty()).then_some(Partition(out))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    Builtin(String),
    Uri(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Auto,
    Parquet,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Snappy,
    Lz4,
    Gzip,
    Zstd(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// A validated worker configuration: every value checked, every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub input: String,
    pub output: String,
    pub shard: Shard,
    pub run_id: String,
    pub threads: usize,
    pub spec: SpecSource,
    pub reference_date: Date,
    pub max_reject_ratio: f64,
    pub partition: Partition,
    pub input_format: InputFormat,
    pub batch_rows: usize,
    pub row_group_bytes: u64,
    pub compression: Compression,
    pub glue: GlueTarget,
    pub log_format: LogFormat,
    pub progress_seconds: u64,
    pub task_vcpu: f64,
    pub task_memory_gib: f64,
}

/// The catalog table of an output: the Glue database and table, and whether
/// to register in Glue at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueTarget {
    pub database: String,
    pub table: String,
    /// `FLEET_GLUE_DATABASE` or `FLEET_GLUE_TABLE` was set: register in Glue.
    pub register: bool,
    /// `FLEET_GLUE_PARTITION_PROJECTION`: projection instead of partitions.
    pub projection: bool,
}

impl GlueTarget {
    /// From `FLEET_GLUE_DATABASE`, `FLEET_GLUE_TABLE` and
    /// `FLEET_GLUE_PARTITION_PROJECTION`; the table defaults to the last
    /// segment of `output`.
    pub fn from_vars(raw: &RawVars, output: &str) -> Result<Self, ConfigError> {
        use vars::*;
        let database = raw.get(GLUE_DATABASE).unwrap_or("fleet").to_string();
        let table = match raw.get(GLUE_TABLE) {
            Some(v) => v.to_string(),
            None => output
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("features")
                .replace(['-', '.'], "_")
                .to_ascii_lowercase(),
        };
        for (name, v) in [(GLUE_DATABASE, &database), (GLUE_TABLE, &table)] {
            if v.is_empty()
                || v.len() > 255
                || !v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(name, v));
            }
        }
        let projection = match raw.get(GLUE_PARTITION_PROJECTION).map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(v) => return Err(invalid(GLUE_PARTITION_PROJECTION, v)),
        };
        let register = raw.get(GLUE_DATABASE).is_some() || raw.get(GLUE_TABLE).is_some();
        Ok(GlueTarget { database, table, register, projection })
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation<T> {
    Run(T),
    Help,
    Version,
}

/// The CPUs this process may use: `available_parallelism` reads the
/// affinity mask and the cgroup v1/v2 CPU quota on Linux.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn var(name: &str) -> &'static Var {
    VARS.iter().find(|v| v.name == name).expect("every variable is documented in VARS")
}

/// The raw `FLEET_*` values, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawVars(pub BTreeMap<String, String>);

impl RawVars {
    /// Collects `FLEET_*` pairs (other names are ignored).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            pairs
                .into_iter()
                .filter(|(k, _)| k.as_ref().starts_with("FLEET_"))
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
        )
    }

    /// Applies command-line flags over these values. `extra` lists flag
    /// names (without `--`) that a tool accepts beyond the contract; they are
    /// returned in order with their values.
    pub fn apply_args<S: AsRef<str>>(
        &mut self,
        args: impl IntoIterator<Item = S>,
    ) -> Result<Invocation<Vec<String>>, ConfigError> {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let mut rest = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            match a.as_str() {
                "-h" | "--help" | "help" => return Ok(Invocation::Help),
                "-V" | "--version" => return Ok(Invocation::Version),
                _ => {}
            }
            let Some(flag) = a.strip_prefix("--") else {
                rest.push(a.clone());
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            let Some(var) = flag_var(name) else {
                return Err(ConfigError::UnknownFlag { flag: a.clone() });
            };
            let value = match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(ConfigError::FlagWithoutValue { flag: a.clone() }),
            };
            self.0.insert(var.to_string(), value);
        }
        Ok(Invocation::Run(rest))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// `input`, `fleet-input`, `FLEET_INPUT` and `fleet_input` all name FLEET_INPUT.
fn flag_var(flag: &str) -> Option<&'static str> {
    let norm = flag.to_ascii_uppercase().replace('-', "_");
    let norm = if norm.starts_with("FLEET_") { norm } else { format!("FLEET_{norm}") };
    VARS.iter().map(|v| v.name).find(|n| *n == norm)
}

fn invalid(name: &'static str, value: &str) -> ConfigError {
    ConfigError::Invalid { var: name, value: value.to_string(), form: var(name).form }
}

fn parse_num<T: std::str::FromStr + PartialOrd>(
    raw: &RawVars,
    name: &'static str,
    default: T,
    lo: T,
    hi: T,
) -> Result<T, ConfigError> {
    match raw.get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<T>() {
            Ok(n) if n >= lo && n <= hi => Ok(n),
            _ => Err(invalid(name, v)),
        },
    }
}

/// Parses `134217728`, `128MiB`, `64MB`, `1GiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn default_run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let d = Date::from_days_since_epoch(days);
    format!("run-{:04}{:02}{:02}T{:02}{:02}{:02}Z", d.year, d.month, d.day, rem / 3600, rem / 60 % 60, rem % 60)
}

impl Config {
    /// Reads the process environment and command line. Returns
    /// `Invocation::Help` for `--help`.
    pub fn from_env() -> Result<Invocation<Self>, ConfigError> {
        Self::from_env_and_args(std::env::vars(), std::env::args().skip(1))
    }

    /// Like [`Config::from_env`] with explicit environment and arguments.
    pub fn from_env_and_args<K: AsRef<str>, V: AsRef<str>, S: AsRef<str>>(
        env: impl IntoIterator<Item = (K, V)>,
        args: impl IntoIterator<Item = S>,
    ) -> Result<Invocation<Self>, ConfigError> {
        let mut raw = RawVars::from_pairs(env);
        match raw.apply_args(args)? {
            Invocation::Help => Ok(Invocation::Help),
            Invocation::Version => Ok(Invocation::Version),
            Invocation::Run(rest) => {
                if let Some(extra) = rest.first() {
                    return Err(ConfigError::UnknownFlag { flag: extra.clone() });
                }
                Self::validate(&raw).map(Invocation::Run)
            }
        }
    }

    /// Validates a map of `FLEET_*` values; tests pass a map instead of
    /// touching the process environment.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        Self::validate(&RawVars::from_pairs(vars))
    }

    /// Parse-then-validate of every variable.
    pub fn validate(raw: &RawVars) -> Result<Self, ConfigError> {
        use vars::*;
        let required = |name: &'static str| {
            raw.get(name).map(str::to_string).ok_or(ConfigError::Missing { var: name, form: var(name).form })
        };
        let input = required(INPUT)?;
        let output = required(OUTPUT)?;
        for (name, v) in [(INPUT, &input), (OUTPUT, &output)] {
            if v.split('/').any(|seg| seg == "..") {
                return Err(invalid(name, v));
            }
        }
        let norm = |u: &str| u.trim_end_matches('/').to_string() + "/";
        if input.ends_with('/') && norm(&output).starts_with(&norm(&input)) {
            return Err(ConfigError::OutputInsideInput { input, output });
        }
        let count: u32 = parse_num(raw, SHARD_COUNT, 1, 1, 100_000)?;
        let index: u32 = parse_num(raw, SHARD_INDEX, 0, 0, u32::MAX)?;
        if index >= count {
            return Err(ConfigError::Relation {
                var: SHARD_INDEX,
                value: index.to_string(),
                other: SHARD_COUNT,
                other_value: count.to_string(),
            });
        }
        let run_id = match raw.get(RUN_ID) {
            None => default_run_id(),
            Some(v) => {
                let ok = v.len() <= 128
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                    && v != "."
                    && v != "..";
                if !ok {
                    return Err(invalid(RUN_ID, v));
                }
                v.to_string()
            }
        };
        let threads = parse_num(raw, THREADS, available_cpus(), 1, 1024)?;
        let spec = match raw.get(SPEC) {
            None => SpecSource::Builtin("predict-age".into()),
            Some(v) => match v.strip_prefix("builtin:") {
                Some(name @ ("predict-age" | "json-resume")) => SpecSource::Builtin(name.to_string()),
                Some(_) => return Err(invalid(SPEC, v)),
                None => SpecSource::Uri(v.to_string()),
            },
        };
        let reference_date = match raw.get(REFERENCE_DATE) {
            None => Date { year: 2025, month: 7, day: 1 },
            Some(v) => v.trim().parse().map_err(|_| invalid(REFERENCE_DATE, v))?,
        };
        let max_reject_ratio: f64 = parse_num(raw, MAX_REJECT_RATIO, 0.01, 0.0, 1.0)?;
        let partition = match raw.get(PARTITION) {
            None => Partition(vec![("dt".into(), reference_date.to_string())]),
            Some(v) => Partition::parse(v).ok_or_else(|| invalid(PARTITION, v))?,
        };
        let input_format = match raw.get(INPUT_FORMAT).map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("auto") => InputFormat::Auto,
            Some("parquet") => InputFormat::Parquet,
            Some("ndjson" | "jsonl" | "json") => InputFormat::Ndjson,
            Some(_) => return Err(invalid(INPUT_FORMAT, raw.get(INPUT_FORMAT).unwrap_or_default())),
        };
        let batch_rows = parse_num(raw, BATCH_ROWS, 8192, 1, 1 << 20)?;
        let row_group_bytes = match raw.get(ROW_GROUP_BYTES) {
            None => 128 << 20,
            Some(v) => parse_size(v).filter(|n| *n >= 1 << 10).ok_or_else(|| invalid(ROW_GROUP_BYTES, v))?,
        };
        let compression = match raw.get(COMPRESSION) {
            None => Compression::Zstd(3),
            Some(v) => parse_compression(v).ok_or_else(|| invalid(COMPRESSION, v))?,
        };
        let glue = GlueTarget::from_vars(raw, &output)?;
        let log_format = match raw.get(LOG_FORMAT).map(str::trim) {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(v) => return Err(invalid(LOG_FORMAT, v)),
        };
        let progress_seconds = parse_num(raw, PROGRESS_SECONDS, 5, 1, 3600)?;
        let task_vcpu = parse_num(raw, TASK_VCPU, threads as f64, 0.25, 192.0)?;
        let task_memory_gib = parse_num(raw, TASK_MEMORY_GIB, (task_vcpu * 2.0).max(0.5), 0.5, 1024.0)?;
        Ok(Config {
            input,
            output,
            shard: Shard { index, count },
            run_id,
            threads,
            spec,
            reference_date,
            max_reject_ratio,
            partition,
            input_format,
            batch_rows,
            row_group_bytes,
            compression,
            glue,
            log_format,
            progress_seconds,
            task_vcpu,
            task_memory_gib,
        })
    }
}

fn parse_compression(v: &str) -> Option<Compression> {
    let v = v.trim().to_ascii_lowercase();
    Some(match v.as_str() {
        "none" | "uncompressed" => Compression::None,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd(3),
        _ => {
            let level: i32 = v.strip_prefix("zstd(")?.strip_suffix(')')?.parse().ok()?;
            if !(1..=22).contains(&level) {
                return None;
            }
            Compression::Zstd(level)
        }
    })
}

/// The `--help` text of a worker: its purpose, then every variable.
pub fn help(binary: &str, about: &str) -> String {
    let mut s = format!(
        "{binary}: {about}\n\nUsage: {binary} [--flag value ...]\n\nEvery setting is an environment variable; each is also a flag\n(FLEET_INPUT = --input = --fleet-input = --FLEET_INPUT). Flags win.\nExit codes: 0 done, 1 failed, 2 bad configuration, 3 reject threshold exceeded, 143 stopped by SIGTERM.\n\n"
    );
    for v in VARS {
        let flag = v.name.trim_start_matches("FLEET_").to_ascii_lowercase().replace('_', "-");
        s.push_str(&format!("  {} (--{flag})\n      {}\n      expected: {}\n", v.name, v.help, v.form));
        match v.default {
            Some(d) => s.push_str(&format!("      default: {d}\n")),
            None => s.push_str("      required\n"),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("FLEET_INPUT", "file:///in/"), ("FLEET_OUTPUT", "file:///out/features/")]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut v = base();
        v.extend_from_slice(extra);
        Config::from_vars(v)
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.shard, Shard { index: 0, count: 1 });
        assert_eq!(c.spec, SpecSource::Builtin("predict-age".into()));
        assert_eq!(c.reference_date.to_string(), "2025-07-01");
        assert_eq!(c.max_reject_ratio, 0.01);
        assert_eq!(c.partition.path(), "dt=2025-07-01");
        assert_eq!(c.compression, Compression::Zstd(3));
        assert_eq!(c.glue.table, "features");
        assert!(!c.glue.register);
        assert_eq!(c.threads, available_cpus());
        assert!(c.run_id.starts_with("run-2"), "{}", c.run_id);
        assert_eq!(c.batch_rows, 8192);
        assert_eq!(c.row_group_bytes, 128 << 20);
    }

    #[test]
    fn missing_and_invalid_values_name_the_variable_and_the_form() {
        let e = Config::from_vars([("FLEET_OUTPUT", "x")]).unwrap_err();
        assert_eq!(e.to_string(), format!("FLEET_INPUT is required: expected {}", var("FLEET_INPUT").form));
        let cases = [
            ("FLEET_SHARD_COUNT", "0"),
            ("FLEET_SHARD_COUNT", "many"),
            ("FLEET_SHARD_INDEX", "-1"),
            ("FLEET_THREADS", "0"),
            ("FLEET_REFERENCE_DATE", "2025-02-30"),
            ("FLEET_REFERENCE_DATE", "2025-7-1"),
            ("FLEET_MAX_REJECT_RATIO", "1.5"),
            ("FLEET_MAX_REJECT_RATIO", "NaN"),
            ("FLEET_PARTITION", "dt=../x"),
            ("FLEET_PARTITION", "DT=1"),
            ("FLEET_PARTITION", "dt"),
            ("FLEET_RUN_ID", "a/b"),
            ("FLEET_SPEC", "builtin:nope"),
            ("FLEET_COMPRESSION", "zstd(30)"),
            ("FLEET_ROW_GROUP_BYTES", "12 parsecs"),
            ("FLEET_LOG_FORMAT", "xml"),
        ];
        for (k, v) in cases {
            let e = with(&[(k, v)]).unwrap_err();
            assert_eq!(e, ConfigError::Invalid { var: var(k).name, value: v.into(), form: var(k).form }, "{k}={v}");
            assert!(e.to_string().starts_with(&format!("{k}={v:?} is invalid: expected ")), "{e}");
        }
        let e = with(&[("FLEET_SHARD_INDEX", "7"), ("FLEET_SHARD_COUNT", "4")]).unwrap_err();
        assert_eq!(e.to_string(), "FLEET_SHARD_INDEX=7 must be less than FLEET_SHARD_COUNT=4");
        let e =
            Config::from_vars([("FLEET_INPUT", "s3://b/raw/"), ("FLEET_OUTPUT", "s3://b/raw/features")]).unwrap_err();
        assert!(matches!(e, ConfigError::OutputInsideInput { .. }), "{e}");
        assert!(Config::from_vars([("FLEET_INPUT", "s3://b/raw/"), ("FLEET_OUTPUT", "s3://b/raw-features/")]).is_ok());
        let e = Config::from_vars([("FLEET_INPUT", "file:///a/../b"), ("FLEET_OUTPUT", "x")]).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { var: "FLEET_INPUT", .. }));
    }

    #[test]
    fn values_parse() {
        let c = with(&[
            ("FLEET_PARTITION", "year=2025/month=07"),
            ("FLEET_SPEC", "s3://b/specs/x.spec"),
            ("FLEET_COMPRESSION", "zstd(9)"),
            ("FLEET_ROW_GROUP_BYTES", "64MiB"),
            ("FLEET_THREADS", "3"),
            ("FLEET_GLUE_TABLE", "predict_age_features"),
        ])
        .unwrap();
        assert_eq!(c.partition.path(), "year=2025/month=07");
        assert_eq!(c.spec, SpecSource::Uri("s3://b/specs/x.spec".into()));
        assert_eq!(c.compression, Compression::Zstd(9));
        assert_eq!(c.row_group_bytes, 64 << 20);
        assert_eq!(c.threads, 3);
        assert_eq!(c.task_vcpu, 3.0);
        assert_eq!(c.task_memory_gib, 6.0);
    }

    #[test]
    fn flags_override_the_environment_in_every_spelling() {
        let env = base().into_iter().chain([("FLEET_SHARD_COUNT", "4"), ("HOME", "/root")]);
        let args = ["--shard-index", "2", "--FLEET_RUN_ID=r1", "--fleet-threads=2", "--input=file:///flag/"];
        let Invocation::Run(c) = Config::from_env_and_args(env, args).unwrap() else { panic!() };
        assert_eq!((c.shard.index, c.shard.count, c.run_id.as_str(), c.threads), (2, 4, "r1", 2));
        assert_eq!(c.input, "file:///flag/");
        assert!(matches!(Config::from_env_and_args(base(), ["--help"]).unwrap(), Invocation::Help));
        assert_eq!(
            Config::from_env_and_args(base(), ["--nope=1"]).unwrap_err(),
            ConfigError::UnknownFlag { flag: "--nope=1".into() }
        );
        assert_eq!(
            Config::from_env_and_args(base(), ["--threads"]).unwrap_err(),
            ConfigError::FlagWithoutValue { flag: "--threads".into() }
        );
    }

    #[test]
    fn epoch_days() {
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days_since_epoch(20_270).to_string(), "2025-07-01");
        assert_eq!(Date::from_days_since_epoch(-1).to_string(), "1969-12-31");
        assert_eq!(Date::from_days_since_epoch(11_016).to_string(), "2000-02-29");
        for days in [-800_000, -1, 0, 11_016, 20_270, 2_932_896] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
    }

    #[test]
    fn shards_split_round_robin() {
        let s = Shard { index: 1, count: 3 };
        assert_eq!((0..10).filter(|i| s.owns(*i)).collect::<Vec<_>>(), [1, 4, 7]);
        assert_eq!(s.name(), "shard-00001-of-00003");
    }

    #[test]
    fn help_lists_every_variable() {
        let h = help("feature-parser", "parse JSON");
        for v in VARS {
            assert!(h.contains(v.name), "{}", v.name);
        }
        assert!(h.contains("--shard-index"));
    }
}
