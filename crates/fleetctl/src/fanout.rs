//! The fan-out: a plan of shards (the manifest that the state machine's
//! Distributed Map reads, one item per shard with its `FLEET_*` values) and
//! its local run, as processes or containers, a bounded number at once,
//! retrying as the state machine retries, with a live line per shard on a
//! terminal.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fleet_contract::vars;
use fleet_store::Location;
use fleet_worker::Exit;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tracing::{info, warn};

/// Extra attempts for a shard that failed with a retryable exit code, here
/// and in the state machine (`infra/fleet.template.json`, 3 attempts in all).
pub const DEFAULT_RETRIES: u32 = 2;

/// One environment variable, as ECS's `KeyValuePair` (a container
/// override's `Environment`) writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// One shard of a plan: an item of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardItem {
    pub worker: String,
    pub index: u32,
    pub count: u32,
    /// Every `FLEET_*` value of the shard, its index and count included.
    pub environment: Vec<EnvVar>,
}

/// The shards of `worker` over `shards` shards, each with `settings` and its
/// own index and count.
pub fn plan(worker: &str, shards: u32, settings: &BTreeMap<String, String>) -> Vec<ShardItem> {
    (0..shards)
        .map(|index| {
            let mut env = settings.clone();
            env.insert(vars::SHARD_INDEX.name.into(), index.to_string());
            env.insert(vars::SHARD_COUNT.name.into(), shards.to_string());
            ShardItem {
                worker: worker.to_string(),
                index,
                count: shards,
                environment: env.into_iter().map(|(name, value)| EnvVar { name, value }).collect(),
            }
        })
        .collect()
}

/// Bucket and key of an object URI (`s3://bucket/key`); a local file has
/// an empty bucket and its path as the key.
fn bucket_key(uri: &str) -> (String, String) {
    match uri.strip_prefix("s3://") {
        Some(rest) => {
            let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
            (b.to_string(), k.to_string())
        }
        None => (String::new(), uri.trim_start_matches("file://").to_string()),
    }
}

/// Writes `<out>/manifest.json` (the items) and `<out>/execution-input.json`
/// (what `fleetctl aws start` gives the state machine: the worker, the
/// manifest, where the map run's results go, and the finalize step's
/// settings when the table is registered in Glue). Returns both URIs.
pub async fn write_plan(
    out: &str,
    items: &[ShardItem],
    finalize: Option<Vec<EnvVar>>,
) -> anyhow::Result<(String, String)> {
    let loc = Location::parse(out)?;
    let worker = items.first().map(|i| i.worker.clone()).context("a plan has at least one shard")?;
    let mut manifest = serde_json::to_vec_pretty(items)?;
    manifest.push(b'\n');
    loc.put_bytes("manifest.json", manifest).await?;
    let manifest_uri = loc.child("manifest.json")?.uri();
    let results_uri = format!("{}/", loc.child("results")?.uri());
    let (mb, mk) = bucket_key(&manifest_uri);
    let (rb, rp) = bucket_key(&results_uri);
    let run_id = items[0].environment.iter().find(|e| e.name == vars::RUN_ID.name).map(|e| e.value.clone());
    let mut input = serde_json::json!({
        "worker": worker,
        "run_id": run_id,
        "manifest": {"Bucket": mb, "Key": mk},
        "results": {"Bucket": rb, "Prefix": rp},
    });
    if let Some(f) = finalize {
        input["finalize"] = serde_json::to_value(f)?;
    }
    let mut b = serde_json::to_vec_pretty(&input)?;
    b.push(b'\n');
    loc.put_bytes("execution-input.json", b).await?;
    Ok((manifest_uri, loc.child("execution-input.json")?.uri()))
}

/// The items of a manifest written by [`write_plan`] (a URI or a path).
pub async fn read_manifest(uri: &str) -> anyhow::Result<Vec<ShardItem>> {
    let loc = Location::parse(uri)?;
    let bytes = loc.get_path(loc.path()).await?;
    let items: Vec<ShardItem> = serde_json::from_slice(&bytes).with_context(|| {
        format!("{uri}: expected a shard manifest (a JSON array of {{worker, index, count, environment}}, as `fleetctl plan` writes)")
    })?;
    if items.is_empty() {
        bail!("{uri}: the manifest has no shards");
    }
    Ok(items)
}

/// How to run a plan locally.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// This fleetctl: a shard runs as `<exe> <worker>`.
    pub exe: PathBuf,
    /// Run each shard as `docker run <image> <worker>` instead.
    pub docker: Option<String>,
    pub shards: Vec<ShardItem>,
    /// Shards running at once.
    pub parallel: usize,
    /// Extra attempts for a shard that failed with a retryable exit code.
    pub retries: u32,
    /// Where each shard's log goes (`<dir>/shard-N.log`); without it, the
    /// logs go to stderr (unless the live display is on, which needs it).
    pub log_dir: Option<PathBuf>,
}

