//! Regression models for the fleet: what trainer-feeder trains and
//! batch-predictor evaluates.
//!
//! - [`Matrix`]: the features, one `f64` column per feature, NULL as NaN
//!   (booleans as 0 and 1), built from Arrow columns by name.
//! - Built-in models, trained here: [`Params::Mean`], [`Params::Ridge`] and
//!   [`Params::Gbdt`] (histogram gradient-boosted trees, as scikit-learn's
//!   `HistGradientBoostingRegressor` with its defaults: 255 bins, 31
//!   leaves, a learned direction for missing values, early stopping on a
//!   held-out tenth of train).
//! - Models trained elsewhere, for prediction: LightGBM's text format and
//!   XGBoost's JSON format ([`Model::from_bytes`] tells them apart), their
//!   features mapped by name.
//! - The artifact: one JSON document per model (`model.json`, format
//!   [`FORMAT`], documented in `docs/MODELS.md`), which an external trainer
//!   can write too.

mod foreign;
mod gbdt;
mod linear;
mod matrix;
mod metrics;
mod tree;

use serde::{Deserialize, Serialize};

pub use gbdt::{EarlyStopping, GbdtParams, TrainedGbdt, train_gbdt};
pub use linear::{Ridge, RidgeParams, train_mean, train_ridge};
pub use matrix::Matrix;
pub use metrics::Metrics;
pub use tree::{Ensemble, LightGbmMissing, Rule, Tree};

/// The `format` of a fleet model document.
pub const FORMAT: &str = "fleet-model";
/// The version of that format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("the model needs feature {name:?}, which the input does not have (it has: {have})")]
    MissingFeature { name: String, have: String },
    #[error("feature {name:?} is {data_type}; expected a number or a boolean")]
    FeatureType { name: String, data_type: String },
    #[error("training data: {0}")]
    Training(String),
}

impl ModelError {
    fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::Invalid { what: what.into(), message: message.into() }
    }
}

/// A model's parameters, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Params {
    /// Predicts the mean of the training targets.
    Mean {
        value: f64,
    },
    Ridge(Ridge),
    /// Trees on raw feature values (`x <= threshold` goes left).
    Gbdt(Ensemble),
}

/// A model ready to predict: its features (by name, in the order the
/// parameters index them) and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    /// The model's name in predictions (`predicted_age_<name>`): `gbdt`,
    /// `ridge`, `mean`, `lightgbm`, ...
    pub name: String,
    /// The column it predicts (`actual_age`).
    pub target: String,
    pub features: Vec<String>,
    #[serde(flatten)]
    pub params: Params,
}

impl Model {
    pub fn new(name: &str, target: &str, features: Vec<String>, params: Params) -> Self {
        Model {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            name: name.into(),
            target: target.into(),
            features,
            params,
        }
    }

    /// A model from the bytes of a model file: the fleet's JSON document,
    /// XGBoost's JSON model, or LightGBM's text model. `what` names the
    /// file in errors.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<Model, ModelError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ModelError::invalid(what, format!("not UTF-8 text ({e}); expected a JSON or LightGBM text model"))
        })?;
        let start = text.trim_start();
        if start.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| ModelError::invalid(what, format!("not valid JSON: {e}")))?;
            if v.get("learner").is_some() {
                return foreign::xgboost(what, &v);
            }
            match v.get("format").and_then(|f| f.as_str()) {
                Some(FORMAT) => {}
                other => {
                    return Err(ModelError::invalid(
                        what,
                        format!(
                            "format is {other:?}; expected \"{FORMAT}\" or an XGBoost JSON model (with \"learner\")"
                        ),
                    ));
                }
            }
            let m: Model = serde_json::from_value(v).map_err(|e| ModelError::invalid(what, e.to_string()))?;
            m.validate(what)?;
            Ok(m)
        } else if start.starts_with("tree\n") || start.starts_with("tree\r\n") {
            foreign::lightgbm(what, text)
        } else {
            Err(ModelError::invalid(
                what,
                "neither JSON (a fleet or XGBoost model) nor a LightGBM text model (starting with \"tree\")",
            ))
        }
    }

    /// The model as its JSON document (deterministic: same model, same bytes).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a model serialises");
        v.push(b'\n');
        v
    }

    /// `<name>-<crc32 of the document, hex>`: changes when the model does.
    pub fn version(&self) -> String {
        format!("{}-{:08x}", self.name, crc32fast::hash(&self.to_json()))
    }

    fn validate(&self, what: &str) -> Result<(), ModelError> {
        if self.format_version != FORMAT_VERSION {
            return Err(ModelError::invalid(
                what,
                format!("format_version {}; this build reads {FORMAT_VERSION}", self.format_version),
            ));
        }
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ModelError::invalid(what, format!("name {:?}; expected letters, digits and _", self.name)));
        }
        let n = self.features.len();
        match &self.params {
            Params::Mean { .. } => Ok(()),
            Params::Ridge(r) => {
                if r.coefficients.len() != n || r.means.len() != n {
                    return Err(ModelError::invalid(
                        what,
                        format!(
                            "ridge has {} coefficients and {} means for {n} features",
                            r.coefficients.len(),
                            r.means.len()
                        ),
                    ));
                }
                Ok(())
            }
            Params::Gbdt(e) => {
                for (i, t) in e.trees.iter().enumerate() {
                    t.validate(n).map_err(|m| ModelError::invalid(what, format!("tree {i}: {m}")))?;
                }
                Ok(())
            }
        }
    }

    /// The prediction for each row of `x` (whose columns are this model's
    /// features, in order: [`Matrix::from_batch`] with [`Model::features`]),
    /// in parallel on the current Rayon pool; the same values in any pool.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        use rayon::prelude::*;
        match &self.params {
            Params::Gbdt(e) => e.predict(x),
            _ => (0..x.rows()).into_par_iter().with_min_len(1024).map(|r| self.predict_row(x, r)).collect(),
        }
    }

    #[inline]
    pub fn predict_row(&self, x: &Matrix, row: usize) -> f64 {
        match &self.params {
            Params::Mean { value } => *value,
            Params::Ridge(r) => r.predict_row(x, row),
            Params::Gbdt(e) => e.predict_row(x, row),
        }
    }

    /// Each feature's importance, summing to 1 (0 for all when the model
    /// does not use features): absolute standardised coefficients for
    /// ridge, the share of splits for trees.
    pub fn importance(&self) -> Vec<f64> {
        let raw: Vec<f64> = match &self.params {
            Params::Mean { .. } => vec![0.0; self.features.len()],
            Params::Ridge(r) => r.coefficients.iter().zip(&r.scales).map(|(c, s)| (c * s).abs()).collect(),
            Params::Gbdt(e) => e.split_counts(self.features.len()).into_iter().map(|c| c as f64).collect(),
        };
        let total: f64 = raw.iter().sum();
        if total > 0.0 { raw.iter().map(|v| v / total).collect() } else { raw }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_read_back_is_the_model_written() {
        let ridge = Ridge {
            intercept: 0.1 + 0.2,
            coefficients: vec![1.0 / 3.0, -2.5e-17],
            means: vec![2.0f64.sqrt(), 1e300],
            scales: vec![std::f64::consts::PI, 7.0],
        };
        let m = Model::new("ridge", "actual_age", vec!["a".into(), "b".into()], Params::Ridge(ridge));
        let back = Model::from_bytes("m", &m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.version(), m.version());
        assert_eq!(back.to_json(), m.to_json());
    }
}
