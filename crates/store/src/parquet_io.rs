//! Streaming batch readers (Parquet, NDJSON) and the Parquet writer.

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{AsyncArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use tracing::instrument;

pub use parquet::basic::{Compression, GzipLevel, ZstdLevel};

/// Reads a Parquet object through `object_store`: ranged GETs, footer
/// prefetched in one request.
struct ObjectReader {
    store: Arc<dyn object_store::ObjectStore>,
    path: Path,
    size: u64,
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let meta =
                ParquetMetaDataReader::new().with_prefetch_hint(Some(64 << 10)).load_and_finish(self, size).await?;
            Ok(Arc::new(meta))
        })
    }
}

use crate::{InputFormat, InputObject, Location, Result, StoreError};

/// A stream of record batches read from one object.
pub type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Opens `obj` as a stream of batches of at most `batch_rows` rows.
/// Parquet reads only the `columns` that exist in the file (the caller
/// checks the schema); its string columns come as `Utf8View`, except those
/// in `unchecked`, which come as `BinaryView` with their UTF-8 left for the
/// caller to check (a JSON parser checks it anyway, and can reject one bad
/// cell where the reader would fail the whole read). NDJSON is decoded
/// with `ndjson_schema`, reading the object in chunks, so memory stays
/// bounded by the batch size.
#[instrument(skip_all, fields(uri = %obj.uri()))]
pub async fn open_batches(
    obj: &InputObject,
    format: InputFormat,
    columns: &[&str],
    unchecked: &[&str],
    ndjson_schema: SchemaRef,
    batch_rows: usize,
) -> Result<BatchStream> {
    let uri = obj.uri();
    match format {
        InputFormat::Parquet => {
            let mut reader =
                ObjectReader { store: obj.location.store().clone(), path: obj.path.clone(), size: obj.size };
            let pq = |e| StoreError::Parquet { op: "read", uri: uri.clone(), source: e };
            // Strings are read as Utf8View, and binary as BinaryView: values
            // stay in the decoded pages instead of being copied into a fresh
            // buffer per batch. The `unchecked` strings are read as binary,
            // their UTF-8 not checked here.
            let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await.map_err(pq)?;
            let unchecked: Vec<&str> = unchecked
                .iter()
                .copied()
                .filter(|c| {
                    meta.schema().field_with_name(c).is_ok_and(|f| {
                        matches!(f.data_type(), arrow_schema::DataType::Utf8 | arrow_schema::DataType::LargeUtf8)
                    })
                })
                .collect();
            let fields: Vec<arrow_schema::Field> = meta
                .schema()
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    arrow_schema::DataType::Utf8 | arrow_schema::DataType::LargeUtf8
                        if unchecked.contains(&f.name().as_str()) =>
                    {
                        f.as_ref().clone().with_data_type(arrow_schema::DataType::BinaryView)
                    }
                    t => f.as_ref().clone().with_data_type(read_type(t)),
                })
                .collect();
            let view_schema =
                Arc::new(arrow_schema::Schema::new_with_metadata(fields, meta.schema().metadata().clone()));
            let meta = if unchecked.is_empty() {
                ArrowReaderMetadata::try_new(
                    meta.metadata().clone(),
                    ArrowReaderOptions::new().with_schema(view_schema),
                )
            } else {
                // The embedded Arrow schema would still call them strings; the
                // one supplied here carries its types for the other columns.
                let options = ArrowReaderOptions::new().with_schema(view_schema).with_skip_arrow_metadata(true);
                ArrowReaderMetadata::try_new(Arc::new(as_binary(meta.metadata(), &unchecked).map_err(pq)?), options)
            }
            .map_err(pq)?;
            let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta);
            let schema = builder.schema().clone();
            let indices: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
            let rows = batch_rows_for(builder.metadata(), &indices, batch_rows);
            let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
            let stream = builder.with_projection(mask).with_batch_size(rows).build().map_err(pq)?;
            let u = uri.clone();
            Ok(stream
                .map(move |r| r.map_err(|e| StoreError::Parquet { op: "read", uri: u.clone(), source: e }))
                .boxed())
        }
        InputFormat::Ndjson => {
            let get = obj.location.store().get(&obj.path).await.map_err(|e| StoreError::ObjectStore {
                op: "get",
                uri: uri.clone(),
                source: e,
            })?;
            let decoder = arrow_json::ReaderBuilder::new(ndjson_schema)
                .with_batch_size(batch_rows)
                .build_decoder()
                .map_err(|e| StoreError::Ndjson { uri: uri.clone(), offset: 0, source: e })?;
            let state = NdjsonState {
                bytes: get.into_stream(),
                buf: Bytes::new(),
                decoder,
                uri,
                offset: 0,
                since_flush: 0,
                done: false,
            };
            Ok(futures::stream::unfold(state, |mut s| async move {
                let r = s.next_batch().await;
                match r {
                    Ok(None) => None,
                    other => Some((other.map(|b| b.expect("Some")), s)),
                }
            })
            .boxed())
        }
    }
}

