//! ndjson-converter on the local store, on public corpora read in place
//! (`../shared/corpora`): DuckDB's malformed NDJSON cases quarantined with
//! their file and line, QED's 64-bit ids kept exactly, every value of the
//! simdjson and JSON Resume documents written back, records of 20 MB and
//! more, a given schema, the reject threshold and reruns.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use fleet_ndjson::{Metrics, NdjsonConverter, convert};
use fleet_worker::{Job, RunSummary};
use serde_json::Value;

/// The partition of the runs' processing time (the run id's day).
const DT: &str = "dt=2026-12-04";

fn corpus(rel: &str) -> PathBuf {
    fleet_test_support::corpora().canonicalize().unwrap().join(rel)
}

/// Runs one shard with `vars` (FLEET_RUN_ID fixed unless given).
fn run(vars: &[(&str, String)]) -> Result<RunSummary<Metrics>, String> {
    let mut all: Vec<(&str, String)> =
        vec![("FLEET_RUN_ID", "run-20261204T080000Z".into()), ("FLEET_THREADS", "2".into())];
    all.extend(vars.iter().cloned());
    let config = fleet_worker::configure_from_vars::<NdjsonConverter, _, _>(all).map_err(|e| e.to_string())?;
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let job = Job::new("ndjson-converter", config.common).map_err(|e| fleet_worker::chain(&e))?;
        convert(&job, &config.settings).await.map_err(|e| fleet_worker::chain(&e))
    })
}

fn files(dir: &Path, under: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(under))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    v.sort();
    v
}

