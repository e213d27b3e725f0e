//! The compactor's settings: each a `FLEET_*` variable and a flag, parsed
//! and validated here.

use fleet_contract::{Cli, Common, ConfigError, Date, Partition, TableFileArgs, given, number, parse_size, required};

use crate::compact::Settings;
use crate::plan::{Mode, PartitionMode};

pub mod vars {
    use fleet_contract::Var;

    /// `FLEET_INPUT`, as the compactor takes it: a table location.
    pub const INPUT: Var = Var {
        name: fleet_contract::vars::INPUT.name,
        form: "a URI of a table location: a prefix ending in '/' with year=/month=/day=[/hour=] or dt=[/hour=] folders",
        default: None,
        help: "The table to compact (s3://bucket/prefix/ or a local folder)",
    };

    pub const COMPACT_MODE: Var = Var {
        name: "FLEET_COMPACT_MODE",
        form: "full, incremental or day",
        default: Some("incremental"),
        help: "Which partitions: all (full), the previous UTC day's (incremental) or FLEET_COMPACT_DAY's (day)",
    };
    pub const COMPACT_DAY: Var = Var {
        name: "FLEET_COMPACT_DAY",
        form: "a date YYYY-MM-DD",
        default: None,
        help: "The day FLEET_COMPACT_MODE=day compacts (required then)",
    };
    pub const PARTITION_MODE: Var = Var {
        name: "FLEET_PARTITION_MODE",
        form: "hour or day",
        default: Some("hour"),
        help: "Compact each hour, or each day's hours together (the hour then becomes a column)",
    };
    pub const TARGET_FILE_BYTES: Var = Var {
        name: "FLEET_TARGET_FILE_BYTES",
        form: "a size in bytes, e.g. 134217728 or 128MiB, at least 1MiB",
        default: Some("128MiB"),
        help: "About the size of an output file; files of at least 90% of it are kept as they are",
    };
}

use vars::*;

/// The compactor's settings besides the common ones.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Compaction")]
pub struct Args {
    #[arg(long, env = INPUT.name, value_name = "URI", help = INPUT.help, long_help = INPUT.long_help())]
    pub input: Option<String>,
    #[arg(long, env = fleet_contract::vars::BATCH_ROWS.name, value_name = "ROWS", help = fleet_contract::vars::BATCH_ROWS.help, long_help = fleet_contract::vars::BATCH_ROWS.long_help())]
    pub batch_rows: Option<String>,
    #[arg(long, env = COMPACT_MODE.name, value_name = "MODE", help = COMPACT_MODE.help, long_help = COMPACT_MODE.long_help())]
    pub compact_mode: Option<String>,
    #[arg(long, env = COMPACT_DAY.name, value_name = "DATE", help = COMPACT_DAY.help, long_help = COMPACT_DAY.long_help())]
    pub compact_day: Option<String>,
    #[arg(long, env = PARTITION_MODE.name, value_name = "MODE", help = PARTITION_MODE.help, long_help = PARTITION_MODE.long_help())]
    pub partition_mode: Option<String>,
    #[arg(long, env = TARGET_FILE_BYTES.name, value_name = "SIZE", help = TARGET_FILE_BYTES.help, long_help = TARGET_FILE_BYTES.long_help())]
    pub target_file_bytes: Option<String>,
    #[command(flatten)]
    pub table: TableFileArgs,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub settings: Settings,
}

impl AsRef<Common> for Config {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

/// The compact prefix beside a table location: `s3://b/features/` →
/// `s3://b/features-compact/`.
pub fn beside(input: &str) -> String {
    format!("{}-compact/", input.trim_end_matches('/'))
}

impl Config {
    /// Validates the settings; `today` is the UTC date incremental mode
    /// counts back from.
    pub fn validate(mut cli: Cli<Args>, today: Date) -> Result<Config, ConfigError> {
        let input = required(&cli.own.input, &INPUT)?.to_string();
        if !input.ends_with('/') {
            return Err(INPUT.invalid(&input));
        }
        if given(&cli.common.output).is_none() {
            cli.common.output = Some(beside(&input));
        }
        let common = cli.common.validate()?;
        let norm = |u: &str| u.trim_end_matches('/').to_string() + "/";
        if norm(&common.output).starts_with(&norm(&input)) {
            return Err(ConfigError::OutputInsideInput { input, output: common.output.clone() });
        }
        let batch_rows = number(&cli.own.batch_rows, &fleet_contract::vars::BATCH_ROWS, 8192, 1, 1 << 20)?;
        // the partitions are the table's own
        let table = cli.own.table.validate(&common, Partition(vec![]))?;
        let day =
            given(&cli.own.compact_day).map(|d| d.parse::<Date>().map_err(|_| COMPACT_DAY.invalid(d))).transpose()?;
        let mode = match given(&cli.own.compact_mode).unwrap_or("incremental") {
            "full" => Mode::Full,
            "incremental" => Mode::Incremental { today },
            "day" => Mode::Day(day.ok_or(ConfigError::Missing { var: COMPACT_DAY.name, form: COMPACT_DAY.form })?),
            other => return Err(COMPACT_MODE.invalid(other)),
        };
        let partition_mode = match given(&cli.own.partition_mode).unwrap_or("hour") {
            "hour" => PartitionMode::Hour,
            "day" => PartitionMode::Day,
            other => return Err(PARTITION_MODE.invalid(other)),
        };
        let target_bytes = match given(&cli.own.target_file_bytes) {
            None => 128 << 20,
            Some(v) => parse_size(v).filter(|n| *n >= 1 << 20).ok_or_else(|| TARGET_FILE_BYTES.invalid(v))?,
        };
        Ok(Config {
            common,
            settings: Settings {
                input,
                mode,
                partition_mode,
                target_bytes,
                near_bytes: target_bytes / 10 * 9,
                batch_rows,
                table,
            },
        })
    }
}

/// Today's date in UTC, from the system clock.
pub fn today_utc() -> Date {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Date::from_days_since_epoch((secs / 86_400) as i64)
}
