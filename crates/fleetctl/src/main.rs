//! fleetctl: the operator's tool. Glue over the fleet's library crates.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use fleet_contract::{Config, Invocation, LogFormat, RawVars};

#[cfg(feature = "aws")]
mod aws_cmds;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "fleetctl: the operator's tool for the JSON-to-Parquet worker fleet

Usage:
  fleetctl demo [--rows 1000000] [--shards 4] [--files 8] [--profile typical|heavy] [--dir ./fleet-demo]
      Generate a realistic dataset, run feature-parser on it as several shards in
      parallel local processes, and print what was produced and where to look.
  fleetctl gen [--out ./fleet-data] [--rows 10000] [--files 1] [--profile typical|heavy]
               [--seed 42] [--format parquet|ndjson] [--malformed-share 0.003] [--no-targets]
      Write the synthetic raw table to <out>/raw/ and the targets table to <out>/targets/.
  fleetctl feature-parser [FLEET flags]
      Run one feature-parser shard in this process (same as the feature-parser binary).
  fleetctl run feature-parser --shards N [--parallel P] [--retries 2] [--log-dir DIR] [FLEET flags]
      Fan out N shards as local processes, P at a time, retrying failed shards with
      backoff, as the Step Functions state machine does with ECS tasks.

      With FLEET_GLUE_DATABASE or FLEET_GLUE_TABLE set, then registers the table and its
      committed partitions in Glue (as `catalog sync`).

  fleetctl catalog discover --location URI [--database fleet] [--table NAME]
      Discover a table's schema from the Parquet footers under URI (no crawler; partition
      keys from key=value folders) and print its Glue TableInput JSON.
  fleetctl catalog create|update --location URI [--database D] [--table T] [--projection]
  fleetctl catalog create|update --table-input FILE [--database D]
      Create the Glue table from the discovered schema (or a TableInput JSON such as
      _runs/<run>/table_input.json), or add the columns it lacks. A changed column type
      is an error.
  fleetctl catalog sync --location URI [--database D] [--table T] [--projection]
      Create or evolve the table from its committed files, then register every partition
      whose shards have all written their commit marker (batches of 100, idempotent), or
      set partition projection instead. Defaults: FLEET_OUTPUT, FLEET_GLUE_*.
  fleetctl catalog list [--database D]          databases, or the tables of D
  fleetctl catalog show --database D --table T  a table as TableInput JSON
  fleetctl catalog drop --database D --table T  drop a table (its data stays)

  fleetctl athena (--sql TEXT | --file PATH) [--database D] [--workgroup W]
                  [--output-location s3://...] [--timeout 1800] [--format jsonl|parquet]
                  [--out PATH|URI] [--fetch auto|api|s3]
      Run a query, wait for it (backoff, cancelled at the timeout), and write its rows as
      JSONL (stdout by default) or Parquet. Prints queue, planning and execution time,
      data scanned and the cost ($5 per TB, 10 MB minimum). --fetch s3 reads the result
      object from S3 instead of paging GetQueryResults (auto: for results of 8 MiB or more).
  fleetctl athena ctas --table [DB.]NAME --location s3://.../ (--sql|--file) [--partitioned-by a,b]
  fleetctl athena unload --location s3://.../ (--sql|--file) [--partitioned-by a,b]
      Make a permanent table (CTAS) or files (UNLOAD) as zstd Parquet from a SELECT;
      the location must be empty.

  fleetctl cleanup --root URI [--protect PREFIX ...] [--database D [--protect-table PREFIX ...]]
                   [--execute]
      Delete the temporary prefixes of past runs under URI (every first-level prefix),
      never the protected ones (default: permanent/ and final-results/); with --database,
      also drop the Glue tables located under URI, never those under a protected prefix
      or named with a protected prefix (default: permanent, final_results). A dry run
      unless --execute; one log line per prefix or table kept or deleted.
  fleetctl bench-parse --input URI [--threads N] [--max-mb 1000]
      The parse-only ceiling: simd-json over the JSON cells of a raw table, held in memory.

FLEET flags are the FLEET_* variables of `fleetctl feature-parser --help`.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        out(HELP);
        return ExitCode::from(2);
    };
    let rest = args[1..].to_vec();
    if cmd != "feature-parser"
        && rest.iter().any(|a| a == "-h" || a == "--help")
        && let Some(text) = command_help(&cmd)
    {
        out(&text);
        return ExitCode::SUCCESS;
    }
    match cmd.as_str() {
        "-h" | "--help" | "help" => {
            out(HELP);
            ExitCode::SUCCESS
        }
        "-V" | "--version" => {
            out(&format!("fleetctl {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        "feature-parser" => feature_parser(rest),
        "gen" => tool(|| gen_cmd(rest)),
        "demo" => tool(|| demo_cmd(rest)),
        "run" => tool(|| run_cmd(rest)),
        "cleanup" => tool(|| cleanup_cmd(rest)),
        "catalog" => tool(|| catalog_cmd(rest)),
        "athena" => tool(|| athena_cmd(rest)),
        "bench-parse" => tool(|| {
            let m = options(&rest, &["input", "threads", "max-mb"], &[])?;
            let input = m.get("input").cloned().ok_or_else(|| Usage("--input is required".into()))?;
            let threads = num(&m, "threads", fleet_contract::available_cpus())?;
            let max_mb: u64 = num(&m, "max-mb", 1000)?;
            runtime()?.block_on(fleetctl::bench_parse(&input, threads, max_mb * 1_000_000))
        }),
        other => {
            err(&format!("fleetctl: unknown command {other:?}\n\n{HELP}"));
            ExitCode::from(2)
        }
    }
}

/// The part of the usage text about one command (every block of `HELP`
/// that starts with `  fleetctl <cmd>`), or `None` for an unknown command.
fn command_help(cmd: &str) -> Option<String> {
    let head = format!("  fleetctl {cmd} ");
    let mut text = String::from("Usage:\n");
    let mut inside = false;
    for line in HELP.lines() {
        if line.starts_with("  fleetctl ") {
            inside = line.starts_with(&head) || line == head.trim_end();
        } else if !line.starts_with("  ") && !line.is_empty() {
            inside = false;
        }
        if inside {
            text.push_str(line);
            text.push('\n');
        }
    }
    if text == "Usage:\n" {
        return None;
    }
    if text.contains("FLEET flags") {
        text.push_str("\nFLEET flags are the FLEET_* variables of `fleetctl feature-parser --help`.\n");
    }
    Some(text.trim_end().to_string() + "\n")
}

fn feature_parser(args: Vec<String>) -> ExitCode {
    fleet_worker::main_with_args(
        "fleetctl feature-parser",
        fleet_parser::ABOUT,
        args,
        |e| fleet_parser::exit_code(e.as_ref()),
        |config| async move {
            fleet_parser::FeatureParser::new(config).await?.run().await?;
            Ok(())
        },
    )
}

/// Runs a tool command: text logs on a terminal, errors with their whole chain.
fn tool<F: FnOnce() -> anyhow::Result<String>>(f: F) -> ExitCode {
    fleet_worker::init_tracing_stderr(LogFormat::Auto);
    match f() {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(&format!("fleetctl: {e:#}\n"));
            let usage = e.downcast_ref::<Usage>().is_some() || e.chain().any(|c| c.is::<fleet_contract::ConfigError>());
            let code = if usage { 2 } else { fleet_parser::exit_code(e.as_ref()) };
            ExitCode::from(code as u8)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// `--name value` / `--name=value` options of a tool command; bare flags get "true".
fn options(args: &[String], known: &[&str], bare: &[&str]) -> anyhow::Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(flag) = a.strip_prefix("--") else { return Err(Usage(format!("unexpected argument {a:?}")).into()) };
        let (name, inline) = flag.split_once('=').map_or((flag, None), |(n, v)| (n, Some(v.to_string())));
        if bare.contains(&name) {
            m.insert(name.to_string(), "true".into());
            i += 1;
            continue;
        }
        if !known.contains(&name) {
            return Err(Usage(format!("unknown option --{name}; expected one of --{}", known.join(", --"))).into());
        }
        let v = match inline {
            Some(v) => v,
            None => args.get(i + 1).cloned().ok_or_else(|| Usage(format!("--{name} needs a value")))?,
        };
        i += if a.contains('=') { 1 } else { 2 };
        m.insert(name.to_string(), v);
    }
    Ok(m)
}

fn num<T: std::str::FromStr>(m: &HashMap<String, String>, k: &str, default: T) -> anyhow::Result<T> {
    match m.get(k) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| Usage(format!("--{k}={v:?} is not a valid number")).into()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn gen_cmd(args: Vec<String>) -> anyhow::Result<String> {
    let m = options(&args, &["out", "rows", "files", "profile", "seed", "format", "malformed-share"], &["no-targets"])?;
    let out_dir = m.get("out").cloned().unwrap_or_else(|| "./fleet-data".into());
    let profile: fleet_synth::Profile =
        m.get("profile").map_or("typical", String::as_str).parse().map_err(|e| Usage(format!("--profile: {e}")))?;
    let format = match m.get("format").map_or("parquet", String::as_str) {
        "parquet" => fleet_synth::Format::Parquet,
        "ndjson" => fleet_synth::Format::Ndjson,
        f => return Err(Usage(format!("--format={f:?}; expected parquet or ndjson")).into()),
    };
    let g = fleet_synth::Generator::new(profile)
        .with_rows(num(&m, "rows", 10_000u64)?)
        .with_files(num(&m, "files", 1u64)?)
        .with_seed(num(&m, "seed", 42u64)?)
        .with_malformed_share(num(&m, "malformed-share", 0.003f64)?)
        .with_format(format);
    let base = if out_dir.contains("://") {
        out_dir.trim_end_matches('/').to_string()
    } else {
        fleetctl::dir_uri(&PathBuf::from(&out_dir)).trim_end_matches('/').to_string()
    };
    runtime()?.block_on(async {
        let raw = fleet_store::Location::parse(&format!("{base}/raw/"))?;
        let targets = fleet_store::Location::parse(&format!("{base}/targets/"))?;
        let t = if m.contains_key("no-targets") { None } else { Some(&targets) };
        let (r, tg) = g.write(&raw, t).await?;
        Ok(format!(
            "raw:     {} rows, {} files, {:.1} MB at {}/\ntargets: {} rows, {} files at {}/\n",
            r.rows,
            r.files.len(),
            r.bytes as f64 / 1e6,
            raw.uri(),
            tg.rows,
            tg.files.len(),
            targets.uri()
        ))
    })
}

fn demo_cmd(args: Vec<String>) -> anyhow::Result<String> {
    let m = options(&args, &["rows", "shards", "files", "profile", "dir"], &[])?;
    let d = fleetctl::Demo {
        dir: PathBuf::from(m.get("dir").map_or("./fleet-demo", String::as_str)),
        rows: num(&m, "rows", 1_000_000u64)?,
        files: num(&m, "files", 8u64)?,
        shards: num(&m, "shards", 4u32)?,
        profile: m
            .get("profile")
            .map_or("typical", String::as_str)
            .parse()
            .map_err(|e| Usage(format!("--profile: {e}")))?,
        exe: fleetctl::current_exe()?,
    };
    runtime()?.block_on(fleetctl::demo(&d))
}

fn catalog_cmd(args: Vec<String>) -> anyhow::Result<String> {
    let Some((verb, rest)) = args.split_first() else {
        bail!(Usage("usage: fleetctl catalog discover|create|update|sync|list|show|drop ...".into()))
    };
    if verb != "discover" {
        #[cfg(feature = "aws")]
        return aws_cmds::catalog(verb, rest);
        #[cfg(not(feature = "aws"))]
        bail!(without_aws(&format!("catalog {verb}")));
    }
    let m = options(rest, &["location", "database", "table"], &[])?;
    let location = m.get("location").cloned().ok_or_else(|| Usage("--location is required".into()))?;
    let fleet_contract::GlueTarget { database, table, .. } = glue_target(&m, &location)?;
    let found = runtime()?.block_on(fleet_parser::catalog::discover(&location))?;
    let ti = found.table_input(&database, &table, &location);
    tracing::info!(files = found.files, columns = found.schema.fields().len(), partition_keys = ?found.partition_keys, "Discovered the table from Parquet footers.");
    Ok(serde_json::to_string_pretty(&ti)? + "\n")
}

/// The Glue database and table of `location`: `--database` / `--table`,
/// else the FLEET_GLUE_* variables, validated in the contract.
fn glue_target(m: &HashMap<String, String>, location: &str) -> anyhow::Result<fleet_contract::GlueTarget> {
    let mut vars = RawVars::from_pairs(std::env::vars());
    for (flag, var) in [("database", fleet_contract::vars::GLUE_DATABASE), ("table", fleet_contract::vars::GLUE_TABLE)]
    {
        if let Some(v) = m.get(flag) {
            vars.0.insert(var.into(), v.clone());
        }
    }
    Ok(fleet_contract::GlueTarget::from_vars(&vars, location)?)
}

#[cfg(not(feature = "aws"))]
fn without_aws(what: &str) -> Usage {
    Usage(format!(
        "`fleetctl {what}` calls AWS APIs, and this fleetctl was built without them; \
         build it with `cargo build --release -p fleetctl --features aws`"
    ))
}

fn athena_cmd(args: Vec<String>) -> anyhow::Result<String> {
    #[cfg(feature = "aws")]
    return aws_cmds::athena(&args);
    #[cfg(not(feature = "aws"))]
    {
        let _ = args;
        bail!(without_aws("athena"))
    }
}

/// Takes every `--name value` / `--name=value` of a repeatable option out of `args`.
fn repeated(args: &mut Vec<String>, name: &str) -> anyhow::Result<Vec<String>> {
    let flag = format!("--{name}");
    let mut found = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].split_once('=') {
            Some((f, v)) if f == flag => found.push(v.to_string()),
            _ if args[i] == flag => {
                found.push(args.get(i + 1).cloned().ok_or_else(|| Usage(format!("{flag} needs a value")))?);
                i += 1;
            }
            _ => rest.push(args[i].clone()),
        }
        i += 1;
    }
    *args = rest;
    Ok(found)
}

fn cleanup_cmd(mut args: Vec<String>) -> anyhow::Result<String> {
    let mut protect = repeated(&mut args, "protect")?;
    let mut protect_tables = repeated(&mut args, "protect-table")?;
    let m = options(&args, &["root", "database"], &["execute"])?;
    let root = m.get("root").cloned().ok_or_else(|| Usage("--root is required".into()))?;
    if protect.is_empty() {
        protect = fleetctl::DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect();
    }
    if protect_tables.is_empty() {
        protect_tables = fleetctl::DEFAULT_PROTECTED_TABLES.iter().map(|s| s.to_string()).collect();
    }
    let execute = m.contains_key("execute");
    // tables first: a table is dropped before the data under it
    let tables = match m.get("database") {
        None => String::new(),
        #[cfg(feature = "aws")]
        Some(db) => aws_cmds::cleanup_tables(&root, db, &protect, &protect_tables, execute)?,
        #[cfg(not(feature = "aws"))]
        Some(_) => bail!(without_aws("cleanup --database")),
    };
    #[cfg(not(feature = "aws"))]
    drop(protect_tables);
    let items = runtime()?.block_on(fleetctl::cleanup(&root, &protect, execute))?;
    let mut s = tables;
    for it in &items {
        let what = if it.protected {
            "kept (protected)"
        } else if it.deleted {
            "deleted"
        } else {
            "would delete"
        };
        s.push_str(&format!("{what:>17}  {:>8} objects  {:>12} bytes  {}\n", it.objects, it.bytes, it.prefix));
    }
    if !execute {
        s.push_str("dry run: nothing was deleted; add --execute to delete\n");
    }
    Ok(s)
}

fn run_cmd(args: Vec<String>) -> anyhow::Result<String> {
    let Some((task, rest)) = args.split_first() else {
        bail!(Usage("usage: fleetctl run feature-parser --shards N ...".into()))
    };
    if task != "feature-parser" {
        bail!(Usage(format!("unknown task {task:?}; expected feature-parser")));
    }
    // Our own options first, the rest are FLEET flags for the shards.
    let mut own = Vec::new();
    let mut fleet = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let name = rest[i].trim_start_matches("--").split('=').next().unwrap_or_default();
        let target = if ["shards", "parallel", "retries", "log-dir"].contains(&name) { &mut own } else { &mut fleet };
        target.push(rest[i].clone());
        if !rest[i].contains('=') && i + 1 < rest.len() {
            target.push(rest[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    let m = options(&own, &["shards", "parallel", "retries", "log-dir"], &[])?;
    let mut vars = RawVars::from_pairs(std::env::vars());
    if let Invocation::Run(extra) = vars.apply_args(&fleet)?
        && let Some(x) = extra.first()
    {
        bail!(Usage(format!("unexpected argument {x:?}")));
    }
    let shards: u32 = num(&m, "shards", 1u32)?;
    vars.0.insert(fleet_contract::vars::SHARD_COUNT.into(), shards.to_string());
    vars.0.insert(fleet_contract::vars::SHARD_INDEX.into(), "0".into());
    let cfg = Config::validate(&vars)?;
    #[cfg(not(feature = "aws"))]
    if cfg.glue.register {
        bail!(without_aws("run with FLEET_GLUE_DATABASE or FLEET_GLUE_TABLE set"));
    }
    // every shard gets the same run id
    vars.0.insert(fleet_contract::vars::RUN_ID.into(), cfg.run_id.clone());
    let parallel = num(&m, "parallel", (shards as usize).min(fleet_contract::available_cpus()))?;
    let fan = fleetctl::FanOut {
        command: vec![fleetctl::current_exe()?.display().to_string(), "feature-parser".into()],
        vars,
        shards,
        parallel,
        retries: num(&m, "retries", 2u32)?,
        log_dir: m.get("log-dir").map(PathBuf::from),
    };
    runtime()?.block_on(async {
        let outcomes = fleetctl::fan_out(&fan).await?;
        let failed = outcomes.iter().any(|o| o.exit_code != 0);
        let summaries = match fleetctl::read_summaries(&cfg.output, &cfg.run_id, shards).await {
            Ok(s) => s,
            // a shard failed, perhaps because the store did: report the shards anyway
            Err(e) if failed => {
                tracing::warn!(error = %format!("{e:#}"), "Could not read the run summaries.");
                vec![None; shards as usize]
            }
            Err(e) => return Err(e),
        };
        let text = fleetctl::table(&outcomes, &summaries);
        if let Some(bad) = outcomes.iter().find(|o| o.exit_code != 0) {
            bail!(
                "{text}shard {} failed for good with exit code {} after {} attempt(s); nothing registered in Glue",
                bad.index,
                bad.exit_code,
                bad.attempts
            );
        }
        #[cfg(feature = "aws")]
        if cfg.glue.register {
            let synced = aws_cmds::sync(&cfg.output, &cfg.glue, false)
                .await
                .with_context(|| format!("{text}every shard succeeded, but registering the run in Glue failed"))?;
            return Ok(format!("{text}{synced}"));
        }
        Ok(text)
    })
}

#[allow(clippy::print_stdout, reason = "fleetctl prints its results")]
fn out(s: &str) {
    print!("{s}");
}

#[allow(clippy::print_stderr, reason = "fleetctl prints errors for a person")]
pub(crate) fn err(s: &str) {
    eprint!("{s}");
}
