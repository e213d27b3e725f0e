//! The commands that call AWS control-plane APIs: Glue (the `glue`
//! feature, which the image has), Athena (`aws`), ECS and Step Functions
//! (`fleet`).

#[cfg(feature = "aws")]
use std::time::Duration;

use anyhow::{Context, bail};
#[cfg(feature = "aws")]
use fleet_aws::athena::{self, Athena, Export, QueryOptions};
use fleet_aws::glue::{self, Glue, SyncOptions, TableChange};
use fleet_contract::GlueTarget;

#[cfg(feature = "aws")]
use super::{AthenaCommand, AthenaRun, AthenaStatement};
use super::{CatalogCommand, Usage, runtime};

/// `fleetctl catalog create|update|sync|list|show|drop ...`.
pub fn catalog(c: CatalogCommand) -> anyhow::Result<String> {
    match c {
        CatalogCommand::Create(a) => {
            let rt = runtime()?;
            if let Some(file) = &a.table_input {
                // a local catalog entry (`_runs/<run>/table_input.json`) as it is
                let v: serde_json::Value = rt.block_on(read_json(file))?;
                let database = a
                    .names
                    .database
                    .clone()
                    .or_else(|| v["DatabaseName"].as_str().map(str::to_string))
                    .ok_or_else(|| Usage("--database is required (the file names no DatabaseName)".into()))?;
                let ti = if v.get("TableInput").is_some() { v["TableInput"].clone() } else { v };
                let change = rt.block_on(async { Glue::from_env().await?.ensure_table(&database, &ti).await })?;
                return Ok(change_line(&database, ti["Name"].as_str().unwrap_or_default(), &change));
            }
            let location = a.location.clone().ok_or_else(|| Usage("--location or --table-input is required".into()))?;
            let target = a.names.target(&location)?;
            rt.block_on(async {
                let found = fleet_catalog::discover(&location).await?;
                let mut ti = found.table_input(&target.database, &target.table, &location)["TableInput"].clone();
                if a.projection {
                    if found.partitions.is_empty() {
                        bail!(Usage(format!("--projection: no key=value partition folders under {location}")));
                    }
                    let seen: Vec<&fleet_contract::Partition> = found.partitions.iter().collect();
                    for (k, v) in glue::projection_parameters(&location, &seen) {
                        ti["Parameters"][k] = serde_json::json!(v);
                    }
                }
                let change = Glue::from_env().await?.ensure_table(&target.database, &ti).await?;
                Ok(change_line(&target.database, &target.table, &change))
            })
        }
        CatalogCommand::Sync(a) => {
            let target = a.names.target(&a.location)?;
            runtime()?.block_on(sync(&a.location, &target, a.projection))
        }
        CatalogCommand::List { database } => runtime()?.block_on(async {
            let g = Glue::from_env().await?;
            let mut s = String::new();
            match database {
                None => {
                    for d in g.list_databases().await? {
                        s.push_str(&d);
                        s.push('\n');
                    }
                }
                Some(db) => {
                    for t in g.list_tables(&db).await? {
                        let keys: Vec<&str> = t["PartitionKeys"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|k| k["Name"].as_str())
                            .collect();
                        s.push_str(&format!(
                            "{:<40} {:>4} columns  partitioned by [{}]  {}\n",
                            t["Name"].as_str().unwrap_or_default(),
                            t["StorageDescriptor"]["Columns"].as_array().map_or(0, Vec::len),
                            keys.join(", "),
                            t["StorageDescriptor"]["Location"].as_str().unwrap_or_default()
                        ));
                    }
                }
            }
            Ok(s)
        }),
        CatalogCommand::Show(t) => runtime()?.block_on(async {
            let g = Glue::from_env().await?;
            let found = g.get_table(&t.database, &t.table).await?.ok_or_else(|| fleet_aws::AwsError::NoSuchTable {
                database: t.database.clone(),
                table: t.table.clone(),
            })?;
            let partitions = g.partition_values(&t.database, &t.table).await?.len();
            let v =
                serde_json::json!({"DatabaseName": t.database, "TableInput": found, "RegisteredPartitions": partitions});
            Ok(serde_json::to_string_pretty(&v)? + "\n")
        }),
        CatalogCommand::Drop(t) => runtime()?.block_on(async {
            let existed = Glue::from_env().await?.drop_table(&t.database, &t.table).await?;
            Ok(if existed {
                format!("dropped Glue table {}.{} (its data is untouched)\n", t.database, t.table)
            } else {
                format!("Glue table {}.{} did not exist\n", t.database, t.table)
            })
        }),
        CatalogCommand::Discover { .. } => unreachable!("discover needs no AWS and runs in main"),
    }
}

/// Creates or evolves the Glue table of `location` from its committed data
/// and registers its complete partitions (the finalize step of a run).
/// Glue as the catalog the shards of this process register their table in.
#[derive(Debug)]
pub struct GlueCatalog;

