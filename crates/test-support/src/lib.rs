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

/// The public JSON corpora (`../shared/corpora` beside the checkout, or
/// `FLEET_CORPORA`), read in place: they are not copied into the project.
pub fn corpora() -> std::path::PathBuf {
    let p = std::env::var_os("FLEET_CORPORA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"));
    assert!(p.join("SOURCES.md").exists(), "corpora not found at {} (set FLEET_CORPORA)", p.display());
    p
}

/// Every JSONTestSuite parsing case (`y_`, `n_` and `i_` files) as (file
/// name, bytes), in name order.
pub fn json_test_suite() -> Vec<(String, Vec<u8>)> {
    let dir = corpora().join("jsontestsuite/test_parsing");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.len() > 300, "JSONTestSuite looks incomplete: {} files", files.len());
    files
}

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

/// The Python of `scripts/py-env` (LightGBM, XGBoost, scikit-learn,
/// pyarrow), or `None` when it is not set up (a failure instead when
/// `FLEET_REQUIRE_PYTHON` is set, as in `scripts/test`).
pub fn python() -> Option<String> {
    match std::env::var("FLEET_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var("FLEET_REQUIRE_PYTHON").is_err(),
                "FLEET_REQUIRE_PYTHON is set but FLEET_TEST_PYTHON is not"
            );
            #[allow(clippy::print_stderr, reason = "a test that did not run says so")]
            {
                eprintln!("skipped: no Python with the model libraries (scripts/py-env makes one)");
            }
            None
        }
    }
}

/// The moto server's endpoint (Glue, Athena, ECS, Step Functions), or
/// `None` when none was started (a failure instead when `FLEET_REQUIRE_MOTO`
/// is set, as in `scripts/test`). It also checks that the SDK's
/// per-service endpoints (`AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL_ATHENA`)
/// point at it, so that a test never reaches a real AWS account.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("FLEET_TEST_MOTO_ENDPOINT") {
        Ok(e) => {
            assert!(e.starts_with("http://127.0.0.1:"), "tests talk to loopback only: {e}");
            for v in ["AWS_ENDPOINT_URL_GLUE", "AWS_ENDPOINT_URL_ATHENA"] {
                assert_eq!(std::env::var(v).ok().as_deref(), Some(e.as_str()), "{v} must point at moto");
            }
            Some(e)
        }
        Err(_) => {
            assert!(
                std::env::var("FLEET_REQUIRE_MOTO").is_err(),
                "FLEET_REQUIRE_MOTO is set but no moto server was started"
            );
            #[allow(clippy::print_stderr, reason = "a test that did not run says so")]
            {
                eprintln!("skipped: no moto server (scripts/test starts one)");
            }
            None
        }
    }
}

/// POSTs a JSON body to the moto server's own API (`/moto-api/...`), such
/// as the seeded Athena results of `/moto-api/static/athena/query-results`;
/// returns the HTTP status.
pub fn moto_api(path: &str, json: &str) -> u16 {
    use std::io::{Read, Write};
    let endpoint = moto_endpoint().expect("moto_api needs the moto server");
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connecting to moto");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .expect("writing to moto");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("reading moto's answer");
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// An S3 server of a test's own (s3s-fs on a free loopback port), for
/// faults that must not disturb other tests: stopping it mid-run.
/// Stopped when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Option<std::process::Child>,
    pub endpoint: String,
    pub root: std::path::PathBuf,
    _dir: TempDir,
}

/// A temporary folder removed on drop (no dependency for one helper).
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl S3Server {
    /// Starts one when the shared server exists (so `s3s-fs` is installed),
    /// with the same credentials.
    pub fn start(bucket: &str) -> Option<S3Server> {
        s3_endpoint()?;
        let root = std::env::temp_dir().join(format!("fleet-s3-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(root.join(bucket)).expect("bucket folder");
        let port = free_port();
        let child = Self::spawn(&root, port);
        Some(S3Server {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            root: root.clone(),
            _dir: TempDir(root),
        })
    }

    /// Starts the stopped server again, on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        let port: u16 = self.endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        self.child = Some(Self::spawn(&self.root, port));
    }

    fn spawn(root: &std::path::Path, port: u16) -> std::process::Child {
        let child = std::process::Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default()])
            .args(["--secret-key", &std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default()])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting s3s-fs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    }

    /// Stops the server now (a crash, as far as clients can tell).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
