//! The table definition as a Glue `TableInput`, ready for
//! `aws glue create-table --cli-input-json file://table_input.json`.

use arrow_schema::{DataType, Schema};
use fleet_contract::Partition;
use serde_json::{Value, json};

/// The Hive/Athena type of an Arrow type, or `None` when Glue has no match.
pub fn hive_type(t: &DataType) -> Option<&'static str> {
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

/// `{"DatabaseName": ..., "TableInput": {...}}` for an external Parquet table.
pub fn table_input(
    database: &str,
    table: &str,
    location: &str,
    schema: &Schema,
    partition: &Partition,
    compression: &str,
) -> Value {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"Name": f.name(), "Type": hive_type(f.data_type()).unwrap_or("string")}))
        .collect();
    let keys: Vec<Value> = partition.0.iter().map(|(k, _)| json!({"Name": k, "Type": "string"})).collect();
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
    pub files: usize,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    #[error(transparent)]
    Store(#[from] fleet_store::StoreError),
    #[error("no Parquet files under {uri}")]
    Empty { uri: String },
    #[error("column `{column}` is {first} in {first_file} but {other} in {other_file}; a Glue table needs one type")]
    Incompatible { column: String, first: String, first_file: String, other: String, other_file: String },
    #[error("{file} has no Glue type for column `{column}` ({data_type})")]
    Unsupported { file: String, column: String, data_type: String },
    #[error("{file}: partition folders {found:?} differ from {expected:?} of the first file")]
    Partitions { file: String, found: Vec<String>, expected: Vec<String> },
}

/// Discovers a table from the footers of the Parquet files under `uri`
/// (paths with a segment starting with `_` or `.` are skipped, as Athena
/// does): the union of their columns in first-seen order, and the partition
/// keys of their `key=value` folders. No crawler, and no data read.
pub async fn discover(uri: &str) -> Result<Discovered, DiscoverError> {
    let objs = match fleet_store::list_inputs(uri).await {
        Ok(o) => o,
        Err(fleet_store::StoreError::NoInput { uri }) => return Err(DiscoverError::Empty { uri }),
        Err(e) => return Err(e.into()),
    };
    let base = fleet_store::Location::parse(uri)?;
    let mut fields: Vec<(arrow_schema::Field, String)> = Vec::new();
    let mut keys: Option<Vec<String>> = None;
    let mut files = 0;
    for obj in objs.iter().filter(|o| o.name().ends_with(".parquet")) {
        let file = obj.uri();
        let rel =
            obj.path.as_ref().strip_prefix(base.path().as_ref()).unwrap_or(obj.path.as_ref()).trim_start_matches('/');
        let found: Vec<String> =
            rel.split('/').filter_map(|seg| seg.split_once('=').map(|(k, _)| k.to_string())).collect();
        match &keys {
            None => keys = Some(found),
            Some(k) if *k != found => {
                return Err(DiscoverError::Partitions { file, found, expected: k.clone() });
            }
            Some(_) => {}
        }
        let schema = fleet_store::parquet_schema(obj).await?;
        for f in schema.fields() {
            if hive_type(f.data_type()).is_none() {
                return Err(DiscoverError::Unsupported {
                    file,
                    column: f.name().clone(),
                    data_type: f.data_type().to_string(),
                });
            }
            match fields.iter().find(|(g, _)| g.name() == f.name()) {
                None => fields.push((f.as_ref().clone().with_nullable(true), file.clone())),
                Some((g, first_file)) if hive_type(g.data_type()) != hive_type(f.data_type()) => {
                    return Err(DiscoverError::Incompatible {
                        column: f.name().clone(),
                        first: hive_type(g.data_type()).unwrap_or_default().to_string(),
                        first_file: first_file.clone(),
                        other: hive_type(f.data_type()).unwrap_or_default().to_string(),
                        other_file: file,
                    });
                }
                Some(_) => {}
            }
        }
        files += 1;
    }
    if files == 0 {
        return Err(DiscoverError::Empty { uri: uri.to_string() });
    }
    Ok(Discovered {
        schema: Schema::new(fields.into_iter().map(|(f, _)| f).collect::<Vec<_>>()),
        partition_keys: keys.unwrap_or_default(),
        files,
    })
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
        let v = table_input("fleet", "features", "s3://b/t", &schema, &p, "ZSTD");
        assert_eq!(v["TableInput"]["StorageDescriptor"]["Location"], "s3://b/t/");
        assert_eq!(v["TableInput"]["StorageDescriptor"]["Columns"][1], json!({"Name": "n", "Type": "smallint"}));
        assert_eq!(v["TableInput"]["PartitionKeys"], json!([{"Name": "dt", "Type": "string"}]));
        assert_eq!(v["TableInput"]["Parameters"]["classification"], "parquet");
    }
}