impl fleet_worker::Catalog for GlueCatalog {
    fn register<'a>(
        &'a self,
        output: &'a str,
        glue: &'a GlueTarget,
    ) -> futures::future::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { sync(output, glue, false).await.map_err(|e| format!("{e:#}")) })
    }
}

pub async fn sync(location: &str, target: &GlueTarget, projection: bool) -> anyhow::Result<String> {
    let g = Glue::from_env().await?;
    let opts = SyncOptions {
        location: location.to_string(),
        database: target.database.clone(),
        table: target.table.clone(),
        projection: projection || target.projection,
    };
    let report = glue::sync_table(&g, &opts).await?;
    let mut s = match &report.table {
        Some(c) => change_line(&opts.database, &opts.table, c),
        None => format!("no complete partition under {location}; nothing registered\n"),
    };
    if opts.projection {
        s.push_str("partition projection: partitions are not registered\n");
    }
    for p in &report.registered.created {
        s.push_str(&format!("registered  {p}\n"));
    }
    for p in &report.registered.already_registered {
        s.push_str(&format!("already     {p}\n"));
    }
    for (p, n, count) in &report.incomplete {
        s.push_str(&format!("incomplete  {p} ({n} of {count} shards committed; not registered)\n"));
    }
    Ok(s)
}

fn change_line(database: &str, table: &str, c: &TableChange) -> String {
    match c {
        TableChange::Created => format!("created Glue table {database}.{table}\n"),
        TableChange::Unchanged => format!("Glue table {database}.{table} is up to date\n"),
        TableChange::Updated { added_columns, changed_parameters } => format!(
            "updated Glue table {database}.{table}: added columns [{}], set parameters [{}]\n",
            added_columns.join(", "),
            changed_parameters.join(", ")
        ),
    }
}

async fn read_json(file: &str) -> anyhow::Result<serde_json::Value> {
    let loc = fleet_store::Location::parse(file)?;
    let bytes = loc.get_path(loc.path()).await?;
    serde_json::from_slice(&bytes).with_context(|| format!("{file} is not JSON"))
}

/// `fleetctl athena [ctas|unload] ...`.
#[cfg(feature = "aws")]
pub fn athena(a: AthenaCommand) -> anyhow::Result<String> {
    let run = match &a.statement {
        Some(AthenaStatement::Ctas { run, .. } | AthenaStatement::Unload { run, .. }) => run,
        None => &a.query.run,
    };
    let sql = match (&run.sql, &run.file) {
        (Some(s), None) => s.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading the SQL file {}", f.display()))?
        }
        _ => bail!(Usage("give the SQL as exactly one of --sql TEXT or --file PATH".into())),
    };
    let opts = query_options(run);
    runtime()?.block_on(async {
        let athena = Athena::from_env().await?;
        if let Some(statement) = &a.statement {
            let (statement, location) = match statement {
                AthenaStatement::Ctas { table, target, .. } => {
                    (athena::ctas_sql(table, &target.location, &target.partitioned_by, &sql)?, &target.location)
                }
                AthenaStatement::Unload { target, .. } => {
                    (athena::unload_sql(&target.location, &target.partitioned_by, &sql)?, &target.location)
                }
            };
            athena::ensure_empty(location).await?;
            let exec = athena.run(&statement, &opts).await?;
            tracing::info!(stats = %athena::stats_json(&exec), "Athena query finished.");
            return Ok(format!("{}\n{}\n", athena::stats_line(&exec), location));
        }
        let q = &a.query;
        let out = q.out.as_deref();
        let mut export = match (q.format.as_str(), out) {
            ("parquet", Some(o)) => Export::parquet(o),
            ("parquet", None) => bail!(Usage("--format parquet needs --out PATH or URI".into())),
            (_, o) => Export::jsonl(o)?,
        };
        let exec = athena.run(&sql, &opts).await?;
        let from_s3 = match q.fetch.as_str() {
            "api" => false,
            "s3" => true,
            _ => athena.result_size(&exec).await.is_some_and(|n| n >= AUTO_S3_BYTES),
        };
        let rows = if from_s3 {
            athena.results_from_s3(&exec, &mut export).await?
        } else {
            athena.results(&exec, &mut export).await?
        };
        export.finish().await?;
        tracing::info!(rows, stats = %athena::stats_json(&exec), "Athena query finished.");
        let line = format!("{} rows; {}\n", rows, athena::stats_line(&exec));
        if out.is_none() {
            // the rows went to stdout: the statistics go to stderr
            super::err(&line);
            Ok(String::new())
        } else {
            Ok(line)
        }
    })
}

#[cfg(feature = "aws")]
fn query_options(run: &AthenaRun) -> QueryOptions {
    QueryOptions {
        database: run.database.clone(),
        catalog: run.catalog.clone(),
        workgroup: run.workgroup.clone(),
        output_location: run.output_location.clone(),
        timeout: Duration::from_secs(run.timeout),
    }
}

/// `--fetch auto` reads a result object of this size or more from S3.
#[cfg(feature = "aws")]
const AUTO_S3_BYTES: u64 = 8 << 20;

