//! The operator's tool behind `fleetctl`: the registered workers, local
//! fan-out of shard workers (what Step Functions does with ECS tasks: one
//! process per shard, a bounded number at once, retries of shards that
//! failed with a retryable exit code, final failure when a shard fails for
//! good), the end-to-end demo, the parse-only ceiling and cleanup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use fleet_contract::vars;
use fleet_store::Location;
use fleet_worker::{Registered, RunSummary};
use tracing::info;

mod fanout;
pub use fanout::{
    DEFAULT_RETRIES, EnvVar, FanOut, ShardItem, ShardOutcome, fan_out, is_final, plan, read_manifest, write_plan,
};

/// The workers `fleetctl <worker>` runs and `fleetctl run <worker>` fans out.
pub const WORKERS: &[Registered] = &[
    fleet_worker::register::<fleet_features::FeatureParser>(),
    fleet_worker::register::<fleet_predictor::BatchPredictor>(),
    fleet_worker::register::<fleet_trainer::TrainerFeeder>(),
    fleet_worker::register::<fleet_compaction::Compactor>(),
    fleet_worker::register::<fleet_ndjson::NdjsonConverter>(),
];

/// The registered worker called `name`.
pub fn worker(name: &str) -> Option<&'static Registered> {
    WORKERS.iter().find(|w| w.name == name)
}

/// The settings given on the command line of `matches` (parsed by `cmd`,
/// a worker's command), as the `FLEET_*` variables a shard process takes;
/// with `from_env`, those set in the environment too (a plan's shards run
/// elsewhere and inherit nothing), else they reach the shards by inheritance.
pub fn given_vars(cmd: clap::Command, matches: &clap::ArgMatches, from_env: bool) -> BTreeMap<String, String> {
    use clap::parser::ValueSource;
    let mut out = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let (Some(env), id) = (arg.get_env().and_then(|e| e.to_str()), arg.get_id().as_str()) else { continue };
        let source = matches.value_source(id);
        if (source == Some(ValueSource::CommandLine) || (from_env && source == Some(ValueSource::EnvVariable)))
            && let Ok(Some(v)) = matches.try_get_one::<String>(id)
        {
            out.insert(env.to_string(), v.clone());
        }
    }
    out
}

/// Writes text for a person on stderr (the live display, shards' logs).
fn err_out(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(s.as_bytes());
}

/// The command line that gives `cmd` (a worker's command) these `FLEET_*`
/// values as flags, to validate a manifest's shard as the worker would.
pub fn args_from_vars<'a>(cmd: &clap::Command, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut args = vec![cmd.get_name().to_string()];
    for (k, v) in vars {
        if let Some(a) = cmd.get_arguments().find(|a| a.get_env().and_then(|e| e.to_str()) == Some(k))
            && let Some(long) = a.get_long()
        {
            args.push(format!("--{long}={v}"));
        }
    }
    args
}

