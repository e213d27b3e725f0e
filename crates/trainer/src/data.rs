//! The training data: targets read into a map, the features table streamed
//! and joined to it on pid, each joined row sent to its split's Parquet
//! file (and JSON lines on request) and to its split's [`Matrix`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Int32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_catalog::CommittedFile;
use fleet_models::Matrix;
use fleet_store::{InputFormat, InputObject, Location, ParquetSink, WriteOptions, list_inputs, open_batches};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::config::Split;
use crate::{ID, TARGET, TrainError};
use fleet_worker::JobError;

/// The names of the three splits, in split-index order.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// The youngest and oldest valid ages (FEATURES.md §2).
pub const AGES: std::ops::RangeInclusive<i32> = 14..=100;

const BATCH_ROWS: usize = 8192;

/// How the join went: every features row and every targets row counted once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JoinCounts {
    pub targets_rows: u64,
    pub targets_valid: u64,
    /// NULL or outside 14..=100; dropped.
    pub targets_invalid: u64,
    /// A pid seen before in the targets; the first one is kept.
    pub targets_duplicate: u64,
    pub features_rows: u64,
    /// Rows in the splits: `features_rows - features_without_target - features_with_invalid_target`.
    pub rows_joined: u64,
    pub features_without_target: u64,
    pub features_with_invalid_target: u64,
    /// Rows per split: train, validation, test.
    pub rows_per_split: [u64; 3],
}

/// A split in memory, for training and evaluation.
#[derive(Debug, Clone)]
pub struct SplitData {
    pub x: Matrix,
    pub y: Vec<f64>,
}

/// What reading and splitting produced.
#[derive(Debug)]
pub struct Joined {
    pub counts: JoinCounts,
    /// The features, in the features table's column order.
    pub features: Vec<String>,
    pub splits: [SplitData; 3],
    pub files: Vec<CommittedFile>,
    pub objects: u64,
    pub bytes_read: u64,
}

/// Marks a pid whose target is invalid, so its features rows are counted apart.
const INVALID: i32 = i32::MIN;

/// Reads the targets: pid to age, [`INVALID`] for NULL or out-of-range ages.
async fn read_targets(uri: &str, counts: &mut JoinCounts) -> Result<HashMap<Box<str>, i32>, JobError> {
    let objects = parquet_objects(uri).await?;
    let mut map: HashMap<Box<str>, i32> = HashMap::new();
    for obj in &objects {
        let mut stream = open(obj, &[ID, TARGET]).await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let pid = column(obj, &batch, ID)?;
            let age = Matrix::from_batch(&batch, &[TARGET.to_string()])
                .map_err(|source| TrainError::NotNumeric { uri: obj.uri(), source })?;
            let ages = age.column(0);
            counts.targets_rows += batch.num_rows() as u64;
            for (r, &a) in ages.iter().enumerate() {
                let Some(p) = string_at(&pid, r) else {
                    counts.targets_invalid += 1;
                    continue;
                };
                let valid = a.is_finite() && a.fract() == 0.0 && AGES.contains(&(a as i32));
                let value = if valid { a as i32 } else { INVALID };
                if map.contains_key(p) {
                    counts.targets_duplicate += 1;
                    continue;
                }
                if valid {
                    counts.targets_valid += 1;
                } else {
                    counts.targets_invalid += 1;
                }
                map.insert(p.into(), value);
            }
        }
    }
    Ok(map)
}

/// The Parquet objects of a table, in URI order.
async fn parquet_objects(uri: &str) -> Result<Vec<InputObject>, JobError> {
    let objects = list_inputs(uri).await?;
    for o in &objects {
        if InputFormat::from_name(o.name()) != InputFormat::Parquet {
            return Err(TrainError::NotParquet { uri: o.uri() }.into());
        }
    }
    Ok(objects)
}

async fn open(obj: &InputObject, columns: &[&str]) -> Result<fleet_store::BatchStream, JobError> {
    let empty = Arc::new(Schema::empty());
    Ok(open_batches(obj, InputFormat::Parquet, columns, &[], empty, BATCH_ROWS).await?)
}