/// `meta` with the top-level string columns named in `unchecked` typed as
/// plain binary (no UTF-8 logical type): the reader then neither checks
/// their UTF-8 nor refuses to read them as `BinaryView`.
fn as_binary(meta: &ParquetMetaData, unchecked: &[&str]) -> parquet::errors::Result<ParquetMetaData> {
    use parquet::basic::Type as Physical;
    use parquet::file::metadata::{FileMetaData, ParquetMetaDataBuilder};
    use parquet::schema::types::{SchemaDescriptor, Type};
    let file = meta.file_metadata();
    let root = file.schema_descr().root_schema();
    let fields = root
        .get_fields()
        .iter()
        .map(|f| {
            if !(f.is_primitive() && f.get_physical_type() == Physical::BYTE_ARRAY && unchecked.contains(&f.name())) {
                return Ok(f.clone());
            }
            let info = f.get_basic_info();
            let id = info.has_id().then(|| info.id());
            Ok(Arc::new(
                Type::primitive_type_builder(f.name(), Physical::BYTE_ARRAY)
                    .with_repetition(info.repetition())
                    .with_id(id)
                    .build()?,
            ))
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    let root = Type::group_type_builder(root.name()).with_fields(fields).build()?;
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        file.key_value_metadata().cloned(),
        Arc::new(SchemaDescriptor::new(Arc::new(root))),
        file.column_orders().cloned(),
    );
    let mut old = ParquetMetaDataBuilder::new_from_metadata(meta.clone());
    Ok(ParquetMetaDataBuilder::new(file)
        .set_row_groups(old.take_row_groups())
        .set_page_index(old.take_page_index())
        .build())
}

/// The type [`open_batches`] reads a Parquet column of type `t` as:
/// strings as `Utf8View`, binary as `BinaryView`, the rest as they are.
pub fn read_type(t: &arrow_schema::DataType) -> arrow_schema::DataType {
    use arrow_schema::DataType as T;
    match t {
        T::Utf8 | T::LargeUtf8 => T::Utf8View,
        T::Binary | T::LargeBinary => T::BinaryView,
        other => other.clone(),
    }
}

/// The Arrow schema of a Parquet object, from its footer alone (one ranged
/// read of the last 64 KiB, more only for a larger footer).
pub async fn parquet_schema(obj: &InputObject) -> Result<SchemaRef> {
    Ok(parquet_footer(obj).await?.0)
}

/// The Arrow schema and the row count of a Parquet object, from its footer.
pub async fn parquet_footer(obj: &InputObject) -> Result<(SchemaRef, u64)> {
    let mut reader = ObjectReader { store: obj.location.store().clone(), path: obj.path.clone(), size: obj.size };
    let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| StoreError::Parquet { op: "read the footer of", uri: obj.uri(), source: e })?;
    let rows = meta.metadata().file_metadata().num_rows().max(0) as u64;
    Ok((meta.schema().clone(), rows))
}

/// Uncompressed bytes a batch may hold: with a few batches in flight this
/// keeps memory bounded whatever the row size (heavy rows are ~100 KB).
pub const BATCH_BYTES: u64 = 24 << 20;

