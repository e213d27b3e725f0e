//! Athena over its real protocol: the moto server on loopback, with its
//! seeded query results, and s3s-fs for result objects and exports.
//!
//! moto hands seeded results to queries in the order they ask, and its
//! query state machine is global: the tests here take turns.
#![cfg(feature = "athena")]

use std::time::Duration;

use fleet_aws::AwsError;
use fleet_aws::athena::{self, Athena, Export, QueryOptions, Row};
use serde_json::json;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn seed(rows: &[&[Option<&str>]], columns: &[(&str, &str)]) {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"Data": r.iter().map(|v| match v {
                Some(s) => json!({"VarCharValue": s}),
                None => json!({}),
            }).collect::<Vec<_>>()})
        })
        .collect();
    let info: Vec<_> = columns
        .iter()
        .map(|(n, t)| json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n, "Label": n, "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true}))
        .collect();
    let body = json!({"results": [{"rows": rows, "column_info": info}]});
    assert_eq!(fleet_test_support::moto_api("/moto-api/static/athena/query-results", &body.to_string()), 201);
}

fn r(v: &[Option<&str>]) -> Row {
    v.iter().map(|s| s.map(str::to_string)).collect()
}

const COLUMNS: &[(&str, &str)] = &[("pid", "varchar"), ("age", "bigint"), ("score", "double")];