/// Reads the run summaries the shards wrote (any worker's: its own
/// metrics stay a JSON map).
pub async fn read_summaries(output: &str, run_id: &str, shards: u32) -> anyhow::Result<Vec<Option<RunSummary>>> {
    let loc = Location::parse(output)?;
    let mut out = Vec::new();
    for index in 0..shards {
        let key = fleet_worker::layout::summary_key(run_id, fleet_contract::Shard { index, count: shards });
        out.push(match loc.get_bytes(&key).await {
            Ok(b) => Some(serde_json::from_slice(&b).with_context(|| format!("parsing {key}"))?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        });
    }
    Ok(out)
}

/// Renders the per-shard table the demo and `run` print.
pub fn table(outcomes: &[ShardOutcome], summaries: &[Option<RunSummary>]) -> String {
    let mut s = format!(
        "{:>5}  {:>6}  {:>10}  {:>9}  {:>5}  {:>9}  {:>7}  {:>8}\n",
        "shard", "status", "rows", "rejected", "files", "rows/s", "MB/s", "peak MiB"
    );
    let (mut rows, mut rej, mut files) = (0u64, 0u64, 0usize);
    for (o, sm) in outcomes.iter().zip(summaries) {
        let status = fleet_worker::Exit::from_code(o.exit_code).name();
        match sm {
            Some(sm) => {
                rows += sm.rows_out;
                rej += sm.rows_rejected;
                files += sm.files.len();
                s.push_str(&format!(
                    "{:>5}  {:>6}  {:>10}  {:>9}  {:>5}  {:>9.0}  {:>7.1}  {:>8}\n",
                    o.index,
                    status,
                    sm.rows_out,
                    sm.rows_rejected,
                    sm.files.len(),
                    sm.rows_per_second,
                    sm.mb_per_second,
                    sm.peak_rss_bytes >> 20
                ));
            }
            None => s.push_str(&format!("{:>5}  {:>6}  {:>10}\n", o.index, status, "-")),
        }
    }
    s.push_str(&format!("{:>5}  {:>6}  {:>10}  {:>9}  {:>5}\n", "total", "", rows, rej, files));
    s
}

/// Options of `fleetctl demo`.
#[derive(Debug, Clone)]
pub struct Demo {
    pub dir: PathBuf,
    pub rows: u64,
    pub files: u64,
    pub shards: u32,
    pub profile: fleet_synth::Profile,
    pub exe: PathBuf,
}

/// The whole pipeline on generated data, each step as the fleet runs it
/// (local processes of this binary's workers): feature-parser fanned out
/// over the raw table, trainer-feeder on the features and the targets,
/// batch-predictor fanned out over the raw table with the trained models.
/// Returns the text to print: per-step figures, the models' metrics, and
/// where everything is.
pub async fn demo(d: &Demo) -> anyhow::Result<String> {
    let dir = std::path::absolute(&d.dir).with_context(|| format!("resolving {}", d.dir.display()))?;
    let raw_dir = dir.join("raw");
    let out_dir = dir.join("features");
    let trained_dir = dir.join("trained");
    let pred_dir = dir.join("predictions");
    let logs = dir.join("logs");
    for sub in [&raw_dir, &dir.join("targets"), &out_dir, &trained_dir, &pred_dir, &logs] {
        if sub.exists() {
            std::fs::remove_dir_all(sub).with_context(|| format!("clearing {}", sub.display()))?;
        }
    }
    let raw = Location::parse(&format!("{}/", raw_dir.display()))?;
    let targets = Location::parse(&format!("{}/", dir.join("targets").display()))?;
    let t0 = Instant::now();
    info!(rows = d.rows, files = d.files, dir = %dir.display(), "Generating synthetic data.");
    let (g, _) = fleet_synth::Generator::new(d.profile)
        .with_rows(d.rows)
        .with_files(d.files)
        .write(&raw, Some(&targets))
        .await?;
    let gen_secs = t0.elapsed().as_secs_f64();

    let cpus = fleet_contract::available_cpus();
    let parallel = (d.shards as usize).min(cpus).max(1);
    let threads = (cpus / parallel).max(1).to_string();
    let run_id = "demo".to_string();
    let output = format!("{}/", out_dir.display());
    let step_vars = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        v.insert(vars::RUN_ID.name.into(), run_id.clone());
        v.insert(vars::LOG_FORMAT.name.into(), "json".into());
        v
    };
    let fan = |worker: &str, vars: BTreeMap<String, String>, shards: u32, parallel: usize| FanOut {
        exe: d.exe.clone(),
        docker: None,
        shards: plan(worker, shards, &vars),
        parallel,
        retries: 1,
        log_dir: Some(logs.join(worker)),
    };

    // 1. parse
    let parse_vars = step_vars(&[
        (vars::INPUT.name, format!("{}/", raw_dir.display())),
        (vars::OUTPUT.name, output.clone()),
        (vars::THREADS.name, threads.clone()),
    ]);
    fleet_features::Config::from_vars(&parse_vars).context("demo configuration")?;
    let (outcomes, parse_secs, summaries) =
        fanned(&fan("feature-parser", parse_vars, d.shards, parallel), &output, &run_id).await?;
    let rows: u64 = summaries.iter().flatten().map(|s| s.rows_out).sum();
    let json_mb: f64 = summaries.iter().flatten().map(|s| s.bytes_processed as f64 / 1e6).sum();
    let mut s = format!(
        "Generated {} rows in {} files ({:.0} MB Parquet) in {:.1} s: {}\n\nfeature-parser: {} shards, {} at a time, {} thread(s) each, {:.1} s wall, {:.0} rows/s, {:.0} MB/s of JSON overall\n\n",
        g.rows,
        g.files.len(),
        g.bytes as f64 / 1e6,
        gen_secs,
        raw_dir.display(),
        d.shards,
        parallel,
        threads,
        parse_secs,
        rows as f64 / parse_secs,
        json_mb / parse_secs
    );
    s.push_str(&table(&outcomes, &summaries));
    failed(&s, "feature-parser", &outcomes, &logs)?;

    // 2. train
    let trained = format!("{}/", trained_dir.display());
    let train_vars = step_vars(&[
        (fleet_trainer::vars::FEATURES.name, output.clone()),
        (fleet_trainer::vars::TARGETS.name, format!("{}/", dir.join("targets").display())),
        (vars::OUTPUT.name, trained.clone()),
        (vars::THREADS.name, cpus.to_string()),
    ]);
    fleet_trainer::Config::from_vars(&train_vars).context("demo configuration")?;
    let (train_outcome, train_secs, _) = fanned(&fan("trainer-feeder", train_vars, 1, 1), &trained, &run_id).await?;
    failed(&s, "trainer-feeder", &train_outcome, &logs)?;
    let tloc = Location::parse(&trained)?;
    let metrics: serde_json::Value = serde_json::from_slice(&tloc.get_bytes("models/metrics.json").await?)?;
    let models: Vec<serde_json::Value> = metrics["models"].as_array().cloned().unwrap_or_default();
    let first = models.first().cloned().unwrap_or_default();
    s.push_str(&format!(
        "\ntrainer-feeder: {} threads, {:.1} s wall; {} rows joined: train {}, validation {}, test {}\n\n",
        cpus,
        train_secs,
        first["rows"]["train"].as_u64().unwrap_or(0)
            + first["rows"]["validation"].as_u64().unwrap_or(0)
            + first["rows"]["test"].as_u64().unwrap_or(0),
        first["rows"]["train"],
        first["rows"]["validation"],
        first["rows"]["test"],
    ));
    s.push_str(&metrics_table(&models));

    // 3. predict
    let predictions = format!("{}/", pred_dir.display());
    let model_uris: Vec<String> = models
        .iter()
        .filter_map(|m| m["model"].as_str())
        .map(|m| format!("{}/models/{m}/", trained_dir.display()))
        .collect();
    let pred_vars = step_vars(&[
        (vars::INPUT.name, format!("{}/", raw_dir.display())),
        (vars::OUTPUT.name, predictions.clone()),
        (fleet_predictor::MODEL.name, model_uris.join(",")),
        (vars::THREADS.name, threads.clone()),
    ]);
    fleet_predictor::Config::from_vars(&pred_vars).context("demo configuration")?;
    let (pred_outcomes, pred_secs, pred_summaries) =
        fanned(&fan("batch-predictor", pred_vars, d.shards, parallel), &predictions, &run_id).await?;
    let pred_rows: u64 = pred_summaries.iter().flatten().map(|s| s.rows_out).sum();
    s.push_str(&format!(
        "\nbatch-predictor: {} models, {} shards, {} at a time, {:.1} s wall, {:.0} rows/s overall\n\n",
        model_uris.len(),
        d.shards,
        parallel,
        pred_secs,
        pred_rows as f64 / pred_secs
    ));
    s.push_str(&table(&pred_outcomes, &pred_summaries));
    failed(&s, "batch-predictor", &pred_outcomes, &logs)?;

    let partition = summaries.iter().flatten().next().map_or("dt=2025-07-01".to_string(), |s| s.partition.clone());
    s.push_str(&format!(
        "\nWhere to look:\n  report      {trained}models/report.html   (metrics and charts; open it in a browser)\n  features    {out}/{partition}/   (Parquet, zstd)\n  splits      {trained}splits/{{train,validation,test}}/\n  models      {trained}models/<model>/model.json, metrics.json\n  predictions {pred}{partition}/\n  commits     <table>/{partition}/_commits/, {trained}_commits/\n  rejects     {out}/_rejects/{partition}/\n  summaries   <table>/_runs/{run_id}/\n  Glue table  {out}/_runs/{run_id}/table_input.json   (aws glue create-table --cli-input-json file://...)\n  logs        {logs}/<worker>/\n",
        out = out_dir.display(),
        pred = predictions,
        logs = logs.display()
    ));
    Ok(s)
}

