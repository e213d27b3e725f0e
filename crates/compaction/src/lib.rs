//! The compactor: a Hive-partitioned Parquet table (`year=/month=/day=/hour=`
//! or `dt=`) whose partitions hold many small files, rewritten into files
//! of about a target size per hour or per day, under a compact prefix
//! (beside the source by default), with the same commit protocol, run
//! summary and Glue registration as every worker.
//!
//! - [`plan`]: what a compaction does, decided from the listing (units,
//!   the mode's selection, first-fit-decreasing bins, files near the target
//!   kept).
//! - [`compact`]: the run: bins rewritten (the union of the files' columns;
//!   the hour as a column when a day's hours are merged), kept files
//!   copied, rows written checked against the footers per partition before
//!   any marker, stale output files removed after the commit.

pub mod compact;
pub mod config;
pub mod plan;

use fleet_contract::{Cli, ConfigError, Table};
use fleet_worker::{Exit, Job, JobError, Worker};

pub use compact::{Metrics, Settings, compact};
pub use config::{Args, Config, vars};
pub use plan::{Bin, Mode, PartitionMode, PlanError, SourceFile, Unit, UnitPlan, pack, plan_units, source_file};

/// The compactor worker.
#[derive(Debug)]
pub struct Compactor;

impl Worker for Compactor {
    const NAME: &'static str = "compactor";
    const ABOUT: &'static str = "pack a Hive-partitioned Parquet table's small files into files of about a target size per hour or day, under a compact prefix, checking rows in against rows out per partition before the commit marker";
    const EXITS: &'static [Exit] = Exit::COMMON;
    type Args = Args;
    type Config = Config;

    fn configure(cli: Cli<Args>) -> Result<Config, ConfigError> {
        Config::validate(cli, config::today_utc())
    }

    fn table(config: &Config) -> Option<&Table> {
        Some(&config.settings.table)
    }

    async fn run(config: Config) -> Result<(), JobError> {
        let job = Job::new(Self::NAME, config.common)?;
        compact(&job, &config.settings).await?;
        Ok(())
    }
}
