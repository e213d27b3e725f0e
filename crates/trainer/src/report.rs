//! `models/report.html`: one self-contained page (inline SVG and CSS, no
//! script, nothing fetched) with the metrics table and three charts per
//! run: predicted against actual age on test, the mean absolute error by
//! age band, and each model's feature importance.

use std::fmt::Write;

use crate::data::{JoinCounts, SPLITS};
use crate::train::Trained;

/// Age bands of the error chart: [lo, hi).
const BANDS: [(i32, i32); 8] = [(14, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 70), (70, 80), (80, 101)];
/// Ages shown on the axes.
const AGE_LO: f64 = 14.0;
const AGE_HI: f64 = 100.0;
/// One colour per model, in training order.
const COLOURS: [&str; 6] = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() { format!("{v:.decimals$}") } else { "n/a".into() }
}

/// The report page. `actual` are the test split's ages, in the order of
/// each model's `test_predictions`.
pub fn html(title: &str, counts: &JoinCounts, models: &[Trained], actual: &[f64], features: &[String]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}figcaption{{font-size:90%;color:#555}}
svg text{{font-size:11px;fill:#333}}
</style></head><body>
<h1>{t}</h1>
"#,
        t = esc(title)
    );
    // rows
    let _ = writeln!(
        h,
        "<h2>Rows</h2><table><tr><th>features rows</th><th>joined</th><th>without target</th><th>invalid target</th>{}</tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr></table>",
        SPLITS.iter().map(|s| format!("<th>{s}</th>")).collect::<String>(),
        counts.features_rows,
        counts.rows_joined,
        counts.features_without_target,
        counts.features_with_invalid_target,
        counts.rows_per_split.iter().map(|n| format!("<td>{n}</td>")).collect::<String>(),
    );
    // metrics
    h.push_str(
        "<h2>Metrics</h2><table><tr><th>model</th><th>version</th><th>validation MAE</th><th>validation RMSE</th>\
         <th>validation R²</th><th>test MAE</th><th>test RMSE</th><th>test R²</th><th>fit seconds</th></tr>\n",
    );
    for t in models {
        let m = &t.metrics;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.model),
            esc(&m.version),
            num(m.validation.mae, 3),
            num(m.validation.rmse, 3),
            num(m.validation.r2, 4),
            num(m.test.mae, 3),
            num(m.test.rmse, 3),
            num(m.test.r2, 4),
            num(m.fit_seconds, 2)
        );
    }
    h.push_str("</table>\n<h2>Predicted against actual age (test)</h2>\n");
    for (i, t) in models.iter().enumerate() {
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>{}: each square is a 2×2-year cell, darker with more rows (log scale); the line is a perfect prediction.</figcaption></figure>",
            scatter(&t.test_predictions, actual, COLOURS[i % COLOURS.len()]),
            esc(&t.metrics.model)
        );
    }
    let _ = write!(
        h,
        "<h2>Error by age band (test)</h2>\n<figure>{}<figcaption>Mean absolute error in years per band of actual age.</figcaption></figure>\n",
        bands(models, actual)
    );
    h.push_str("<h2>Feature importance</h2>\n");
    for (i, t) in models.iter().enumerate() {
        let imp = t.model.importance();
        if imp.iter().all(|v| *v == 0.0) {
            continue;
        }
        let what = match t.model.params {
            fleet_models::Params::Ridge(_) => "share of |coefficient × feature's standard deviation|",
            _ => "share of splits",
        };
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>{}: {what}.</figcaption></figure>",
            importance(features, &imp, COLOURS[i % COLOURS.len()]),
            esc(&t.metrics.model)
        );
    }
    h.push_str("</body></html>\n");
    h
}

/// A 2D histogram of (actual, predicted) with the diagonal.
fn scatter(predicted: &[f64], actual: &[f64], colour: &str) -> String {
    const W: f64 = 320.0;
    const PAD: f64 = 36.0;
    const CELL: f64 = 2.0;
    let n = ((AGE_HI - AGE_LO) / CELL).ceil() as usize;
    let mut grid = vec![0u32; n * n];
    for (&p, &a) in predicted.iter().zip(actual) {
        let cell = |v: f64| (((v - AGE_LO) / CELL).floor().max(0.0) as usize).min(n - 1);
        grid[cell(p) * n + cell(a)] += 1;
    }
    let max = grid.iter().copied().max().unwrap_or(0).max(1) as f64;
    let px = W / n as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 -8 {w} {h}">"#,
        w = W + PAD + 8.0,
        h = W + PAD + 16.0
    );
    let _ = write!(s, r##"<rect x="{PAD}" y="0" width="{W}" height="{W}" fill="#fafafa" stroke="#ccc"/>"##);
    for py in 0..n {
        for ax in 0..n {
            let c = grid[py * n + ax];
            if c == 0 {
                continue;
            }
            let op = 0.15 + 0.85 * (c as f64).ln_1p() / max.ln_1p();
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{px:.2}" height="{px:.2}" fill="{colour}" fill-opacity="{op:.2}"/>"#,
                PAD + ax as f64 * px,
                W - (py + 1) as f64 * px
            );
        }
    }
    let _ =
        write!(s, r##"<line x1="{PAD}" y1="{W}" x2="{:.1}" y2="0" stroke="#333" stroke-dasharray="4 3"/>"##, PAD + W);
    for age in (20..=100).step_by(20) {
        let f = (age as f64 - AGE_LO) / (AGE_HI - AGE_LO) * W;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{age}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{age}</text>"#,
            PAD + f,
            W + 14.0,
            PAD - 4.0,
            W - f + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">actual age</text><text x="10" y="{:.1}" transform="rotate(-90 10 {:.1})" text-anchor="middle">predicted</text></svg>"#,
        PAD + W / 2.0,
        W + 30.0,
        W / 2.0,
        W / 2.0
    );
    s
}

