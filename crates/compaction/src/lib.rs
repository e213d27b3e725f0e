//! The compactor (issue 17, in progress): a Hive-partitioned Parquet table
//! (`year=/month=/day=/hour=` or `dt=`) whose partitions hold many small
//! files, rewritten into files of about a target size per hour or per day.
//!
//! Built so far: [`plan`], what a compaction does decided before any byte
//! is read (units, the mode's selection, bin packing). To come: reading and
//! rewriting the bins through the worker framework, the per-partition row
//! and checksum check before the commit, Glue registration.

pub mod plan;

pub use plan::{Bin, Mode, PartitionMode, PlanError, SourceFile, Unit, UnitPlan, pack, plan_units, source_file};
