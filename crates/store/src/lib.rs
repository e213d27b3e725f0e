//! Storage for the fleet: one [`Location`] type over `object_store` for
//! `file://` (the local default; plain paths work too), `s3://` (AWS or any
//! S3-compatible server through `AWS_ENDPOINT_URL`) and `memory://` (unit
//! tests), plus streaming Parquet/NDJSON readers and a Parquet writer whose
//! memory is bounded by batch and row-group sizes, not by object size.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let loc = fleet_store::Location::parse("memory:///doc-example/").unwrap();
//! loc.put_bytes("a/b.json", b"{}".to_vec()).await.unwrap();
//! assert_eq!(loc.get_bytes("a/b.json").await.unwrap(), b"{}".to_vec());
//! assert_eq!(loc.child("a/b.json").unwrap().uri(), "memory:///doc-example/a/b.json");
//! # });
//! ```

mod input;
mod lines;
mod parquet_io;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

pub use input::{InputFormat, InputObject, list_inputs};
pub use lines::{Codec, LINE, OFFSET, lines_schema, open_lines, trim_line};
pub use parquet_io::{
    BatchStream, Compression, GzipLevel, ParquetSink, SinkStats, WriteOptions, ZstdLevel, open_batches, parquet_footer,
    parquet_schema, read_type,
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
    /// An S3 option name that object_store does not know.
    #[error(
        "unknown S3 option {option:?} for {uri}; expected an object_store AmazonS3ConfigKey such as \
         aws_endpoint, aws_region, aws_allow_http or aws_virtual_hosted_style_request"
    )]
    S3Option { option: String, uri: String },
    #[error("{op} {uri}")]
    ObjectStore {
        op: &'static str,
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("Parquet {op} {uri}")]
    Parquet {
        op: &'static str,
        uri: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("NDJSON {uri} near byte {offset}")]
    Ndjson {
        uri: String,
        offset: u64,
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A compressed object whose bytes do not decompress.
    #[error("{codec} data of {uri} does not decompress (at decompressed byte {offset}): {reason}")]
    Decompress { uri: String, codec: &'static str, offset: u64, reason: String },
    #[error("manifest {uri}: {reason}")]
    Manifest { uri: String, reason: String },
    #[error("no input objects at {uri}")]
    NoInput { uri: String },
    #[error("the bucket of {uri} does not exist (endpoint {endpoint})")]
    NoSuchBucket { uri: String, endpoint: String },
    #[error(
        "access to {uri} was denied (endpoint {endpoint}): check the credentials (AWS_ACCESS_KEY_ID, the task role) and the bucket policy"
    )]
    AccessDenied {
        uri: String,
        endpoint: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("cannot reach the S3 endpoint {endpoint} for {uri}: check AWS_ENDPOINT_URL and the network")]
    Unreachable {
        uri: String,
        endpoint: String,
        #[source]
        source: Box<object_store::Error>,
    },
}

impl StoreError {
    /// Whether retrying the same call may succeed (timeouts, 5xx,
    /// throttling, a lost connection), also under a Parquet read or write
    /// that failed on I/O.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::ObjectStore { source, .. } => retryable(source),
            StoreError::Parquet { source: parquet::errors::ParquetError::External(e), .. } => {
                e.downcast_ref::<object_store::Error>().is_some_and(retryable)
            }
            StoreError::Unreachable { .. } => true,
            _ => false,
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::ObjectStore { source: object_store::Error::NotFound { .. }, .. })
    }
}

fn retryable(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
    )
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store and a prefix in it, named by a URI.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    /// The URI up to the bucket or root, e.g. `s3://bucket` or `file://`.
    base: String,
    path: Path,
    /// The S3 endpoint, for messages; `None` for other stores.
    endpoint: Option<String>,
}

fn memory() -> Arc<dyn ObjectStore> {
    static MEM: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    MEM.get_or_init(|| Arc::new(object_store::memory::InMemory::new())).clone()
}

impl Location {
    /// `s3://bucket/prefix/`, `file:///abs/path/`, `memory:///x/`, or a plain
    /// local path (relative paths are taken from the current directory).
    /// S3 settings come from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT_URL`, credentials, the ECS task role, region).
    pub fn parse(uri: &str) -> Result<Self> {
        Self::parse_with(uri, &[])
    }

