//! Glue over its real protocol: the moto server on loopback for Glue and
//! s3s-fs for the data, both started by `scripts/test`.

use std::collections::BTreeSet;

use fleet_aws::AwsError;
use fleet_aws::glue::{Glue, Registered, SyncOptions, TableChange, sync_table};
use fleet_catalog::CommitMarker;
use fleet_catalog::{CommittedPartition, hive_type};
use fleet_contract::Partition;
use fleet_features::{Config, FeatureParser};
use fleet_store::Location;
use fleet_synth::{Generator, Profile};
use serde_json::{Value, json};

/// Both servers, or `None` when they were not started.
fn servers(bucket: &str) -> Option<String> {
    fleet_test_support::moto_endpoint()?;
    fleet_test_support::s3_bucket(bucket)
}

/// A database name no other test (or earlier run against the same moto) uses.
fn database(name: &str) -> String {
    format!("{name}_{}_{}", std::process::id(), fleet_test_support::free_port())
}

async fn shard(input: &str, output: &str, partition: &str, index: u32, count: u32) {
    let cfg = Config::from_vars([
        ("FLEET_INPUT", input),
        ("FLEET_OUTPUT", output),
        ("FLEET_RUN_ID", "glue-test"),
        ("FLEET_THREADS", "2"),
        ("FLEET_PARTITION", partition),
        ("FLEET_SHARD_INDEX", &index.to_string()),
        ("FLEET_SHARD_COUNT", &count.to_string()),
    ])
    .unwrap();
    FeatureParser::new(cfg).await.unwrap().run().await.unwrap();
}