/// Runs a fan-out: its shards' outcomes, its wall seconds and the shards'
/// run summaries under `output`.
async fn fanned(
    fan: &FanOut,
    output: &str,
    run_id: &str,
) -> anyhow::Result<(Vec<ShardOutcome>, f64, Vec<Option<RunSummary>>)> {
    let start = Instant::now();
    let outcomes = fan_out(fan).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok((outcomes, secs, read_summaries(output, run_id, fan.shards.len() as u32).await?))
}

/// The per-model metrics table of `models/metrics.json`.
fn metrics_table(models: &[serde_json::Value]) -> String {
    let mut s = format!(
        "{:<6}  {:>8}  {:>9}  {:>7}  {:>8}  {:>9}  {:>7}  {:>7}\n",
        "model", "val MAE", "val RMSE", "val R²", "test MAE", "test RMSE", "test R²", "fit s"
    );
    let f = |v: &serde_json::Value, d: usize| v.as_f64().map_or("-".to_string(), |x| format!("{x:.d$}"));
    for m in models {
        s.push_str(&format!(
            "{:<6}  {:>8}  {:>9}  {:>7}  {:>8}  {:>9}  {:>7}  {:>7}\n",
            m["model"].as_str().unwrap_or("?"),
            f(&m["validation"]["mae"], 3),
            f(&m["validation"]["rmse"], 3),
            f(&m["validation"]["r2"], 4),
            f(&m["test"]["mae"], 3),
            f(&m["test"]["rmse"], 3),
            f(&m["test"]["r2"], 4),
            f(&m["fit_seconds"], 2),
        ));
    }
    s
}

