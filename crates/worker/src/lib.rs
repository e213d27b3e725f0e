//! The worker framework: everything a fleet worker does besides its own
//! logic.
//!
//! - One way to be a worker: implement [`Worker`] (name, one line of help,
//!   its settings on top of the common shard contract, its exit codes, its
//!   run) and call [`main`] from a binary of a few lines. The entry point
//!   parses the command line and the `FLEET_*` variables (clap), starts
//!   tracing (JSON when stdout is not a terminal), runs the job on a Tokio
//!   runtime, stops on SIGTERM, and maps the result to an [`Exit`] code.
//!   [`register`] lets `fleetctl` run and fan out any worker.
//! - The shard machinery, generic over the worker: [`Job`] (output, thread
//!   pool, the commit protocol, the run summary, progress lines) and its
//!   pipeline ([`Plan`]: a [`Source`] read ahead, a per-batch [`Transform`]
//!   on the Rayon pool, output files cut per object, by size or per
//!   partition ([`Cut`]), rejects), with the output keys in [`layout`].
//!
//! ```no_run
//! use fleet_contract::{Cli, Common, ConfigError, InputArgs, Input};
//! use fleet_worker::{Exit, Job, JobError, Worker};
//!
//! struct CountRows;
//! struct Config { common: Common, input: Input }
//! impl AsRef<Common> for Config {
//!     fn as_ref(&self) -> &Common { &self.common }
//! }
//! impl Worker for CountRows {
//!     const NAME: &'static str = "count-rows";
//!     const ABOUT: &'static str = "count the rows of a shard";
//!     const EXITS: &'static [Exit] = Exit::COMMON;
//!     type Args = InputArgs;
//!     type Config = Config;
//!     fn configure(cli: Cli<InputArgs>) -> Result<Config, ConfigError> {
//!         let common = cli.common.validate()?;
//!         let input = cli.own.validate(&common)?;
//!         Ok(Config { common, input })
//!     }
//!     async fn run(config: Config) -> Result<(), JobError> {
//!         let job = Job::new(Self::NAME, config.common)?;
//!         let (objects, _) = job.assign(&config.input.uri).await?;
//!         tracing::info!(objects = objects.len(), "Assigned.");
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     fleet_worker::main::<CountRows>()
//! }
//! ```

mod error;
mod exit;
mod job;
pub mod layout;
mod pipeline;
mod summary;

use std::ffi::OsString;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use fleet_contract::{Cli, Common, ConfigError, LogFormat, Table};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use error::{Classified, JobError, chain};
pub use exit::Exit;
pub use fleet_contract::Reject;
pub use job::{Job, Outcome, Progress, RejectsWritten, Reporter};
pub use pipeline::{Cut, Plan, ReadBatches, RejectsPlan, Source, Transform, Transformed, write_options};
pub use summary::{RunSummary, fargate_cost, peak_rss_bytes};

/// Registers what shards committed in a catalog: fleetctl's build with the
/// AWS SDK sets Glue ([`set_catalog`]); a worker binary without one refuses
/// `FLEET_GLUE_DATABASE` and `FLEET_GLUE_TABLE` at start (exit 2).
pub trait Catalog: Send + Sync + 'static {
    /// Creates or evolves the table at `output` and registers its
    /// partitions whose shards have all committed (idempotent); returns what
    /// it did, for the log.
    fn register<'a>(
        &'a self,
        output: &'a str,
        glue: &'a fleet_contract::GlueTarget,
    ) -> futures::future::BoxFuture<'a, Result<String, String>>;
}

static CATALOG: std::sync::OnceLock<Box<dyn Catalog>> = std::sync::OnceLock::new();

/// Sets the catalog the shards of this process register their table in.
pub fn set_catalog(catalog: Box<dyn Catalog>) {
    let _ = CATALOG.set(catalog);
}

/// The catalog set by [`set_catalog`].
pub fn catalog() -> Option<&'static dyn Catalog> {
    CATALOG.get().map(|c| c.as_ref())
}

