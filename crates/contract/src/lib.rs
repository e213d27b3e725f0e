//! The shard contract: the one place where the workers' settings are named,
//! documented, parsed and validated.
//!
//! Workers are configured by `FLEET_*` environment variables so that
//! `aws ecs run-task --overrides`, a Step Functions Map item and
//! `docker run -e` all work the same; each variable is also a command-line
//! flag (`--input`, `--fleet-input` or `--FLEET_INPUT`), and a flag wins over
//! the environment. clap parses both ([`Cli`]); the settings come in groups
//! that a worker composes ([`CommonArgs`] for every worker, then
//! [`InputArgs`], [`TableArgs`], [`RejectArgs`], [`SpecArgs`] as it needs),
//! each validated into the type workers take ([`Common`], [`Input`], ...).
//!
//! ```
//! use fleet_contract::{Cli, InputArgs};
//! let cli = Cli::<InputArgs>::from_vars([
//!     ("FLEET_INPUT", "file:///data/raw/"),
//!     ("FLEET_OUTPUT", "file:///data/features/"),
//!     ("FLEET_SHARD_INDEX", "3"),
//!     ("FLEET_SHARD_COUNT", "8"),
//! ]).unwrap();
//! let common = cli.common.validate().unwrap();
//! assert_eq!((common.shard.index, common.shard.count), (3, 8));
//! assert_eq!(cli.own.validate(&common).unwrap().batch_rows, 8192);
//!
//! let cli = Cli::<InputArgs>::from_vars([("FLEET_OUTPUT", "y"), ("FLEET_SHARD_INDEX", "7"), ("FLEET_SHARD_COUNT", "4")]).unwrap();
//! let err = cli.common.validate().unwrap_err();
//! assert_eq!(err.to_string(), "FLEET_SHARD_INDEX=7 must be less than FLEET_SHARD_COUNT=4");
//! ```

mod args;
mod reject;
mod values;

pub use args::{
    Common, CommonArgs, Input, InputArgs, RejectArgs, Rejects, SpecArgs, SpecSettings, SpecShard, SpecShardArgs, Table,
    TableArgs, TableFileArgs, boolean, given, glue_target, number, required,
};
pub use reject::{REJECT_PREFIX_BYTES, Reject};
pub use values::{
    Compression, Date, GlueTarget, InputFormat, LogFormat, Partition, Shard, SpecSource, available_cpus, days_in_month,
    parse_size,
};

/// One documented variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The expected form, as shown in errors and `--help`.
    pub form: &'static str,
    /// The default, or `None` when the variable is required.
    pub default: Option<&'static str>,
    /// One line for `-h`.
    pub help: &'static str,
}

impl Var {
    /// The `--help` text: the line, the expected form and the default.
    pub fn long_help(&self) -> String {
        let default = match self.default {
            Some(d) => format!("[default: {d}]"),
            None => "[required]".to_string(),
        };
        format!("{}.\nExpected: {}.\n{default}", self.help, self.form)
    }

    /// The error for a value that is not of the expected form.
    pub fn invalid(&self, value: &str) -> ConfigError {
        ConfigError::Invalid { var: self.name, value: value.to_string(), form: self.form }
    }
}

/// The variables of the contract, each with its form, default and help.
pub mod vars {
    use super::Var;

