//! The model pipeline against a real S3-compatible server over HTTP on
//! loopback (s3s-fs, started by `scripts/test`): feature-parser,
//! trainer-feeder (with JSON lines) and batch-predictor, all on `s3://`.

use fleet_catalog::CommitMarker;
use fleet_store::Location;
use fleet_synth::{Generator, Profile};
use fleet_test_support::s3_bucket as bucket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_train_and_predict_on_s3() {
    let Some(b) = bucket("fleet-models") else { return };
    let raw = Location::parse(&format!("s3://{b}/raw/")).unwrap();
    let targets = Location::parse(&format!("s3://{b}/targets/")).unwrap();
    Generator::new(Profile::Typical)
        .with_rows(3000)
        .with_files(2)
        .with_seed(3)
        .write(&raw, Some(&targets))
        .await
        .unwrap();
    let (input, features) = (format!("s3://{b}/raw/"), format!("s3://{b}/features/"));
    let fc = fleet_features::Config::from_vars([("FLEET_INPUT", input.as_str()), ("FLEET_OUTPUT", features.as_str())])
        .unwrap();
    fleet_features::FeatureParser::new(fc).await.unwrap().run().await.unwrap();

    let trained = format!("s3://{b}/trained/");
    let tc = fleet_trainer::Config::from_vars([
        ("FLEET_FEATURES", features.as_str()),
        ("FLEET_TARGETS", &format!("s3://{b}/targets/")),
        ("FLEET_OUTPUT", trained.as_str()),
        ("FLEET_JSONL", "true"),
        ("FLEET_GBDT_MAX_ITER", "10"),
    ])
    .unwrap();
    let s = fleet_trainer::train_and_report(tc).await.unwrap();
    let joined = s.metrics.rows.rows_joined;
    assert_eq!(s.metrics.rows.features_rows, 3000);
    assert!(joined > 2900 && joined == s.rows_out, "{:?}", s.metrics.rows);
    let out = Location::parse(&trained).unwrap();
    let marker: CommitMarker =
        serde_json::from_slice(&out.get_bytes("_commits/shard-00000-of-00001.json").await.unwrap()).unwrap();
    assert_eq!(marker.rows, joined);
    let jsonl = out.get_bytes("jsonl/train/part-00000.jsonl").await.unwrap();
    assert_eq!(jsonl.iter().filter(|&&c| c == b'\n').count() as u64, s.metrics.rows.rows_per_split[0]);
    assert!(out.get_bytes("models/report.html").await.unwrap().starts_with(b"<!doctype html>"));

    let predictions = format!("s3://{b}/predictions/");
    let pc = fleet_predictor::Config::from_vars([
        ("FLEET_INPUT", input.as_str()),
        ("FLEET_OUTPUT", predictions.as_str()),
        ("FLEET_MODEL", &format!("{trained}models/gbdt/,{trained}models/ridge")),
    ])
    .unwrap();
    let p = fleet_predictor::BatchPredictor::new(pc).await.unwrap().run().await.unwrap();
    assert_eq!((p.rows_in, p.rows_out), (3000, 3000));
    let v: Vec<&str> = p.metrics.models.iter().map(|m| m.column.as_str()).collect();
    assert_eq!(v, ["predicted_age_gbdt", "predicted_age_ridge"]);
    let pout = Location::parse(&predictions).unwrap();
    assert!(pout.get_bytes("dt=2025-07-01/_commits/shard-00000-of-00001.json").await.is_ok());
}