/// The refusal of Glue settings by a binary that cannot reach Glue.
fn without_catalog(table: Option<&Table>) -> Option<ConfigError> {
    (table.is_some_and(|t| t.glue.register) && catalog().is_none()).then_some(ConfigError::Unsupported {
        what: "FLEET_GLUE_DATABASE and FLEET_GLUE_TABLE",
        reason: "this binary was built without the AWS SDK and cannot reach Glue; run the fleet image or \
                 `fleetctl <worker>` (built with --features aws), or unset them and run \
                 `fleetctl catalog sync` after the run",
    })
}

/// A fleet worker: what it is called, what it takes and what it does.
pub trait Worker: Sized + 'static {
    /// The binary's name and `fleetctl`'s subcommand (`feature-parser`).
    const NAME: &'static str;
    /// One line for `--help` and `fleetctl --help`.
    const ABOUT: &'static str;
    /// The exits it may end with ([`Exit::COMMON`], and
    /// [`Exit::RejectThreshold`] for a worker with a reject threshold).
    const EXITS: &'static [Exit];
    /// Its settings on top of [`fleet_contract::CommonArgs`]: the
    /// contract's groups it needs and its own, each a variable and a flag.
    type Args: clap::Args + Send;
    /// The validated settings.
    type Config: AsRef<Common> + Send + 'static;

    /// Validates the settings: a missing or bad value is a [`ConfigError`]
    /// naming the variable and the expected form (exit 2, before any work).
    fn configure(cli: Cli<Self::Args>) -> Result<Self::Config, ConfigError>;

    /// The table it writes, for the finalize step after a fan-out (Glue).
    fn table(_config: &Self::Config) -> Option<&Table> {
        None
    }

    /// Runs one shard.
    fn run(config: Self::Config) -> impl Future<Output = Result<(), JobError>>;
}

/// The command line of `W`, as the binary `bin` (`feature-parser`, or
/// `fleetctl feature-parser`) shows it: its settings, then its exit codes.
pub fn command<W: Worker>(bin: &str) -> clap::Command {
    Cli::<W::Args>::command_for(W::NAME, W::ABOUT)
        .bin_name(bin.to_string())
        .after_help(Exit::table(W::EXITS) + "\nEvery setting is an environment variable and a flag; flags win.")
}

/// Validates the settings of `W` from `FLEET_*` pairs alone (tests pass a
/// map and never touch the process environment).
pub fn configure_from_vars<W: Worker, K: AsRef<str>, V: AsRef<str>>(
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<W::Config, ConfigError> {
    W::configure(Cli::<W::Args>::from_vars(vars)?)
}

/// The `main` of a worker binary.
pub fn main<W: Worker>() -> ExitCode {
    main_with_args::<W>(W::NAME, std::env::args_os())
}

/// Runs `W` with these arguments (the first is the program name), the
/// environment being the process's: `fleetctl feature-parser` runs the
/// worker in process this way.
pub fn main_with_args<W: Worker>(bin: &str, args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let matches = match command::<W>(bin).try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            // --help and --version print and exit 0; bad flags exit 2
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let config = match Cli::<W::Args>::from_matches(&matches)
        .and_then(W::configure)
        .and_then(|c| without_catalog(W::table(&c)).map_or(Ok(c), Err))
    {
        Ok(c) => c,
        Err(e) => {
            init_tracing(LogFormat::Auto);
            tracing::error!(error = %e, exit_code = Exit::Config.code(), "Invalid configuration; nothing was done.");
            return ExitCode::from(Exit::Config.code());
        }
    };
    init_tracing(config.as_ref().log_format);
    run_job(config, W::run)
}

/// A worker as `fleetctl` knows it: its command line, a check of its
/// settings (for a fan-out, before any shard runs) and its entry point.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    pub name: &'static str,
    pub about: &'static str,
    /// Its command line, as `fleetctl <name>` shows it.
    pub command: fn() -> clap::Command,
    /// Validates parsed settings.
    pub check: fn(&clap::ArgMatches) -> Result<Checked, ConfigError>,
    /// Runs one shard in this process (`fleetctl <name> ...`).
    pub main: fn(Vec<OsString>) -> ExitCode,
}

/// What a fan-out needs of validated settings.
#[derive(Debug, Clone)]
pub struct Checked {
    pub common: Common,
    pub table: Option<Table>,
}

