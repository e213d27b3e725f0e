//! Every predict-age feature of FEATURES.md §3, its traps and §3.1's odd input.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use fleet_spec::{Evaluated, Spec, Workspace, Ymd};
use serde_json::{Value, json};

const JSON_COLS: [&str; 6] = ["education", "work_experience", "skills", "interests", "certifications", "languages"];

fn batch(rows: &[HashMap<&str, Option<&str>>], ints: &[(Option<i32>, Option<i32>)]) -> RecordBatch {
    let mut cols: Vec<(&str, ArrayRef)> =
        vec![("pid", Arc::new(StringArray::from((0..rows.len()).map(|i| Some(format!("p{i}"))).collect::<Vec<_>>())))];
    for c in JSON_COLS {
        let v: Vec<Option<&str>> = rows.iter().map(|r| r.get(c).copied().flatten()).collect();
        cols.push((c, Arc::new(StringArray::from(v))));
    }
    cols.push(("linkedin_connections", Arc::new(Int32Array::from(ints.iter().map(|x| x.0).collect::<Vec<_>>()))));
    cols.push(("inferred_years_experience", Arc::new(Int32Array::from(ints.iter().map(|x| x.1).collect::<Vec<_>>()))));
    RecordBatch::try_from_iter(cols).unwrap()
}

fn cell(a: &ArrayRef, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Int8 => json!(a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => json!(a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(i)),
        DataType::Float32 => json!(a.as_primitive::<Float32Type>().value(i)),
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
        t => panic!("unexpected type {t}"),
    }
}

fn eval_rows(rows: &[HashMap<&str, Option<&str>>]) -> (Vec<HashMap<String, Value>>, Evaluated) {
    let ints: Vec<_> = rows.iter().map(|_| (Some(500), Some(7))).collect();
    eval_with(rows, &ints)
}

fn eval_with(
    rows: &[HashMap<&str, Option<&str>>],
    ints: &[(Option<i32>, Option<i32>)],
) -> (Vec<HashMap<String, Value>>, Evaluated) {
    let spec = Spec::predict_age();
    let b = batch(rows, ints);
    let ev = spec.bind(&b.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
    assert!(ev.is_native(), "the built-in spec runs natively");
    let out = ev.evaluate(&b, 0..b.num_rows(), &mut Workspace::default());
    // every case also on the interpreter: the spec file is the definition
    let interpreted = ev.interpreted().evaluate(&b, 0..b.num_rows(), &mut Workspace::default());
    assert_eq!(out.columns, interpreted.columns, "native and interpreted evaluation differ");
    assert_eq!(out.rejects, interpreted.rejects);
    assert_eq!(out.rows_rejected, interpreted.rows_rejected);
    let schema = spec.output_schema();
    let maps = (0..b.num_rows())
        .map(|r| schema.fields().iter().zip(&out.columns).map(|(f, a)| (f.name().clone(), cell(a, r))).collect())
        .collect();
    (maps, out)
}

/// Features of one row given its JSON columns.
fn one(cols: &[(&str, &str)]) -> HashMap<String, Value> {
    let row: HashMap<&str, Option<&str>> = cols.iter().map(|(k, v)| (*k, Some(*v))).collect();
    eval_rows(&[row]).0.remove(0)
}

fn edu(items: &str) -> String {
    format!("[{items}]")
}

#[test]
fn schema_has_the_21_features_in_order_and_types() {
    let s = Spec::predict_age().output_schema();
    let got: Vec<(String, String, bool)> =
        s.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable())).collect();
    let want = [
        ("pid", "Utf8", false),
        ("education_level_encoded", "Int8", true),
        ("graduation_year", "Int16", true),
        ("number_of_schools", "Int16", true),
        ("number_of_jobs", "Int16", true),
        ("skill_count", "Int16", true),
        ("first_job_start_year", "Int16", true),
        ("current_job_start_year", "Int16", true),
        ("total_career_years", "Int16", true),
        ("job_churn_rate", "Float32", true),
        ("avg_job_tenure_months", "Float32", true),
        ("longest_job_tenure_months", "Int32", true),
        ("current_job_tenure_months", "Int32", true),
        ("distinct_companies", "Int16", true),
        ("max_seniority_encoded", "Int8", true),
        ("has_management_title", "Boolean", true),
        ("certification_count", "Int16", true),
        ("language_count", "Int16", true),
        ("interest_count", "Int16", true),
        ("linkedin_connections", "Int32", true),
        ("inferred_years_experience", "Int16", true),
    ];
    let want: Vec<(String, String, bool)> = want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), *c)).collect();
    assert_eq!(got, want);
}