fn options(bucket: &str) -> QueryOptions {
    QueryOptions {
        database: Some("fleet".into()),
        output_location: Some(format!("s3://{bucket}/athena-results/")),
        workgroup: Some("primary".into()),
        ..QueryOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_runs_and_its_seeded_rows_come_back_typed() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let Some(b) = fleet_test_support::s3_bucket("fleet-athena") else { return };
    let _turn = TURN.lock().await;
    seed(
        &[
            &[Some("pid"), Some("age"), Some("score")],
            &[Some("p1"), Some("41"), Some("0.5")],
            &[Some("p2"), None, Some("NaN")],
            &[Some(""), Some("7"), None],
        ],
        COLUMNS,
    );
    let a = Athena::from_env().await.unwrap();
    let exec = a.run("SELECT pid, age, score FROM features", &options(&b)).await.unwrap();
    assert_eq!(exec.state, "SUCCEEDED");
    assert_eq!(exec.statement_type.as_deref(), Some("DML"));
    assert!(exec.has_header_row());
    assert_eq!(exec.output_location, Some(format!("s3://{b}/athena-results/{}.csv", exec.id)));
    // moto reports 0 bytes scanned: the 10 MB minimum applies
    assert_eq!(exec.cost_usd(), 10.0 * 5.0 / (1u64 << 20) as f64);
    assert!(athena::stats_line(&exec).ends_with("scanned 0 B, cost $0.000048"), "{}", athena::stats_line(&exec));

    let mut out = Export::collect();
    assert_eq!(a.results(&exec, &mut out).await.unwrap(), 3, "the header row is not a row");
    let (columns, rows) = out.finish().await.unwrap().unwrap();
    assert_eq!(columns.iter().map(|c| c.athena_type.as_str()).collect::<Vec<_>>(), ["varchar", "bigint", "double"]);
    assert_eq!(
        rows,
        [
            r(&[Some("p1"), Some("41"), Some("0.5")]),
            r(&[Some("p2"), None, Some("NaN")]),
            r(&[Some(""), Some("7"), None])
        ]
    );

    // JSONL to an object on S3, typed by the column types
    let mut jsonl = Export::jsonl(Some(&format!("s3://{b}/exports/rows.jsonl"))).unwrap();
    a.results(&exec, &mut jsonl).await.unwrap();
    jsonl.finish().await.unwrap();
    let text =
        fleet_store::Location::parse(&format!("s3://{b}/exports/")).unwrap().get_bytes("rows.jsonl").await.unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "{\"pid\":\"p1\",\"age\":41,\"score\":0.5}\n{\"pid\":\"p2\",\"age\":null,\"score\":\"NaN\"}\n\
         {\"pid\":\"\",\"age\":7,\"score\":null}\n"
    );

    // Parquet, read back by value
    let tmp = tempfile::tempdir().unwrap();
    let pq = tmp.path().join("rows.parquet");
    let mut parquet = Export::parquet(&pq.display().to_string());
    a.results(&exec, &mut parquet).await.unwrap();
    parquet.finish().await.unwrap();
    let file = std::fs::File::open(&pq).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    let age = batch.column(1).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
    assert_eq!(age.iter().collect::<Vec<_>>(), [Some(41), None, Some(7)]);
    let score = batch.column(2).as_any().downcast_ref::<arrow_array::Float64Array>().unwrap();
    assert_eq!(score.value(0), 0.5);
    assert!(score.value(1).is_nan());
    assert!(arrow_array::Array::is_null(score, 2));

    // The result object read from S3 directly gives the same rows. moto keeps
    // its result objects in its own S3, so put Athena's CSV where Athena would.
    let csv = "\"pid\",\"age\",\"score\"\n\"p1\",\"41\",\"0.5\"\n\"p2\",,\"NaN\"\n\"\",\"7\",\n";
    let loc = fleet_store::Location::parse(&format!("s3://{b}/athena-results/")).unwrap();
    loc.put_bytes(&format!("{}.csv", exec.id), csv.as_bytes().to_vec()).await.unwrap();
    assert_eq!(a.result_size(&exec).await, Some(csv.len() as u64));
    let mut direct = Export::collect();
    assert_eq!(a.results_from_s3(&exec, &mut direct).await.unwrap(), 3);
    assert_eq!(direct.finish().await.unwrap().unwrap().1, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_does_not_finish_in_time_is_cancelled() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let _turn = TURN.lock().await;
    // keep queries QUEUED for the next 1000 polls
    let manual = json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}});
    assert_eq!(fleet_test_support::moto_api("/moto-api/state-manager/set-transition", &manual.to_string()), 201);
    let a = Athena::from_env().await.unwrap();
    let opts = QueryOptions { timeout: Duration::from_secs(1), ..QueryOptions::default() };
    let result = a.run("SELECT 1", &opts).await;
    let reset = json!({"model_name": "athena::execution"});
    assert_eq!(fleet_test_support::moto_api("/moto-api/state-manager/unset-transition", &reset.to_string()), 201);
    let Err(AwsError::Timeout { id, state, timeout, cancelled }) = result else {
        panic!("expected a timeout: {result:?}")
    };
    assert_eq!((state.as_str(), timeout, cancelled), ("QUEUED", Duration::from_secs(1), true));
    // it was cancelled: waiting again reports that, with Athena's reason
    let again = a.wait(&id, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(&again, AwsError::QueryFailed { state, .. } if state == "CANCELLED"), "{again}");
    assert_eq!(again.to_string(), format!("Athena query {id} CANCELLED: no reason given"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctas_writes_a_permanent_table_only_to_an_empty_location() {
    if fleet_test_support::moto_endpoint().is_none() {
        return;
    }
    let Some(b) = fleet_test_support::s3_bucket("fleet-ctas") else { return };
    let _turn = TURN.lock().await;
    let a = Athena::from_env().await.unwrap();
    let location = format!("s3://{b}/permanent/raw_2025/");
    let sql =
        athena::ctas_sql("permanent_raw_2025", &location, &["dt".into()], "SELECT pid, doc, dt FROM raw").unwrap();
    athena::ensure_empty(&location).await.unwrap();
    let exec = a.run(&sql, &options(&b)).await.unwrap();
    assert_eq!(exec.query, sql, "Athena received the CTAS statement");
    assert!(!exec.has_header_row());
    assert_eq!(exec.cost_usd(), 10.0 * 5.0 / (1u64 << 20) as f64, "CTAS is billed for what it scans");
    let mut out = Export::collect();
    let e = a.results_from_s3(&exec, &mut out).await.unwrap_err().to_string();
    assert!(e.contains("is not a SELECT"), "{e}");
    fleet_store::Location::parse(&location).unwrap().put_bytes("part-0.parquet", b"x".to_vec()).await.unwrap();
    let e = athena::ensure_empty(&location).await.unwrap_err().to_string();
    assert_eq!(e, format!("{location} already holds 1 object(s); CTAS and UNLOAD write to an empty location"));
}