fn columns(t: &Value) -> Vec<(String, String)> {
    t["StorageDescriptor"]["Columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Name"].as_str().unwrap().to_string(), c["Type"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_creates_the_table_and_registers_only_complete_partitions() {
    let Some(b) = servers("fleet-glue-sync") else { return };
    let raw = format!("s3://{b}/raw/");
    let features = format!("s3://{b}/features/");
    Generator::new(Profile::Typical)
        .with_rows(600)
        .with_files(2)
        .with_seed(5)
        .write(&Location::parse(&raw).unwrap(), None)
        .await
        .unwrap();
    // dt=2025-07-01: both shards committed; dt=2025-07-02: one of two
    shard(&raw, &features, "dt=2025-07-01", 0, 2).await;
    shard(&raw, &features, "dt=2025-07-01", 1, 2).await;
    shard(&raw, &features, "dt=2025-07-02", 0, 2).await;

    let glue = Glue::from_env().await.unwrap();
    let db = database("sync");
    let opts =
        SyncOptions { location: features.clone(), database: db.clone(), table: "features".into(), projection: false };
    let report = sync_table(&glue, &opts).await.unwrap();
    assert_eq!(report.table, Some(TableChange::Created));
    assert_eq!(report.registered, Registered { created: vec!["dt=2025-07-01".into()], already_registered: vec![] });
    assert_eq!(report.incomplete, [("dt=2025-07-02".to_string(), 1, 2)]);

    // read the catalog back: the table is the data's schema
    let t = glue.get_table(&db, "features").await.unwrap().expect("the table exists");
    let marker: CommitMarker = serde_json::from_slice(
        &Location::parse(&features)
            .unwrap()
            .get_bytes("dt=2025-07-01/_commits/shard-00000-of-00002.json")
            .await
            .unwrap(),
    )
    .unwrap();
    let file = fleet_store::list_inputs(&format!("{features}{}", marker.files[0].key)).await.unwrap();
    let schema = fleet_store::parquet_schema(&file[0]).await.unwrap();
    let expected: Vec<(String, String)> =
        schema.fields().iter().map(|f| (f.name().clone(), hive_type(f.data_type()).unwrap())).collect();
    assert_eq!(columns(&t), expected);
    assert!(expected.contains(&("graduation_year".to_string(), "smallint".to_string())), "{expected:?}");
    assert!(expected.contains(&("job_churn_rate".to_string(), "float".to_string())), "{expected:?}");
    assert_eq!(t["PartitionKeys"], json!([{"Name": "dt", "Type": "string"}]));
    assert_eq!(t["TableType"], "EXTERNAL_TABLE");
    assert_eq!(t["Parameters"]["classification"], "parquet");
    assert_eq!(t["StorageDescriptor"]["Location"], features);
    assert_eq!(
        t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
    let values = glue.partition_values(&db, "features").await.unwrap();
    assert_eq!(values, BTreeSet::from([vec!["2025-07-01".to_string()]]));

    // idempotent
    let again = sync_table(&glue, &opts).await.unwrap();
    assert_eq!(again.table, Some(TableChange::Unchanged));
    assert_eq!(again.registered, Registered { created: vec![], already_registered: vec!["dt=2025-07-01".into()] });

    // the missing shard commits: the partition is registered next time
    shard(&raw, &features, "dt=2025-07-02", 1, 2).await;
    let last = sync_table(&glue, &opts).await.unwrap();
    assert_eq!(last.registered.created, ["dt=2025-07-02"]);
    assert!(last.incomplete.is_empty());
    assert_eq!(glue.partition_values(&db, "features").await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_sets_table_properties_instead_of_partitions() {
    let Some(b) = servers("fleet-glue-projection") else { return };
    let raw = format!("s3://{b}/raw/");
    let features = format!("s3://{b}/features/");
    Generator::new(Profile::Typical).with_rows(200).write(&Location::parse(&raw).unwrap(), None).await.unwrap();
    shard(&raw, &features, "dt=2025-06-30", 0, 1).await;
    shard(&raw, &features, "dt=2025-07-01", 0, 1).await;
    let glue = Glue::from_env().await.unwrap();
    let db = database("projection");
    let opts = SyncOptions { location: features.clone(), database: db.clone(), table: "f".into(), projection: true };
    let report = sync_table(&glue, &opts).await.unwrap();
    assert_eq!(report.table, Some(TableChange::Created));
    assert_eq!(report.registered, Registered::default());
    let t = glue.get_table(&db, "f").await.unwrap().unwrap();
    let p = &t["Parameters"];
    assert_eq!(p["projection.enabled"], "true");
    assert_eq!(p["projection.dt.type"], "date");
    assert_eq!(p["projection.dt.range"], "2025-06-30,NOW");
    assert_eq!(p["storage.location.template"], format!("{features}dt=${{dt}}/"));
    assert!(glue.partition_values(&db, "f").await.unwrap().is_empty());
}

fn definition(table: &str, cols: &[(&str, &str)]) -> Value {
    json!({
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": cols.iter().map(|(n, t)| json!({"Name": n, "Type": t})).collect::<Vec<_>>(),
            "Location": "s3://lake/t/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}
        }
    })
}

#[tokio::test]
async fn added_columns_evolve_the_table_and_a_changed_type_is_refused() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let glue = Glue::from_env().await.unwrap();
    let db = database("evolve");
    let v1 = definition("t", &[("pid", "string"), ("age", "smallint")]);
    assert_eq!(glue.ensure_table(&db, &v1).await.unwrap(), TableChange::Created);
    assert_eq!(glue.ensure_table(&db, &v1).await.unwrap(), TableChange::Unchanged);
    let v2 = definition("t", &[("pid", "string"), ("score", "double"), ("age", "smallint")]);
    assert_eq!(
        glue.ensure_table(&db, &v2).await.unwrap(),
        TableChange::Updated { added_columns: vec!["score".into()], changed_parameters: vec![] }
    );
    let t = glue.get_table(&db, "t").await.unwrap().unwrap();
    assert_eq!(
        columns(&t),
        [("pid".into(), "string".into()), ("age".into(), "smallint".into()), ("score".into(), "double".into())]
    );
    let bad = definition("t", &[("pid", "string"), ("age", "string")]);
    let e = glue.ensure_table(&db, &bad).await.unwrap_err();
    assert!(matches!(e, AwsError::IncompatibleType { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "Glue table {db}.t: column `age` is smallint in Glue but string in the data; a column's type cannot \
             change (write the data under a new column name or a new table)"
        )
    );
    assert_eq!(columns(&glue.get_table(&db, "t").await.unwrap().unwrap())[1].1, "smallint", "nothing changed");
    let mut other_keys = v1.clone();
    other_keys["PartitionKeys"] = json!([{"Name": "run", "Type": "string"}]);
    assert!(matches!(glue.ensure_table(&db, &other_keys).await, Err(AwsError::PartitionKeys { .. })));

    assert!(glue.list_databases().await.unwrap().contains(&db));
    let names: Vec<Value> = glue.list_tables(&db).await.unwrap().into_iter().map(|t| t["Name"].clone()).collect();
    assert_eq!(names, [json!("t")]);
    assert!(glue.drop_table(&db, "t").await.unwrap());
    assert!(!glue.drop_table(&db, "t").await.unwrap());
    assert!(glue.get_table(&db, "t").await.unwrap().is_none());
}

#[tokio::test]
async fn hundreds_of_partitions_register_in_batches_and_only_once() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let glue = Glue::from_env().await.unwrap();
    let db = database("batches");
    glue.ensure_table(&db, &definition("t", &[("pid", "string")])).await.unwrap();
    let parts: Vec<CommittedPartition> = (0..250)
        .map(|i| {
            let day = fleet_contract::Date::from_days_since_epoch(20_000 + i).to_string();
            CommittedPartition {
                table: "s3://lake/t".into(),
                partition: Partition(vec![("dt".into(), day.clone())]),
                location: format!("s3://lake/t/dt={day}/"),
                shard_count: 1,
                markers: vec![CommitMarker {
                    run_id: "r".into(),
                    shard_index: 0,
                    shard_count: 1,
                    partition: format!("dt={day}"),
                    rows: 10,
                    files: vec![],
                    rejects_key: None,
                    rejected_cells: 0,
                }],
            }
        })
        .collect();
    let first: Vec<&CommittedPartition> = parts.iter().take(5).collect();
    assert_eq!(glue.register_partitions(&db, "t", &first).await.unwrap().created.len(), 5);
    let all: Vec<&CommittedPartition> = parts.iter().collect();
    let r = glue.register_partitions(&db, "t", &all).await.unwrap();
    assert_eq!((r.created.len(), r.already_registered.len()), (245, 5));
    let values = glue.partition_values(&db, "t").await.unwrap();
    assert_eq!(values.len(), 250);
    assert!(values.contains(&vec![parts[249].partition.0[0].1.clone()]));
    let again = glue.register_partitions(&db, "t", &all).await.unwrap();
    assert_eq!((again.created.len(), again.already_registered.len()), (0, 250));
}
