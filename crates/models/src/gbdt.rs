//! Histogram gradient-boosted regression trees, as scikit-learn's
//! `HistGradientBoostingRegressor` grows them with its defaults:
//!
//! - each feature is cut into at most 255 bins at quantiles of (a sample of
//!   200,000 of) its training values, plus one bin for NULL;
//! - squared error; the baseline is the mean of the targets; each tree is
//!   grown best-first (the leaf whose split gains most is split next) up to
//!   31 leaves, a leaf holding at least 20 rows; a leaf's value is
//!   `-learning_rate * Σ gradient / (rows + l2_regularization)`;
//! - NULL goes the way learned at each split (both ways are tried); a
//!   feature without NULL in training sends NULL to the child with more
//!   rows;
//! - early stopping (by default when train has more than 10,000 rows): a
//!   tenth of train is held out, and training stops when the held-out loss
//!   has not improved by more than `tol` in 10 iterations.
//!
//! Histograms are built for the smaller child only (the larger is the
//! parent's minus it), over the features in parallel on the Rayon pool.

use std::collections::BinaryHeap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tree::{Ensemble, Rule, Tree};
use crate::{Matrix, ModelError};

/// The GBDT's hyper-parameters; defaults are scikit-learn's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    pub learning_rate: f64,
    /// The most trees (boosting iterations).
    pub max_iter: usize,
    pub max_leaf_nodes: usize,
    /// No limit when `None`.
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2_regularization: f64,
    /// Bins for non-NULL values, at most 255.
    pub max_bins: usize,
    /// `auto` (on when train has more than 10,000 rows), `on` or `off`.
    pub early_stopping: EarlyStopping,
    pub validation_fraction: f64,
    pub n_iter_no_change: usize,
    pub tol: f64,
    /// Seeds the held-out rows and the binning sample.
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            learning_rate: 0.1,
            max_iter: 100,
            max_leaf_nodes: 31,
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping: EarlyStopping::Auto,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    Auto,
    On,
    Off,
}

/// A trained GBDT and how training went.
#[derive(Debug, Clone)]
pub struct TrainedGbdt {
    pub ensemble: Ensemble,
    /// Trees grown.
    pub iterations: usize,
    /// Rows the trees were fitted on, and held out for early stopping.
    pub fit_rows: usize,
    pub held_out_rows: usize,
    /// Half mean squared error on the held-out rows after each iteration
    /// (the first is the baseline's); empty without early stopping.
    pub held_out_loss: Vec<f64>,
}

const SAMPLE_FOR_BINS: usize = 200_000;

