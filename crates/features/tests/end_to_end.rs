//! feature-parser end to end on the local store (`file://`): values, shards,
//! retries, the reject threshold, NDJSON input and the bookkeeping files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int8Type, Int16Type, Int32Type};
use arrow_array::{Array, ArrayRef, Int32Array, RecordBatch, StringArray};
use fleet_catalog::CommitMarker;
use fleet_features::{Config, FeatureMetrics, FeatureParser};
use fleet_store::{Location, ParquetSink, WriteOptions};
use fleet_synth::{Format, Generator, Profile};
use fleet_worker::{JobError, RunSummary};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn config(input: &str, output: &str, extra: &[(&str, &str)]) -> Config {
    let mut v: Vec<(&str, &str)> = vec![("FLEET_INPUT", input), ("FLEET_OUTPUT", output), ("FLEET_THREADS", "2")];
    v.extend_from_slice(extra);
    Config::from_vars(v).unwrap()
}

async fn run(cfg: Config) -> Result<RunSummary<FeatureMetrics>, JobError> {
    FeatureParser::new(cfg).await?.run().await
}

fn read_dir_batches(dir: &Path) -> Vec<(String, RecordBatch)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap().build().unwrap();
        for b in r {
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), b.unwrap()));
        }
    }
    out
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column(b.schema().index_of(name).unwrap())
}

/// Rows keyed by pid: feature name -> rendered value.
fn features_by_pid(dir: &Path) -> HashMap<String, HashMap<String, String>> {
    let mut out = HashMap::new();
    for (_, b) in read_dir_batches(dir) {
        let pids = col(&b, "pid").as_string::<i32>().clone();
        for r in 0..b.num_rows() {
            let mut m = HashMap::new();
            for (f, a) in b.schema().fields().iter().zip(b.columns()) {
                let v = if a.is_null(r) {
                    "NULL".to_string()
                } else {
                    match a.data_type() {
                        arrow_schema::DataType::Int8 => a.as_primitive::<Int8Type>().value(r).to_string(),
                        arrow_schema::DataType::Int16 => a.as_primitive::<Int16Type>().value(r).to_string(),
                        arrow_schema::DataType::Int32 => a.as_primitive::<Int32Type>().value(r).to_string(),
                        arrow_schema::DataType::Float32 => a.as_primitive::<Float32Type>().value(r).to_string(),
                        arrow_schema::DataType::Boolean => a.as_boolean().value(r).to_string(),
                        _ => a.as_string::<i32>().value(r).to_string(),
                    }
                };
                m.insert(f.name().clone(), v);
            }
            assert!(out.insert(pids.value(r).to_string(), m).is_none(), "pid {} written twice", pids.value(r));
        }
    }
    out
}

