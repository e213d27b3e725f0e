//! trainer-feeder end to end on the local store: generated raw and targets
//! tables, feature-parser's output, then the join, the splits, the
//! statistics, the models and their artifacts, twice for reproducibility.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, RecordBatch};
use fleet_catalog::CommitMarker;
use fleet_models::Model;
use fleet_store::Location;
use fleet_synth::{Generator, Profile};
use fleet_trainer::{Config, Split, TrainMetrics};
use fleet_worker::RunSummary;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap().map(Result::unwrap).collect()
}

/// pid -> actual_age (None when NULL) of a targets folder.
fn targets(dir: &Path) -> HashMap<String, Option<i32>> {
    let mut out = HashMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        for b in read(&f) {
            let pid = b.column_by_name("pid").unwrap().as_string::<i32>().clone();
            let age = b.column_by_name("actual_age").unwrap().as_primitive::<Int32Type>().clone();
            for r in 0..b.num_rows() {
                out.insert(pid.value(r).to_string(), age.is_valid(r).then(|| age.value(r)));
            }
        }
    }
    out
}

async fn features(dir: &Path, rows: u64) -> (String, String) {
    let raw = Location::parse(&format!("{}/raw/", dir.display())).unwrap();
    let tgt = Location::parse(&format!("{}/targets/", dir.display())).unwrap();
    Generator::new(Profile::Typical).with_rows(rows).with_files(3).with_seed(5).write(&raw, Some(&tgt)).await.unwrap();
    let out = format!("{}/features/", dir.display());
    let c = fleet_features::Config::from_vars([
        ("FLEET_INPUT", raw.uri() + "/"),
        ("FLEET_OUTPUT", out.clone()),
        ("FLEET_THREADS", "2".into()),
    ])
    .unwrap();
    fleet_features::FeatureParser::new(c).await.unwrap().run().await.unwrap();
    (out, tgt.uri() + "/")
}

async fn train(features: &str, targets: &str, output: &str, extra: &[(&str, &str)]) -> RunSummary<TrainMetrics> {
    let mut v: Vec<(&str, &str)> = vec![
        ("FLEET_FEATURES", features),
        ("FLEET_TARGETS", targets),
        ("FLEET_OUTPUT", output),
        ("FLEET_THREADS", "2"),
        ("FLEET_RUN_ID", "t"),
        ("FLEET_GBDT_MAX_ITER", "30"),
    ];
    v.extend_from_slice(extra);
    fleet_trainer::train_and_report(Config::from_vars(v).unwrap()).await.unwrap()
}

