//! What the infrastructure means, read off `infra/fleet.template.json` and
//! `task-definitions/`: no emulator here runs an ECS-backed state machine,
//! so these tests read the definition and evaluate its choices. cfn-lint and
//! statelint check the syntax (`scripts/lint-infra`); these check that the
//! fan-out does what `fleetctl run` does and what the workers expect.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use fleet_worker::Exit;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Value {
    let path = repo().join(rel);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn template() -> Value {
    read("infra/fleet.template.json")
}

fn definition() -> Value {
    template()["Resources"]["StateMachine"]["Properties"]["Definition"].clone()
}

/// A JSONPath of the subset the definition uses (`$.a.b[0].c`), read from `doc`.
fn path<'a>(doc: &'a Value, p: &str) -> Option<&'a Value> {
    let mut v = doc;
    for seg in p.strip_prefix("$.").unwrap_or_else(|| panic!("{p}")).split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, Some(i.trim_end_matches(']').parse::<usize>().unwrap())),
            None => (seg, None),
        };
        v = v.get(name)?;
        if let Some(i) = index {
            v = v.get(i)?;
        }
    }
    Some(v)
}

/// Evaluates one Choice rule of the kinds the definition uses.
fn rule(r: &Value, input: &Value) -> bool {
    if let Some(all) = r["And"].as_array() {
        return all.iter().all(|x| rule(x, input));
    }
    if let Some(any) = r["Or"].as_array() {
        return any.iter().any(|x| rule(x, input));
    }
    if r.get("Not").is_some() {
        return !rule(&r["Not"], input);
    }
    let var = r["Variable"].as_str().unwrap();
    let v = path(input, var);
    if let Some(want) = r.get("IsPresent") {
        return v.is_some() == want.as_bool().unwrap();
    }
    // a comparison of a missing value is a runtime error (States.Runtime) in Step Functions
    let v = v.unwrap_or_else(|| panic!("{var} is missing in {input}: the execution would fail"));
    let num = |k: &str| r.get(k).and_then(Value::as_f64);
    if let Some(n) = num("NumericEquals") {
        return v.as_f64() == Some(n);
    }
    if let Some(n) = num("NumericLessThan") {
        return v.as_f64().is_some_and(|x| x < n);
    }
    if let Some(n) = num("NumericGreaterThan") {
        return v.as_f64().is_some_and(|x| x > n);
    }
    if let Some(n) = num("NumericGreaterThanEquals") {
        return v.as_f64().is_some_and(|x| x >= n);
    }
    if let Some(s) = r.get("StringEquals") {
        return v == s;
    }
    panic!("a rule this test does not evaluate: {r}")
}

/// The state a Choice state goes to with `input`.
fn choose(state: &Value, input: &Value) -> String {
    assert_eq!(state["Type"], "Choice");
    for c in state["Choices"].as_array().unwrap() {
        if rule(c, input) {
            return c["Next"].as_str().unwrap().to_string();
        }
    }
    state["Default"].as_str().unwrap().to_string()
}

fn retrier_names(retry: &Value) -> BTreeSet<String> {
    retry["ErrorEquals"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect()
}

#[test]
fn the_map_reads_the_manifest_and_runs_50_shard_tasks_at_once() {
    let d = definition();
    let map = &d["States"]["Shards"];
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["ItemProcessor"]["ProcessorConfig"]["Mode"], "DISTRIBUTED", "an inline Map runs at most 40 at once");
    assert_eq!(map["MaxConcurrency"], 50);
    assert_eq!(map["ItemReader"]["Resource"], "arn:aws:states:::s3:getObject");
    assert_eq!(map["ItemReader"]["ReaderConfig"]["InputType"], "JSON");
    assert_eq!(map["ItemReader"]["Parameters"], json!({"Bucket.$": "$.manifest.Bucket", "Key.$": "$.manifest.Key"}));
    assert_eq!(map["ItemSelector"]["shard.$"], "$$.Map.Item.Value");
    assert_eq!(map["ItemSelector"]["attempt"], 1);
    assert_eq!(map["ResultWriter"]["Resource"], "arn:aws:states:::s3:putObject");
    assert_eq!(map["ResultWriter"]["Parameters"]["Prefix.$"], "$.results.Prefix");
    // a failed shard does not stop the others: every shard runs, the run fails at the end
    assert_eq!(map["ToleratedFailurePercentage"], 100);

    let run = &map["ItemProcessor"]["States"]["RunShard"];
    assert_eq!(map["ItemProcessor"]["StartAt"], "RunShard");
    assert_eq!(run["Resource"], "arn:aws:states:::ecs:runTask.sync", "waits for the task to stop");
    let over = &run["Parameters"]["Overrides"]["ContainerOverrides"][0];
    assert_eq!(over["Name"], "worker", "the container name of every task definition");
    assert_eq!(over["Environment.$"], "$.shard.environment");
    assert_eq!(run["Parameters"]["TaskDefinition.$"], "$.task_definition");
}

