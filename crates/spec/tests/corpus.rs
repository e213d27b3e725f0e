//! Public corpora from `../shared/corpora` (see its SOURCES.md): JSONTestSuite
//! through the cell parser and through the evaluator, and JSON Resume
//! documents through the example spec.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int16Type, Int32Type};
use arrow_array::{Array, RecordBatch, StringArray};
use fleet_spec::{CellParser, JSON_RESUME, Parsed, Spec, Workspace, Ymd};
use simd_json::Tape;

/// The shared corpora; `FLEET_CORPORA` overrides. Missing corpora fail the
/// test rather than skip it.
use fleet_test_support::{corpora, json_test_suite as suite};

fn blank(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

#[test]
fn every_y_file_parses_and_every_n_file_fails() {
    let mut parser = CellParser::default();
    let mut wrong = Vec::new();
    let (mut y, mut n) = (0, 0);
    for (name, bytes) in suite() {
        let mut tape = Tape::null();
        let r = parser.parse(&bytes, &mut tape);
        if name.starts_with("y_") {
            y += 1;
            if let Err(e) = r {
                wrong.push(format!("{name}: rejected: {e}"));
            }
        } else if name.starts_with("n_") {
            n += 1;
            match r {
                Err(e) => assert!(e.offset <= bytes.len(), "{name}: offset {} past the end", e.offset),
                Ok(Parsed::Empty) if blank(&bytes) => {}
                Ok(_) => wrong.push(format!("{name}: accepted")),
            }
        }
    }
    assert_eq!((y, n), (95, 188));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_utf8_n_file_as_a_cell_is_a_reject() {
    let spec =
        Spec::parse("input pid: string\njson skills\nid pid\nfeature skill_count: int16 = len(skills)\n").unwrap();
    let cases: Vec<(String, String)> = suite()
        .into_iter()
        .filter(|(n, _)| n.starts_with("n_"))
        .filter_map(|(n, b)| String::from_utf8(b).ok().map(|s| (n, s)))
        .collect();
    let pids: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    let cells: Vec<&str> = cases.iter().map(|(_, s)| s.as_str()).collect();
    let batch = RecordBatch::try_from_iter([
        ("pid", Arc::new(StringArray::from(pids.clone())) as _),
        ("skills", Arc::new(StringArray::from(cells.clone())) as _),
    ])
    .unwrap();
    let ev = spec.bind(&batch.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
    let out = ev.evaluate(&batch, 0..batch.num_rows(), &mut Workspace::default());
    let counts = out.columns[0].as_primitive::<Int16Type>();
    let rejected: std::collections::HashSet<&str> = out.rejects.iter().map(|r| r.id.as_str()).collect();
    for (i, (name, cell)) in cases.iter().enumerate() {
        if blank(cell.as_bytes()) {
            // §3.1: empty and whitespace-only read as []
            assert_eq!(counts.value(i), 0, "{name}");
            assert!(!rejected.contains(name.as_str()), "{name}");
        } else {
            assert!(counts.is_null(i), "{name} was not rejected");
            assert!(rejected.contains(name.as_str()), "{name} has no reject record");
        }
    }
    assert_eq!(out.rows_rejected, cases.iter().filter(|(_, c)| !blank(c.as_bytes())).count());
    assert!(out.rejects.iter().all(|r| r.message.contains(" at byte ")), "{:?}", out.rejects);
}

/// Parquet JSON columns are read as binary (the parser checks UTF-8): every
/// file of the suite as a binary cell, invalid UTF-8 included, is a reject
/// (n_ and the invalid-UTF-8 i_ files) or parses (y_), one row per file.
#[test]
fn every_file_as_a_binary_cell_is_parsed_or_rejected() {
    // `any` takes every JSON value; the feature is NULL only for a rejected cell
    let spec = Spec::parse("input pid: string\njson doc: any\nid pid\nfeature parsed: bool = doc is null\n").unwrap();
    let cases: Vec<(String, Vec<u8>)> = suite()
        .into_iter()
        .filter(|(n, b)| n.starts_with("y_") || n.starts_with("n_") || std::str::from_utf8(b).is_err())
        .collect();
    let pids: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    let cells: Vec<&[u8]> = cases.iter().map(|(_, b)| b.as_slice()).collect();
    let batch = RecordBatch::try_from_iter([
        ("pid", Arc::new(StringArray::from(pids)) as _),
        ("doc", Arc::new(arrow_array::BinaryViewArray::from(cells)) as _),
    ])
    .unwrap();
    let ev = spec.bind(&batch.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
    let out = ev.evaluate(&batch, 0..batch.num_rows(), &mut Workspace::default());
    assert_eq!(out.columns[0].len(), cases.len(), "rows out = rows in");
    let parsed = out.columns[0].as_boolean();
    let rejected: std::collections::HashMap<&str, &str> =
        out.rejects.iter().map(|r| (r.id.as_str(), r.message.as_str())).collect();
    let mut invalid_utf8 = 0;
    for (i, (name, cell)) in cases.iter().enumerate() {
        let must_parse = name.starts_with("y_") || (name.starts_with("n_") && blank(cell));
        assert_eq!(parsed.is_valid(i), must_parse, "{name}: {:?}", rejected.get(name.as_str()));
        assert_eq!(rejected.contains_key(name.as_str()), !must_parse, "{name}");
        if let Err(u) = std::str::from_utf8(cell) {
            // the first problem is named: the bad byte, or a syntax error before it
            invalid_utf8 += 1;
            let message = rejected[name.as_str()];
            let at: usize = message.rsplit_once(" at byte ").map(|(_, n)| n.parse().unwrap()).unwrap();
            assert!(at <= u.valid_up_to(), "{name}: {message}");
            if message.starts_with("invalid UTF-8") {
                assert_eq!(at, u.valid_up_to(), "{name}: {message}");
            }
        }
    }
    assert!(invalid_utf8 >= 10, "the suite has {invalid_utf8} files that are not UTF-8");
}

#[test]
fn json_resume_spec_on_the_jsonresume_corpora() {
    let root = corpora();
    let mut ids = Vec::new();
    let mut docs = Vec::new();
    for dir in [
        "jsonresume-org/examples",
        "jsonresume-founders/valid",
        "jsonresume-founders/malformed",
        "jsonresume-fake/resumes",
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths.into_iter().filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json")) {
            if let Ok(text) = String::from_utf8(std::fs::read(&p).unwrap()) {
                ids.push(format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()));
                docs.push(text);
            }
        }
    }
    assert!(docs.len() > 300);
    let spec = Spec::parse(JSON_RESUME).unwrap();
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(StringArray::from(ids.clone())) as _),
        ("resume", Arc::new(StringArray::from(docs.clone())) as _),
    ])
    .unwrap();
    let ev = spec.bind(&batch.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
    let out = ev.evaluate(&batch, 0..batch.num_rows(), &mut Workspace::default());
    let names: Vec<String> = spec.output_schema().fields().iter().map(|f| f.name().clone()).collect();
    let col = |n: &str| out.columns[names.iter().position(|x| x == n).unwrap()].clone();
    let row = ids.iter().position(|i| i == "jsonresume-org/examples/new-grad.resume.json").unwrap();

    // Checked by hand against the document.
    assert_eq!(col("name").as_string::<i32>().value(row), "Maya Okonkwo");
    assert_eq!(col("country_code").as_string::<i32>().value(row), "US");
    assert_eq!(col("highest_degree").as_primitive::<Int8Type>().value(row), 3);

    // The rest against an independent reading of each document with serde_json.
    let mut checked = 0;
    for (i, doc) in docs.iter().enumerate() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(doc) else {
            assert!(out.rejects.iter().any(|r| r.row == i), "{} should be rejected", ids[i]);
            continue;
        };
        if !v.is_object() {
            continue;
        }
        let work = v.get("work").and_then(|w| w.as_array());
        let want_count = work.map_or(0, |w| w.len()) as i16;
        assert_eq!(col("work_count").as_primitive::<Int16Type>().value(i), want_count, "{}", ids[i]);
        let want_langs = v.get("languages").and_then(|w| w.as_array()).map_or(0, |w| w.len()) as i16;
        assert_eq!(col("language_count").as_primitive::<Int16Type>().value(i), want_langs, "{}", ids[i]);
        let want_kw: i64 = v.get("skills").and_then(|s| s.as_array()).map_or(0, |s| {
            s.iter().map(|k| k.get("keywords").and_then(|k| k.as_array()).map_or(0, |a| a.len() as i64)).sum()
        });
        assert_eq!(i64::from(col("skill_keyword_count").as_primitive::<Int32Type>().value(i)), want_kw, "{}", ids[i]);
        let name = v.pointer("/basics/name").and_then(|n| n.as_str());
        let got = col("name");
        let got = got.as_string::<i32>();
        assert_eq!((!got.is_null(i)).then(|| got.value(i)), name, "{}", ids[i]);
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
    assert!(!out.rejects.is_empty(), "the malformed founders' resumes are rejects");
}

