//! Training the built-in models on the train split and measuring them on
//! validation and test.

use std::time::Instant;

use fleet_models::{Metrics, Model, Params, train_gbdt, train_mean, train_ridge};
use serde::Serialize;

use crate::config::{Config, ModelKind};
use crate::data::SplitData;
use crate::{TARGET, TrainError};

/// Rows per split, as `metrics.json` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitRows {
    pub train: u64,
    pub validation: u64,
    pub test: u64,
}

/// How the GBDT's training went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GbdtTraining {
    /// Trees grown (fewer than max_iter when early stopping stopped it).
    pub iterations: usize,
    /// Train rows the trees were fitted on, and held out for early stopping.
    pub fit_rows: usize,
    pub held_out_rows: usize,
    /// Half mean squared error on the held-out rows after the last tree.
    pub held_out_loss: Option<f64>,
}

/// `models/<name>/metrics.json`. Everything in it is reproducible but
/// `fit_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMetrics {
    pub model: String,
    /// `<name>-<crc32 of model.json>`.
    pub version: String,
    pub features: usize,
    pub rows: SplitRows,
    pub train: Metrics,
    pub validation: Metrics,
    pub test: Metrics,
    /// Wall time of the fit alone, on all of the task's threads.
    pub fit_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbdt: Option<GbdtTraining>,
}

/// A trained model, its metrics and its test predictions (for the report).
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: Model,
    pub metrics: ModelMetrics,
    pub test_predictions: Vec<f64>,
}

/// Trains `kind` on `splits[0]`; runs on the current Rayon pool.
pub fn train(kind: ModelKind, config: &Config, splits: &[SplitData; 3]) -> Result<Trained, TrainError> {
    let [train, validation, test] = splits;
    let features = train.x.names().to_vec();
    let start = Instant::now();
    let mut gbdt = None;
    let params = match kind {
        ModelKind::Mean => Params::Mean { value: train_mean(&train.y)? },
        ModelKind::Ridge => Params::Ridge(train_ridge(&train.x, &train.y, config.ridge)?),
        ModelKind::Gbdt => {
            let t = train_gbdt(&train.x, &train.y, &config.gbdt)?;
            gbdt = Some(GbdtTraining {
                iterations: t.iterations,
                fit_rows: t.fit_rows,
                held_out_rows: t.held_out_rows,
                held_out_loss: t.held_out_loss.last().copied(),
            });
            Params::Gbdt(t.ensemble)
        }
    };
    let fit_seconds = start.elapsed().as_secs_f64();
    let model = Model::new(kind.name(), TARGET, features, params);
    let eval = |s: &SplitData| -> (Metrics, Vec<f64>) {
        let p = model.predict(&s.x);
        (Metrics::of(&p, &s.y), p)
    };
    let (train_m, _) = eval(train);
    let (validation_m, _) = eval(validation);
    let (test_m, test_predictions) = eval(test);
    let metrics = ModelMetrics {
        model: model.name.clone(),
        version: model.version(),
        features: model.features.len(),
        rows: SplitRows {
            train: train.y.len() as u64,
            validation: validation.y.len() as u64,
            test: test.y.len() as u64,
        },
        train: train_m,
        validation: validation_m,
        test: test_m,
        fit_seconds,
        gbdt,
    };
    Ok(Trained { model, metrics, test_predictions })
}