#[test]
fn the_manifest_items_fleetctl_plan_writes_are_what_the_map_passes_to_ecs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = format!("{}/plan/", tmp.path().display());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["plan", "batch-predictor", "--shards", "3", "--out", &out, "--run-id", "r1"])
        .args([
            "--input",
            "s3://lake/raw/",
            "--output",
            "s3://lake/predictions/",
            "--model",
            "s3://lake/trained/models/gbdt/",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let items = read_abs(tmp.path().join("plan/manifest.json"));
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["worker"], "batch-predictor");
        assert_eq!(item["index"], i);
        assert_eq!(item["count"], 3);
        // ECS's KeyValuePair, as a container override takes it
        let env: BTreeMap<&str, &str> = item["environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["Name"].as_str().unwrap(), kv["Value"].as_str().unwrap()))
            .collect();
        assert_eq!(env["FLEET_SHARD_INDEX"], i.to_string());
        assert_eq!(env["FLEET_SHARD_COUNT"], "3");
        assert_eq!(env["FLEET_RUN_ID"], "r1");
        assert_eq!(env["FLEET_INPUT"], "s3://lake/raw/");
        assert_eq!(env["FLEET_MODEL"], "s3://lake/trained/models/gbdt/");
        // the state machine's ItemSelector and Parameters resolve against the item
        let d = definition();
        let child = json!({"shard": item, "task_definition": "td", "attempt": 1});
        let env_path = d["States"]["Shards"]["ItemProcessor"]["States"]["RunShard"]["Parameters"]["Overrides"]
            ["ContainerOverrides"][0]["Environment.$"]
            .as_str()
            .unwrap();
        assert_eq!(path(&child, env_path), Some(&item["environment"]));
    }
    let input = read_abs(tmp.path().join("plan/execution-input.json"));
    assert_eq!(input["worker"], "batch-predictor");
    assert!(input["manifest"]["Key"].as_str().unwrap().ends_with("/plan/manifest.json"), "{input}");
    assert!(input["results"]["Prefix"].as_str().unwrap().ends_with("/plan/results/"), "{input}");
}

