//! The framework's error: what ends a run, and with which [`Exit`].

use fleet_contract::ConfigError;
use fleet_store::StoreError;

use crate::Exit;

/// Why a run failed. Every variant knows its [`Exit`]; a worker's own
/// errors come in as [`JobError::Worker`], classified by the worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building a batch of output or rejects")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(
        "{rows_rejected} of {rows} rows ({ratio:.4}) had a rejected cell, more than FLEET_MAX_REJECT_RATIO={max}; data and rejects were written, the shard was not committed"
    )]
    RejectThreshold { rows_rejected: u64, rows: u64, ratio: f64, max: f64 },
    #[error(transparent)]
    Worker(Classified),
    /// Registering the committed table in the catalog (Glue) failed; the
    /// data is committed, a retry registers it.
    #[error("{0}")]
    Catalog(String),
    /// The machinery itself: a thread pool that would not start, a task
    /// that panicked.
    #[error("{0}")]
    Internal(String),
}

impl JobError {
    /// A worker's own error, ending the run with `exit`.
    pub fn worker(exit: Exit, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        JobError::Worker(Classified { exit, error: Box::new(error) })
    }

    pub fn exit(&self) -> Exit {
        match self {
            JobError::Config(_) => Exit::Config,
            JobError::Store(e) => Exit::of_store(e),
            JobError::RejectThreshold { .. } => Exit::RejectThreshold,
            JobError::Worker(c) => c.exit,
            JobError::Arrow(_) | JobError::Catalog(_) | JobError::Internal(_) => Exit::Retryable,
        }
    }

    /// The process exit code of [`JobError::exit`].
    pub fn exit_code(&self) -> i32 {
        i32::from(self.exit().code())
    }

    pub fn is_retryable(&self) -> bool {
        self.exit().is_retryable()
    }
}

/// A worker's error with the exit it ends a run with; shows as the error
/// itself.
#[derive(Debug)]
pub struct Classified {
    pub exit: Exit,
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Classified {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// An error and its causes on one line, `outer: inner: innermost`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
