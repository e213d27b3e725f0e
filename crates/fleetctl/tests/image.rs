//! The fleet image (`scripts/build-images`) as `docker run` and ECS use it:
//! host networking to a loopback S3 server, a read-only root filesystem,
//! config from `-e`, the worker named by the first argument; `docker stop`
//! in the middle of a run. Runs when `FLEET_TEST_IMAGE` names the image
//! (`scripts/test` builds it and sets `FLEET_REQUIRE_IMAGE=1` where Docker
//! is available).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn image() -> Option<String> {
    match std::env::var("FLEET_TEST_IMAGE") {
        Ok(i) => Some(i),
        Err(_) => {
            assert!(std::env::var("FLEET_REQUIRE_IMAGE").is_err(), "FLEET_REQUIRE_IMAGE is set but no image was built");
            None
        }
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `docker run` arguments: host network, read-only, the environment.
fn run_args(env: &[(&str, String)]) -> Vec<String> {
    let mut a: Vec<String> = ["--network", "host", "--read-only"].iter().map(|s| s.to_string()).collect();
    for (k, v) in env {
        a.push("-e".into());
        a.push(format!("{k}={v}"));
    }
    a
}

fn docker_run(image: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.args(["run", "--rm"]).args(run_args(env)).arg(image).args(args);
    c.output().unwrap()
}

fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", std::env::var("AWS_ACCESS_KEY_ID").unwrap()),
        ("AWS_SECRET_ACCESS_KEY", std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

#[test]
fn the_image_is_small_non_root_without_a_shell_and_picks_the_worker() {
    let Some(image) = image() else { return };
    let o = docker(&["image", "inspect", "-f", "{{.Size}} {{.Config.User}} {{json .Config.Entrypoint}}", &image]);
    let inspected = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mut parts = inspected.splitn(3, ' ');
    let size: u64 = parts.next().unwrap().parse().unwrap();
    assert!(size < 25_000_000, "{size} bytes");
    assert_eq!(parts.next(), Some("65534:65534"));
    assert_eq!(parts.next(), Some(r#"["/usr/local/bin/fleetctl"]"#));
    // no shell to run anything else
    let o = docker(&["run", "--rm", "--entrypoint", "/bin/sh", &image, "-c", "true"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    for worker in ["feature-parser", "batch-predictor", "trainer-feeder"] {
        let o = docker_run(&image, &[], &[worker, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(text(&o).contains(&format!("Usage: fleetctl {worker}")), "{}", text(&o));
    }
    let o = docker_run(&image, &[], &["catalog", "sync", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
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
    let aws = aws_env(&std::env::var("AWS_ENDPOINT_URL").unwrap());
    let mut env = aws.clone();
    env.extend([
        ("FLEET_INPUT", format!("s3://{bucket}/raw/")),
        ("FLEET_OUTPUT", format!("s3://{bucket}/features/")),
        ("FLEET_RUN_ID", "image".to_string()),
    ]);
    let out = docker_run(&image, &env, &["feature-parser"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "Run summary.");
    assert_eq!(last["rows_out"].as_u64(), Some(2000));
    let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap());
    assert!(root.join(&bucket).join("features/dt=2025-07-01/_commits/shard-00000-of-00001.json").exists());

    let out = docker_run(&image, &aws, &["feature-parser"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FLEET_INPUT is required"));
    let out = docker_run(&image, &[], &["feature-parser", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FLEET_SHARD_COUNT"));
}

/// In-progress multipart uploads of s3s-fs: `.upload-<id>.json` in its root.
fn uploads(root: &Path) -> usize {
    std::fs::read_dir(root)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with(".upload-")).count())
        .unwrap_or(0)
}

/// Parquet files under a partition folder, by name.
fn data_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".parquet"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What `docker stop` waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StopWhen {
    /// A multipart upload of the output is in progress.
    Uploading,
    /// The worker has logged progress.
    Working,
}

/// `docker stop` (SIGTERM, as ECS and the Fargate Spot notice send it) in
/// the middle of a shard: the worker stops, aborts its multipart uploads,
/// commits nothing and exits 143; running the shard again gives the whole
/// output, every row once.
fn stopped_in_the_middle_then_run_again(worker: &str, when: StopWhen, extra: &[(&str, String)]) {
    let Some(image) = image() else { return };
    let bucket = format!("fleet-stop-{worker}");
    let Some(server) = fleet_test_support::S3Server::start(&bucket) else { return };
    // large enough that feature-parser's output (about 14 bytes a row) goes
    // past the 8 MiB a multipart upload starts at, while the run goes on
    let rows = 1_500_000u64;
    let generated = docker_run(
        &image,
        &aws_env(&server.endpoint),
        &[
            "gen",
            "--out",
            &format!("s3://{bucket}"),
            "--rows",
            &rows.to_string(),
            "--files",
            "1",
            "--no-targets",
            "--malformed-share",
            "0",
        ],
    );
    assert_eq!(generated.status.code(), Some(0), "{}", text(&generated));
    if worker == "batch-predictor" {
        let model = fleet_models::Model::new("mean", "actual_age", vec![], fleet_models::Params::Mean { value: 40.0 });
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let loc = fleet_store::Location::parse_with(
                &format!("s3://{bucket}/models/mean/"),
                &[("aws_endpoint", server.endpoint.as_str())],
            )
            .unwrap();
            loc.put_bytes("model.json", model.to_json()).await.unwrap();
        });
    }
    let mut env = aws_env(&server.endpoint);
    env.extend([
        ("FLEET_INPUT", format!("s3://{bucket}/raw/")),
        ("FLEET_OUTPUT", format!("s3://{bucket}/out/")),
        ("FLEET_RUN_ID", "stopped".to_string()),
        ("FLEET_THREADS", "1".to_string()),
        // row groups flushed often, so that the output is a multipart upload early
        ("FLEET_ROW_GROUP_BYTES", "1MiB".to_string()),
        ("FLEET_PROGRESS_SECONDS", "1".to_string()),
    ]);
    env.extend(extra.iter().cloned());
    let name = format!("fleet-stop-{worker}-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
    args.extend(run_args(&env));
    args.extend([image.clone(), worker.to_string()]);
    let o = Command::new("docker").args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // wait until an upload is in progress (or the worker is at work), then stop the container
    let start = Instant::now();
    let ready = || match when {
        StopWhen::Uploading => uploads(&server.root) > 0,
        StopWhen::Working => text(&docker(&["logs", &name])).contains("\"Progress.\""),
    };
    while !ready() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let in_progress = ready();
    let o = docker(&["stop", "-t", "60", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let code =
        String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]).stdout).trim().to_string();
    let logs = text(&docker(&["logs", &name]));
    let _ = docker(&["rm", "-f", &name]);
    assert!(in_progress, "the worker was not {when:?} before the stop: {logs}");
    assert!(!logs.contains("Run summary."), "the run ended before the stop: {logs}");
    assert_eq!(code, "143", "{logs}");
    assert!(logs.contains("Terminated by signal"), "{logs}");
    assert_eq!(uploads(&server.root), 0, "an upload was left behind: {logs}");
    let partition = server.root.join(&bucket).join("out/dt=2025-07-01");
    assert!(!partition.join("_commits").exists(), "a stopped shard commits nothing");

    // the shard again: complete, every row once
    let o = docker_run(&image, &env, &[worker]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(partition.join("_commits/shard-00000-of-00001.json")).unwrap()).unwrap();
    assert_eq!(marker["rows"].as_u64(), Some(rows));
    let mut committed: Vec<String> = marker["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    committed.sort();
    assert_eq!(data_files(&partition), committed, "no file beside the committed ones");
    assert_eq!(uploads(&server.root), 0);
}

#[test]
fn feature_parser_stopped_by_docker_commits_nothing_and_a_rerun_completes() {
    stopped_in_the_middle_then_run_again("feature-parser", StopWhen::Uploading, &[]);
}

#[test]
fn batch_predictor_stopped_by_docker_commits_nothing_and_a_rerun_completes() {
    // its output (a prediction per row) is too small for a multipart upload: stopped while it works
    stopped_in_the_middle_then_run_again(
        "batch-predictor",
        StopWhen::Working,
        &[("FLEET_MODEL", "s3://fleet-stop-batch-predictor/models/mean/".to_string())],
    );
}

/// A plan run here as containers (`fleetctl run --manifest --docker`), as
/// the state machine runs it as tasks.
#[test]
fn a_plan_runs_as_containers_of_the_image() {
    let Some(image) = image() else { return };
    let Some(bucket) = fleet_test_support::s3_bucket("fleet-image-plan") else { return };
    let fleetctl = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_fleetctl")).args(args).output().unwrap();
    let o = fleetctl(&["gen", "--out", &format!("s3://{bucket}"), "--rows", "3000", "--files", "3", "--no-targets"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = format!("s3://{bucket}/runs/p1/");
    let o = fleetctl(&[
        "plan",
        "feature-parser",
        "--shards",
        "3",
        "--out",
        &plan,
        "--run-id",
        "p1",
        "--input",
        &format!("s3://{bucket}/raw/"),
        "--output",
        &format!("s3://{bucket}/features/"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = fleetctl(&["run", "--manifest", &format!("{plan}manifest.json"), "--parallel", "3", "--docker", &image]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let total = out.lines().find(|l| l.trim_start().starts_with("total")).unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("3000"), "{out}");
    let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap());
    for i in 0..3 {
        let marker = root.join(&bucket).join(format!("features/dt=2025-07-01/_commits/shard-0000{i}-of-00003.json"));
        assert!(marker.exists(), "{}", marker.display());
    }
}
