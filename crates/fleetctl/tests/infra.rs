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

/// The workers the state machine runs (the execution input's `worker`);
/// trainer-feeder and the compactor run as single tasks.
const ROUTED: [&str; 3] = ["batch-predictor", "feature-parser", "ndjson-converter"];

/// The template's name of a worker's resources: `ndjson-converter` is
/// `NdjsonConverterRole` and `NdjsonConverterTaskDefinition`.
fn camel(worker: &str) -> String {
    worker
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next().unwrap().to_uppercase().chain(c).collect::<String>()
        })
        .collect()
}

/// The task definition resource the state machine runs for `input`.
fn picked(t: &Value, input: &Value) -> String {
    let d = &t["Resources"]["StateMachine"]["Properties"]["Definition"];
    let pass = &d["States"][choose(&d["States"]["Worker"], input)];
    assert_eq!(pass["Type"], "Pass", "{input}");
    let placeholder = pass["Result"].as_str().unwrap().trim_start_matches("${").trim_end_matches('}');
    let subs = &t["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"];
    subs[placeholder]["Ref"].as_str().unwrap_or_else(|| panic!("{placeholder} is not a resource")).to_string()
}

/// The exit codes a worker's help lists (its `Exit::table`), each with
/// whether it is final.
fn documented_exits(worker: &str) -> BTreeMap<i32, bool> {
    let help = (fleetctl::worker(worker).unwrap().command)().get_after_help().unwrap().to_string();
    let exits: BTreeMap<i32, bool> = help
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let code = words.next()?.parse().ok()?;
            Some((code, words.next() == Some("final")))
        })
        .collect();
    assert!(exits.contains_key(&0) && exits.contains_key(&1), "{worker}: {help}");
    exits
}

/// The template parameter `X` of `${X}<suffix>` (a prefix of the data bucket).
fn prefix_param(s: &str, before: &str, suffix: &str) -> Option<String> {
    let name = s.strip_prefix(before)?.strip_prefix("${")?;
    let (name, rest) = name.split_once('}')?;
    (rest.starts_with(suffix) && name.ends_with("Prefix")).then(|| name.to_string())
}

/// What a task role may do with the data bucket, as the template
/// parameters of the prefixes (`FeaturesPrefix`, ...), and the Glue database.
#[derive(Debug, Default, PartialEq)]
struct Reach {
    list: BTreeSet<String>,
    read: BTreeSet<String>,
    write: BTreeSet<String>,
    glue: bool,
}

fn reach(t: &Value, role: &str) -> Reach {
    let statements = &t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let one_or_many = |v: &Value| -> Vec<Value> { v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) };
    let sub = |v: &Value| v["Fn::Sub"].as_str().unwrap_or_else(|| panic!("{role}: {v}")).to_string();
    let mut by_action: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut r = Reach::default();
    for s in statements.as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow", "{role}: {s}");
        for action in one_or_many(&s["Action"]) {
            let action = action.as_str().unwrap().to_string();
            if action.starts_with("glue:") {
                r.glue = true;
                continue;
            }
            assert!(action.starts_with("s3:"), "{role}: {action}");
            if action == "s3:ListBucket" {
                assert_eq!(sub(&s["Resource"]), "arn:${AWS::Partition}:s3:::${DataBucket}", "{role}");
                for p in one_or_many(&s["Condition"]["StringLike"]["s3:prefix"]) {
                    let p = prefix_param(&sub(&p), "", "*").unwrap_or_else(|| panic!("{role}: lists {p}"));
                    r.list.insert(p);
                }
                continue;
            }
            for res in one_or_many(&s["Resource"]) {
                let arn = sub(&res);
                let p = prefix_param(&arn, "arn:${AWS::Partition}:s3:::${DataBucket}/", "*")
                    .unwrap_or_else(|| panic!("{role}: {action} on {arn}, not one prefix of the data bucket"));
                by_action.entry(action.clone()).or_default().insert(p);
            }
        }
    }
    r.read = by_action.remove("s3:GetObject").unwrap_or_default();
    r.write = by_action.remove("s3:PutObject").unwrap_or_default();
    // deleting and aborting uploads go with writing, nothing else
    for a in ["s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"] {
        assert_eq!(by_action.remove(a).unwrap_or_default(), r.write, "{role}: {a}");
    }
    assert!(by_action.is_empty(), "{role}: {by_action:?}");
    r
}

