//! The mean baseline and ridge regression.
//!
//! Ridge standardises each feature by the mean and standard deviation of
//! its non-NULL training values, replaces NULL by the mean (0 once
//! standardised, so a NULL adds nothing), and minimises
//! `|y - b - Zw|² + alpha |w|²` with the intercept `b` not penalised (as
//! scikit-learn's `Ridge` on standardised features). The coefficients are
//! stored on the raw scale: `prediction = intercept + Σ coefficient_j *
//! (x_j, or means_j when x_j is NULL)`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Matrix, ModelError};

/// The mean of the targets.
pub fn train_mean(y: &[f64]) -> Result<f64, ModelError> {
    if y.is_empty() {
        return Err(ModelError::Training("no rows to train on".into()));
    }
    Ok(y.iter().sum::<f64>() / y.len() as f64)
}

/// Ridge's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RidgeParams {
    /// L2 penalty on the standardised coefficients (default 1.0, as
    /// scikit-learn's `Ridge`).
    pub alpha: f64,
}

impl Default for RidgeParams {
    fn default() -> Self {
        RidgeParams { alpha: 1.0 }
    }
}

/// A fitted ridge regression, on the raw scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ridge {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// What a NULL feature is replaced by: its training mean.
    pub means: Vec<f64>,
    /// The training standard deviations (1 for a constant feature), for
    /// importance.
    pub scales: Vec<f64>,
}

impl Ridge {
    #[inline]
    pub fn predict_row(&self, x: &Matrix, row: usize) -> f64 {
        let mut p = self.intercept;
        for (f, (c, m)) in self.coefficients.iter().zip(&self.means).enumerate() {
            let v = x.get(f, row);
            p += c * if v.is_nan() { *m } else { v };
        }
        p
    }
}

/// Fits ridge regression of `y` on `x`.
pub fn train_ridge(x: &Matrix, y: &[f64], params: RidgeParams) -> Result<Ridge, ModelError> {
    let n = x.rows();
    let k = x.names().len();
    if n == 0 || y.len() != n {
        return Err(ModelError::Training(format!("{n} rows of features and {} targets", y.len())));
    }
    if !(params.alpha >= 0.0 && params.alpha.is_finite()) {
        return Err(ModelError::Training(format!("ridge alpha {}; expected a finite number >= 0", params.alpha)));
    }
    let (means, scales): (Vec<f64>, Vec<f64>) = (0..k)
        .into_par_iter()
        .map(|f| {
            let (mut s, mut c) = (0.0, 0usize);
            for &v in x.column(f) {
                if !v.is_nan() {
                    s += v;
                    c += 1;
                }
            }
            let mean = if c > 0 { s / c as f64 } else { 0.0 };
            let var = x.column(f).iter().filter(|v| !v.is_nan()).map(|v| (v - mean) * (v - mean)).sum::<f64>()
                / c.max(1) as f64;
            let sd = var.sqrt();
            (mean, if sd > 1e-12 { sd } else { 1.0 })
        })
        .unzip();
    let y_mean = y.iter().sum::<f64>() / n as f64;
    // Z'Z and Z'y over row chunks, Z the standardised, imputed features.
    const CHUNK: usize = 16_384;
    let z = |f: usize, r: usize| {
        let v = x.get(f, r);
        if v.is_nan() { 0.0 } else { (v - means[f]) / scales[f] }
    };
    // summed in chunk order, so that the result does not depend on threads
    let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut a = vec![0.0; k * k];
            let mut b = vec![0.0; k];
            let mut row = vec![0.0; k];
            let start = c * CHUNK;
            for (r, yr) in y.iter().enumerate().take((start + CHUNK).min(n)).skip(start) {
                for (f, v) in row.iter_mut().enumerate() {
                    *v = z(f, r);
                }
                let t = yr - y_mean;
                for i in 0..k {
                    b[i] += row[i] * t;
                    for j in 0..=i {
                        a[i * k + j] += row[i] * row[j];
                    }
                }
            }
            (a, b)
        })
        .collect();
    let (mut a, mut b) = (vec![0.0; k * k], vec![0.0; k]);
    for (a2, b2) in parts {
        a.iter_mut().zip(a2).for_each(|(x, y)| *x += y);
        b.iter_mut().zip(b2).for_each(|(x, y)| *x += y);
    }
    for i in 0..k {
        a[i * k + i] += params.alpha.max(1e-9);
        for j in 0..i {
            a[j * k + i] = a[i * k + j];
        }
    }
    let w = solve_spd(&mut a, &b, k)?;
    let coefficients: Vec<f64> = w.iter().zip(&scales).map(|(w, s)| w / s).collect();
    let intercept = y_mean - coefficients.iter().zip(&means).map(|(c, m)| c * m).sum::<f64>();
    Ok(Ridge { intercept, coefficients, means, scales })
}

/// Solves `a w = b` for a symmetric positive definite `a` (Cholesky).
fn solve_spd(a: &mut [f64], b: &[f64], k: usize) -> Result<Vec<f64>, ModelError> {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 {
            return Err(ModelError::Training("ridge: the normal equations are not positive definite".into()));
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    let mut z = b.to_vec();
    for i in 0..k {
        for p in 0..i {
            z[i] -= a[i * k + p] * z[p];
        }
        z[i] /= a[i * k + i];
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            z[i] -= a[p * k + i] * z[p];
        }
        z[i] /= a[i * k + i];
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_function_and_imputes_nulls_with_the_mean() {
        // y = 3 + 2 a - b, exactly; alpha tiny
        let a: Vec<f64> = (0..200).map(|i| (i % 17) as f64).collect();
        let b: Vec<f64> = (0..200).map(|i| ((i * 7) % 23) as f64 * 0.5).collect();
        let y: Vec<f64> = a.iter().zip(&b).map(|(a, b)| 3.0 + 2.0 * a - b).collect();
        let x = Matrix::new(vec!["a".into(), "b".into()], vec![a.clone(), b]).unwrap();
        let r = train_ridge(&x, &y, RidgeParams { alpha: 0.0 }).unwrap();
        assert!((r.coefficients[0] - 2.0).abs() < 1e-8, "{r:?}");
        assert!((r.coefficients[1] + 1.0).abs() < 1e-8, "{r:?}");
        assert!((r.intercept - 3.0).abs() < 1e-8, "{r:?}");
        let q = Matrix::new(vec!["a".into(), "b".into()], vec![vec![1.0, f64::NAN], vec![f64::NAN, 2.0]]).unwrap();
        assert!((r.predict_row(&q, 0) - (3.0 + 2.0 - r.means[1])).abs() < 1e-8);
        assert!((r.predict_row(&q, 1) - (3.0 + 2.0 * r.means[0] - 2.0)).abs() < 1e-8);
        // a penalty shrinks the coefficients
        let s = train_ridge(&x, &y, RidgeParams { alpha: 1000.0 }).unwrap();
        assert!(s.coefficients[0].abs() < 2.0 && s.coefficients[0] > 0.0);
        assert_eq!(train_mean(&[1.0, 2.0, 6.0]).unwrap(), 3.0);
    }
}
