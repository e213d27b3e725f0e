//! ndjson-converter's settings: each a `FLEET_*` variable and a flag,
//! parsed and validated here.

use fleet_contract::{
    Cli, Common, ConfigError, Date, Partition, RejectArgs, Rejects, Table, TableArgs, boolean, given, number,
    parse_size, required,
};

pub mod vars {
    use fleet_contract::Var;

    pub const SCHEMA: Var = Var {
        name: "FLEET_SCHEMA",
        form: "a JSON list of Glue columns [{\"Name\": ..., \"Type\": ...}], inline or in a file (a path or URI); types boolean, int, bigint, float, double, decimal(p,s), string, json, array<...>, struct<...>",
        default: Some("inferred over every line of the whole input"),
        help: "The output columns; a line that does not fit them is quarantined",
    };
    pub const ALL_STRINGS: Var = Var {
        name: "FLEET_ALL_STRINGS",
        form: "true or false",
        default: Some("false"),
        help: "Write every top-level column as a string (numbers as written, objects and arrays as JSON text), as the Glue job casting to string did",
    };
    pub const TARGET_FILE_BYTES: Var = Var {
        name: "FLEET_TARGET_FILE_BYTES",
        form: "a size in bytes, e.g. 134217728 or 128MiB, at least 1MiB",
        default: Some("128MiB"),
        help: "About the size of an output file",
    };
    pub const PROCESSING_TIME: Var = Var {
        name: "FLEET_PROCESSING_TIME",
        form: "a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
        default: Some("the time in FLEET_RUN_ID (run-YYYYMMDDTHHMMSSZ, the default run id)"),
        help: "The value of the _processing_timestamp column, one per run so that a retry writes the same rows",
    };
}

use vars::*;

/// ndjson-converter's settings besides the common ones.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Conversion")]
pub struct Args {
    #[arg(long, env = fleet_contract::vars::INPUT.name, value_name = "URI", help = fleet_contract::vars::INPUT.help, long_help = fleet_contract::vars::INPUT.long_help())]
    pub input: Option<String>,
    #[arg(long, env = fleet_contract::vars::BATCH_ROWS.name, value_name = "ROWS", help = fleet_contract::vars::BATCH_ROWS.help, long_help = fleet_contract::vars::BATCH_ROWS.long_help())]
    pub batch_rows: Option<String>,
    #[arg(long, env = SCHEMA.name, value_name = "SCHEMA", help = SCHEMA.help, long_help = SCHEMA.long_help())]
    pub schema: Option<String>,
    #[arg(long, env = ALL_STRINGS.name, value_name = "BOOL", help = ALL_STRINGS.help, long_help = ALL_STRINGS.long_help())]
    pub all_strings: Option<String>,
    #[arg(long, env = TARGET_FILE_BYTES.name, value_name = "SIZE", help = TARGET_FILE_BYTES.help, long_help = TARGET_FILE_BYTES.long_help())]
    pub target_file_bytes: Option<String>,
    #[arg(long, env = PROCESSING_TIME.name, value_name = "TIME", help = PROCESSING_TIME.help, long_help = PROCESSING_TIME.long_help())]
    pub processing_time: Option<String>,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub rejects: RejectArgs,
}

/// Where the columns come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// Inferred over every line of the input.
    Infer,
    /// The text of a schema file, given inline.
    Inline(String),
    /// A path or URI of a schema file.
    Uri(String),
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

/// What a run converts, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub input: String,
    pub batch_rows: usize,
    /// About the bytes of lines per batch.
    pub batch_bytes: usize,
    pub schema: SchemaSource,
    pub all_strings: bool,
    pub target_bytes: u64,
    /// `_processing_timestamp`, microseconds since the epoch (UTC).
    pub processing_time_us: i64,
    pub table: Table,
    pub rejects: Rejects,
}