/// The cells the fast scanners are checked on, each with what it is: every
/// file of the suite, every prefix of each (truncated documents), synthetic
/// cells of both JSON-array kinds (`k` 0 and 1 are education and
/// work_experience, the columns read member by member) and single-byte
/// mutations of them. `plain` marks the unmutated synthetic arrays.
fn scanner_cells(mut f: impl FnMut(&[u8], &str, Option<usize>)) {
    for (name, bytes) in suite() {
        f(&bytes, &name, None);
        for end in 0..bytes.len().min(400) {
            f(&bytes[..end], "a prefix of a suite file", None);
        }
    }
    let marks = [b'[', b']', b'{', b'}', b',', b':', b'"', b'\\', b'0', b'-', b'.', b'e', b' ', b'\t', 0x1f, 0xc3];
    for i in 0..3000u64 {
        let p = fleet_synth::Person::generate(11, i, fleet_synth::Profile::Typical, 0.02);
        for (k, cell) in [p.education, p.work_experience, p.skills, p.interests, p.certifications, p.languages]
            .into_iter()
            .enumerate()
        {
            let Some(cell) = cell else { continue };
            let b = cell.as_bytes();
            if b.first() == Some(&b'[') {
                f(b, "synthetic", Some(k));
            }
            // a few mutations per cell: a byte replaced, a byte deleted
            for m in 0..4u64 {
                if b.is_empty() {
                    break;
                }
                let at = ((i * 31 + m * 17 + k as u64 * 7) % b.len() as u64) as usize;
                let mut x = b.to_vec();
                x[at] = marks[((i + m) % marks.len() as u64) as usize];
                f(&x, "replaced", None);
                let mut y = b.to_vec();
                y.remove(at);
                f(&y, "deleted", None);
            }
        }
    }
}

