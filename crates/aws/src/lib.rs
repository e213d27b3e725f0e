//! The fleet's AWS control plane: Glue tables and partitions, Athena queries.
//!
//! This is the only crate that compiles the AWS SDK (the workers move data
//! with `object_store` and never call it). Configuration is the SDK's own
//! standard chain: `AWS_REGION`, the credential chain (environment, profile,
//! SSO, the ECS task role), and `AWS_ENDPOINT_URL` or the per-service
//! `AWS_ENDPOINT_URL_GLUE` / `AWS_ENDPOINT_URL_ATHENA` for an emulator such
//! as moto.
//!
//! - [`glue::Glue`]: create a table from an Arrow schema, evolve it when
//!   columns are added, register partitions in batches of at most 100 once
//!   their commit markers exist ([`glue::sync_table`]), or use partition
//!   projection instead.
//! - [`athena::Athena`]: run a query, poll it with backoff and a timeout,
//!   page through its results (or read the result object from S3), export
//!   them to JSONL or Parquet, and price it.
//! - `fleet` (feature `fleet`): one-off ECS tasks with a shard's settings as
//!   container overrides, and executions of the fan-out state machine.

#[cfg(feature = "athena")]
pub mod athena;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod glue;

use std::time::Duration;

/// Why a control-plane call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    #[error("no AWS region is configured: set AWS_REGION (or a region in the AWS profile)")]
    NoRegion,
    /// An API call failed; `message` carries the service's error code and text.
    #[error("{service} {operation} failed: {message}")]
    Api { service: &'static str, operation: &'static str, message: String },
    #[error(
        "Glue table {database}.{table}: column `{column}` is {existing} in Glue but {found} in the data; \
         a column's type cannot change (write the data under a new column name or a new table)"
    )]
    IncompatibleType { database: String, table: String, column: String, existing: String, found: String },
    #[error("Glue table {database}.{table} is partitioned by {existing:?} but the data under {location} by {found:?}")]
    PartitionKeys { database: String, table: String, location: String, existing: Vec<String>, found: Vec<String> },
    #[error("Glue table {database}.{table} does not exist")]
    NoSuchTable { database: String, table: String },
    #[error("Athena query {id} {state}: {reason}")]
    QueryFailed { id: String, state: String, reason: String },
    #[error("Athena query {id} was still {state} after {timeout:?}; {}", if *cancelled { "it has been cancelled" } else { "cancelling it failed: stop it with `aws athena stop-query-execution`" })]
    Timeout { id: String, state: String, timeout: Duration, cancelled: bool },
    /// A table definition or an argument that cannot be used.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Catalog(#[from] fleet_catalog::CatalogError),
    #[error(transparent)]
    Store(#[from] fleet_store::StoreError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

pub type Result<T, E = AwsError> = std::result::Result<T, E>;

/// An API error with the whole chain of causes (the SDK's `Display` alone
/// says only "service error").
pub(crate) fn api_error<E: std::error::Error + 'static>(
    service: &'static str,
    operation: &'static str,
    e: E,
) -> AwsError {
    AwsError::Api { service, operation, message: aws_sdk_glue::error::DisplayErrorContext(e).to_string() }
}

/// The SDK configuration from the standard chain, with bounded retries
/// (standard mode, 5 attempts) and timeouts (connect 5 s, each attempt 60 s).
pub async fn sdk_config() -> Result<aws_config::SdkConfig> {
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(5);
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .build();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await;
    if conf.region().is_none() {
        return Err(AwsError::NoRegion);
    }
    Ok(conf)
}