/// Grouped bars: MAE per age band per model.
fn bands(models: &[Trained], actual: &[f64]) -> String {
    const H: f64 = 220.0;
    const PAD: f64 = 40.0;
    let group = 16.0 * models.len().max(1) as f64 + 14.0;
    let w = PAD + group * BANDS.len() as f64 + 10.0;
    let mae: Vec<Vec<Option<f64>>> = models
        .iter()
        .map(|t| {
            BANDS
                .iter()
                .map(|&(lo, hi)| {
                    let (mut sum, mut n) = (0.0, 0u64);
                    for (&p, &a) in t.test_predictions.iter().zip(actual) {
                        if a >= lo as f64 && a < hi as f64 {
                            sum += (p - a).abs();
                            n += 1;
                        }
                    }
                    (n > 0).then(|| sum / n as f64)
                })
                .collect()
        })
        .collect();
    let top = mae.iter().flatten().flatten().copied().fold(1.0f64, f64::max);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{:.0}" viewBox="0 0 {w:.0} {:.0}">"#,
        H + 50.0,
        H + 50.0
    );
    let _ = write!(s, r##"<line x1="{PAD}" y1="{H}" x2="{w:.1}" y2="{H}" stroke="#999"/>"##);
    for tick in 0..=4 {
        let v = top * tick as f64 / 4.0;
        let y = H - v / top * (H - 10.0);
        let _ = write!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#, PAD - 4.0, y + 4.0);
    }
    for (b, &(lo, hi)) in BANDS.iter().enumerate() {
        let x0 = PAD + group * b as f64 + 7.0;
        for (m, row) in mae.iter().enumerate() {
            if let Some(v) = row[b] {
                let bh = v / top * (H - 10.0);
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="14" height="{bh:.1}" fill="{}"><title>{}: {v:.2}</title></rect>"#,
                    x0 + 16.0 * m as f64,
                    H - bh,
                    COLOURS[m % COLOURS.len()],
                    esc(&models[m].metrics.model)
                );
            }
        }
        let label = if hi > 100 { format!("{lo}+") } else { format!("{lo}-{}", hi - 1) };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            x0 + group / 2.0 - 7.0,
            H + 14.0
        );
    }
    for (m, t) in models.iter().enumerate() {
        let x = PAD + 90.0 * m as f64;
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            H + 28.0,
            COLOURS[m % COLOURS.len()],
            x + 14.0,
            H + 37.0,
            esc(&t.metrics.model)
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, largest first.
fn importance(features: &[String], imp: &[f64], colour: &str) -> String {
    const BAR: f64 = 240.0;
    const LABEL: f64 = 190.0;
    let mut order: Vec<usize> = (0..imp.len()).collect();
    order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
    let top = imp.iter().copied().fold(0.0f64, f64::max).max(1e-12);
    let h = 16.0 * order.len() as f64 + 8.0;
    let w = LABEL + BAR + 50.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}">"#
    );
    for (row, &f) in order.iter().enumerate() {
        let y = 4.0 + 16.0 * row as f64;
        let bw = imp[f] / top * BAR;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y:.1}" width="{bw:.1}" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}">{:.1}%</text>"#,
            LABEL - 6.0,
            y + 10.0,
            esc(&features[f]),
            LABEL + bw + 4.0,
            y + 10.0,
            imp[f] * 100.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_places_rows_in_cells_and_escapes_text() {
        let s = scatter(&[14.0, 14.5, 99.0], &[14.0, 15.0, 99.0], "#000");
        // two rows share the first cell (full opacity), one in the last
        assert_eq!(s.matches("<rect").count(), 1 + 2);
        assert!(s.contains(r#"fill-opacity="1.00""#), "{s}");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let imp = importance(&["x".into(), "y<".into()], &[0.25, 0.75], "#111");
        assert!(imp.find("y&lt;").unwrap() < imp.find(">x<").unwrap(), "largest first: {imp}");
        assert!(imp.contains(">75.0%<"));
    }
}