fn read_abs(p: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn ecs_capacity_and_throttling_are_retried_with_backoff_and_jitter_task_failures_are_not() {
    let d = definition();
    let run = &d["States"]["Shards"]["ItemProcessor"]["States"]["RunShard"];
    let retry = run["Retry"].as_array().unwrap();
    assert_eq!(retry.len(), 1);
    let names = retrier_names(&retry[0]);
    for e in ["ECS.AmazonECSException", "AmazonECS.Unknown", "ECS.ThrottlingException", "ECS.ServerException"] {
        assert!(names.contains(e), "{e} is not retried");
    }
    for e in ["States.ALL", "States.TaskFailed"] {
        assert!(!names.contains(e), "{e} would retry a shard that failed for good");
    }
    assert_eq!(retry[0]["JitterStrategy"], "FULL");
    assert!(retry[0]["BackoffRate"].as_f64().unwrap() > 1.0);
    let attempts = retry[0]["MaxAttempts"].as_u64().unwrap();
    assert!((3..=10).contains(&attempts), "bounded: {attempts}");
    assert!(retry[0]["MaxDelaySeconds"].as_u64().unwrap() <= 600);

    // a task that ran and failed goes to the exit-code check; anything else is recorded as failed
    let catch = run["Catch"].as_array().unwrap();
    assert_eq!(catch[0]["ErrorEquals"], json!(["States.TaskFailed"]));
    assert_eq!(catch[0]["Next"], "StoppedTask");
    assert_eq!(catch[1]["ErrorEquals"], json!(["States.ALL"]));
    let states = &d["States"]["Shards"]["ItemProcessor"]["States"];
    assert_eq!(states[catch[1]["Next"].as_str().unwrap()]["Type"], "Fail");
    // the stopped task (the error's cause) is parsed for its exit code
    assert_eq!(states["StoppedTask"]["Parameters"]["task.$"], "States.StringToJson($.error.Cause)");
    assert_eq!(states["StoppedTask"]["Next"], "Retryable");
}

/// The state machine retries what `fleetctl run` retries (the framework's
/// retryable exits: 1, 143, and codes it does not document, such as a
/// panic's 101), as many times; 2, 3 and 4 are final.
#[test]
fn a_shard_is_retried_as_fleetctl_run_retries_it() {
    let d = definition();
    let states = &d["States"]["Shards"]["ItemProcessor"]["States"];
    let retryable = &states["Retryable"];
    let attempts_in_all = 1 + fleetctl::DEFAULT_RETRIES;
    for code in 1..=255 {
        for attempt in 1..=attempts_in_all + 1 {
            let input = json!({"attempt": attempt, "task": {"Containers": [{"ExitCode": code}], "StoppedReason": "x"}});
            let next = choose(retryable, &input);
            let local = fleetctl::is_final(code) || attempt >= attempts_in_all;
            assert_eq!(next != "Backoff", local, "exit {code}, attempt {attempt}: {next}");
            if next != "Backoff" {
                assert_eq!(next, "ShardExited", "exit {code}, attempt {attempt}");
            }
        }
    }
    for final_code in [2, 3, 4] {
        assert!(!Exit::from_code(final_code).is_retryable());
    }
    // a task that never ran its container (capacity, image pull) is retried too, as often
    for attempt in 1..=attempts_in_all {
        let input = json!({"attempt": attempt, "task": {"StoppedReason": "CannotPullContainerError"}});
        let next = choose(retryable, &input);
        assert_eq!(next == "Backoff", attempt < attempts_in_all, "attempt {attempt}");
        if next != "Backoff" {
            assert_eq!(next, "ShardFailed");
        }
    }
    // the retry waits, counts the attempt and runs the shard again
    let backoff = &states["Backoff"];
    assert_eq!(backoff["Parameters"]["attempt.$"], "States.MathAdd($.attempt, 1)");
    assert!(backoff["Parameters"]["wait_seconds.$"].as_str().unwrap().starts_with("States.MathRandom("));
    assert_eq!(states[backoff["Next"].as_str().unwrap()]["Type"], "Wait");
    assert_eq!(states["Wait"]["Next"], "RunShard");
    // a shard that fails for good is recorded with its exit code
    for fail in ["ShardExited", "ShardFailed"] {
        assert_eq!(states[fail]["Type"], "Fail");
    }
    let cause = states["ShardExited"]["CausePath"].as_str().unwrap();
    assert!(cause.contains("$.task.Containers[0].ExitCode") && cause.contains("$.shard.index"), "{cause}");
}

#[test]
fn the_worker_is_batch_predictor_unless_the_input_says_feature_parser_then_the_finalize_step() {
    let t = template();
    let d = definition();
    let subs = &t["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"];
    assert_eq!(d["StartAt"], "Worker");
    let command = |placeholder: &str| -> Value {
        let resource = subs[placeholder]["Ref"].as_str().unwrap();
        t["Resources"][resource]["Properties"]["ContainerDefinitions"][0]["Command"].clone()
    };
    for (input, worker) in [
        (json!({}), "batch-predictor"),
        (json!({"worker": "batch-predictor"}), "batch-predictor"),
        (json!({"worker": "feature-parser"}), "feature-parser"),
    ] {
        let next = choose(&d["States"]["Worker"], &input);
        let pass = &d["States"][&next];
        assert_eq!(pass["ResultPath"], "$.task_definition");
        let placeholder = pass["Result"].as_str().unwrap().trim_start_matches("${").trim_end_matches('}');
        assert_eq!(command(placeholder), json!([worker]), "{input}");
        assert_eq!(pass["Next"], "Shards");
    }
    // after the map: catalog sync when the input has its settings, then the failures counted
    assert_eq!(d["States"]["Shards"]["Next"], "Register");
    assert_eq!(choose(&d["States"]["Register"], &json!({"finalize": []})), "Finalize");
    assert_eq!(choose(&d["States"]["Register"], &json!({})), "CountFailures");
    let fin = &d["States"]["Finalize"];
    assert_eq!(fin["Type"], "Task");
    assert_eq!(fin["Resource"], "arn:aws:states:::ecs:runTask.sync");
    assert_eq!(command("FinalizeTaskDefinition"), json!(["catalog", "sync"]));
    assert_eq!(fin["Next"], "CountFailures");
    assert_eq!(d["States"]["CountFailures"]["Resource"], "arn:aws:states:::aws-sdk:sfn:describeMapRun");
    let all = &d["States"]["AllCommitted"];
    assert_eq!(choose(all, &json!({"shards": {"failed": 0}})), "Done");
    let failed = choose(all, &json!({"shards": {"failed": 2}}));
    assert_eq!(d["States"][&failed]["Type"], "Fail");
}

#[test]
fn every_placeholder_of_the_definition_is_substituted() {
    let t = template();
    let text = serde_json::to_string(&definition()).unwrap();
    let mut used = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').unwrap();
        used.insert(rest[i + 2..i + end].to_string());
        rest = &rest[i + end..];
    }
    let given: BTreeSet<String> = t["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(used, given);
}

/// Fargate's valid memory for a CPU size, in MiB.
fn fargate_memory_ok(cpu: u64, memory: u64) -> bool {
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (1024..=4096).contains(&memory) && memory.is_multiple_of(1024),
        1024 => (2048..=8192).contains(&memory) && memory.is_multiple_of(1024),
        2048 => (4096..=16384).contains(&memory) && memory.is_multiple_of(1024),
        4096 => (8192..=30720).contains(&memory) && memory.is_multiple_of(1024),
        8192 => (16384..=61440).contains(&memory) && memory.is_multiple_of(4096),
        16384 => (32768..=122880).contains(&memory) && memory.is_multiple_of(8192),
        _ => false,
    }
}