/// A raw file written by hand, with values checked one by one.
async fn hand_written(dir: &Path) -> String {
    let raw = Location::parse(&format!("{}/raw/", dir.display())).unwrap();
    let s = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let batch = RecordBatch::try_from_iter([
        ("pid", s(vec![Some("a"), Some("b"), Some("c")])),
        ("gender", s(vec![Some("female"), None, Some("male")])),
        (
            "education",
            s(vec![
                Some(r#"[{"school":{"type":"post-secondary institution"},"degrees":["Master of Science"],"end_date":"2010-05"}]"#),
                None,
                Some("[{\"degrees\": [\"phd\"], \"end_date\": \"2001\"},]"),
            ]),
        ),
        (
            "work_experience",
            s(vec![
                Some(r#"[{"company":{"name":"Acme"},"title":{"name":"VP Sales"},"start_date":"2015-02","is_primary":true},{"company":{"name":"acme "},"title":{"name":"Sales Intern"},"start_date":"2010-06","end_date":"2011-06"}]"#),
                Some("  "),
                Some(r#"[{"title":{"name":"Director"},"start_date":"1999"}]"#),
            ]),
        ),
        ("skills", s(vec![Some(r#"["sql","rust"]"#), Some("null"), Some("[]")])),
        ("interests", s(vec![None, None, None])),
        ("certifications", s(vec![Some("[{}]"), None, None])),
        ("languages", s(vec![Some(r#"["en","fr","de"]"#), None, None])),
        ("linkedin_connections", Arc::new(Int32Array::from(vec![Some(500), None, Some(40)])) as ArrayRef),
        ("inferred_years_experience", Arc::new(Int32Array::from(vec![Some(15), Some(0), Some(99_999)])) as ArrayRef),
    ])
    .unwrap();
    let mut sink =
        ParquetSink::create(&raw, raw.join("hand.parquet").unwrap(), batch.schema(), &WriteOptions::default()).unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
    raw.uri() + "/"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_a_hand_written_table() {
    let tmp = tempfile::tempdir().unwrap();
    let input = hand_written(tmp.path()).await;
    let output = format!("{}/features/", tmp.path().display());
    let s = run(config(&input, &output, &[("FLEET_RUN_ID", "r1"), ("FLEET_MAX_REJECT_RATIO", "0.5")])).await.unwrap();
    assert_eq!((s.rows_in, s.rows_out, s.rows_rejected, s.rejected_cells), (3, 3, 1, 1));
    let f = features_by_pid(&tmp.path().join("features/dt=2025-07-01"));
    let a = &f["a"];
    let churn = (2.0f64 / 15.0) as f32;
    let churn = churn.to_string();
    let avg = ((125.0 + 12.0) / 2.0f64) as f32;
    let avg = avg.to_string();
    let want_a = [
        ("education_level_encoded", "4"),
        ("graduation_year", "2010"),
        ("number_of_schools", "1"),
        ("number_of_jobs", "2"),
        ("skill_count", "2"),
        ("first_job_start_year", "2010"),
        ("current_job_start_year", "2015"),
        ("total_career_years", "15"),
        ("job_churn_rate", churn.as_str()),
        ("avg_job_tenure_months", avg.as_str()),
        ("longest_job_tenure_months", "125"),
        ("current_job_tenure_months", "125"),
        ("distinct_companies", "1"),
        ("max_seniority_encoded", "6"),
        ("has_management_title", "true"),
        ("certification_count", "1"),
        ("language_count", "3"),
        ("interest_count", "0"),
        ("linkedin_connections", "500"),
        ("inferred_years_experience", "15"),
    ];
    for (k, v) in want_a {
        assert_eq!(a[k], v, "a.{k}");
    }
    let b = &f["b"];
    for (k, v) in [
        ("number_of_schools", "0"),
        ("number_of_jobs", "0"),
        ("has_management_title", "false"),
        ("graduation_year", "NULL"),
        ("linkedin_connections", "NULL"),
        ("inferred_years_experience", "0"),
    ] {
        assert_eq!(b[k], v, "b.{k}");
    }
    let c = &f["c"];
    for (k, v) in [
        ("education_level_encoded", "NULL"),
        ("graduation_year", "NULL"),
        ("total_career_years", "NULL"),
        ("job_churn_rate", "NULL"),
        ("first_job_start_year", "1999"),
        ("max_seniority_encoded", "5"),
        ("inferred_years_experience", "NULL"),
    ] {
        assert_eq!(c[k], v, "c.{k}");
    }
    // the reject record
    let rejects = read_dir_batches(&tmp.path().join("features/_rejects/dt=2025-07-01"));
    assert_eq!(rejects.len(), 1);
    let r = &rejects[0].1;
    assert_eq!(col(r, "pid").as_string::<i32>().value(0), "c");
    assert_eq!(col(r, "column").as_string::<i32>().value(0), "education");
    assert_eq!(col(r, "message").as_string::<i32>().value(0), "expected value at byte 42");
    assert!(col(r, "source").as_string::<i32>().value(0).ends_with("/raw/hand.parquet"));
    // bookkeeping: marker last, summary, Glue TableInput
    let out = Location::parse(&output).unwrap();
    let marker: CommitMarker =
        serde_json::from_slice(&out.get_bytes("dt=2025-07-01/_commits/shard-00000-of-00001.json").await.unwrap())
            .unwrap();
    assert_eq!(marker.rows, 3);
    assert_eq!(marker.files.len(), 1);
    let data = out.get_bytes(&marker.files[0].key).await.unwrap();
    assert_eq!(marker.files[0].bytes, data.len() as u64);
    assert_eq!(marker.files[0].crc32c, format!("{:08x}", crc32c(&data)));
    let summary: RunSummary<FeatureMetrics> =
        serde_json::from_slice(&out.get_bytes("_runs/r1/shard-00000-of-00001.json").await.unwrap()).unwrap();
    assert_eq!(
        (&summary.status, summary.rows_in, summary.rows_rejected, &summary.files),
        (&s.status, s.rows_in, s.rows_rejected, &s.files)
    );
    assert!((summary.fargate_cost_usd - s.fargate_cost_usd).abs() < 1e-15);
    assert!(s.peak_rss_bytes > 0 && s.fargate_cost_usd > 0.0);
    let ti: serde_json::Value =
        serde_json::from_slice(&out.get_bytes("_runs/r1/table_input.json").await.unwrap()).unwrap();
    assert_eq!(ti["TableInput"]["Name"], "features");
    assert_eq!(ti["TableInput"]["StorageDescriptor"]["Columns"].as_array().unwrap().len(), 21);
}

fn crc32c(b: &[u8]) -> u32 {
    // independent bitwise CRC32C (Castagnoli), to check the marker's checksum
    let mut crc = !0u32;
    for &x in b {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cover_the_input_once_and_a_retry_leaves_one_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    let (g, _) =
        Generator::new(Profile::Typical).with_rows(5000).with_files(5).with_seed(9).write(&raw, None).await.unwrap();
    assert_eq!(g.rows, 5000);
    let input = raw.uri() + "/";
    let output = format!("{}/features/", tmp.path().display());
    let mut total = 0;
    for i in ["0", "1"] {
        let s = run(config(
            &input,
            &output,
            &[
                ("FLEET_SHARD_INDEX", i),
                ("FLEET_SHARD_COUNT", "2"),
                ("FLEET_RUN_ID", "first"),
                ("FLEET_BATCH_ROWS", "700"),
            ],
        ))
        .await
        .unwrap();
        assert_eq!(s.rows_in, s.rows_out);
        total += s.rows_out;
    }
    assert_eq!(total, 5000);
    let part = tmp.path().join("features/dt=2025-07-01");
    let before = features_by_pid(&part);
    assert_eq!(before.len(), 5000);

    // retry shard 1 with another run id: same keys, overwritten, one copy
    let s = run(config(
        &input,
        &output,
        &[("FLEET_SHARD_INDEX", "1"), ("FLEET_SHARD_COUNT", "2"), ("FLEET_RUN_ID", "retry")],
    ))
    .await
    .unwrap();
    assert_eq!(s.objects, 2);
    let after = features_by_pid(&part);
    assert_eq!(after, before);
    let files = std::fs::read_dir(&part)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
        .count();
    assert_eq!(files, 5);
    let marker: CommitMarker =
        serde_json::from_str(&std::fs::read_to_string(part.join("_commits/shard-00001-of-00002.json")).unwrap())
            .unwrap();
    assert_eq!(marker.run_id, "retry");

    // values against an independent reading of the raw JSON with serde_json
    let raw_batches = read_dir_batches(&tmp.path().join("raw"));
    let mut checked = 0;
    for (_, b) in &raw_batches {
        for r in 0..b.num_rows() {
            let pid = col(b, "pid").as_string::<i32>().value(r);
            let got = &after[pid];
            for (c, feature) in [
                ("education", "number_of_schools"),
                ("work_experience", "number_of_jobs"),
                ("skills", "skill_count"),
                ("languages", "language_count"),
            ] {
                let a = col(b, c).as_string::<i32>();
                let text = if a.is_null(r) { "" } else { a.value(r) };
                let want = if text.trim().is_empty() || text.trim() == "null" {
                    "0".to_string()
                } else {
                    match serde_json::from_str::<serde_json::Value>(text) {
                        Ok(serde_json::Value::Array(v)) => v.len().to_string(),
                        _ => "NULL".to_string(),
                    }
                };
                assert_eq!(got[feature], want, "{pid}.{feature} from {text:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reject_threshold_fails_after_writing_and_does_not_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    Generator::new(Profile::Typical).with_rows(2000).with_malformed_share(0.05).write(&raw, None).await.unwrap();
    let output = format!("{}/features/", tmp.path().display());
    let err = run(config(&(raw.uri() + "/"), &output, &[("FLEET_RUN_ID", "t")])).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let JobError::RejectThreshold { rows_rejected, rows, .. } = err else { panic!("{err}") };
    assert_eq!(rows, 2000);
    assert!((50..=150).contains(&rows_rejected), "{rows_rejected}");
    let part = tmp.path().join("features/dt=2025-07-01");
    assert_eq!(features_by_pid(&part).len(), 2000, "data written");
    assert!(!part.join("_commits/shard-00000-of-00001.json").exists(), "no commit marker");
    let rejects: usize =
        read_dir_batches(&tmp.path().join("features/_rejects/dt=2025-07-01")).iter().map(|(_, b)| b.num_rows()).sum();
    assert_eq!(rejects as u64, rows_rejected);
    let summary: RunSummary<FeatureMetrics> = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("features/_runs/t/shard-00000-of-00001.json")).unwrap(),
    )
    .unwrap();
    assert!(summary.status.starts_with("failed"), "{}", summary.status);
    // a higher threshold commits the same data
    run(config(&(raw.uri() + "/"), &output, &[("FLEET_RUN_ID", "t2"), ("FLEET_MAX_REJECT_RATIO", "0.2")]))
        .await
        .unwrap();
    assert!(part.join("_commits/shard-00000-of-00001.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_later_input_fails_the_run_after_the_earlier_ones_and_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    Generator::new(Profile::Typical).with_rows(3000).with_files(2).write(&raw, None).await.unwrap();
    // sorts after the good files: read ahead while they are still being evaluated
    std::fs::write(tmp.path().join("raw/zz-broken.parquet"), b"PAR1 this is not a Parquet file").unwrap();
    let output = format!("{}/features/", tmp.path().display());
    let err = run(config(&(raw.uri() + "/"), &output, &[])).await.unwrap_err();
    let text = anyhow_chain(&err);
    assert!(text.contains("zz-broken.parquet"), "{text}");
    // a corrupt object is bad input (4): retrying cannot help
    assert_eq!(err.exit_code(), 4, "{text}");
    let part = tmp.path().join("features/dt=2025-07-01");
    assert_eq!(features_by_pid(&part).len(), 3000, "the good inputs were written");
    assert!(!part.join("_commits/shard-00000-of-00001.json").exists(), "no commit marker");
}

/// JSON columns may be binary (BYTE_ARRAY without the UTF8 annotation), and
/// a cell that is not UTF-8 is one reject, not a failed file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_json_columns_and_a_cell_that_is_not_utf8() {
    a_cell_that_is_not_utf8(false).await;
}

/// The same cell in a Parquet string column (UTF8 annotation, an embedded
/// Arrow schema saying Utf8: what Spark and Athena write) is one reject
/// too; arrow-rs's reader would refuse the page if it checked the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_json_cell_that_is_not_utf8_is_one_reject() {
    a_cell_that_is_not_utf8(true).await;
}

/// Two rows whose JSON columns are `strings` or binary; row "b"'s
/// work_experience holds the bytes FF FE (patched into the uncompressed
/// file, since Arrow strings cannot hold them).
async fn a_cell_that_is_not_utf8(strings: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    let json = |v: Vec<Option<&str>>| -> ArrayRef {
        if strings {
            Arc::new(StringArray::from(v))
        } else {
            Arc::new(arrow_array::BinaryArray::from(v.into_iter().map(|c| c.map(str::as_bytes)).collect::<Vec<_>>()))
        }
    };
    let batch = RecordBatch::try_from_iter([
        ("pid", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ("education", json(vec![None, None])),
        (
            "work_experience",
            json(vec![
                Some(r#"[{"company":{"name":"Acme"},"start_date":"2015-02"}]"#),
                Some(r#"[{"company":{"name":"Bad @@"}}]"#),
            ]),
        ),
        ("skills", json(vec![Some(r#"["sql","rust"]"#), Some(r#"["go"]"#)])),
        ("interests", json(vec![None, None])),
        ("certifications", json(vec![None, None])),
        ("languages", json(vec![None, None])),
        ("linkedin_connections", Arc::new(Int32Array::from(vec![Some(5), None])) as ArrayRef),
        ("inferred_years_experience", Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef),
    ])
    .unwrap();
    let opts = WriteOptions::default().with_compression(fleet_store::Compression::UNCOMPRESSED);
    let mut sink = ParquetSink::create(&raw, raw.join("bad.parquet").unwrap(), batch.schema(), &opts).unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
    let file = tmp.path().join("raw/bad.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len() - 1 {
        if &bytes[i..i + 2] == b"@@" {
            bytes[i..i + 2].copy_from_slice(b"\xff\xfe");
            patched += 1;
        }
    }
    assert!(patched >= 1, "the placeholder is in the file");
    std::fs::write(&file, bytes).unwrap();

    let output = format!("{}/features/", tmp.path().display());
    let summary = run(config(&(raw.uri() + "/"), &output, &[("FLEET_MAX_REJECT_RATIO", "0.5")])).await.unwrap();
    assert_eq!((summary.rows_in, summary.rows_out, summary.rows_rejected), (2, 2, 1));
    let rows = features_by_pid(&tmp.path().join("features/dt=2025-07-01"));
    assert_eq!(rows["a"]["number_of_jobs"], "1");
    assert_eq!(rows["a"]["current_job_start_year"], "2015");
    assert_eq!(rows["a"]["skill_count"], "2");
    assert_eq!(rows["b"]["number_of_jobs"], "NULL", "the rejected cell's features are NULL");
    assert_eq!(rows["b"]["skill_count"], "1", "the row's other cells are read");
    let rejects: Vec<RecordBatch> =
        read_dir_batches(&tmp.path().join("features/_rejects/dt=2025-07-01")).into_iter().map(|(_, b)| b).collect();
    assert_eq!(rejects.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let message = col(&rejects[0], "message").as_string::<i32>().value(0).to_string();
    assert_eq!(col(&rejects[0], "column").as_string::<i32>().value(0), "work_experience");
    assert_eq!(message, "invalid UTF-8 at byte 25");
    assert_eq!(col(&rejects[0], "prefix").as_string::<i32>().value(0), r#"[{"company":{"name":"Bad "#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_input_gives_the_same_features_as_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let pq = Location::parse(&format!("{}/pq/", tmp.path().display())).unwrap();
    let nd = Location::parse(&format!("{}/nd/", tmp.path().display())).unwrap();
    Generator::new(Profile::Typical).with_rows(1500).with_seed(5).write(&pq, None).await.unwrap();
    Generator::new(Profile::Typical)
        .with_rows(1500)
        .with_seed(5)
        .with_format(Format::Ndjson)
        .write(&nd, None)
        .await
        .unwrap();
    for (name, loc) in [("a", &pq), ("b", &nd)] {
        let out = format!("{}/out-{name}/", tmp.path().display());
        run(config(&(loc.uri() + "/"), &out, &[("FLEET_RUN_ID", "x")])).await.unwrap();
    }
    let a = features_by_pid(&tmp.path().join("out-a/dt=2025-07-01"));
    let b = features_by_pid(&tmp.path().join("out-b/dt=2025-07-01"));
    assert_eq!(a.len(), 1500);
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_from_a_file_and_a_bad_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let input = hand_written(tmp.path()).await;
    let spec = tmp.path().join("mine.spec");
    std::fs::write(
        &spec,
        "input pid: string\njson skills\nfeature pid: string not null = pid\nfeature n: int32 = len(skills) * 10\n",
    )
    .unwrap();
    let output = format!("{}/o/", tmp.path().display());
    run(config(&input, &output, &[("FLEET_SPEC", spec.to_str().unwrap()), ("FLEET_PARTITION", "year=2025/month=07")]))
        .await
        .unwrap();
    let f = features_by_pid(&tmp.path().join("o/year=2025/month=07"));
    assert_eq!(f["a"]["n"], "20");
    assert_eq!(f["b"]["n"], "0");
    std::fs::write(&spec, "input pid: string\nfeature n: int32 = len(\n").unwrap();
    let err = run(config(&input, &output, &[("FLEET_SPEC", spec.to_str().unwrap())])).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(format!("{:#}", anyhow_chain(&err)).contains("spec line 3, column 1"), "{}", anyhow_chain(&err));
}

fn anyhow_chain(e: &dyn std::error::Error) -> String {
    fleet_worker::chain(e)
}
