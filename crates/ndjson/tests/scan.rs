//! The scan (`fleet_ndjson::scan`) against simd-json, which decides every
//! line the scan is not sure of: on JSONTestSuite's valid, invalid and
//! implementation-defined documents and on the simdjson, JSON Resume, QED
//! and DuckDB corpora, a document the scan reads is one simd-json parses
//! as an object, to the same events (strings with escapes unescaped) and
//! the same shape.

use std::path::PathBuf;

use fleet_ndjson::Shape;
use fleet_ndjson::scan::{Event, from_tape, scan, unescape};
use fleet_spec::{CellParser, Parsed};
use simd_json::{Node, Tape};

fn documents(under: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = fleet_test_support::corpora().join(under);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json" || x == "ndjson" || x == "jsonl") {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The events with every string's text unescaped.
fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Escaped(raw) => {
                let mut s = String::new();
                unescape(raw, &mut s).unwrap();
                format!("{:?}", Event::String(&s))
            }
            e => format!("{e:?}"),
        })
        .collect()
}

/// Each document whole, and each of its lines: how many the scan read,
/// and how many simd-json parses as objects.
fn checked(docs: &[(PathBuf, Vec<u8>)]) -> (usize, usize) {
    let (mut sure, mut objects) = (0, 0);
    let mut parser = CellParser::default();
    let mut events = Vec::new();
    for (path, bytes) in docs {
        for piece in std::iter::once(&bytes[..]).chain(bytes.split(|&b| b == b'\n')) {
            let mut tape = Tape::null().reset();
            let parsed = parser.parse(piece, &mut tape);
            let object = matches!(parsed, Ok(Parsed::Document)) && matches!(tape.0[0], Node::Object { .. });
            objects += usize::from(object);
            if !scan(piece, &mut events) {
                continue;
            }
            sure += 1;
            assert!(
                object,
                "{}: the scan read what simd-json does not take as an object: {:?}",
                path.display(),
                String::from_utf8_lossy(&piece[..piece.len().min(200)])
            );
            let mut simd = Vec::new();
            from_tape(&tape.0, piece, &mut simd);
            let (mut by_scan, mut by_simd) = (Shape::default(), Shape::default());
            by_scan.replay(&events, 0);
            by_simd.replay(&simd, 0);
            assert_eq!(by_scan.columns(), by_simd.columns(), "{}", path.display());
            assert_eq!(texts(&events), texts(&simd), "{}", path.display());
        }
    }
    (sure, objects)
}

#[test]
fn what_the_scan_reads_simd_json_parses_to_the_same_shape() {
    let suite = documents("jsontestsuite/test_parsing");
    assert!(suite.len() > 300, "JSONTestSuite has {} documents", suite.len());
    let (sure, _) = checked(&suite);
    // numbers at each class boundary of the widening
    let numbers: Vec<(PathBuf, Vec<u8>)> = [
        "0",
        "-1",
        "1.0",
        "-0.0",
        "1e5",
        "1E-5",
        "9007199254740992",
        "9007199254740993",
        "-9007199254740993",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "-18446744073709551616",
        "12345678901234567890123456789012345678",
        "123456789012345678901234567890123456789",
        "-123456789012345678901234567890123456789",
        "123456789012345678901234567890.5",
    ]
    .iter()
    .map(|n| (PathBuf::from(n), format!(r#"{{"n":{n},"l":[{n}]}}"#).into_bytes()))
    .collect();
    // each document counts whole and as its one line
    assert_eq!(checked(&numbers).0, 2 * numbers.len());
    // the valid objects among them are read
    assert!(sure >= 20, "the scan read {sure} of JSONTestSuite's documents");
    let mut corpora = documents("simdjson-data");
    corpora.extend(documents("jsonresume-fake"));
    corpora.extend(documents("qed-nq-explanations"));
    corpora.extend(documents("duckdb-json"));
    let (sure, objects) = checked(&corpora);
    assert!(sure * 10 >= objects * 9, "the scan read {sure} of {objects} objects");
}
