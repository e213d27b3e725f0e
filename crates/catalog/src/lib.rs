//! The catalog of a table the fleet writes: its Glue `TableInput` (what
//! `aws glue create-table --cli-input-json` takes), its schema discovered from
//! Parquet footers, and the commit markers that say which partitions are
//! complete. Workers write markers ([`CommitMarker`] at [`commit_key`]);
//! the finalize step (`fleetctl catalog sync`, `fleet-aws`) reads them back
//! with [`committed_partitions`]. Nothing here calls AWS.
//!
//! ```
//! use arrow_schema::{DataType, Field, Schema};
//! use fleet_contract::{Partition, Shard};
//! let schema = Schema::new(vec![Field::new("pid", DataType::Utf8, false)]);
//! let p = Partition::parse("dt=2025-07-01").unwrap();
//! let ti = fleet_catalog::table_input("lake", "features", "s3://b/features", &schema, p.keys(), "ZSTD");
//! assert_eq!(ti["TableInput"]["StorageDescriptor"]["Location"], "s3://b/features/");
//! assert_eq!(fleet_catalog::commit_key(&p, Shard { index: 7, count: 50 }), "dt=2025-07-01/_commits/shard-00007-of-00050.json");
//! ```

use arrow_schema::{DataType, Schema};
use fleet_contract::{Partition, Shard};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One file a shard wrote, as listed in its commit marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    /// Key relative to the table location.
    pub key: String,
    /// The input it was made from (an object's URI, or the shard's input).
    pub source: String,
    pub rows: u64,
    pub bytes: u64,
    pub crc32c: String,
}

/// `<partition>/_commits/<shard>.json`, written last: the shard's files in
/// this partition are complete when it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitMarker {
    pub run_id: String,
    pub shard_index: u32,
    pub shard_count: u32,
    pub partition: String,
    pub rows: u64,
    pub files: Vec<CommittedFile>,
    /// The shard's rejects file, for workers that reject rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_key: Option<String>,
    #[serde(default)]
    pub rejected_cells: u64,
}

/// `<partition>/_commits/shard-00007-of-00050.json`: the key of a shard's
/// commit marker, relative to the table location.
pub fn commit_key(partition: &Partition, shard: Shard) -> String {
    match partition.path() {
        // an output that is not partitioned (trainer-feeder's)
        p if p.is_empty() => format!("_commits/{}.json", shard.name()),
        p => format!("{p}/_commits/{}.json", shard.name()),
    }
}

/// The Hive/Athena type of an Arrow type (`struct<a:bigint,b:array<string>>`,
/// `decimal(38,0)`, `timestamp`), or `None` when Glue has no match.
pub fn hive_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Struct(fields) => {
            let members: Option<Vec<String>> =
                fields.iter().map(|f| Some(format!("{}:{}", f.name(), hive_type(f.data_type())?))).collect();
            format!("struct<{}>", members?.join(","))
        }
        DataType::List(e) | DataType::LargeList(e) => format!("array<{}>", hive_type(e.data_type())?),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Timestamp(..) => "timestamp".into(),
        t => hive_scalar(t)?.to_string(),
    })
}

fn hive_scalar(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Boolean => "boolean",
        DataType::Int8 => "tinyint",
        DataType::Int16 => "smallint",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Date32 => "date",
        DataType::Binary | DataType::LargeBinary => "binary",
        _ => return None,
    })
}

/// `{"DatabaseName": ..., "TableInput": {...}}` for an external Parquet
/// table partitioned by `partition_keys` (string columns).
pub fn table_input<'k>(
    database: &str,
    table: &str,
    location: &str,
    schema: &Schema,
    partition_keys: impl IntoIterator<Item = &'k str>,
    compression: &str,
) -> Value {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"Name": f.name(), "Type": hive_type(f.data_type()).unwrap_or_else(|| "string".into())}))
        .collect();
    let keys: Vec<Value> = partition_keys.into_iter().map(|k| json!({"Name": k, "Type": "string"})).collect();
    let location = if location.ends_with('/') { location.to_string() } else { format!("{location}/") };
    json!({
        "DatabaseName": database,
        "TableInput": {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": compression},
            "PartitionKeys": keys,
            "StorageDescriptor": {
                "Columns": columns,
                "Location": location,
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    "Parameters": {"serialization.format": "1"}
                }
            }
        }
    })
}

/// A table found by reading Parquet footers under a location.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub schema: Schema,
    /// Partition keys, in path order, from `key=value` folders.
    pub partition_keys: Vec<String>,
    /// The partitions seen (distinct, sorted by path).
    pub partitions: Vec<Partition>,
    pub files: usize,
}

impl Discovered {
    /// The table as a Glue `TableInput` JSON (`{"DatabaseName", "TableInput"}`).
    pub fn table_input(&self, database: &str, table: &str, location: &str) -> Value {
        table_input(database, table, location, &self.schema, self.partition_keys.iter().map(String::as_str), "ZSTD")
    }
}

