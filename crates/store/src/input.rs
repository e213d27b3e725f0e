//! Which objects an input URI names: a prefix, one object, or a manifest.

use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Deserialize;

use crate::{Location, Result, StoreError};

/// Format of a raw input object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Parquet,
    Ndjson,
}

impl InputFormat {
    /// By file name: `.json`, `.jsonl`, `.ndjson` are NDJSON; anything else is Parquet.
    pub fn from_name(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".json") || n.ends_with(".jsonl") || n.ends_with(".ndjson") {
            InputFormat::Ndjson
        } else {
            InputFormat::Parquet
        }
    }
}

/// One raw input object.
#[derive(Debug, Clone)]
pub struct InputObject {
    pub location: Location,
    pub path: Path,
    pub size: u64,
    /// The version listed, when the store gives one: reads in ranges ask
    /// for it, so an object overwritten while read fails rather than
    /// mixing two versions.
    pub e_tag: Option<String>,
}

impl InputObject {
    pub fn uri(&self) -> String {
        self.location.uri_of(&self.path)
    }
    /// The file name (last path segment).
    pub fn name(&self) -> &str {
        self.path.as_ref().rsplit('/').next().unwrap_or_default()
    }
}

/// A manifest: `{"files": ["s3://...", ...]}`, the Redshift form
/// `{"entries": [{"url": "s3://..."}]}`, the QuickSight/Glue form
/// `{"fileLocations": [{"URIs": [...]}, {"URIPrefixes": [...]}]}` (a prefix
/// stands for every object under it), a JSON list of URIs, or one URI per
/// line.
#[derive(Deserialize)]
struct ManifestJson {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    entries: Vec<ManifestEntry>,
    #[serde(default, rename = "fileLocations")]
    file_locations: Vec<FileLocation>,
}

#[derive(Deserialize)]
struct FileLocation {
    #[serde(default, rename = "URIs")]
    uris: Vec<String>,
    #[serde(default, rename = "URIPrefixes")]
    uri_prefixes: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    url: String,
}

fn is_manifest(uri: &str) -> bool {
    uri.ends_with(".manifest") || uri.ends_with(".manifest.json") || uri.ends_with("/manifest.json")
}

/// Objects whose path below the prefix has a segment starting with `_` or
/// `.` are bookkeeping (`_SUCCESS`, `_commits/`, `.crc`) and not input.
fn hidden(rel: &str) -> bool {
    rel.split('/').any(|s| s.starts_with('_') || s.starts_with('.'))
}

/// Resolves an input URI to its objects, sorted by URI: the order that shard
/// assignment uses.
pub async fn list_inputs(uri: &str) -> Result<Vec<InputObject>> {
    let loc = Location::parse(uri)?;
    let mut out = Vec::new();
    if is_manifest(uri) {
        let bytes = loc.get_path(loc.path()).await?;
        let text = String::from_utf8(bytes)
            .map_err(|_| StoreError::Manifest { uri: uri.to_string(), reason: "not UTF-8".into() })?;
        let bad = |e: serde_json::Error| StoreError::Manifest { uri: uri.to_string(), reason: e.to_string() };
        let mut prefixes = Vec::new();
        let uris: Vec<String> = if text.trim_start().starts_with('{') {
            let m: ManifestJson = serde_json::from_str(&text).map_err(bad)?;
            let mut uris: Vec<String> = m.files.into_iter().chain(m.entries.into_iter().map(|e| e.url)).collect();
            for l in m.file_locations {
                uris.extend(l.uris);
                prefixes.extend(l.uri_prefixes);
            }
            uris
        } else if text.trim_start().starts_with('[') {
            serde_json::from_str(&text).map_err(bad)?
        } else {
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
        };
        for u in uris {
            let l = Location::parse(&u)?;
            let meta = l.store().head(l.path()).await.map_err(|e| StoreError::ObjectStore {
                op: "head (manifest entry)",
                uri: u.clone(),
                source: e,
            })?;
            out.push(InputObject { path: l.path().clone(), location: l, size: meta.size, e_tag: meta.e_tag });
        }
        for p in prefixes {
            let l = Location::parse(&format!("{}/", p.trim_end_matches('/')))?;
            list_prefix(&l, &mut out).await?;
        }
    } else {
        let single = if uri.ends_with('/') { None } else { loc.store().head(loc.path()).await.ok() };
        match single {
            Some(meta) => out.push(InputObject {
                path: loc.path().clone(),
                location: loc.clone(),
                size: meta.size,
                e_tag: meta.e_tag,
            }),
            None => list_prefix(&loc, &mut out).await?,
        }
    }
    if out.is_empty() {
        return Err(StoreError::NoInput { uri: uri.to_string() });
    }
    out.sort_by_key(|o| o.uri());
    out.dedup_by_key(|o| o.uri());
    Ok(out)
}

