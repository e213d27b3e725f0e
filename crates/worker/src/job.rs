//! One shard's run: where it writes, its thread pool, the commit protocol
//! and the run summary. [`Job::run`] is the whole standard shard (list,
//! withdraw, pipeline, table definition, summary, markers); a worker that
//! is not a batch pipeline (the trainer) uses the same steps one by one:
//! [`Job::assign`], [`Job::withdraw`], [`Job::report_progress`],
//! [`Job::put_json`] and [`Job::finish`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use fleet_catalog::{CommitMarker, CommittedFile};
use fleet_contract::{Common, Partition};
use fleet_store::{InputObject, Location, list_inputs};
use serde::Serialize;
use tracing::{info, warn};

use crate::pipeline::{Plan, Source, Transform};
use crate::summary::{RunSummary, fargate_cost, peak_rss_bytes};
use crate::{JobError, layout};

/// A configured shard run.
#[derive(Debug)]
pub struct Job {
    worker: &'static str,
    common: Common,
    output: Location,
    pool: Arc<rayon::ThreadPool>,
    started: Instant,
}

/// What a shard did: the input, the counts, and the files written per
/// partition. [`Job::finish`] turns it into the summary and the markers.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub input: String,
    pub objects: u64,
    pub rows_in: u64,
    /// Rows with at least one rejected cell.
    pub rows_rejected: u64,
    pub rejected_cells: u64,
    pub rejected_cells_by_column: BTreeMap<String, u64>,
    pub bytes_read: u64,
    pub bytes_processed: u64,
    /// The partitions this shard commits (a marker each, even without a file).
    pub partitions: Vec<Partition>,
    /// The files written, by partition, in the order written.
    pub files: BTreeMap<Partition, Vec<CommittedFile>>,
    /// The rejects file written, and the threshold, for workers that reject rows.
    pub rejects: Option<RejectsWritten>,
}

/// A shard's rejects file and the reject threshold it is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectsWritten {
    pub key: String,
    pub max_ratio: f64,
}