/// splitmix64: the deterministic stream behind sampling and held-out rows.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Trains on `x` (features) and `y` (targets).
pub fn train_gbdt(x: &Matrix, y: &[f64], params: &GbdtParams) -> Result<TrainedGbdt, ModelError> {
    let n = x.rows();
    if n == 0 || y.len() != n {
        return Err(ModelError::Training(format!("{n} rows of features and {} targets", y.len())));
    }
    if y.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Training("a target is NaN or infinite".into()));
    }
    check(params)?;
    let stop_early = match params.early_stopping {
        EarlyStopping::Auto => n > 10_000,
        EarlyStopping::On => true,
        EarlyStopping::Off => false,
    };
    // held-out rows: a seeded share of validation_fraction
    let (fit_rows, held_rows): (Vec<usize>, Vec<usize>) = if stop_early {
        let cut = (params.validation_fraction * u32::MAX as f64) as u64;
        (0..n).partition(|&r| (mix(params.seed ^ (r as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)) & 0xffff_ffff) >= cut)
    } else {
        ((0..n).collect(), vec![])
    };
    if fit_rows.is_empty() {
        return Err(ModelError::Training("no rows left to fit after holding out the early-stopping rows".into()));
    }
    let k = x.names().len();
    let thresholds: Vec<Vec<f64>> =
        (0..k).into_par_iter().map(|f| bin_thresholds(x.column(f), &fit_rows, params.max_bins, params.seed)).collect();
    let missing_bin = params.max_bins as u8;
    let bin_rows = |rows: &[usize]| -> Vec<Vec<u8>> {
        (0..k)
            .into_par_iter()
            .map(|f| {
                let col = x.column(f);
                rows.iter().map(|&r| bin_of(col[r], &thresholds[f], missing_bin)).collect()
            })
            .collect()
    };
    let fit_bins = bin_rows(&fit_rows);
    let held_bins = bin_rows(&held_rows);
    let y_fit: Vec<f64> = fit_rows.iter().map(|&r| y[r]).collect();
    let y_held: Vec<f64> = held_rows.iter().map(|&r| y[r]).collect();
    let has_missing: Vec<bool> = fit_bins.par_iter().map(|b| b.contains(&missing_bin)).collect();
    let nonmissing_bins: Vec<usize> = thresholds.iter().map(|t| t.len() + 1).collect();

    let base = y_fit.iter().sum::<f64>() / y_fit.len() as f64;
    let mut raw = vec![base; y_fit.len()];
    let mut raw_held = vec![base; y_held.len()];
    let mut held_out_loss = vec![];
    if stop_early {
        held_out_loss.push(half_mse(&raw_held, &y_held));
    }
    let grower = Grower {
        bins: &fit_bins,
        has_missing: &has_missing,
        nonmissing_bins: &nonmissing_bins,
        missing_bin: missing_bin as usize,
        params,
    };
    let mut trees = vec![];
    let mut gradients = vec![0f32; y_fit.len()];
    for _ in 0..params.max_iter {
        gradients.par_iter_mut().zip(&raw).zip(&y_fit).for_each(|((g, r), y)| *g = (r - y) as f32);
        let (nodes, leaves) = grower.grow(&gradients);
        // the fitted rows' predictions, leaf by leaf
        for (value, rows) in leaves {
            for r in rows {
                raw[r as usize] += value;
            }
        }
        if stop_early {
            raw_held
                .par_iter_mut()
                .enumerate()
                .for_each(|(r, p)| *p += predict_binned(&nodes, &held_bins, missing_bin, r));
            held_out_loss.push(half_mse(&raw_held, &y_held));
        }
        trees.push(to_tree(&nodes, &thresholds));
        if stop_early && should_stop(&held_out_loss, params) {
            break;
        }
    }
    Ok(TrainedGbdt {
        iterations: trees.len(),
        ensemble: Ensemble { rule: Rule::LessEqual, base_score: base, trees },
        fit_rows: fit_rows.len(),
        held_out_rows: held_rows.len(),
        held_out_loss,
    })
}

fn check(p: &GbdtParams) -> Result<(), ModelError> {
    let bad = |what: &str, v: String, expected: &str| {
        Err(ModelError::Training(format!("gbdt {what} {v}; expected {expected}")))
    };
    if !(p.learning_rate > 0.0 && p.learning_rate.is_finite()) {
        return bad("learning_rate", p.learning_rate.to_string(), "a number > 0");
    }
    if p.max_iter == 0 {
        return bad("max_iter", "0".into(), "at least 1");
    }
    if p.max_leaf_nodes < 2 {
        return bad("max_leaf_nodes", p.max_leaf_nodes.to_string(), "at least 2");
    }
    if p.min_samples_leaf == 0 {
        return bad("min_samples_leaf", "0".into(), "at least 1");
    }
    if !(2..=255).contains(&p.max_bins) {
        return bad("max_bins", p.max_bins.to_string(), "2 to 255");
    }
    if !(p.l2_regularization >= 0.0 && p.l2_regularization.is_finite()) {
        return bad("l2_regularization", p.l2_regularization.to_string(), "a number >= 0");
    }
    if !(p.validation_fraction > 0.0 && p.validation_fraction < 1.0) {
        return bad("validation_fraction", p.validation_fraction.to_string(), "between 0 and 1");
    }
    if p.n_iter_no_change == 0 {
        return bad("n_iter_no_change", "0".into(), "at least 1");
    }
    Ok(())
}

fn half_mse(p: &[f64], y: &[f64]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    p.iter().zip(y).map(|(p, y)| 0.5 * (p - y) * (p - y)).sum::<f64>() / y.len() as f64
}

/// scikit-learn's rule: stop when none of the last `n_iter_no_change`
/// scores beats the one before them by more than `tol`.
fn should_stop(losses: &[f64], p: &GbdtParams) -> bool {
    let reference = p.n_iter_no_change + 1;
    if losses.len() < reference {
        return false;
    }
    let reference_score = -losses[losses.len() - reference] + p.tol;
    !losses[losses.len() - reference + 1..].iter().any(|l| -l > reference_score)
}