/// At most `max_rows`, and fewer when the projected columns' average row
/// (from the footer's uncompressed sizes) would make a batch larger than
/// [`BATCH_BYTES`].
fn batch_rows_for(meta: &ParquetMetaData, columns: &[usize], max_rows: usize) -> usize {
    let (mut bytes, mut rows) = (0u64, 0u64);
    for rg in meta.row_groups() {
        rows += rg.num_rows().max(0) as u64;
        for (i, c) in rg.columns().iter().enumerate() {
            let root = rg.schema_descr().get_column_root_idx(i);
            if columns.contains(&root) {
                bytes += c.uncompressed_size().max(0) as u64;
            }
        }
    }
    if rows == 0 || bytes == 0 {
        return max_rows;
    }
    let per_row = bytes.div_ceil(rows).max(1);
    (BATCH_BYTES / per_row).clamp(16, max_rows as u64) as usize
}

struct NdjsonState {
    bytes: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
    decoder: arrow_json::reader::Decoder,
    uri: String,
    offset: u64,
    since_flush: u64,
    done: bool,
}

impl NdjsonState {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let err = |s: &Self, e| StoreError::Ndjson { uri: s.uri.clone(), offset: s.offset, source: e };
        loop {
            if self.buf.is_empty() && !self.done {
                match self.bytes.next().await {
                    Some(Ok(b)) => self.buf = b,
                    Some(Err(e)) => {
                        return Err(StoreError::ObjectStore { op: "read", uri: self.uri.clone(), source: e });
                    }
                    None => self.done = true,
                }
            }
            if self.buf.is_empty() {
                self.since_flush = 0;
                return self.decoder.flush().map_err(|e| err(self, e));
            }
            // Decode up to BATCH_BYTES since the last flush, then to the end of that line, and flush.
            let room = BATCH_BYTES.saturating_sub(self.since_flush) as usize;
            let line_end = if self.buf.len() > room {
                self.buf[room..].iter().position(|&b| b == b'\n').map(|i| room + i + 1)
            } else {
                None
            };
            let limit = line_end.unwrap_or(self.buf.len());
            let n = self.decoder.decode(&self.buf[..limit]).map_err(|e| err(self, e))?;
            self.offset += n as u64;
            self.since_flush += n as u64;
            let _ = self.buf.split_to(n);
            // Flush when a large batch reached a line end, or when the decoder
            // stopped early because a batch is full.
            if (line_end.is_some() && n == limit) || (n < limit) {
                self.since_flush = 0;
                if let Some(b) = self.decoder.flush().map_err(|e| err(self, e))? {
                    return Ok(Some(b));
                }
            }
        }
    }
}

/// How a [`ParquetSink`] writes.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    compression: Compression,
    row_group_bytes: usize,
    max_row_group_rows: usize,
    unique_columns: Vec<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            compression: Compression::ZSTD(ZstdLevel::try_new(3).expect("valid level")),
            row_group_bytes: 128 << 20,
            max_row_group_rows: 1 << 20,
            unique_columns: Vec::new(),
        }
    }
}

impl WriteOptions {
    /// Default zstd level 3 (arrow-rs itself defaults to uncompressed).
    pub fn with_compression(self, compression: Compression) -> Self {
        Self { compression, ..self }
    }
    /// A row group is closed once its encoded size reaches this. Default 128 MiB.
    pub fn with_row_group_bytes(self, row_group_bytes: usize) -> Self {
        Self { row_group_bytes, ..self }
    }
    /// Upper bound on rows per row group. Default 1,048,576.
    pub fn with_max_row_group_rows(self, max_row_group_rows: usize) -> Self {
        Self { max_row_group_rows, ..self }
    }
    /// Top-level columns whose values are (nearly) all distinct, such as a
    /// row id: written without dictionary encoding, which would only be
    /// tried and abandoned for them.
    pub fn with_unique_columns(self, unique_columns: Vec<String>) -> Self {
        Self { unique_columns, ..self }
    }
}

/// What a closed sink wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinkStats {
    pub uri: String,
    pub rows: u64,
    pub bytes: u64,
    /// CRC32C of the whole object, as S3 computes it, in hex.
    pub crc32c: String,
    pub row_groups: usize,
}