#[test]
fn task_definitions_are_valid_fargate_tasks_with_the_workers_settings() {
    let dir = repo().join("task-definitions");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let td = read_abs(p.clone());
        let (worker, size) = name.trim_end_matches(".json").split_once('.').unwrap();
        seen.insert((worker.to_string(), size.to_string()));
        let cpu: u64 = td["cpu"].as_str().unwrap().parse().unwrap();
        let memory: u64 = td["memory"].as_str().unwrap().parse().unwrap();
        let (want_cpu, gb) = match size {
            "4vcpu" => (4096, 8..=30),
            "8vcpu" => (8192, 16..=60),
            _ => panic!("{name}: a size other than 4vcpu and 8vcpu"),
        };
        assert_eq!(cpu, want_cpu, "{name}");
        assert!(fargate_memory_ok(cpu, memory) && gb.contains(&(memory / 1024)), "{name}: {memory} MiB");
        assert_eq!(td["requiresCompatibilities"], json!(["FARGATE"]), "{name}");
        assert_eq!(td["networkMode"], "awsvpc", "{name}");
        assert_ne!(td["taskRoleArn"], td["executionRoleArn"], "{name}: the task role is not the execution role");
        let c = &td["containerDefinitions"][0];
        assert_eq!(td["containerDefinitions"].as_array().unwrap().len(), 1);
        assert_eq!(c["name"], "worker", "{name}");
        assert_eq!(c["command"], json!([worker]), "{name}");
        assert_eq!(c["stopTimeout"], 120, "{name}");
        assert_eq!(c["readonlyRootFilesystem"], true, "{name}");
        assert!(td.get("volumes").is_none(), "{name}: the workers write nothing locally");
        assert_eq!(c["logConfiguration"]["logDriver"], "awslogs", "{name}");
        // every variable is one the worker takes, with a value of the form it expects
        let w = fleetctl::worker(worker).unwrap_or_else(|| panic!("{name}: no worker {worker}"));
        let known: BTreeSet<String> = (w.command)()
            .get_arguments()
            .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_string))
            .collect();
        let mut vars = BTreeMap::new();
        for kv in c["environment"].as_array().unwrap() {
            let (k, v) = (kv["name"].as_str().unwrap(), kv["value"].as_str().unwrap());
            assert!(known.contains(k), "{name}: {worker} does not take {k}");
            vars.insert(k.to_string(), v.replace("${Bucket}", "lake").replace("${GlueDatabase}", "lake"));
        }
        assert_eq!(vars["FLEET_THREADS"], (cpu / 1024).to_string(), "{name}");
        assert_eq!(vars["FLEET_TASK_VCPU"], (cpu / 1024).to_string(), "{name}");
        assert_eq!(vars["FLEET_TASK_MEMORY_GIB"], (memory / 1024).to_string(), "{name}");
        // placeholders only, nothing account-specific
        let text = serde_json::to_string(&td).unwrap();
        assert!(!text.contains("arn:aws"), "{name}: {text}");
        assert!(!text.contains(".dkr.ecr."), "{name}");
        for p in ["${Image}", "${TaskRoleArn}", "${ExecutionRoleArn}", "${LogGroup}", "${Region}"] {
            assert!(text.contains(p), "{name}: {p}");
        }
    }
    for w in ["feature-parser", "batch-predictor", "trainer-feeder", "compactor"] {
        for s in ["4vcpu", "8vcpu"] {
            assert!(seen.contains(&(w.to_string(), s.to_string())), "task-definitions/{w}.{s}.json");
        }
    }
}

