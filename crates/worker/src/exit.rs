//! How a worker's run ends, as an exit code a retry policy can use: retry
//! the retryable codes (1, 143) with backoff, a bounded number of times;
//! never the others, which fail the same way again.

use fleet_store::StoreError;

/// The end of a run. Every worker may end with [`Exit::COMMON`]; workers
/// with a reject threshold also with [`Exit::RejectThreshold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0: done; the output is committed.
    Done,
    /// 1: failed for a reason that may pass: throttling, a timeout, a 5xx,
    /// a lost connection, or an error nobody foresaw. Retry.
    Retryable,
    /// 2: a setting is missing or invalid, the spec does not compile, or a
    /// bucket is missing or denies access; nothing was done. Do not retry.
    Config,
    /// 3: more rows were rejected than the threshold allows; data and
    /// rejects were written, nothing committed. Do not retry.
    RejectThreshold,
    /// 4: an input object is corrupt or unreadable, or does not fit (a
    /// column of the wrong type); nothing committed. Do not retry.
    BadInput,
    /// 143: stopped by SIGTERM (ECS stop, a Spot interruption) or SIGINT;
    /// nothing committed. Retry.
    Terminated,
}

impl Exit {
    /// Every exit, in code order.
    pub const ALL: [Exit; 6] =
        [Exit::Done, Exit::Retryable, Exit::Config, Exit::RejectThreshold, Exit::BadInput, Exit::Terminated];

    /// The exits of every worker.
    pub const COMMON: &'static [Exit] = &[Exit::Done, Exit::Retryable, Exit::Config, Exit::BadInput, Exit::Terminated];

    pub const fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Retryable => 1,
            Exit::Config => 2,
            Exit::RejectThreshold => 3,
            Exit::BadInput => 4,
            Exit::Terminated => 143,
        }
    }

    /// The exit of a process's code; unknown codes (a crash, a signal other
    /// than SIGTERM) count as [`Exit::Retryable`].
    pub fn from_code(code: i32) -> Exit {
        Exit::ALL.into_iter().find(|e| i32::from(e.code()) == code).unwrap_or(Exit::Retryable)
    }

    /// Whether running the same shard again may succeed.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Exit::Retryable | Exit::Terminated)
    }

    /// A short name, for tables of shards.
    pub const fn name(self) -> &'static str {
        match self {
            Exit::Done => "ok",
            Exit::Retryable => "failed",
            Exit::Config => "config",
            Exit::RejectThreshold => "rejects",
            Exit::BadInput => "input",
            Exit::Terminated => "stopped",
        }
    }

    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Done => "done, output committed",
            Exit::Retryable => {
                "failed; retry may help (throttling, timeouts, 5xx, a lost connection, an unforeseen error)"
            }
            Exit::Config => "bad configuration or spec; nothing was done",
            Exit::RejectThreshold => "reject threshold exceeded; data and rejects written, not committed",
            Exit::BadInput => "an input object is corrupt, unreadable or does not fit; not committed",
            Exit::Terminated => "stopped by SIGTERM or SIGINT; not committed; retry may help",
        }
    }

    /// The exit-code table of `--help`.
    pub fn table(exits: &[Exit]) -> String {
        let mut s = String::from("Exit codes:\n");
        for e in exits {
            let retry = match e {
                Exit::Done => "     ",
                _ if e.is_retryable() => "retry",
                _ => "final",
            };
            s.push_str(&format!("  {:>3}  {retry}  {}\n", e.code(), e.meaning()));
        }
        s
    }

    /// How a storage error ends a run: an I/O failure that may pass is
    /// retryable; a missing bucket, denied access or a bad URI is
    /// configuration; anything wrong with what was read is bad input.
    pub fn of_store(e: &StoreError) -> Exit {
        match e {
            _ if e.is_retryable() => Exit::Retryable,
            StoreError::InvalidUri { .. }
            | StoreError::S3Option { .. }
            | StoreError::NoSuchBucket { .. }
            | StoreError::AccessDenied { .. } => Exit::Config,
            StoreError::ObjectStore { source, .. } => match source {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
                | object_store::Error::InvalidPath { .. }
                | object_store::Error::NotSupported { .. } => Exit::Config,
                object_store::Error::NotFound { .. } => Exit::BadInput,
                _ => Exit::Retryable,
            },
            // A Parquet read that failed on I/O carries the object_store
            // error that is_retryable() looked at; otherwise the bytes were bad.
            StoreError::Parquet { op, .. } if op.starts_with("read") => Exit::BadInput,
            StoreError::Ndjson { .. }
            | StoreError::Decompress { .. }
            | StoreError::Manifest { .. }
            | StoreError::NoInput { .. } => Exit::BadInput,
            _ => Exit::Retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_only_1_and_143_are_retried() {
        for e in Exit::ALL {
            assert_eq!(Exit::from_code(i32::from(e.code())), e);
        }
        let retried: Vec<u8> = Exit::ALL.into_iter().filter(|e| e.is_retryable()).map(Exit::code).collect();
        assert_eq!(retried, [1, 143]);
        assert_eq!(Exit::from_code(101), Exit::Retryable, "a panic");
        let t = Exit::table(Exit::COMMON);
        assert!(t.contains("    4  final  an input object is corrupt"), "{t}");
        assert!(!t.contains("  3  "), "{t}");
    }

    #[test]
    fn store_errors_are_classified() {
        let nf = StoreError::ObjectStore {
            op: "get",
            uri: "s3://b/k".into(),
            source: object_store::Error::NotFound { path: "k".into(), source: "gone".into() },
        };
        assert_eq!(Exit::of_store(&nf), Exit::BadInput);
        let bucket = StoreError::NoSuchBucket { uri: "s3://b/".into(), endpoint: "e".into() };
        assert_eq!(Exit::of_store(&bucket), Exit::Config);
        let corrupt = StoreError::Parquet {
            op: "read",
            uri: "f".into(),
            source: parquet::errors::ParquetError::General("bad magic".into()),
        };
        assert_eq!(Exit::of_store(&corrupt), Exit::BadInput);
        let lost = StoreError::Parquet {
            op: "read",
            uri: "f".into(),
            source: parquet::errors::ParquetError::External(Box::new(object_store::Error::Generic {
                store: "S3",
                source: "connection reset".into(),
            })),
        };
        assert_eq!(Exit::of_store(&lost), Exit::Retryable, "an I/O failure under a Parquet read");
    }
}
