//! What every fleet binary does around its job: read and validate the
//! shard contract, start tracing (JSON when stdout is not a terminal,
//! readable text when it is), run the job on a Tokio runtime, stop cleanly
//! on SIGTERM, and map the result to an exit code (0 done, 1 failed,
//! 2 bad configuration, 3 reject threshold).
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     fleet_worker::main("my-worker", "does one thing", |_code| 1, |config| async move {
//!         tracing::info!(input = %config.input, "Working.");
//!         Ok(())
//!     })
//! }
//! ```

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use fleet_contract::{Config, ConfigError, Invocation, LogFormat};
use tracing_subscriber::EnvFilter;

/// Exit code for a run stopped by SIGTERM or SIGINT.
pub const EXIT_TERMINATED: i32 = 143;

/// Starts tracing on stdout, where a worker's logs go (ECS captures it).
/// `RUST_LOG` sets the filter (default `info`).
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.with_target(false).try_init()
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

/// Runs a worker: `--help`, configuration from the environment and flags,
/// tracing, the job itself, and the exit code. `exit_code` maps a job error
/// to its code (configuration errors are always 2).
pub fn main<F, Fut>(binary: &str, about: &str, exit_code: fn(&anyhow::Error) -> i32, job: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    main_with_args(binary, about, std::env::args().skip(1), exit_code, job)
}

/// [`main`] with the arguments given (for a worker run as a subcommand,
/// such as `fleetctl feature-parser`); the environment is the process's.
pub fn main_with_args<F, Fut>(
    binary: &str,
    about: &str,
    args: impl IntoIterator<Item = String>,
    exit_code: fn(&anyhow::Error) -> i32,
    job: F,
) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config = match Config::from_env_and_args(std::env::vars(), args) {
        Ok(Invocation::Run(c)) => c,
        Ok(Invocation::Help) => {
            print_out(&fleet_contract::help(binary, about));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            print_out(&format!("{binary} {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            init_tracing(LogFormat::Auto);
            tracing::error!(error = %e, "Invalid configuration; nothing was done.");
            return ExitCode::from(ConfigError::EXIT_CODE as u8);
        }
    };
    init_tracing(config.log_format);
    run_job(config, exit_code, job)
}

/// Runs `job` on a multi-threaded runtime, stopping on SIGTERM.
pub fn run_job<F, Fut>(config: Config, exit_code: fn(&anyhow::Error) -> i32, job: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    without_huge_pages();
    keep_freed_memory();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        tokio::select! {
            r = job(config) => match r {
                Ok(()) => 0,
                Err(e) => {
                    let code = if e.downcast_ref::<ConfigError>().is_some() { ConfigError::EXIT_CODE } else { exit_code(&e) };
                    tracing::error!(error = format!("{e:#}"), exit_code = code, "Run failed.");
                    code
                }
            },
            _ = terminated() => {
                tracing::warn!("Terminated by signal; unfinished uploads are being aborted and nothing is committed.");
                // let the aborts spawned by dropped writers run
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                EXIT_TERMINATED
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code as u8)
}

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h,
/// v2 and v3 alike; libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The workers allocate and free the same large buffers (decompressed
/// Parquet pages, batches) over and over; mimalloc's default returns freed
/// memory to the OS after a second, and the next allocation faults every
/// page in again: 0.38 s of system time in a 3 s typical run, 0.27 s without
/// purging (docs/PERFORMANCE.md, session 6). Memory stays bounded by
/// the peak the pipeline needs. `MIMALLOC_PURGE_DELAY`, when set, wins.
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
/// which took 11% of all CPU time of a typical run (docs/PERFORMANCE.md).
/// With freed memory kept (`keep_freed_memory`) huge pages are faulted
/// once per run, but that was no steady gain either: less user time (fewer
/// TLB misses), more and varying system time clearing fresh 2 MiB pages
/// (session 8).
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "Could not turn transparent huge pages off; running with them.");
    }
}

#[allow(clippy::print_stdout, reason = "--help and --version print to stdout")]
fn print_out(s: &str) {
    print!("{s}");
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