/// The demo's error when a step's shard failed for good.
fn failed(so_far: &str, worker: &str, outcomes: &[ShardOutcome], logs: &Path) -> anyhow::Result<()> {
    if let Some(bad) = outcomes.iter().find(|o| o.exit_code != 0) {
        bail!(
            "{so_far}\n{worker} shard {} failed with exit code {}; see {}",
            bad.index,
            bad.exit_code,
            logs.join(worker).display()
        );
    }
    Ok(())
}

/// Where the `feature-parser` subcommand of this same binary is.
pub fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating fleetctl")
}

/// Turns `dir` into the `file://` URI of a prefix.
pub fn dir_uri(dir: &Path) -> String {
    format!("{}/", std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()).display())
}

/// The parse-only ceiling on the JSON cells of a raw table: loads up to
/// `max_bytes` of cells into memory, then parses them all with simd-json on
/// `threads` threads. Returns a report line.
pub async fn bench_parse(input: &str, threads: usize, max_bytes: u64) -> anyhow::Result<String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_schema::{DataType, Field, Schema};
    use futures::TryStreamExt;
    let spec = fleet_spec::Spec::predict_age();
    let json_cols = spec.json_columns();
    let schema = std::sync::Arc::new(Schema::new(
        json_cols.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>(),
    ));
    let mut cells: Vec<Vec<u8>> = Vec::new();
    let (mut bytes, mut rows) = (0u64, 0u64);
    'outer: for obj in fleet_store::list_inputs(input).await? {
        let format = fleet_store::InputFormat::from_name(obj.name());
        let mut stream = fleet_store::open_batches(&obj, format, &json_cols, &[], schema.clone(), 8192).await?;
        while let Some(b) = stream.try_next().await? {
            for r in 0..b.num_rows() {
                for c in b.columns() {
                    let s = match c.data_type() {
                        _ if c.is_null(r) => None,
                        DataType::Utf8View => Some(c.as_string_view().value(r).as_bytes()),
                        DataType::Utf8 => Some(c.as_string::<i32>().value(r).as_bytes()),
                        DataType::BinaryView => Some(c.as_binary_view().value(r)),
                        _ => None,
                    };
                    if let Some(s) = s {
                        bytes += s.len() as u64;
                        cells.push(s.to_vec());
                    }
                }
                rows += 1;
                if bytes >= max_bytes {
                    break 'outer;
                }
            }
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let refs: Vec<&[u8]> = cells.iter().map(Vec::as_slice).collect();
    fleet_features::parse_only(&refs, &pool); // warm-up
    let (n, parsed, secs) = fleet_features::parse_only(&refs, &pool);
    Ok(format!(
        "parse-only ceiling: {n} cells of {rows} rows, {:.1} MB in {secs:.3} s on {threads} threads: {:.0} MB/s, {:.0} rows/s ({:.1} MB parsed without error)\n",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        rows as f64 / secs,
        parsed as f64 / 1e6
    ))
}

