//! Glue: tables from Arrow schemas, evolution, partitions after commit markers.
//!
//! Table definitions travel as Glue `TableInput` JSON, the shape
//! `aws glue create-table --cli-input-json` takes and the shape the worker
//! writes as its local catalog (`fleet_catalog::table_input`), so
//! the local catalog and the Glue one are one definition.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_glue::types::{Column, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, Table, TableInput};
use fleet_catalog::{CommittedPartition, SchemaUnion};
use serde_json::{Value, json};

use crate::{AwsError, Result, api_error};

/// Glue allows at most 100 partitions per `BatchCreatePartition`.
pub const PARTITION_BATCH: usize = 100;

/// A Glue client.
#[derive(Debug, Clone)]
pub struct Glue {
    client: aws_sdk_glue::Client,
}

/// What [`Glue::ensure_table`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableChange {
    Created,
    /// Columns were appended, or table parameters changed.
    Updated {
        added_columns: Vec<String>,
        changed_parameters: Vec<String>,
    },
    Unchanged,
}

/// What [`Glue::register_partitions`] did, by partition path (`dt=2025-07-01`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    pub created: Vec<String>,
    pub already_registered: Vec<String>,
}

impl Glue {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Glue { client: aws_sdk_glue::Client::new(conf) }
    }

    /// A client from the standard configuration chain.
    pub async fn from_env() -> Result<Self> {
        Ok(Glue::new(&crate::sdk_config().await?))
    }

    pub async fn list_databases(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pages = self.client.get_databases().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("Glue", "GetDatabases", e))?;
            out.extend(page.database_list().iter().map(|d| d.name().to_string()));
        }
        Ok(out)
    }

    /// Creates the database when it is missing; true when it was created.
    pub async fn ensure_database(&self, database: &str) -> Result<bool> {
        match self.client.get_database().name(database).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => {}
            Err(e) => return Err(api_error("Glue", "GetDatabase", e)),
        }
        let input = DatabaseInput::builder().name(database).build().map_err(|e| AwsError::Invalid(e.to_string()))?;
        match self.client.create_database().database_input(input).send().await {
            Ok(_) => {
                tracing::info!(database, "Created the Glue database.");
                Ok(true)
            }
            // created meanwhile by another task
            Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => Ok(false),
            Err(e) => Err(api_error("Glue", "CreateDatabase", e)),
        }
    }

    /// The tables of a database as `TableInput` JSON, sorted by name.
    pub async fn list_tables(&self, database: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut pages = self.client.get_tables().database_name(database).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("Glue", "GetTables", e))?;
            out.extend(page.table_list().iter().map(table_json));
        }
        out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        Ok(out)
    }

    /// The table as `TableInput` JSON, or `None` when it does not exist.
    pub async fn get_table(&self, database: &str, table: &str) -> Result<Option<Value>> {
        Ok(self.table(database, table).await?.as_ref().map(table_json))
    }

    async fn table(&self, database: &str, table: &str) -> Result<Option<Table>> {
        match self.client.get_table().database_name(database).name(table).send().await {
            Ok(out) => Ok(out.table),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(None),
            Err(e) => Err(api_error("Glue", "GetTable", e)),
        }
    }

    /// Drops the table (its data stays where it is); false when it did not exist.
    pub async fn drop_table(&self, database: &str, table: &str) -> Result<bool> {
        match self.client.delete_table().database_name(database).name(table).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => Ok(false),
            Err(e) => Err(api_error("Glue", "DeleteTable", e)),
        }
    }

    /// Creates the table of `wanted` (a `TableInput` JSON) when it is missing
    /// (and its database too). When it exists: columns of `wanted` that the
    /// table lacks are appended and parameters of `wanted` are set; a column
    /// whose type differs, or other partition keys, is an error and nothing
    /// is changed.
    pub async fn ensure_table(&self, database: &str, wanted: &Value) -> Result<TableChange> {
        let name = str_of(wanted, "Name").ok_or_else(|| AwsError::Invalid("a TableInput needs a Name".into()))?;
        self.ensure_database(database).await?;
        let Some(existing) = self.table(database, name).await? else {
            let input = table_input(wanted)?;
            match self.client.create_table().database_name(database).table_input(input).send().await {
                Ok(_) => {
                    tracing::info!(database, table = name, "Created the Glue table.");
                    return Ok(TableChange::Created);
                }
                // created meanwhile: evolve it like any existing table
                Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => {
                    return Box::pin(self.ensure_table(database, wanted)).await;
                }
                Err(e) => return Err(api_error("Glue", "CreateTable", e)),
            }
        };
        let plan = evolve(database, &table_json(&existing), wanted)?;
        let change = plan.change();
        if change == TableChange::Unchanged {
            return Ok(change);
        }
        // UpdateTable replaces the definition: start from the table as Glue
        // has it (every field kept), and guard against a concurrent update.
        let input = plan.apply(&existing)?;
        self.client
            .update_table()
            .database_name(database)
            .table_input(input)
            .set_version_id(existing.version_id.clone())
            .send()
            .await
            .map_err(|e| api_error("Glue", "UpdateTable", e))?;
        tracing::info!(database, table = name, ?change, "Updated the Glue table.");
        Ok(change)
    }

    /// The registered partitions of a table: their values and locations.
    pub async fn partitions(&self, database: &str, table: &str) -> Result<BTreeMap<Vec<String>, String>> {
        let mut out = BTreeMap::new();
        let mut pages = self.client.get_partitions().database_name(database).table_name(table).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("Glue", "GetPartitions", e))?;
            for p in page.partitions() {
                let location = p.storage_descriptor().and_then(|sd| sd.location()).unwrap_or_default();
                out.insert(p.values().to_vec(), location.to_string());
            }
        }
        Ok(out)
    }

    /// The registered partitions of a table, as their values.
    pub async fn partition_values(&self, database: &str, table: &str) -> Result<BTreeSet<Vec<String>>> {
        Ok(self.partitions(database, table).await?.into_keys().collect())
    }

    /// Registers partitions that are not registered yet, in batches of at most
    /// [`PARTITION_BATCH`], each with the table's storage descriptor at its
    /// own location. Idempotent: a partition registered meanwhile counts as
    /// already registered. A partition registered at another location is an
    /// error (two outputs must not share a table).
    pub async fn register_partitions(
        &self,
        database: &str,
        table: &str,
        partitions: &[&CommittedPartition],
    ) -> Result<Registered> {
        let def = self
            .table(database, table)
            .await?
            .ok_or_else(|| AwsError::NoSuchTable { database: database.into(), table: table.into() })?;
        let existing = self.partitions(database, table).await?;
        let mut done = Registered::default();
        let mut todo = Vec::new();
        for p in partitions {
            let values: Vec<String> = p.partition.0.iter().map(|(_, v)| v.clone()).collect();
            match existing.get(&values) {
                Some(at) if folder(at) == folder(&p.location) => done.already_registered.push(p.partition.path()),
                Some(at) => {
                    return Err(AwsError::Invalid(format!(
                        "partition {} of Glue table {database}.{table} is registered at {at}, but this data is at {}; \
                         two outputs cannot share one table",
                        p.partition.path(),
                        p.location
                    )));
                }
                None => todo.push((values, *p)),
            }
        }
        for batch in todo.chunks(PARTITION_BATCH) {
            let mut req = self.client.batch_create_partition().database_name(database).table_name(table);
            for (values, p) in batch {
                let mut sd = def.storage_descriptor().cloned().unwrap_or_else(|| StorageDescriptor::builder().build());
                sd.location = Some(p.location.clone());
                let input = PartitionInput::builder()
                    .set_values(Some(values.clone()))
                    .storage_descriptor(sd)
                    .parameters("fleet.rows", p.rows().to_string())
                    .parameters("fleet.run_id", p.markers.first().map_or("", |m| m.run_id.as_str()))
                    .build();
                req = req.partition_input_list(input);
            }
            let out = req.send().await.map_err(|e| api_error("Glue", "BatchCreatePartition", e))?;
            let mut failed: HashMap<Vec<String>, String> = HashMap::new();
            for e in out.errors() {
                let detail = e.error_detail();
                let code = detail.and_then(|d| d.error_code()).unwrap_or_default();
                let msg = if code == "AlreadyExistsException" {
                    String::new()
                } else {
                    format!("{code}: {}", detail.and_then(|d| d.error_message()).unwrap_or_default())
                };
                failed.insert(e.partition_values().to_vec(), msg);
            }
            for (values, p) in batch {
                match failed.get(values) {
                    None => {
                        tracing::info!(database, table, partition = %p.partition.path(), rows = p.rows(), "Registered the partition.");
                        done.created.push(p.partition.path());
                    }
                    Some(m) if m.is_empty() => done.already_registered.push(p.partition.path()),
                    Some(m) => {
                        return Err(AwsError::Api {
                            service: "Glue",
                            operation: "BatchCreatePartition",
                            message: format!("partition {} of {database}.{table}: {m}", p.partition.path()),
                        });
                    }
                }
            }
        }
        Ok(done)
    }
}

