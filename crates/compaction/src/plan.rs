//! What a compaction does, decided from a listing alone: each file's place
//! in the table (its date and hour from the partition folders), the units
//! of output (an hour or a day), the units the mode selects, and each
//! unit's files packed into bins of about the target size. Deterministic:
//! the same listing gives the same plan, so a retry writes the same files.

use std::collections::BTreeMap;

use fleet_contract::{Date, Partition};

/// Which partitions a run compacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every partition of the table.
    Full,
    /// The day before `today` (UTC): what a nightly schedule compacts.
    Incremental { today: Date },
    /// One given day.
    Day(Date),
}

/// The partition an output file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionMode {
    /// One unit per hour (`.../hour=HH`), as the table is.
    Hour,
    /// One unit per day: a day's hours compacted together, the `hour` key dropped.
    Day,
}

/// Why a listing cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error(
        "{key}: expected a Parquet file under year=YYYY/month=MM/day=DD[/hour=HH]/ or dt=YYYY-MM-DD[/hour=HH]/ folders"
    )]
    NotPartitioned { key: String },
    #[error("{key}: {what}")]
    BadValue { key: String, what: String },
}

/// A data file of the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceFile {
    /// Its key below the table location (`year=2025/.../part-1.parquet`).
    pub key: String,
    pub bytes: u64,
    /// Its partition, as the folders say.
    pub partition: Partition,
    pub date: Date,
    pub hour: Option<u32>,
}

/// The place of `key` (below the table location) in a date-partitioned
/// table; `Ok(None)` for what is not data (bookkeeping folders `_commits/`,
/// `_runs/`, `_rejects/`, hidden files, anything not `.parquet`).
pub fn source_file(key: &str, bytes: u64) -> Result<Option<SourceFile>, PlanError> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if !name.ends_with(".parquet") || key.split('/').any(|seg| seg.starts_with('_') || seg.starts_with('.')) {
        return Ok(None);
    }
    let not_partitioned = || PlanError::NotPartitioned { key: key.to_string() };
    let partition = Partition::of_path(key).ok_or_else(not_partitioned)?;
    let get = |k: &str| partition.0.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
    let bad = |what: String| PlanError::BadValue { key: key.to_string(), what };
    let number = |k: &str, v: &str, max: u32| -> Result<u32, PlanError> {
        v.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| bad(format!("{k}={v} is not a number up to {max}")))
    };
    let date = match (get("dt"), get("year"), get("month"), get("day")) {
        (Some(dt), None, None, None) => {
            dt.parse::<Date>().map_err(|_| bad(format!("dt={dt} is not a date YYYY-MM-DD")))?
        }
        (None, Some(y), Some(m), Some(d)) => {
            let text = format!("{:0>4}-{:0>2}-{:0>2}", y, m, d);
            text.parse::<Date>().map_err(|_| bad(format!("year={y}/month={m}/day={d} is not a date")))?
        }
        _ => return Err(not_partitioned()),
    };
    let hour = get("hour").map(|h| number("hour", h, 23)).transpose()?;
    Ok(Some(SourceFile { key: key.to_string(), bytes, partition, date, hour }))
}

/// A unit of output: the files of one output partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub partition: Partition,
    pub date: Date,
    /// In key order.
    pub files: Vec<SourceFile>,
}

/// A bin: files rewritten into one output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    pub files: Vec<SourceFile>,
    pub bytes: u64,
}

/// A unit's plan: the bins to rewrite, and the files already near the
/// target size, kept as they are (copied, not rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPlan {
    pub unit: Unit,
    pub bins: Vec<Bin>,
    pub kept: Vec<SourceFile>,
}

/// The output partition of a file: its own with `Hour`; with `Day`, its
/// partition without the `hour` key.
fn output_partition(f: &SourceFile, mode: PartitionMode) -> Partition {
    match mode {
        PartitionMode::Hour => f.partition.clone(),
        PartitionMode::Day => Partition(f.partition.0.iter().filter(|(k, _)| k != "hour").cloned().collect()),
    }
}