/// The prefixes `fleetctl cleanup` never deletes unless told otherwise.
pub const DEFAULT_PROTECTED: &[&str] = &["permanent/", "final-results/"];

/// Whether `rel` (a path below the cleanup root, a folder ending in `/` or
/// an object) is, holds or lies under one of the `protected` prefixes
/// (written with or without a trailing `/`).
pub fn is_protected(rel: &str, protected: &[String]) -> bool {
    let rel = rel.trim_start_matches('/');
    protected.iter().any(|p| {
        let p = p.trim_matches('/');
        let folder = format!("{p}/");
        !p.is_empty() && (rel == p || rel.starts_with(&folder) || (rel.ends_with('/') && folder.starts_with(rel)))
    })
}

/// Glue tables whose names start with these are never dropped by `cleanup`.
pub const DEFAULT_PROTECTED_TABLES: &[&str] = &["permanent", "final_results"];

/// What `cleanup` did (or, in a dry run, would do) with one first-level prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupItem {
    pub prefix: String,
    pub objects: usize,
    pub bytes: u64,
    pub protected: bool,
    pub deleted: bool,
}

/// Deletes the temporary prefixes of past runs under `root`: every
/// first-level prefix (and top-level object) that does not start with one of
/// `protected`. A dry run (`execute == false`) deletes nothing. Logs one
/// line per prefix kept or deleted.
pub async fn cleanup(root: &str, protected: &[String], execute: bool) -> anyhow::Result<Vec<CleanupItem>> {
    let loc = Location::parse(root)?;
    anyhow::ensure!(
        !loc.path().as_ref().is_empty(),
        "cleanup needs a prefix below the bucket or root ({root}); it never empties a whole bucket"
    );
    loc.check().await?;
    let base = loc.path().as_ref().len() + 1;
    let mut groups: std::collections::BTreeMap<String, Vec<(object_store::path::Path, u64)>> = Default::default();
    for meta in loc.list().await? {
        let rel = &meta.location.as_ref()[base.min(meta.location.as_ref().len())..];
        let first = match rel.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rel.to_string(),
        };
        groups.entry(first).or_default().push((meta.location.clone(), meta.size));
    }
    let mut out = Vec::new();
    for (prefix, objects) in groups {
        let is_protected = is_protected(&prefix, protected);
        let bytes = objects.iter().map(|(_, s)| s).sum();
        let uri = format!("{}/{prefix}", loc.uri());
        if is_protected {
            info!(prefix = %uri, objects = objects.len(), bytes, "Kept: protected.");
        } else if execute {
            for (path, _) in &objects {
                loc.delete(path).await?;
            }
            info!(prefix = %uri, objects = objects.len(), bytes, "Deleted.");
        } else {
            info!(prefix = %uri, objects = objects.len(), bytes, "Would delete (dry run; --execute deletes).");
        }
        out.push(CleanupItem {
            prefix,
            objects: objects.len(),
            bytes,
            protected: is_protected,
            deleted: execute && !is_protected,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_protected;

    #[test]
    fn protected_prefixes_with_or_without_a_slash() {
        let p = vec!["permanent".to_string(), "final-results/".to_string(), "runs/keep/".to_string()];
        for rel in ["permanent/", "permanent/raw/", "final-results/x.parquet", "runs/", "runs/keep/t/", "permanent"] {
            assert!(is_protected(rel, &p), "{rel}");
        }
        for rel in ["permanent2/", "tmp/", "final/", "runs/other/", "perm"] {
            assert!(!is_protected(rel, &p), "{rel}");
        }
    }
}