/// The bin edges of one feature over the rows `rows`: midpoints between
/// distinct values when there are at most `max_bins`, else midpoint
/// percentiles (numpy's `method="midpoint"`), deduplicated.
fn bin_thresholds(col: &[f64], rows: &[usize], max_bins: usize, seed: u64) -> Vec<f64> {
    let mut values: Vec<f64> = if rows.len() > SAMPLE_FOR_BINS {
        // a seeded sample without replacement (partial Fisher-Yates)
        let mut idx: Vec<u32> = (0..rows.len() as u32).collect();
        let mut state = seed ^ 0x5eed;
        for i in 0..SAMPLE_FOR_BINS {
            state = mix(state);
            let j = i + (state % (idx.len() - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx[..SAMPLE_FOR_BINS].iter().map(|&i| col[rows[i as usize]]).filter(|v| !v.is_nan()).collect()
    } else {
        rows.iter().map(|&r| col[r]).filter(|v| !v.is_nan()).collect()
    };
    values.sort_by(f64::total_cmp);
    let mut distinct = values.clone();
    distinct.dedup();
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect();
    }
    let n = values.len();
    let mut out: Vec<f64> = (1..max_bins)
        .map(|i| {
            let pos = i as f64 / max_bins as f64 * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            (values[lo] + values[hi]) / 2.0
        })
        .collect();
    out.dedup();
    out
}

/// The bin of `v`: the number of thresholds below it; NaN is `missing`.
#[inline]
fn bin_of(v: f64, thresholds: &[f64], missing: u8) -> u8 {
    if v.is_nan() { missing } else { thresholds.partition_point(|t| *t < v) as u8 }
}

/// A node while growing: a split on bins, or a leaf.
#[derive(Debug, Clone)]
struct Node {
    feature: usize,
    /// Rows with bin <= this go left.
    bin: usize,
    missing_left: bool,
    left: i32,
    right: i32,
    value: f64,
}

fn predict_binned(nodes: &[Node], bins: &[Vec<u8>], missing_bin: u8, row: usize) -> f64 {
    let mut i = 0;
    loop {
        let n = &nodes[i];
        if n.left < 0 {
            return n.value;
        }
        let b = bins[n.feature][row];
        let left = if b == missing_bin { n.missing_left } else { b as usize <= n.bin };
        i = if left { n.left as usize } else { n.right as usize };
    }
}

fn to_tree(nodes: &[Node], thresholds: &[Vec<f64>]) -> Tree {
    let mut t = Tree::default();
    for n in nodes {
        let leaf = n.left < 0;
        t.feature.push(if leaf { 0 } else { n.feature as u32 });
        // all non-NULL values left: the largest finite threshold
        t.threshold.push(if leaf { 0.0 } else { thresholds[n.feature].get(n.bin).copied().unwrap_or(f64::MAX) });
        t.missing_left.push(n.missing_left);
        t.left.push(n.left);
        t.right.push(n.right);
        t.value.push(if leaf { n.value } else { 0.0 });
    }
    t
}

#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    n: u32,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
    missing_left: bool,
    n_left: u32,
    g_left: f64,
}

struct Grower<'a> {
    bins: &'a [Vec<u8>],
    has_missing: &'a [bool],
    nonmissing_bins: &'a [usize],
    missing_bin: usize,
    params: &'a GbdtParams,
}

/// A leaf that may still be split: its rows are `order[start..end]`.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    g: f64,
    hist: Vec<Bin>,
    split: Option<Split>,
}