    pub const INPUT: Var = Var {
        name: "FLEET_INPUT",
        form: "a URI: a prefix ending in '/', one object, or a manifest (*.manifest or *.manifest.json)",
        default: None,
        help: "Input: file:///path/, s3://bucket/prefix/ or memory:///path/",
    };
    pub const OUTPUT: Var = Var {
        name: "FLEET_OUTPUT",
        form: "a URI of the table location (file:///path/ or s3://bucket/prefix/)",
        default: None,
        help: "Table location; data goes under its Hive partition, bookkeeping under _runs/, _rejects/ and <partition>/_commits/",
    };
    pub const SHARD_INDEX: Var = Var {
        name: "FLEET_SHARD_INDEX",
        form: "an integer from 0 to FLEET_SHARD_COUNT - 1",
        default: Some("0"),
        help: "Which shard this task is; input objects sorted by key go to shard (i mod count)",
    };
    pub const SHARD_COUNT: Var = Var {
        name: "FLEET_SHARD_COUNT",
        form: "an integer from 1 to 100000",
        default: Some("1"),
        help: "How many shards the input is split into",
    };
    pub const RUN_ID: Var = Var {
        name: "FLEET_RUN_ID",
        form: "1-128 characters of A-Z a-z 0-9 . _ -",
        default: Some("run-<UTC time of start>"),
        help: "Names this run's summaries under _runs/<run id>/",
    };
    pub const THREADS: Var = Var {
        name: "FLEET_THREADS",
        form: "an integer from 1 to 1024",
        default: Some("the CPUs this container may use (cgroup quota included)"),
        help: "Worker threads",
    };
    pub const SPEC: Var = Var {
        name: "FLEET_SPEC",
        form: "builtin:predict-age, builtin:json-resume, or a path/URI of a spec file",
        default: Some("builtin:predict-age"),
        help: "Feature spec",
    };
    pub const REFERENCE_DATE: Var = Var {
        name: "FLEET_REFERENCE_DATE",
        form: "a date YYYY-MM-DD",
        default: Some("2025-07-01"),
        help: "Date R at which features are evaluated (never the wall clock)",
    };
    pub const MAX_REJECT_RATIO: Var = Var {
        name: "FLEET_MAX_REJECT_RATIO",
        form: "a number from 0 to 1",
        default: Some("0.01"),
        help: "The run fails (exit 3, after writing) when the share of rows with a rejected cell is greater",
    };
    pub const PARTITION: Var = Var {
        name: "FLEET_PARTITION",
        form: "key=value[/key=value...], keys of a-z 0-9 _",
        default: Some("dt=<FLEET_REFERENCE_DATE>"),
        help: "Hive partition the output goes to",
    };
    pub const INPUT_FORMAT: Var = Var {
        name: "FLEET_INPUT_FORMAT",
        form: "auto, parquet or ndjson",
        default: Some("auto"),
        help: "Input format; auto decides by file name (.parquet, .json, .jsonl, .ndjson)",
    };
    pub const BATCH_ROWS: Var = Var {
        name: "FLEET_BATCH_ROWS",
        form: "an integer from 1 to 1048576",
        default: Some("8192"),
        help: "Rows per batch read and processed; bounds memory",
    };
    pub const ROW_GROUP_BYTES: Var = Var {
        name: "FLEET_ROW_GROUP_BYTES",
        form: "a size in bytes, e.g. 134217728 or 128MiB",
        default: Some("128MiB"),
        help: "Target uncompressed size of an output row group",
    };
    pub const COMPRESSION: Var = Var {
        name: "FLEET_COMPRESSION",
        form: "zstd, zstd(1-22), snappy, lz4, gzip or none",
        default: Some("zstd(3)"),
        help: "Parquet compression of the output",
    };
    pub const GLUE_DATABASE: Var = Var {
        name: "FLEET_GLUE_DATABASE",
        form: "a Glue database name (a-z 0-9 _)",
        default: Some("fleet, local catalog only"),
        help: "Glue database. When this or FLEET_GLUE_TABLE is set, `fleetctl run` and \
               `fleetctl catalog sync` create the table and register committed partitions in Glue; \
               otherwise _runs/<run>/table_input.json is the catalog",
    };
    pub const GLUE_TABLE: Var = Var {
        name: "FLEET_GLUE_TABLE",
        form: "a Glue table name (a-z 0-9 _)",
        default: Some("the last segment of FLEET_OUTPUT"),
        help: "Glue table (see FLEET_GLUE_DATABASE)",
    };
    pub const GLUE_PARTITION_PROJECTION: Var = Var {
        name: "FLEET_GLUE_PARTITION_PROJECTION",
        form: "true or false",
        default: Some("false"),
        help: "Use Athena partition projection (table properties) instead of registering partitions",
    };
    pub const LOG_FORMAT: Var = Var {
        name: "FLEET_LOG_FORMAT",
        form: "auto, json or text",
        default: Some("auto"),
        help: "Logs: JSON when stdout is not a terminal, text when it is",
    };
    pub const PROGRESS_SECONDS: Var = Var {
        name: "FLEET_PROGRESS_SECONDS",
        form: "an integer from 1 to 3600",
        default: Some("5"),
        help: "Seconds between progress lines",
    };
    pub const TASK_VCPU: Var = Var {
        name: "FLEET_TASK_VCPU",
        form: "a number of vCPUs, e.g. 4",
        default: Some("FLEET_THREADS"),
        help: "vCPUs billed, for the Fargate cost estimate",
    };
    pub const TASK_MEMORY_GIB: Var = Var {
        name: "FLEET_TASK_MEMORY_GIB",
        form: "a number of GiB, e.g. 8",
        default: Some("2 GiB per vCPU"),
        help: "Memory billed, for the Fargate cost estimate",
    };
}