#[test]
fn a_typical_row_by_value() {
    let education = r#"[
        {"school": {"name": "u of x", "type": "post-secondary institution"}, "degrees": ["Bachelor of Science"], "end_date": "2012-06"},
        {"school": {"name": "u of y", "type": "post-secondary institution"}, "degrees": ["M.S."], "end_date": "2014"},
        {"school": {"name": "high", "type": "Secondary School"}, "degrees": [], "end_date": "2008-06-15"}
    ]"#;
    let work = r#"[
        {"company": {"name": " Acme "}, "title": {"name": "Senior Data Engineer", "levels": ["senior"]}, "start_date": "2016-03", "end_date": null, "is_primary": true},
        {"company": {"name": "acme"}, "title": {"name": "Data Engineer", "levels": []}, "start_date": "2014-07", "end_date": "2016-02"},
        {"company": {"name": "Globex"}, "title": {"name": "Intern"}, "start_date": "2013-06", "end_date": "2013-09"}
    ]"#;
    let f = one(&[
        ("education", education),
        ("work_experience", work),
        ("skills", r#"["sql", {"name": "rust"}, 3]"#),
        ("interests", r#"["chess"]"#),
        ("certifications", r#"[{"name": "aws"}]"#),
        ("languages", r#"[{"name": "english"}, "french"]"#),
    ]);
    assert_eq!(f["pid"], json!("p0"));
    assert_eq!(f["education_level_encoded"], json!(4));
    assert_eq!(f["graduation_year"], json!(2014));
    assert_eq!(f["number_of_schools"], json!(3));
    assert_eq!(f["number_of_jobs"], json!(3));
    assert_eq!(f["skill_count"], json!(3));
    assert_eq!(f["first_job_start_year"], json!(2013));
    assert_eq!(f["current_job_start_year"], json!(2016));
    assert_eq!(f["total_career_years"], json!(11));
    assert_eq!(f["job_churn_rate"], json!((3.0f64 / 11.0) as f32));
    // tenures: 2016-03..2025-07 = 112, 2014-07..2016-02 = 19, 2013-06..2013-09 = 3
    assert_eq!(f["avg_job_tenure_months"], json!(((112.0 + 19.0 + 3.0) / 3.0f64) as f32));
    assert_eq!(f["longest_job_tenure_months"], json!(112));
    assert_eq!(f["current_job_tenure_months"], json!(112));
    assert_eq!(f["distinct_companies"], json!(2));
    assert_eq!(f["max_seniority_encoded"], json!(3));
    assert_eq!(f["has_management_title"], json!(false));
    assert_eq!(f["certification_count"], json!(1));
    assert_eq!(f["language_count"], json!(2));
    assert_eq!(f["interest_count"], json!(1));
    assert_eq!(f["linkedin_connections"], json!(500));
    assert_eq!(f["inferred_years_experience"], json!(7));
}

fn level(degrees: &str) -> Value {
    one(&[("education", &edu(&format!(r#"{{"degrees": {degrees}}}"#)))])["education_level_encoded"].clone()
}

#[test]
fn education_levels_and_word_traps() {
    assert_eq!(level(r#"["Ph.D. in Physics"]"#), json!(5));
    assert_eq!(level(r#"["PH D"]"#), json!(5));
    assert_eq!(level(r#"["Doctoral studies"]"#), json!(5));
    assert_eq!(level(r#"["M.S."]"#), json!(4));
    assert_eq!(level(r#"["MBA"]"#), json!(4));
    assert_eq!(level(r#"["B.Sc."]"#), json!(3));
    assert_eq!(level(r#"["bachelors", "associates"]"#), json!(3));
    assert_eq!(level(r#"["Associate of Arts"]"#), json!(2));
    assert_eq!(level(r#"["High School Diploma"]"#), json!(1));
    assert_eq!(level(r#"["GED"]"#), json!(1));
    // "high" and "school" in different strings are not the two-word keyword
    assert_eq!(level(r#"["high", "school"]"#), json!(0));
    // whole words only: "massachusetts", "basic", "mastery" match nothing
    assert_eq!(level(r#"["Massachusetts", "basic", "mastery", "masters-level"]"#), json!(4));
    assert_eq!(level(r#"["Massachusetts", "basic", "mastery"]"#), json!(0));
    // a degrees that is not an array is ignored; non-string elements are skipped
    assert_eq!(level(r#""phd""#), json!(0));
    assert_eq!(level(r#"[5, null, {"x": "phd"}, "ba"]"#), json!(3));
    // secondary school gives at least 1, ignoring ASCII case; a phd still wins
    let f = one(&[("education", r#"[{"school": {"type": "SECONDARY school"}}]"#)]);
    assert_eq!(f["education_level_encoded"], json!(1));
    let f = one(&[("education", r#"[{"school": {"type": " secondary school"}}]"#)]);
    assert_eq!(f["education_level_encoded"], json!(0));
    let f = one(&[("education", r#"[{"school": {"type": "secondary school"}, "degrees": ["phd"]}]"#)]);
    assert_eq!(f["education_level_encoded"], json!(5));
    // non-ASCII letters separate words: "diplôme" is "dipl" + "me"
    assert_eq!(level(r#"["Diplôme"]"#), json!(0));
    assert_eq!(level(r#"["Ｍaster"]"#), json!(0));
}

#[test]
fn graduation_year_prefers_level_3_and_up() {
    let e = r#"[{"degrees": ["ba"], "end_date": "2010"}, {"degrees": ["diploma"], "end_date": "2015-01"}]"#;
    assert_eq!(one(&[("education", e)])["graduation_year"], json!(2010));
    // no level>=3 element with a parseable end date: latest over all
    let e = r#"[{"degrees": ["ba"], "end_date": "June 2010"}, {"degrees": ["diploma"], "end_date": "2015-01"}, {"end_date": "2003"}]"#;
    assert_eq!(one(&[("education", e)])["graduation_year"], json!(2015));
    let e = r#"[{"degrees": ["ba"], "end_date": "2010-13"}, {"end_date": 2015}]"#;
    assert_eq!(one(&[("education", e)])["graduation_year"], Value::Null);
    // latest compares full dates; years tie
    let e = r#"[{"degrees": ["ms"], "end_date": "2012-01-31"}, {"degrees": ["ba"], "end_date": "2012-12"}]"#;
    assert_eq!(one(&[("education", e)])["graduation_year"], json!(2012));
}

fn seniority(work: &str) -> (Value, Value) {
    let f = one(&[("work_experience", work)]);
    (f["max_seniority_encoded"].clone(), f["has_management_title"].clone())
}

fn title(name: &str) -> Value {
    seniority(&format!(r#"[{{"title": {{"name": {name:?}}}}}]"#)).0
}

#[test]
fn seniority_ranks_and_traps() {
    assert_eq!(title("Chief Technology Officer"), json!(7));
    assert_eq!(title("CTO"), json!(7));
    assert_eq!(title("Co-Founder"), json!(7));
    assert_eq!(title("VP Engineering"), json!(6));
    assert_eq!(title("Vice President"), json!(6));
    assert_eq!(title("Director of Sales"), json!(5));
    assert_eq!(title("Head of Data"), json!(4));
    assert_eq!(title("Sr. Engineer"), json!(3));
    assert_eq!(title("Junior Analyst"), json!(1));
    assert_eq!(title("Intern"), json!(0));
    assert_eq!(title("Engineer"), json!(2));
    // "director" is not "cto"; "international" is not "intern"; "interns" is
    assert_eq!(title("directorate"), json!(2));
    assert_eq!(title("International Sales"), json!(2));
    assert_eq!(title("Manager of interns"), json!(4));
    assert_eq!(title("Senior Intern"), json!(3));
    assert_eq!(title("Headhunter"), json!(2));
    assert_eq!(title("Entry-level"), json!(1));
    // levels count too, and the best element wins
    assert_eq!(
        seniority(r#"[{"title": {"name": "engineer", "levels": ["manager"]}}, {"title": {"name": "cfo"}}]"#),
        (json!(7), json!(true))
    );
    assert_eq!(seniority(r#"[{"title": {"name": "engineer", "levels": ["Manager"]}}]"#), (json!(4), json!(true)));
    assert_eq!(seniority(r#"[{"title": {"name": "engineer", "levels": "manager"}}]"#), (json!(2), json!(false)));
    // no object elements: 0; a title of the wrong type is ignored (rank 2)
    assert_eq!(seniority("[1, \"ceo\", null]"), (json!(0), json!(false)));
    assert_eq!(seniority(r#"[{"title": "ceo"}]"#), (json!(2), json!(false)));
    assert_eq!(seniority(r#"[{}]"#), (json!(2), json!(false)));
    assert_eq!(seniority("[]"), (json!(0), json!(false)));
}

#[test]
fn jobs_dates_tenures_and_ties() {
    let w = r#"[
        {"start_date": "2015-01", "end_date": "2014-01"},
        {"start_date": "2018-05-31", "end_date": "not a date"},
        {"start_date": "2018-05", "end_date": "2020"},
        {"start_date": "2010-02-30"},
        7
    ]"#;
    let f = one(&[("work_experience", w)]);
    assert_eq!(f["number_of_jobs"], json!(5));
    assert_eq!(f["first_job_start_year"], json!(2015));
    // latest start: 2018-05-31 (full dates compare), end unparseable => R
    assert_eq!(f["current_job_start_year"], json!(2018));
    assert_eq!(f["current_job_tenure_months"], json!(7 * 12 + 2));
    // spans: max(0, -12) = 0, 86, 20 ; the 2010-02-30 start does not parse
    assert_eq!(f["longest_job_tenure_months"], json!(86));
    assert_eq!(f["avg_job_tenure_months"], json!(((0.0 + 86.0 + 20.0) / 3.0f64) as f32));
    assert_eq!(f["total_career_years"], json!(10));
    assert_eq!(f["job_churn_rate"], json!(0.5f32));

    // ties on the latest start go to the earlier element
    let w = r#"[{"start_date": "2019", "end_date": "2019-03"}, {"start_date": "2019-01-01"}]"#;
    let f = one(&[("work_experience", w)]);
    assert_eq!(f["current_job_tenure_months"], json!(2));

    // the first primary job wins even if its start does not parse
    let w = r#"[{"start_date": "2020", "is_primary": "true"}, {"start_date": "bad", "is_primary": true}, {"start_date": "2001", "is_primary": true}]"#;
    let f = one(&[("work_experience", w)]);
    assert_eq!(f["current_job_start_year"], Value::Null);
    assert_eq!(f["current_job_tenure_months"], Value::Null);
    assert_eq!(f["first_job_start_year"], json!(2001));
    let w = r#"[{"start_date": "2020"}, {"start_date": "2001", "is_primary": true}]"#;
    let f = one(&[("work_experience", w)]);
    assert_eq!(f["current_job_start_year"], json!(2001));
    assert_eq!(f["current_job_tenure_months"], json!(24 * 12 + 6));
}

#[test]
fn career_years_and_churn() {
    // graduation year wins over first job; never below 0
    let f = one(&[
        ("education", r#"[{"degrees":["ba"],"end_date":"2030"}]"#),
        ("work_experience", r#"[{"start_date":"2001"}]"#),
    ]);
    assert_eq!(f["total_career_years"], json!(0));
    assert_eq!(f["job_churn_rate"], json!(1.0f32));
    // neither: NULL, and churn NULL
    let f = one(&[("work_experience", r#"[{"start_date":"x"}]"#)]);
    assert_eq!(f["total_career_years"], Value::Null);
    assert_eq!(f["job_churn_rate"], Value::Null);
    assert_eq!(f["avg_job_tenure_months"], Value::Null);
    assert_eq!(f["longest_job_tenure_months"], Value::Null);
}

#[test]
fn distinct_companies_trim_and_case() {
    let w = r#"[{"company":{"name":"Acme "}},{"company":{"name":" ACME"}},{"company":{"name":""}},{"company":{"name":"   "}},
               {"company":"Acme Corp"},{"company":{"name":5}},{"company":{"name":"Ａcme"}},{"company":{"name":"ÄCME"}},{"company":{"name":"äcme"}},
               {"company":{"name":"\u001facme\u00a0"}}]"#;
    assert_eq!(one(&[("work_experience", w)])["distinct_companies"], json!(4));
}

#[test]
fn empty_is_not_bad_and_null_versus_zero() {
    for v in [None, Some(""), Some("  \t\r\n"), Some("null"), Some("[]")] {
        let row: HashMap<&str, Option<&str>> = JSON_COLS.iter().map(|c| (*c, v)).collect();
        let (f, out) = eval_rows(&[row]);
        let f = &f[0];
        assert!(out.rejects.is_empty(), "{v:?}: {:?}", out.rejects);
        for c in [
            "education_level_encoded",
            "number_of_schools",
            "number_of_jobs",
            "skill_count",
            "distinct_companies",
            "max_seniority_encoded",
            "certification_count",
            "language_count",
            "interest_count",
        ] {
            assert_eq!(f[c], json!(0), "{c} of {v:?}");
        }
        assert_eq!(f["has_management_title"], json!(false));
        for c in [
            "graduation_year",
            "first_job_start_year",
            "current_job_start_year",
            "total_career_years",
            "job_churn_rate",
            "avg_job_tenure_months",
            "longest_job_tenure_months",
            "current_job_tenure_months",
        ] {
            assert_eq!(f[c], Value::Null, "{c} of {v:?}");
        }
    }
}

#[test]
fn rejected_cells_null_what_reads_them_and_are_recorded() {
    let row: HashMap<&str, Option<&str>> = [
        ("education", Some(r#"[{"degrees":["ba"],"end_date":"2010"}, NaN]"#)),
        ("work_experience", Some(r#"[{"start_date":"2001"}]"#)),
        ("skills", Some(r#"{"a": 1}"#)),
        ("interests", Some(r#"["x"]"#)),
    ]
    .into_iter()
    .collect();
    let (f, out) = eval_rows(&[row]);
    let f = &f[0];
    for c in [
        "education_level_encoded",
        "graduation_year",
        "number_of_schools",
        "total_career_years",
        "job_churn_rate",
        "skill_count",
    ] {
        assert_eq!(f[c], Value::Null, "{c}");
    }
    // no fallback to the first job when education is rejected; work features still there
    assert_eq!(f["first_job_start_year"], json!(2001));
    assert_eq!(f["number_of_jobs"], json!(1));
    assert_eq!(f["interest_count"], json!(1));
    assert_eq!(f["pid"], json!("p0"));
    assert_eq!(out.rows_rejected, 1);
    assert_eq!(out.rejects.len(), 2);
    let e = &out.rejects[0];
    assert_eq!((e.id.as_str(), e.column.as_str()), ("p0", "education"));
    assert!(e.message.contains("at byte 39"), "{}", e.message);
    assert!(e.prefix.starts_with("[{\"degrees\""));
    assert_eq!(out.rejects[1].column, "skills");
    assert_eq!(out.rejects[1].message, "expected a JSON array, found object at byte 0");

    // a rejected work_experience makes career years NULL even with a graduation year
    let row: HashMap<&str, Option<&str>> =
        [("education", Some(r#"[{"degrees":["ba"],"end_date":"2010"}]"#)), ("work_experience", Some("[1,]"))]
            .into_iter()
            .collect();
    let (f, _) = eval_rows(&[row]);
    assert_eq!(f[0]["graduation_year"], json!(2010));
    assert_eq!(f[0]["total_career_years"], Value::Null);
    assert_eq!(f[0]["max_seniority_encoded"], Value::Null);
    assert_eq!(f[0]["has_management_title"], Value::Null);
}

#[test]
fn reject_prefix_is_256_bytes_at_a_char_boundary() {
    let long = format!("[\"{}", "é".repeat(400));
    let row: HashMap<&str, Option<&str>> = [("skills", Some(long.as_str()))].into_iter().collect();
    let (_, out) = eval_rows(&[row]);
    assert_eq!(out.rejects[0].prefix.len(), 256);
    assert_eq!(out.rejects[0].message, format!("EOF while parsing a string at byte {}", long.len()));
}

#[test]
fn counts_saturate_and_copies_range_check() {
    let many = format!("[{}]", vec!["1"; 40_000].join(","));
    let row: HashMap<&str, Option<&str>> = [("skills", Some(many.as_str()))].into_iter().collect();
    let (f, _) = eval_with(&[row.clone(), row], &[(Some(1), Some(40_000)), (None, Some(-32768))]);
    assert_eq!(f[0]["skill_count"], json!(32767));
    assert_eq!(f[0]["inferred_years_experience"], Value::Null);
    assert_eq!(f[0]["linkedin_connections"], json!(1));
    assert_eq!(f[1]["linkedin_connections"], Value::Null);
    assert_eq!(f[1]["inferred_years_experience"], json!(-32768));
}

#[test]
fn duplicate_keys_last_wins_and_big_ints() {
    let w = r#"[{"start_date": "1999", "start_date": "2005", "n": 123456789012345678901234567890}]"#;
    assert_eq!(one(&[("work_experience", w)])["first_job_start_year"], json!(2005));
}

#[test]
fn hostile_cells_do_not_panic() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let big = format!("[{}]", vec![r#"{"title":{"name":"senior engineer"},"start_date":"2001"}"#; 60_000].join(","));
    let ctrl = "[\"a\u{1}b\"]";
    let row: HashMap<&str, Option<&str>> =
        [("education", Some(deep.as_str())), ("work_experience", Some(big.as_str())), ("skills", Some(ctrl))]
            .into_iter()
            .collect();
    let (f, out) = eval_rows(&[row]);
    assert_eq!(f[0]["number_of_schools"], Value::Null);
    assert_eq!(f[0]["number_of_jobs"], json!(32767));
    assert_eq!(f[0]["max_seniority_encoded"], json!(3));
    assert_eq!(f[0]["skill_count"], Value::Null);
    assert_eq!(out.rejects.iter().map(|r| r.column.as_str()).collect::<Vec<_>>(), ["education", "skills"]);
}

#[test]
fn reference_date_is_a_parameter() {
    let spec = Spec::predict_age();
    let rows: Vec<HashMap<&str, Option<&str>>> =
        vec![[("work_experience", Some(r#"[{"start_date":"2020-01"}]"#))].into_iter().collect()];
    let b = batch(&rows, &[(None, None)]);
    let ev = spec.bind(&b.schema(), Ymd::new(2030, 1, 1).unwrap()).unwrap();
    let out = ev.evaluate(&b, 0..1, &mut Workspace::default());
    let names: Vec<_> = spec.output_schema().fields().iter().map(|f| f.name().clone()).collect();
    let col = |n: &str| cell(&out.columns[names.iter().position(|x| x == n).unwrap()], 0);
    assert_eq!(col("total_career_years"), json!(10));
    assert_eq!(col("current_job_tenure_months"), json!(120));
}