/// The string column `name` of `batch` (Utf8, LargeUtf8 or Utf8View).
fn column(obj: &InputObject, batch: &RecordBatch, name: &'static str) -> Result<ArrayRef, JobError> {
    let c = batch.column_by_name(name).ok_or_else(|| TrainError::Column {
        uri: obj.uri(),
        column: name.into(),
        message: "is missing; expected a string column (the id both tables are joined on)".into(),
    })?;
    match c.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(c.clone()),
        t => Err(TrainError::Column {
            uri: obj.uri(),
            column: name.into(),
            message: format!("is {t}; expected a string"),
        }
        .into()),
    }
}

fn string_at(a: &ArrayRef, r: usize) -> Option<&str> {
    if a.is_null(r) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Utf8View => a.as_string_view().value(r),
        DataType::LargeUtf8 => a.as_string::<i64>().value(r),
        _ => a.as_string::<i32>().value(r),
    })
}

/// The features of a features table: every numeric or boolean column but pid.
fn feature_fields(schema: &Schema) -> Vec<Field> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != ID && f.name() != TARGET)
        .filter(|f| f.data_type().is_numeric() || f.data_type() == &DataType::Boolean)
        .map(|f| f.as_ref().clone())
        .collect()
}

/// One split's output files.
struct SplitSink {
    parquet: ParquetSink,
    jsonl: Option<JsonlSink>,
    key: String,
}

struct JsonlSink {
    writer: object_store::buffered::BufWriter,
    key: String,
    buf: Vec<u8>,
    rows: u64,
    bytes: u64,
    crc: u32,
}

impl JsonlSink {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), JobError> {
        self.buf.clear();
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::LineDelimited>(&mut self.buf);
        w.write(batch)?;
        w.finish()?;
        drop(w);
        self.rows += batch.num_rows() as u64;
        self.bytes += self.buf.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.writer.write_all(&self.buf).await.map_err(|e| TrainError::Write { key: self.key.clone(), source: e })?;
        Ok(())
    }

    async fn close(mut self) -> Result<CommittedFile, JobError> {
        self.writer.shutdown().await.map_err(|e| TrainError::Write { key: self.key.clone(), source: e })?;
        Ok(CommittedFile {
            key: self.key,
            source: String::new(),
            rows: self.rows,
            bytes: self.bytes,
            crc32c: format!("{:08x}", self.crc),
        })
    }
}

/// `splits/<split>/part-00000.parquet`.
pub fn split_key(split: &str) -> String {
    format!("splits/{split}/part-00000.parquet")
}

/// `jsonl/<split>/part-00000.jsonl`.
pub fn jsonl_key(split: &str) -> String {
    format!("jsonl/{split}/part-00000.jsonl")
}