/// Rows and bytes done so far, for the progress lines.
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    pub fn add(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Logs progress every `FLEET_PROGRESS_SECONDS` until dropped.
#[derive(Debug)]
pub struct Reporter(tokio::task::JoinHandle<()>);

impl Drop for Reporter {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Job {
    /// Parses the output location and starts the thread pool
    /// (`FLEET_THREADS` threads). The run's wall time starts now.
    pub fn new(worker: &'static str, common: Common) -> Result<Self, JobError> {
        let output = Location::parse(&common.output)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(common.threads)
            .thread_name(|i| format!("work-{i}"))
            .build()
            .map_err(|e| JobError::Internal(format!("thread pool: {e}")))?;
        Ok(Self { worker, common, output, pool: Arc::new(pool), started: Instant::now() })
    }

    pub fn common(&self) -> &Common {
        &self.common
    }

    pub fn output(&self) -> &Location {
        &self.output
    }

    /// The worker's Rayon pool.
    pub fn pool(&self) -> &Arc<rayon::ThreadPool> {
        &self.pool
    }

    /// Checks that input and output can be listed (a missing bucket, denied
    /// access and an unreachable endpoint told apart, before any work), then
    /// lists the input and returns this shard's objects, in URI order.
    pub async fn assign(&self, input: &str) -> Result<(Vec<InputObject>, usize), JobError> {
        Location::parse(input)?.check().await?;
        self.output.check().await?;
        let all = list_inputs(input).await?;
        let total = all.len();
        let shard = self.common.shard;
        let mine = all.into_iter().enumerate().filter(|(i, _)| shard.owns(*i)).map(|(_, o)| o).collect();
        Ok((mine, total))
    }

    /// Withdraws this shard's commit marker in `partition`: a retry starts
    /// here, and until its new marker is written the shard is not complete.
    pub async fn withdraw(&self, partition: &Partition) -> Result<(), JobError> {
        let key = layout::commit_key(partition, self.common.shard);
        Ok(self.output.delete(&self.output.join(&key)?).await?)
    }

    /// Starts the progress lines; they stop when the [`Reporter`] is dropped.
    pub fn report_progress(&self) -> (Arc<Progress>, Reporter) {
        let progress = Arc::new(Progress::default());
        let p = progress.clone();
        let every = std::time::Duration::from_secs(self.common.progress_seconds);
        let handle = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                let rows = p.rows.load(Ordering::Relaxed);
                let mb = p.bytes.load(Ordering::Relaxed) as f64 / 1e6;
                info!(
                    rows,
                    mb = format!("{mb:.1}"),
                    rows_per_second = format!("{:.0}", rows as f64 / secs),
                    "Progress."
                );
            }
        });
        (progress, Reporter(handle))
    }

    /// Writes `value` as pretty JSON at `key` under the output.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), JobError> {
        let mut b = serde_json::to_vec_pretty(value).expect("summaries serialize");
        b.push(b'\n');
        Ok(self.output.put_bytes(key, b).await?)
    }

    /// The standard shard: assign the input, withdraw the markers, run the
    /// pipeline, write the table definition, then [`Job::finish`].
    pub async fn run<S: Source, T: Transform, M: Serialize>(
        &self,
        plan: Plan<S, T>,
        metrics: M,
    ) -> Result<RunSummary<M>, JobError> {
        let (objects, total) = self.assign(&plan.input).await?;
        let partitions = plan.partitions(&objects);
        info!(
            worker = self.worker,
            shard = %self.common.shard.name(),
            objects = objects.len(),
            of = total,
            input = %plan.input,
            output = %self.common.output,
            partition = %paths(&partitions),
            threads = self.common.threads,
            "Shard assigned."
        );
        let glue = plan.table.glue.clone();
        let table_input = fleet_catalog::table_input(
            &glue.database,
            &glue.table,
            &self.output.uri(),
            &plan.schema,
            partitions.first().unwrap_or(&plan.table.partition).keys(),
            plan.table.compression.name(),
        );
        for p in &partitions {
            self.withdraw(p).await?;
        }
        let (progress, reporter) = self.report_progress();
        let result = crate::pipeline::run(self, plan, &objects, partitions, &progress).await;
        drop(reporter);
        let outcome = result?;
        self.put_json(&layout::table_input_key(&self.common.run_id), &table_input).await?;
        let committed = outcome.partitions.clone();
        let summary = self.finish(outcome, metrics).await?;
        if glue.register {
            self.register(&glue, &committed).await?;
        }
        Ok(summary)
    }

    /// After the commit: when one of `partitions` is complete (every shard
    /// committed), registers the table and its complete partitions in the
    /// catalog; the shard that completes a partition does it, and a one-off
    /// run ends with a queryable table. An error is retryable: the data is
    /// committed, and a retry commits it again and registers.
    pub async fn register(&self, glue: &fleet_contract::GlueTarget, partitions: &[Partition]) -> Result<(), JobError> {
        let Some(catalog) = crate::catalog() else {
            return Err(JobError::Internal("FLEET_GLUE_* set without a catalog (refused at start)".into()));
        };
        let uri = self.output.uri();
        let committed = fleet_catalog::committed_partitions(&uri).await.map_err(|e| {
            JobError::Catalog(format!("reading the commit markers under {uri} to register the table: {e}"))
        })?;
        let mine: Vec<String> = partitions.iter().map(Partition::path).collect();
        let complete = committed.iter().filter(|c| mine.contains(&c.partition.path()) && c.is_complete()).count();
        if complete == 0 {
            info!(
                database = %glue.database,
                table = %glue.table,
                partition = %mine.join(","),
                "Partition not complete yet; the shard that completes it registers it in Glue."
            );
            return Ok(());
        }
        let done = catalog
            .register(&uri, glue)
            .await
            .map_err(|e| JobError::Catalog(format!("registering {}.{} in Glue: {e}", glue.database, glue.table)))?;
        info!(database = %glue.database, table = %glue.table, registered = %done.trim_end().replace('\n', "; "), "Registered in Glue.");
        Ok(())
    }

    /// The end of the commit protocol: writes the run summary; then, unless
    /// the reject threshold is exceeded (an error, after the summary), one
    /// commit marker per partition, last. Logs the summary.
    pub async fn finish<M: Serialize>(&self, outcome: Outcome, metrics: M) -> Result<RunSummary<M>, JobError> {
        let c = &self.common;
        let wall = self.started.elapsed().as_secs_f64();
        let Outcome { rows_in, rows_rejected, rejected_cells, .. } = outcome;
        let ratio = if rows_in == 0 { 0.0 } else { rows_rejected as f64 / rows_in as f64 };
        let max = outcome.rejects.as_ref().map(|r| r.max_ratio);
        let over = max.is_some_and(|m| ratio > m);
        let files: Vec<CommittedFile> = outcome.files.values().flatten().cloned().collect();
        let summary = RunSummary {
            worker: self.worker.to_string(),
            status: if over { "failed: reject threshold exceeded".into() } else { "committed".into() },
            run_id: c.run_id.clone(),
            shard_index: c.shard.index,
            shard_count: c.shard.count,
            input: outcome.input.clone(),
            output: self.output.uri(),
            partition: paths(&outcome.partitions),
            objects: outcome.objects,
            rows_in,
            rows_out: files.iter().map(|f| f.rows).sum(),
            rows_rejected,
            rejected_cells,
            rejected_cells_by_column: outcome.rejected_cells_by_column.clone(),
            reject_ratio: ratio,
            max_reject_ratio: max,
            bytes_read: outcome.bytes_read,
            bytes_processed: outcome.bytes_processed,
            bytes_written: files.iter().map(|f| f.bytes).sum(),
            wall_seconds: wall,
            rows_per_second: rows_in as f64 / wall.max(1e-9),
            mb_per_second: outcome.bytes_processed as f64 / 1e6 / wall.max(1e-9),
            peak_rss_bytes: peak_rss_bytes(),
            threads: c.threads,
            fargate_vcpu: c.task_vcpu,
            fargate_memory_gib: c.task_memory_gib,
            fargate_cost_usd: fargate_cost(c.task_vcpu, c.task_memory_gib, wall),
            files,
            metrics,
        };
        let summary_key = layout::summary_key(&c.run_id, c.shard);
        self.put_json(&summary_key, &summary).await?;
        let summary_uri = self.output.child(&summary_key)?.uri();
        if over {
            let max = max.unwrap_or_default();
            warn!(rows_rejected, rows = rows_in, ratio, max, summary = %summary_uri, "Too many rejected rows; the shard is not committed.");
            return Err(JobError::RejectThreshold { rows_rejected, rows: rows_in, ratio, max });
        }
        for partition in &outcome.partitions {
            let files = outcome.files.get(partition).cloned().unwrap_or_default();
            let marker = CommitMarker {
                run_id: c.run_id.clone(),
                shard_index: c.shard.index,
                shard_count: c.shard.count,
                partition: partition.path(),
                rows: files.iter().map(|f| f.rows).sum(),
                files,
                rejects_key: outcome.rejects.as_ref().map(|r| r.key.clone()),
                rejected_cells,
            };
            self.put_json(&layout::commit_key(partition, c.shard), &marker).await?;
        }
        info!(
            rows_in = summary.rows_in,
            rows_out = summary.rows_out,
            rows_rejected = summary.rows_rejected,
            rejected_cells = summary.rejected_cells,
            files = summary.files.len(),
            mb = format!("{:.1}", summary.bytes_processed as f64 / 1e6),
            wall_seconds = format!("{:.2}", summary.wall_seconds),
            rows_per_second = format!("{:.0}", summary.rows_per_second),
            mb_per_second = format!("{:.1}", summary.mb_per_second),
            peak_rss_mib = summary.peak_rss_bytes >> 20,
            fargate_cost_usd = format!("{:.6}", summary.fargate_cost_usd),
            summary = %summary_uri,
            "Run summary."
        );
        Ok(summary)
    }
}

fn paths(partitions: &[Partition]) -> String {
    partitions.iter().map(Partition::path).collect::<Vec<_>>().join(",")
}
