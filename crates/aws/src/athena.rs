//! Athena: run a query, wait for it, read its results, price it.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use aws_sdk_athena::types::{QueryExecution, QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use object_store::ObjectStoreExt;
use serde_json::{Value, json};

use crate::{AwsError, Result, api_error};

/// GetQueryResults returns at most 1,000 rows a page.
pub const PAGE_ROWS: i32 = 1000;

/// Where and how a query runs.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    pub database: Option<String>,
    /// The data catalog (`AwsDataCatalog` when unset).
    pub catalog: Option<String>,
    /// The workgroup (`primary` when unset).
    pub workgroup: Option<String>,
    /// `s3://bucket/prefix/` for the result object; the workgroup's when unset.
    pub output_location: Option<String>,
    /// How long to wait before cancelling the query.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            database: None,
            catalog: None,
            workgroup: None,
            output_location: None,
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// A query that reached a final state.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: String,
    pub query: String,
    pub state: String,
    /// `DDL`, `DML` or `UTILITY`.
    pub statement_type: Option<String>,
    /// `SELECT`, `INSERT`, `CREATE_TABLE_AS_SELECT`, ... where Athena says.
    pub substatement_type: Option<String>,
    /// The result object (`s3://.../<id>.csv`).
    pub output_location: Option<String>,
    pub stats: Stats,
}

impl Execution {
    /// Whether the first row of the first result page is the header (a SELECT's).
    pub fn has_header_row(&self) -> bool {
        if self.statement_type.as_deref() != Some("DML") {
            return false;
        }
        match self.substatement_type.as_deref() {
            Some(s) => s.eq_ignore_ascii_case("SELECT"),
            None => {
                let q = self.query.trim_start().trim_start_matches('(').trim_start();
                let first = q.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                matches!(first.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE")
            }
        }
    }

    /// What the query costs: $5 per TB scanned, rounded up to the megabyte,
    /// at least 10 MB. Queries that read data (SELECT, INSERT, CTAS, UNLOAD)
    /// are billed; DDL and utility statements, and failed queries, are free.
    pub fn cost_usd(&self) -> f64 {
        let ctas = self.substatement_type.as_deref() == Some("CREATE_TABLE_AS_SELECT") || is_ctas(&self.query);
        let billed = self.statement_type.as_deref() == Some("DML") || ctas;
        if !billed || self.state == "FAILED" {
            return 0.0;
        }
        scan_cost_usd(self.stats.data_scanned_bytes)
    }
}

/// `CREATE TABLE ... AS SELECT`, which Athena bills like a query (some
/// emulators call it DDL).
fn is_ctas(query: &str) -> bool {
    let q = query.trim_start().to_ascii_uppercase();
    q.starts_with("CREATE TABLE") && q.contains("SELECT")
}

/// $5 per TB (2^40 bytes) for `bytes` scanned, rounded up to the megabyte
/// (2^20 bytes), with the 10 MB minimum per query.
pub fn scan_cost_usd(bytes: u64) -> f64 {
    let mb = bytes.div_ceil(1 << 20).max(10);
    mb as f64 * 5.0 / (1u64 << 20) as f64
}

/// The statistics of a query, in milliseconds and bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub queue_ms: i64,
    pub planning_ms: i64,
    pub engine_ms: i64,
    pub service_processing_ms: i64,
    pub total_ms: i64,
    pub data_scanned_bytes: u64,
}

/// A result column: its name and Athena type (`varchar`, `bigint`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    pub name: String,
    pub athena_type: String,
}

/// One result row; `None` is SQL NULL.
pub type Row = Vec<Option<String>>;

/// An Athena client.
#[derive(Debug, Clone)]
pub struct Athena {
    client: aws_sdk_athena::Client,
}