#[test]
fn the_templates_task_definitions_match_the_files() {
    let t = template();
    let sizes = &t["Mappings"]["TaskSizes"];
    for (resource, worker) in [
        ("FeatureParserTaskDefinition", "feature-parser"),
        ("BatchPredictorTaskDefinition", "batch-predictor"),
        ("TrainerFeederTaskDefinition", "trainer-feeder"),
        ("CompactorTaskDefinition", "compactor"),
    ] {
        let p = &t["Resources"][resource]["Properties"];
        let c = &p["ContainerDefinitions"][0];
        for size in ["4vcpu", "8vcpu"] {
            let file = read(&format!("task-definitions/{worker}.{size}.json"));
            let fc = &file["containerDefinitions"][0];
            let mem_key = p["Memory"]["Fn::FindInMap"][2].as_str().unwrap();
            assert_eq!(sizes[size]["Cpu"], file["cpu"], "{worker} {size}");
            assert_eq!(sizes[size][mem_key], file["memory"], "{worker} {size}");
            assert_eq!(c["Command"], fc["command"]);
            assert_eq!(c["StopTimeout"], fc["stopTimeout"]);
            assert_eq!(c["ReadonlyRootFilesystem"], fc["readonlyRootFilesystem"]);
            assert_eq!(c["User"], fc["user"]);
            let names = |env: &Value, k: &str| -> BTreeSet<String> {
                env.as_array().unwrap().iter().map(|kv| kv[k].as_str().unwrap().to_string()).collect()
            };
            let mut file_names = names(&fc["environment"], "name");
            // the shard's own values come from the manifest in the state machine
            file_names.remove("FLEET_SHARD_INDEX");
            file_names.remove("FLEET_SHARD_COUNT");
            assert_eq!(names(&c["Environment"], "Name"), file_names, "{worker}");
        }
    }
}

#[test]
fn each_task_role_reaches_only_its_prefixes_and_glue_database() {
    let t = template();
    let r = &t["Resources"];
    let statements = |role: &str| r[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].clone();
    let text = |role: &str| serde_json::to_string(&statements(role)).unwrap();
    // trainer-feeder writes models and touches no Glue table
    let trainer = text("TrainerFeederRole");
    assert!(!trainer.contains("glue:"), "{trainer}");
    assert!(trainer.contains("${ModelsPrefix}") && !trainer.contains("${PredictionsPrefix}"));
    for role in ["FeatureParserRole", "BatchPredictorRole", "TrainerFeederRole", "FinalizeRole", "CompactorRole"] {
        for s in statements(role).as_array().unwrap() {
            let res = serde_json::to_string(&s["Resource"]).unwrap();
            assert_ne!(res, "\"*\"", "{role}: {s}");
            if res.contains(":glue:") {
                assert!(res.contains("database/${GlueDatabase}"), "{role}: {res}");
                assert!(!res.contains("database/*"), "{role}: {res}");
            }
            let actions = serde_json::to_string(&s["Action"]).unwrap();
            assert!(!actions.contains('*'), "{role}: {actions}");
        }
    }
    let fp = text("FeatureParserRole");
    assert!(fp.contains("s3:AbortMultipartUpload"), "a stopped shard aborts its uploads");
    // the bucket aborts what a killed task could not
    let rules = &r["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    assert!(
        rules.as_array().unwrap().iter().any(|x| x["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_u64())
    );
    // the compactor's schedule exists and is off
    assert_eq!(r["CompactorSchedule"]["Properties"]["State"], "DISABLED");
}