/// Reads both tables, joins them, writes the splits and returns them in memory.
pub async fn join_and_split(
    output: &Location,
    features_uri: &str,
    targets_uri: &str,
    split: Split,
    jsonl: bool,
) -> Result<Joined, JobError> {
    let mut counts = JoinCounts::default();
    let targets = read_targets(targets_uri, &mut counts).await?;
    tracing::info!(
        rows = counts.targets_rows,
        valid = counts.targets_valid,
        invalid = counts.targets_invalid,
        duplicate = counts.targets_duplicate,
        "Targets read."
    );
    let objects = parquet_objects(features_uri).await?;
    let first = objects.first().ok_or_else(|| TrainError::NoFeatures { uri: features_uri.to_string() })?;
    let schema = fleet_store::parquet_schema(first).await?;
    if schema.column_with_name(ID).is_none() {
        return Err(TrainError::Column {
            uri: first.uri(),
            column: ID.into(),
            message: "is missing; expected the pid of each features row".into(),
        }
        .into());
    }
    let fields = feature_fields(&schema);
    let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
    let mut out_fields = vec![Field::new(ID, DataType::Utf8, false)];
    out_fields.extend(fields.iter().cloned());
    out_fields.push(Field::new(TARGET, DataType::Int32, false));
    let out_schema: SchemaRef = Arc::new(Schema::new(out_fields));
    let columns: Vec<&str> = std::iter::once(ID).chain(names.iter().map(String::as_str)).collect();

    let opts = WriteOptions::default().with_unique_columns(vec![ID.to_string()]);
    let mut sinks = Vec::new();
    for s in SPLITS {
        let key = split_key(s);
        let parquet = ParquetSink::create(output, output.join(&key)?, out_schema.clone(), &opts)?;
        let jsonl = if jsonl {
            let key = jsonl_key(s);
            let writer =
                object_store::buffered::BufWriter::with_capacity(output.store().clone(), output.join(&key)?, 8 << 20);
            Some(JsonlSink { writer, key, buf: Vec::new(), rows: 0, bytes: 0, crc: 0 })
        } else {
            None
        };
        sinks.push(SplitSink { parquet, jsonl, key });
    }
    let mut splits: [SplitData; 3] = std::array::from_fn(|_| SplitData { x: Matrix::empty(&names), y: Vec::new() });
    let mut bytes_read = 0;
    for obj in &objects {
        bytes_read += obj.size;
        let mut stream = open(obj, &columns).await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            for n in &names {
                if batch.column_by_name(n).is_none() {
                    return Err(TrainError::Column {
                        uri: obj.uri(),
                        column: n.clone(),
                        message: format!(
                            "is missing; expected every features object to have it, as {} does",
                            first.uri()
                        ),
                    }
                    .into());
                }
            }
            let pid = column(obj, &batch, ID)?;
            counts.features_rows += batch.num_rows() as u64;
            let mut rows: [Vec<u32>; 3] = Default::default();
            let mut ages: [Vec<i32>; 3] = Default::default();
            for r in 0..batch.num_rows() {
                let age = string_at(&pid, r).and_then(|p| targets.get(p).map(|a| (p, *a)));
                match age {
                    None => counts.features_without_target += 1,
                    Some((_, INVALID)) => counts.features_with_invalid_target += 1,
                    Some((p, a)) => {
                        let s = split.of(p.as_bytes());
                        rows[s].push(r as u32);
                        ages[s].push(a);
                    }
                }
            }
            for s in 0..3 {
                if rows[s].is_empty() {
                    continue;
                }
                let idx = UInt32Array::from(std::mem::take(&mut rows[s]));
                let pids = arrow_select::take::take(pid.as_ref(), &idx, None)?;
                let pids: StringArray = (0..pids.len()).map(|r| string_at(&pids, r)).collect();
                let mut cols: Vec<ArrayRef> = vec![Arc::new(pids)];
                for n in &names {
                    cols.push(arrow_select::take::take(
                        batch.column_by_name(n).expect("checked").as_ref(),
                        &idx,
                        None,
                    )?);
                }
                let y = std::mem::take(&mut ages[s]);
                splits[s].y.extend(y.iter().map(|&a| a as f64));
                cols.push(Arc::new(Int32Array::from(y)));
                let part = RecordBatch::try_new(out_schema.clone(), cols)?;
                splits[s].x.append(&part).map_err(|source| TrainError::NotNumeric { uri: obj.uri(), source })?;
                counts.rows_joined += part.num_rows() as u64;
                counts.rows_per_split[s] += part.num_rows() as u64;
                sinks[s].parquet.write(&part).await?;
                if let Some(j) = sinks[s].jsonl.as_mut() {
                    j.write(&part).await?;
                }
            }
        }
    }
    let mut files = Vec::new();
    for sink in sinks {
        let st = sink.parquet.close().await?;
        files.push(CommittedFile {
            key: sink.key,
            source: features_uri.to_string(),
            rows: st.rows,
            bytes: st.bytes,
            crc32c: st.crc32c,
        });
        if let Some(j) = sink.jsonl {
            let mut f = j.close().await?;
            f.source = features_uri.to_string();
            files.push(f);
        }
    }
    Ok(Joined { counts, features: names, splits, files, objects: objects.len() as u64, bytes_read })
}