/// The batches of every Parquet file of `under` below `dir`, in file order.
fn read(dir: &Path, under: &str) -> Vec<RecordBatch> {
    files(dir, under)
        .iter()
        .flat_map(|f| {
            let file = std::fs::File::open(f).unwrap();
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn one(batches: Vec<RecordBatch>) -> RecordBatch {
    let schema = batches[0].schema();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The quarantine: (file name, line, column, message) per bad line.
fn quarantine(out: &Path) -> Vec<(String, i64, String, String)> {
    let b = one(read(out, "_rejects/dt=2026-12-04"));
    let (source, row) = (b.column_by_name("source").unwrap().as_string::<i32>(), b.column_by_name("row").unwrap());
    let (column, message) = (
        b.column_by_name("column").unwrap().as_string::<i32>(),
        b.column_by_name("message").unwrap().as_string::<i32>(),
    );
    (0..b.num_rows())
        .map(|i| {
            (
                source.value(i).rsplit('/').next().unwrap().to_string(),
                row.as_primitive::<Int64Type>().value(i),
                column.value(i).to_string(),
                message.value(i).to_string(),
            )
        })
        .collect()
}

fn manifest(dir: &Path, files: &[&str]) -> String {
    let uris: Vec<String> = files.iter().map(|f| format!("file://{}", corpus(f).display())).collect();
    let path = dir.join("input.manifest.json");
    std::fs::write(&path, serde_json::to_vec(&serde_json::json!({"fileLocations": [{"URIs": uris}]})).unwrap())
        .unwrap();
    path.display().to_string()
}

fn dir_uri(p: &Path) -> String {
    format!("{}/", p.display())
}

#[test]
fn duckdb_malformed_cases_are_quarantined_by_file_and_line_and_the_rest_converted() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let input = manifest(
        tmp.path(),
        &[
            "duckdb-json/example_n.ndjson",
            "duckdb-json/example_r.ndjson",
            "duckdb-json/example_rn.ndjson.gz",
            "duckdb-json/unterminated_quotes.ndjson",
            "duckdb-json/trailing_content.ndjson",
            "duckdb-json/multiple_objects_per_line.ndjson",
            "duckdb-json/duplicate_key.ndjson",
            "duckdb-json/inconsistent_schemas.ndjson",
            "duckdb-json/union.ndjson",
            "duckdb-json/whitespace_only.json",
            "duckdb-json/malformed/union/non_object.ndjson",
        ],
    );
    let s = run(&[("FLEET_INPUT", input), ("FLEET_OUTPUT", dir_uri(&out)), ("FLEET_MAX_REJECT_RATIO", "0.2".into())])
        .unwrap();
    // every line is a row or quarantined; the two blank lines are counted apart
    assert_eq!((s.rows_in, s.rows_out, s.rows_rejected), (38, 34, 4));
    assert_eq!(s.metrics.blank_lines.load(std::sync::atomic::Ordering::Relaxed), 2);
    let q = quarantine(&out);
    let q: Vec<(&str, i64, &str, &str)> =
        q.iter().map(|(f, l, c, m)| (f.as_str(), *l, c.as_str(), m.as_str())).collect();
    assert_eq!(
        q,
        [
            ("duplicate_key.ndjson", 3, "/id", "a member given twice at member /id"),
            ("multiple_objects_per_line.ndjson", 1, "", "trailing characters at byte 44"),
            ("trailing_content.ndjson", 2, "", "trailing characters at byte 7"),
            ("unterminated_quotes.ndjson", 3, "", "EOF while parsing a string at byte 25"),
        ]
    );
    let b = one(read(&out, DT));
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    // LF, CR and CRLF (gzip) files give the same rows
    let names = col("name");
    let names = names.as_string::<i32>();
    let source = col("_source_file");
    let source = source.as_string::<i32>();
    let films = |f: &str| -> Vec<&str> {
        (0..b.num_rows()).filter(|&i| source.value(i).ends_with(f)).map(|i| names.value(i)).collect()
    };
    assert_eq!(films("example_n.ndjson"), films("example_r.ndjson"));
    assert_eq!(films("example_n.ndjson"), films("example_rn.ndjson.gz"));
    assert_eq!(films("example_n.ndjson").len(), 5);
    // a member that is a string, a number and an array: JSON text
    let id = col("id");
    let id = id.as_string::<i32>();
    let inconsistent: Vec<&str> = (0..b.num_rows())
        .filter(|&i| source.value(i).ends_with("inconsistent_schemas.ndjson"))
        .map(|i| id.value(i))
        .collect();
    assert_eq!(inconsistent, [r#""1""#, "2", "[3]", "4", "5"]);
    // objects with different members merge into one struct; `data: 0` beside them makes it JSON text
    let data = col("data");
    let data = data.as_string::<i32>();
    let union: Vec<&str> =
        (0..b.num_rows()).filter(|&i| source.value(i).contains("union")).map(|i| data.value(i)).collect();
    assert_eq!(union, ["0", r#"{"name":"Frank"}"#, r#"{"age":5}"#, r#"{"veteran":false}"#]);
    let schema: Vec<Value> =
        serde_json::from_slice(&std::fs::read(out.join("_runs/run-20261204T080000Z/schema.json")).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_string(&schema).unwrap(),
        r#"[{"Name":"id","Type":"json"},{"Name":"name","Type":"string"},{"Name":"data","Type":"json"},{"Name":"a","Type":"bigint"}]"#
    );
    // committed, and the table's catalog entry names the metadata columns' types
    assert!(out.join("dt=2026-12-04/_commits/shard-00000-of-00001.json").exists());
    let table: Value =
        serde_json::from_slice(&std::fs::read(out.join("_runs/run-20261204T080000Z/table_input.json")).unwrap())
            .unwrap();
    let cols = &table["TableInput"]["StorageDescriptor"]["Columns"];
    assert_eq!(cols[4], serde_json::json!({"Name": "_source_file", "Type": "string"}));
    assert_eq!(cols[5], serde_json::json!({"Name": "_processing_timestamp", "Type": "timestamp"}));
}

#[test]
fn qed_ids_beyond_2_to_the_53_survive_exactly_and_nesting_becomes_structs_and_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let path = corpus("qed-nq-explanations/qed-dev.jsonlines");
    let s = run(&[("FLEET_INPUT", path.display().to_string()), ("FLEET_OUTPUT", dir_uri(&out))]).unwrap();
    assert_eq!((s.rows_in, s.rows_out, s.rows_rejected), (1355, 1355, 0));
    let b = one(read(&out, DT));
    let ids = b.column_by_name("example_id").unwrap().as_primitive::<Int64Type>().values().to_vec();
    let want: Vec<i64> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["example_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, want);
    assert!(ids.iter().filter(|v| v.unsigned_abs() > 1 << 53).count() > 1000);
    let types: BTreeMap<String, String> = serde_json::from_slice::<Vec<Value>>(
        &std::fs::read(out.join("_runs/run-20261204T080000Z/schema.json")).unwrap(),
    )
    .unwrap()
    .iter()
    .map(|c| (c["Name"].as_str().unwrap().to_string(), c["Type"].as_str().unwrap().to_string()))
    .collect();
    assert_eq!(types["example_id"], "bigint");
    assert_eq!(types["sentence_starts"], "array<bigint>");
    assert_eq!(types["original_nq_answers"], "array<array<struct<start:bigint,end:bigint,string:string>>>");
    // members in the order first seen; `bridge` is false or a string: string
    let span = "struct<start:bigint,end:bigint,string:string>";
    let bridged = "struct<start:bigint,end:bigint,bridge:string,string:string>";
    assert_eq!(
        types["annotation"],
        format!(
            "struct<referential_equalities:array<struct<question_reference:{span},sentence_reference:{bridged}>>,\
             answer:array<struct<sentence_reference:{bridged},paragraph_reference:{span}>>,\
             explanation_type:string,selected_sentence:{span}>"
        )
    );
    // every row has the run's processing time
    let ts = b.column_by_name("_processing_timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
    assert!(ts.values().iter().all(|&t| t == 1_796_371_200_000_000));
}

/// One line per document, as serde_json writes it.
fn minified(paths: &[PathBuf]) -> (String, Vec<serde_json::Map<String, Value>>) {
    let mut text = String::new();
    let mut docs = Vec::new();
    for p in paths {
        let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        let Value::Object(m) = v else { continue };
        text.push_str(&serde_json::to_string(&m).unwrap());
        text.push('\n');
        docs.push(m);
    }
    (text, docs)
}

#[test]
fn every_value_of_the_simdjson_and_json_resume_documents_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut paths: Vec<PathBuf> = ["twitter.json", "citm_catalog.json", "canada.json"]
        .iter()
        .map(|f| corpus("simdjson-data/jsonexamples").join(f))
        .collect();
    let mut resumes: Vec<PathBuf> =
        std::fs::read_dir(corpus("jsonresume-fake/resumes")).unwrap().map(|e| e.unwrap().path()).collect();
    resumes.sort();
    paths.extend(resumes);
    let (text, docs) = minified(&paths);
    assert!(docs.len() > 300);
    std::fs::write(tmp.path().join("docs.ndjson"), &text).unwrap();
    let input = tmp.path().join("docs.ndjson").display().to_string();
    // all columns as strings: each cell is the member's string, or its JSON text
    let out = tmp.path().join("strings");
    let s =
        run(&[("FLEET_INPUT", input.clone()), ("FLEET_OUTPUT", dir_uri(&out)), ("FLEET_ALL_STRINGS", "true".into())])
            .unwrap();
    assert_eq!((s.rows_out, s.rows_rejected), (docs.len() as u64, 0));
    let b = one(read(&out, DT));
    let mut checked = 0;
    for (r, doc) in docs.iter().enumerate() {
        for f in b.schema().fields().iter().filter(|f| !f.name().starts_with('_')) {
            let col = b.column_by_name(f.name()).unwrap().as_string::<i32>();
            match doc.get(f.name()) {
                None | Some(Value::Null) => assert!(col.is_null(r), "{} row {r}", f.name()),
                Some(Value::String(s)) => assert_eq!(col.value(r), s),
                Some(v) => assert_eq!(&serde_json::from_str::<Value>(col.value(r)).unwrap(), v, "{} row {r}", f.name()),
            }
            checked += 1;
        }
    }
    assert!(checked > 3000, "{checked}");
    // inferred: structs and lists where the shapes agree, nothing quarantined
    let out = tmp.path().join("typed");
    let s = run(&[("FLEET_INPUT", input), ("FLEET_OUTPUT", dir_uri(&out))]).unwrap();
    assert_eq!((s.rows_out, s.rows_rejected), (docs.len() as u64, 0));
    let b = one(read(&out, DT));
    assert!(matches!(b.column_by_name("basics").unwrap().data_type(), arrow_schema::DataType::Struct(_)));
    assert!(matches!(b.column_by_name("work").unwrap().data_type(), arrow_schema::DataType::List(_)));
}

#[test]
fn records_of_20_mb_and_more_convert_beside_small_ones_compressed() {
    let tmp = tempfile::tempdir().unwrap();
    // a 24 MB string, and 21 MB of nested array
    let big_string = format!(r#"{{"id":1,"blob":"{}","items":[]}}"#, "x".repeat(24 << 20));
    let items: Vec<String> = (0..400_000).map(|i| format!(r#"{{"k":{i},"v":"value {i:>40}"}}"#)).collect();
    let big_array = format!(r#"{{"id":2,"blob":"small","items":[{}]}}"#, items.join(","));
    assert!(big_array.len() > 20 << 20);
    let text =
        format!("{{\"id\":0}}\n{big_string}\n{big_array}\n{{\"id\":3,\"items\":[{{\"k\":18446744073709551616}}]}}\n");
    let gz = tmp.path().join("in/big.ndjson.gz");
    std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap();
    std::fs::write(tmp.path().join("in/big.ndjson.zst"), zstd::encode_all(text.as_bytes(), 1).unwrap()).unwrap();
    let out = tmp.path().join("out");
    let s = run(&[("FLEET_INPUT", dir_uri(&tmp.path().join("in"))), ("FLEET_OUTPUT", dir_uri(&out))]).unwrap();
    assert_eq!((s.rows_in, s.rows_out, s.rows_rejected), (8, 8, 0));
    let b = one(read(&out, DT));
    let blob = b.column_by_name("blob").unwrap().as_string::<i32>();
    assert_eq!(blob.value(1).len(), 24 << 20);
    let items = b.column_by_name("items").unwrap().as_list::<i32>();
    assert_eq!(items.value(2).len(), 400_000);
    // 2^64 does not fit 64 bits: decimal(38,0), exact
    let k = items.value(3);
    let k = k.as_struct().column_by_name("k").unwrap().as_primitive::<Decimal128Type>().value(0);
    assert_eq!(k, 18446744073709551616);
    let source = b.column_by_name("_source_file").unwrap().as_string::<i32>();
    assert!(source.value(0).ends_with("big.ndjson.gz") && source.value(7).ends_with("big.ndjson.zst"));
}

#[test]
fn a_given_schema_quarantines_what_does_not_fit_and_too_many_fail_the_shard_uncommitted() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("in")).unwrap();
    let mut lines: Vec<String> = (0..98).map(|i| format!(r#"{{"id":{i},"score":{i}.5,"tags":["t{i}"]}}"#)).collect();
    lines.push(r#"{"id":"x"}"#.into());
    lines.push(r#"{"id":5,"extra":true}"#.into());
    std::fs::write(tmp.path().join("in/a.ndjson"), lines.join("\n")).unwrap();
    let schema = r#"[{"Name":"id","Type":"bigint"},{"Name":"score","Type":"decimal(10,1)"},{"Name":"tags","Type":"array<string>"}]"#;
    std::fs::write(tmp.path().join("schema.json"), schema).unwrap();
    let out = tmp.path().join("out");
    let vars = |ratio: &str| {
        vec![
            ("FLEET_INPUT", dir_uri(&tmp.path().join("in"))),
            ("FLEET_OUTPUT", dir_uri(&out)),
            ("FLEET_SCHEMA", tmp.path().join("schema.json").display().to_string()),
            ("FLEET_MAX_REJECT_RATIO", ratio.to_string()),
        ]
    };
    let e = run(&vars("0.01")).unwrap_err();
    assert!(e.contains("2 of 100 rows (0.0200) had a rejected cell"), "{e}");
    assert!(!out.join("dt=2026-12-04/_commits/shard-00000-of-00001.json").exists());
    let q = quarantine(&out);
    assert_eq!(
        q,
        [
            (
                "a.ndjson".to_string(),
                99,
                "/id".to_string(),
                r#"expected bigint, found the string "x" at member /id"#.to_string()
            ),
            ("a.ndjson".into(), 100, "/extra".into(), "a member the schema does not have at member /extra".into()),
        ]
    );
    run(&vars("0.05")).unwrap();
    let first: Vec<(PathBuf, Vec<u8>)> =
        files(&out, DT).into_iter().map(|f| (f.clone(), std::fs::read(f).unwrap())).collect();
    // a rerun writes the same files, byte for byte
    run(&vars("0.05")).unwrap();
    let again: Vec<(PathBuf, Vec<u8>)> =
        files(&out, DT).into_iter().map(|f| (f.clone(), std::fs::read(f).unwrap())).collect();
    assert_eq!(first, again);
    let b = one(read(&out, DT));
    let score = b.column_by_name("score").unwrap().as_primitive::<Decimal128Type>();
    assert_eq!((score.value(3), score.precision(), score.scale()), (35, 10, 1));
    // the inline form, and bad schemas named
    let inline = vec![("FLEET_SCHEMA", schema.to_string()), ("FLEET_MAX_REJECT_RATIO", "1".into())];
    let bad = |s: &str| run(&[vars("1")[..2].to_vec(), vec![("FLEET_SCHEMA", s.to_string())]].concat()).unwrap_err();
    assert!(
        bad(r#"[{"Name":"id","Type":"map<string,int>"}]"#)
            .contains(r#"column "id": type "map<string,int>": unknown type "map""#)
    );
    let s = run(&[vars("1")[..2].to_vec(), inline].concat()).unwrap();
    assert_eq!((s.rows_out, s.rows_rejected, s.metrics.schema.as_str()), (98, 2, "inline"));
}

#[test]
fn settings_are_checked_before_any_work() {
    let e = run(&[
        ("FLEET_INPUT", "/tmp/in/".into()),
        ("FLEET_OUTPUT", "/tmp/out/".into()),
        ("FLEET_RUN_ID", "nightly".into()),
    ])
    .unwrap_err();
    assert!(e.contains("FLEET_PROCESSING_TIME"), "{e}");
    let e = run(&[
        ("FLEET_INPUT", "/tmp/in/".into()),
        ("FLEET_OUTPUT", "/tmp/out/".into()),
        ("FLEET_TARGET_FILE_BYTES", "10".into()),
    ])
    .unwrap_err();
    assert!(e.contains("FLEET_TARGET_FILE_BYTES"), "{e}");
    // nothing to infer columns from
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("blank.ndjson"), "\n \n").unwrap();
    let e = run(&[
        ("FLEET_INPUT", tmp.path().join("blank.ndjson").display().to_string()),
        ("FLEET_OUTPUT", dir_uri(&tmp.path().join("out"))),
    ])
    .unwrap_err();
    assert!(e.contains("there are no columns to write; give FLEET_SCHEMA"), "{e}");
}