impl Athena {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Athena { client: aws_sdk_athena::Client::new(conf) }
    }

    pub async fn from_env() -> Result<Self> {
        Ok(Athena::new(&crate::sdk_config().await?))
    }

    /// Starts a query; returns its execution id.
    pub async fn start(&self, sql: &str, opts: &QueryOptions) -> Result<String> {
        let mut req = self.client.start_query_execution().query_string(sql);
        if opts.database.is_some() || opts.catalog.is_some() {
            req = req.query_execution_context(
                QueryExecutionContext::builder()
                    .set_database(opts.database.clone())
                    .set_catalog(opts.catalog.clone())
                    .build(),
            );
        }
        if let Some(w) = &opts.workgroup {
            req = req.work_group(w);
        }
        if let Some(o) = &opts.output_location {
            req = req.result_configuration(ResultConfiguration::builder().output_location(o).build());
        }
        let out = req.send().await.map_err(|e| api_error("Athena", "StartQueryExecution", e))?;
        let id = out
            .query_execution_id()
            .ok_or_else(|| AwsError::Invalid("StartQueryExecution returned no query execution id".into()))?;
        tracing::info!(query_execution_id = id, "Started the Athena query.");
        Ok(id.to_string())
    }

    /// Polls the query with backoff (0.2 s growing to 5 s) until it
    /// succeeds, fails (an error with Athena's reason) or `timeout` passes
    /// (the query is cancelled).
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Execution> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(|e| api_error("Athena", "GetQueryExecution", e))?;
            let qe = out.query_execution().ok_or_else(|| AwsError::Invalid(format!("no query execution {id}")))?;
            let state = qe.status().and_then(|s| s.state()).cloned();
            match state {
                Some(QueryExecutionState::Succeeded) => return Ok(execution(id, qe)),
                Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                    return Err(AwsError::QueryFailed {
                        id: id.to_string(),
                        state: state.map(|s| s.as_str().to_string()).unwrap_or_default(),
                        reason: failure_reason(qe),
                    });
                }
                _ => {}
            }
            if started.elapsed() >= timeout {
                let state = state.map_or_else(|| "UNKNOWN".to_string(), |s| s.as_str().to_string());
                let cancelled = match self.client.stop_query_execution().query_execution_id(id).send().await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(query_execution_id = id, error = %crate::api_error("Athena", "StopQueryExecution", e), "Could not cancel the query.");
                        false
                    }
                };
                return Err(AwsError::Timeout { id: id.to_string(), state, timeout, cancelled });
            }
            tracing::debug!(query_execution_id = id, state = ?state, "Waiting for the Athena query.");
            tokio::time::sleep(delay.min(timeout.saturating_sub(started.elapsed()))).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(5));
        }
    }

    /// Starts a query and waits for it.
    pub async fn run(&self, sql: &str, opts: &QueryOptions) -> Result<Execution> {
        let id = self.start(sql, opts).await?;
        self.wait(&id, opts.timeout).await
    }

    /// One page of GetQueryResults: its columns, rows and next token.
    async fn page(&self, id: &str, token: Option<String>, max: i32) -> Result<Page> {
        let out = self
            .client
            .get_query_results()
            .query_execution_id(id)
            .max_results(max)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| api_error("Athena", "GetQueryResults", e))?;
        let rs = out.result_set();
        let columns = rs
            .and_then(|r| r.result_set_metadata())
            .map(|m| {
                m.column_info()
                    .iter()
                    .map(|c| ResultColumn { name: c.name().to_string(), athena_type: c.r#type().to_ascii_lowercase() })
                    .collect()
            })
            .unwrap_or_default();
        let rows = rs
            .map(|r| {
                r.rows()
                    .iter()
                    .map(|row| row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page { columns, rows, next_token: out.next_token().map(str::to_string) })
    }

    /// Streams the results through GetQueryResults, 1,000 rows a page,
    /// dropping the header row of a SELECT (first page only). Returns the
    /// rows delivered.
    pub async fn results(&self, exec: &Execution, sink: &mut Export) -> Result<u64> {
        let header = exec.has_header_row();
        paginate(|token| self.page(&exec.id, token, PAGE_ROWS), header, sink).await
    }

    /// Streams the results by reading the result object (CSV) from S3
    /// directly: one GET instead of a call per 1,000 rows, for large results.
    /// The column types come from one small GetQueryResults call.
    pub async fn results_from_s3(&self, exec: &Execution, sink: &mut Export) -> Result<u64> {
        use futures::StreamExt;
        let uri = exec
            .output_location
            .as_deref()
            .ok_or_else(|| AwsError::Invalid(format!("query {} has no result object", exec.id)))?;
        if !exec.has_header_row() {
            return Err(AwsError::Invalid(format!(
                "query {} is not a SELECT: its result object {uri} is not CSV with a header; read its results \
                 through the API instead (--fetch api)",
                exec.id
            )));
        }
        let columns = self.page(&exec.id, None, 1).await?.columns;
        let (dir, name) =
            uri.rsplit_once('/').ok_or_else(|| AwsError::Invalid(format!("bad result location {uri}")))?;
        let loc = fleet_store::Location::parse(&format!("{dir}/"))?;
        let path = loc.join(name)?;
        let get = loc.store().get(&path).await.map_err(|source| fleet_store::StoreError::ObjectStore {
            op: "get",
            uri: uri.to_string(),
            source,
        })?;
        let mut stream = get.into_stream();
        let mut csv = CsvRows::default();
        sink.start(&columns).await?;
        let mut rows = Vec::new();
        let mut first = true;
        let mut delivered = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| fleet_store::StoreError::ObjectStore {
                op: "read",
                uri: uri.to_string(),
                source,
            })?;
            csv.push(&chunk, &mut rows);
            if first && !rows.is_empty() {
                rows.remove(0); // the CSV header
                first = false;
            }
            if rows.len() >= PAGE_ROWS as usize {
                delivered += rows.len() as u64;
                sink.rows(&columns, &rows).await?;
                rows.clear();
            }
        }
        csv.finish(&mut rows).map_err(|e| AwsError::Invalid(format!("{uri}: {e}")))?;
        if first && !rows.is_empty() {
            rows.remove(0);
        }
        delivered += rows.len() as u64;
        sink.rows(&columns, &rows).await?;
        Ok(delivered)
    }

    /// The size of the result object, when it can be seen.
    pub async fn result_size(&self, exec: &Execution) -> Option<u64> {
        let uri = exec.output_location.as_deref()?;
        let (dir, name) = uri.rsplit_once('/')?;
        let loc = fleet_store::Location::parse(&format!("{dir}/")).ok()?;
        let path = loc.join(name).ok()?;
        loc.store().head(&path).await.ok().map(|m| m.size)
    }
}

