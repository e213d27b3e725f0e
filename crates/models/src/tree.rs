//! Tree ensembles: one representation for the trees the fleet trains and
//! for those LightGBM and XGBoost write, with each library's own rule for
//! comparing a value with a threshold and for missing values.

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
