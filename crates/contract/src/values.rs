//! The validated values of the contract: shards, dates, partitions and the
//! small enums settings parse into.

use std::fmt;

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

    /// The shard a [`Shard::name`] names (`shard-00007-of-00050` → 7 of 50),
    /// `None` for any other text.
    pub fn from_name(name: &str) -> Option<Shard> {
        let (i, n) = name.strip_prefix("shard-")?.split_once("-of-")?;
        let (index, count) = (i.parse().ok()?, n.parse().ok()?);
        (index < count).then_some(Shard { index, count })
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition(pub Vec<(String, String)>);

impl Partition {
    /// `dt=<date>`, the default partition of a run evaluated at `date`.
    pub fn date(date: Date) -> Self {
        Partition(vec![("dt".into(), date.to_string())])
    }
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
    /// The partition of an object from the `key=value` folders of its path
    /// below a table location (`dt=2025-07-01/part-1.parquet` → `dt=2025-07-01`);
    /// `None` when the path has no such folder or one is not Hive-safe.
    pub fn of_path(rel: &str) -> Option<Self> {
        let (folders, _file) = rel.trim_start_matches('/').rsplit_once('/')?;
        let parts: Vec<&str> = folders.split('/').filter(|seg| seg.contains('=')).collect();
        Partition::parse(&parts.join("/"))
    }
}

/// Where a feature spec comes from.
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

impl Compression {
    /// The name Glue and Hive use (`parquet.compression`).
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "UNCOMPRESSED",
            Compression::Snappy => "SNAPPY",
            Compression::Lz4 => "LZ4",
            Compression::Gzip => "GZIP",
            Compression::Zstd(_) => "ZSTD",
        }
    }

    /// `zstd`, `zstd(9)`, `snappy`, `lz4`, `gzip`, `none`.
    pub fn parse(v: &str) -> Option<Compression> {
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
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

/// The CPUs this process may use: `available_parallelism` reads the
/// affinity mask and the cgroup v1/v2 CPU quota on Linux.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Shard::from_name(&s.name()), Some(s));
        assert_eq!(Shard::from_name("shard-00050-of-00050"), None);
        assert_eq!(Shard::from_name("shard-1-of-2.tmp"), None);
        assert_eq!(Shard::from_name("notes"), None);
    }

    #[test]
    fn partitions_of_paths() {
        assert_eq!(Partition::of_path("dt=2025-07-01/a.parquet").unwrap().path(), "dt=2025-07-01");
        assert_eq!(Partition::of_path("x/year=2025/month=07/a.parquet").unwrap().path(), "year=2025/month=07");
        assert_eq!(Partition::of_path("a.parquet"), None);
        assert_eq!(Partition::of_path("raw/a.parquet"), None);
        assert_eq!(Partition::date(Date { year: 2025, month: 7, day: 1 }).path(), "dt=2025-07-01");
    }

    #[test]
    fn compression_names() {
        assert_eq!(Compression::parse("ZSTD(9)"), Some(Compression::Zstd(9)));
        assert_eq!(Compression::parse("zstd(30)"), None);
        assert_eq!(Compression::parse("lz4").map(|c| c.name()), Some("LZ4"));
    }
}