/// Adds the objects under the prefix `loc` (not hidden, not empty) to `out`.
async fn list_prefix(loc: &Location, out: &mut Vec<InputObject>) -> Result<()> {
    let prefix_len = loc.path().as_ref().len();
    for meta in loc.list().await? {
        let rel = meta.location.as_ref()[prefix_len..].trim_start_matches('/');
        if !hidden(rel) && meta.size > 0 {
            out.push(InputObject { location: loc.clone(), path: meta.location, size: meta.size, e_tag: meta.e_tag });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefix_object_and_manifest() {
        let l = Location::parse("memory:///inputs-test/").unwrap();
        for k in
            ["raw/b.parquet", "raw/a.parquet", "raw/_SUCCESS", "raw/.hidden", "raw/_commits/x.json", "raw/sub/c.json"]
        {
            l.put_bytes(k, vec![1]).await.unwrap();
        }
        let names = |v: Vec<InputObject>| v.iter().map(|o| o.uri()).collect::<Vec<_>>();
        assert_eq!(
            names(list_inputs("memory:///inputs-test/raw/").await.unwrap()),
            [
                "memory:///inputs-test/raw/a.parquet",
                "memory:///inputs-test/raw/b.parquet",
                "memory:///inputs-test/raw/sub/c.json"
            ]
        );
        // a prefix without its trailing slash still lists
        assert_eq!(list_inputs("memory:///inputs-test/raw").await.unwrap().len(), 3);
        assert_eq!(
            names(list_inputs("memory:///inputs-test/raw/b.parquet").await.unwrap()),
            ["memory:///inputs-test/raw/b.parquet"]
        );
        l.put_bytes(
            "m.manifest.json",
            br#"{"entries": [{"url": "memory:///inputs-test/raw/b.parquet"}, {"url": "memory:///inputs-test/raw/a.parquet"}]}"#.to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(list_inputs("memory:///inputs-test/m.manifest.json").await.unwrap()[0].name(), "a.parquet");
        l.put_bytes("n.manifest", b"memory:///inputs-test/raw/sub/c.json\n\n".to_vec()).await.unwrap();
        assert_eq!(list_inputs("memory:///inputs-test/n.manifest").await.unwrap().len(), 1);
        l.put_bytes(
            "q.manifest.json",
            br#"{"fileLocations": [{"URIs": ["memory:///inputs-test/raw/a.parquet"]}, {"URIPrefixes": ["memory:///inputs-test/raw/sub"]}]}"#.to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(
            names(list_inputs("memory:///inputs-test/q.manifest.json").await.unwrap()),
            ["memory:///inputs-test/raw/a.parquet", "memory:///inputs-test/raw/sub/c.json"]
        );
        l.put_bytes("list.manifest.json", br#"["memory:///inputs-test/raw/b.parquet"]"#.to_vec()).await.unwrap();
        assert_eq!(list_inputs("memory:///inputs-test/list.manifest.json").await.unwrap()[0].name(), "b.parquet");
        l.put_bytes("bad.manifest", b"memory:///inputs-test/raw/missing\n".to_vec()).await.unwrap();
        let e = list_inputs("memory:///inputs-test/bad.manifest").await.unwrap_err();
        assert!(e.to_string().contains("raw/missing"), "{e}");
        assert!(matches!(list_inputs("memory:///inputs-test/none/").await, Err(StoreError::NoInput { .. })));
        assert_eq!(InputFormat::from_name("x.NDJSON"), InputFormat::Ndjson);
    }
}
