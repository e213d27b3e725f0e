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

/// The compactor on S3: feature-parser's six files of a day become one,
/// every row once, and the compacted table is registered in Glue.
#[test]
fn the_compactor_packs_a_partition_on_s3_and_registers_the_compacted_table() {
    let Some(b) = servers("fleet-cli-compact") else { return };
    let db = database("compact");
    let (code, out, err) = fleetctl(&["gen", "--out", &format!("s3://{b}"), "--rows", "1800", "--files", "6"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let features = format!("s3://{b}/features/");
    let (code, out, err) = fleetctl(
        &["run", "feature-parser", "--shards", "3", "--input", &format!("s3://{b}/raw/"), "--output", &features],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = fleetctl(
        &["compactor", "--input", &features, "--compact-mode", "full", "--glue-database", &db, "--run-id", "c1"],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Registered in Glue."), "{out}");
    let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap());
    let part = root.join(&b).join("features-compact/dt=2025-07-01");
    let files: Vec<String> = std::fs::read_dir(&part)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(part.join("_commits/shard-00000-of-00001.json")).unwrap()).unwrap();
    assert_eq!(marker["rows"], 1800);
    let (code, out, err) = fleetctl(&["catalog", "show", "--database", &db, "--table", "features_compact"], &[]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["RegisteredPartitions"], 1);
    assert_eq!(shown["TableInput"]["StorageDescriptor"]["Location"], format!("s3://{b}/features-compact/"));
}

/// ndjson-converter on S3: QED's NDJSON, gzip-compressed, named by a
/// QuickSight-style manifest of a URI prefix, becomes one Parquet file,
/// and the table (structs and lists in its Hive types) is registered in Glue.
#[test]
fn ndjson_converter_reads_a_manifest_of_gzip_files_on_s3_and_registers_the_table() {
    use std::io::Write;
    let Some(b) = servers("fleet-cli-ndjson") else { return };
    let db = database("ndjson");
    let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap()).join(&b);
    let qed = fleet_test_support::corpora().join("qed-nq-explanations/qed-dev.jsonlines");
    let text = std::fs::read(&qed).unwrap();
    std::fs::create_dir_all(root.join("landing/2026/12/04")).unwrap();
    // two gzip files of the halves
    let lines: Vec<&[u8]> = text.split_inclusive(|&c| c == b'\n').collect();
    for (i, half) in lines.chunks(700).enumerate() {
        let f = std::fs::File::create(root.join(format!("landing/2026/12/04/part-{i}.json.gz"))).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        e.write_all(&half.concat()).unwrap();
        e.finish().unwrap();
    }
    std::fs::write(
        root.join("in.manifest.json"),
        json!({"fileLocations": [{"URIPrefixes": [format!("s3://{b}/landing/2026/12/04/")]}]}).to_string(),
    )
    .unwrap();
    let (code, out, err) = fleetctl(
        &[
            "ndjson-converter",
            "--input",
            &format!("s3://{b}/in.manifest.json"),
            "--output",
            &format!("s3://{b}/qed/"),
            "--glue-database",
            &db,
            "--run-id",
            "run-20261204T080000Z",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Registered in Glue."), "{out}");
    let marker: Value = serde_json::from_slice(
        &std::fs::read(root.join("qed/dt=2026-12-04/_commits/shard-00000-of-00001.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((marker["rows"].as_u64(), marker["files"].as_array().map(Vec::len)), (Some(1355), Some(1)));
    let (code, out, err) = fleetctl(&["catalog", "show", "--database", &db, "--table", "qed"], &[]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    let columns = &shown["TableInput"]["StorageDescriptor"]["Columns"];
    let types: Vec<(&str, &str)> = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Name"].as_str().unwrap(), c["Type"].as_str().unwrap()))
        .collect();
    assert!(types.contains(&("example_id", "bigint")), "{types:?}");
    assert!(types.contains(&("sentence_starts", "array<bigint>")), "{types:?}");
    assert!(types.contains(&("_processing_timestamp", "timestamp")), "{types:?}");
    assert!(
        types.iter().any(|(n, t)| *n == "annotation" && t.starts_with("struct<referential_equalities:array<struct<"))
    );
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

/// Starting the fleet on AWS against moto's ECS and Step Functions.
#[cfg(feature = "fleet")]
mod fleet {
    use super::*;
    use std::collections::BTreeMap;

    use fleet_aws::fleet::{Ecs, StepFunctions, aws_sdk_ecs, aws_sdk_sfn};

    fn repo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// An EC2 Query API call to moto (which routes by the credential scope and checks no signature).
    fn ec2(params: &str, tag: &str) -> String {
        let endpoint = fleet_test_support::moto_endpoint().unwrap();
        let o = Command::new("curl")
            .args(["-s", "-X", "POST", &endpoint, "-H"])
            .arg("Authorization: AWS4-HMAC-SHA256 Credential=fleet-test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
            .args(["-d", &format!("{params}&Version=2016-11-15")])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&o.stdout).into_owned();
        let open = format!("<{tag}>");
        let start = body.find(&open).unwrap_or_else(|| panic!("{params}: {body}")) + open.len();
        body[start..start + body[start..].find('<').unwrap()].to_string()
    }

    #[test]
    fn run_task_starts_one_fargate_task_per_shard_with_its_values() {
        if fleet_test_support::moto_endpoint().is_none() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let cluster = format!("fleet-{}", fleet_test_support::free_port());
        let vpc = ec2("Action=CreateVpc&CidrBlock=10.0.0.0/16", "vpcId");
        let subnet = ec2(&format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.0.1.0/24"), "subnetId");
        // moto names a task's network interface only in a VPC with DNS hostnames
        ec2(&format!("Action=ModifyVpcAttribute&VpcId={vpc}&EnableDnsHostnames.Value=true"), "requestId");
        // the task definition of task-definitions/, its placeholders filled by fleetctl
        let file = repo().join("task-definitions/feature-parser.4vcpu.json");
        let (code, filled, err) = fleetctl(
            &[
                "aws",
                "task-definition",
                file.to_str().unwrap(),
                "--set",
                "Image=123456789012.dkr.ecr.us-east-1.amazonaws.com/fleet:latest",
                "--set",
                "ExecutionRoleArn=arn:aws:iam::123456789012:role/fleet-execution",
                "--set",
                "TaskRoleArn=arn:aws:iam::123456789012:role/fleet-feature-parser",
                "--set",
                "LogGroup=/fleet/workers",
                "--set",
                "Region=us-east-1",
                "--set",
                "Bucket=lake",
                "--set",
                "GlueDatabase=lake",
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let td: Value = serde_json::from_str(&filled).unwrap();
        let c = &td["containerDefinitions"][0];
        assert_eq!(c["image"], "123456789012.dkr.ecr.us-east-1.amazonaws.com/fleet:latest");
        // a placeholder left out is named
        let (code, _, err) = fleetctl(&["aws", "task-definition", file.to_str().unwrap(), "--set", "Image=x"], &[]);
        assert_eq!(code, 2);
        assert!(err.contains("is not filled; add --set"), "{err}");

        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ecs = Ecs::from_env().await.unwrap();
            let client = ecs.client();
            client.create_cluster().cluster_name(&cluster).send().await.unwrap();
            let env: Vec<aws_sdk_ecs::types::KeyValuePair> = c["environment"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name(kv["name"].as_str().unwrap())
                        .value(kv["value"].as_str().unwrap())
                        .build()
                })
                .collect();
            let container = aws_sdk_ecs::types::ContainerDefinition::builder()
                .name(c["name"].as_str().unwrap())
                .image(c["image"].as_str().unwrap())
                .command(c["command"][0].as_str().unwrap())
                .set_environment(Some(env))
                .readonly_root_filesystem(true)
                .stop_timeout(120)
                // moto needs a container's memory (Fargate takes the task's alone)
                .memory(td["memory"].as_str().unwrap().parse().unwrap())
                .build();
            client
                .register_task_definition()
                .family(td["family"].as_str().unwrap())
                .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
                .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
                .cpu(td["cpu"].as_str().unwrap())
                .memory(td["memory"].as_str().unwrap())
                .execution_role_arn(td["executionRoleArn"].as_str().unwrap())
                .task_role_arn(td["taskRoleArn"].as_str().unwrap())
                .container_definitions(container)
                .send()
                .await
                .unwrap();
        });

        let plan = format!("{}/plan/", tmp.path().display());
        let (code, out, err) = fleetctl(
            &["plan", "feature-parser", "--shards", "3", "--out", &plan, "--run-id", "ecs1"],
            &[("FLEET_INPUT", "s3://lake/raw/"), ("FLEET_OUTPUT", "s3://lake/features/")],
        );
        assert_eq!(code, 0, "{out}{err}");
        let manifest = format!("{plan}manifest.json");
        let (code, out, err) = fleetctl(
            &[
                "aws",
                "run-task",
                "--cluster",
                &cluster,
                "--task-definition",
                "fleet-feature-parser-4vcpu",
                "--subnets",
                &subnet,
                "--security-groups",
                "sg-12345678",
                "--manifest",
                &manifest,
            ],
            &[],
        );
        assert_eq!(code, 0, "{out}{err}");
        let arns: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("shard ").and_then(|l| l.split_once(": ")).map(|(_, a)| a.to_string()))
            .collect();
        assert_eq!(arns.len(), 3, "{out}");
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ecs = Ecs::from_env().await.unwrap();
            let tasks =
                ecs.client().describe_tasks().cluster(&cluster).set_tasks(Some(arns.clone())).send().await.unwrap();
            let mut indexes = Vec::new();
            for t in tasks.tasks() {
                assert_eq!(t.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Fargate));
                assert_eq!(t.started_by(), Some("fleetctl"));
                let over = &t.overrides().unwrap().container_overrides()[0];
                assert_eq!(over.name(), Some("worker"));
                let env: BTreeMap<&str, &str> =
                    over.environment().iter().map(|kv| (kv.name().unwrap(), kv.value().unwrap())).collect();
                assert_eq!(env["FLEET_SHARD_COUNT"], "3");
                assert_eq!(env["FLEET_RUN_ID"], "ecs1");
                assert_eq!(env["FLEET_INPUT"], "s3://lake/raw/", "the plan carries values from the environment");
                indexes.push(env["FLEET_SHARD_INDEX"].to_string());
            }
            indexes.sort();
            assert_eq!(indexes, ["0", "1", "2"]);
        });
        // one task with values of its own
        let (code, out, err) = fleetctl(
            &[
                "aws",
                "run-task",
                "--cluster",
                &cluster,
                "--task-definition",
                "fleet-feature-parser-4vcpu",
                "--subnets",
                &subnet,
                "-e",
                "FLEET_INPUT=s3://lake/raw/2025-07-01/",
            ],
            &[],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("task: arn:aws:ecs:"), "{out}");
    }

    #[test]
    fn start_runs_the_state_machine_with_the_input_of_the_plan() {
        let Some(b) = servers("fleet-cli-sfn") else { return };
        let template: Value =
            serde_json::from_slice(&std::fs::read(repo().join("infra/fleet.template.json")).unwrap()).unwrap();
        let sm = &template["Resources"]["StateMachine"]["Properties"];
        let mut definition = serde_json::to_string(&sm["Definition"]).unwrap();
        for name in sm["DefinitionSubstitutions"].as_object().unwrap().keys() {
            definition = definition.replace(&format!("${{{name}}}"), &format!("{name}-value"));
        }
        let name = format!("fleet-fan-out-{}", fleet_test_support::free_port());
        let arn = tokio::runtime::Runtime::new().unwrap().block_on(async {
            let sf = StepFunctions::from_env().await.unwrap();
            sf.client()
                .create_state_machine()
                .name(&name)
                .definition(definition)
                .role_arn("arn:aws:iam::123456789012:role/fleet-state-machine")
                .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                .send()
                .await
                .unwrap()
                .state_machine_arn()
                .to_string()
        });
        let plan = format!("s3://{b}/runs/sfn1/");
        let (code, out, err) = fleetctl(
            &[
                "plan",
                "batch-predictor",
                "--shards",
                "50",
                "--out",
                &plan,
                "--run-id",
                "sfn1",
                "--input",
                &format!("s3://{b}/raw/"),
                "--output",
                &format!("s3://{b}/predictions/"),
                "--model",
                &format!("s3://{b}/trained/models/gbdt/"),
                "--glue-database",
                "lake",
            ],
            &[],
        );
        assert_eq!(code, 0, "{out}{err}");
        let input_uri = format!("{plan}execution-input.json");
        let (code, out, err) = fleetctl(&["aws", "start", "--state-machine", &arn, "--input", &input_uri], &[]);
        assert_eq!(code, 0, "{out}{err}");
        let execution = out.split_whitespace().nth(1).unwrap().to_string();
        assert!(execution.ends_with(":sfn1"), "named after the run: {out}");
        let root = std::path::PathBuf::from(std::env::var("FLEET_TEST_S3_ROOT").unwrap());
        let written: Value =
            serde_json::from_slice(&std::fs::read(root.join(&b).join("runs/sfn1/execution-input.json")).unwrap())
                .unwrap();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let e = StepFunctions::from_env().await.unwrap().describe(&execution).await.unwrap();
            let given: Value = serde_json::from_str(e.input.as_deref().unwrap()).unwrap();
            assert_eq!(given, written);
        });
        assert_eq!(written["worker"], "batch-predictor");
        assert_eq!(written["manifest"], json!({"Bucket": b, "Key": "runs/sfn1/manifest.json"}));
        assert_eq!(written["results"], json!({"Bucket": b, "Prefix": "runs/sfn1/results/"}));
        let finalize: BTreeMap<String, String> = written["finalize"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["Name"].as_str().unwrap().to_string(), kv["Value"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(finalize["FLEET_OUTPUT"], format!("s3://{b}/predictions/"));
        assert_eq!(finalize["FLEET_GLUE_DATABASE"], "lake");
        assert_eq!(finalize["FLEET_GLUE_TABLE"], "predictions");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(root.join(&b).join("runs/sfn1/manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest.as_array().unwrap().len(), 50);
        let (code, out, err) = fleetctl(&["aws", "status", "--execution", &execution], &[]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with(&format!("{execution} ")), "{out}");
        // a local plan cannot be started: the state machine reads S3
        let tmp = tempfile::tempdir().unwrap();
        let local = format!("{}/p/", tmp.path().display());
        let (code, _, err) = fleetctl(
            &[
                "plan",
                "feature-parser",
                "--shards",
                "2",
                "--out",
                &local,
                "--input",
                "s3://x/raw/",
                "--output",
                "s3://x/f/",
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = fleetctl(
            &["aws", "start", "--state-machine", &arn, "--input", &format!("{local}execution-input.json")],
            &[],
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("the manifest is not on S3"), "{err}");
    }
}
