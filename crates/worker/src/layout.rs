//! Where everything goes under the table location. Pure functions, so that
//! a retried shard writes exactly the keys its failed attempt wrote. The
//! commit marker's key is the catalog's ([`fleet_catalog::commit_key`]),
//! since the finalize step reads the markers back.

use fleet_contract::{Partition, Shard};

pub use fleet_catalog::commit_key;

/// `<partition>/<input stem>-<crc32c of the input URI>.parquet`, the data
/// file of one input object. Derived from the input only, so a retry
/// overwrites; the hash keeps two inputs with the same file name apart; a
/// stem starting with `_` or `.` (which Athena and Hive would skip) gets a
/// `part-` prefix.
pub fn data_key(partition: &Partition, input_uri: &str) -> String {
    let name = input_uri.rsplit('/').next().unwrap_or_default();
    let mut stem = name;
    for ext in [".gz", ".zst", ".parquet", ".ndjson", ".jsonl", ".json", ".snappy", ".zstd"] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    let clean: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(96)
        .collect();
    let hash = crc32c::crc32c(input_uri.as_bytes());
    let prefix = if clean.is_empty() || clean.starts_with(['_', '.']) { "part-" } else { "" };
    under(partition, &format!("{prefix}{clean}-{hash:08x}.parquet"))
}

/// `<partition>/part-00007-00002.parquet`: the third file shard 7 wrote in
/// this partition, when files are cut by size. The same input gives the
/// same sequence of files, so a retry overwrites them.
pub fn numbered_key(partition: &Partition, shard: Shard, seq: u32) -> String {
    under(partition, &format!("part-{:05}-{seq:05}.parquet", shard.index))
}

/// `_rejects/<partition>/shard-00007-of-00050.parquet`.
pub fn rejects_key(partition: &Partition, shard: Shard) -> String {
    format!("_rejects/{}", under(partition, &format!("{}.parquet", shard.name())))
}

/// `<partition>/<name>`, or `<name>` in a table without partitions.
fn under(partition: &Partition, name: &str) -> String {
    match partition.path() {
        p if p.is_empty() => name.to_string(),
        p => format!("{p}/{name}"),
    }
}

/// `_runs/<run id>/shard-00007-of-00050.json`.
pub fn summary_key(run_id: &str, shard: Shard) -> String {
    format!("_runs/{run_id}/{}.json", shard.name())
}

/// `_runs/<run id>/table_input.json`: the local catalog entry.
pub fn table_input_key(run_id: &str) -> String {
    format!("_runs/{run_id}/table_input.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Partition {
        Partition(vec![("dt".into(), "2025-07-01".into())])
    }

    #[test]
    fn keys_are_deterministic_and_visible() {
        let k = data_key(&p(), "s3://b/raw/part-00001.zstd.parquet");
        assert_eq!(
            k,
            format!("dt=2025-07-01/part-00001-{:08x}.parquet", crc32c::crc32c(b"s3://b/raw/part-00001.zstd.parquet"))
        );
        assert_eq!(k, data_key(&p(), "s3://b/raw/part-00001.zstd.parquet"));
        assert_ne!(k, data_key(&p(), "s3://b/other/part-00001.zstd.parquet"));
        let odd = data_key(&p(), "file:///x/_weird name?.json");
        assert!(odd.starts_with("dt=2025-07-01/part-_weird_name_-"), "{odd}");
        assert!(!odd.contains(".."));
        let s = Shard { index: 7, count: 50 };
        assert_eq!(commit_key(&p(), s), "dt=2025-07-01/_commits/shard-00007-of-00050.json");
        assert_eq!(commit_key(&Partition(vec![]), s), "_commits/shard-00007-of-00050.json");
        assert_eq!(rejects_key(&p(), s), "_rejects/dt=2025-07-01/shard-00007-of-00050.parquet");
        assert_eq!(summary_key("r1", s), "_runs/r1/shard-00007-of-00050.json");
        assert_eq!(table_input_key("r1"), "_runs/r1/table_input.json");
        assert_eq!(numbered_key(&p(), s, 2), "dt=2025-07-01/part-00007-00002.parquet");
    }
}