fn without_fit_seconds(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("fit_seconds");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_splits_statistics_models_and_reproducibility() {
    let tmp = tempfile::tempdir().unwrap();
    let (features, targets_uri) = features(tmp.path(), 9000).await;
    let truth = targets(&tmp.path().join("targets"));
    // the third targets file left out: its 3000 pids have features but no target
    let manifest = tmp.path().join("targets.manifest");
    std::fs::write(&manifest, format!("{targets_uri}part-00000.parquet\n{targets_uri}part-00001.parquet\n")).unwrap();
    let given: HashMap<&String, &Option<i32>> = truth
        .iter()
        .filter(|(p, _)| {
            // the generator writes rows in order, 3000 per file
            let i: u64 = p.rsplit('-').next().unwrap().parse().unwrap();
            i < 6000
        })
        .collect();
    let valid = given.values().filter(|a| a.is_some_and(|a| (14..=100).contains(&a))).count() as u64;
    let invalid = given.len() as u64 - valid;
    assert!(invalid > 0, "the generator writes some invalid targets");

    let out1 = format!("{}/trained1/", tmp.path().display());
    let s = train(&features, manifest.to_str().unwrap(), &out1, &[("FLEET_JSONL", "true")]).await;
    let r = &s.metrics.rows;
    assert_eq!((r.targets_rows, r.targets_valid, r.targets_invalid, r.targets_duplicate), (6000, valid, invalid, 0));
    assert_eq!((r.features_rows, r.features_without_target, r.features_with_invalid_target), (9000, 3000, invalid));
    assert_eq!(r.rows_joined, valid);
    assert_eq!(r.rows_per_split.iter().sum::<u64>(), valid);
    assert_eq!((s.rows_in, s.rows_out), (9000, valid));

    // every row in the split its pid hashes to, with its own target
    let split = Split { train: 8000, validation: 1000, test: 1000 };
    let dir = tmp.path().join("trained1");
    for (i, name) in fleet_trainer::SPLITS.iter().enumerate() {
        let batches = read(&dir.join(fleet_trainer::split_key(name)));
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows as u64, r.rows_per_split[i], "{name}");
        let schema = batches[0].schema();
        assert_eq!(schema.field(0).name(), "pid");
        assert_eq!(schema.fields().last().unwrap().name(), "actual_age");
        assert_eq!(schema.fields().len(), 22, "pid, 20 features, actual_age");
        for b in &batches {
            let pid = b.column(0).as_string::<i32>();
            let age = b.column_by_name("actual_age").unwrap().as_primitive::<Int32Type>();
            for row in 0..b.num_rows() {
                assert_eq!(split.of(pid.value(row).as_bytes()), i);
                assert_eq!(truth[pid.value(row)], Some(age.value(row)));
            }
        }
        let jsonl = std::fs::read_to_string(dir.join(fleet_trainer::jsonl_key(name))).unwrap();
        assert_eq!(jsonl.lines().count(), rows);
        let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first.as_object().unwrap().len(), 22, "explicit nulls: {first}");
    }
    assert!(r.rows_per_split[0] > 6 * r.rows_per_split[1] && r.rows_per_split[1] > 0 && r.rows_per_split[2] > 0);

    // statistics of the target on train agree with the file
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    let ages: Vec<f64> = read(&dir.join(fleet_trainer::split_key("train")))
        .iter()
        .flat_map(|b| {
            b.column_by_name("actual_age")
                .unwrap()
                .as_primitive::<Int32Type>()
                .values()
                .iter()
                .map(|&a| a as f64)
                .collect::<Vec<_>>()
        })
        .collect();
    let st = &stats["splits"]["train"]["actual_age"];
    assert_eq!(st["count"], ages.len() as u64);
    assert_eq!(st["nulls"], 0);
    let mean = ages.iter().sum::<f64>() / ages.len() as f64;
    assert!((st["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert_eq!(st["min"].as_f64().unwrap(), ages.iter().copied().fold(f64::MAX, f64::min));
    assert!(stats["splits"]["test"]["graduation_year"]["nulls"].as_u64().unwrap() > 0);
    assert_eq!(stats["rows"]["features_without_target"], 3000);

    // the models learn: gbdt beats ridge beats the mean, on validation and test
    let m = &s.metrics.models;
    assert_eq!(m.iter().map(|m| m.model.as_str()).collect::<Vec<_>>(), ["mean", "ridge", "gbdt"]);
    for split in ["validation", "test"] {
        let mae = |i: usize| if split == "test" { m[i].test.mae } else { m[i].validation.mae };
        assert!(mae(2) < mae(1) && mae(1) < mae(0) * 0.7, "{split}: {m:?}");
    }
    assert_eq!(m[2].gbdt.as_ref().unwrap().iterations, 30);
    for mm in m {
        let model = Model::from_bytes(
            "model.json",
            &std::fs::read(dir.join(format!("models/{}/model.json", mm.model))).unwrap(),
        )
        .unwrap();
        assert_eq!(model.version(), mm.version);
        assert_eq!(model.features.len(), 20);
    }
    let report = std::fs::read_to_string(dir.join("models/report.html")).unwrap();
    assert!(report.contains("<svg") && report.contains(&m[2].version) && report.contains("Error by age band"));

    // the marker last, listing the three splits
    let marker: CommitMarker =
        serde_json::from_slice(&std::fs::read(dir.join("_commits/shard-00000-of-00001.json")).unwrap()).unwrap();
    assert_eq!(marker.files.len(), 3);
    assert_eq!(marker.rows, valid);

    // the same inputs and settings: the same bytes (fit seconds aside)
    let out2 = format!("{}/trained2/", tmp.path().display());
    train(&features, manifest.to_str().unwrap(), &out2, &[("FLEET_JSONL", "true")]).await;
    let dir2 = tmp.path().join("trained2");
    for key in [
        "splits/train/part-00000.parquet",
        "splits/validation/part-00000.parquet",
        "splits/test/part-00000.parquet",
        "jsonl/test/part-00000.jsonl",
        "stats.json",
        "models/mean/model.json",
        "models/ridge/model.json",
        "models/gbdt/model.json",
    ] {
        assert!(std::fs::read(dir.join(key)).unwrap() == std::fs::read(dir2.join(key)).unwrap(), "{key} differs");
    }
    for key in ["models/gbdt/metrics.json", "models/metrics.json"] {
        let a = without_fit_seconds(&std::fs::read(dir.join(key)).unwrap());
        assert_eq!(a, without_fit_seconds(&std::fs::read(dir2.join(key)).unwrap()), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let feats = tmp.path().join("f");
    std::fs::create_dir_all(&feats).unwrap();
    let tgt = tmp.path().join("t");
    std::fs::create_dir_all(&tgt).unwrap();
    std::fs::write(tgt.join("x.jsonl"), "{}\n").unwrap();
    let cfg = Config::from_vars([
        ("FLEET_FEATURES", format!("{}/", feats.display())),
        ("FLEET_TARGETS", format!("{}/", tgt.display())),
        ("FLEET_OUTPUT", format!("{}/o/", tmp.path().display())),
    ])
    .unwrap();
    let err = fleet_trainer::train_and_report(cfg).await.unwrap_err();
    assert_eq!(err.exit_code(), 4);
    assert!(fleet_worker::chain(&err).contains("x.jsonl is not a Parquet file"), "{}", fleet_worker::chain(&err));

    // targets whose age is text: the column and the expected type named
    std::fs::remove_file(tgt.join("x.jsonl")).unwrap();
    let batch = RecordBatch::try_from_iter([
        ("pid", std::sync::Arc::new(arrow_array::StringArray::from(vec!["a"])) as arrow_array::ArrayRef),
        ("actual_age", std::sync::Arc::new(arrow_array::StringArray::from(vec!["forty"])) as _),
    ])
    .unwrap();
    let loc = Location::parse(&format!("{}/", tgt.display())).unwrap();
    let mut sink =
        fleet_store::ParquetSink::create(&loc, loc.join("t.parquet").unwrap(), batch.schema(), &Default::default())
            .unwrap();
    sink.write(&batch).await.unwrap();
    sink.close().await.unwrap();
    let cfg = Config::from_vars([
        ("FLEET_FEATURES", format!("{}/", feats.display())),
        ("FLEET_TARGETS", format!("{}/", tgt.display())),
        ("FLEET_OUTPUT", format!("{}/o/", tmp.path().display())),
    ])
    .unwrap();
    let err = fleet_trainer::train_and_report(cfg).await.unwrap_err();
    assert_eq!(err.exit_code(), 4);
    let msg = fleet_worker::chain(&err);
    assert!(msg.ends_with("t.parquet: feature \"actual_age\" is Utf8View; expected a number or a boolean"), "{msg}");
}