/// `W` for `fleetctl`.
pub const fn register<W: Worker>() -> Registered {
    Registered {
        name: W::NAME,
        about: W::ABOUT,
        command: fleetctl_command::<W>,
        check: check::<W>,
        main: fleetctl_main::<W>,
    }
}

fn fleetctl_command<W: Worker>() -> clap::Command {
    command::<W>(&format!("fleetctl {}", W::NAME))
}

fn check<W: Worker>(m: &clap::ArgMatches) -> Result<Checked, ConfigError> {
    let config = W::configure(Cli::<W::Args>::from_matches(m)?)?;
    Ok(Checked { common: config.as_ref().clone(), table: W::table(&config).cloned() })
}

fn fleetctl_main<W: Worker>(args: Vec<OsString>) -> ExitCode {
    main_with_args::<W>(&format!("fleetctl {}", W::NAME), args)
}

/// Starts tracing on stdout, where a worker's logs go (ECS captures it).
/// `RUST_LOG` sets the filter (default `info`): levels per target, such as
/// `warn,fleet_worker=debug`.
pub fn init_tracing(format: LogFormat) {
    start(json_for(format, &std::io::stdout()), std::io::stdout);
}

/// Starts tracing on stderr, for a tool whose stdout carries its results.
pub fn init_tracing_stderr(format: LogFormat) {
    start(json_for(format, &std::io::stderr()), std::io::stderr);
}

/// JSON logs unless asked for text, or `Auto` and `out` is a terminal.
fn json_for(format: LogFormat, out: &impl IsTerminal) -> bool {
    match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !out.is_terminal(),
    }
}

fn start<W>(json: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(writer)).try_init()
    };
}

/// Waits for SIGTERM (ECS stop) or Ctrl-C.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `job` on a multi-threaded runtime, stopping on SIGTERM, and maps
/// its result to the exit code.
fn run_job<C, F, Fut>(config: C, job: F) -> ExitCode
where
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = Result<(), JobError>>,
{
    without_huge_pages();
    keep_freed_memory();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the async runtime.");
            return ExitCode::from(Exit::Retryable.code());
        }
    };
    let exit = rt.block_on(async move {
        tokio::select! {
            r = job(config) => match r {
                Ok(()) => Exit::Done,
                Err(e) => {
                    let exit = e.exit();
                    tracing::error!(error = chain(&e), exit_code = exit.code(), retryable = exit.is_retryable(), "Run failed.");
                    exit
                }
            },
            _ = terminated() => {
                tracing::warn!("Terminated by signal; unfinished uploads are being aborted and nothing is committed.");
                // let the aborts spawned by dropped writers run
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                Exit::Terminated
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(exit.code())
}

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h,
/// v2 and v3 alike; libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The workers allocate and free the same large buffers (decompressed
/// Parquet pages, batches) over and over; mimalloc's default returns freed
/// memory to the OS after a second, and the next allocation faults every
/// page in again: 0.38 s of system time in a 3 s typical run, 0.27 s without
/// purging (docs/PERFORMANCE.md). Memory stays bounded by the peak the
/// pipeline needs. `MIMALLOC_PURGE_DELAY`, when set, wins.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer in mimalloc's option
        // table (it is documented as callable at any time, from any thread).
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
        };
    }
}

/// Turns transparent huge pages off for this process. A worker frees and
/// allocates page-sized buffers all the time (Parquet pages decompressed,
/// column chunks encoded); with huge pages, each time the allocator gives
/// such memory back and takes it again the kernel clears a whole 2 MiB page,
/// which took 11% of all CPU time of a typical run. With freed memory kept
/// (`keep_freed_memory`) huge pages are faulted once per run, but that was
/// no steady gain either: less user time (fewer TLB misses), more and
/// varying system time clearing fresh 2 MiB pages (docs/PERFORMANCE.md).
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "Could not turn transparent huge pages off; running with them.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_before_numa_nodes() {
        // libmimalloc-sys names its neighbour in mimalloc's option enum, not it
        assert_eq!(MI_OPTION_PURGE_DELAY + 1, libmimalloc_sys::mi_option_use_numa_nodes);
    }
}
