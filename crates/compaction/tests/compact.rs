//! The compactor on a table of many small files across hours and days, on
//! the local store: rows out equal rows in per partition, the files packed
//! to the target, the hour kept as a column when days are compacted, a
//! rerun overwriting the same files, the modes' selection, bad tables named.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use fleet_compaction::{Compactor, Metrics};
use fleet_store::{Location, ParquetSink, WriteOptions};

/// Writes `rows` rows to `<dir>/<key>`: id, the hour, and in odd files an
/// extra column (a table whose schema grew).
async fn small_file(dir: &Path, key: &str, first_id: i64, rows: usize, extra: bool) {
    let loc = Location::parse(&format!("{}/", dir.display())).unwrap();
    let mut fields = vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)];
    if extra {
        fields.push(Field::new("score", DataType::Int64, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let ids: Vec<i64> = (first_id..first_id + rows as i64).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    let mut cols: Vec<Arc<dyn Array>> =
        vec![Arc::new(Int64Array::from(ids.clone())), Arc::new(StringArray::from(names))];
    if extra {
        cols.push(Arc::new(Int64Array::from(ids.iter().map(|i| i * 10).collect::<Vec<_>>())));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut sink = ParquetSink::create(&loc, loc.join(key).unwrap(), schema, &WriteOptions::default()).unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
}

/// 3 days × 4 hours × 6 files of 200 rows: 72 files, 14,400 rows.
async fn table(dir: &Path) -> u64 {
    let mut id = 0;
    for day in 1..=3 {
        for hour in 0..4 {
            for f in 0..6 {
                let key = format!("year=2025/month=07/day={day:02}/hour={hour:02}/part-{f}.parquet");
                small_file(dir, &key, id, 200, f % 2 == 1).await;
                id += 200;
            }
        }
    }
    // bookkeeping that is not data
    std::fs::create_dir_all(dir.join("_runs/r0")).unwrap();
    std::fs::write(dir.join("_runs/r0/summary.json"), "{}").unwrap();
    id as u64
}

fn run(vars: &[(&str, String)]) -> Result<(), String> {
    let config = fleet_worker::configure_from_vars::<Compactor, _, _>(vars.iter().map(|(k, v)| (*k, v.clone())))
        .map_err(|e| e.to_string())?;
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(<Compactor as fleet_worker::Worker>::run(config))
        .map_err(|e| fleet_worker::chain(&e))
}

/// Rows and data files per partition folder under `dir`.
fn read_table(dir: &Path) -> BTreeMap<String, (u64, Vec<String>, Vec<String>)> {
    let mut out: BTreeMap<String, (u64, Vec<String>, Vec<String>)> = BTreeMap::new();
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap().to_string_lossy().to_string();
        if !rel.ends_with(".parquet") || rel.starts_with('_') {
            continue;
        }
        let (partition, name) = rel.rsplit_once('/').unwrap();
        let file = std::fs::File::open(&entry).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let columns: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        let rows = reader.metadata().file_metadata().num_rows() as u64;
        let e = out.entry(partition.to_string()).or_default();
        e.0 += rows;
        e.1.push(name.to_string());
        e.2 = columns;
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

#[test]
fn a_day_of_small_hourly_files_becomes_a_few_files_with_every_row_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("events");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = rt.block_on(table(&src));
    let input = format!("{}/", src.display());
    let target: u64 = 1 << 20;
    // the target's floor is 1 MiB: far more than 24 small files, so one file a day
    run(&[
        ("FLEET_INPUT", input.clone()),
        ("FLEET_COMPACT_MODE", "full".to_string()),
        ("FLEET_PARTITION_MODE", "day".to_string()),
        ("FLEET_TARGET_FILE_BYTES", target.to_string()),
        ("FLEET_RUN_ID", "c1".to_string()),
    ])
    .unwrap();
    let out = tmp.path().join("events-compact");
    let t = read_table(&out);
    assert_eq!(
        t.keys().cloned().collect::<Vec<_>>(),
        ["year=2025/month=07/day=01", "year=2025/month=07/day=02", "year=2025/month=07/day=03"]
    );
    for (p, (n, files, columns)) in &t {
        assert_eq!(*n, rows / 3, "{p}");
        assert_eq!(files.len(), 1, "{p}: {files:?}");
        // the union of the columns, and the hour each row came from
        assert_eq!(columns, &["id", "name", "score", "hour"], "{p}");
    }
    let marker: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("year=2025/month=07/day=02/_commits/shard-00000-of-00001.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(marker["rows"].as_u64(), Some(rows / 3));
    assert_eq!(marker["files"][0]["crc32c"].as_str().unwrap().len(), 8);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_runs/c1/shard-00000-of-00001.json")).unwrap()).unwrap();
    assert_eq!(summary["rows_in"].as_u64(), Some(rows));
    assert_eq!(summary["rows_out"].as_u64(), Some(rows));
    let m: Metrics =
        Metrics { units: 3, files_in: 72, files_rewritten: 72, files_kept: 0, files_out: 3, stale_files_removed: 0 };
    for (k, v) in serde_json::to_value(&m).unwrap().as_object().unwrap() {
        assert_eq!(&summary[k], v, "{k}");
    }

    // the hour column holds each source file's hour
    let f = out.join("year=2025/month=07/day=01").join(&t["year=2025/month=07/day=01"].1[0]);
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
    let mut hours = BTreeMap::new();
    let mut scores_null = 0;
    for b in reader {
        let b = b.unwrap();
        let h = b.column_by_name("hour").unwrap().as_any().downcast_ref::<arrow_array::StringViewArray>().unwrap();
        for i in 0..b.num_rows() {
            *hours.entry(h.value(i).to_string()).or_insert(0) += 1;
        }
        scores_null += b.column_by_name("score").unwrap().null_count();
    }
    assert_eq!(
        hours,
        BTreeMap::from([("00".into(), 1200), ("01".into(), 1200), ("02".into(), 1200), ("03".into(), 1200)])
    );
    assert_eq!(scores_null, 2400, "the files without the column");

    // hourly, incremental for 2025-07-03: only the 2nd's hours, each one file
    run(&[
        ("FLEET_INPUT", input.clone()),
        ("FLEET_OUTPUT", format!("{}/hourly/", tmp.path().display())),
        ("FLEET_COMPACT_MODE", "day".to_string()),
        ("FLEET_COMPACT_DAY", "2025-07-02".to_string()),
    ])
    .unwrap();
    let t = read_table(&tmp.path().join("hourly"));
    assert_eq!(t.len(), 4);
    assert!(t.keys().all(|p| p.starts_with("year=2025/month=07/day=02/hour=")), "{t:?}");
    assert!(t.values().all(|(n, files, cols)| *n == 1200 && files.len() == 1 && cols == &["id", "name", "score"]));
}

#[test]
fn a_rerun_overwrites_the_same_files_and_removes_those_of_other_bins() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("t");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for f in 0..30 {
            small_file(&src, &format!("dt=2025-07-01/part-{f:02}.parquet"), f * 100, 100, false).await;
        }
    });
    // one file already near the 1 MiB target: kept as it is
    rt.block_on(async {
        let loc = Location::parse(&format!("{}/", src.display())).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        // incompressible names: about 1.2 MB
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let names: Vec<String> = (0..20_000)
            .map(|_| {
                (0..4)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect()
            })
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from((0..20_000).collect::<Vec<i64>>())), Arc::new(StringArray::from(names))],
        )
        .unwrap();
        let opts = WriteOptions::default().with_compression(fleet_store::Compression::UNCOMPRESSED);
        let mut sink =
            ParquetSink::create(&loc, loc.join("dt=2025-07-01/big.parquet").unwrap(), schema, &opts).unwrap();
        sink.write(&batch).await.unwrap();
        sink.close().await.unwrap();
    });
    let big = std::fs::read(src.join("dt=2025-07-01/big.parquet")).unwrap();
    assert!(big.len() as u64 >= (1 << 20) / 10 * 9, "near the target: {}", big.len());
    let input = format!("{}/", src.display());
    let out = tmp.path().join("t-compact/dt=2025-07-01");
    let go = |id: &str| {
        run(&[
            ("FLEET_INPUT", input.clone()),
            ("FLEET_COMPACT_MODE", "full".to_string()),
            ("FLEET_TARGET_FILE_BYTES", "1MiB".to_string()),
            ("FLEET_RUN_ID", id.to_string()),
        ])
    };
    go("a").unwrap();
    let first = read_table(out.parent().unwrap());
    assert_eq!(first["dt=2025-07-01"].0, 3000 + 20_000);
    // the small files in one, the big one as it was
    assert_eq!(first["dt=2025-07-01"].1.len(), 2, "{first:?}");
    assert_eq!(std::fs::read(out.join("big.parquet")).unwrap(), big);
    // a file that an earlier run with other bins left behind
    std::fs::write(out.join("part-00007-deadbeef.parquet"), b"old").unwrap();
    go("b").unwrap();
    let second = read_table(out.parent().unwrap());
    assert_eq!(second, first, "the same file names, the stale one removed");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("t-compact/_runs/b/shard-00000-of-00001.json")).unwrap())
            .unwrap();
    assert_eq!(summary["stale_files_removed"], 1);
}