    /// Like [`Location::parse`], with S3 settings that override the
    /// environment, named as `object_store` names them (`aws_endpoint`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`, ...).
    pub fn parse_with(uri: &str, s3_options: &[(&str, &str)]) -> Result<Self> {
        let bad = |reason: &str| StoreError::InvalidUri { uri: uri.to_string(), reason: reason.to_string() };
        if uri.split('/').any(|s| s == "..") {
            return Err(bad("`..` is not allowed"));
        }
        if !uri.contains("://") {
            let p = std::path::Path::new(uri);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().map_err(|e| bad(&e.to_string()))?.join(p)
            };
            let mut s = Url::from_file_path(&abs).map_err(|_| bad("not a usable local path"))?.to_string();
            if uri.ends_with('/') && !s.ends_with('/') {
                s.push('/');
            }
            return Self::parse_with(&s, s3_options);
        }
        let url = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "file" => {
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self {
                    store: Arc::new(object_store::local::LocalFileSystem::new()),
                    base: "file://".into(),
                    path,
                    endpoint: None,
                })
            }
            "memory" => {
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self { store: memory(), base: "memory://".into(), path, endpoint: None })
            }
            "s3" | "s3a" => {
                let bucket =
                    url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("expected s3://bucket/prefix"))?;
                let (store, endpoint) = s3_store(bucket, s3_options).map_err(|e| match e {
                    S3Setup::Store(e) => StoreError::ObjectStore { op: "configure S3 for", uri: uri.into(), source: e },
                    S3Setup::Option(option) => StoreError::S3Option { option, uri: uri.into() },
                })?;
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self { store, base: format!("s3://{bucket}"), path, endpoint: Some(endpoint) })
            }
            other => Err(bad(&format!("unsupported scheme `{other}`; expected s3://, file:// or memory://"))),
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The URI of this location (no trailing slash).
    pub fn uri(&self) -> String {
        format!("{}/{}", self.base, self.path.as_ref())
    }
    /// The URI of an object under this location.
    pub fn uri_of(&self, path: &Path) -> String {
        format!("{}/{}", self.base, path.as_ref())
    }
    /// A location for `rel` (slash-separated) under this one; refuses `..`,
    /// empty segments and absolute paths.
    pub fn child(&self, rel: &str) -> Result<Location> {
        Ok(Location {
            store: self.store.clone(),
            base: self.base.clone(),
            path: self.join(rel)?,
            endpoint: self.endpoint.clone(),
        })
    }
    /// The object path of `rel` under this location, confined to it.
    pub fn join(&self, rel: &str) -> Result<Path> {
        if rel.starts_with('/') || rel.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(StoreError::InvalidUri {
                uri: rel.to_string(),
                reason: "expected a relative path without `..`".into(),
            });
        }
        let mut p = self.path.clone();
        for seg in rel.split('/') {
            p = p.join(seg);
        }
        Ok(p)
    }

    pub async fn put_bytes(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.join(rel)?;
        self.store.put(&path, PutPayload::from(Bytes::from(bytes))).await.map_err(|e| StoreError::ObjectStore {
            op: "put",
            uri: self.uri_of(&path),
            source: e,
        })?;
        Ok(())
    }

    pub async fn get_bytes(&self, rel: &str) -> Result<Vec<u8>> {
        let path = self.join(rel)?;
        self.get_path(&path).await
    }

    pub async fn get_path(&self, path: &Path) -> Result<Vec<u8>> {
        let uri = self.uri_of(path);
        let r = self.store.get(path).await.map_err(|e| StoreError::ObjectStore {
            op: "get",
            uri: uri.clone(),
            source: e,
        })?;
        let b = r.bytes().await.map_err(|e| StoreError::ObjectStore { op: "read", uri, source: e })?;
        Ok(b.to_vec())
    }

    /// Lists every object under this location (recursively), sorted by key.
    pub async fn list(&self) -> Result<Vec<object_store::ObjectMeta>> {
        use futures::TryStreamExt;
        let prefix = (!self.path.as_ref().is_empty()).then_some(&self.path);
        let mut v: Vec<_> = self.store.list(prefix).try_collect().await.map_err(|e| StoreError::ObjectStore {
            op: "list",
            uri: self.uri(),
            source: e,
        })?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Before any work: can this location be listed? For S3 this tells a
    /// missing bucket, denied access and an unreachable endpoint apart.
    pub async fn check(&self) -> Result<()> {
        let Some(endpoint) = &self.endpoint else { return Ok(()) };
        let prefix = (!self.path.as_ref().is_empty()).then_some(&self.path);
        match self.store.list_with_delimiter(prefix).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(e, self.uri(), endpoint.clone())),
        }
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore { op: "delete", uri: self.uri_of(path), source: e }),
        }
    }
}