/// A location with exactly one trailing `/`, for comparing folders.
fn folder(location: &str) -> String {
    format!("{}/", location.trim_end_matches('/'))
}

/// How [`sync_table`] registers a table's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// The table location (`s3://bucket/features/`).
    pub location: String,
    pub database: String,
    pub table: String,
    /// Partition projection (table properties) instead of registering
    /// partitions; without it, projection parameters a table has are removed.
    pub projection: bool,
}

/// What [`sync_table`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub table: Option<TableChange>,
    pub registered: Registered,
    /// Partitions with some but not all commit markers: `(path, committed, shard count)`.
    pub incomplete: Vec<(String, usize, u32)>,
}

/// Brings the Glue table in line with the committed data under its location:
/// creates or evolves the table from the Parquet footers of committed files,
/// then registers every partition whose shards have all written their commit
/// marker (or, with projection, sets the projection properties instead).
/// Partitions still missing markers are left out and reported.
pub async fn sync_table(glue: &Glue, opts: &SyncOptions) -> Result<SyncReport> {
    let parts = fleet_catalog::committed_partitions(&opts.location).await?;
    let (complete, partial): (Vec<&CommittedPartition>, Vec<&CommittedPartition>) =
        parts.iter().partition(|p| p.is_complete());
    let incomplete: Vec<(String, usize, u32)> =
        partial.iter().map(|p| (p.partition.path(), p.markers.len(), p.shard_count)).collect();
    for (path, n, count) in &incomplete {
        tracing::warn!(partition = %path, committed = n, shards = count, "Not registering a partition whose shards have not all committed.");
    }
    let Some(first) = complete.first() else {
        tracing::warn!(location = %opts.location, "No complete partition to register.");
        return Ok(SyncReport { table: None, registered: Registered::default(), incomplete });
    };
    let keys: Vec<&str> = first.partition.keys().collect();
    if let Some(p) = complete.iter().find(|p| p.partition.keys().ne(keys.iter().copied())) {
        return Err(fleet_catalog::CatalogError::Partitions {
            file: p.location.clone(),
            found: p.partition.0.iter().map(|(k, _)| k.clone()).collect(),
            expected: keys.iter().map(|k| k.to_string()).collect(),
        }
        .into());
    }
    // the schema: one footer per run (every shard of a run writes one schema)
    let mut union = SchemaUnion::default();
    let mut seen_runs = BTreeSet::new();
    for p in &complete {
        for m in &p.markers {
            let Some(f) = m.files.first() else { continue }; // a shard with no rows wrote no file
            if !seen_runs.insert(m.run_id.clone()) {
                continue;
            }
            let uri = format!("{}/{}", p.table, f.key);
            let obj = match fleet_store::list_inputs(&uri).await {
                Ok(o) => o.into_iter().next(),
                Err(fleet_store::StoreError::NoInput { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let Some(obj) = obj else {
                return Err(AwsError::Invalid(format!(
                    "{uri}, listed by the commit marker of shard {} of {} in {}, is missing",
                    m.shard_index,
                    m.shard_count,
                    p.partition.path()
                )));
            };
            union.add(&uri, &*fleet_store::parquet_schema(&obj).await?)?;
        }
    }
    if union.is_empty() {
        return Err(AwsError::Invalid(format!(
            "the committed partitions under {} list no data files to read a schema from",
            opts.location
        )));
    }
    let mut wanted = fleet_catalog::table_input(
        &opts.database,
        &opts.table,
        &opts.location,
        &union.into_schema(),
        keys.iter().copied(),
        "ZSTD",
    )["TableInput"]
        .clone();
    if opts.projection {
        let seen: Vec<&fleet_contract::Partition> = complete.iter().map(|p| &p.partition).collect();
        for (k, v) in projection_parameters(&opts.location, &seen) {
            wanted["Parameters"][k] = json!(v);
        }
    }
    let change = glue.ensure_table(&opts.database, &wanted).await.map_err(|e| match e {
        AwsError::PartitionKeys { database, table, existing, found, .. } => {
            AwsError::PartitionKeys { database, table, location: opts.location.clone(), existing, found }
        }
        e => e,
    })?;
    let registered = if opts.projection {
        Registered::default()
    } else {
        glue.register_partitions(&opts.database, &opts.table, &complete).await?
    };
    Ok(SyncReport { table: Some(change), registered, incomplete })
}

/// Athena partition projection for the keys of `seen`: a key whose values
/// are all dates (`2025-07-01`) is a `date` projection from the earliest one
/// to `NOW`; any other key an `enum` of the values seen (so a sync after new
/// values arrive widens it).
pub fn projection_parameters(location: &str, seen: &[&fleet_contract::Partition]) -> Vec<(String, String)> {
    let mut out = vec![("projection.enabled".to_string(), "true".to_string())];
    let Some(first) = seen.first() else { return out };
    let mut template = location.trim_end_matches('/').to_string();
    for (i, (k, _)) in first.0.iter().enumerate() {
        let values: BTreeSet<&str> = seen.iter().filter_map(|p| p.0.get(i).map(|(_, v)| v.as_str())).collect();
        if values.iter().all(|v| v.parse::<fleet_contract::Date>().is_ok()) {
            let earliest = values.first().copied().unwrap_or_default();
            out.push((format!("projection.{k}.type"), "date".into()));
            out.push((format!("projection.{k}.format"), "yyyy-MM-dd".into()));
            out.push((format!("projection.{k}.range"), format!("{earliest},NOW")));
            out.push((format!("projection.{k}.interval"), "1".into()));
            out.push((format!("projection.{k}.interval.unit"), "DAYS".into()));
        } else {
            out.push((format!("projection.{k}.type"), "enum".into()));
            out.push((format!("projection.{k}.values"), values.into_iter().collect::<Vec<_>>().join(",")));
        }
        template.push_str(&format!("/{k}=${{{k}}}"));
    }
    out.push(("storage.location.template".into(), format!("{template}/")));
    out
}

/// Table parameters that belong to partition projection: removed when a
/// definition without projection is applied.
fn is_projection_parameter(k: &str) -> bool {
    k.starts_with("projection.") || k == "storage.location.template"
}

/// What applying a wanted definition to an existing table changes.
#[derive(Debug, Default, PartialEq)]
struct Evolution {
    added: Vec<Value>,
    set: Vec<(String, String)>,
    removed: Vec<String>,
}

impl Evolution {
    fn change(&self) -> TableChange {
        if self.added.is_empty() && self.set.is_empty() && self.removed.is_empty() {
            return TableChange::Unchanged;
        }
        TableChange::Updated {
            added_columns: self.added.iter().filter_map(|c| str_of(c, "Name").map(str::to_string)).collect(),
            changed_parameters: self.set.iter().map(|(k, _)| k.clone()).chain(self.removed.iter().cloned()).collect(),
        }
    }

    /// The `TableInput` for UpdateTable: the table as Glue has it, with the
    /// columns appended and the parameters set or removed.
    fn apply(&self, t: &Table) -> Result<TableInput> {
        let mut sd = t.storage_descriptor().cloned().unwrap_or_else(|| StorageDescriptor::builder().build());
        let mut cols = sd.columns.take().unwrap_or_default();
        cols.extend(columns(&Value::Array(self.added.clone()))?.unwrap_or_default());
        sd.columns = Some(cols);
        let mut params = t.parameters().cloned().unwrap_or_default();
        for (k, v) in &self.set {
            params.insert(k.clone(), v.clone());
        }
        for k in &self.removed {
            params.remove(k);
        }
        TableInput::builder()
            .name(t.name())
            .set_description(t.description().map(str::to_string))
            .set_owner(t.owner().map(str::to_string))
            .retention(t.retention())
            .storage_descriptor(sd)
            .set_partition_keys(Some(t.partition_keys().to_vec()))
            .set_view_original_text(t.view_original_text().map(str::to_string))
            .set_view_expanded_text(t.view_expanded_text().map(str::to_string))
            .set_table_type(t.table_type().map(str::to_string))
            .set_parameters(Some(params))
            .set_target_table(t.target_table().cloned())
            .build()
            .map_err(|e| AwsError::Invalid(format!("TableInput: {e}")))
    }
}

/// What `wanted` changes in `existing` (both `TableInput` JSON): the columns
/// it lacks (appended), the parameters it sets, and the projection
/// parameters it no longer has; or why the two cannot be merged (another
/// location, other partition keys, a changed column type).
fn evolve(database: &str, existing: &Value, wanted: &Value) -> Result<Evolution> {
    let table = str_of(existing, "Name").unwrap_or_default().to_string();
    let location = |v: &Value| str_of(&v["StorageDescriptor"], "Location").map(folder);
    if let (Some(have), Some(want)) = (location(existing), location(wanted))
        && have != want
    {
        return Err(AwsError::Invalid(format!(
            "Glue table {database}.{table} is located at {have}, not {want}; two outputs cannot share one table \
             (set FLEET_GLUE_TABLE or --table to another name)"
        )));
    }
    let names = |v: &Value, field: &str| -> Vec<String> {
        v[field].as_array().into_iter().flatten().filter_map(|c| str_of(c, "Name").map(str::to_string)).collect()
    };
    let (have_keys, want_keys) = (names(existing, "PartitionKeys"), names(wanted, "PartitionKeys"));
    if !have_keys.iter().map(|k| k.to_ascii_lowercase()).eq(want_keys.iter().map(|k| k.to_ascii_lowercase())) {
        return Err(AwsError::PartitionKeys {
            database: database.into(),
            table,
            location: location(wanted).unwrap_or_default(),
            existing: have_keys,
            found: want_keys,
        });
    }
    let have: Vec<(String, String)> = existing["StorageDescriptor"]["Columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                str_of(c, "Name").unwrap_or_default().to_ascii_lowercase(),
                str_of(c, "Type").unwrap_or_default().to_ascii_lowercase(),
            )
        })
        .collect();
    let mut plan = Evolution::default();
    for c in wanted["StorageDescriptor"]["Columns"].as_array().into_iter().flatten() {
        let name = str_of(c, "Name").unwrap_or_default();
        let ty = str_of(c, "Type").unwrap_or_default();
        match have.iter().find(|(n, _)| *n == name.to_ascii_lowercase()) {
            Some((_, t)) if *t != ty.to_ascii_lowercase() => {
                return Err(AwsError::IncompatibleType {
                    database: database.into(),
                    table,
                    column: name.into(),
                    existing: t.clone(),
                    found: ty.into(),
                });
            }
            Some(_) => {}
            None => plan.added.push(c.clone()),
        }
    }
    let want_params = wanted["Parameters"].as_object();
    for (k, v) in want_params.into_iter().flatten() {
        if let Some(v) = v.as_str()
            && existing["Parameters"][k.as_str()].as_str() != Some(v)
        {
            plan.set.push((k.clone(), v.to_string()));
        }
    }
    for k in existing["Parameters"].as_object().into_iter().flat_map(|m| m.keys()) {
        if is_projection_parameter(k) && !want_params.is_some_and(|m| m.contains_key(k)) {
            plan.removed.push(k.clone());
        }
    }
    Ok(plan)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn string_map(v: &Value) -> Option<HashMap<String, String>> {
    v.as_object().map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
}

fn columns(v: &Value) -> Result<Option<Vec<Column>>> {
    let Some(cols) = v.as_array() else { return Ok(None) };
    cols.iter()
        .map(|c| {
            Column::builder()
                .set_name(str_of(c, "Name").map(str::to_string))
                .set_type(str_of(c, "Type").map(str::to_string))
                .set_comment(str_of(c, "Comment").map(str::to_string))
                .build()
                .map_err(|e| AwsError::Invalid(format!("column {c}: {e}")))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn storage_descriptor(sd: &Value) -> Result<StorageDescriptor> {
    let serde = &sd["SerdeInfo"];
    Ok(StorageDescriptor::builder()
        .set_columns(columns(&sd["Columns"])?)
        .set_location(str_of(sd, "Location").map(str::to_string))
        .set_input_format(str_of(sd, "InputFormat").map(str::to_string))
        .set_output_format(str_of(sd, "OutputFormat").map(str::to_string))
        .set_compressed(sd.get("Compressed").and_then(Value::as_bool))
        .set_parameters(string_map(&sd["Parameters"]))
        .set_serde_info(serde.is_object().then(|| {
            SerDeInfo::builder()
                .set_name(str_of(serde, "Name").map(str::to_string))
                .set_serialization_library(str_of(serde, "SerializationLibrary").map(str::to_string))
                .set_parameters(string_map(&serde["Parameters"]))
                .build()
        }))
        .build())
}

/// A `TableInput` JSON (the `TableInput` member of what `aws glue
/// create-table --cli-input-json` takes) as the SDK's type.
pub fn table_input(v: &Value) -> Result<TableInput> {
    TableInput::builder()
        .set_name(str_of(v, "Name").map(str::to_string))
        .set_description(str_of(v, "Description").map(str::to_string))
        .set_owner(str_of(v, "Owner").map(str::to_string))
        .set_table_type(str_of(v, "TableType").map(str::to_string))
        .set_parameters(string_map(&v["Parameters"]))
        .set_partition_keys(columns(&v["PartitionKeys"])?)
        .set_storage_descriptor(
            v["StorageDescriptor"].is_object().then(|| storage_descriptor(&v["StorageDescriptor"])).transpose()?,
        )
        .build()
        .map_err(|e| AwsError::Invalid(format!("TableInput: {e}")))
}

fn columns_json(cols: &[Column]) -> Value {
    Value::Array(
        cols.iter()
            .map(|c| {
                let mut o = json!({"Name": c.name(), "Type": c.r#type().unwrap_or_default()});
                if let Some(comment) = c.comment() {
                    o["Comment"] = json!(comment);
                }
                o
            })
            .collect(),
    )
}

fn sorted(m: Option<&HashMap<String, String>>) -> Value {
    json!(m.map(|m| m.iter().collect::<BTreeMap<_, _>>()).unwrap_or_default())
}

/// A Glue table as `TableInput` JSON (the fields a table definition carries).
pub fn table_json(t: &Table) -> Value {
    let mut v = json!({
        "Name": t.name(),
        "TableType": t.table_type().unwrap_or_default(),
        "Parameters": sorted(t.parameters()),
        "PartitionKeys": columns_json(t.partition_keys()),
    });
    if let Some(d) = t.description() {
        v["Description"] = json!(d);
    }
    if let Some(o) = t.owner() {
        v["Owner"] = json!(o);
    }
    if let Some(sd) = t.storage_descriptor() {
        let mut s = json!({
            "Columns": columns_json(sd.columns()),
            "Location": sd.location().unwrap_or_default(),
            "InputFormat": sd.input_format().unwrap_or_default(),
            "OutputFormat": sd.output_format().unwrap_or_default(),
            "Compressed": sd.compressed(),
            "Parameters": sorted(sd.parameters()),
        });
        if let Some(serde) = sd.serde_info() {
            s["SerdeInfo"] = json!({
                "SerializationLibrary": serde.serialization_library().unwrap_or_default(),
                "Parameters": sorted(serde.parameters()),
            });
        }
        v["StorageDescriptor"] = s;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field, Schema};
    use fleet_contract::Partition;

    fn def(cols: &[(&str, DataType)]) -> Value {
        let schema = Schema::new(cols.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>());
        fleet_catalog::table_input("db", "t", "s3://b/t", &schema, ["dt"], "ZSTD")["TableInput"].clone()
    }

    #[test]
    fn json_round_trips_through_the_sdk_type() {
        let v = def(&[("pid", DataType::Utf8), ("n", DataType::Int16)]);
        let ti = table_input(&v).unwrap();
        assert_eq!(ti.name(), "t");
        let sd = ti.storage_descriptor().unwrap();
        assert_eq!(sd.columns()[1].r#type(), Some("smallint"));
        assert_eq!(
            sd.serde_info().unwrap().serialization_library(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
        assert_eq!(ti.parameters().unwrap()["classification"], "parquet");
        assert_eq!(ti.partition_keys()[0].name(), "dt");
    }

    #[test]
    fn evolution_appends_columns_and_refuses_type_changes() {
        let old = def(&[("pid", DataType::Utf8), ("n", DataType::Int16)]);
        assert_eq!(evolve("db", &old, &old).unwrap().change(), TableChange::Unchanged);
        let new = def(&[("pid", DataType::Utf8), ("m", DataType::Float64), ("n", DataType::Int16)]);
        let plan = evolve("db", &old, &new).unwrap();
        assert_eq!(plan.change(), TableChange::Updated { added_columns: vec!["m".into()], changed_parameters: vec![] });
        let existing = Table::builder()
            .name("t")
            .retention(7)
            .storage_descriptor(
                StorageDescriptor::builder()
                    .columns(Column::builder().name("pid").r#type("string").build().unwrap())
                    .columns(Column::builder().name("n").r#type("smallint").build().unwrap())
                    .number_of_buckets(3)
                    .build(),
            )
            .parameters("classification", "parquet")
            .build()
            .unwrap();
        let input = plan.apply(&existing).unwrap();
        let sd = input.storage_descriptor().unwrap();
        let names: Vec<&str> = sd.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["pid", "n", "m"], "existing columns keep their places");
        assert_eq!((input.retention(), sd.number_of_buckets()), (7, 3), "fields fleet does not manage are kept");
        let bad = def(&[("pid", DataType::Utf8), ("n", DataType::Utf8)]);
        let e = evolve("db", &old, &bad).unwrap_err().to_string();
        assert!(e.starts_with("Glue table db.t: column `n` is smallint in Glue but string in the data"), "{e}");
        let mut other_keys = old.clone();
        other_keys["PartitionKeys"] = json!([{"Name": "run", "Type": "string"}]);
        assert!(matches!(evolve("db", &old, &other_keys), Err(AwsError::PartitionKeys { .. })));
        let mut elsewhere = old.clone();
        elsewhere["StorageDescriptor"]["Location"] = json!("s3://other/t");
        let e = evolve("db", &old, &elsewhere).unwrap_err().to_string();
        assert!(e.starts_with("Glue table db.t is located at s3://b/t/, not s3://other/t/"), "{e}");
    }

    #[test]
    fn turning_projection_off_removes_its_parameters() {
        let plain = def(&[("pid", DataType::Utf8)]);
        let mut projected = plain.clone();
        projected["Parameters"]["projection.enabled"] = json!("true");
        projected["Parameters"]["storage.location.template"] = json!("s3://b/t/dt=${dt}/");
        let on = evolve("db", &plain, &projected).unwrap();
        assert_eq!(on.set.len(), 2);
        let off = evolve("db", &projected, &plain).unwrap();
        assert_eq!(off.removed, ["projection.enabled", "storage.location.template"]);
        assert!(off.set.is_empty());
    }

    #[test]
    fn projection_for_dates_and_other_keys() {
        let a = Partition(vec![("dt".into(), "2025-07-02".into()), ("region".into(), "eu".into())]);
        let b = Partition(vec![("dt".into(), "2025-06-30".into()), ("region".into(), "us".into())]);
        let p: BTreeMap<String, String> = projection_parameters("s3://b/t/", &[&a, &b]).into_iter().collect();
        assert_eq!(p["projection.enabled"], "true");
        assert_eq!(p["projection.dt.type"], "date");
        assert_eq!(p["projection.dt.range"], "2025-06-30,NOW");
        assert_eq!(p["projection.dt.format"], "yyyy-MM-dd");
        assert_eq!(p["projection.region.type"], "enum");
        assert_eq!(p["projection.region.values"], "eu,us");
        assert_eq!(p["storage.location.template"], "s3://b/t/dt=${dt}/region=${region}/");
    }
}