#[test]
fn bad_tables_and_settings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("t");
    std::fs::create_dir_all(src.join("region=eu")).unwrap();
    std::fs::write(src.join("region=eu/part-0.parquet"), b"x").unwrap();
    let input = format!("{}/", src.display());
    let e = run(&[("FLEET_INPUT", input.clone()), ("FLEET_COMPACT_MODE", "full".to_string())]).unwrap_err();
    assert!(e.contains("region=eu/part-0.parquet: expected a Parquet file under year=YYYY"), "{e}");
    let e = run(&[("FLEET_INPUT", input.clone()), ("FLEET_COMPACT_MODE", "day".to_string())]).unwrap_err();
    assert_eq!(e, "FLEET_COMPACT_DAY is required: expected a date YYYY-MM-DD");
    let e = run(&[("FLEET_INPUT", input.clone()), ("FLEET_COMPACT_MODE", "weekly".to_string())]).unwrap_err();
    assert!(e.contains("FLEET_COMPACT_MODE=\"weekly\" is invalid: expected full, incremental or day"), "{e}");
    let e = run(&[("FLEET_INPUT", input.trim_end_matches('/').to_string())]).unwrap_err();
    assert!(e.contains("is invalid: expected a URI of a table location: a prefix ending in '/'"), "{e}");
    let e = run(&[("FLEET_INPUT", input.clone()), ("FLEET_OUTPUT", format!("{input}compact/"))]).unwrap_err();
    assert!(e.contains("is inside FLEET_INPUT"), "{e}");
}