/// Drops the Glue tables of past runs: every table of `database` whose
/// location is under `root`, except those whose name starts with a protected
/// table prefix or whose location is under a protected prefix. One log line
/// per table.
pub fn cleanup_tables(
    root: &str,
    database: &str,
    protected_prefixes: &[String],
    protected_tables: &[String],
    execute: bool,
) -> anyhow::Result<String> {
    runtime()?.block_on(async {
        let g = Glue::from_env().await?;
        let root = format!("{}/", root.trim_end_matches('/'));
        let mut s = String::new();
        for t in g.list_tables(database).await? {
            let name = t["Name"].as_str().unwrap_or_default().to_string();
            let location = t["StorageDescriptor"]["Location"].as_str().unwrap_or_default().to_string();
            let rel = format!("{}/", location.trim_end_matches('/'));
            let rel = rel.strip_prefix(&root);
            let verdict = if protected_tables.iter().any(|p| name.starts_with(p.as_str())) {
                "kept (protected name)"
            } else if rel.is_none() {
                "kept (outside root)"
            } else if rel.is_some_and(|r| fleetctl::is_protected(r, protected_prefixes)) {
                "kept (protected)"
            } else if execute {
                g.drop_table(database, &name).await?;
                "dropped"
            } else {
                "would drop"
            };
            tracing::info!(table = %format!("{database}.{name}"), location = %location, verdict, "Glue table.");
            s.push_str(&format!("{verdict:>21}  table {database}.{name}  {location}\n"));
        }
        Ok(s)
    })
}

/// `fleetctl aws run-task|start|status` (ECS and Step Functions).
#[cfg(feature = "fleet")]
pub fn fleet(c: super::AwsCommand) -> anyhow::Result<String> {
    use fleet_aws::fleet::{Ecs, StepFunctions, TaskPlacement};

    use super::AwsCommand;
    let rt = runtime()?;
    match c {
        AwsCommand::RunTask(a) => {
            let placement = TaskPlacement {
                cluster: a.cluster,
                task_definition: a.task_definition,
                subnets: a.subnets,
                security_groups: a.security_groups,
                assign_public_ip: a.assign_public_ip,
                capacity_provider: a.capacity_provider,
            };
            rt.block_on(async {
                let shards: Vec<(String, Vec<(String, String)>)> = match &a.manifest {
                    Some(uri) => fleetctl::read_manifest(uri)
                        .await?
                        .into_iter()
                        .map(|i| {
                            let env = i.environment.into_iter().map(|e| (e.name, e.value)).collect();
                            (format!("shard {} of {}", i.index, i.count), env)
                        })
                        .collect(),
                    None => vec![("task".to_string(), super::pairs("-e", &a.env)?)],
                };
                let ecs = Ecs::from_env().await?;
                let mut s = String::new();
                for (what, env) in shards {
                    let t = ecs
                        .run_task(&placement, &env, "fleetctl")
                        .await
                        .with_context(|| format!("{s}starting {what}"))?;
                    s.push_str(&format!("{what}: {}\n", t.arn));
                }
                s.push_str(&format!(
                    "logs: the task definition's awslogs group; status: aws ecs describe-tasks --cluster {} --tasks <arn>\n",
                    placement.cluster
                ));
                Ok(s)
            })
        }
        AwsCommand::Start(a) => rt.block_on(async {
            let loc = fleet_store::Location::parse(&a.input)?;
            let bytes = loc.get_path(loc.path()).await?;
            let input: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: expected the execution input `fleetctl plan` writes", a.input))?;
            if input["manifest"]["Bucket"].as_str().is_none_or(str::is_empty) {
                bail!(Usage(format!(
                    "{}: the manifest is not on S3 ({}); plan with --out s3://<bucket>/runs/<run>/ for the state machine",
                    a.input, input["manifest"]
                )));
            }
            let name = match a.name.or_else(|| input["run_id"].as_str().map(str::to_string)) {
                Some(n) => n,
                None => bail!(Usage("--name is required (the input names no run id)".into())),
            };
            let sf = StepFunctions::from_env().await?;
            let e = sf.start(&a.state_machine, &name, &serde_json::to_string(&input)?).await?;
            Ok(format!(
                "started {} ({}), {} worker over s3://{}/{}\nstatus: fleetctl aws status --execution {}\n",
                e.arn,
                e.status,
                input["worker"].as_str().unwrap_or("batch-predictor"),
                input["manifest"]["Bucket"].as_str().unwrap_or_default(),
                input["manifest"]["Key"].as_str().unwrap_or_default(),
                e.arn
            ))
        }),
        AwsCommand::Status { execution } => rt.block_on(async {
            let e = StepFunctions::from_env().await?.describe(&execution).await?;
            Ok(format!("{} {}\n", e.arn, e.status))
        }),
        AwsCommand::TaskDefinition(_) => unreachable!("handled without the SDK"),
    }
}
