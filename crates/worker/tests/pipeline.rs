//! The shard pipeline with a worker of the tests' own (a transform that
//! keeps rows and rejects negative ones) on the local store: each way of
//! cutting files, the commit protocol, rejects and their threshold, and an
//! object that does not fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_catalog::CommitMarker;
use fleet_contract::{Cli, Common, TableArgs};
use fleet_store::{InputObject, Location, ParquetSink, WriteOptions};
use fleet_worker::{
    Cut, Exit, Job, JobError, Plan, ReadBatches, Reject, RejectsPlan, RunSummary, Transform, Transformed,
};
use serde::{Deserialize, Serialize};

/// Keeps `id` and `n`; a negative `n` is a reject (the row is kept, `n` is
/// written as 0). An object without an `n` column does not fit.
#[derive(Debug)]
struct KeepRows;

impl Transform for KeepRows {
    type Bound = usize;

    fn bind(&self, object: &InputObject, schema: &SchemaRef) -> Result<usize, JobError> {
        schema.index_of("n").map_err(|_| JobError::worker(Exit::BadInput, NoN(object.uri())))
    }

    fn apply(&self, n: &usize, batch: &RecordBatch, _pool: &rayon::ThreadPool) -> Result<Transformed, JobError> {
        let ids = batch.column(batch.schema().index_of("id")?).clone();
        let ns = batch.column(*n).as_primitive::<Int64Type>();
        let mut rejects = vec![];
        for (row, v) in ns.iter().enumerate() {
            if v.is_some_and(|v| v < 0) {
                let id = ids.as_string_view().value(row).to_string();
                rejects.push(Reject { row, id, column: "n".into(), message: "negative".into(), prefix: String::new() });
            }
        }
        let kept: Int64Array = ns.iter().map(|v| v.map(|v| v.max(0))).collect();
        let out = RecordBatch::try_new(schema(), vec![plain_strings(ids), Arc::new(kept)])?;
        Ok(Transformed {
            rows_rejected: rejects.len() as u64,
            rows_dropped: 0,
            rejects,
            bytes: 8 * batch.num_rows() as u64,
            batch: out,
        })
    }
}

/// The reader gives strings as views; the output has plain strings.
fn plain_strings(a: ArrayRef) -> ArrayRef {
    let v = a.as_string_view();
    Arc::new(StringArray::from_iter(v.iter()))
}

#[derive(Debug, thiserror::Error)]
#[error("{0} has no column n")]
struct NoN(String);

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Metrics {
    kept: String,
}

/// Writes `rows` rows (ids `<name>-<i>`, n = i, or -1 for the rows in
/// `negative`) to `<dir>/<rel>`.
async fn input(dir: &Location, rel: &str, rows: i64, negative: &[i64]) {
    let name = rel.rsplit('/').next().unwrap().trim_end_matches(".parquet");
    let ids = StringArray::from_iter_values((0..rows).map(|i| format!("{name}-{i}")));
    let ns = Int64Array::from_iter_values((0..rows).map(|i| if negative.contains(&i) { -1 } else { i }));
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(ids), Arc::new(ns)]).unwrap();
    let mut sink = ParquetSink::create(dir, dir.join(rel).unwrap(), schema(), &WriteOptions::default()).unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
}

fn common(output: &str, extra: &[(&str, &str)]) -> (Common, fleet_contract::Table) {
    let mut vars = vec![("FLEET_OUTPUT", output), ("FLEET_THREADS", "2"), ("FLEET_RUN_ID", "t")];
    vars.extend_from_slice(extra);
    let cli = Cli::<TableArgs>::from_vars(vars).unwrap();
    let common = cli.common.validate().unwrap();
    let table = cli.own.validate(&common, fleet_contract::Partition::parse("dt=2025-07-01").unwrap()).unwrap();
    (common, table)
}

async fn run(input: &str, output: &str, cut: Cut, max: f64) -> Result<RunSummary<Metrics>, JobError> {
    let (common, table) = common(output, &[]);
    let source = ReadBatches {
        format: fleet_contract::InputFormat::Parquet,
        batch_rows: 100,
        columns: vec!["id".into(), "n".into()],
        unchecked: vec![],
        ndjson_schema: schema(),
    };
    let plan = Plan::new(input, source, KeepRows, schema(), table)
        .with_cut(cut)
        .with_rejects(RejectsPlan { id_column: "id".into(), max_ratio: max });
    Job::new("keep-rows", common)?.run(plan, Metrics { kept: "all".into() }).await
}