struct ByGain(f64, usize);
impl PartialEq for ByGain {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for ByGain {}
impl PartialOrd for ByGain {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ByGain {
    // the highest gain first; of equal gains the earlier leaf
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

const BINS: usize = 256;
/// Histogram lanes per feature (see `Grower::histogram`).
const LANES: usize = 4;
/// Below this many rows a node's histogram is built without lanes.
const SMALL_NODE: usize = 4 * BINS;
/// Rows per parallel task when partitioning a node's rows.
const PARTITION_CHUNK: usize = 1 << 14;

/// Partitions `rows` stably, those for which `goes_left` holds first (there
/// are `n_left` of them), using `tmp` (as long as `rows`); in parallel
/// chunks for large nodes, with the same result.
fn partition(rows: &mut [u32], tmp: &mut [u32], n_left: usize, goes_left: impl Fn(u32) -> bool + Sync) {
    let scatter = |chunk: &[u32], left: &mut [u32], right: &mut [u32]| {
        let (mut l, mut r) = (0, 0);
        for &row in chunk {
            if goes_left(row) {
                left[l] = row;
                l += 1;
            } else {
                right[r] = row;
                r += 1;
            }
        }
        debug_assert_eq!((l, r), (left.len(), right.len()));
    };
    if rows.len() < 4 * PARTITION_CHUNK {
        let (left, right) = tmp.split_at_mut(n_left);
        scatter(rows, left, right);
        rows.copy_from_slice(tmp);
        return;
    }
    let counts: Vec<usize> =
        rows.par_chunks(PARTITION_CHUNK).map(|c| c.iter().filter(|&&r| goes_left(r)).count()).collect();
    let (mut left, mut right) = tmp.split_at_mut(n_left);
    let mut pieces = Vec::with_capacity(counts.len());
    for (chunk, &nl) in rows.chunks(PARTITION_CHUNK).zip(&counts) {
        let (l, rest) = std::mem::take(&mut left).split_at_mut(nl);
        left = rest;
        let (r, rest) = std::mem::take(&mut right).split_at_mut(chunk.len() - nl);
        right = rest;
        pieces.push((chunk, l, r));
    }
    pieces.into_par_iter().for_each(|(chunk, l, r)| scatter(chunk, l, r));
    rows.par_chunks_mut(PARTITION_CHUNK).zip(tmp.par_chunks(PARTITION_CHUNK)).for_each(|(a, b)| a.copy_from_slice(b));
}

impl Grower<'_> {
    /// Grows one tree on `gradients`; returns its nodes and, per leaf, its
    /// value and the fitted rows in it.
    fn grow(&self, gradients: &[f32]) -> (Vec<Node>, Vec<(f64, Vec<u32>)>) {
        let n = gradients.len();
        let p = self.params;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut scratch: Vec<u32> = vec![0; n];
        // in row order: the same sum whatever the threads
        let g_root: f64 = gradients.iter().map(|&g| g as f64).sum();
        let mut nodes = vec![Node { feature: 0, bin: 0, missing_left: false, left: -1, right: -1, value: 0.0 }];
        let root_hist = self.histogram(&order, gradients);
        let mut open: Vec<Option<Open>> = vec![];
        let mut heap = BinaryHeap::new();
        let mut leaves = 1usize;
        let mut finished: Vec<Open> = vec![];
        let push =
            |o: Open, open: &mut Vec<Option<Open>>, heap: &mut BinaryHeap<ByGain>, finished: &mut Vec<Open>| match o
                .split
            {
                Some(s) => {
                    heap.push(ByGain(s.gain, open.len()));
                    open.push(Some(o));
                }
                None => finished.push(o),
            };
        let root = self.open(0, 0, n, 0, g_root, root_hist);
        push(root, &mut open, &mut heap, &mut finished);
        while let Some(ByGain(_, i)) = heap.pop() {
            let o = open[i].take().expect("each open leaf is split once");
            if leaves >= p.max_leaf_nodes {
                finished.push(o);
                continue;
            }
            let s = o.split.expect("only leaves with a split are queued");
            // partition the rows, stably: left then right
            let col = &self.bins[s.feature];
            let missing_bin = self.missing_bin;
            let goes_left = |row: u32| {
                let b = col[row as usize] as usize;
                if b == missing_bin { s.missing_left } else { b <= s.bin }
            };
            let l = s.n_left as usize;
            partition(&mut order[o.start..o.end], &mut scratch[o.start..o.end], l, goes_left);
            let r = o.end - o.start - l;
            let mid = o.start + l;
            let (ln, rn) = (nodes.len(), nodes.len() + 1);
            let mut missing_left = s.missing_left;
            if !self.has_missing[s.feature] {
                // NULL unseen in training: to the child with more rows
                missing_left = l > r;
            }
            nodes[o.node] =
                Node { feature: s.feature, bin: s.bin, missing_left, left: ln as i32, right: rn as i32, value: 0.0 };
            nodes.push(Node { feature: 0, bin: 0, missing_left: false, left: -1, right: -1, value: 0.0 });
            nodes.push(Node { feature: 0, bin: 0, missing_left: false, left: -1, right: -1, value: 0.0 });
            leaves += 1;
            // the smaller child's histogram from its rows, the larger's by subtraction
            let (small, small_is_left) =
                if l <= r { (&order[o.start..mid], true) } else { (&order[mid..o.end], false) };
            let small_hist = self.histogram(small, gradients);
            let mut large_hist = o.hist;
            large_hist.iter_mut().zip(&small_hist).for_each(|(a, b)| {
                a.g -= b.g;
                a.n -= b.n;
            });
            let (left_hist, right_hist) =
                if small_is_left { (small_hist, large_hist) } else { (large_hist, small_hist) };
            let left = self.open(ln, o.start, mid, o.depth + 1, s.g_left, left_hist);
            let right = self.open(rn, mid, o.end, o.depth + 1, o.g - s.g_left, right_hist);
            push(left, &mut open, &mut heap, &mut finished);
            push(right, &mut open, &mut heap, &mut finished);
        }
        let mut out = Vec::with_capacity(finished.len());
        for o in finished {
            let rows = (o.end - o.start) as f64;
            let value = -p.learning_rate * o.g / (rows + p.l2_regularization + 1e-15);
            nodes[o.node].value = value;
            out.push((value, order[o.start..o.end].to_vec()));
        }
        (nodes, out)
    }