/// One page of results.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Row>,
    pub next_token: Option<String>,
}

/// Follows `NextToken` from the first page to the last, handing each page's
/// rows to `sink`; the header row (when `header`) is on the first page only.
pub async fn paginate<F, Fut>(mut fetch: F, header: bool, sink: &mut Export) -> Result<u64>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page>>,
{
    let mut token = None;
    let mut first = true;
    let mut columns = Vec::new();
    let mut delivered = 0u64;
    loop {
        let mut page = fetch(token.take()).await?;
        if first {
            columns = page.columns.clone();
            sink.start(&columns).await?;
            if header && !page.rows.is_empty() {
                page.rows.remove(0);
            }
            first = false;
        }
        delivered += page.rows.len() as u64;
        sink.rows(&columns, &page.rows).await?;
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(delivered),
        }
    }
}

fn execution(id: &str, qe: &QueryExecution) -> Execution {
    let s = qe.statistics();
    let ms = |v: Option<i64>| v.unwrap_or(0);
    Execution {
        id: id.to_string(),
        query: qe.query().unwrap_or_default().to_string(),
        state: qe.status().and_then(|s| s.state()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        statement_type: qe.statement_type().map(|t| t.as_str().to_string()),
        substatement_type: qe.substatement_type().map(str::to_string),
        output_location: qe.result_configuration().and_then(|r| r.output_location()).map(str::to_string),
        stats: Stats {
            queue_ms: ms(s.and_then(|s| s.query_queue_time_in_millis())),
            planning_ms: ms(s.and_then(|s| s.query_planning_time_in_millis())),
            engine_ms: ms(s.and_then(|s| s.engine_execution_time_in_millis())),
            service_processing_ms: ms(s.and_then(|s| s.service_processing_time_in_millis())),
            total_ms: ms(s.and_then(|s| s.total_execution_time_in_millis())),
            data_scanned_bytes: s.and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0).max(0) as u64,
        },
    }
}

/// Athena's reason for a failed or cancelled query.
fn failure_reason(qe: &QueryExecution) -> String {
    let status = qe.status();
    let reason = status.and_then(|s| s.state_change_reason()).unwrap_or_default();
    let detail = status.and_then(|s| s.athena_error()).and_then(|e| e.error_message()).unwrap_or_default();
    match (reason.is_empty(), detail.is_empty() || detail == reason) {
        (true, true) => "no reason given".to_string(),
        (false, true) => reason.to_string(),
        (true, false) => detail.to_string(),
        (false, false) => format!("{reason} ({detail})"),
    }
}

/// Where result rows go.
#[derive(Debug)]
pub enum Export {
    /// Kept in memory (small results, tests).
    Collect { columns: Vec<ResultColumn>, rows: Vec<Row> },
    /// One JSON object a line, typed by the column types.
    Jsonl(JsonlOut),
    /// A Parquet file, typed by the column types.
    Parquet(Box<ParquetOut>),
}

/// JSONL to stdout or to an object.
#[derive(Debug)]
pub struct JsonlOut {
    target: JsonlTarget,
    buf: Vec<u8>,
}