impl Config {
    pub fn validate(cli: Cli<Args>) -> Result<Config, ConfigError> {
        let common = cli.common.validate()?;
        let a = cli.own;
        let input = required(&a.input, &fleet_contract::vars::INPUT)?.to_string();
        let norm = |u: &str| u.trim_end_matches('/').to_string() + "/";
        if input.ends_with('/') && norm(&common.output).starts_with(&norm(&input)) {
            return Err(ConfigError::OutputInsideInput { input, output: common.output.clone() });
        }
        let batch_rows = number(&a.batch_rows, &fleet_contract::vars::BATCH_ROWS, 8192, 1, 1 << 20)?;
        let schema = match given(&a.schema) {
            None => SchemaSource::Infer,
            Some(s) if s.trim_start().starts_with('[') => SchemaSource::Inline(s.to_string()),
            Some(s) => SchemaSource::Uri(s.to_string()),
        };
        let all_strings = boolean(&a.all_strings, &ALL_STRINGS, false)?;
        let target_bytes = match given(&a.target_file_bytes) {
            None => 128 << 20,
            Some(v) => parse_size(v).filter(|n| *n >= 1 << 20).ok_or_else(|| TARGET_FILE_BYTES.invalid(v))?,
        };
        let processing_time_us = match given(&a.processing_time) {
            Some(t) => parse_utc(t).ok_or_else(|| PROCESSING_TIME.invalid(t))?,
            None => run_id_time(&common.run_id).ok_or(ConfigError::Missing {
                var: PROCESSING_TIME.name,
                form: "a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z (FLEET_RUN_ID holds no time to take it from)",
            })?,
        };
        // the UTC day of the processing time, unless asked otherwise
        let day = Date::from_days_since_epoch(processing_time_us.div_euclid(86_400_000_000));
        let table = a.table.validate(&common, Partition(vec![("dt".into(), day.to_string())]))?;
        let rejects = a.rejects.validate()?;
        Ok(Config {
            common,
            settings: Settings {
                input,
                batch_rows,
                batch_bytes: 4 << 20,
                schema,
                all_strings,
                target_bytes,
                processing_time_us,
                table,
                rejects,
            },
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` (or `+00:00`) as microseconds since the epoch.
pub fn parse_utc(t: &str) -> Option<i64> {
    let t = t.trim();
    let t = t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00"))?;
    let (date, time) = t.split_once(['T', ' '])?;
    let d: Date = date.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut p = hms.split(':').map(|x| (x.len() == 2).then(|| x.parse::<i64>().ok()).flatten());
    let (h, m, s) = (p.next()??, p.next()??, p.next()??);
    if p.next().is_some() || h > 23 || m > 59 || s > 60 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = if frac.is_empty() { 0 } else { frac.parse::<i64>().ok()? * 10i64.pow(6 - frac.len() as u32) };
    Some(((d.days_since_epoch() * 86_400 + h * 3600 + m * 60 + s) * 1_000_000) + micros)
}

/// The time in a run id holding `YYYYMMDDTHHMMSSZ` (`run-20261204T082235Z`).
pub fn run_id_time(run_id: &str) -> Option<i64> {
    let b = run_id.as_bytes();
    (0..b.len().saturating_sub(15)).find_map(|i| {
        let w = &b[i..i + 16];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        if !(digits(0..8) && w[8] == b'T' && digits(9..15) && w[15] == b'Z') {
            return None;
        }
        let s = std::str::from_utf8(w).ok()?;
        parse_utc(&format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_utc("1970-01-02T00:00:01Z"), Some(86_401_000_000));
        assert_eq!(parse_utc("1970-01-01T00:00:00.25Z"), Some(250_000));
        assert_eq!(parse_utc("2026-12-04T08:22:35+00:00"), run_id_time("run-20261204T082235Z"));
        assert_eq!(parse_utc("2026-12-04T08:22:35"), None);
        assert_eq!(run_id_time("nightly-7"), None);
    }
}