fn marker(dir: &std::path::Path, partition: &str) -> Option<CommitMarker> {
    let p = dir.join(partition).join("_commits/shard-00000-of-00001.json");
    std::fs::read(p).ok().map(|b| serde_json::from_slice(&b).unwrap())
}

/// Every (id, n) of the Parquet files under `dir`, with the file it is in.
fn rows(dir: &std::path::Path) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    for entry in walk(dir) {
        if entry.extension().is_none_or(|x| x != "parquet") || entry.to_string_lossy().contains("/_") {
            continue;
        }
        let file = std::fs::File::open(&entry).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        let rel = entry.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        for b in reader {
            let b = b.unwrap();
            let (ids, ns) = (b.column(0).as_string::<i32>(), b.column(1).as_primitive::<Int64Type>());
            for r in 0..b.num_rows() {
                assert!(
                    out.insert(ids.value(r).to_string(), (ns.value(r), rel.clone())).is_none(),
                    "a row written twice"
                );
            }
        }
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_per_object_with_rejects_and_the_marker_last() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    input(&raw, "a.parquet", 250, &[3]).await;
    input(&raw, "b.parquet", 120, &[]).await;
    input(&raw, "c.parquet", 0, &[]).await;
    let out = tmp.path().join("out");
    let s = run(&format!("{}/", raw.uri()), &format!("{}/", out.display()), Cut::PerObject, 0.5).await.unwrap();
    assert_eq!((s.objects, s.rows_in, s.rows_out, s.rows_rejected, s.rejected_cells), (3, 370, 370, 1, 1));
    assert_eq!((s.worker.as_str(), s.metrics.kept.as_str(), s.bytes_processed), ("keep-rows", "all", 370 * 8));
    let m = marker(&out, "dt=2025-07-01").expect("committed");
    let keys: Vec<&str> = m.files.iter().map(|f| f.key.as_str()).collect();
    let want: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| fleet_worker::layout::data_key(&m_partition(), &format!("{}/{n}.parquet", raw.uri())))
        .collect();
    assert_eq!(keys, want);
    assert_eq!(m.files.iter().map(|f| f.rows).collect::<Vec<_>>(), [250, 120, 0]);
    assert_eq!(m.rejects_key.as_deref(), Some("_rejects/dt=2025-07-01/shard-00000-of-00001.parquet"));
    let got = rows(&out.join("dt=2025-07-01"));
    assert_eq!(got.len(), 370);
    assert_eq!(got["a-3"].0, 0, "a rejected value is written as the transform made it");
    assert_eq!(got["b-119"].0, 119);
    let rejects = out.join("_rejects/dt=2025-07-01/shard-00000-of-00001.parquet");
    let r =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(rejects).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
    assert_eq!(r.num_rows(), 1);
    assert_eq!(r.column(0).as_string::<i32>().value(0), "a-3");
    assert_eq!(r.column(5).as_primitive::<Int64Type>().value(0), 3, "the row within its object");
    assert!(out.join("_runs/t/table_input.json").exists() && out.join("_runs/t/shard-00000-of-00001.json").exists());
}

