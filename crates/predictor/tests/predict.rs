//! batch-predictor end to end on the local store: its predictions are the
//! models evaluated on feature-parser's own output, for every raw row.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use fleet_models::{Matrix, Model, Params};
use fleet_predictor::{BatchPredictor, Config};
use fleet_store::Location;
use fleet_synth::{Generator, Profile};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn vars<'a>(input: &'a str, output: &'a str, model: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("FLEET_INPUT", input),
        ("FLEET_OUTPUT", output),
        ("FLEET_MODEL", model),
        ("FLEET_THREADS", "2"),
        ("FLEET_RUN_ID", "p"),
        ("FLEET_MAX_REJECT_RATIO", "0.2"),
    ]
}

/// A hand-made GBDT over two features, with a learned direction for NULLs.
fn gbdt(dir: &Path) -> Model {
    let json = r#"{"format":"fleet-model","format_version":1,"name":"tiny","target":"actual_age",
      "features":["graduation_year","number_of_jobs"],"kind":"gbdt","rule":"less_equal","base_score":40.0,
      "trees":[{"feature":[0,1,0,0,0],"threshold":[2005.5,2.5,0,0,0],
                "missing_left":[false,true,false,false,false],
                "left":[1,3,-1,-1,-1],"right":[2,4,-1,-1,-1],"value":[0,0,5.0,-10.0,0]}]}"#;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.json"), json).unwrap();
    Model::from_bytes("tiny", json.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_raw_row_gets_the_models_prediction_on_feature_parsers_features() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Location::parse(&format!("{}/raw/", tmp.path().display())).unwrap();
    Generator::new(Profile::Typical)
        .with_rows(4000)
        .with_files(2)
        .with_malformed_share(0.05)
        .write(&raw, None)
        .await
        .unwrap();
    let input = raw.uri() + "/";
    let feats = format!("{}/features/", tmp.path().display());
    let fc = fleet_features::Config::from_vars([
        ("FLEET_INPUT", input.as_str()),
        ("FLEET_OUTPUT", feats.as_str()),
        ("FLEET_MAX_REJECT_RATIO", "0.2"),
    ])
    .unwrap();
    let fs = fleet_features::FeatureParser::new(fc).await.unwrap().run().await.unwrap();
    assert!(fs.rows_rejected > 100);

    let model_dir = tmp.path().join("models/tiny");
    let tiny = gbdt(&model_dir);
    let mean = Model::new("mean", "actual_age", vec![], Params::Mean { value: 41.5 });
    let mean_file = tmp.path().join("mean.json");
    std::fs::write(&mean_file, mean.to_json()).unwrap();
    let models = format!("{}/, base={}", model_dir.display(), mean_file.display());
    let out = format!("{}/predictions/", tmp.path().display());
    let config = Config::from_vars(vars(&input, &out, &models)).unwrap();
    let s = BatchPredictor::new(config).await.unwrap().run().await.unwrap();
    assert_eq!((s.rows_in, s.rows_out), (4000, 4000));
    assert_eq!((s.rows_rejected, s.rejected_cells), (fs.rows_rejected, fs.rejected_cells));
    let versions: Vec<&str> = s.metrics.models.iter().map(|m| m.version.as_str()).collect();
    let mut base = mean.clone();
    base.name = "base".into();
    assert_eq!(versions, [tiny.version(), base.version()]);

    // the features feature-parser wrote, by pid
    let mut expected: HashMap<String, f32> = HashMap::new();
    let mut null_years = 0;
    for b in read_dir(&tmp.path().join("features/dt=2025-07-01")) {
        let x = Matrix::from_batch(&b, &tiny.features).unwrap();
        let p = tiny.predict(&x);
        null_years += (0..x.rows()).filter(|&r| x.get(0, r).is_nan()).count();
        let pid = b.column_by_name("pid").unwrap().as_string::<i32>();
        for (r, v) in p.iter().enumerate() {
            expected.insert(pid.value(r).to_string(), *v as f32);
        }
    }
    let batches = read_dir(&tmp.path().join("predictions/dt=2025-07-01"));
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["pid", "predicted_age_tiny", "predicted_age_base", "model_version"]);
    let want_version = format!("{},{}", s.metrics.models[0].version, s.metrics.models[1].version);
    let mut rows = 0;
    for b in &batches {
        let pid = b.column(0).as_string::<i32>();
        let tiny_p = b.column(1).as_primitive::<Float32Type>();
        let base_p = b.column(2).as_primitive::<Float32Type>();
        let version = b.column(3).as_string::<i32>();
        for r in 0..b.num_rows() {
            assert_eq!(tiny_p.value(r), expected[pid.value(r)], "{}", pid.value(r));
            assert_eq!(base_p.value(r), 41.5);
            assert_eq!(version.value(r), want_version);
            rows += 1;
        }
    }
    assert_eq!(rows, 4000);
    assert!(null_years > 100, "rows with a NULL feature are predicted too: {null_years}");
    assert!(tmp.path().join("predictions/dt=2025-07-01/_commits/shard-00000-of-00001.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_cannot_be_used_is_a_configuration_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let out = format!("{dir}/out/");
    let missing = Config::from_vars([("FLEET_INPUT", "x/"), ("FLEET_OUTPUT", "y/")]).unwrap_err().to_string();
    assert!(missing.starts_with("FLEET_MODEL is required: expected a model directory"), "{missing}");

    let err =
        BatchPredictor::new(Config::from_vars(vars("x/", &out, &format!("{dir}/nope/"))).unwrap()).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        fleet_worker::chain(&err),
        format!(
            "FLEET_MODEL: {dir}/nope/model.json does not exist; expected a model directory holding model.json, or a model file"
        )
    );

    let odd = Model::new("odd", "actual_age", vec!["shoe_size".into()], Params::Mean { value: 1.0 });
    std::fs::write(tmp.path().join("odd.json"), odd.to_json()).unwrap();
    let err = BatchPredictor::new(Config::from_vars(vars("x/", &out, &format!("{dir}/odd.json"))).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = fleet_worker::chain(&err);
    assert!(
        msg.contains("the model needs feature \"shoe_size\", which the input does not have (it has: pid, "),
        "{msg}"
    );

    let m = Model::new("m", "actual_age", vec![], Params::Mean { value: 1.0 });
    std::fs::write(tmp.path().join("m.json"), m.to_json()).unwrap();
    let same = format!("{dir}/m.json,{dir}/m.json");
    let err = BatchPredictor::new(Config::from_vars(vars("x/", &out, &same)).unwrap()).await.unwrap_err();
    assert!(fleet_worker::chain(&err).contains("two models would write the column predicted_age_m"));
}