    fn open(&self, node: usize, start: usize, end: usize, depth: usize, g: f64, hist: Vec<Bin>) -> Open {
        let p = self.params;
        let rows = end - start;
        let splittable = rows >= 2 * p.min_samples_leaf && p.max_depth.is_none_or(|d| depth < d);
        let split = if splittable { self.best_split(&hist, g, rows as u32) } else { None };
        Open { node, start, end, depth, g, hist, split }
    }

    /// The histogram of the rows `rows`: per feature, per bin, the sum of
    /// gradients and the count.
    fn histogram(&self, rows: &[u32], gradients: &[f32]) -> Vec<Bin> {
        let k = self.bins.len();
        let mut hist = vec![Bin::default(); k * BINS];
        let whole = rows.len() == gradients.len();
        // gradients in row order once, read by every feature
        let ordered: Vec<f32> = if whole { vec![] } else { rows.iter().map(|&r| gradients[r as usize]).collect() };
        hist.par_chunks_mut(BINS).enumerate().for_each(|(f, h)| {
            let col = &self.bins[f];
            // LANES histograms, row i into lane i % LANES, summed at the
            // end: rows in the same bin one after the other no longer wait
            // for each other's update (a fixed order: the same sums on any
            // number of threads)
            if !whole && rows.len() < SMALL_NODE {
                // too few rows for the lanes to pay for clearing and summing them
                for (r, g) in rows.iter().zip(&ordered) {
                    let e = &mut h[col[*r as usize] as usize];
                    e.g += *g as f64;
                    e.n += 1;
                }
                return;
            }
            let mut lanes = [[Bin::default(); BINS]; LANES];
            if whole {
                let mut bins = col.chunks_exact(LANES);
                let mut grads = gradients.chunks_exact(LANES);
                for (b, g) in (&mut bins).zip(&mut grads) {
                    for j in 0..LANES {
                        let e = &mut lanes[j][b[j] as usize];
                        e.g += g[j] as f64;
                        e.n += 1;
                    }
                }
                for (b, g) in bins.remainder().iter().zip(grads.remainder()) {
                    let e = &mut lanes[0][*b as usize];
                    e.g += *g as f64;
                    e.n += 1;
                }
            } else {
                let mut rs = rows.chunks_exact(LANES);
                let mut grads = ordered.chunks_exact(LANES);
                for (r, g) in (&mut rs).zip(&mut grads) {
                    for j in 0..LANES {
                        let e = &mut lanes[j][col[r[j] as usize] as usize];
                        e.g += g[j] as f64;
                        e.n += 1;
                    }
                }
                for (r, g) in rs.remainder().iter().zip(grads.remainder()) {
                    let e = &mut lanes[0][col[*r as usize] as usize];
                    e.g += *g as f64;
                    e.n += 1;
                }
            }
            for (b, e) in h.iter_mut().enumerate() {
                for lane in &lanes {
                    e.g += lane[b].g;
                    e.n += lane[b].n;
                }
            }
        });
        hist
    }