/// Why a catalog operation on the files of a table failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] fleet_store::StoreError),
    #[error("no Parquet files under {uri}")]
    Empty { uri: String },
    #[error("column `{column}` is {first} in {first_file} but {other} in {other_file}; a Glue table needs one type")]
    Incompatible { column: String, first: String, first_file: String, other: String, other_file: String },
    #[error("{file} has no Glue type for column `{column}` ({data_type})")]
    Unsupported { file: String, column: String, data_type: String },
    #[error("{file}: partition keys {found:?} differ from {expected:?}, the keys of the rest of the table")]
    Partitions { file: String, found: Vec<String>, expected: Vec<String> },
    #[error("{uri} is not a commit marker: {source}")]
    Marker { uri: String, source: serde_json::Error },
}

/// The union of the columns of several Parquet files, in first-seen order,
/// refusing a column whose Glue type differs between files.
#[derive(Debug, Default)]
pub struct SchemaUnion {
    fields: Vec<(arrow_schema::Field, String)>,
}

impl SchemaUnion {
    /// Adds the columns of `file`.
    pub fn add(&mut self, file: &str, schema: &Schema) -> Result<(), CatalogError> {
        for f in schema.fields() {
            let Some(t) = hive_type(f.data_type()) else {
                return Err(CatalogError::Unsupported {
                    file: file.to_string(),
                    column: f.name().clone(),
                    data_type: f.data_type().to_string(),
                });
            };
            match self.fields.iter().find(|(g, _)| g.name() == f.name()) {
                None => self.fields.push((f.as_ref().clone().with_nullable(true), file.to_string())),
                Some((g, first_file)) if hive_type(g.data_type()).as_ref() != Some(&t) => {
                    return Err(CatalogError::Incompatible {
                        column: f.name().clone(),
                        first: hive_type(g.data_type()).unwrap_or_default(),
                        first_file: first_file.clone(),
                        other: t,
                        other_file: file.to_string(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn into_schema(self) -> Schema {
        Schema::new(self.fields.into_iter().map(|(f, _)| f).collect::<Vec<_>>())
    }
}

/// Discovers a table from the footers of the Parquet files under `uri`
/// (paths with a segment starting with `_` or `.` are skipped, as Athena
/// does): the union of their columns in first-seen order, and the partition
/// keys of their `key=value` folders. No crawler, and no data read.
pub async fn discover(uri: &str) -> Result<Discovered, CatalogError> {
    let objs = match fleet_store::list_inputs(uri).await {
        Ok(o) => o,
        Err(fleet_store::StoreError::NoInput { uri }) => return Err(CatalogError::Empty { uri }),
        Err(e) => return Err(e.into()),
    };
    let base = fleet_store::Location::parse(uri)?;
    let mut union = SchemaUnion::default();
    let mut keys: Option<Vec<String>> = None;
    let mut partitions = std::collections::BTreeSet::new();
    let mut files = 0;
    for obj in objs.iter().filter(|o| o.name().ends_with(".parquet")) {
        let file = obj.uri();
        let rel =
            obj.path.as_ref().strip_prefix(base.path().as_ref()).unwrap_or(obj.path.as_ref()).trim_start_matches('/');
        let found: Vec<String> =
            rel.split('/').filter_map(|seg| seg.split_once('=').map(|(k, _)| k.to_string())).collect();
        if let Some(p) = Partition::of_path(rel) {
            partitions.insert(p);
        }
        match &keys {
            None => keys = Some(found),
            Some(k) if *k != found => {
                return Err(CatalogError::Partitions { file, found, expected: k.clone() });
            }
            Some(_) => {}
        }
        union.add(&file, &*fleet_store::parquet_schema(obj).await?)?;
        files += 1;
    }
    if files == 0 {
        return Err(CatalogError::Empty { uri: uri.to_string() });
    }
    Ok(Discovered {
        schema: union.into_schema(),
        partition_keys: keys.unwrap_or_default(),
        partitions: partitions.into_iter().collect(),
        files,
    })
}

/// A partition of a table as its commit markers describe it.
#[derive(Debug, Clone)]
pub struct CommittedPartition {
    /// The table location, without a trailing `/`.
    pub table: String,
    pub partition: Partition,
    /// `<table>/<partition path>/`.
    pub location: String,
    /// The shard count of the markers considered (the complete set when there is one).
    pub shard_count: u32,
    /// The markers of that shard count, by shard index.
    pub markers: Vec<CommitMarker>,
}

impl CommittedPartition {
    /// Every shard of the run committed: the partition may be registered.
    pub fn is_complete(&self) -> bool {
        self.markers.len() == self.shard_count as usize
    }

    pub fn rows(&self) -> u64 {
        self.markers.iter().map(|m| m.rows).sum()
    }

    /// The data files the markers list, as URIs.
    pub fn files(&self) -> impl Iterator<Item = String> + '_ {
        self.markers.iter().flat_map(|m| m.files.iter().map(|f| format!("{}/{}", self.table, f.key)))
    }
}

/// The partitions under a table location that have commit markers
/// (`<partition>/_commits/shard-NNNNN-of-MMMMM.json`), sorted by path. A
/// partition is complete when every shard of one shard count committed; a
/// partition written again with another shard count is judged by the shard
/// count of its newest marker.
pub async fn committed_partitions(table_uri: &str) -> Result<Vec<CommittedPartition>, CatalogError> {
    use futures::{StreamExt, TryStreamExt};
    use std::collections::BTreeMap;

    let table = fleet_store::Location::parse(table_uri)?;
    let base = table.uri().trim_end_matches('/').to_string();
    // partition → shard count → shard index → (marker, when written)
    type Markers = BTreeMap<u32, BTreeMap<u32, (object_store::path::Path, i64)>>;
    let mut found: BTreeMap<String, Markers> = BTreeMap::new();
    for meta in table.list().await? {
        let key = meta.location.as_ref();
        let rel = key.strip_prefix(table.path().as_ref()).unwrap_or(key).trim_start_matches('/');
        let Some((part, name)) = rel.rsplit_once("/_commits/") else { continue };
        let Some((index, count)) = shard_of(name) else { continue };
        if Partition::parse(part).is_none() {
            continue;
        }
        let stamp = meta.last_modified.timestamp_millis();
        found.entry(part.to_string()).or_default().entry(count).or_default().insert(index, (meta.location, stamp));
    }
    let mut out = Vec::new();
    for (part, by_count) in found {
        // The shard count of the newest marker wins: a partition written
        // again with another shard count is judged by the latest run only,
        // never by an older complete set.
        let (count, markers) = by_count
            .into_iter()
            .max_by_key(|(_, m)| m.values().map(|(_, t)| *t).max())
            .expect("a partition has at least one marker");
        let paths: Vec<object_store::path::Path> = markers.into_values().map(|(p, _)| p).collect();
        let markers: Vec<CommitMarker> = futures::stream::iter(paths)
            .map(|path| {
                let table = &table;
                async move {
                    let bytes = table.get_path(&path).await?;
                    serde_json::from_slice::<CommitMarker>(&bytes)
                        .map_err(|source| CatalogError::Marker { uri: table.uri_of(&path), source })
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        out.push(CommittedPartition {
            table: base.clone(),
            partition: Partition::parse(&part).expect("checked above"),
            location: format!("{base}/{part}/"),
            shard_count: count,
            markers,
        });
    }
    Ok(out)
}

/// `shard-00007-of-00050.json` → (7, 50).
fn shard_of(name: &str) -> Option<(u32, u32)> {
    let s = Shard::from_name(name.strip_suffix(".json")?)?;
    Some((s.index, s.count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Field;

    #[test]
    fn table_input_shape() {
        let schema =
            Schema::new(vec![Field::new("pid", DataType::Utf8, false), Field::new("n", DataType::Int16, true)]);
        let p = Partition(vec![("dt".into(), "2025-07-01".into())]);
        let v = table_input("fleet", "features", "s3://b/t", &schema, p.keys(), "ZSTD");
        assert_eq!(v["TableInput"]["StorageDescriptor"]["Location"], "s3://b/t/");
        assert_eq!(v["TableInput"]["StorageDescriptor"]["Columns"][1], json!({"Name": "n", "Type": "smallint"}));
        assert_eq!(v["TableInput"]["PartitionKeys"], json!([{"Name": "dt", "Type": "string"}]));
        assert_eq!(v["TableInput"]["Parameters"]["classification"], "parquet");
    }

    #[test]
    fn shard_names() {
        assert_eq!(shard_of("shard-00007-of-00050.json"), Some((7, 50)));
        assert_eq!(shard_of("shard-00050-of-00050.json"), None);
        assert_eq!(shard_of("shard-1-of-2.json.tmp"), None);
        assert_eq!(shard_of("notes.json"), None);
    }

    #[test]
    fn union_refuses_a_changed_type() {
        let a = Schema::new(vec![Field::new("n", DataType::Int16, false)]);
        let b = Schema::new(vec![Field::new("n", DataType::Utf8, true), Field::new("m", DataType::Float64, true)]);
        let mut u = SchemaUnion::default();
        u.add("a.parquet", &a).unwrap();
        let e = u.add("b.parquet", &b).unwrap_err().to_string();
        assert_eq!(e, "column `n` is smallint in a.parquet but string in b.parquet; a Glue table needs one type");
        let mut u = SchemaUnion::default();
        u.add("a.parquet", &a).unwrap();
        u.add("c.parquet", &Schema::new(vec![Field::new("m", DataType::Float64, true)])).unwrap();
        let s = u.into_schema();
        assert_eq!(s.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["n", "m"]);
        assert!(s.field(0).is_nullable());
    }
}