/// The prefixes (template parameters) a task definition's settings name,
/// and that of its `FLEET_OUTPUT`.
fn named_prefixes(t: &Value, resource: &str) -> (BTreeSet<String>, Option<String>) {
    let env = &t["Resources"][resource]["Properties"]["ContainerDefinitions"][0]["Environment"];
    let (mut all, mut output) = (BTreeSet::new(), None);
    for kv in env.as_array().unwrap() {
        if let Some(s) = kv["Value"]["Fn::Sub"].as_str()
            && let Some(p) = prefix_param(s, "s3://${DataBucket}/", "")
        {
            if kv["Name"] == "FLEET_OUTPUT" {
                output = Some(p.clone());
            }
            all.insert(p);
        }
    }
    (all, output)
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
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

    // each worker the state machine runs: the exits its help calls final end the shard at once,
    // the others are retried; feature-parser's and ndjson-converter's reject threshold (3) is final
    let t = template();
    for worker in ROUTED {
        let td = picked(&t, &json!({"worker": worker}));
        let exits = documented_exits(worker);
        for (&code, &is_final) in exits.iter().filter(|(c, _)| **c != 0) {
            let input = json!({"attempt": 1, "task_definition": td, "task": {"Containers": [{"ExitCode": code}]}});
            let next = choose(retryable, &input);
            assert_eq!(next == "ShardExited", is_final, "{worker} exit {code}: {next}");
            assert_eq!(next == "Backoff", !is_final, "{worker} exit {code}: {next}");
        }
        let threshold = (fleetctl::worker(worker).unwrap().command)()
            .get_arguments()
            .any(|a| a.get_env().and_then(|e| e.to_str()) == Some("FLEET_MAX_REJECT_RATIO"));
        if matches!(worker, "feature-parser" | "ndjson-converter") {
            assert!(threshold, "{worker} takes FLEET_MAX_REJECT_RATIO");
        }
        if threshold {
            let code = i32::from(Exit::RejectThreshold.code());
            assert_eq!(exits.get(&code), Some(&true), "{worker}: exit {code} (reject threshold) is final: {exits:?}");
        }
    }
}

