//! Helpers shared by the fleet's tests.
//!
//! `scripts/test` starts a real S3-compatible server (s3s-fs) on loopback and
//! exports `FLEET_TEST_S3_ENDPOINT` (its URL), `FLEET_TEST_S3_ROOT` (the
//! folder it serves: every bucket is a folder) and `FLEET_REQUIRE_S3=1`.
//! Tests take a bucket of their own from [`s3_bucket`].
//!
//! ```
//! if let Some(bucket) = fleet_test_support::s3_bucket("doc-example") {
//!     assert_eq!(bucket, "doc-example");
//! }
//! ```

/// The S3 test server's endpoint, or `None` when none was started (a
/// failure instead when `FLEET_REQUIRE_S3` is set, as in `scripts/test`).
pub fn s3_endpoint() -> Option<String> {
    match std::env::var("FLEET_TEST_S3_ENDPOINT") {
        Ok(e) => {
            assert!(e.starts_with("http://127.0.0.1:"), "tests talk to loopback only: {e}");
            Some(e)
        }
        Err(_) => {
            assert!(std::env::var("FLEET_REQUIRE_S3").is_err(), "FLEET_REQUIRE_S3 is set but no S3 server was started");
            skipped();
            None
        }
    }
}

/// A fresh, empty bucket `name` on the test server.
pub fn s3_bucket(name: &str) -> Option<String> {
    s3_endpoint()?;
    let root = std::env::var("FLEET_TEST_S3_ROOT").expect("FLEET_TEST_S3_ROOT comes with FLEET_TEST_S3_ENDPOINT");
    let dir = std::path::Path::new(&root).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the bucket folder");
    Some(name.to_string())
}

#[allow(clippy::print_stderr, reason = "a test that did not run says so")]
fn skipped() {
    eprintln!("skipped: no S3 server (scripts/test starts one)");
}