enum JsonlTarget {
    Stdout(tokio::io::Stdout),
    Object(Box<object_store::buffered::BufWriter>, String),
}

impl std::fmt::Debug for JsonlTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonlTarget::Stdout(_) => f.write_str("stdout"),
            JsonlTarget::Object(_, uri) => f.write_str(uri),
        }
    }
}

/// Parquet to an object (created on the first rows, complete on finish).
#[derive(Debug)]
pub struct ParquetOut {
    uri: String,
    sink: Option<fleet_store::ParquetSink>,
    schema: Option<SchemaRef>,
}

impl Export {
    pub fn collect() -> Self {
        Export::Collect { columns: Vec::new(), rows: Vec::new() }
    }

    /// JSONL to `uri` (a path or URL), or to stdout for `None` or `-`.
    pub fn jsonl(uri: Option<&str>) -> Result<Self> {
        let target = match uri {
            None | Some("-") => JsonlTarget::Stdout(tokio::io::stdout()),
            Some(u) => {
                let (loc, path) = object_of(u)?;
                let w = object_store::buffered::BufWriter::new(loc.store().clone(), path);
                JsonlTarget::Object(Box::new(w), loc.uri())
            }
        };
        Ok(Export::Jsonl(JsonlOut { target, buf: Vec::new() }))
    }

    /// Parquet (zstd) to `uri` (a path or URL).
    pub fn parquet(uri: &str) -> Self {
        Export::Parquet(Box::new(ParquetOut { uri: uri.to_string(), sink: None, schema: None }))
    }

    async fn start(&mut self, columns: &[ResultColumn]) -> Result<()> {
        match self {
            Export::Collect { columns: c, .. } => *c = columns.to_vec(),
            Export::Jsonl(_) => {}
            Export::Parquet(p) => {
                let schema = Arc::new(arrow_schema(columns));
                let (loc, path) = object_of(&p.uri)?;
                p.sink = Some(fleet_store::ParquetSink::create(
                    &loc,
                    path,
                    schema.clone(),
                    &fleet_store::WriteOptions::default(),
                )?);
                p.schema = Some(schema);
            }
        }
        Ok(())
    }

    async fn rows(&mut self, columns: &[ResultColumn], rows: &[Row]) -> Result<()> {
        match self {
            Export::Collect { rows: r, .. } => r.extend_from_slice(rows),
            Export::Jsonl(out) => {
                use tokio::io::AsyncWriteExt;
                out.buf.clear();
                for row in rows {
                    json_line(columns, row, &mut out.buf);
                    out.buf.push(b'\n');
                }
                let res = match &mut out.target {
                    JsonlTarget::Stdout(s) => s.write_all(&out.buf).await,
                    JsonlTarget::Object(w, _) => w.write_all(&out.buf).await,
                };
                res.map_err(|source| AwsError::Io { what: format!("writing {:?}", out.target), source })?;
            }
            Export::Parquet(p) => {
                let (Some(sink), Some(schema)) = (&mut p.sink, &p.schema) else {
                    return Err(AwsError::Invalid("Parquet export written before it started".into()));
                };
                if !rows.is_empty() {
                    let batch = record_batch(schema, columns, rows)?;
                    sink.write(&batch).await?;
                }
            }
        }
        Ok(())
    }

    /// Abandons the output after a failure: nothing becomes visible (a
    /// multipart upload is aborted, a Parquet sink aborts when dropped).
    pub async fn abort(self) {
        if let Export::Jsonl(JsonlOut { target: JsonlTarget::Object(mut w, uri), .. }) = self
            && let Err(e) = w.abort().await
        {
            tracing::warn!(uri = %uri, error = %e, "Could not abort the upload of the export.");
        }
    }

    /// Completes the output: the object becomes visible only now.
    pub async fn finish(self) -> Result<Option<(Vec<ResultColumn>, Vec<Row>)>> {
        use tokio::io::AsyncWriteExt;
        match self {
            Export::Collect { columns, rows } => Ok(Some((columns, rows))),
            Export::Jsonl(JsonlOut { target: JsonlTarget::Stdout(mut s), .. }) => {
                s.flush().await.map_err(|source| AwsError::Io { what: "writing stdout".into(), source })?;
                Ok(None)
            }
            Export::Jsonl(JsonlOut { target: JsonlTarget::Object(mut w, uri), .. }) => {
                w.shutdown().await.map_err(|source| AwsError::Io { what: format!("completing {uri}"), source })?;
                Ok(None)
            }
            Export::Parquet(p) => {
                if let Some(sink) = p.sink {
                    sink.close().await?;
                }
                Ok(None)
            }
        }
    }
}

