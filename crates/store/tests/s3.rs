//! The S3 data plane against a real S3-compatible server over HTTP on
//! loopback (s3s-fs, started by `scripts/test`; see `fleet-test-support`).

use fleet_store::{Location, StoreError};
use fleet_test_support::{s3_bucket, s3_endpoint};

#[tokio::test]
async fn check_tells_missing_bucket_denied_access_and_unreachable_endpoint_apart() {
    let Some(b) = s3_bucket("fleet-check") else { return };
    let endpoint = s3_endpoint().unwrap();
    Location::parse(&format!("s3://{b}/x/")).unwrap().check().await.unwrap();

    let e = Location::parse("s3://fleet-missing/x/").unwrap().check().await.unwrap_err();
    assert!(
        matches!(&e, StoreError::NoSuchBucket { uri, endpoint: ep } if uri == "s3://fleet-missing/x" && *ep == endpoint),
        "{e:?}"
    );

    let wrong = Location::parse_with(&format!("s3://{b}/x/"), &[("aws_secret_access_key", "not-the-secret")]).unwrap();
    let e = wrong.check().await.unwrap_err();
    assert!(matches!(e, StoreError::AccessDenied { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!("access to s3://{b}/x was denied (endpoint {endpoint})")), "{e}");

    let closed = Location::parse_with(&format!("s3://{b}/x/"), &[("aws_endpoint", "http://127.0.0.1:9")]).unwrap();
    let e = closed.check().await.unwrap_err();
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot reach the S3 endpoint http://127.0.0.1:9 for"), "{e}");
    assert!(e.is_retryable(), "an unreachable endpoint may come back: a retry can help");

    let e = Location::parse_with("s3://b/x", &[("not_an_option", "1")]).unwrap_err();
    assert!(
        matches!(&e, StoreError::S3Option { option, uri } if option == "not_an_option" && uri == "s3://b/x"),
        "{e}"
    );
    assert!(e.to_string().contains("aws_endpoint"), "{e}");
}

#[tokio::test]
async fn multipart_upload_round_trip_and_listing() {
    let Some(b) = s3_bucket("fleet-multipart") else { return };
    let loc = Location::parse(&format!("s3://{b}/t/")).unwrap();
    // 20 MiB: several parts of the 8 MiB multipart buffer
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "s",
        arrow_schema::DataType::Utf8,
        false,
    )]));
    let big: Vec<String> = (0..2000).map(|i| format!("{i:05}{}", "x".repeat(10_000))).collect();
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![std::sync::Arc::new(arrow_array::StringArray::from(big))],
    )
    .unwrap();
    let opts = fleet_store::WriteOptions::default().with_compression(fleet_store::Compression::UNCOMPRESSED);
    let mut sink = fleet_store::ParquetSink::create(&loc, loc.join("big.parquet").unwrap(), schema, &opts).unwrap();
    sink.write(&batch).await.unwrap();
    let stats = sink.close().await.unwrap();
    assert!(stats.bytes > 16 << 20, "{}", stats.bytes);
    let bytes = loc.get_bytes("big.parquet").await.unwrap();
    assert_eq!(bytes.len() as u64, stats.bytes);
    assert_eq!(stats.crc32c, format!("{:08x}", crc32c::crc32c(&bytes)));
    for i in 0..3 {
        loc.put_bytes(&format!("k/{i}"), vec![i]).await.unwrap();
    }
    let keys: Vec<String> = loc.list().await.unwrap().into_iter().map(|m| m.location.to_string()).collect();
    assert_eq!(keys, ["t/big.parquet", "t/k/0", "t/k/1", "t/k/2"]);
}
