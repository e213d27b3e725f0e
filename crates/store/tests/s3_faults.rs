//! S3 faults: throttling that succeeds on retry (a loopback proxy answers the
//! first request with 503 SlowDown, then forwards to the real server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fleet_store::Location;
use fleet_test_support::{free_port, s3_bucket, s3_endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards connections to `upstream`, answering the first `throttle`
/// requests with 503 SlowDown instead. Returns its endpoint and a counter of
/// connections seen.
async fn throttling_proxy(upstream: String, throttle: usize) -> (String, Arc<AtomicUsize>) {
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let up = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let up = up.clone();
            tokio::spawn(async move {
                if n < throttle {
                    let mut buf = vec![0u8; 64 << 10];
                    let _ = client.read(&mut buf).await;
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    let resp = format!(
                        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(resp.as_bytes()).await;
                    let _ = client.shutdown().await;
                    return;
                }
                if let Ok(mut server) = TcpStream::connect(&up).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_succeeds_on_retry() {
    let Some(b) = s3_bucket("fleet-throttle") else { return };
    let (proxy, seen) = throttling_proxy(s3_endpoint().unwrap(), 2).await;
    let loc = Location::parse_with(&format!("s3://{b}/t/"), &[("aws_endpoint", proxy.as_str())]).unwrap();
    loc.put_bytes("a.json", b"{\"ok\":true}".to_vec()).await.unwrap();
    assert!(seen.load(Ordering::SeqCst) >= 3, "two throttled attempts, then the one that went through");
    let direct = Location::parse(&format!("s3://{b}/t/")).unwrap();
    assert_eq!(direct.get_bytes("a.json").await.unwrap(), b"{\"ok\":true}".to_vec());
}