/// The location holding `uri`'s object, and the object's path.
fn object_of(uri: &str) -> Result<(fleet_store::Location, object_store::path::Path)> {
    let loc = fleet_store::Location::parse(uri)?;
    let path = loc.path().clone();
    Ok((loc, path))
}

/// The Arrow type of an Athena result column.
pub fn arrow_type(athena_type: &str) -> DataType {
    match athena_type {
        "boolean" => DataType::Boolean,
        "tinyint" => DataType::Int8,
        "smallint" => DataType::Int16,
        "integer" | "int" => DataType::Int32,
        "bigint" => DataType::Int64,
        "float" | "real" => DataType::Float32,
        "double" => DataType::Float64,
        "date" => DataType::Date32,
        _ => DataType::Utf8,
    }
}

fn arrow_schema(columns: &[ResultColumn]) -> Schema {
    Schema::new(columns.iter().map(|c| Field::new(&c.name, arrow_type(&c.athena_type), true)).collect::<Vec<_>>())
}

fn record_batch(schema: &SchemaRef, columns: &[ResultColumn], rows: &[Row]) -> Result<RecordBatch> {
    fn parse<T: std::str::FromStr>(c: &ResultColumn, r: usize, v: &str) -> Result<T> {
        v.parse().map_err(|_| {
            AwsError::Invalid(format!("result row {r}, column `{}`: {v:?} is not a {}", c.name, c.athena_type))
        })
    }
    macro_rules! typed {
        ($builder:ty, $i:expr, $c:expr, $conv:expr) => {{
            let mut b = <$builder>::with_capacity(rows.len());
            for (r, row) in rows.iter().enumerate() {
                match row.get($i).and_then(|v| v.as_deref()) {
                    None => b.append_null(),
                    Some(v) => b.append_value($conv($c, r, v)?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let mut arrays = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let a = match arrow_type(&c.athena_type) {
            DataType::Boolean => typed!(BooleanBuilder, i, c, parse::<bool>),
            DataType::Int8 => typed!(Int8Builder, i, c, parse::<i8>),
            DataType::Int16 => typed!(Int16Builder, i, c, parse::<i16>),
            DataType::Int32 => typed!(Int32Builder, i, c, parse::<i32>),
            DataType::Int64 => typed!(Int64Builder, i, c, parse::<i64>),
            DataType::Float32 => typed!(Float32Builder, i, c, parse::<f32>),
            DataType::Float64 => typed!(Float64Builder, i, c, parse::<f64>),
            DataType::Date32 => typed!(Date32Builder, i, c, |c, r, v| parse::<fleet_contract::Date>(c, r, v)
                .map(|d| d.days_since_epoch() as i32)),
            _ => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
                for row in rows {
                    b.append_option(row.get(i).and_then(|v| v.as_deref()));
                }
                Arc::new(b.finish()) as ArrayRef
            }
        };
        arrays.push(a);
    }
    RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| AwsError::Invalid(format!("building the Parquet batch of the results: {e}")))
}

/// A result row as one JSON object in column order, typed by the column
/// types: numbers and booleans as JSON numbers and booleans (a non-finite
/// double stays a string), everything else as strings, NULL as null.
pub fn json_line(columns: &[ResultColumn], row: &Row, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &c.name).expect("a string serialises");
        out.push(b':');
        serde_json::to_writer(&mut *out, &json_value(c, row.get(i).and_then(|v| v.as_deref())))
            .expect("a JSON value serialises");
    }
    out.push(b'}');
}

fn json_value(c: &ResultColumn, v: Option<&str>) -> Value {
    let Some(v) = v else { return Value::Null };
    match arrow_type(&c.athena_type) {
        DataType::Boolean => v.parse::<bool>().map_or_else(|_| json!(v), Value::Bool),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n))
        }
        DataType::Float32 | DataType::Float64 => match v.parse::<f64>() {
            Ok(f) if f.is_finite() => json!(f),
            _ => json!(v),
        },
        _ => json!(v),
    }
}

/// An incremental reader of Athena's CSV result objects: every value is
/// quoted (`""` escapes a quote, newlines may occur inside), and NULL is an
/// empty unquoted field, so `""` (empty string) and NULL stay apart.
#[derive(Debug, Default)]
pub struct CsvRows {
    row: Row,
    field: Vec<u8>,
    quoted: bool,
    in_quotes: bool,
    /// A quote seen inside quotes: either the closing one or half of `""`.
    quote_pending: bool,
    /// Bytes of the current line seen (so a final line without a newline counts).
    dirty: bool,
}

