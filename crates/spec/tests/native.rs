//! The built-in predict-age spec runs as compiled-in Rust (`native.rs`); the
//! spec file, run by the interpreter, is its definition. These tests require
//! the two to give identical output, rejects included, on synthetic rows of
//! both profiles, on randomly assembled odd documents (wrong types,
//! duplicate members, bad dates, case and space variants, malformed cells),
//! and with every JSONTestSuite `y_` document in each place the spec reads.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use fleet_spec::{Spec, Workspace, Ymd};
use fleet_synth::{Person, Profile};

const JSON_COLS: [&str; 6] = ["education", "work_experience", "skills", "interests", "certifications", "languages"];

struct Row {
    pid: Option<String>,
    json: [Option<String>; 6],
    ints: (Option<i32>, Option<i32>),
}

fn batch(rows: &[Row]) -> RecordBatch {
    let mut cols: Vec<(&str, ArrayRef)> =
        vec![("pid", Arc::new(StringArray::from(rows.iter().map(|r| r.pid.clone()).collect::<Vec<_>>())))];
    for (k, c) in JSON_COLS.iter().enumerate() {
        cols.push((c, Arc::new(StringArray::from(rows.iter().map(|r| r.json[k].clone()).collect::<Vec<_>>()))));
    }
    cols.push(("linkedin_connections", Arc::new(Int32Array::from(rows.iter().map(|r| r.ints.0).collect::<Vec<_>>()))));
    cols.push((
        "inferred_years_experience",
        Arc::new(Int32Array::from(rows.iter().map(|r| r.ints.1).collect::<Vec<_>>())),
    ));
    RecordBatch::try_from_iter(cols).unwrap()
}

/// Evaluates `rows` natively and interpreted, at two reference dates, and
/// requires the same columns, rejects and rejected-row counts. Returns the
/// number of rows with at least one rejected cell (so callers can check
/// that their odd input was odd).
fn same_both_ways(rows: &[Row]) -> usize {
    let b = batch(rows);
    let spec = Spec::predict_age();
    let mut rejected = 0;
    for ref_date in [Ymd::new(2025, 7, 1).unwrap(), Ymd::new(2031, 1, 15).unwrap()] {
        let native = spec.bind(&b.schema(), ref_date).unwrap();
        assert!(native.is_native());
        let interpreted = native.clone().interpreted();
        assert!(!interpreted.is_native());
        let (mut ws_n, mut ws_i) = (Workspace::default(), Workspace::default());
        // two ranges of the same batch through the same workspaces
        for range in [0..b.num_rows() / 2, b.num_rows() / 2..b.num_rows()] {
            let n = native.evaluate(&b, range.clone(), &mut ws_n);
            let i = interpreted.evaluate(&b, range.clone(), &mut ws_i);
            for (k, field) in spec.output_schema().fields().iter().enumerate() {
                if n.columns[k].to_data() != i.columns[k].to_data() {
                    let at = (0..range.len())
                        .find(|&r| n.columns[k].slice(r, 1).to_data() != i.columns[k].slice(r, 1).to_data())
                        .unwrap();
                    let row = &rows[range.start + at];
                    panic!(
                        "feature {} differs at row {} (native {:?}, interpreted {:?}); ref date {ref_date}; cells {:?}",
                        field.name(),
                        range.start + at,
                        n.columns[k].slice(at, 1),
                        i.columns[k].slice(at, 1),
                        row.json
                    );
                }
            }
            assert_eq!(n.rejects, i.rejects);
            assert_eq!(n.rows_rejected, i.rows_rejected);
            assert_eq!(n.json_bytes, i.json_bytes);
            rejected += n.rows_rejected;
        }
    }
    rejected
}

#[test]
fn synthetic_rows_of_both_profiles() {
    for (profile, n) in [(Profile::Typical, 4000), (Profile::Heavy, 60)] {
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let p = Person::generate(7, i, profile, 0.05);
                Row {
                    pid: Some(p.pid),
                    json: [p.education, p.work_experience, p.skills, p.interests, p.certifications, p.languages],
                    ints: (p.linkedin_connections, p.inferred_years_experience),
                }
            })
            .collect();
        let rejected = same_both_ways(&rows);
        if profile == Profile::Typical {
            assert!(rejected > 100, "the 5% malformed share was not exercised: {rejected}");
        }
    }
}

