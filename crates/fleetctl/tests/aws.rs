//! fleetctl's Glue and Athena commands as a user runs them, against the
//! moto server (Glue, Athena) and s3s-fs (data) that `scripts/test` starts.
#![cfg(feature = "aws")]

use std::process::Command;

use serde_json::{Value, json};

fn fleetctl(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(args)
        .envs(env.iter().copied())
        .env("FLEET_LOG_FORMAT", "json")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn database(name: &str) -> String {
    format!("cli_{name}_{}_{}", std::process::id(), fleet_test_support::free_port())
}

fn servers(bucket: &str) -> Option<String> {
    fleet_test_support::moto_endpoint()?;
    fleet_test_support::s3_bucket(bucket)
}

#[test]
fn run_registers_the_table_and_its_partition_and_the_catalog_commands_read_it_back() {
    let Some(b) = servers("fleet-cli-glue") else { return };
    let db = database("run");
    let (code, out, err) = fleetctl(&["gen", "--out", &format!("s3://{b}"), "--rows", "1500", "--files", "2"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let features = format!("s3://{b}/features/");
    let (code, out, err) = fleetctl(
        &["run", "feature-parser", "--shards", "2", "--input", &format!("s3://{b}/raw/"), "--output", &features],
        &[("FLEET_GLUE_DATABASE", &db)],
    );
    assert_eq!(code, 0, "{out}{err}");
    // the shard that completed the partition registered it; the finalize step after the fan-out finds it done
    assert!(err.contains("Registered in Glue."), "{err}");
    assert!(out.ends_with(&format!("Glue table {db}.features is up to date\nalready     dt=2025-07-01\n")), "{out}");

    let (code, out, err) = fleetctl(&["catalog", "show", "--database", &db, "--table", "features"], &[]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["RegisteredPartitions"], 1);
    assert_eq!(shown["TableInput"]["StorageDescriptor"]["Location"], features);
    let columns = shown["TableInput"]["StorageDescriptor"]["Columns"].as_array().unwrap();
    assert_eq!(columns.len(), 21, "pid and the 20 features");
    assert_eq!(columns[0], json!({"Name": "pid", "Type": "string"}));

    let (_, out, _) = fleetctl(&["catalog", "list"], &[]);
    assert!(out.lines().any(|l| l == db), "{out}");
    let (_, out, _) = fleetctl(&["catalog", "list", "--database", &db], &[]);
    let line = out.lines().next().unwrap_or_default();
    assert!(line.starts_with("features ") && line.contains("21 columns  partitioned by [dt]"), "{out}");

    // the finalize step again: nothing new
    let (code, out, err) = fleetctl(&["catalog", "sync", "--location", &features, "--database", &db], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("Glue table {db}.features is up to date\nalready     dt=2025-07-01\n"));

    let (code, out, _) = fleetctl(&["catalog", "drop", "--database", &db, "--table", "features"], &[]);
    assert_eq!((code, out), (0, format!("dropped Glue table {db}.features (its data is untouched)\n")));
    let (code, _, err) = fleetctl(&["catalog", "show", "--database", &db, "--table", "features"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("Glue table {db}.features does not exist")), "{err}");
}

/// A one-off shard (`aws ecs run-task`) ends with a queryable table: the
/// shard that completes the partition registers it, without a finalize step.
#[test]
fn the_shard_that_completes_a_partition_registers_it_in_glue() {
    let Some(b) = servers("fleet-cli-oneoff") else { return };
    let db = database("oneoff");
    let (code, out, err) = fleetctl(&["gen", "--out", &format!("s3://{b}"), "--rows", "1200", "--files", "2"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let features = format!("s3://{b}/features/");
    let input = format!("s3://{b}/raw/");
    let shard = |index: &str| {
        fleetctl(
            &["feature-parser"],
            &[
                ("FLEET_INPUT", &input),
                ("FLEET_OUTPUT", &features),
                ("FLEET_GLUE_DATABASE", &db),
                ("FLEET_GLUE_TABLE", "oneoff"),
                ("FLEET_SHARD_INDEX", index),
                ("FLEET_SHARD_COUNT", "2"),
                ("FLEET_RUN_ID", "oneoff"),
            ],
        )
    };
    let (code, out, err) = shard("1");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Partition not complete yet"), "{out}");
    let (code, _, _) = fleetctl(&["catalog", "show", "--database", &db, "--table", "oneoff"], &[]);
    assert_eq!(code, 1, "one shard of two: nothing registered yet");
    let (code, out, err) = shard("0");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Registered in Glue."), "{out}");
    let (code, out, err) = fleetctl(&["catalog", "show", "--database", &db, "--table", "oneoff"], &[]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["RegisteredPartitions"], 1);
    assert_eq!(shown["TableInput"]["StorageDescriptor"]["Location"], features);
    // the shard again (a retry): still one partition, still exit 0
    let (code, out, err) = shard("0");
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = fleetctl(&["catalog", "show", "--database", &db, "--table", "oneoff"], &[]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["RegisteredPartitions"], 1);
}

#[test]
fn the_s3_server_stopping_mid_run_registers_nothing() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let Some(mut server) = fleet_test_support::S3Server::start("fleet-cli-crash") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, out, err) =
        fleetctl(&["gen", "--out", data.to_str().unwrap(), "--rows", "40000", "--files", "4", "--no-targets"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let db = database("crash");
    let env =
        [("AWS_ENDPOINT_URL", server.endpoint.as_str()), ("FLEET_GLUE_DATABASE", db.as_str()), ("FLEET_THREADS", "1")];
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["run", "feature-parser", "--shards", "2", "--parallel", "1", "--retries", "0"])
        .args(["--input", &format!("{}/raw/", data.display()), "--output", "s3://fleet-cli-crash/features/"])
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let features = server.root.join("fleet-cli-crash/features");
    for _ in 0..600 {
        if features.join("dt=2025-07-01").exists() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(features.join("dt=2025-07-01").exists(), "the run wrote nothing to S3");
    server.stop();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("nothing registered in Glue"), "{stdout}{stderr}");
    // the server comes back: the partition is still not complete, so nothing is registered
    server.restart();
    let (code, out, err) = fleetctl(
        &["catalog", "sync", "--location", "s3://fleet-cli-crash/features/", "--database", &db],
        &[("AWS_ENDPOINT_URL", &server.endpoint)],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("no complete partition under s3://fleet-cli-crash/features/; nothing registered\n"),
        "{out}"
    );
    let (code, _, _) = fleetctl(&["catalog", "show", "--database", &db, "--table", "features"], &[]);
    assert_eq!(code, 1, "no table, no partition");
}

#[test]
fn athena_exports_rows_and_prints_statistics_and_cost() {
    let Some(b) = servers("fleet-cli-athena") else { return };
    let rows = json!([
        {"Data": [{"VarCharValue": "pid"}, {"VarCharValue": "n"}]},
        {"Data": [{"VarCharValue": "p1"}, {"VarCharValue": "3"}]},
        {"Data": [{"VarCharValue": "p2"}, {}]}
    ]);
    let info = json!([{"Name": "pid", "Type": "varchar"}, {"Name": "n", "Type": "integer"}]);
    let seed = json!({"results": [{"rows": rows, "column_info": info}]});
    assert_eq!(fleet_test_support::moto_api("/moto-api/static/athena/query-results", &seed.to_string()), 201);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("q.sql");
    std::fs::write(&file, "SELECT pid, n FROM features WHERE dt = '2025-07-01'").unwrap();
    let out_file = tmp.path().join("rows.jsonl");
    let (code, out, err) = fleetctl(
        &[
            "athena",
            "--file",
            file.to_str().unwrap(),
            "--database",
            "fleet",
            "--output-location",
            &format!("s3://{b}/results/"),
            "--out",
            out_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("2 rows; query "), "{out}");
    assert!(out.contains(" SUCCEEDED: queue 0.00 s, planning 0.00 s, execution 0.00 s, total 0.00 s"), "{out}");
    assert!(out.ends_with("scanned 0 B, cost $0.000048\n"), "{out}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "{\"pid\":\"p1\",\"n\":3}\n{\"pid\":\"p2\",\"n\":null}\n");

    // CTAS into a non-empty location is refused before Athena is asked
    let (code, _, _) = fleetctl(&["gen", "--out", &format!("s3://{b}/permanent"), "--rows", "10", "--no-targets"], &[]);
    assert_eq!(code, 0);
    let (code, _, err) = fleetctl(
        &[
            "athena",
            "ctas",
            "--table",
            "permanent_raw",
            "--location",
            &format!("s3://{b}/permanent/raw/"),
            "--sql",
            "SELECT * FROM raw",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already holds 1 object(s); CTAS and UNLOAD write to an empty location"), "{err}");
}

#[test]
fn cleanup_drops_only_the_unprotected_tables_under_the_root() {
    let Some(b) = servers("fleet-cli-cleanup") else { return };
    let db = database("cleanup");
    let tmp = tempfile::tempdir().unwrap();
    let root = format!("s3://{b}/work");
    for (name, location) in [
        ("tmp_run_1", format!("{root}/run-1/features/")),
        ("permanent_raw", format!("{root}/run-2/raw/")),
        ("kept_by_prefix", format!("{root}/permanent/k/")),
        ("elsewhere", format!("s3://{b}/other/t/")),
    ] {
        let ti = json!({"DatabaseName": db, "TableInput": {
            "Name": name, "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {"Columns": [{"Name": "pid", "Type": "string"}], "Location": location}
        }});
        let f = tmp.path().join(format!("{name}.json"));
        std::fs::write(&f, ti.to_string()).unwrap();
        let (code, out, err) = fleetctl(&["catalog", "create", "--table-input", f.to_str().unwrap()], &[]);
        assert_eq!((code, out), (0, format!("created Glue table {db}.{name}\n")), "{err}");
    }
    let (code, out, err) = fleetctl(&["cleanup", "--root", &root, "--database", &db], &[]);
    assert_eq!(code, 0, "{err}");
    for line in [
        format!("        kept (outside root)  table {db}.elsewhere  s3://{b}/other/t/"),
        format!("           kept (protected)  table {db}.kept_by_prefix  {root}/permanent/k/"),
        format!("      kept (protected name)  table {db}.permanent_raw  {root}/run-2/raw/"),
        format!("                 would drop  table {db}.tmp_run_1  {root}/run-1/features/"),
    ] {
        assert!(out.contains(&format!("{}\n", line.trim_start())), "{line:?} in\n{out}");
    }
    let (_, listed, _) = fleetctl(&["catalog", "list", "--database", &db], &[]);
    assert_eq!(listed.lines().count(), 4, "a dry run drops nothing");
    let (code, out, err) = fleetctl(&["cleanup", "--root", &root, "--database", &db, "--execute"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("dropped  table {db}.tmp_run_1")), "{out}");
    let (_, listed, _) = fleetctl(&["catalog", "list", "--database", &db], &[]);
    let names: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["elsewhere", "kept_by_prefix", "permanent_raw"]);
}
