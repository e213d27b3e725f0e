//! The run summary every worker writes and logs, and what goes into it.

use std::collections::BTreeMap;

use fleet_catalog::CommittedFile;
use serde::{Deserialize, Serialize};

/// What a run did, written to `_runs/<run id>/<shard>.json` and logged as
/// the last line (`Run summary.`). The common fields first, then the
/// worker's own metrics (`M`, flattened into the same object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary<M = serde_json::Map<String, serde_json::Value>> {
    pub worker: String,
    pub status: String,
    pub run_id: String,
    pub shard_index: u32,
    pub shard_count: u32,
    pub input: String,
    pub output: String,
    /// The partitions written, comma-separated.
    pub partition: String,
    pub objects: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows with at least one rejected cell.
    pub rows_rejected: u64,
    /// Rejected cells (a row can have several).
    pub rejected_cells: u64,
    pub rejected_cells_by_column: BTreeMap<String, u64>,
    pub reject_ratio: f64,
    /// The threshold, for workers that reject rows.
    pub max_reject_ratio: Option<f64>,
    /// Bytes of the input objects.
    pub bytes_read: u64,
    /// Bytes of the data the worker transforms (feature-parser: the JSON
    /// cells), the basis of `mb_per_second`.
    pub bytes_processed: u64,
    pub bytes_written: u64,
    pub wall_seconds: f64,
    pub rows_per_second: f64,
    /// MB (10^6 bytes) processed per second of wall time.
    pub mb_per_second: f64,
    pub peak_rss_bytes: u64,
    pub threads: usize,
    pub fargate_vcpu: f64,
    pub fargate_memory_gib: f64,
    /// vCPU-hours at $0.04048 and GB-hours at $0.004445 (us-east-1, Linux/x86).
    pub fargate_cost_usd: f64,
    pub files: Vec<CommittedFile>,
    #[serde(flatten)]
    pub metrics: M,
}

/// Fargate Linux/x86 on-demand price (us-east-1) for a task of this size and duration.
pub fn fargate_cost(vcpu: f64, memory_gib: f64, seconds: f64) -> f64 {
    let hours = seconds / 3600.0;
    vcpu * hours * 0.04048 + memory_gib * hours * 0.004445
}

/// The process's peak resident set (VmHWM), 0 where /proc is not there.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_and_rss() {
        let c = fargate_cost(4.0, 8.0, 3600.0);
        assert!((c - (4.0 * 0.04048 + 8.0 * 0.004445)).abs() < 1e-12);
        assert!(peak_rss_bytes() > 1 << 20);
    }
}