    fn best_split(&self, hist: &[Bin], g: f64, n: u32) -> Option<Split> {
        let p = self.params;
        let l2 = p.l2_regularization;
        let min = p.min_samples_leaf as u32;
        let parent = g * g / (n as f64 + l2);
        let score = |gl: f64, nl: u32| {
            let (gr, nr) = (g - gl, n - nl);
            gl * gl / (nl as f64 + l2) + gr * gr / (nr as f64 + l2) - parent
        };
        let mut best: Option<Split> = None;
        for f in 0..self.bins.len() {
            let h = &hist[f * BINS..(f + 1) * BINS];
            let nb = self.nonmissing_bins[f];
            let miss = h[self.missing_bin];
            let mut consider = |gain: f64, bin: usize, missing_left: bool, gl: f64, nl: u32| {
                if gain > 0.0 && best.is_none_or(|b| gain > b.gain) {
                    best = Some(Split { gain, feature: f, bin, missing_left, n_left: nl, g_left: gl });
                }
            };
            // missing right; with NULLs present also "all values left, NULL right"
            let end = if self.has_missing[f] { nb } else { nb - 1 };
            let (mut gl, mut nl) = (0.0, 0u32);
            for (b, e) in h.iter().enumerate().take(end) {
                gl += e.g;
                nl += e.n;
                if nl < min {
                    continue;
                }
                if n - nl < min {
                    break;
                }
                consider(score(gl, nl), b, false, gl, nl);
            }
            if self.has_missing[f] && miss.n > 0 {
                // missing left: scan from the right
                let (mut gr, mut nr) = (0.0, 0u32);
                for b in (0..nb.saturating_sub(1)).rev() {
                    gr += h[b + 1].g;
                    nr += h[b + 1].n;
                    if nr < min {
                        continue;
                    }
                    let nl = n - nr;
                    if nl < min {
                        break;
                    }
                    consider(score(g - gr, nl), b, true, g - gr, nl);
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    fn data(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        // y = 10 sin(a) + b² / 10 + (c is NULL ? 5 : c), with noise
        let mut s = seed;
        let mut next = || {
            s = mix(s);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut a, mut b, mut c, mut y) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let (va, vb) = (next() * 6.0, (next() * 20.0).floor());
            let vc = if next() < 0.2 { f64::NAN } else { next() * 3.0 };
            let noise = (next() - 0.5) * 0.5;
            y.push(10.0 * va.sin() + vb * vb / 10.0 + if vc.is_nan() { 5.0 } else { vc } + noise);
            a.push(va);
            b.push(vb);
            c.push(vc);
        }
        (Matrix::new(vec!["a".into(), "b".into(), "c".into()], vec![a, b, c]).unwrap(), y)
    }

    #[test]
    fn learns_a_nonlinear_function_with_nulls_and_stops_early() {
        let (x, y) = data(30_000, 1);
        let t = train_gbdt(&x, &y, &GbdtParams { max_iter: 300, ..Default::default() }).unwrap();
        assert!(t.held_out_rows > 2_500 && t.held_out_rows < 3_500, "{}", t.held_out_rows);
        assert_eq!(t.held_out_loss.len(), t.iterations + 1);
        let m = Model::new("gbdt", "y", x.names().to_vec(), Params::Gbdt(t.ensemble.clone()));
        let (xt, yt) = data(5_000, 2);
        let predicted = m.predict(&xt);
        // the packed, blocked evaluation gives predict_row's values exactly
        assert!((0..xt.rows()).all(|r| predicted[r].to_bits() == m.predict_row(&xt, r).to_bits()));
        let got = Metrics::of(&predicted, &yt);
        // noise alone gives MAE 0.125; the mean gives about 7
        assert!(got.mae < 0.35, "{got:?}");
        assert!(got.r2 > 0.99, "{got:?}");
        // NULL learned: c NULL means +5, above any c
        let q = Matrix::new(x.names().to_vec(), vec![vec![1.0, 1.0], vec![3.0, 3.0], vec![f64::NAN, 0.5]]).unwrap();
        let p = m.predict(&q);
        assert!((p[0] - p[1] - 4.5).abs() < 1.0, "{p:?}");
        // deterministic
        let again = train_gbdt(&x, &y, &GbdtParams { max_iter: 300, ..Default::default() }).unwrap();
        assert_eq!(again.ensemble, t.ensemble);
        // a target of pure noise: nothing to learn, early stopping ends it soon
        let noise: Vec<f64> = (0..x.rows() as u64).map(|i| (mix(i) % 1000) as f64).collect();
        let t = train_gbdt(&x, &noise, &GbdtParams { max_iter: 300, ..Default::default() }).unwrap();
        assert!(t.iterations < 40, "early stopping never stopped: {} iterations", t.iterations);
        assert_eq!(t.held_out_loss.len(), t.iterations + 1);
    }

    #[test]
    fn trees_respect_leaf_limits_and_bins_match_thresholds() {
        let (x, y) = data(3_000, 3);
        let p = GbdtParams { max_iter: 5, max_leaf_nodes: 7, min_samples_leaf: 50, ..Default::default() };
        let t = train_gbdt(&x, &y, &p).unwrap();
        assert_eq!(t.iterations, 5, "no early stopping below 10,000 rows");
        assert_eq!(t.held_out_rows, 0);
        for tree in &t.ensemble.trees {
            assert_eq!(tree.left.iter().filter(|l| **l < 0).count(), 7);
            tree.validate(3).unwrap();
        }
        // each leaf of the first tree holds at least 50 training rows
        let mut counts = std::collections::HashMap::new();
        let tree = &t.ensemble.trees[0];
        for r in 0..x.rows() {
            let mut i = 0;
            while tree.left[i] >= 0 {
                let v = x.get(tree.feature[i] as usize, r);
                let left = if v.is_nan() { tree.missing_left[i] } else { v <= tree.threshold[i] };
                i = if left { tree.left[i] } else { tree.right[i] } as usize;
            }
            *counts.entry(i).or_insert(0) += 1;
        }
        assert!(counts.values().all(|c| *c >= 50), "{counts:?}");
        let th = bin_thresholds(&[1.0, 2.0, 2.0, 4.0, f64::NAN], &[0, 1, 2, 3, 4], 255, 0);
        assert_eq!(th, [1.5, 3.0]);
        assert_eq!([0.5, 1.5, 2.0, 3.0, 9.0].map(|v| bin_of(v, &th, 255)), [0, 0, 1, 1, 2]);
        assert_eq!(bin_of(f64::NAN, &th, 255), 255);
        let err = train_gbdt(&x, &y, &GbdtParams { max_bins: 300, ..Default::default() }).unwrap_err();
        assert_eq!(err.to_string(), "training data: gbdt max_bins 300; expected 2 to 255");
    }

    #[test]
    fn the_same_model_on_any_number_of_threads() {
        let (x, y) = data(12_000, 4);
        let p = GbdtParams { max_iter: 20, ..Default::default() };
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let g = train_gbdt(&x, &y, &p).unwrap().ensemble;
                let r = crate::train_ridge(&x, &y, crate::RidgeParams::default()).unwrap();
                (g, r)
            })
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert_eq!(one, on(2));
    }

    #[test]
    fn a_parallel_partition_is_the_sequential_one() {
        let n = 300_000u32;
        let rows: Vec<u32> = (0..n).filter(|r| r % 7 != 3).collect();
        let goes_left = |r: u32| mix(r as u64).is_multiple_of(3);
        let want: Vec<u32> = rows
            .iter()
            .copied()
            .filter(|&r| goes_left(r))
            .chain(rows.iter().copied().filter(|&r| !goes_left(r)))
            .collect();
        let n_left = rows.iter().filter(|&&r| goes_left(r)).count();
        for len in [10, 5_000, rows.len()] {
            let mut got = rows[..len].to_vec();
            let mut tmp = vec![0; len];
            let nl = rows[..len].iter().filter(|&&r| goes_left(r)).count();
            partition(&mut got, &mut tmp, nl, goes_left);
            if len == rows.len() {
                assert_eq!(nl, n_left);
                assert_eq!(got, want);
            }
            assert!(got[..nl].iter().all(|&r| goes_left(r)) && got[nl..].iter().all(|&r| !goes_left(r)));
            assert!(got[..nl].windows(2).all(|w| w[0] < w[1]) && got[nl..].windows(2).all(|w| w[0] < w[1]));
        }
    }

    use crate::{Model, Params};
}
