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
mod parquet_io;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

pub use input::{InputFormat, InputObject, list_inputs};
pub use parquet_io::{
    BatchStream, Compression, GzipLevel, ParquetSink, SinkStats, WriteOptions, ZstdLevel, open_batches,
};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
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
    #[error("manifest {uri}: {reason}")]
    Manifest { uri: String, reason: String },
    #[error("no input objects at {uri}")]
    NoInput { uri: String },
}

impl StoreError {
    /// Whether retrying the same call may succeed (timeouts, 5xx, throttling).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::ObjectStore { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
            ),
            _ => false,
        }
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::ObjectStore { source: object_store::Error::NotFound { .. }, .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store and a prefix in it, named by a URI.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    /// The URI up to the bucket or root, e.g. `s3://bucket` or `file://`.
    base: String,
    path: Path,
}

fn memory() -> Arc<dyn ObjectStore> {
    static MEM: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    MEM.get_or_init(|| Arc::new(object_store::memory::InMemory::new())).clone()
}

impl Location {
    /// `s3://bucket/prefix/`, `file:///abs/path/`, `memory:///x/`, or a plain
    /// local path (relative paths are taken from the current directory).
    pub fn parse(uri: &str) -> Result<Self> {
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
            return Self::parse(&s);
        }
        let url = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "file" => {
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self { store: Arc::new(object_store::local::LocalFileSystem::new()), base: "file://".into(), path })
            }
            "memory" => {
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self { store: memory(), base: "memory://".into(), path })
            }
            "s3" | "s3a" => {
                let bucket =
                    url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("expected s3://bucket/prefix"))?;
                let store = s3_store(bucket).map_err(|e| StoreError::ObjectStore {
                    op: "configure S3 for",
                    uri: uri.into(),
                    source: e,
                })?;
                let path = Path::from_url_path(url.path()).map_err(|e| bad(&e.to_string()))?;
                Ok(Self { store, base: format!("s3://{bucket}"), path })
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
        Ok(Location { store: self.store.clone(), base: self.base.clone(), path: self.join(rel)? })
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

    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore { op: "delete", uri: self.uri_of(path), source: e }),
        }
    }
}

fn s3_store(bucket: &str) -> object_store::Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    if let Some(ep) = endpoint.filter(|e| !e.is_empty()) {
        b = b.with_allow_http(ep.starts_with("http://")).with_virtual_hosted_style_request(false).with_endpoint(ep);
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        b = b.with_region("us-east-1");
    }
    Ok(Arc::new(b.build()?))
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
