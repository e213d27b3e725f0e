//! fleetctl: the operator's tool. Its command line (clap) over the fleet's
//! library crates; every registered worker is a subcommand of its own.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use fleet_contract::{LogFormat, vars};

#[cfg(feature = "glue")]
mod aws_cmds;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "Examples:
  fleetctl demo                                      the whole pipeline on generated data, on this machine: parse, train, predict
  fleetctl gen --out ./data --rows 100000 --files 4
  fleetctl feature-parser --input ./data/raw/ --output ./data/features/
  fleetctl run feature-parser --shards 4 --input ./data/raw/ --output ./data/features/
  fleetctl plan batch-predictor --shards 50 --out s3://lake/runs/r1/ --input s3://lake/raw/ --output s3://lake/predictions/ --model s3://lake/trained/models/gbdt/
  fleetctl run --manifest s3://lake/runs/r1/manifest.json --parallel 4 [--docker fleet:dev]
  fleetctl aws start --state-machine <arn> --input s3://lake/runs/r1/execution-input.json
  fleetctl catalog sync --location s3://lake/features/ --database lake
  fleetctl athena --sql \"SELECT count(*) FROM features\" --database lake --output-location s3://lake/athena/

`fleetctl <command> --help` tells more. A worker's settings are FLEET_* variables and flags alike.";

/// The operator's tool for the JSON-to-Parquet worker fleet.
#[derive(Debug, Parser)]
#[command(name = "fleetctl", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline on generated data: feature-parser and
    /// batch-predictor as shards in parallel local processes, trainer-feeder
    /// in between; prints each step's figures, the models' metrics and
    /// where to look.
    Demo(DemoArgs),
    /// Write the synthetic raw table to <OUT>/raw/ and the targets table to <OUT>/targets/.
    Gen(GenArgs),
    /// The Glue catalog of a table: discover, create or update, sync its committed partitions.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Run an Athena query, wait for it and write its rows; or make a table (ctas) or files (unload).
    Athena(Box<AthenaCommand>),
    /// Delete the temporary prefixes (and Glue tables) of past runs, never the protected ones.
    Cleanup(CleanupArgs),
    /// The fleet on AWS: one-off ECS tasks, executions of the fan-out state machine, task definitions.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// The parse-only ceiling: simd-json over the JSON cells of a raw table, held in memory.
    BenchParse(BenchParseArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Rows to generate.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Shards (local processes) to parse and predict with.
    #[arg(long, default_value_t = 4)]
    shards: u32,
    /// Raw files to generate.
    #[arg(long, default_value_t = 8)]
    files: u64,
    #[arg(long, default_value = "typical", value_parser = ["typical", "heavy"])]
    profile: String,
    /// Where the data, the output and the logs go (cleared first).
    #[arg(long, default_value = "./fleet-demo")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// A local folder or a URI (s3://bucket/prefix).
    #[arg(long, default_value = "./fleet-data")]
    out: String,
    #[arg(long, default_value_t = 10_000)]
    rows: u64,
    #[arg(long, default_value_t = 1)]
    files: u64,
    #[arg(long, default_value = "typical", value_parser = ["typical", "heavy"])]
    profile: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "ndjson"])]
    format: String,
    /// Share of rows given a malformed JSON cell.
    #[arg(long, default_value_t = 0.003)]
    malformed_share: f64,
    /// Do not write the targets table.
    #[arg(long)]
    no_targets: bool,
}

/// The Glue database and table of a location.
#[derive(Debug, Clone, Args)]
struct GlueNames {
    /// Glue database [default: fleet].
    #[arg(long, env = vars::GLUE_DATABASE.name, hide_env_values = true)]
    database: Option<String>,
    /// Glue table [default: the last segment of the location].
    #[arg(long, env = vars::GLUE_TABLE.name, hide_env_values = true)]
    table: Option<String>,
}