#[derive(Default)]
struct Hash {
    crc: u32,
    bytes: u64,
}

/// Multipart upload through `BufWriter`, hashing what goes out; aborted if
/// dropped before completion.
struct HashingWriter {
    inner: Option<BufWriter>,
    hash: Arc<Mutex<Hash>>,
}

impl AsyncFileWriter for HashingWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        {
            let mut h = self.hash.lock().expect("hash lock");
            h.crc = crc32c::crc32c_append(h.crc, &bs);
            h.bytes += bs.len() as u64;
        }
        Box::pin(async move {
            let w =
                self.inner.as_mut().ok_or_else(|| parquet::errors::ParquetError::General("writer closed".into()))?;
            w.put(bs).await.map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            if let Some(mut w) = self.inner.take() {
                w.shutdown().await.map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
            }
            Ok(())
        })
    }
}

impl Drop for HashingWriter {
    fn drop(&mut self) {
        if let Some(mut w) = self.inner.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                if let Err(e) = w.abort().await {
                    tracing::warn!(error = %e, "Aborting an unfinished upload failed.");
                }
            });
        }
    }
}

/// Writes batches to one Parquet object, closing row groups by size.
pub struct ParquetSink {
    writer: AsyncArrowWriter<HashingWriter>,
    hash: Arc<Mutex<Hash>>,
    uri: String,
    rows: u64,
    row_group_bytes: usize,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink").field("uri", &self.uri).field("rows", &self.rows).finish()
    }
}