/// How one shard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardOutcome {
    pub index: u32,
    pub exit_code: i32,
    pub attempts: u32,
    pub seconds: u64,
}

/// Success, or a failure that retrying cannot fix (exits 2, 3 and 4).
pub fn is_final(code: i32) -> bool {
    code == 0 || !Exit::from_code(code).is_retryable()
}

/// What the live display shows of a shard.
#[derive(Debug, Clone, Default)]
struct Live {
    state: &'static str,
    attempt: u32,
    rows: u64,
    rows_per_second: String,
    exit_code: Option<i32>,
}

type Board = Arc<Mutex<Vec<Live>>>;

/// Whether the live lines are on the terminal yet (the next draw moves up over them).
static DRAWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs every shard to completion; returns their outcomes in shard order.
pub async fn fan_out(f: &FanOut) -> anyhow::Result<Vec<ShardOutcome>> {
    if let Some(d) = &f.log_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(f.parallel.max(1)));
    let board: Board = Arc::new(Mutex::new(vec![Live { state: "waiting", ..Live::default() }; f.shards.len()]));
    let live = std::io::stderr().is_terminal() && f.log_dir.is_some();
    let display = live.then(|| tokio::spawn(redraw(board.clone())));
    let mut tasks = Vec::new();
    for (slot, item) in f.shards.iter().enumerate() {
        let (sem, f, item, board) = (sem.clone(), f.clone(), item.clone(), board.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let start = Instant::now();
            let mut attempts = 0;
            loop {
                attempts += 1;
                set(&board, slot, |l| *l = Live { state: "running", attempt: attempts, ..Live::default() });
                let code = run_shard(&f, &item, attempts, &board, slot, live).await;
                if is_final(code) || attempts > f.retries {
                    set(&board, slot, |l| {
                        l.state = if code == 0 { "done" } else { "failed" };
                        l.exit_code = Some(code);
                    });
                    return ShardOutcome {
                        index: item.index,
                        exit_code: code,
                        attempts,
                        seconds: start.elapsed().as_secs(),
                    };
                }
                let backoff = Duration::from_secs(1 << (attempts - 1).min(5));
                set(&board, slot, |l| {
                    l.state = "backoff";
                    l.exit_code = Some(code);
                });
                if !live {
                    warn!(
                        shard = item.index,
                        exit_code = code,
                        attempt = attempts,
                        backoff_seconds = backoff.as_secs(),
                        "Shard failed; retrying."
                    );
                }
                tokio::time::sleep(backoff).await;
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.context("shard task")?);
    }
    if let Some(d) = display {
        d.abort();
        draw(&board);
        DRAWN.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(out)
}

fn set(board: &Board, slot: usize, f: impl FnOnce(&mut Live)) {
    if let Ok(mut b) = board.lock() {
        f(&mut b[slot]);
    }
}

/// Redraws the shard lines on the terminal every half second.
async fn redraw(board: Board) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        draw(&board);
    }
}

fn draw(board: &Board) {
    let Ok(b) = board.lock() else { return };
    let mut s = String::new();
    if DRAWN.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // back to the first shard line
        s.push_str(&format!("\x1b[{}A", b.len()));
    }
    for (i, l) in b.iter().enumerate() {
        let code = l.exit_code.map_or(String::new(), |c| format!("exit {c}"));
        s.push_str(&format!(
            "\x1b[2K shard {i:>4}  {:<8} attempt {:>2}  {:>12} rows  {:>9} rows/s  {code}\n",
            l.state, l.attempt, l.rows, l.rows_per_second
        ));
    }
    crate::err_out(&s);
}

/// The command of one attempt: this fleetctl, or `docker run` of the image,
/// with the shard's variables.
fn shard_command(f: &FanOut, item: &ShardItem) -> tokio::process::Command {
    match &f.docker {
        None => {
            let mut c = tokio::process::Command::new(&f.exe);
            c.arg(&item.worker);
            c
        }
        Some(image) => {
            let mut c = tokio::process::Command::new("docker");
            c.args(["run", "--rm", "--read-only", "--network", "host", "--init"]);
            // the shard's values, the S3 and AWS settings of this environment
            let mut names: Vec<String> = item.environment.iter().map(|e| e.name.clone()).collect();
            names.push(vars::LOG_FORMAT.name.to_string());
            names.extend(
                std::env::vars_os()
                    .filter_map(|(k, _)| k.into_string().ok())
                    .filter(|k| k.starts_with("AWS_") || k.starts_with("FLEET_") || k == "RUST_LOG"),
            );
            names.sort();
            names.dedup();
            for n in names {
                c.arg("-e").arg(n);
            }
            c.arg(image).arg(&item.worker);
            c
        }
    }
}

