//! feature-parser against a real S3-compatible server over HTTP on loopback
//! (s3s-fs, started by `scripts/test`; see `fleet-test-support`).

use fleet_catalog::CommitMarker;
use fleet_features::{Config, FeatureMetrics, FeatureParser};
use fleet_store::Location;
use fleet_synth::{Generator, Profile};

use fleet_test_support::s3_bucket as bucket;

async fn run(input: &str, output: &str) -> fleet_worker::RunSummary<FeatureMetrics> {
    let cfg = Config::from_vars([
        ("FLEET_INPUT", input),
        ("FLEET_OUTPUT", output),
        ("FLEET_RUN_ID", "s3"),
        ("FLEET_THREADS", "2"),
    ])
    .unwrap();
    FeatureParser::new(cfg).await.unwrap().run().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_run_matches_a_local_run_byte_for_byte() {
    let Some(b) = bucket("fleet-e2e") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let generator = Generator::new(Profile::Typical).with_rows(3000).with_files(3).with_seed(21);
    let local_raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    let s3_raw = Location::parse(&format!("s3://{b}/raw/")).unwrap();
    generator.write(&local_raw, None).await.unwrap();
    generator.write(&s3_raw, None).await.unwrap();

    let local = run(&format!("{}/", local_raw.uri()), &format!("{}/features/", tmp.path().display())).await;
    let remote = run(&format!("s3://{b}/raw/"), &format!("s3://{b}/features/")).await;
    assert_eq!((remote.rows_in, remote.rows_out), (3000, 3000));
    assert_eq!(remote.rows_rejected, local.rows_rejected);

    let out = Location::parse(&format!("s3://{b}/features/")).unwrap();
    let marker: CommitMarker =
        serde_json::from_slice(&out.get_bytes("dt=2025-07-01/_commits/shard-00000-of-00001.json").await.unwrap())
            .unwrap();
    let local_marker: CommitMarker = serde_json::from_slice(
        &std::fs::read(tmp.path().join("features/dt=2025-07-01/_commits/shard-00000-of-00001.json")).unwrap(),
    )
    .unwrap();
    // Keys end in a hash of the input URI, so they differ; stems, rows, checksums and bytes do not.
    let stem = |k: &str| k.rsplit_once('-').map(|(s, _)| s.to_string()).unwrap_or_default();
    let files = |m: &CommitMarker| m.files.iter().map(|f| (stem(&f.key), f.rows, f.crc32c.clone())).collect::<Vec<_>>();
    assert_eq!(files(&marker), files(&local_marker), "same files, rows and checksums over S3 as locally");
    for (f, l) in marker.files.iter().zip(&local_marker.files) {
        let bytes = out.get_bytes(&f.key).await.unwrap();
        assert_eq!(bytes, std::fs::read(tmp.path().join("features").join(&l.key)).unwrap(), "{}", f.key);
    }
    let ti: serde_json::Value =
        serde_json::from_slice(&out.get_bytes("_runs/s3/table_input.json").await.unwrap()).unwrap();
    assert_eq!(ti["TableInput"]["StorageDescriptor"]["Location"], format!("s3://{b}/features/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_error() {
    if bucket("fleet-exists").is_none() {
        return;
    }
    let cfg = Config::from_vars([
        ("FLEET_INPUT", "s3://fleet-no-such-bucket/raw/"),
        ("FLEET_OUTPUT", "s3://fleet-exists/out/"),
    ])
    .unwrap();
    let err = FeatureParser::new(cfg).await.unwrap().run().await.unwrap_err();
    assert!(
        matches!(&err, fleet_worker::JobError::Store(fleet_store::StoreError::NoSuchBucket { uri, .. }) if uri == "s3://fleet-no-such-bucket/raw"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the bucket of s3://fleet-no-such-bucket/raw does not exist (endpoint {})",
            std::env::var("AWS_ENDPOINT_URL").unwrap()
        )
    );
    // a missing bucket is configuration (2): retrying cannot help
    assert_eq!(err.exit_code(), 2);
}