impl CsvRows {
    /// Feeds bytes; complete rows are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Row>) {
        for &b in bytes {
            self.dirty = true;
            if self.in_quotes {
                if self.quote_pending {
                    self.quote_pending = false;
                    if b == b'"' {
                        self.field.push(b'"');
                        continue;
                    }
                    self.in_quotes = false;
                } else if b == b'"' {
                    self.quote_pending = true;
                    continue;
                } else {
                    self.field.push(b);
                    continue;
                }
            }
            match b {
                b'"' if self.field.is_empty() && !self.quoted => {
                    self.quoted = true;
                    self.in_quotes = true;
                }
                b',' => self.end_field(),
                b'\n' => {
                    self.end_field();
                    out.push(std::mem::take(&mut self.row));
                    self.dirty = false;
                }
                b'\r' => {}
                _ => self.field.push(b),
            }
        }
    }

    fn end_field(&mut self) {
        let v = std::mem::take(&mut self.field);
        self.row.push(if self.quoted || !v.is_empty() { Some(String::from_utf8_lossy(&v).into_owned()) } else { None });
        self.quoted = false;
    }

    /// The last row when the object does not end with a newline.
    pub fn finish(&mut self, out: &mut Vec<Row>) -> std::result::Result<(), String> {
        if self.in_quotes && !self.quote_pending {
            return Err("the result object ends inside a quoted value".into());
        }
        self.in_quotes = false;
        self.quote_pending = false;
        if self.dirty {
            self.end_field();
            out.push(std::mem::take(&mut self.row));
            self.dirty = false;
        }
        Ok(())
    }
}

/// `CREATE TABLE ... WITH (...) AS <select>`: a CTAS that writes zstd
/// Parquet to `location`, partitioned by `partitioned_by` (which must be the
/// last columns of the SELECT, as Athena requires).
pub fn ctas_sql(table: &str, location: &str, partitioned_by: &[String], select: &str) -> Result<String> {
    check_identifier(table)?;
    for p in partitioned_by {
        check_identifier(p)?;
    }
    let location = s3_folder(location)?;
    let mut with = vec![
        "format = 'PARQUET'".to_string(),
        "write_compression = 'ZSTD'".to_string(),
        format!("external_location = '{location}'"),
    ];
    if !partitioned_by.is_empty() {
        let cols: Vec<String> = partitioned_by.iter().map(|p| format!("'{p}'")).collect();
        with.push(format!("partitioned_by = ARRAY[{}]", cols.join(", ")));
    }
    Ok(format!("CREATE TABLE {table}\nWITH (\n  {}\n) AS\n{}", with.join(",\n  "), select.trim().trim_end_matches(';')))
}

