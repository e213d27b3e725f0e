//! Regression metrics.

use serde::{Deserialize, Serialize};

/// How well predictions fit the actual values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: u64,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination: 1 - SSE / SST (0 for the mean).
    pub r2: f64,
}

impl Metrics {
    /// The metrics of `predicted` against `actual` (same length).
    pub fn of(predicted: &[f64], actual: &[f64]) -> Metrics {
        assert_eq!(predicted.len(), actual.len(), "one prediction per actual value");
        let n = actual.len();
        if n == 0 {
            return Metrics { rows: 0, mae: f64::NAN, rmse: f64::NAN, r2: f64::NAN };
        }
        let mean = actual.iter().sum::<f64>() / n as f64;
        let (mut abs, mut sse, mut sst) = (0.0, 0.0, 0.0);
        for (p, a) in predicted.iter().zip(actual) {
            abs += (p - a).abs();
            sse += (p - a) * (p - a);
            sst += (a - mean) * (a - mean);
        }
        let r2 = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
        Metrics { rows: n as u64, mae: abs / n as f64, rmse: (sse / n as f64).sqrt(), r2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let m = Metrics::of(&[1.0, 2.0, 5.0], &[1.0, 3.0, 3.0]);
        assert_eq!(m.rows, 3);
        assert!((m.mae - 1.0).abs() < 1e-12);
        assert!((m.rmse - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // mean 7/3, SST = 16/9 + 4/9 + 4/9 = 24/9; SSE 5
        assert!((m.r2 - (1.0 - 5.0 / (24.0 / 9.0))).abs() < 1e-12);
        assert_eq!(Metrics::of(&[2.0, 2.0], &[2.0, 2.0]).r2, 0.0);
    }
}