/// The units `mode` selects, in partition order, each planned: files of at
/// least `near` bytes are kept, the rest packed into bins of at most
/// `target` bytes (a file larger than the target alone in its bin).
pub fn plan_units(
    files: Vec<SourceFile>,
    partition_mode: PartitionMode,
    mode: Mode,
    target: u64,
    near: u64,
) -> Vec<UnitPlan> {
    let selected = |d: Date| match mode {
        Mode::Full => true,
        Mode::Incremental { today } => d.days_since_epoch() == today.days_since_epoch() - 1,
        Mode::Day(day) => d == day,
    };
    let mut units: BTreeMap<Partition, Unit> = BTreeMap::new();
    for f in files.into_iter().filter(|f| selected(f.date)) {
        let p = output_partition(&f, partition_mode);
        units.entry(p.clone()).or_insert_with(|| Unit { partition: p, date: f.date, files: Vec::new() }).files.push(f);
    }
    units
        .into_values()
        .map(|mut unit| {
            unit.files.sort();
            let (bins, kept) = pack(&unit.files, target, near);
            UnitPlan { unit, bins, kept }
        })
        .collect()
}

/// First-fit decreasing: files of `near` bytes or more are kept; the others,
/// largest first (ties by key), go into the first bin they fit in under
/// `target`, or a new one. Bins are returned in the order opened, each
/// bin's files in key order, so that output names follow the listing.
pub fn pack(files: &[SourceFile], target: u64, near: u64) -> (Vec<Bin>, Vec<SourceFile>) {
    let (mut kept, mut small): (Vec<SourceFile>, Vec<SourceFile>) =
        files.iter().cloned().partition(|f| f.bytes >= near.max(1));
    kept.sort();
    small.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
    let mut bins: Vec<Bin> = Vec::new();
    for f in small {
        match bins.iter_mut().find(|b| b.bytes + f.bytes <= target) {
            Some(b) => {
                b.bytes += f.bytes;
                b.files.push(f);
            }
            None => bins.push(Bin { bytes: f.bytes, files: vec![f] }),
        }
    }
    for b in &mut bins {
        b.files.sort();
    }
    (bins, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn file(key: &str, bytes: u64) -> SourceFile {
        source_file(key, bytes).unwrap().unwrap()
    }

    #[test]
    fn files_are_placed_by_their_partition_folders() {
        let f = file("year=2025/month=07/day=01/hour=13/part-1.parquet", 10);
        assert_eq!((f.date, f.hour), (date("2025-07-01"), Some(13)));
        assert_eq!(f.partition.path(), "year=2025/month=07/day=01/hour=13");
        let f = file("dt=2025-07-01/part-1.parquet", 10);
        assert_eq!((f.date, f.hour), (date("2025-07-01"), None));
        let f = file("dt=2025-07-01/hour=7/x.parquet", 10);
        assert_eq!(f.hour, Some(7));
        // not data: bookkeeping, hidden files, other formats
        for key in [
            "dt=2025-07-01/_commits/shard-00000-of-00001.json",
            "_runs/r1/table_input.json",
            "dt=2025-07-01/.part-1.parquet.tmp",
            "_rejects/dt=2025-07-01/shard.parquet",
            "dt=2025-07-01/part-1.csv",
        ] {
            assert_eq!(source_file(key, 1), Ok(None), "{key}");
        }
        // data outside a date partition is named, not skipped
        for (key, says) in [
            ("part-1.parquet", "expected a Parquet file under year=YYYY"),
            ("region=eu/part-1.parquet", "expected a Parquet file under year=YYYY"),
            ("year=2025/month=02/day=30/p.parquet", "year=2025/month=02/day=30 is not a date"),
            ("dt=2025-07-01/hour=24/p.parquet", "hour=24 is not a number up to 23"),
            ("dt=yesterday/p.parquet", "dt=yesterday is not a date YYYY-MM-DD"),
        ] {
            let e = source_file(key, 1).unwrap_err().to_string();
            assert!(e.starts_with(key) && e.contains(says), "{e}");
        }
    }

    #[test]
    fn first_fit_decreasing_keeps_files_near_the_target_and_splits_none() {
        let files: Vec<SourceFile> = [("a", 60), ("b", 50), ("c", 40), ("d", 30), ("e", 20), ("f", 95), ("g", 130)]
            .iter()
            .map(|(n, b)| file(&format!("dt=2025-07-01/{n}.parquet"), *b))
            .collect();
        let (bins, kept) = pack(&files, 100, 90);
        // f (95) and g (130) are near the target or over it: kept as they are
        assert_eq!(kept.iter().map(|f| f.bytes).collect::<Vec<_>>(), [95, 130]);
        // 60+40 | 50+30+20: largest first, each into the first bin it fits
        let sizes: Vec<Vec<u64>> = bins.iter().map(|b| b.files.iter().map(|f| f.bytes).collect()).collect();
        assert_eq!(sizes, [vec![60, 40], vec![50, 30, 20]]);
        assert!(bins.iter().all(|b| b.bytes <= 100));
        // every file once
        let mut all: Vec<String> = bins.iter().flat_map(|b| &b.files).chain(&kept).map(|f| f.key.clone()).collect();
        all.sort();
        assert_eq!(all.len(), files.len());
        all.dedup();
        assert_eq!(all.len(), files.len());
        // with `near` out of reach nothing is kept, and a file over the target gets a bin of its own
        let (bins, kept) = pack(&files, 100, u64::MAX);
        assert!(kept.is_empty());
        assert_eq!(bins.iter().map(|b| b.files.len()).sum::<usize>(), files.len());
        assert_eq!(bins.iter().filter(|b| b.bytes > 100).count(), 1, "130 alone");
    }

    #[test]
    fn modes_select_days_and_partition_modes_make_units() {
        let mut files = Vec::new();
        for (day, hours) in [("01", 3), ("02", 2), ("03", 1)] {
            for h in 0..hours {
                for i in 0..2 {
                    files.push(file(&format!("year=2025/month=07/day={day}/hour={h:02}/p{i}.parquet"), 10));
                }
            }
        }
        let units = |pm, mode| -> Vec<(String, usize)> {
            plan_units(files.clone(), pm, mode, 100, 90)
                .into_iter()
                .map(|u| (u.unit.partition.path(), u.unit.files.len()))
                .collect()
        };
        let full_hours = units(PartitionMode::Hour, Mode::Full);
        assert_eq!(full_hours.len(), 6);
        assert_eq!(full_hours[0], ("year=2025/month=07/day=01/hour=00".to_string(), 2));
        assert_eq!(
            units(PartitionMode::Day, Mode::Full),
            [
                ("year=2025/month=07/day=01".to_string(), 6),
                ("year=2025/month=07/day=02".to_string(), 4),
                ("year=2025/month=07/day=03".to_string(), 2)
            ]
        );
        assert_eq!(
            units(PartitionMode::Day, Mode::Incremental { today: date("2025-07-03") }),
            [("year=2025/month=07/day=02".to_string(), 4)]
        );
        assert_eq!(units(PartitionMode::Hour, Mode::Day(date("2025-07-03"))).len(), 1);
        assert!(units(PartitionMode::Hour, Mode::Day(date("2025-08-01"))).is_empty());
        // across a month's end
        let f = vec![file("dt=2025-06-30/p.parquet", 1), file("dt=2025-07-01/p.parquet", 1)];
        let p = plan_units(f, PartitionMode::Hour, Mode::Incremental { today: date("2025-07-01") }, 10, 9);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].unit.partition.path(), "dt=2025-06-30");
    }

    #[test]
    fn the_same_listing_in_any_order_gives_the_same_plan() {
        let files: Vec<SourceFile> = (0..40)
            .map(|i| file(&format!("dt=2025-07-01/hour={:02}/p{i}.parquet", i % 3), 7 + (i * 37) % 50))
            .collect();
        let a = plan_units(files.clone(), PartitionMode::Day, Mode::Full, 120, 110);
        let mut shuffled = files;
        shuffled.reverse();
        shuffled.swap(3, 17);
        let b = plan_units(shuffled, PartitionMode::Day, Mode::Full, 120, 110);
        assert_eq!(a, b);
    }
}