/// Every variable of the contract.
pub const VARS: &[Var] = &[
    vars::INPUT,
    vars::OUTPUT,
    vars::SHARD_INDEX,
    vars::SHARD_COUNT,
    vars::RUN_ID,
    vars::THREADS,
    vars::SPEC,
    vars::REFERENCE_DATE,
    vars::MAX_REJECT_RATIO,
    vars::PARTITION,
    vars::INPUT_FORMAT,
    vars::BATCH_ROWS,
    vars::ROW_GROUP_BYTES,
    vars::COMPRESSION,
    vars::GLUE_DATABASE,
    vars::GLUE_TABLE,
    vars::GLUE_PARTITION_PROJECTION,
    vars::LOG_FORMAT,
    vars::PROGRESS_SECONDS,
    vars::TASK_VCPU,
    vars::TASK_MEMORY_GIB,
];

/// What is wrong with the configuration. A worker exits with code 2.
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
    /// Settings this build cannot honour.
    #[error("{what} are set, but {reason}")]
    Unsupported { what: &'static str, reason: &'static str },
    /// The command line could not be parsed (clap's message).
    #[error("{0}")]
    CommandLine(String),
}

impl ConfigError {
    /// The exit code a worker uses for a configuration error.
    pub const EXIT_CODE: u8 = 2;
}

/// A worker's command line: the settings every worker takes and its own
/// (`A`, a group or several flattened).
#[derive(Debug, Clone, clap::Parser)]
#[command(version)]
pub struct Cli<A: clap::Args> {
    // the worker's own settings first in --help: its input comes before the shard
    #[command(flatten)]
    pub own: A,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl<A: clap::Args + clap::FromArgMatches> Cli<A> {
    /// The command line of the worker `name`: every `FLEET_*` setting as a
    /// flag (also `--fleet-<flag>` and `--FLEET_<VAR>`), the environment
    /// read for those not given, a flag given twice taking the last value.
    pub fn command_for(name: &'static str, about: &'static str) -> clap::Command {
        fleet_flags(<Self as clap::CommandFactory>::command().name(name).about(about))
    }

    /// Parses matches of [`Cli::command_for`].
    pub fn from_matches(m: &clap::ArgMatches) -> Result<Self, ConfigError> {
        <Self as clap::FromArgMatches>::from_arg_matches(m).map_err(|e| ConfigError::CommandLine(e.to_string()))
    }

    /// The settings from `FLEET_*` pairs alone, the process environment
    /// left out (tests pass a map; other names are ignored, blank values
    /// count as not set).
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let all = Self::command_for("worker", "");
        let mut args = vec!["worker".to_string()];
        for (k, v) in vars {
            let arg = all.get_arguments().find(|a| a.get_env().is_some_and(|e| e == k.as_ref()));
            if let Some(long) = arg.and_then(|a| a.get_long()) {
                args.push(format!("--{long}={}", v.as_ref()));
            }
        }
        let cmd = all.mut_args(|a| a.env(None::<&str>));
        let m = cmd.try_get_matches_from(args).map_err(|e| ConfigError::CommandLine(e.to_string()))?;
        Self::from_matches(&m)
    }
}