/// `UNLOAD (<select>) TO '<location>' WITH (format = 'PARQUET', ...)`.
pub fn unload_sql(location: &str, partitioned_by: &[String], select: &str) -> Result<String> {
    for p in partitioned_by {
        check_identifier(p)?;
    }
    let location = s3_folder(location)?;
    let mut with = vec!["format = 'PARQUET'".to_string(), "compression = 'ZSTD'".to_string()];
    if !partitioned_by.is_empty() {
        with.push(format!(
            "partitioned_by = ARRAY[{}]",
            partitioned_by.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(format!("UNLOAD ({})\nTO '{location}'\nWITH ({})", select.trim().trim_end_matches(';'), with.join(", ")))
}

/// `name` or `database.name`, lowercase letters, digits and `_`.
fn check_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('.').count() <= 2
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(AwsError::Invalid(format!(
            "{name:?} is not an Athena table or column name: expected lowercase letters, digits and _ (optionally database.table)"
        )))
    }
}

/// An `s3://bucket/prefix/` folder, with the trailing slash Athena wants.
fn s3_folder(location: &str) -> Result<String> {
    if !location.starts_with("s3://") || location.contains('\'') {
        return Err(AwsError::Invalid(format!("{location:?} is not an s3://bucket/prefix/ location")));
    }
    Ok(if location.ends_with('/') { location.to_string() } else { format!("{location}/") })
}

/// Refuses a CTAS or UNLOAD location that already holds objects (Athena
/// would fail late, or mix the new files with the old).
pub async fn ensure_empty(location: &str) -> Result<()> {
    let loc = fleet_store::Location::parse(&s3_folder(location)?)?;
    let n = loc.list().await?.len();
    if n > 0 {
        return Err(AwsError::Invalid(format!(
            "{location} already holds {n} object(s); CTAS and UNLOAD write to an empty location"
        )));
    }
    Ok(())
}

/// A short report of a finished query: statistics and cost.
pub fn stats_line(exec: &Execution) -> String {
    let s = &exec.stats;
    format!(
        "query {} {}: queue {:.2} s, planning {:.2} s, execution {:.2} s, total {:.2} s, scanned {}, cost ${:.6}",
        exec.id,
        exec.state,
        s.queue_ms as f64 / 1e3,
        s.planning_ms as f64 / 1e3,
        s.engine_ms as f64 / 1e3,
        s.total_ms as f64 / 1e3,
        human_bytes(s.data_scanned_bytes),
        exec.cost_usd()
    )
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The statistics as JSON (for logs and `--stats-json`).
pub fn stats_json(exec: &Execution) -> Value {
    let s = &exec.stats;
    json!({
        "query_execution_id": exec.id,
        "state": exec.state,
        "statement_type": exec.statement_type,
        "queue_ms": s.queue_ms,
        "planning_ms": s.planning_ms,
        "engine_ms": s.engine_ms,
        "service_processing_ms": s.service_processing_ms,
        "total_ms": s.total_ms,
        "data_scanned_bytes": s.data_scanned_bytes,
        "cost_usd": exec.cost_usd(),
        "output_location": exec.output_location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(spec: &[(&str, &str)]) -> Vec<ResultColumn> {
        spec.iter().map(|(n, t)| ResultColumn { name: n.to_string(), athena_type: t.to_string() }).collect()
    }

    fn row(v: &[Option<&str>]) -> Row {
        v.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn cost_rounds_up_to_the_megabyte_with_a_10_mb_minimum() {
        let per_mb = 5.0 / (1u64 << 20) as f64;
        assert_eq!(scan_cost_usd(0), 10.0 * per_mb);
        assert_eq!(scan_cost_usd(10 << 20), 10.0 * per_mb);
        assert_eq!(scan_cost_usd((10 << 20) + 1), 11.0 * per_mb);
        assert_eq!(scan_cost_usd(1 << 40), 5.0);
        let mut e = Execution {
            id: "q".into(),
            query: "CREATE TABLE x (a int)".into(),
            state: "SUCCEEDED".into(),
            statement_type: Some("DDL".into()),
            substatement_type: None,
            output_location: None,
            stats: Stats { data_scanned_bytes: 1 << 40, ..Stats::default() },
        };
        assert_eq!(e.cost_usd(), 0.0, "DDL is free");
        assert!(!e.has_header_row());
        e.query = "CREATE TABLE p WITH (format = 'PARQUET') AS SELECT * FROM raw".into();
        assert_eq!(e.cost_usd(), 5.0, "CTAS reads data, whatever the statement type says");
        e.statement_type = Some("UTILITY".into());
        e.query = "SHOW TABLES".into();
        assert_eq!(e.cost_usd(), 0.0);
        e.statement_type = Some("DML".into());
        e.query = " (SELECT 1)".into();
        assert_eq!(e.cost_usd(), 5.0);
        assert!(e.has_header_row());
        e.substatement_type = Some("INSERT".into());
        assert!(!e.has_header_row());
    }

    #[tokio::test]
    async fn pages_follow_next_token_and_drop_only_the_first_header() {
        let columns = cols(&[("name", "varchar"), ("n", "bigint")]);
        let pages = [
            Page {
                columns: columns.clone(),
                rows: vec![row(&[Some("name"), Some("n")]), row(&[Some("a"), Some("1")])],
                next_token: Some("t1".into()),
            },
            // a later page's first row is data, even when it looks like a header
            Page {
                columns: columns.clone(),
                rows: vec![row(&[Some("name"), Some("n")])],
                next_token: Some("t2".into()),
            },
            Page { columns: columns.clone(), rows: vec![row(&[None, Some("3")])], next_token: None },
        ];
        let mut asked = Vec::new();
        let mut out = Export::collect();
        let n = paginate(
            |token| {
                asked.push(token.clone());
                let i = match token.as_deref() {
                    None => 0,
                    Some("t1") => 1,
                    _ => 2,
                };
                let p = pages[i].clone();
                async move { Ok(p) }
            },
            true,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(asked, [None, Some("t1".into()), Some("t2".into())]);
        let (c, rows) = out.finish().await.unwrap().unwrap();
        assert_eq!(c, columns);
        assert_eq!(rows, [row(&[Some("a"), Some("1")]), row(&[Some("name"), Some("n")]), row(&[None, Some("3")])]);
    }

    #[test]
    fn a_failed_query_says_why() {
        use aws_sdk_athena::types::{AthenaError, QueryExecutionStatus};
        let status = |reason: Option<&str>, detail: Option<&str>| {
            let mut s = QueryExecutionStatus::builder().state(QueryExecutionState::Failed);
            if let Some(r) = reason {
                s = s.state_change_reason(r);
            }
            if let Some(d) = detail {
                s = s.athena_error(AthenaError::builder().error_message(d).build());
            }
            QueryExecution::builder().status(s.build()).build()
        };
        let line = "line 1:8: Column 'agee' cannot be resolved";
        assert_eq!(failure_reason(&status(Some(line), None)), line);
        assert_eq!(failure_reason(&status(Some(line), Some(line))), line);
        assert_eq!(failure_reason(&status(Some("SYNTAX_ERROR"), Some(line))), format!("SYNTAX_ERROR ({line})"));
        assert_eq!(failure_reason(&status(None, None)), "no reason given");
    }

    #[test]
    fn csv_keeps_null_and_empty_apart_across_chunks() {
        let text = b"\"name\",\"n\",\"note\"\n\"a \"\"quoted\"\" one\",\"1\",\"\"\n\"two\nlines\",,\"x,y\"\n\"last\",\"3\",\"z\"";
        for split in 0..text.len() {
            let mut r = CsvRows::default();
            let mut out = Vec::new();
            r.push(&text[..split], &mut out);
            r.push(&text[split..], &mut out);
            r.finish(&mut out).unwrap();
            assert_eq!(
                out,
                [
                    row(&[Some("name"), Some("n"), Some("note")]),
                    row(&[Some("a \"quoted\" one"), Some("1"), Some("")]),
                    row(&[Some("two\nlines"), None, Some("x,y")]),
                    row(&[Some("last"), Some("3"), Some("z")]),
                ],
                "split at {split}"
            );
        }
        let mut r = CsvRows::default();
        r.push(b"\"open", &mut Vec::new());
        assert!(r.finish(&mut Vec::new()).is_err());
    }

    #[test]
    fn json_rows_are_typed() {
        let c = cols(&[
            ("s", "varchar"),
            ("n", "bigint"),
            ("x", "double"),
            ("b", "boolean"),
            ("d", "date"),
            ("z", "integer"),
        ]);
        let mut line = Vec::new();
        json_line(&c, &row(&[Some("7"), Some("42"), Some("NaN"), Some("true"), Some("2025-07-01"), None]), &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"s":"7","n":42,"x":"NaN","b":true,"d":"2025-07-01","z":null}"#,
            "typed, in column order"
        );
    }

    #[test]
    fn record_batches_are_typed_and_errors_name_the_cell() {
        let c = cols(&[("n", "smallint"), ("d", "date"), ("s", "varchar")]);
        let schema = Arc::new(arrow_schema(&c));
        let b = record_batch(&schema, &c, &[row(&[Some("-3"), Some("1970-01-02"), None])]).unwrap();
        assert_eq!(b.schema().field(0).data_type(), &DataType::Int16);
        assert_eq!(b.column(1).as_any().downcast_ref::<arrow_array::Date32Array>().unwrap().value(0), 1);
        assert!(b.column(2).is_null(0));
        let e = record_batch(&schema, &c, &[row(&[Some("x"), None, None])]).unwrap_err().to_string();
        assert_eq!(e, "result row 0, column `n`: \"x\" is not a smallint");
    }

    #[test]
    fn ctas_and_unload_statements() {
        let sql =
            ctas_sql("permanent.raw_2025", "s3://lake/permanent/raw_2025", &["dt".into()], "SELECT a, dt FROM t;")
                .unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE permanent.raw_2025\nWITH (\n  format = 'PARQUET',\n  write_compression = 'ZSTD',\n  \
             external_location = 's3://lake/permanent/raw_2025/',\n  partitioned_by = ARRAY['dt']\n) AS\nSELECT a, dt FROM t"
        );
        assert!(ctas_sql("Bad-Name", "s3://x/y", &[], "SELECT 1").is_err());
        assert!(ctas_sql("t", "/local/path", &[], "SELECT 1").is_err());
        let u = unload_sql("s3://lake/exports/x", &[], "SELECT 1").unwrap();
        assert_eq!(u, "UNLOAD (SELECT 1)\nTO 's3://lake/exports/x/'\nWITH (format = 'PARQUET', compression = 'ZSTD')");
    }
}