/// Runs one attempt of a shard; its logs go to its log file (or stderr), its
/// progress to the board. With the live display on, nothing else is printed.
async fn run_shard(f: &FanOut, item: &ShardItem, attempt: u32, board: &Board, slot: usize, live: bool) -> i32 {
    let mut cmd = shard_command(f, item);
    cmd.envs(item.environment.iter().map(|e| (&e.name, &e.value)));
    cmd.env(vars::LOG_FORMAT.name, "json");
    cmd.stdout(Stdio::piped()).kill_on_drop(true);
    let mut log = match &f.log_dir {
        Some(dir) => {
            let path = dir.join(format!("shard-{:05}.log", item.index));
            match tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await {
                Ok(file) => Some(file),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "Cannot open the shard log; logging to stderr.");
                    None
                }
            }
        }
        None => None,
    };
    if !live {
        info!(shard = item.index, attempt, docker = f.docker.is_some(), "Starting shard.");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!(shard = item.index, error = %e, "Cannot start the shard process.");
            return Exit::Retryable.code().into();
        }
    };
    if let Some(stdout) = child.stdout.take() {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "Progress."
            {
                set(board, slot, |l| {
                    l.rows = v["rows"].as_u64().unwrap_or(l.rows);
                    l.rows_per_second = v["rows_per_second"].as_str().unwrap_or_default().to_string();
                });
            }
            match &mut log {
                Some(file) => {
                    let _ = file.write_all(format!("{line}\n").as_bytes()).await;
                }
                None => crate::err_out(&format!("{line}\n")),
            }
        }
    }
    match child.wait().await {
        Ok(s) => s.code().unwrap_or(Exit::Terminated.code().into()),
        Err(e) => {
            warn!(shard = item.index, error = %e, "Lost the shard process.");
            Exit::Retryable.code().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in worker: exits with the next code of `CODES` on each attempt.
    fn script(dir: &std::path::Path) -> PathBuf {
        let p = dir.join("worker.sh");
        std::fs::write(
            &p,
            "#!/bin/sh\nf=\"$STATE/attempts-$FLEET_SHARD_INDEX\"\nn=$(cat \"$f\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"$f\"\nset -- $CODES\nshift $n\nexit ${1:-0}\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// What the state machine does with a failed task, the local fan-out
    /// does with a failed process: 1, 143 and undocumented codes are retried
    /// up to DEFAULT_RETRIES times, 2, 3 and 4 are final.
    #[tokio::test(flavor = "multi_thread")]
    async fn failed_shards_are_retried_as_the_state_machine_retries_them() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: &[(&str, i32, u32)] = &[
            ("1 143 0", 0, 3),
            ("1 1 1 0", 1, 3),
            ("143 143 143", 143, 3),
            ("101 0", 0, 2),
            ("4 0", 4, 1),
            ("2", 2, 1),
            ("1 3 0", 3, 2),
            ("0", 0, 1),
        ];
        let mut shards = Vec::new();
        for (i, (codes, _, _)) in cases.iter().enumerate() {
            let mut item = plan("test-worker", cases.len() as u32, &BTreeMap::new()).swap_remove(i);
            item.environment.push(EnvVar { name: "CODES".into(), value: codes.to_string() });
            item.environment.push(EnvVar { name: "STATE".into(), value: tmp.path().display().to_string() });
            shards.push(item);
        }
        let f = FanOut {
            exe: script(tmp.path()),
            docker: None,
            shards,
            parallel: cases.len(),
            retries: DEFAULT_RETRIES,
            log_dir: Some(tmp.path().join("logs")),
        };
        let out = fan_out(&f).await.unwrap();
        for (o, (codes, code, attempts)) in out.iter().zip(cases) {
            assert_eq!((o.exit_code, o.attempts), (*code, *attempts), "codes {codes}");
        }
    }

    #[test]
    fn a_plan_gives_each_shard_its_index_and_the_same_settings() {
        let settings = BTreeMap::from([("FLEET_INPUT".to_string(), "s3://b/raw/".to_string())]);
        let items = plan("feature-parser", 2, &settings);
        let env = |i: usize| -> Vec<(String, String)> {
            items[i].environment.iter().map(|e| (e.name.clone(), e.value.clone())).collect()
        };
        assert_eq!(
            env(1),
            [
                ("FLEET_INPUT".to_string(), "s3://b/raw/".to_string()),
                ("FLEET_SHARD_COUNT".to_string(), "2".to_string()),
                ("FLEET_SHARD_INDEX".to_string(), "1".to_string())
            ]
        );
        assert_eq!((items[0].index, items[0].count, items[0].worker.as_str()), (0, 2, "feature-parser"));
        assert_eq!(bucket_key("s3://lake/runs/r1/manifest.json"), ("lake".into(), "runs/r1/manifest.json".into()));
    }
}