/// xorshift64*: deterministic odd input without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const DATES: &[&str] = &[
    r#""2016""#,
    r#""2016-03""#,
    r#""2016-02-29""#,
    r#""2015-02-29""#,
    r#""2016-13""#,
    r#"" 2016""#,
    r#""""#,
    r#""2016-03-01T00:00""#,
    r#""1999-12""#,
    r#""2031-02""#,
    r#""2024-07-01""#,
    r#""2030-12-31""#,
    "2016",
    "null",
    "true",
    r#"["2016"]"#,
];
const NAMES: &[&str] = &[
    r#""Acme""#,
    r#""acme ""#,
    r#"" ACME""#,
    r#""Acme\u00a0""#,
    r#""""#,
    r#""   ""#,
    r#""Äcme""#,
    r#""äcme""#,
    r#""\u001f acme""#,
    r#""Globex""#,
    r#""GLOBEX\t""#,
    "5",
    "null",
];
const TITLES: &[&str] = &[
    r#""Senior Director""#,
    r#""CTO""#,
    r#""director""#,
    r#""Intern""#,
    r#""international relations""#,
    r#""co-founder/CEO""#,
    r#""Sr. Manager""#,
    r#""VP, Sales""#,
    r#""Head of Data""#,
    r#""Junior Analyst""#,
    r#""Staff Engineer""#,
    r#""""#,
    "7",
    "null",
];
const DEGREES: &[&str] = &[
    r#""PhD""#,
    r#""Ph.D.""#,
    r#""ph d""#,
    r#""M.S.""#,
    r#""MBA""#,
    r#""B.Sc.""#,
    r#""Bachelor of Arts""#,
    r#""High School Diploma""#,
    r#""high  school""#,
    r#""GED""#,
    r#""Associate""#,
    r#""Certificate""#,
    "3",
    "null",
];
const SCHOOL_TYPES: &[&str] =
    &[r#""Secondary School""#, r#""secondary school""#, r#""Secondary  School""#, r#""university""#, "1", "null"];
const BOOLS: &[&str] = &["true", "false", "1", r#""true""#, "null"];

/// An object from `(key, value)` pairs; sometimes a member is missing, and
/// sometimes written twice (the last one wins).
fn object(rng: &mut Rng, members: &[(&str, String)]) -> String {
    let mut parts = Vec::new();
    for (k, v) in members {
        match rng.below(10) {
            0 => {}
            1 => {
                parts.push(format!("\"{k}\": {}", rng.pick(DATES)));
                parts.push(format!("\"{k}\": {v}"));
            }
            2 => {
                parts.push(format!("\"{k}\": {v}"));
                parts.push(format!("\"{k}\": {}", rng.pick(&["null", "\"2001\"", "{}"])));
            }
            _ => parts.push(format!("\"{k}\": {v}")),
        }
    }
    if rng.below(4) == 0 {
        parts.push(r#""extra": {"start_date": "1990", "name": [1, {"a": null}]}"#.to_string());
    }
    // members in any order
    for i in (1..parts.len()).rev() {
        parts.swap(i, rng.below(i + 1));
    }
    format!("{{{}}}", parts.join(", "))
}

fn list(rng: &mut Rng, max: usize, mut item: impl FnMut(&mut Rng) -> String) -> String {
    let n = rng.below(max + 1);
    format!("[{}]", (0..n).map(|_| item(rng)).collect::<Vec<_>>().join(", "))
}

fn odd_value(rng: &mut Rng) -> String {
    rng.pick(&["5", r#""x""#, "null", "[]", "{}", "[{}]", "true"]).to_string()
}

fn job(rng: &mut Rng) -> String {
    if rng.below(12) == 0 {
        return odd_value(rng);
    }
    let company = match rng.below(8) {
        0 => rng.pick(NAMES).to_string(),
        1 => "null".to_string(),
        _ => {
            let name = rng.pick(NAMES).to_string();
            object(rng, &[("name", name)])
        }
    };
    let title = match rng.below(8) {
        0 => rng.pick(TITLES).to_string(),
        _ => {
            let levels = match rng.below(4) {
                0 => rng.pick(TITLES).to_string(),
                _ => list(rng, 3, |r| r.pick(TITLES).to_string()),
            };
            let name = rng.pick(TITLES).to_string();
            object(rng, &[("name", name), ("levels", levels)])
        }
    };
    let members = [
        ("is_primary", rng.pick(BOOLS).to_string()),
        ("start_date", rng.pick(DATES).to_string()),
        ("end_date", rng.pick(DATES).to_string()),
        ("company", company),
        ("title", title),
    ];
    object(rng, &members)
}

fn school(rng: &mut Rng) -> String {
    if rng.below(12) == 0 {
        return odd_value(rng);
    }
    let degrees = match rng.below(6) {
        0 => rng.pick(DEGREES).to_string(),
        _ => list(rng, 3, |r| r.pick(DEGREES).to_string()),
    };
    let school = match rng.below(5) {
        0 => odd_value(rng),
        _ => {
            let t = rng.pick(SCHOOL_TYPES).to_string();
            object(rng, &[("type", t)])
        }
    };
    let end = rng.pick(DATES).to_string();
    object(rng, &[("degrees", degrees), ("school", school), ("end_date", end)])
}

/// A cell: mostly a well-formed array, sometimes NULL, blank, `null`, an
/// object where an array is expected, or malformed.
fn cell(rng: &mut Rng, array: impl FnOnce(&mut Rng) -> String) -> Option<String> {
    match rng.below(40) {
        0 => None,
        1 => Some(String::new()),
        2 => Some(" \n".into()),
        3 => Some("null".into()),
        4 => Some(r#"{"a": 1}"#.into()),
        5 => Some("[1,".into()),
        6 => Some("\"2016\"".into()),
        _ => Some(array(rng)),
    }
}

#[test]
fn randomly_assembled_odd_documents() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ints = [None, Some(0), Some(-1), Some(500), Some(40_000), Some(i32::MAX), Some(i32::MIN)];
    let rows: Vec<Row> = (0..6000)
        .map(|i| Row {
            pid: (rng.below(50) != 0).then(|| format!("p{i}")),
            json: [
                cell(&mut rng, |r| list(r, 4, school)),
                cell(&mut rng, |r| list(r, 6, job)),
                cell(&mut rng, |r| list(r, 5, |r| r.pick(NAMES).to_string())),
                cell(&mut rng, |r| list(r, 3, odd_value)),
                cell(&mut rng, |r| list(r, 2, |r| r.pick(TITLES).to_string())),
                cell(&mut rng, |r| list(r, 2, |r| r.pick(DEGREES).to_string())),
            ],
            ints: (ints[rng.below(ints.len())], ints[rng.below(ints.len())]),
        })
        .collect();
    let rejected = same_both_ways(&rows);
    assert!(rejected > 600, "odd input was not odd enough: {rejected} rejected rows");
}

/// Every JSONTestSuite `y_` document as a job, a job's members, a school,
/// a degree list and a whole cell.
#[test]
fn every_valid_jsontestsuite_document_in_every_place() {
    let mut docs: Vec<String> = fleet_test_support::json_test_suite()
        .into_iter()
        .filter(|(name, _)| name.starts_with("y_"))
        .filter_map(|(_, bytes)| String::from_utf8(bytes).ok())
        .collect();
    docs.sort();
    assert_eq!(docs.len(), 95);
    let rows: Vec<Row> = docs
        .iter()
        .map(|d| Row {
            pid: Some("p".into()),
            json: [
                Some(format!(r#"[{{"degrees": {d}, "school": {d}, "end_date": {d}}}, {d}]"#)),
                Some(format!(
                    r#"[{d}, {{"is_primary": {d}, "start_date": {d}, "company": {{"name": {d}}}, "title": {d}}}, {{"title": {{"levels": {d}, "name": {d}}}, "start_date": "2011"}}]"#
                )),
                Some(d.clone()),
                Some(format!("[{d}]")),
                Some(d.clone()),
                Some(format!("[{d}, {d}]")),
            ],
            ints: (Some(1), Some(2)),
        })
        .collect();
    same_both_ways(&rows);
}

/// One workspace evaluating two specs in turn (a thread of a pool serving
/// both): the per-row memo of parsed dates must not carry over, even where
/// the second spec's date string sits at the same address in the parse
/// buffer as the first one's.
#[test]
fn a_workspace_reused_for_another_spec_forgets_its_dates() {
    let other = Spec::parse(
        "input pid: string\njson education\nfeature y: int16 = max(year(date(e.abcdefgh)) for e in education)\n",
    )
    .unwrap();
    let first = batch(&[Row {
        pid: Some("a".into()),
        json: [Some(r#"[{"abcdefgh":"2010"}]"#.into()), None, None, None, None, None],
        ints: (None, None),
    }]);
    let second = batch(&[Row {
        pid: Some("b".into()),
        json: [Some(r#"[{"end_date":"2019"}]"#.into()), None, None, None, None, None],
        ints: (None, None),
    }]);
    let date = Ymd::new(2025, 7, 1).unwrap();
    let mut ws = Workspace::default();
    let y = other.bind(&first.schema(), date).unwrap().evaluate(&first, 0..1, &mut ws);
    assert_eq!(y.columns[0].as_primitive::<arrow_array::types::Int16Type>().value(0), 2010);
    let predict = Spec::predict_age().bind(&second.schema(), date).unwrap();
    for ev in [predict.clone().interpreted(), predict] {
        let out = ev.evaluate(&second, 0..1, &mut ws);
        let i = Spec::predict_age().output_schema().index_of("graduation_year").unwrap();
        let got = out.columns[i].as_primitive::<arrow_array::types::Int16Type>().value(0);
        assert_eq!(got, 2019, "native: {}", ev.is_native());
    }
}