impl ParquetSink {
    pub fn create(loc: &Location, path: Path, schema: SchemaRef, opts: &WriteOptions) -> Result<Self> {
        let uri = loc.uri_of(&path);
        let hash = Arc::new(Mutex::new(Hash::default()));
        let inner = BufWriter::with_capacity(loc.store().clone(), path, 8 << 20);
        let props = opts
            .unique_columns
            .iter()
            .fold(WriterProperties::builder(), |b, c| {
                b.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(c.as_str()), false)
            })
            .set_compression(opts.compression)
            .set_max_row_group_row_count(Some(opts.max_row_group_rows))
            .build();
        let writer =
            AsyncArrowWriter::try_new(HashingWriter { inner: Some(inner), hash: hash.clone() }, schema, Some(props))
                .map_err(|e| StoreError::Parquet { op: "create", uri: uri.clone(), source: e })?;
        Ok(Self { writer, hash, uri, rows: 0, row_group_bytes: opts.row_group_bytes })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// About the size of the file so far: the bytes encoded, and the row
    /// group in progress (uncompressed).
    pub fn bytes_written(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let pq = |e| StoreError::Parquet { op: "write", uri: self.uri.clone(), source: e };
        self.writer.write(batch).await.map_err(pq)?;
        self.rows += batch.num_rows() as u64;
        if self.writer.in_progress_size() >= self.row_group_bytes {
            self.writer.flush().await.map_err(|e| StoreError::Parquet {
                op: "write",
                uri: self.uri.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Finishes the file; the object becomes visible only now.
    pub async fn close(self) -> Result<SinkStats> {
        let Self { writer, hash, uri, rows, .. } = self;
        let meta =
            writer.close().await.map_err(|e| StoreError::Parquet { op: "close", uri: uri.clone(), source: e })?;
        let h = hash.lock().expect("hash lock");
        Ok(SinkStats { uri, rows, bytes: h.bytes, crc32c: format!("{:08x}", h.crc), row_groups: meta.num_row_groups() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, StringArray};
    use futures::TryStreamExt;

    #[tokio::test]
    async fn unique_columns_are_written_without_a_dictionary() {
        let loc = Location::parse("memory:///pq-unique/").unwrap();
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int32Array::from_iter_values((0..1000).map(|i| i % 3))) as _),
            ("id", Arc::new(StringArray::from_iter_values((0..1000).map(|i| format!("p{i}")))) as _),
        ])
        .unwrap();
        let opts = WriteOptions::default().with_unique_columns(vec!["id".into()]);
        let mut sink = ParquetSink::create(&loc, loc.join("x.parquet").unwrap(), batch.schema(), &opts).unwrap();
        sink.write(&batch).await.unwrap();
        sink.close().await.unwrap();
        let bytes = loc.get_bytes("x.parquet").await.unwrap();
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        let rg = parquet::file::reader::FileReader::metadata(&reader).row_group(0).clone();
        assert!(rg.column(0).dictionary_page_offset().is_some(), "a: {:?}", rg.column(0));
        assert!(rg.column(1).dictionary_page_offset().is_none(), "id: {:?}", rg.column(1));
    }

    #[tokio::test]
    async fn parquet_round_trip_with_projection_and_row_groups() {
        let loc = Location::parse("memory:///pq-test/").unwrap();
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int32Array::from_iter_values(0..1000)) as _),
            ("b", Arc::new(StringArray::from_iter_values((0..1000).map(|i| format!("v{i}")))) as _),
        ])
        .unwrap();
        let opts = WriteOptions::default().with_row_group_bytes(1024);
        let mut sink = ParquetSink::create(&loc, loc.join("x.parquet").unwrap(), batch.schema(), &opts).unwrap();
        for _ in 0..3 {
            sink.write(&batch).await.unwrap();
        }
        let stats = sink.close().await.unwrap();
        assert_eq!(stats.rows, 3000);
        assert_eq!(stats.row_groups, 3);
        let bytes = loc.get_bytes("x.parquet").await.unwrap();
        assert_eq!(stats.bytes, bytes.len() as u64);
        assert_eq!(stats.crc32c, format!("{:08x}", crc32c::crc32c(&bytes)));

        let obj = crate::list_inputs("memory:///pq-test/x.parquet").await.unwrap().remove(0);
        let batches: Vec<RecordBatch> =
            open_batches(&obj, InputFormat::Parquet, &["b", "zz"], &[], batch.schema(), 700)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3000);
        assert!(batches.iter().all(|b| b.num_rows() <= 700));
        assert_eq!(batches[0].num_columns(), 1);
        assert_eq!(batches[0].schema().field(0).name(), "b");
    }

    #[tokio::test]
    async fn ndjson_streams_in_batches_and_reports_the_offset() {
        let loc = Location::parse("memory:///nd-test/").unwrap();
        let lines: String = (0..2500).map(|i| format!("{{\"a\": {i}, \"b\": \"x{i}\", \"extra\": [1]}}\n")).collect();
        loc.put_bytes("x.ndjson", lines.into_bytes()).await.unwrap();
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("a", arrow_schema::DataType::Int32, true),
            arrow_schema::Field::new("b", arrow_schema::DataType::Utf8, true),
        ]));
        let obj = crate::list_inputs("memory:///nd-test/x.ndjson").await.unwrap().remove(0);
        let batches: Vec<RecordBatch> = open_batches(&obj, InputFormat::Ndjson, &[], &[], schema.clone(), 1000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [1000, 1000, 500]);
        let last = batches[2].column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(last.value(499), 2499);

        loc.put_bytes("bad.ndjson", b"{\"a\": 1}\n{\"a\": oops}\n".to_vec()).await.unwrap();
        let obj = crate::list_inputs("memory:///nd-test/bad.ndjson").await.unwrap().remove(0);
        let r: Result<Vec<RecordBatch>> =
            open_batches(&obj, InputFormat::Ndjson, &[], &[], schema, 1000).await.unwrap().try_collect().await;
        let e = r.unwrap_err();
        assert!(e.to_string().contains("bad.ndjson"), "{e}");
    }

    /// A Parquet string column (UTF8 annotation, an embedded Arrow schema
    /// saying Utf8) named in `unchecked` comes as BinaryView with its bytes
    /// as stored, even when they are not UTF-8; the other columns keep their
    /// types. Checked, the same column fails the read.
    #[tokio::test]
    async fn unchecked_string_columns_come_as_binary_views() {
        use arrow_array::cast::AsArray;
        use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
        let schema = Arc::new(
            parquet::schema::parser::parse_message_type(
                "message m { required binary s (STRING); optional binary j (STRING); required int32 n; }",
            )
            .unwrap(),
        );
        let arrow = arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("s", arrow_schema::DataType::Utf8, false),
            arrow_schema::Field::new("j", arrow_schema::DataType::Utf8, true),
            arrow_schema::Field::new("n", arrow_schema::DataType::Int32, false),
        ]);
        let mut props = WriterProperties::builder();
        props = props.set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "ARROW:schema".to_string(),
            parquet::arrow::encode_arrow_schema(&arrow),
        )]));
        let mut buf = Vec::new();
        let mut w =
            parquet::file::writer::SerializedFileWriter::new(&mut buf, schema, Arc::new(props.build())).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let text = |v: &[&[u8]]| v.iter().map(|b| ByteArray::from(b.to_vec())).collect::<Vec<_>>();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&text(&[b"p1", b"p2", b"p3"]), None, None).unwrap();
        c.close().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&text(&[b"[1]", b"[\"\xff\"]"]), Some(&[1, 0, 1]), None).unwrap();
        c.close().unwrap();
        let mut c = rg.next_column().unwrap().unwrap();
        c.typed::<Int32Type>().write_batch(&[7, 8, 9], None, None).unwrap();
        c.close().unwrap();
        rg.close().unwrap();
        w.close().unwrap();

        let loc = Location::parse("memory:///pq-unchecked/").unwrap();
        loc.put_bytes("x.parquet", buf).await.unwrap();
        let obj = crate::list_inputs("memory:///pq-unchecked/x.parquet").await.unwrap().remove(0);
        let empty = Arc::new(arrow_schema::Schema::empty());
        let read = |unchecked: &'static [&'static str]| {
            let (obj, empty) = (obj.clone(), empty.clone());
            async move {
                open_batches(&obj, InputFormat::Parquet, &["s", "j", "n"], unchecked, empty, 100)
                    .await
                    .unwrap()
                    .try_collect::<Vec<RecordBatch>>()
                    .await
            }
        };
        let b = read(&["j", "absent"]).await.unwrap().remove(0);
        let j = b.column(1).as_binary_view();
        assert_eq!(j.iter().collect::<Vec<_>>(), [Some(&b"[1]"[..]), None, Some(&b"[\"\xff\"]"[..])]);
        let s = b.column(0).as_string_view();
        assert_eq!(s.iter().collect::<Vec<_>>(), [Some("p1"), Some("p2"), Some("p3")]);
        assert_eq!(b.column(2).as_primitive::<arrow_array::types::Int32Type>().values(), &[7, 8, 9]);

        let e = read(&[]).await.unwrap_err();
        let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        assert!(why.to_lowercase().contains("utf-8"), "{e}: {why}");
    }

    #[tokio::test]
    async fn batches_are_bounded_by_bytes_not_only_rows() {
        let loc = Location::parse("memory:///big-rows/").unwrap();
        let cell = "x".repeat(200_000);
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "b",
            arrow_schema::DataType::Utf8,
            true,
        )]));
        let lines: String = (0..300).map(|_| format!("{{\"b\": \"{cell}\"}}\n")).collect();
        loc.put_bytes("x.ndjson", lines.into_bytes()).await.unwrap();
        // distinct values, so that Parquet cannot shrink them into a dictionary
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from_iter_values((0..300).map(|i| format!("{i:03}{cell}"))))],
        )
        .unwrap();
        let mut sink =
            ParquetSink::create(&loc, loc.join("x.parquet").unwrap(), schema.clone(), &WriteOptions::default())
                .unwrap();
        sink.write(&batch).await.unwrap();
        sink.close().await.unwrap();
        for (name, format) in [("x.ndjson", InputFormat::Ndjson), ("x.parquet", InputFormat::Parquet)] {
            let obj = crate::list_inputs(&format!("memory:///big-rows/{name}")).await.unwrap().remove(0);
            let batches: Vec<RecordBatch> = open_batches(&obj, format, &["b"], &[], schema.clone(), 8192)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 300, "{name}");
            let max = batches.iter().map(|b| b.num_rows()).max().unwrap();
            assert!(max as u64 * 200_000 <= BATCH_BYTES + 400_000, "{name}: a batch of {max} rows");
            assert!(batches.len() >= 2, "{name}");
        }
    }
}