/// A listing error, told apart by what S3 answered (object_store reports
/// these as generic errors carrying the HTTP status and S3 error code).
fn classify(e: object_store::Error, uri: String, endpoint: String) -> StoreError {
    let text = format!("{e:?}");
    if text.contains("NoSuchBucket") {
        return StoreError::NoSuchBucket { uri, endpoint };
    }
    let denied =
        matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
            || ["status: 403", "status: 401", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"]
                .iter()
                .any(|m| text.contains(m));
    if denied {
        return StoreError::AccessDenied { uri, endpoint, source: Box::new(e) };
    }
    if text.contains("kind: Connect")
        || text.contains("Connection refused")
        || text.contains("dns error")
        || text.contains("TimedOut")
    {
        return StoreError::Unreachable { uri, endpoint, source: Box::new(e) };
    }
    StoreError::ObjectStore { op: "list", uri, source: e }
}

enum S3Setup {
    Store(object_store::Error),
    Option(String),
}

/// S3 from the standard `AWS_*` variables (credentials, the ECS task role,
/// region), `AWS_ENDPOINT_URL[_S3]` for S3-compatible servers (path-style;
/// plain HTTP only when the endpoint says `http://`), then `options`.
/// Retries: at most 5, exponential backoff from 100 ms to 5 s, within 60 s,
/// on timeouts, 5xx and throttling; 4xx answers are not retried.
fn s3_store(bucket: &str, options: &[(&str, &str)]) -> Result<(Arc<dyn ObjectStore>, String), S3Setup> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use std::time::Duration;
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .filter(|e| !e.is_empty());
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        b = b.with_region("us-east-1");
    }
    for (k, v) in options {
        let key: AmazonS3ConfigKey = k.parse().map_err(|_| S3Setup::Option(k.to_string()))?;
        if key == AmazonS3ConfigKey::Endpoint {
            endpoint = Some(v.to_string());
        }
        b = b.with_config(key, *v);
    }
    if let Some(ep) = &endpoint {
        b = b.with_virtual_hosted_style_request(false).with_endpoint(ep);
    }
    let retry = object_store::RetryConfig {
        max_retries: 5,
        retry_timeout: Duration::from_secs(60),
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
    };
    let allow_http = endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
    let client = object_store::ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120));
    let store = b.with_retry(retry).with_client_options(client).build().map_err(S3Setup::Store)?;
    Ok((Arc::new(store), endpoint.unwrap_or_else(|| "AWS S3".to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_children_are_confined() {
        let l = Location::parse("file:///tmp/x/").unwrap();
        assert_eq!(l.uri(), "file:///tmp/x");
        assert_eq!(
            l.child("dt=2025-07-01/part-a.parquet").unwrap().uri(),
            "file:///tmp/x/dt=2025-07-01/part-a.parquet"
        );
        for bad in ["../y", "/abs", "a//b", "a/./b", ""] {
            assert!(l.join(bad).is_err(), "{bad:?}");
        }
        assert!(Location::parse("file:///tmp/../etc").is_err());
        assert!(Location::parse("ftp://x/y").is_err());
        let rel = Location::parse("some/dir/").unwrap();
        assert!(rel.uri().starts_with("file:///") && rel.uri().ends_with("/some/dir"), "{}", rel.uri());
        let m = Location::parse("memory:///t/").unwrap();
        assert_eq!(m.uri(), "memory:///t");
    }

    #[tokio::test]
    async fn memory_round_trip_and_list() {
        let l = Location::parse("memory:///list-test/").unwrap();
        l.put_bytes("b/2", vec![2]).await.unwrap();
        l.put_bytes("a/1", vec![1]).await.unwrap();
        let keys: Vec<String> = l.list().await.unwrap().into_iter().map(|m| m.location.to_string()).collect();
        assert_eq!(keys, ["list-test/a/1", "list-test/b/2"]);
        let e = l.get_bytes("nope").await.unwrap_err();
        assert!(e.is_not_found() && !e.is_retryable(), "{e}");
    }
}
