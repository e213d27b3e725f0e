//! Tree ensembles: one representation for the trees the fleet trains and
//! for those LightGBM and XGBoost write, with each library's own rule for
//! comparing a value with a threshold and for missing values.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Matrix;

/// How a split node compares a value with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// `x <= threshold` goes left, NaN goes the learned way (the fleet's
    /// GBDT, scikit-learn).
    #[serde(rename = "less_equal")]
    LessEqual,
    /// LightGBM's numerical split: `x <= threshold` goes left; NaN is 0
    /// unless the node's missing type ([`Tree::missing_type`]) is NaN; the
    /// missing value (NaN, or zero for missing type Zero) goes the node's
    /// default way.
    #[serde(rename = "lightgbm")]
    LightGbm,
    /// XGBoost's: `(f32) x < (f32) threshold` goes left, NaN the default way.
    #[serde(rename = "xgboost")]
    XgBoost,
}

/// LightGBM's missing type of a split node (bits 2-3 of `decision_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LightGbmMissing {
    None,
    Zero,
    NaN,
}

/// One tree as parallel arrays (XGBoost's layout): node `i` is a leaf
/// when `left[i] < 0`, with value `value[i]`; otherwise rows go to
/// `left[i]` or `right[i]` by `feature[i]`, `threshold[i]` and the rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    /// Where a missing value goes at node `i`.
    pub missing_left: Vec<bool>,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub value: Vec<f64>,
    /// LightGBM's missing type per node (empty for other rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_type: Vec<LightGbmMissing>,
}

impl Tree {
    /// A tree of one leaf.
    pub fn leaf(value: f64) -> Self {
        Tree {
            feature: vec![0],
            threshold: vec![0.0],
            missing_left: vec![false],
            left: vec![-1],
            right: vec![-1],
            value: vec![value],
            missing_type: vec![],
        }
    }

    pub fn len(&self) -> usize {
        self.left.len()
    }

    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    /// Checks that every child index is in range and that the nodes form a
    /// tree reachable from node 0 without cycles (children after parents).
    pub fn validate(&self, features: usize) -> Result<(), String> {
        let n = self.left.len();
        if n == 0 {
            return Err("a tree has no nodes".into());
        }
        for (name, len) in [
            ("feature", self.feature.len()),
            ("threshold", self.threshold.len()),
            ("missing_left", self.missing_left.len()),
            ("right", self.right.len()),
            ("value", self.value.len()),
        ] {
            if len != n {
                return Err(format!("{name} has {len} entries, left has {n}"));
            }
        }
        for i in 0..n {
            if self.left[i] < 0 {
                continue;
            }
            let (l, r) = (self.left[i] as usize, self.right[i]);
            if l <= i || l >= n || r < 0 || r as usize <= i || r as usize >= n {
                return Err(format!("node {i} has children {l} and {r}; expected indices after {i} and below {n}"));
            }
            if self.feature[i] as usize >= features {
                return Err(format!("node {i} splits on feature {} of {features}", self.feature[i]));
            }
        }
        Ok(())
    }

    #[inline]
    fn goes_left(&self, rule: Rule, i: usize, x: f64) -> bool {
        let t = self.threshold[i];
        match rule {
            Rule::LessEqual => {
                if x.is_nan() {
                    self.missing_left[i]
                } else {
                    x <= t
                }
            }
            Rule::XgBoost => {
                if x.is_nan() {
                    self.missing_left[i]
                } else {
                    (x as f32) < (t as f32)
                }
            }
            Rule::LightGbm => {
                let missing = self.missing_type.get(i).copied().unwrap_or(LightGbmMissing::NaN);
                let x = if x.is_nan() && missing != LightGbmMissing::NaN { 0.0 } else { x };
                let is_missing = match missing {
                    LightGbmMissing::None => false,
                    LightGbmMissing::Zero => (-1e-35..=1e-35).contains(&x),
                    LightGbmMissing::NaN => x.is_nan(),
                };
                if is_missing { self.missing_left[i] } else { x <= t }
            }
        }
    }

    /// The leaf value for row `row` of `x`.
    #[inline]
    pub fn predict_row(&self, rule: Rule, x: &Matrix, row: usize) -> f64 {
        let mut i = 0usize;
        loop {
            let l = self.left[i];
            if l < 0 {
                return self.value[i];
            }
            let v = x.get(self.feature[i] as usize, row);
            i = if self.goes_left(rule, i, v) { l as usize } else { self.right[i] as usize };
        }
    }
}

