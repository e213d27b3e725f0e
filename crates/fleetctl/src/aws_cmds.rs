//! The commands that call AWS control-plane APIs (Glue, Athena), compiled
//! with the `aws` feature only.

use std::time::Duration;

use anyhow::{Context, bail};
use fleet_aws::athena::{self, Athena, Export, QueryOptions};
use fleet_aws::glue::{self, Glue, SyncOptions, TableChange};
use fleet_contract::{GlueTarget, RawVars};

use super::{Usage, glue_target, num, options, runtime};

/// `fleetctl catalog create|update|sync|list|show|drop ...`.
pub fn catalog(verb: &str, args: &[String]) -> anyhow::Result<String> {
    let env = RawVars::from_pairs(std::env::vars());
    match verb {
        "create" | "update" => {
            let m = options(args, &["location", "database", "table", "table-input"], &["projection"])?;
            let rt = runtime()?;
            if let Some(file) = m.get("table-input") {
                if let Some(x) = ["location", "table", "projection"].into_iter().find(|x| m.contains_key(*x)) {
                    bail!(Usage(format!("--{x} does not go with --table-input: the file defines the table")));
                }
                // a local catalog entry (`_runs/<run>/table_input.json`) as it is
                let v: serde_json::Value = rt.block_on(read_json(file))?;
                let database = m
                    .get("database")
                    .cloned()
                    .or_else(|| v["DatabaseName"].as_str().map(str::to_string))
                    .ok_or_else(|| Usage("--database is required (the file names no DatabaseName)".into()))?;
                let ti = if v.get("TableInput").is_some() { v["TableInput"].clone() } else { v };
                let change = rt.block_on(async { Glue::from_env().await?.ensure_table(&database, &ti).await })?;
                return Ok(change_line(&database, ti["Name"].as_str().unwrap_or_default(), &change));
            }
            let location = required(&m, "location", env.get(fleet_contract::vars::OUTPUT))?;
            let target = glue_target(&m, &location)?;
            rt.block_on(async {
                let found = fleet_parser::catalog::discover(&location).await?;
                let mut ti = found.table_input(&target.database, &target.table, &location)["TableInput"].clone();
                if m.contains_key("projection") || target.projection {
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
        "sync" => {
            let m = options(args, &["location", "database", "table"], &["projection"])?;
            let location = required(&m, "location", env.get(fleet_contract::vars::OUTPUT))?;
            let target = glue_target(&m, &location)?;
            runtime()?.block_on(sync(&location, &target, m.contains_key("projection")))
        }
        "list" => {
            let m = options(args, &["database"], &[])?;
            runtime()?.block_on(async {
                let g = Glue::from_env().await?;
                let mut s = String::new();
                match m.get("database") {
                    None => {
                        for d in g.list_databases().await? {
                            s.push_str(&d);
                            s.push('\n');
                        }
                    }
                    Some(db) => {
                        for t in g.list_tables(db).await? {
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
            })
        }
        "show" => {
            let m = options(args, &["database", "table"], &[])?;
            let (database, table) = named_table(&m, &env)?;
            runtime()?.block_on(async {
                let g = Glue::from_env().await?;
                let t = g.get_table(&database, &table).await?.ok_or_else(|| fleet_aws::AwsError::NoSuchTable {
                    database: database.clone(),
                    table: table.clone(),
                })?;
                let partitions = g.partition_values(&database, &table).await?.len();
                let v =
                    serde_json::json!({"DatabaseName": database, "TableInput": t, "RegisteredPartitions": partitions});
                Ok(serde_json::to_string_pretty(&v)? + "\n")
            })
        }
        "drop" => {
            let m = options(args, &["database", "table"], &[])?;
            let (database, table) = named_table(&m, &env)?;
            runtime()?.block_on(async {
                let existed = Glue::from_env().await?.drop_table(&database, &table).await?;
                Ok(if existed {
                    format!("dropped Glue table {database}.{table} (its data is untouched)\n")
                } else {
                    format!("Glue table {database}.{table} did not exist\n")
                })
            })
        }
        other => bail!(Usage(format!(
            "unknown catalog command {other:?}; expected discover, create, update, sync, list, show or drop"
        ))),
    }
}

/// Creates or evolves the Glue table of `location` from its committed data
/// and registers its complete partitions (the finalize step of a run).
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

fn required(
    m: &std::collections::HashMap<String, String>,
    name: &str,
    fallback: Option<&str>,
) -> anyhow::Result<String> {
    m.get(name)
        .cloned()
        .or_else(|| fallback.map(str::to_string))
        .ok_or_else(|| Usage(format!("--{name} is required")).into())
}

fn named_table(m: &std::collections::HashMap<String, String>, env: &RawVars) -> anyhow::Result<(String, String)> {
    let database = required(m, "database", env.get(fleet_contract::vars::GLUE_DATABASE))?;
    let table = required(m, "table", env.get(fleet_contract::vars::GLUE_TABLE))?;
    Ok((database, table))
}

async fn read_json(file: &str) -> anyhow::Result<serde_json::Value> {
    let loc = fleet_store::Location::parse(file)?;
    let bytes = loc.get_path(loc.path()).await?;
    serde_json::from_slice(&bytes).with_context(|| format!("{file} is not JSON"))
}

/// `fleetctl athena [ctas|unload] ...`.
pub fn athena(args: &[String]) -> anyhow::Result<String> {
    let (mode, args) = match args.first().map(String::as_str) {
        Some("ctas") => ("ctas", &args[1..]),
        Some("unload") => ("unload", &args[1..]),
        _ => ("query", args),
    };
    let mut known = vec!["sql", "file", "database", "workgroup", "output-location", "timeout", "catalog"];
    match mode {
        "query" => known.extend(["format", "out", "fetch"]),
        "ctas" => known.extend(["table", "location", "partitioned-by"]),
        _ => known.extend(["location", "partitioned-by"]),
    }
    let m = options(args, &known, &[])?;
    let env = RawVars::from_pairs(std::env::vars());
    let sql = match (m.get("sql"), m.get("file")) {
        (Some(s), None) => s.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading the SQL file {f}"))?,
        _ => bail!(Usage("give the SQL as exactly one of --sql TEXT or --file PATH".into())),
    };
    let opts = QueryOptions {
        database: m
            .get("database")
            .cloned()
            .or_else(|| env.get(fleet_contract::vars::GLUE_DATABASE).map(str::to_string)),
        catalog: m.get("catalog").cloned(),
        workgroup: m.get("workgroup").cloned(),
        output_location: m.get("output-location").cloned(),
        timeout: Duration::from_secs(num(&m, "timeout", 1800u64)?),
    };
    let partitioned: Vec<String> = m
        .get("partitioned-by")
        .map(|p| p.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    runtime()?.block_on(async {
        let a = Athena::from_env().await?;
        match mode {
            "ctas" | "unload" => {
                let location = required(&m, "location", None)?;
                let statement = if mode == "ctas" {
                    athena::ctas_sql(&required(&m, "table", None)?, &location, &partitioned, &sql)?
                } else {
                    athena::unload_sql(&location, &partitioned, &sql)?
                };
                athena::ensure_empty(&location).await?;
                let exec = a.run(&statement, &opts).await?;
                tracing::info!(stats = %athena::stats_json(&exec), "Athena query finished.");
                Ok(format!("{}\n{}\n", athena::stats_line(&exec), location))
            }
            _ => {
                let format = m.get("format").map_or("jsonl", String::as_str);
                let out = m.get("out").map(String::as_str);
                let mut export = match (format, out) {
                    ("jsonl", o) => Export::jsonl(o)?,
                    ("parquet", Some(o)) => Export::parquet(o),
                    ("parquet", None) => bail!(Usage("--format parquet needs --out PATH or URI".into())),
                    (f, _) => bail!(Usage(format!("--format {f:?}; expected jsonl or parquet"))),
                };
                let exec = a.run(&sql, &opts).await?;
                let fetch = m.get("fetch").map_or("auto", String::as_str);
                let from_s3 = match fetch {
                    "api" => false,
                    "s3" => true,
                    "auto" => a.result_size(&exec).await.is_some_and(|n| n >= AUTO_S3_BYTES),
                    f => bail!(Usage(format!("--fetch {f:?}; expected auto, api or s3"))),
                };
                let rows = if from_s3 {
                    a.results_from_s3(&exec, &mut export).await?
                } else {
                    a.results(&exec, &mut export).await?
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
            }
        }
    })
}

/// `--fetch auto` reads a result object of this size or more from S3.
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
