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