/// Gives every argument with a `FLEET_*` variable the two other spellings
/// of its flag (`--fleet-input`, `--FLEET_INPUT`, both hidden) and hides the
/// variables' current values from `--help`; a flag given twice takes the
/// last value (how `fleetctl run` passes values on).
pub fn fleet_flags(cmd: clap::Command) -> clap::Command {
    cmd.args_override_self(true).mut_args(|a| {
        let Some(env) = a.get_env().and_then(|e| e.to_str()).filter(|e| e.starts_with("FLEET_")).map(str::to_string)
        else {
            return a;
        };
        let long = a.get_long().unwrap_or_default().to_string();
        a.hide_env_values(true).alias(format!("fleet-{long}")).alias(env)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type All = SpecShardArgs;
    type Validated = SpecShard;

    fn validate(cli: Cli<All>) -> Result<Validated, ConfigError> {
        cli.own.validate(&cli.common)
    }

    fn from_vars(v: &[(&str, &str)]) -> Result<Validated, ConfigError> {
        validate(Cli::<All>::from_vars(v.iter().copied())?)
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("FLEET_INPUT", "file:///in/"), ("FLEET_OUTPUT", "file:///out/features/")]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Validated, ConfigError> {
        let mut v = base();
        v.extend_from_slice(extra);
        from_vars(&v)
    }

    fn var(name: &str) -> &'static Var {
        VARS.iter().find(|v| v.name == name).unwrap()
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.common.shard, Shard { index: 0, count: 1 });
        assert_eq!(c.spec.spec, SpecSource::Builtin("predict-age".into()));
        assert_eq!(c.spec.reference_date.to_string(), "2025-07-01");
        assert_eq!(c.rejects.max_ratio, 0.01);
        assert_eq!(c.table.partition.path(), "dt=2025-07-01");
        assert_eq!(c.table.compression, Compression::Zstd(3));
        assert_eq!(c.table.glue.table, "features");
        assert!(!c.table.glue.register);
        assert_eq!(c.common.threads, available_cpus());
        assert!(c.common.run_id.starts_with("run-2"), "{}", c.common.run_id);
        assert_eq!(c.input.batch_rows, 8192);
        assert_eq!(c.table.row_group_bytes, 128 << 20);
    }

    #[test]
    fn missing_and_invalid_values_name_the_variable_and_the_form() {
        let e = from_vars(&[("FLEET_OUTPUT", "x")]).unwrap_err();
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
        let e = from_vars(&[("FLEET_INPUT", "s3://b/raw/"), ("FLEET_OUTPUT", "s3://b/raw/features")]).unwrap_err();
        assert!(matches!(e, ConfigError::OutputInsideInput { .. }), "{e}");
        assert!(from_vars(&[("FLEET_INPUT", "s3://b/raw/"), ("FLEET_OUTPUT", "s3://b/raw-features/")]).is_ok());
        let e = from_vars(&[("FLEET_INPUT", "file:///a/../b"), ("FLEET_OUTPUT", "x")]).unwrap_err();
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
            ("FLEET_GLUE_PARTITION_PROJECTION", "true"),
        ])
        .unwrap();
        assert_eq!(c.table.partition.path(), "year=2025/month=07");
        assert_eq!(c.spec.spec, SpecSource::Uri("s3://b/specs/x.spec".into()));
        assert_eq!(c.table.compression, Compression::Zstd(9));
        assert_eq!(c.table.row_group_bytes, 64 << 20);
        assert_eq!(c.common.threads, 3);
        assert_eq!(c.common.task_vcpu, 3.0);
        assert_eq!(c.common.task_memory_gib, 6.0);
        assert!(c.table.glue.register && c.table.glue.projection);
        assert_eq!(c.table.glue.table, "predict_age_features");
        // blank counts as not set
        assert_eq!(with(&[("FLEET_THREADS", " ")]).unwrap().common.threads, available_cpus());
    }

    #[test]
    fn flags_in_every_spelling_and_the_last_one_wins() {
        use clap::FromArgMatches;
        let cmd = Cli::<All>::command_for("w", "");
        let args = [
            "w",
            "--input=file:///a/",
            "--output",
            "file:///o/",
            "--shard-count",
            "4",
            "--shard-index",
            "2",
            "--FLEET_RUN_ID=r1",
            "--fleet-threads=2",
            "--input=file:///flag/",
        ];
        let m = cmd.clone().mut_args(|a| a.env(None::<&str>)).try_get_matches_from(args).unwrap();
        let c = validate(Cli::<All>::from_arg_matches(&m).unwrap()).unwrap();
        assert_eq!(
            (c.common.shard.index, c.common.shard.count, c.common.run_id.as_str(), c.common.threads),
            (2, 4, "r1", 2)
        );
        assert_eq!(c.input.uri, "file:///flag/");
        let e = cmd.clone().try_get_matches_from(["w", "--nope=1"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let e = cmd.try_get_matches_from(["w", "--threads"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn help_lists_every_variable_with_its_form() {
        let h = Cli::<All>::command_for("feature-parser", "parse JSON").render_long_help().to_string();
        for v in VARS {
            assert!(h.contains(v.name), "{}: {h}", v.name);
            assert!(h.contains(v.form), "{}: {h}", v.form);
        }
        assert!(h.contains("--shard-index"));
        assert!(!h.contains("--fleet-shard-index"), "the other spellings are hidden");
        // a worker without rejects does not show the threshold
        let h = Cli::<InputArgs>::command_for("w", "").render_long_help().to_string();
        assert!(h.contains("FLEET_INPUT") && !h.contains("FLEET_MAX_REJECT_RATIO"), "{h}");
    }
}
