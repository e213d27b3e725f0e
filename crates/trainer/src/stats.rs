//! Per-feature statistics of each split, as `stats.json`.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::{JoinCounts, SPLITS, SplitData};

/// The quantiles reported, as fractions.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// One column's statistics over one split. Missing (NULL) values are
/// counted in `nulls` and left out of everything else; `std` is the
/// sample standard deviation (n - 1); quantiles interpolate linearly
/// between the two nearest values (numpy's and pandas' default). With no
/// values, the moments and quantiles are `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnStats {
    pub count: u64,
    pub nulls: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `"p01"`, `"p05"`, `"p25"`, `"p50"`, `"p75"`, `"p95"`, `"p99"`.
    pub quantiles: BTreeMap<String, Option<f64>>,
}

impl ColumnStats {
    pub fn of(values: &[f64]) -> ColumnStats {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        let count = v.len() as u64;
        let nulls = values.len() as u64 - count;
        v.sort_unstable_by(f64::total_cmp);
        let (mean, std) = if v.is_empty() {
            (None, None)
        } else {
            // two passes over sorted values: a deterministic order and no cancellation
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let std = (v.len() > 1)
                .then(|| (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (v.len() - 1) as f64).sqrt());
            (Some(mean), std)
        };
        let quantiles =
            QUANTILES.iter().map(|&q| (format!("p{:02}", (q * 100.0).round() as u32), quantile(&v, q))).collect();
        ColumnStats { count, nulls, mean, std, min: v.first().copied(), max: v.last().copied(), quantiles }
    }
}

/// The `q` quantile of sorted values, interpolating linearly.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// `stats.json`: the join's counts and, per split, each feature's and the
/// target's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub rows: JoinCounts,
    /// split -> column -> statistics; the target is `actual_age`.
    pub splits: BTreeMap<String, BTreeMap<String, ColumnStats>>,
}

pub fn compute(counts: &JoinCounts, splits: &[SplitData; 3], target: &str) -> Stats {
    let mut out = BTreeMap::new();
    for (name, s) in SPLITS.iter().zip(splits) {
        let mut columns: Vec<(String, &[f64])> =
            s.x.names().iter().enumerate().map(|(i, n)| (n.clone(), s.x.column(i))).collect();
        columns.push((target.to_string(), &s.y));
        let stats: BTreeMap<String, ColumnStats> =
            columns.into_par_iter().map(|(n, v)| (n, ColumnStats::of(v))).collect();
        out.insert(name.to_string(), stats);
    }
    Stats { rows: counts.clone(), splits: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_leave_nulls_out_and_interpolate_quantiles() {
        let s = ColumnStats::of(&[4.0, f64::NAN, 1.0, 3.0, 2.0]);
        assert_eq!((s.count, s.nulls), (4, 1));
        assert_eq!(s.mean, Some(2.5));
        assert!((s.std.unwrap() - 1.2909944487358056).abs() < 1e-15);
        assert_eq!((s.min, s.max), (Some(1.0), Some(4.0)));
        // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75; 0.5 = 2.5; 0.99 = 3.97
        assert_eq!(s.quantiles["p25"], Some(1.75));
        assert_eq!(s.quantiles["p50"], Some(2.5));
        assert!((s.quantiles["p99"].unwrap() - 3.97).abs() < 1e-12);
        let empty = ColumnStats::of(&[f64::NAN]);
        assert_eq!((empty.count, empty.nulls, empty.mean, empty.min), (0, 1, None, None));
        assert_eq!(empty.quantiles["p50"], None);
        let one = ColumnStats::of(&[7.0]);
        assert_eq!((one.mean, one.std, one.quantiles["p99"]), (Some(7.0), None, Some(7.0)));
    }
}