/// A table named in Glue.
#[derive(Debug, Clone, Args)]
struct TableName {
    #[arg(long, env = vars::GLUE_DATABASE.name, hide_env_values = true)]
    database: String,
    #[arg(long, env = vars::GLUE_TABLE.name, hide_env_values = true)]
    table: String,
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Discover a table's schema from the Parquet footers under a location (no crawler;
    /// partition keys from key=value folders) and print its Glue TableInput JSON.
    Discover {
        #[arg(long)]
        location: String,
        #[command(flatten)]
        names: GlueNames,
    },
    /// Create the Glue table from the discovered schema (or a TableInput JSON such as
    /// _runs/<run>/table_input.json), or add the columns it lacks. A changed column type is an error.
    #[command(visible_alias = "update")]
    Create(CreateArgs),
    /// Create or evolve the table from its committed files, then register every partition whose
    /// shards have all written their commit marker (batches of 100, idempotent), or set partition
    /// projection instead: the finalize step of a fan-out.
    Sync(SyncArgs),
    /// The Glue databases, or the tables of one.
    List {
        #[arg(long)]
        database: Option<String>,
    },
    /// A table as TableInput JSON, with its number of registered partitions.
    Show(TableName),
    /// Drop a table (its data stays).
    Drop(TableName),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The table location.
    #[arg(long, env = vars::OUTPUT.name, hide_env_values = true)]
    location: Option<String>,
    #[command(flatten)]
    names: GlueNames,
    /// Partition projection (table properties) instead of registered partitions.
    #[arg(long, env = vars::GLUE_PARTITION_PROJECTION.name, hide_env_values = true, value_parser = clap::builder::FalseyValueParser::new())]
    projection: bool,
    /// A TableInput JSON file or URI (`{"DatabaseName", "TableInput"}` or the TableInput alone), used as it is.
    #[arg(long, conflicts_with_all = ["table", "projection"])]
    table_input: Option<String>,
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// The table location.
    #[arg(long, env = vars::OUTPUT.name, hide_env_values = true)]
    location: String,
    #[command(flatten)]
    names: GlueNames,
    /// Partition projection (table properties) instead of registered partitions.
    #[arg(long, env = vars::GLUE_PARTITION_PROJECTION.name, hide_env_values = true, value_parser = clap::builder::FalseyValueParser::new())]
    projection: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AthenaCommand {
    #[command(subcommand)]
    statement: Option<AthenaStatement>,
    #[command(flatten)]
    query: AthenaQuery,
}

/// A query and where it runs.
#[derive(Debug, Clone, Default, Args)]
struct AthenaRun {
    /// The SQL text.
    #[arg(long)]
    sql: Option<String>,
    /// A file holding the SQL.
    #[arg(long, conflicts_with = "sql")]
    file: Option<PathBuf>,
    /// The default database of the query [default: FLEET_GLUE_DATABASE].
    #[arg(long, env = vars::GLUE_DATABASE.name, hide_env_values = true)]
    database: Option<String>,
    /// The data catalog [default: AwsDataCatalog].
    #[arg(long)]
    catalog: Option<String>,
    #[arg(long)]
    workgroup: Option<String>,
    /// Where Athena writes the results (s3://...), unless the workgroup says.
    #[arg(long)]
    output_location: Option<String>,
    /// Seconds to wait before the query is cancelled.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

#[derive(Debug, Clone, Default, Args)]
struct AthenaQuery {
    #[command(flatten)]
    run: AthenaRun,
    /// How the rows are written.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "parquet"])]
    format: String,
    /// A path or URI for the rows [default: stdout, JSONL only].
    #[arg(long)]
    out: Option<String>,
    /// Page through GetQueryResults (api), read the result object from S3 (s3), or
    /// choose by its size (auto: S3 for 8 MiB or more).
    #[arg(long, default_value = "auto", value_parser = ["auto", "api", "s3"])]
    fetch: String,
}

#[derive(Debug, Subcommand)]
enum AthenaStatement {
    /// Make a permanent table as zstd Parquet from a SELECT (the location must be empty).
    Ctas {
        /// The new table, [DB.]NAME.
        #[arg(long)]
        table: String,
        #[command(flatten)]
        target: AthenaTarget,
        #[command(flatten)]
        run: AthenaRun,
    },
    /// Write the rows of a SELECT as zstd Parquet files (the location must be empty).
    Unload {
        #[command(flatten)]
        target: AthenaTarget,
        #[command(flatten)]
        run: AthenaRun,
    },
}

/// Where `athena ctas` and `athena unload` write.
#[derive(Debug, Args)]
struct AthenaTarget {
    /// An empty s3:// location.
    #[arg(long)]
    location: String,
    /// Partition columns, comma-separated.
    #[arg(long, value_delimiter = ',')]
    partitioned_by: Vec<String>,
}

#[derive(Debug, Args)]
struct CleanupArgs {
    /// The root whose first-level prefixes are temporary.
    #[arg(long)]
    root: String,
    /// A prefix never deleted (repeatable) [default: permanent/ and final-results/].
    #[arg(long)]
    protect: Vec<String>,
    /// Also drop the Glue tables of this database located under the root.
    #[arg(long)]
    database: Option<String>,
    /// A table name prefix never dropped (repeatable) [default: permanent, final_results].
    #[arg(long, requires = "database")]
    protect_table: Vec<String>,
    /// Delete; without it, a dry run that only says what it would delete.
    #[arg(long)]
    execute: bool,
}

#[derive(Debug, Subcommand)]
enum AwsCommand {
    /// Run one task of a fleet task definition (`aws ecs run-task`), or one per shard of a manifest
    /// (`fleetctl plan`), with the FLEET_* values as overrides of the `worker` container; prints the task ARNs.
    RunTask(RunTaskArgs),
    /// Start the fan-out state machine (infra/fleet.template.json) with the execution input `fleetctl plan` wrote.
    Start(StartArgs),
    /// An execution's status.
    Status {
        /// The execution ARN `fleetctl aws start` printed.
        #[arg(long)]
        execution: String,
    },
    /// Print a task definition of task-definitions/ with its ${...} placeholders filled, for
    /// `aws ecs register-task-definition --cli-input-json file://...`; a placeholder left unfilled is an error.
    TaskDefinition(TaskDefinitionArgs),
}

#[derive(Debug, Args)]
struct RunTaskArgs {
    #[arg(long)]
    cluster: String,
    /// A task definition family[:revision] or ARN.
    #[arg(long)]
    task_definition: String,
    /// Subnets of the task (awsvpc), comma-separated.
    #[arg(long, value_delimiter = ',')]
    subnets: Vec<String>,
    /// Security groups of the task, comma-separated.
    #[arg(long, value_delimiter = ',')]
    security_groups: Vec<String>,
    #[arg(long)]
    assign_public_ip: bool,
    /// FARGATE or FARGATE_SPOT as the capacity provider [default: the launch type FARGATE, on demand].
    #[arg(long, value_parser = ["FARGATE", "FARGATE_SPOT"])]
    capacity_provider: Option<String>,
    /// One task per shard of this manifest, with the shard's values.
    #[arg(long, value_name = "URI", conflicts_with = "env")]
    manifest: Option<String>,
    /// A value for the container, NAME=VALUE (repeatable), e.g. -e FLEET_INPUT=s3://lake/raw/.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// The state machine's ARN (the stack's StateMachineArn output).
    #[arg(long)]
    state_machine: String,
    /// The execution input `fleetctl plan` wrote (<out>/execution-input.json), a path or s3:// URI.
    #[arg(long, value_name = "URI")]
    input: String,
    /// The execution's name [default: the plan's run id].
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
struct TaskDefinitionArgs {
    /// A file of task-definitions/.
    file: PathBuf,
    /// A placeholder's value, NAME=VALUE (repeatable): Image, ExecutionRoleArn, TaskRoleArn, LogGroup, Region, Bucket, GlueDatabase.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
struct BenchParseArgs {
    /// The raw table.
    #[arg(long)]
    input: String,
    /// Threads [default: the CPUs of this machine].
    #[arg(long)]
    threads: Option<usize>,
    /// MB of JSON cells to hold in memory and parse.
    #[arg(long, default_value_t = 1000)]
    max_mb: u64,
}

// `fleetctl run <worker>`'s own options, beside the worker's settings.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fan-out")]
struct FanOutArgs {
    /// Shards, one local process (or container) each.
    #[arg(long, value_name = "N", default_value_t = 1)]
    shards: u32,
    #[command(flatten)]
    local: LocalRun,
}

// How a plan runs on this machine.
#[derive(Debug, Args)]
struct LocalRun {
    /// Shards running at once [default: the shards, at most the CPUs].
    #[arg(long, value_name = "P")]
    parallel: Option<usize>,
    /// Extra attempts for a shard that failed with a retryable exit code (1, 143), as the state machine makes.
    #[arg(long, default_value_t = fleetctl::DEFAULT_RETRIES)]
    retries: u32,
    /// Each shard's log goes to <DIR>/shard-NNNNN.log [default: a folder under the system's temporary
    /// folder on a terminal, with a live line per shard; stderr otherwise].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Run each shard as a container of this image (`docker run --read-only --network host IMAGE <worker>`)
    /// instead of a process; the data must be on S3 (AWS_* settings are passed on).
    #[arg(long, value_name = "IMAGE")]
    docker: Option<String>,
}

// `fleetctl plan <worker>`'s own options.
#[derive(Debug, Args)]
#[command(next_help_heading = "Plan")]
struct PlanArgs {
    /// Shards: items of the manifest, tasks of the Distributed Map.
    #[arg(long, value_name = "N")]
    shards: u32,
    /// Where manifest.json and execution-input.json go (s3://bucket/runs/<run>/ for the state machine).
    #[arg(long, value_name = "URI")]
    out: String,
}

/// The whole command line: the derived commands, every worker as a
/// subcommand of its own, `run <worker>`, `run --manifest` and `plan <worker>`.
fn command() -> clap::Command {
    let mut run = LocalRun::augment_args(
        clap::Command::new("run")
            .about("Fan out N shards of a worker (or the shards of a manifest) as local processes or containers, P at a time, retrying failed shards with backoff as the Step Functions state machine does; then register the table in Glue when FLEET_GLUE_DATABASE or FLEET_GLUE_TABLE is set")
            .arg(
                clap::Arg::new("manifest")
                    .long("manifest")
                    .value_name("URI")
                    .help("Run the shards of a manifest written by `fleetctl plan` (a path or s3:// URI)"),
            )
            .subcommand_negates_reqs(true)
            .args_conflicts_with_subcommands(true),
    );
    let mut plan = clap::Command::new("plan")
        .about("Write the shard manifest the state machine's Distributed Map reads (one item per shard with its FLEET_* values), and the execution input beside it")
        .subcommand_required(true);
    for w in fleetctl::WORKERS {
        let worker = (w.command)().bin_name(format!("fleetctl run {}", w.name));
        let about = format!("Fan out {} shards as local processes: {}", w.name, w.about);
        run = run.subcommand(FanOutArgs::augment_args(worker).about(about));
        let worker = (w.command)().bin_name(format!("fleetctl plan {}", w.name));
        plan = plan.subcommand(PlanArgs::augment_args(worker).about(format!("Plan {} shards: {}", w.name, w.about)));
    }
    let mut cmd = Cli::command().subcommand(run).subcommand(plan);
    for w in fleetctl::WORKERS {
        cmd = cmd.subcommand((w.command)().about(format!("Run one {} shard in this process: {}", w.name, w.about)));
    }
    cmd
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // a shard that completes a partition registers the table in Glue itself
    #[cfg(feature = "glue")]
    fleet_worker::set_catalog(Box::new(aws_cmds::GlueCatalog));
    // `fleetctl <worker> ...` is the worker itself, with its own command line.
    if let Some(w) = args.get(1).and_then(|a| a.to_str()).and_then(fleetctl::worker) {
        return (w.main)(args[1..].to_vec());
    }
    let matches = match command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    fleet_worker::init_tracing_stderr(LogFormat::Auto);
    let result = match matches.subcommand() {
        Some(("run", m)) => run_cmd(m),
        Some(("plan", m)) => plan_cmd(m),
        _ => Cli::from_arg_matches(&matches).map_err(anyhow::Error::from).and_then(|cli| dispatch(cli.command)),
    };
    match result {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(&format!("fleetctl: {e:#}\n"));
            let usage = e.chain().any(|c| c.is::<Usage>() || c.is::<fleet_contract::ConfigError>());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<String> {
    match command {
        Command::Demo(a) => {
            let d = fleetctl::Demo {
                dir: a.dir,
                rows: a.rows,
                files: a.files,
                shards: a.shards,
                profile: profile(&a.profile)?,
                exe: fleetctl::current_exe()?,
            };
            runtime()?.block_on(fleetctl::demo(&d))
        }
        Command::Gen(a) => gen_cmd(a),
        Command::Catalog(c) => catalog_cmd(c),
        Command::Athena(a) => athena_cmd(*a),
        Command::Cleanup(a) => cleanup_cmd(a),
        Command::Aws(AwsCommand::TaskDefinition(a)) => task_definition_cmd(a),
        #[cfg(feature = "fleet")]
        Command::Aws(c) => aws_cmds::fleet(c),
        #[cfg(not(feature = "fleet"))]
        Command::Aws(_) => bail!(Usage(
            "`fleetctl aws run-task|start|status` call ECS and Step Functions, and this fleetctl was built without them; \
             build it with `cargo build --release -p fleetctl --features fleet`"
                .into()
        )),
        Command::BenchParse(a) => {
            let threads = a.threads.unwrap_or_else(fleet_contract::available_cpus);
            runtime()?.block_on(fleetctl::bench_parse(&a.input, threads, a.max_mb * 1_000_000))
        }
    }
}

/// A usage error found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn profile(p: &str) -> anyhow::Result<fleet_synth::Profile> {
    p.parse().map_err(|e| Usage(format!("--profile: {e}")).into())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn gen_cmd(a: GenArgs) -> anyhow::Result<String> {
    let format = match a.format.as_str() {
        "ndjson" => fleet_synth::Format::Ndjson,
        _ => fleet_synth::Format::Parquet,
    };
    let g = fleet_synth::Generator::new(profile(&a.profile)?)
        .with_rows(a.rows)
        .with_files(a.files)
        .with_seed(a.seed)
        .with_malformed_share(a.malformed_share)
        .with_format(format);
    let base = if a.out.contains("://") {
        a.out.trim_end_matches('/').to_string()
    } else {
        fleetctl::dir_uri(&PathBuf::from(&a.out)).trim_end_matches('/').to_string()
    };
    runtime()?.block_on(async {
        let raw = fleet_store::Location::parse(&format!("{base}/raw/"))?;
        let targets = fleet_store::Location::parse(&format!("{base}/targets/"))?;
        let t = if a.no_targets { None } else { Some(&targets) };
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

fn catalog_cmd(c: CatalogCommand) -> anyhow::Result<String> {
    match c {
        CatalogCommand::Discover { location, names } => {
            let target = names.target(&location)?;
            let found = runtime()?.block_on(fleet_catalog::discover(&location))?;
            let ti = found.table_input(&target.database, &target.table, &location);
            tracing::info!(files = found.files, columns = found.schema.fields().len(), partition_keys = ?found.partition_keys, "Discovered the table from Parquet footers.");
            Ok(serde_json::to_string_pretty(&ti)? + "\n")
        }
        #[cfg(feature = "glue")]
        other => aws_cmds::catalog(other),
        #[cfg(not(feature = "glue"))]
        other => bail!(without_aws(&format!("catalog {}", other.verb()))),
    }
}

impl CatalogCommand {
    #[cfg_attr(feature = "glue", allow(dead_code, reason = "for the message of a build without AWS"))]
    fn verb(&self) -> &'static str {
        match self {
            CatalogCommand::Discover { .. } => "discover",
            CatalogCommand::Create(_) => "create",
            CatalogCommand::Sync(_) => "sync",
            CatalogCommand::List { .. } => "list",
            CatalogCommand::Show(_) => "show",
            CatalogCommand::Drop(_) => "drop",
        }
    }
}

impl GlueNames {
    /// Validated, the table defaulting to the last segment of `location`.
    fn target(&self, location: &str) -> anyhow::Result<fleet_contract::GlueTarget> {
        Ok(fleet_contract::glue_target(self.database.as_deref(), self.table.as_deref(), location)?)
    }
}

#[cfg(not(feature = "aws"))]
fn without_aws(what: &str) -> Usage {
    Usage(format!(
        "`fleetctl {what}` calls AWS APIs, and this fleetctl was built without them; \
         build it with `cargo build --release -p fleetctl --features aws` (the image has Glue only)"
    ))
}

fn athena_cmd(a: AthenaCommand) -> anyhow::Result<String> {
    #[cfg(feature = "aws")]
    return aws_cmds::athena(a);
    #[cfg(not(feature = "aws"))]
    {
        let _ = a;
        bail!(without_aws("athena"))
    }
}

fn cleanup_cmd(a: CleanupArgs) -> anyhow::Result<String> {
    let protect: Vec<String> = if a.protect.is_empty() {
        fleetctl::DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect()
    } else {
        a.protect
    };
    let protect_tables: Vec<String> = if a.protect_table.is_empty() {
        fleetctl::DEFAULT_PROTECTED_TABLES.iter().map(|s| s.to_string()).collect()
    } else {
        a.protect_table
    };
    // tables first: a table is dropped before the data under it
    let tables = match &a.database {
        None => String::new(),
        #[cfg(feature = "glue")]
        Some(db) => aws_cmds::cleanup_tables(&a.root, db, &protect, &protect_tables, a.execute)?,
        #[cfg(not(feature = "glue"))]
        Some(_) => bail!(without_aws("cleanup --database")),
    };
    #[cfg(not(feature = "glue"))]
    drop(protect_tables);
    let items = runtime()?.block_on(fleetctl::cleanup(&a.root, &protect, a.execute))?;
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
    if !a.execute {
        s.push_str("dry run: nothing was deleted; add --execute to delete\n");
    }
    Ok(s)
}

/// `fleetctl run <worker> --shards N ...` or `fleetctl run --manifest URI`:
/// the worker's settings are validated here (exit 2 before any shard runs),
/// then each shard gets its variables, its index and count, and the run id.
fn run_cmd(m: &ArgMatches) -> anyhow::Result<String> {
    let rt = runtime()?;
    let (items, local) = match m.subcommand() {
        Some((name, wm)) => {
            let w = fleetctl::worker(name).expect("only registered workers are subcommands");
            let fan_args = FanOutArgs::from_arg_matches(wm)?;
            let checked = (w.check)(wm)?;
            let mut vars = fleetctl::given_vars((w.command)(), wm, fan_args.local.docker.is_some());
            // every shard gets the same run id
            vars.insert(vars::RUN_ID.name.into(), checked.common.run_id.clone());
            (fleetctl::plan(name, fan_args.shards, &vars), fan_args.local)
        }
        None => {
            let uri =
                m.get_one::<String>("manifest").ok_or_else(|| Usage("a worker or --manifest is required".into()))?;
            (rt.block_on(fleetctl::read_manifest(uri))?, LocalRun::from_arg_matches(m)?)
        }
    };
    // each shard validated as the worker will (the manifest's and the environment's values)
    let mut checked = None;
    for item in &items {
        let w = fleetctl::worker(&item.worker)
            .ok_or_else(|| Usage(format!("shard {}: no worker called {:?}", item.index, item.worker)))?;
        let cmd = (w.command)();
        let args = fleetctl::args_from_vars(&cmd, item.environment.iter().map(|e| (e.name.as_str(), e.value.as_str())));
        let wm = cmd.try_get_matches_from(args).map_err(|e| Usage(format!("shard {}: {e}", item.index)))?;
        checked.get_or_insert((w.check)(&wm)?);
    }
    let checked = checked.expect("a plan has shards");
    let table = checked.table.clone();
    #[cfg(not(feature = "glue"))]
    if table.as_ref().is_some_and(|t| t.glue.register) {
        bail!(without_aws("run with FLEET_GLUE_DATABASE or FLEET_GLUE_TABLE set"));
    }
    if local.docker.is_some() && !checked.common.output.starts_with("s3://") {
        bail!(Usage(format!(
            "--docker: {}={} is not on S3; containers reach data over S3 (MinIO or any S3-compatible server works)",
            vars::OUTPUT.name,
            checked.common.output
        )));
    }
    let shards = items.len() as u32;
    let log_dir = local.log_dir.clone().or_else(|| {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
            .then(|| std::env::temp_dir().join(format!("fleet-{}", checked.common.run_id)))
    });
    let fan = fleetctl::FanOut {
        exe: fleetctl::current_exe()?,
        docker: local.docker.clone(),
        shards: items,
        parallel: local.parallel.unwrap_or((shards as usize).min(fleet_contract::available_cpus())),
        retries: local.retries,
        log_dir: log_dir.clone(),
    };
    let output = checked.common.output.clone();
    let run_id = checked.common.run_id.clone();
    rt.block_on(async {
        let outcomes = fleetctl::fan_out(&fan).await?;
        let failed = outcomes.iter().any(|o| o.exit_code != 0);
        let summaries = match fleetctl::read_summaries(&output, &run_id, shards).await {
            Ok(s) => s,
            // a shard failed, perhaps because the store did: report the shards anyway
            Err(e) if failed => {
                tracing::warn!(error = %format!("{e:#}"), "Could not read the run summaries.");
                vec![None; shards as usize]
            }
            Err(e) => return Err(e),
        };
        let mut text = fleetctl::table(&outcomes, &summaries);
        if let Some(d) = &log_dir {
            text.push_str(&format!("logs: {}/shard-NNNNN.log\n", d.display()));
        }
        if let Some(bad) = outcomes.iter().find(|o| o.exit_code != 0) {
            bail!(
                "{text}shard {} failed for good with exit code {} after {} attempt(s); nothing registered in Glue",
                bad.index,
                bad.exit_code,
                bad.attempts
            );
        }
        #[cfg(feature = "glue")]
        if let Some(t) = table.filter(|t| t.glue.register) {
            let synced = aws_cmds::sync(&output, &t.glue, false)
                .await
                .with_context(|| format!("{text}every shard succeeded, but registering the run in Glue failed"))?;
            return Ok(format!("{text}{synced}"));
        }
        #[cfg(not(feature = "glue"))]
        drop(table);
        Ok(text)
    })
}

/// `NAME=VALUE` pairs of a repeatable flag.
pub(crate) fn pairs(flag: &str, items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Usage(format!("{flag} {kv:?}: expected NAME=VALUE")).into())
        })
        .collect()
}

/// `fleetctl aws task-definition FILE --set NAME=VALUE ...`.
fn task_definition_cmd(a: TaskDefinitionArgs) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    serde_json::from_str::<serde_json::Value>(&text).with_context(|| format!("{}: not JSON", a.file.display()))?;
    for (k, v) in pairs("--set", &a.set)? {
        let placeholder = format!("${{{k}}}");
        if !text.contains(&placeholder) {
            bail!(Usage(format!("--set {k}: {} has no {placeholder}", a.file.display())));
        }
        // the value as JSON string content
        let quoted = serde_json::to_string(&v)?;
        text = text.replace(&placeholder, &quoted[1..quoted.len() - 1]);
    }
    if let Some(i) = text.find("${") {
        let name: String = text[i + 2..].chars().take_while(|c| *c != '}').collect();
        bail!(Usage(format!("{}: ${{{name}}} is not filled; add --set {name}=...", a.file.display())));
    }
    Ok(text)
}

/// `fleetctl plan <worker> --shards N --out URI ...`: the settings (flags and
/// `FLEET_*` variables of this environment) validated, one manifest item per
/// shard, and the execution input of the state machine.
fn plan_cmd(m: &ArgMatches) -> anyhow::Result<String> {
    let (name, wm) = m.subcommand().expect("a worker is required");
    let w = fleetctl::worker(name).expect("only registered workers are subcommands");
    let args = PlanArgs::from_arg_matches(wm)?;
    if args.shards == 0 {
        bail!(Usage("--shards: expected at least 1".into()));
    }
    let checked = (w.check)(wm)?;
    let mut settings = fleetctl::given_vars((w.command)(), wm, true);
    settings.insert(vars::RUN_ID.name.into(), checked.common.run_id.clone());
    let items = fleetctl::plan(name, args.shards, &settings);
    let finalize = checked.table.as_ref().filter(|t| t.glue.register).map(|t| {
        [
            (vars::OUTPUT.name, checked.common.output.clone()),
            (vars::GLUE_DATABASE.name, t.glue.database.clone()),
            (vars::GLUE_TABLE.name, t.glue.table.clone()),
            (vars::GLUE_PARTITION_PROJECTION.name, t.glue.projection.to_string()),
        ]
        .into_iter()
        .map(|(n, v)| fleetctl::EnvVar { name: n.to_string(), value: v })
        .collect()
    });
    let (manifest, input) = runtime()?.block_on(fleetctl::write_plan(&args.out, &items, finalize))?;
    Ok(format!(
        "{} shards of {name}, run {}\n  manifest         {manifest}\n  execution input  {input}\n\nRun it here:          fleetctl run --manifest {manifest} --parallel 4\nRun it on AWS:        fleetctl aws start --state-machine <arn> --input {input}\n",
        items.len(),
        checked.common.run_id
    ))
}

#[allow(clippy::print_stdout, reason = "fleetctl prints its results")]
fn out(s: &str) {
    print!("{s}");
}

#[allow(clippy::print_stderr, reason = "fleetctl prints errors for a person")]
pub(crate) fn err(s: &str) {
    eprint!("{s}");
}
