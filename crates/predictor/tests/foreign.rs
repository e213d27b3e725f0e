//! Bring your own model: LightGBM and XGBoost models trained in Python on
//! trainer-feeder's train split; batch-predictor's predictions against the
//! libraries' own `predict()` for every raw row, NULLs and rejected cells
//! included. Needs the Python of `scripts/py-env` (`FLEET_TEST_PYTHON`).

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use fleet_predictor::{BatchPredictor, Config};
use fleet_store::Location;
use fleet_synth::{Generator, Profile};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/foreign_models.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightgbm_and_xgboost_models_predict_as_the_libraries_do() {
    let Some(python) = fleet_test_support::python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().display().to_string();
    let raw = Location::parse(&format!("{root}/raw/")).unwrap();
    let tgt = Location::parse(&format!("{root}/targets/")).unwrap();
    Generator::new(Profile::Typical)
        .with_rows(6000)
        .with_files(2)
        .with_seed(11)
        .with_malformed_share(0.03)
        .write(&raw, Some(&tgt))
        .await
        .unwrap();
    let input = raw.uri() + "/";
    let features = format!("{root}/features/");
    let fc = fleet_features::Config::from_vars([
        ("FLEET_INPUT", input.as_str()),
        ("FLEET_OUTPUT", features.as_str()),
        ("FLEET_MAX_REJECT_RATIO", "0.2"),
    ])
    .unwrap();
    fleet_features::FeatureParser::new(fc).await.unwrap().run().await.unwrap();
    let trained = format!("{root}/trained/");
    let tc = fleet_trainer::Config::from_vars([
        ("FLEET_FEATURES", features.as_str()),
        ("FLEET_TARGETS", &(tgt.uri() + "/")),
        ("FLEET_OUTPUT", trained.as_str()),
        ("FLEET_MODELS", "mean"),
    ])
    .unwrap();
    fleet_trainer::train_and_report(tc).await.unwrap();

    let out = tmp.path().join("py");
    let status = std::process::Command::new(&python)
        .arg(script())
        .arg(tmp.path().join("trained/splits/train/part-00000.parquet"))
        .arg(tmp.path().join("features"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script().display());
    let mut expected: HashMap<String, (f64, f64)> = HashMap::new();
    for line in std::fs::read_to_string(out.join("expected.csv")).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        expected.insert(f[0].to_string(), (f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    assert_eq!(expected.len(), 6000);

    let models = format!("{}/lightgbm.txt,{}/xgboost.json", out.display(), out.display());
    let predictions = format!("{root}/predictions/");
    let pc = Config::from_vars([
        ("FLEET_INPUT", input.as_str()),
        ("FLEET_OUTPUT", predictions.as_str()),
        ("FLEET_MODEL", models.as_str()),
        ("FLEET_MAX_REJECT_RATIO", "0.2"),
    ])
    .unwrap();
    let s = BatchPredictor::new(pc).await.unwrap().run().await.unwrap();
    assert_eq!(s.rows_out, 6000);
    assert!(s.rows_rejected > 50, "rows with rejected cells are predicted too");
    let mut files: Vec<_> = std::fs::read_dir(tmp.path().join("predictions/dt=2025-07-01"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let (mut rows, mut worst) = (0, 0.0f64);
    for f in files {
        for b in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap().build().unwrap() {
            let b = b.unwrap();
            let pid = b.column_by_name("pid").unwrap().as_string::<i32>();
            let lgb = b.column_by_name("predicted_age_lightgbm").unwrap().as_primitive::<Float32Type>();
            let xgb = b.column_by_name("predicted_age_xgboost").unwrap().as_primitive::<Float32Type>();
            for r in 0..b.num_rows() {
                let (want_l, want_x) = expected[pid.value(r)];
                for (got, want, lib) in [(lgb.value(r), want_l, "lightgbm"), (xgb.value(r), want_x, "xgboost")] {
                    let rel = (got as f64 - want).abs() / want.abs().max(1e-9);
                    worst = worst.max(rel);
                    assert!(rel <= 1e-5, "{lib} for {}: batch-predictor {got}, the library {want}", pid.value(r));
                }
                rows += 1;
            }
        }
    }
    assert_eq!(rows, 6000);
    #[allow(clippy::print_stderr, reason = "the margin, for whoever reads the log")]
    {
        eprintln!("largest relative difference from the libraries: {worst:e}");
    }
}