fn m_partition() -> fleet_contract::Partition {
    fleet_contract::Partition::parse("dt=2025-07-01").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rolled_by_size_are_numbered_and_a_retry_overwrites_them() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        input(&raw, &format!("{name}.parquet"), 1000 + i as i64, &[]).await;
    }
    let out = tmp.path().join("out");
    let cut = Cut::Rolling { target_bytes: 8 << 10 };
    let s = run(&format!("{}/", raw.uri()), &format!("{}/", out.display()), cut, 0.0).await.unwrap();
    assert_eq!((s.rows_in, s.rows_out), (4006, 4006));
    let m = marker(&out, "dt=2025-07-01").unwrap();
    assert!(m.files.len() > 2, "{:?}", m.files);
    for (i, f) in m.files.iter().enumerate() {
        assert_eq!(f.key, format!("dt=2025-07-01/part-00000-{i:05}.parquet"));
        assert_eq!(f.source, format!("{}/", raw.uri()));
    }
    assert_eq!(rows(&out.join("dt=2025-07-01")).len(), 4006);
    // the same input again: the same files, overwritten, one copy of each row
    let again = run(&format!("{}/", raw.uri()), &format!("{}/", out.display()), cut, 0.0).await.unwrap();
    assert_eq!(
        again.files.iter().map(|f| &f.key).collect::<Vec<_>>(),
        m.files.iter().map(|f| &f.key).collect::<Vec<_>>()
    );
    assert_eq!(rows(&out.join("dt=2025-07-01")).len(), 4006);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_per_partition_follow_their_inputs_and_each_partition_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let table = Location::parse(&format!("{}/small/", tmp.path().display())).unwrap();
    input(&table, "day=2025-07-01/hour=00/a.parquet", 300, &[]).await;
    input(&table, "day=2025-07-01/hour=00/b.parquet", 200, &[]).await;
    input(&table, "day=2025-07-01/hour=01/c.parquet", 100, &[]).await;
    input(&table, "day=2025-07-02/hour=00/d.parquet", 50, &[]).await;
    let out = tmp.path().join("compact");
    let cut = Cut::PerPartition { target_bytes: 1 << 30 };
    let s = run(&format!("{}/", table.uri()), &format!("{}/", out.display()), cut, 0.0).await.unwrap();
    assert_eq!((s.rows_in, s.rows_out, s.files.len()), (650, 650, 3));
    assert_eq!(s.partition, "day=2025-07-01/hour=00,day=2025-07-01/hour=01,day=2025-07-02/hour=00");
    for (partition, rows_in) in
        [("day=2025-07-01/hour=00", 500), ("day=2025-07-01/hour=01", 100), ("day=2025-07-02/hour=00", 50)]
    {
        let m = marker(&out, partition).unwrap_or_else(|| panic!("{partition} committed"));
        assert_eq!((m.partition.as_str(), m.rows, m.files.len()), (partition, rows_in, 1));
        assert_eq!(m.files[0].key, format!("{partition}/part-00000-00000.parquet"));
    }
    let got = rows(&out);
    assert_eq!(got["a-299"].1, "day=2025-07-01/hour=00/part-00000-00000.parquet");
    assert_eq!(got["b-0"].1, "day=2025-07-01/hour=00/part-00000-00000.parquet", "two inputs, one output");
    assert_eq!(got["d-0"].1, "day=2025-07-02/hour=00/part-00000-00000.parquet");
    let ti: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_runs/t/table_input.json")).unwrap()).unwrap();
    assert_eq!(
        ti["TableInput"]["PartitionKeys"],
        serde_json::json!([{"Name": "day", "Type": "string"}, {"Name": "hour", "Type": "string"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rejects_write_everything_but_the_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    input(&raw, "a.parquet", 100, &[1, 2, 3]).await;
    let out = tmp.path().join("out");
    let e = run(&format!("{}/", raw.uri()), &format!("{}/", out.display()), Cut::PerObject, 0.02).await.unwrap_err();
    assert_eq!((e.exit(), e.exit_code()), (Exit::RejectThreshold, 3));
    assert!(
        e.to_string().contains("3 of 100 rows (0.0300) had a rejected cell, more than FLEET_MAX_REJECT_RATIO=0.02"),
        "{e}"
    );
    assert_eq!(rows(&out.join("dt=2025-07-01")).len(), 100, "data written");
    assert!(marker(&out, "dt=2025-07-01").is_none(), "not committed");
    let summary: RunSummary =
        serde_json::from_slice(&std::fs::read(out.join("_runs/t/shard-00000-of-00001.json")).unwrap()).unwrap();
    assert_eq!(summary.status, "failed: reject threshold exceeded");
    assert_eq!(summary.metrics["kept"], "all", "the worker's metrics read back as a map");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_does_not_fit_is_bad_input_after_the_earlier_ones_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    input(&raw, "a.parquet", 100, &[]).await;
    // sorts after a.parquet: an object whose columns do not fit the transform
    let odd = RecordBatch::try_from_iter([("id", Arc::new(StringArray::from(vec!["x"])) as ArrayRef)]).unwrap();
    let mut sink =
        ParquetSink::create(&raw, raw.join("b.parquet").unwrap(), odd.schema(), &WriteOptions::default()).unwrap();
    sink.write(&odd).await.unwrap();
    sink.close().await.unwrap();
    // a commit marker of an earlier, successful attempt is withdrawn first
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("dt=2025-07-01/_commits")).unwrap();
    std::fs::write(out.join("dt=2025-07-01/_commits/shard-00000-of-00001.json"), "{}").unwrap();
    let e = run(&format!("{}/", raw.uri()), &format!("{}/", out.display()), Cut::PerObject, 0.0).await.unwrap_err();
    assert_eq!(e.exit(), Exit::BadInput);
    assert!(fleet_worker::chain(&e).contains("b.parquet has no column n"), "{e}");
    assert_eq!(rows(&out.join("dt=2025-07-01")).len(), 100, "the earlier object was written");
    assert!(marker(&out, "dt=2025-07-01").is_none(), "nothing committed");
}