/// Trees summed onto a base score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    pub rule: Rule,
    pub base_score: f64,
    pub trees: Vec<Tree>,
}

impl Ensemble {
    pub fn predict_row(&self, x: &Matrix, row: usize) -> f64 {
        self.base_score + self.trees.iter().map(|t| t.predict_row(self.rule, x, row)).sum::<f64>()
    }

    /// The prediction for every row of `x`, on the current Rayon pool: the
    /// same values as [`Ensemble::predict_row`], computed with the trees
    /// packed into one array of nodes and the rows taken in blocks, each
    /// block row-major, through every tree in turn (a tree stays in cache
    /// for a whole block).
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let packed = Packed::new(self);
        let mut out = vec![0.0; x.rows()];
        out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, o)| packed.block(x, b * BLOCK, o));
        out
    }

    /// The sum of split gains per feature is not kept in every format; the
    /// importance reported is the number of splits on each feature.
    pub fn split_counts(&self, features: usize) -> Vec<u64> {
        let mut c = vec![0u64; features];
        for t in &self.trees {
            for i in 0..t.len() {
                if t.left[i] >= 0 && (t.feature[i] as usize) < features {
                    c[t.feature[i] as usize] += 1;
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump(t: f64, missing_left: bool) -> Tree {
        Tree {
            feature: vec![0, 0, 0],
            threshold: vec![t, 0.0, 0.0],
            missing_left: vec![missing_left, false, false],
            left: vec![1, -1, -1],
            right: vec![2, -1, -1],
            value: vec![0.0, -1.0, 1.0],
            missing_type: vec![],
        }
    }

    #[test]
    fn each_rule_compares_as_its_library_does() {
        let x = Matrix::new(vec!["a".into()], vec![vec![1.0, 2.0, f64::NAN, 0.0]]).unwrap();
        let t = stump(1.0, true);
        let got = |rule| (0..4).map(|r| t.predict_row(rule, &x, r)).collect::<Vec<_>>();
        let lgb = |t: &Tree, m| {
            let t = Tree { missing_type: vec![m; 3], ..t.clone() };
            (0..4).map(|r| t.predict_row(Rule::LightGbm, &x, r)).collect::<Vec<_>>()
        };
        // x <= 1 left; NaN left (missing_left)
        assert_eq!(got(Rule::LessEqual), [-1.0, 1.0, -1.0, -1.0]);
        // x < 1 left: 1.0 goes right
        assert_eq!(got(Rule::XgBoost), [1.0, 1.0, -1.0, -1.0]);
        // missing type None: NaN is 0, 0 <= 1 left
        assert_eq!(lgb(&t, LightGbmMissing::None), [-1.0, 1.0, -1.0, -1.0]);
        let t = stump(-0.5, false);
        // Zero: NaN becomes 0, and 0 is missing: default right
        assert_eq!(lgb(&t, LightGbmMissing::Zero), [1.0, 1.0, 1.0, 1.0]);
        // NaN: NaN default right; 0 > -0.5 right
        assert_eq!(lgb(&t, LightGbmMissing::NaN), [1.0, 1.0, 1.0, 1.0]);
        let t = stump(0.5, false);
        // Zero: 0 and NaN are missing, go right although 0 <= 0.5
        assert_eq!(lgb(&t, LightGbmMissing::Zero), [1.0, 1.0, 1.0, 1.0]);
        assert_eq!(lgb(&t, LightGbmMissing::None), [1.0, 1.0, -1.0, -1.0]);
    }

    #[test]
    fn validate_rejects_bad_children() {
        let mut t = stump(1.0, true);
        assert!(t.validate(1).is_ok());
        assert!(t.validate(0).unwrap_err().contains("feature 0 of 0"));
        t.right[0] = 0;
        assert!(t.validate(1).unwrap_err().contains("node 0 has children 1 and 0"));
    }
}

/// Rows per block in [`Ensemble::predict`].
const BLOCK: usize = 256;
/// Rows walked through a tree side by side: independent chains of loads
/// that the CPU overlaps, instead of one row's chain at a time.
const LANES: usize = 8;

/// One node of [`Packed`]: a split, or a leaf whose value is in `threshold`
/// and whose children are itself (a walk of fixed depth stays there).
#[derive(Debug, Clone, Copy)]
struct PackedNode {
    threshold: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing_left: bool,
    missing: LightGbmMissing,
}

/// An ensemble's trees in one array, children by absolute index.
struct Packed {
    nodes: Vec<PackedNode>,
    roots: Vec<u32>,
    /// Each tree's depth: the steps from its root to its deepest leaf.
    depths: Vec<u32>,
    rule: Rule,
    base: f64,
}

impl Packed {
    fn new(e: &Ensemble) -> Self {
        let mut nodes = Vec::with_capacity(e.trees.iter().map(Tree::len).sum());
        let mut roots = Vec::with_capacity(e.trees.len());
        let mut depths = Vec::with_capacity(e.trees.len());
        for t in &e.trees {
            let at = nodes.len() as u32;
            roots.push(at);
            // children come after their parents (validated)
            let mut depth = vec![0u32; t.len()];
            for i in 0..t.len() {
                let leaf = t.left[i] < 0;
                if !leaf {
                    depth[t.left[i] as usize] = depth[i] + 1;
                    depth[t.right[i] as usize] = depth[i] + 1;
                }
                let me = at + i as u32;
                nodes.push(PackedNode {
                    threshold: if leaf { t.value[i] } else { t.threshold[i] },
                    feature: if leaf { 0 } else { t.feature[i] },
                    left: if leaf { me } else { at + t.left[i] as u32 },
                    right: if leaf { me } else { at + t.right[i] as u32 },
                    missing_left: t.missing_left[i],
                    missing: t.missing_type.get(i).copied().unwrap_or(LightGbmMissing::NaN),
                });
            }
            depths.push(depth.into_iter().max().unwrap_or(0));
        }
        Packed { nodes, roots, depths, rule: e.rule, base: e.base_score }
    }

    /// Rows `start..start + out.len()` of `x` into `out`.
    fn block(&self, x: &Matrix, start: usize, out: &mut [f64]) {
        let k = x.names().len().max(1);
        let len = out.len();
        let mut rows = vec![0.0; len * k];
        for f in 0..x.names().len() {
            for (r, v) in x.column(f)[start..start + len].iter().enumerate() {
                rows[r * k + f] = *v;
            }
        }
        // the same sum as predict_row's: the trees in order, then the base
        let mut acc = vec![-0.0f64; len];
        match self.rule {
            // NaN compares false: then the missing direction decides
            Rule::LessEqual => self.walk(&rows, k, &mut acc, |n, v| (v <= n.threshold) | (v.is_nan() & n.missing_left)),
            Rule::XgBoost => self
                .walk(&rows, k, &mut acc, |n, v| ((v as f32) < (n.threshold as f32)) | (v.is_nan() & n.missing_left)),
            Rule::LightGbm => self.walk(&rows, k, &mut acc, |n, v| {
                let v = if v.is_nan() && n.missing != LightGbmMissing::NaN { 0.0 } else { v };
                let is_missing = match n.missing {
                    LightGbmMissing::None => false,
                    LightGbmMissing::Zero => (-1e-35..=1e-35).contains(&v),
                    LightGbmMissing::NaN => v.is_nan(),
                };
                if is_missing { n.missing_left } else { v <= n.threshold }
            }),
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = self.base + a;
        }
    }

    /// Each tree in turn over all rows, `LANES` rows side by side, each
    /// walked the tree's depth (a leaf loops onto itself).
    #[inline(always)]
    fn walk(&self, rows: &[f64], k: usize, acc: &mut [f64], goes_left: impl Fn(&PackedNode, f64) -> bool) {
        let step = |i: u32, row: &[f64]| {
            let n = &self.nodes[i as usize];
            if goes_left(n, row[n.feature as usize]) { n.left } else { n.right }
        };
        for (&root, &depth) in self.roots.iter().zip(&self.depths) {
            let mut rc = rows.chunks_exact(k * LANES);
            let mut ac = acc.chunks_exact_mut(LANES);
            for (rw, aw) in (&mut rc).zip(&mut ac) {
                let mut idx = [root; LANES];
                for _ in 0..depth {
                    for (j, i) in idx.iter_mut().enumerate() {
                        *i = step(*i, &rw[j * k..(j + 1) * k]);
                    }
                }
                for (a, i) in aw.iter_mut().zip(idx) {
                    *a += self.nodes[i as usize].threshold;
                }
            }
            for (row, a) in rc.remainder().chunks_exact(k).zip(ac.into_remainder()) {
                let mut i = root;
                for _ in 0..depth {
                    i = step(i, row);
                }
                *a += self.nodes[i as usize].threshold;
            }
        }
    }
}