/// `array_len` (columns the spec only counts) must never accept what the
/// full parser rejects, and must count as it does; it must also be sure of
/// nearly all plain synthetic arrays, or the fast path is dead.
#[test]
fn array_len_agrees_with_the_full_parser() {
    let mut parser = CellParser::default();
    let (mut suite_sure, mut plain, mut sure) = (0, 0, 0);
    scanner_cells(|cell, what, synthetic| {
        plain += usize::from(synthetic.is_some_and(|k| k >= 2));
        let Some(n) = fleet_spec::cell::array_len(cell) else { return };
        let mut tape = Tape::null();
        match parser.parse(cell, &mut tape) {
            Ok(Parsed::Document) => match tape.0[0] {
                simd_json::Node::Array { len, .. } => assert_eq!(len, n, "{what}: {:?}", String::from_utf8_lossy(cell)),
                _ => panic!("{what}: counted a non-array: {:?}", String::from_utf8_lossy(cell)),
            },
            other => panic!("{what}: counted {n} where the parser says {other:?}: {:?}", String::from_utf8_lossy(cell)),
        }
        suite_sure += usize::from(what.ends_with(".json") && synthetic.is_none());
        sure += usize::from(synthetic.is_some_and(|k| k >= 2));
    });
    assert!(suite_sure > 40, "sure of only {suite_sure} suite files");
    assert!(sure * 100 >= plain * 95, "sure of {sure} of {plain} synthetic arrays");
}

/// A spec that only counts a column and one that also reads it give the
/// same counts and the same rejects, cell for cell.
#[test]
fn counting_only_and_parsing_give_the_same_counts_and_rejects() {
    let counted = Spec::parse("input pid: string\njson doc\nid pid\nfeature n: int32 = len(doc)\n").unwrap();
    let parsed = Spec::parse(
        "input pid: string\njson doc\nid pid\nfeature n: int32 = len(doc)\nfeature first: bool = doc[0] is null\n",
    )
    .unwrap();
    let mut cells: Vec<String> = suite().into_iter().filter_map(|(_, b)| String::from_utf8(b).ok()).collect();
    for i in 0..2000u64 {
        let p = fleet_synth::Person::generate(5, i, fleet_synth::Profile::Typical, 0.05);
        cells.extend([p.skills, p.certifications, p.education].into_iter().flatten());
    }
    let pids: Vec<String> = (0..cells.len()).map(|i| format!("r{i}")).collect();
    let batch = RecordBatch::try_from_iter([
        ("pid", Arc::new(StringArray::from(pids)) as _),
        ("doc", Arc::new(StringArray::from(cells.clone())) as _),
    ])
    .unwrap();
    let run = |spec: &Spec| {
        let ev = spec.bind(&batch.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
        ev.evaluate(&batch, 0..batch.num_rows(), &mut Workspace::default())
    };
    let (a, b) = (run(&counted), run(&parsed));
    assert_eq!(a.columns[0].to_data(), b.columns[0].to_data());
    assert_eq!(a.rejects, b.rejects);
    assert_eq!(a.rows_rejected, b.rows_rejected);
    assert!(a.rows_rejected > 150, "{}", a.rows_rejected);
}
