//! The worker image (`scripts/image`) as `docker run` uses it: host
//! networking to the loopback S3 server, a read-only root filesystem, config
//! from `-e`. Runs when `FLEET_TEST_IMAGE` names the image (`scripts/test`
//! builds it and sets `FLEET_REQUIRE_IMAGE=1` where Docker is available).

use std::process::{Command, Output};

fn image() -> Option<String> {
    match std::env::var("FLEET_TEST_IMAGE") {
        Ok(i) => Some(i),
        Err(_) => {
            assert!(std::env::var("FLEET_REQUIRE_IMAGE").is_err(), "FLEET_REQUIRE_IMAGE is set but no image was built");
            None
        }
    }
}

fn docker_run(image: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.args(["run", "--rm", "--network", "host", "--read-only"]);
    for (k, v) in env {
        c.arg("-e").arg(format!("{k}={v}"));
    }
    c.arg(image).args(args).output().unwrap()
}

#[test]
fn the_image_parses_a_shard_on_s3_and_reports_bad_configuration() {
    let Some(image) = image() else { return };
    let Some(bucket) = fleet_test_support::s3_bucket("fleet-image") else { return };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let raw = fleet_store::Location::parse(&format!("s3://{bucket}/raw/")).unwrap();
        fleet_synth::Generator::new(fleet_synth::Profile::Typical)
            .with_rows(2000)
            .with_files(2)
            .write(&raw, None)
            .await
            .unwrap();
    });
    let aws: Vec<(&str, String)> = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
        .into_iter()
        .map(|k| (k, std::env::var(k).unwrap()))
        .collect();
    let mut env = aws.clone();
    env.extend([
        ("FLEET_INPUT", format!("s3://{bucket}/raw/")),
        ("FLEET_OUTPUT", format!("s3://{bucket}/features/")),
        ("FLEET_RUN_ID", "image".to_string()),
    ]);
    let out = docker_run(&image, &env, &[]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}{}", String::from_utf8_lossy(&out.stderr));
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "Run summary.");
    assert_eq!(last["rows_out"].as_u64(), Some(2000));
    let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap());
    assert!(root.join(&bucket).join("features/dt=2025-07-01/_commits/shard-00000-of-00001.json").exists());

    let out = docker_run(&image, &aws, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FLEET_INPUT is required"));
    let out = docker_run(&image, &[], &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FLEET_SHARD_COUNT"));
}
