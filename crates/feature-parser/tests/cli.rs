//! The feature-parser binary as ECS runs it: environment in, exit code out.

use std::process::{Command, Output};

fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_feature-parser"));
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn missing_and_invalid_configuration_exit_2_naming_the_variable() {
    let o = run(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("FLEET_INPUT is required"), "{}", text(&o));
    let o = run(
        &[("FLEET_INPUT", "/x/"), ("FLEET_OUTPUT", "/y/"), ("FLEET_SHARD_INDEX", "7"), ("FLEET_SHARD_COUNT", "4")],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("FLEET_SHARD_INDEX=7 must be less than FLEET_SHARD_COUNT=4"), "{}", text(&o));
    let o = run(&[("FLEET_INPUT", "/x/"), ("FLEET_OUTPUT", "/y/")], &["--reference-date", "2025-13-01"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("FLEET_REFERENCE_DATE=\\\"2025-13-01\\\" is invalid: expected a date YYYY-MM-DD"),
        "{}",
        text(&o)
    );
}

#[test]
fn help_documents_every_variable() {
    let o = run(&[], &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o);
    for v in fleet_contract::VARS {
        assert!(t.contains(v.name), "{} missing from --help", v.name);
    }
}

#[test]
fn a_run_exits_0_and_logs_json_with_a_final_summary_line() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(
        raw.join("a.ndjson"),
        "{\"pid\":\"x\",\"skills\":\"[1,2]\",\"education\":null}\n{\"pid\":\"y\",\"skills\":\"[\"}\n",
    )
    .unwrap();
    let input = format!("{}/", raw.display());
    let output = format!("{}/out/", tmp.path().display());
    let o = run(&[("FLEET_INPUT", &input), ("FLEET_OUTPUT", &output), ("FLEET_RUN_ID", "cli")], &[]);
    // one of two rows rejected: over the default threshold of 0.01
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("FLEET_MAX_REJECT_RATIO=0.01"), "{}", text(&o));
    let o = run(
        &[("FLEET_INPUT", &input), ("FLEET_OUTPUT", &output), ("FLEET_RUN_ID", "cli")],
        &["--max-reject-ratio", "0.5"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "Run summary.");
    assert_eq!(
        (last["rows_in"].as_u64(), last["rows_out"].as_u64(), last["rows_rejected"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    assert!(tmp.path().join("out/dt=2025-07-01/_commits/shard-00000-of-00001.json").exists());
}

#[test]
fn sigterm_stops_the_run_without_a_commit_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = format!("{}/raw/", tmp.path().display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let loc = fleet_store::Location::parse(&raw).unwrap();
        fleet_synth::Generator::new(fleet_synth::Profile::Typical)
            .with_rows(60_000)
            .with_files(2)
            .write(&loc, None)
            .await
            .unwrap();
    });
    let output = format!("{}/out/", tmp.path().display());
    let child = Command::new(env!("CARGO_BIN_EXE_feature-parser"))
        .env("FLEET_INPUT", &raw)
        .env("FLEET_OUTPUT", &output)
        .env("FLEET_THREADS", "1")
        .env("FLEET_BATCH_ROWS", "1024")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until it is working, then stop it as ECS does
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{log}");
    assert!(log.contains("Terminated by signal"), "{log}");
    assert!(!tmp.path().join("out/dt=2025-07-01/_commits/shard-00000-of-00001.json").exists());
}

#[test]
fn the_s3_server_stopping_mid_run_fails_cleanly_without_a_commit_marker() {
    let Some(mut server) = fleet_test_support::S3Server::start("fleet-crash") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let raw = format!("{}/raw/", tmp.path().display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let loc = fleet_store::Location::parse(&raw).unwrap();
        fleet_synth::Generator::new(fleet_synth::Profile::Typical)
            .with_rows(40_000)
            .with_files(4)
            .write(&loc, None)
            .await
            .unwrap();
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_feature-parser"))
        .env("FLEET_INPUT", &raw)
        .env("FLEET_OUTPUT", "s3://fleet-crash/features/")
        .env("FLEET_THREADS", "1")
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the first data file is complete: stop the server while the shard goes on
    let features = server.root.join("fleet-crash/features");
    for _ in 0..600 {
        if features.exists() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(features.exists(), "the run wrote nothing to S3");
    server.stop();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("Run failed."), "{log}");
    assert!(!features.join("dt=2025-07-01/_commits").exists(), "no commit marker");
}

/// This binary has no AWS SDK: asked to register in Glue, it refuses at
/// start rather than end without the table a user expects.
#[test]
fn glue_settings_are_refused_by_a_binary_that_cannot_reach_glue() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (format!("{}/raw/", tmp.path().display()), format!("{}/out/", tmp.path().display()));
    for var in ["FLEET_GLUE_DATABASE", "FLEET_GLUE_TABLE"] {
        let o = run(&[("FLEET_INPUT", &input), ("FLEET_OUTPUT", &output), (var, "lake")], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains(
                "FLEET_GLUE_DATABASE and FLEET_GLUE_TABLE are set, but this binary was built without the AWS SDK"
            ),
            "{}",
            text(&o)
        );
        assert!(!tmp.path().join("out").exists(), "nothing was written");
    }
}