#[test]
fn the_input_picks_the_worker_batch_predictor_by_default_then_the_finalize_step() {
    let t = template();
    let d = definition();
    let subs = &t["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"];
    assert_eq!(d["StartAt"], "Worker");
    let command = |placeholder: &str| -> Value {
        let resource = subs[placeholder]["Ref"].as_str().unwrap();
        t["Resources"][resource]["Properties"]["ContainerDefinitions"][0]["Command"].clone()
    };
    let mut runs = BTreeSet::new();
    for (input, worker) in [
        (json!({}), "batch-predictor"),
        (json!({"worker": "batch-predictor"}), "batch-predictor"),
        (json!({"worker": "feature-parser"}), "feature-parser"),
        (json!({"worker": "ndjson-converter"}), "ndjson-converter"),
        // what `fleetctl plan ndjson-converter` writes: the rest of the input does not matter
        (json!({"worker": "ndjson-converter", "manifest": {}, "results": {}, "finalize": []}), "ndjson-converter"),
    ] {
        let next = choose(&d["States"]["Worker"], &input);
        let pass = &d["States"][&next];
        assert_eq!(pass["Type"], "Pass", "{input}");
        assert_eq!(pass["ResultPath"], "$.task_definition");
        let placeholder = pass["Result"].as_str().unwrap().trim_start_matches("${").trim_end_matches('}');
        assert_eq!(command(placeholder), json!([worker]), "{input}");
        assert_eq!(pass["Next"], "Shards");
        let resource = picked(&t, &input);
        assert_eq!(resource, format!("{}TaskDefinition", camel(worker)), "{input}");
        runs.insert(resource);
    }
    // each Choice rule picks a worker of its own: no branch is shadowed by another
    let rules = d["States"]["Worker"]["Choices"].as_array().unwrap();
    let targets: BTreeSet<&str> = rules.iter().map(|c| c["Next"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), rules.len());
    assert_eq!(runs, ROUTED.iter().map(|w| format!("{}TaskDefinition", camel(w))).collect());
    // ... and may run exactly those task definitions (and the finalize step's), passing their roles
    let sm = &t["Resources"]["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let sid = |id: &str| sm.as_array().unwrap().iter().find(|s| s["Sid"] == id).unwrap().clone();
    let ecs_run: BTreeSet<String> = sid("RunShardTasks")["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Ref"].as_str().unwrap().to_string())
        .collect();
    let mut want_run = runs.clone();
    want_run.insert("FinalizeTaskDefinition".into());
    assert_eq!(ecs_run, want_run);
    let passed: BTreeSet<String> = sid("PassTaskRoles")["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Fn::GetAtt"][0].as_str().unwrap().to_string())
        .collect();
    let mut want_pass: BTreeSet<String> = want_run
        .iter()
        .map(|td| t["Resources"][td]["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0].as_str().unwrap().to_string())
        .collect();
    want_pass.insert("ExecutionRole".into());
    assert_eq!(passed, want_pass);
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
        // ... and the worker accepts them as they are (what `fleetctl plan` checks)
        let cmd = (w.command)();
        let args = fleetctl::args_from_vars(&cmd, vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let m = cmd.try_get_matches_from(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
        let checked = (w.check)(&m).unwrap_or_else(|e| panic!("{name}: {worker} refuses its settings: {e}"));
        assert_eq!(checked.common.output, vars["FLEET_OUTPUT"], "{name}");
        if let Some(table) = vars.get("FLEET_GLUE_TABLE") {
            let t = checked.table.as_ref().unwrap_or_else(|| panic!("{name}: no table"));
            assert!(t.glue.register, "{name}: the table is registered in Glue");
            assert_eq!(&t.glue.table, table, "{name}");
        }
        assert_eq!(c["logConfiguration"]["options"]["awslogs-stream-prefix"], worker, "{name}");
        assert_eq!(td["family"], format!("fleet-{worker}-{size}"), "{name}");
        // placeholders only, nothing account-specific
        let text = serde_json::to_string(&td).unwrap();
        assert!(!text.contains("arn:aws"), "{name}: {text}");
        assert!(!text.contains(".dkr.ecr."), "{name}");
        for p in ["${Image}", "${TaskRoleArn}", "${ExecutionRoleArn}", "${LogGroup}", "${Region}"] {
            assert!(text.contains(p), "{name}: {p}");
        }
    }
    // every registered worker has both sizes
    let workers: Vec<&str> = fleetctl::WORKERS.iter().map(|w| w.name).collect();
    for w in ["feature-parser", "batch-predictor", "trainer-feeder", "compactor", "ndjson-converter"] {
        assert!(workers.contains(&w), "{w} is registered");
    }
    for w in workers {
        for s in ["4vcpu", "8vcpu"] {
            assert!(seen.contains(&(w.to_string(), s.to_string())), "task-definitions/{w}.{s}.json");
        }
    }
    // ndjson-converter: the landing prefix to the events table, with feature-parser's memory
    for s in ["4vcpu", "8vcpu"] {
        let td = read(&format!("task-definitions/ndjson-converter.{s}.json"));
        let env: BTreeMap<&str, &str> = td["containerDefinitions"][0]["environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["name"].as_str().unwrap(), kv["value"].as_str().unwrap()))
            .collect();
        assert_eq!(env["FLEET_INPUT"], "s3://${Bucket}/landing/", "{s}");
        assert_eq!(env["FLEET_OUTPUT"], "s3://${Bucket}/events/", "{s}");
        assert_eq!(env["FLEET_GLUE_DATABASE"], "${GlueDatabase}", "{s}");
        assert_eq!(env["FLEET_GLUE_TABLE"], "events", "{s}");
        assert_eq!(env["FLEET_LOG_FORMAT"], "json", "{s}");
        let fp = read(&format!("task-definitions/feature-parser.{s}.json"));
        assert_eq!(td["memory"], fp["memory"], "{s}");
    }
}

#[test]
fn the_templates_task_definitions_match_the_files() {
    let t = template();
    let sizes = &t["Mappings"]["TaskSizes"];
    let default =
        |param: &str| t["Parameters"][param]["Default"].as_str().unwrap_or_else(|| panic!("{param}")).to_string();
    for (resource, worker, memory) in [
        ("FeatureParserTaskDefinition", "feature-parser", "Memory"),
        ("BatchPredictorTaskDefinition", "batch-predictor", "Memory"),
        ("TrainerFeederTaskDefinition", "trainer-feeder", "TrainerMemory"),
        ("CompactorTaskDefinition", "compactor", "Memory"),
        ("NdjsonConverterTaskDefinition", "ndjson-converter", "Memory"),
    ] {
        let p = &t["Resources"][resource]["Properties"];
        assert_eq!(resource, format!("{}TaskDefinition", camel(worker)));
        assert_eq!(p["TaskRoleArn"]["Fn::GetAtt"], json!([format!("{}Role", camel(worker)), "Arn"]), "{worker}");
        assert_eq!(p["Family"]["Fn::Sub"], format!("${{AWS::StackName}}-{worker}"), "{worker}");
        let c = &p["ContainerDefinitions"][0];
        assert_eq!(c["LogConfiguration"]["Options"]["awslogs-stream-prefix"], worker, "{worker}");
        for size in ["4vcpu", "8vcpu"] {
            let file = read(&format!("task-definitions/{worker}.{size}.json"));
            let fc = &file["containerDefinitions"][0];
            let mem_key = p["Memory"]["Fn::FindInMap"][2].as_str().unwrap();
            assert_eq!(mem_key, memory, "{worker}");
            assert_eq!(sizes[size]["Cpu"], file["cpu"], "{worker} {size}");
            assert_eq!(sizes[size][mem_key], file["memory"], "{worker} {size}");
            // the same values, the template's at its parameters' defaults
            let file_env: BTreeMap<&str, &Value> = fc["environment"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| (kv["name"].as_str().unwrap(), &kv["value"]))
                .collect();
            for kv in c["Environment"].as_array().unwrap() {
                let (name, v) = (kv["Name"].as_str().unwrap(), &kv["Value"]);
                let value = if let Some(s) = v["Fn::Sub"].as_str() {
                    let mut s = s.replace("${DataBucket}", "${Bucket}");
                    while let Some(i) = s.find("Prefix}") {
                        let start = s[..i].rfind("${").unwrap();
                        let param = s[start + 2..i + "Prefix".len()].to_string();
                        s.replace_range(start..i + "Prefix}".len(), &default(&param));
                    }
                    json!(s)
                } else if let Some(key) = v["Fn::FindInMap"][2].as_str() {
                    sizes[size][key].clone()
                } else {
                    v.clone()
                };
                assert_eq!(file_env.get(name), Some(&&value), "{worker} {size}: {name}");
            }
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
    let roles = [
        "FeatureParserRole",
        "BatchPredictorRole",
        "TrainerFeederRole",
        "FinalizeRole",
        "CompactorRole",
        "NdjsonConverterRole",
    ];
    for role in roles {
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

    // what each role may list, read and write, as the template's prefix parameters
    for (role, read, write, glue) in [
        ("FeatureParserRole", &["RawPrefix", "FeaturesPrefix"][..], Some("FeaturesPrefix"), true),
        (
            "BatchPredictorRole",
            &["RawPrefix", "ModelsPrefix", "PredictionsPrefix"][..],
            Some("PredictionsPrefix"),
            true,
        ),
        ("TrainerFeederRole", &["FeaturesPrefix", "TargetsPrefix", "ModelsPrefix"][..], Some("ModelsPrefix"), false),
        ("CompactorRole", &["FeaturesPrefix", "CompactPrefix"][..], Some("CompactPrefix"), true),
        ("NdjsonConverterRole", &["LandingPrefix", "EventsPrefix"][..], Some("EventsPrefix"), true),
        ("FinalizeRole", &["FeaturesPrefix", "PredictionsPrefix", "EventsPrefix"][..], None, true),
    ] {
        let want =
            Reach { list: names(read), read: names(read), write: write.into_iter().map(String::from).collect(), glue };
        assert_eq!(reach(&t, role), want, "{role}");
    }
    // a worker's role reaches what its task definition names: its output (written, and read for
    // the commit markers and the schema of earlier runs) and its inputs (read), nothing else
    for w in fleetctl::WORKERS {
        let resource = format!("{}TaskDefinition", camel(w.name));
        let role = r[&resource]["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0].as_str().unwrap().to_string();
        assert_eq!(role, format!("{}Role", camel(w.name)));
        let (named, output) = named_prefixes(&t, &resource);
        let output = output.unwrap_or_else(|| panic!("{resource}: FLEET_OUTPUT is not a prefix of the data bucket"));
        let env = serde_json::to_string(&r[&resource]["Properties"]["ContainerDefinitions"][0]["Environment"]).unwrap();
        let glue = env.contains("\"FLEET_GLUE_DATABASE\"");
        let want = Reach { list: named.clone(), read: named, write: BTreeSet::from([output]), glue };
        assert_eq!(reach(&t, &role), want, "{} ({role})", w.name);
    }
    // the finalize step (catalog sync) reads the output of every worker the state machine runs
    // with a Glue table, and writes nothing
    let mut outputs = BTreeSet::new();
    for w in ROUTED {
        let resource = picked(&t, &json!({"worker": w}));
        let env = serde_json::to_string(&r[&resource]["Properties"]["ContainerDefinitions"][0]["Environment"]).unwrap();
        if env.contains("\"FLEET_GLUE_DATABASE\"") {
            outputs.insert(named_prefixes(&t, &resource).1.unwrap());
        }
    }
    assert_eq!(
        reach(&t, "FinalizeRole"),
        Reach { list: outputs.clone(), read: outputs, write: BTreeSet::new(), glue: true }
    );
    // the landing prefix is ndjson-converter's alone, and only read
    for role in roles {
        let reach = reach(&t, role);
        assert!(!reach.write.contains("LandingPrefix"), "{role}");
        assert_eq!(reach.read.contains("LandingPrefix"), role == "NdjsonConverterRole", "{role}");
    }
    // the bookkeeping of a run is under its output: _runs, _rejects and _commits, the schema a
    // conversion wrote, all relative to FLEET_OUTPUT, so the write prefix covers them
    let shard = fleet_contract::Shard { index: 7, count: 50 };
    let day = fleet_contract::Partition(vec![("dt".into(), "2026-12-04".into())]);
    for key in [
        fleet_worker::layout::summary_key("r1", shard),
        fleet_worker::layout::table_input_key("r1"),
        fleet_worker::layout::rejects_key(&day, shard),
        fleet_worker::layout::commit_key(&day, shard),
        fleet_worker::layout::commit_key(&fleet_contract::Partition(vec![]), shard),
        fleet_ndjson::schema_key("r1"),
    ] {
        assert!(!key.starts_with('/') && !key.split('/').any(|p| p == ".." || p.is_empty()), "{key}");
        assert!(key.starts_with("_runs/") || key.starts_with("_rejects/") || key.contains("_commits/"), "{key}");
    }
    // the bucket aborts what a killed task could not
    let rules = &r["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    assert!(
        rules.as_array().unwrap().iter().any(|x| x["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_u64())
    );
    // the compactor's schedule exists and is off
    assert_eq!(r["CompactorSchedule"]["Properties"]["State"], "DISABLED");
}
