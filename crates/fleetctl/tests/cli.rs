//! fleetctl as a user runs it: demo, gen and the local fan-out.

use std::process::Command;

fn fleetctl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_fleetctl")).args(args).env("FLEET_LOG_FORMAT", "json").output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn demo_generates_parses_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (code, out, err) =
        fleetctl(&["demo", "--rows", "6000", "--files", "3", "--shards", "3", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Generated 6000 rows in 3 files"), "{out}");
    let total = out.lines().find(|l| l.trim_start().starts_with("total")).unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("6000"), "{total}");
    for i in 0..3 {
        assert!(dir.join(format!("features/dt=2025-07-01/_commits/shard-0000{i}-of-00003.json")).exists());
        assert!(dir.join(format!("predictions/dt=2025-07-01/_commits/shard-0000{i}-of-00003.json")).exists());
        assert!(dir.join(format!("logs/feature-parser/shard-0000{i}.log")).exists());
    }
    // trained on the features and targets, then every raw row predicted by each model
    assert!(dir.join("trained/_commits/shard-00000-of-00001.json").exists());
    assert!(dir.join("trained/models/report.html").exists());
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("trained/models/metrics.json")).unwrap()).unwrap();
    let gbdt = &metrics["models"][2];
    assert_eq!(gbdt["model"], "gbdt");
    let line = out.lines().find(|l| l.starts_with("gbdt ")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.split_whitespace().nth(1).unwrap(), format!("{:.3}", gbdt["validation"]["mae"].as_f64().unwrap()));
    assert!(out.contains("batch-predictor: 3 models, 3 shards"), "{out}");
    let totals: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("total")).collect();
    assert_eq!(totals.len(), 2, "{out}");
    assert_eq!(totals[1].split_whitespace().nth(1), Some("6000"), "{out}");
    assert!(out.contains("trained/models/report.html"), "{out}");
    let ti: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("features/_runs/demo/table_input.json")).unwrap()).unwrap();
    assert_eq!(ti["TableInput"]["PartitionKeys"][0]["Name"], "dt");
    // a second demo in the same place starts clean and gives the same files
    let (code, out2, _) =
        fleetctl(&["demo", "--rows", "6000", "--files", "3", "--shards", "3", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let files = std::fs::read_dir(dir.join("features/dt=2025-07-01"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
        .count();
    assert_eq!(files, 3, "{out2}");
}

#[test]
fn run_fans_out_and_fails_for_good_on_bad_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().display().to_string();
    let (code, out, err) = fleetctl(&["gen", "--out", &base, "--rows", "3000", "--files", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("raw:     3000 rows, 4 files"), "{out}");
    let input = format!("{base}/raw/");
    let output = format!("{base}/features/");
    let (code, out, err) = fleetctl(&[
        "run",
        "feature-parser",
        "--shards",
        "2",
        "--input",
        &input,
        "--output",
        &output,
        "--run-id",
        "fan",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let total = out.lines().find(|l| l.trim_start().starts_with("total")).unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("3000"), "{out}");
    // an invalid value stops before any shard runs
    let (code, _, err) = fleetctl(&[
        "run",
        "feature-parser",
        "--shards",
        "2",
        "--input",
        &input,
        "--output",
        &output,
        "--reference-date",
        "yesterday",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FLEET_REFERENCE_DATE"), "{err}");

    // the same shards as a plan: the manifest the state machine reads, run here
    let plan = format!("{base}/runs/p1/");
    let planned = format!("{base}/planned/");
    let (code, out, err) = fleetctl(&[
        "plan",
        "feature-parser",
        "--shards",
        "3",
        "--out",
        &plan,
        "--input",
        &input,
        "--output",
        &planned,
        "--run-id",
        "p1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 shards of feature-parser, run p1"), "{out}");
    let manifest = format!("{plan}manifest.json");
    let (code, out, err) = fleetctl(&["run", "--manifest", &manifest, "--parallel", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let total = out.lines().find(|l| l.trim_start().starts_with("total")).unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("3000"), "{out}");
    for i in 0..3 {
        let marker = format!("{base}/planned/dt=2025-07-01/_commits/shard-0000{i}-of-00003.json");
        assert!(std::path::Path::new(&marker).exists(), "{marker}");
    }
    // a manifest's bad value is refused before any shard runs
    let text = std::fs::read_to_string(&manifest).unwrap().replace("2025-07-01", "2025-13-01");
    let text = text.replace("\"FLEET_RUN_ID\"", "\"FLEET_REFERENCE_DATE\"");
    std::fs::write(&manifest, text).unwrap();
    let (code, _, err) = fleetctl(&["run", "--manifest", &manifest]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FLEET_REFERENCE_DATE"), "{err}");
}

#[test]
fn unknown_commands_and_options_are_usage_errors() {
    assert_eq!(fleetctl(&["frobnicate"]).0, 2);
    let (code, _, err) = fleetctl(&["gen", "--rowz", "5"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--rowz'"), "{err}");
    let (code, out, _) = fleetctl(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("fleetctl demo"));
}

#[test]
fn a_command_with_help_prints_its_own_usage() {
    let (code, out, err) = fleetctl(&["gen", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Usage: fleetctl gen [OPTIONS]"), "{out}");
    assert!(out.contains("--malformed-share"), "{out}");
    assert!(!out.contains("fleetctl demo"), "{out}");
    // every catalog verb, and nothing of the next command
    let (code, out, _) = fleetctl(&["catalog", "--help"]);
    assert_eq!(code, 0);
    for verb in ["discover", "create", "update", "sync", "list", "show", "drop"] {
        assert!(out.lines().any(|l| l.contains(verb)), "{verb}: {out}");
    }
    assert!(!out.contains("athena"), "{out}");
    // a sub-subcommand has its own options, its variables named
    let (code, out, _) = fleetctl(&["catalog", "sync", "-h"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: fleetctl catalog sync") && out.contains("--projection"), "{out}");
    assert!(out.contains("FLEET_GLUE_DATABASE") && !out.contains("athena"), "{out}");
    let (code, out, _) = fleetctl(&["athena", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("ctas") && out.contains("--output-location"), "{out}");
    // a worker's fan-out: its settings and the fan-out's own options
    let (code, out, _) = fleetctl(&["run", "feature-parser", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--shards <N>") && out.contains("FLEET_INPUT"), "{out}");
    // a worker run in process shows its own settings and exit codes
    let (code, out, _) = fleetctl(&["feature-parser", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: fleetctl feature-parser") && out.contains("FLEET_MAX_REJECT_RATIO"), "{out}");
    assert!(out.contains("Exit codes:") && !out.contains("--shards"), "{out}");
}

#[test]
fn cleanup_is_a_dry_run_by_default_and_never_touches_protected_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("predict-age");
    for f in [
        "permanent/raw/a.parquet",
        "final-results/r.json",
        "models/m.bin",
        "test/x/y.parquet",
        "predictions/p.parquet",
        "loose.txt",
    ] {
        let p = root.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"1234").unwrap();
    }
    let uri = format!("{}/", root.display());
    let (code, out, err) = fleetctl(&["cleanup", "--root", &uri]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("would delete") && out.contains("models/") && out.contains("dry run"), "{out}");
    assert!(root.join("models/m.bin").exists(), "dry run deleted something");
    let (code, out, _) = fleetctl(&["cleanup", "--root", &uri, "--execute"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.iter().filter(|l| l.trim_start().starts_with("kept (protected)")).count(), 2, "{out}");
    assert_eq!(lines.iter().filter(|l| l.trim_start().starts_with("deleted")).count(), 4, "{out}");
    for gone in ["models/m.bin", "test/x/y.parquet", "predictions/p.parquet", "loose.txt"] {
        assert!(!root.join(gone).exists(), "{gone}");
    }
    assert!(root.join("permanent/raw/a.parquet").exists() && root.join("final-results/r.json").exists());
    // extra protection on the command line; a bucket root is refused
    std::fs::create_dir_all(root.join("keep-me")).unwrap();
    std::fs::write(root.join("keep-me/k"), b"1").unwrap();
    let (code, _, _) =
        fleetctl(&["cleanup", "--root", &uri, "--protect", "keep-me/", "--protect=permanent/", "--execute"]);
    assert_eq!(code, 0);
    assert!(root.join("keep-me/k").exists());
    let (code, _, err) = fleetctl(&["cleanup", "--root", "s3://some-bucket/"]);
    assert_ne!(code, 0);
    assert!(err.contains("never empties a whole bucket"), "{err}");
}

#[test]
fn catalog_discover_reads_the_footers_of_a_written_table() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().display().to_string();
    let (code, out, err) = fleetctl(&["gen", "--out", &base, "--rows", "500", "--files", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = fleetctl(&[
        "run",
        "feature-parser",
        "--shards",
        "1",
        "--input",
        &format!("{base}/raw/"),
        "--output",
        &format!("{base}/features/"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = fleetctl(&[
        "catalog",
        "discover",
        "--location",
        &format!("{base}/features/"),
        "--table",
        "predict_age_features",
    ]);
    assert_eq!(code, 0, "{err}");
    let ti: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ti["TableInput"]["Name"], "predict_age_features");
    assert_eq!(ti["TableInput"]["PartitionKeys"], serde_json::json!([{"Name": "dt", "Type": "string"}]));
    let cols = ti["TableInput"]["StorageDescriptor"]["Columns"].as_array().unwrap();
    assert_eq!(cols.len(), 21, "the rejects under _rejects/ are not part of the table");
    assert_eq!(cols[1], serde_json::json!({"Name": "education_level_encoded", "Type": "tinyint"}));
    // the raw table too, and an empty prefix is an error
    let (code, out, _) = fleetctl(&["catalog", "discover", "--location", &format!("{base}/raw/")]);
    assert_eq!(code, 0);
    assert!(out.contains("\"work_experience\""), "{out}");
    let (code, _, err) = fleetctl(&["catalog", "discover", "--location", &format!("{base}/nothing/")]);
    assert_ne!(code, 0);
    assert!(err.contains("no Parquet files under") || err.contains("no input objects"), "{err}");
}
