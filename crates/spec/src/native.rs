//! The built-in predict-age spec in plain Rust: the same 21 features as
//! `specs/predict-age.spec` evaluates, with every loop over a row's jobs
//! and schools fused into one pass that scans each element's members once.
//!
//! It is used only when the spec in use is the built-in text itself (see
//! [`crate::Spec::parse`]); any other spec, an edited copy included, runs on
//! the interpreter. The tests evaluate every predict-age case both ways and
//! require identical output (`tests/predict_age.rs`, `tests/native.rs`), so
//! the spec file stays the definition and this module an implementation
//! of it. Keyword ranks come from the spec's own tables.

use crate::compile::{KeywordTable, Program};
use crate::eval::{Column, RankMemo, max_opt};
use crate::text::{Ymd, parse_date};
use crate::value::{Val, elements, len, members};

/// The step names of the built-in spec, in order: the native evaluation
/// fills the slots by these positions, and [`check`] refuses a program
/// whose steps differ.
const STEPS: [&str; 22] = [
    "current_job",
    "pid",
    "education_level_encoded",
    "graduation_year",
    "number_of_schools",
    "number_of_jobs",
    "skill_count",
    "first_job_start_year",
    "current_job_start_year",
    "total_career_years",
    "job_churn_rate",
    "avg_job_tenure_months",
    "longest_job_tenure_months",
    "current_job_tenure_months",
    "distinct_companies",
    "max_seniority_encoded",
    "has_management_title",
    "certification_count",
    "language_count",
    "interest_count",
    "linkedin_connections",
    "inferred_years_experience",
];

/// Every member name [`evaluate_row`] reads, at any depth: the tapes of
/// the columns it reads keep only these (see [`crate::cell::project`]).
pub(crate) const KEYS: [&str; 10] =
    ["degrees", "school", "type", "end_date", "is_primary", "start_date", "company", "name", "title", "levels"];

/// [`KEYS`] as a look-up table.
pub(crate) static KEY_SET: std::sync::LazyLock<crate::cell::KeySet> =
    std::sync::LazyLock::new(|| crate::cell::KeySet::new(&KEYS));

/// Whether `prog` has the layout this module fills (inputs, JSON columns,
/// keyword tables and steps in the built-in order) and reads the members
/// the tapes keep ([`KEYS`]), no more and no fewer.
pub(crate) fn check(prog: &Program) -> bool {
    let inputs: Vec<&str> = prog.inputs.iter().map(|i| i.name.as_str()).collect();
    let steps: Vec<&str> = prog.steps.iter().map(|s| s.name.as_str()).collect();
    let mut members: Vec<&str> = prog.field_keys.iter().map(|k| &**k).collect();
    let mut keys = KEYS.to_vec();
    members.sort_unstable();
    keys.sort_unstable();
    inputs == ["pid", "linkedin_connections", "inferred_years_experience"]
        && prog.json == ["education", "work_experience", "skills", "interests", "certifications", "languages"]
        && prog.keywords.len() == 2
        && steps == STEPS
        && members == keys
}

/// `greatest(0, months(start, coalesce(end, ref_date)))`; `None` without a start date.
#[inline]
fn tenure(start: Option<Ymd>, end: Option<Ymd>, ref_date: Ymd) -> Option<i64> {
    start.map(|s| s.months_until(end.unwrap_or(ref_date)).max(0))
}

/// `date(v)` of a member value: only strings in the three date forms are dates.
#[inline]
fn date(v: Val<'_>) -> Option<Ymd> {
    match v {
        Val::Str(s) => parse_date(s),
        _ => None,
    }
}

/// `least(len(root), 32767)`.
fn count(root: Val<'_>) -> Val<'static> {
    len(&root).map_or(Val::Null, |n| Val::Int(n.min(32767)))
}

/// Distinct strings under ASCII case folding; the first 16 without allocating.
#[derive(Default)]
struct Distinct<'a> {
    first: [&'a str; 16],
    n: usize,
    more: Vec<&'a str>,
}

impl<'a> Distinct<'a> {
    fn insert(&mut self, s: &'a str) {
        let same = |c: &&str| c.len() == s.len() && c.eq_ignore_ascii_case(s);
        if self.first[..self.n].iter().any(same) || self.more.iter().any(same) {
            return;
        }
        if self.n < self.first.len() {
            self.first[self.n] = s;
            self.n += 1;
        } else {
            self.more.push(s);
        }
    }
    fn len(&self) -> usize {
        self.n + self.more.len()
    }
}

fn int(v: Option<i64>) -> Val<'static> {
    v.map_or(Val::Null, Val::Int)
}

/// Fills `slots` (one per step of the built-in spec) for one row whose JSON
/// roots are `roots` (rejected or empty cells already replaced by `[]`).
pub(crate) fn evaluate_row<'a>(
    keywords: &[KeywordTable],
    memo: &mut RankMemo,
    inputs: &[Column<'a>],
    row: usize,
    roots: &[Val<'a>],
    ref_date: Ymd,
    slots: &mut [Val<'a>],
) {
    let (levels, seniority) = (0, 1);

    // Schools: own_level(e), and the latest end year overall and of degrees of level 3 and up.
    let (mut level, mut grad_degree, mut grad_any) = (None, None, None);
    for e in elements(&roots[0]) {
        let [degrees, school, end_date] = members(&e, ["degrees", "school", "end_date"]);
        let mut rank = None;
        for d in elements(&degrees) {
            if let Val::Str(s) = d {
                memo.rank(keywords, levels, s, &mut rank);
            }
        }
        let [school_type] = members(&school, ["type"]);
        let secondary = matches!(school_type, Val::Str(s) if s.eq_ignore_ascii_case("secondary school"));
        let own = rank.unwrap_or(0).max(i64::from(secondary));
        level = max_opt(level, own);
        if let Some(d) = date(end_date) {
            let y = i64::from(d.year());
            grad_any = max_opt(grad_any, y);
            if own >= 3 {
                grad_degree = max_opt(grad_degree, y);
            }
        }
    }

    // Jobs: the current job, start years, tenures, companies, seniority.
    let mut primary: Option<(Val<'a>, Option<Ymd>, Option<i64>)> = None;
    let mut latest: Option<(Ymd, Val<'a>, Option<i64>)> = None;
    let mut first_start = None;
    let (mut tenure_sum, mut tenure_count, mut tenure_max) = (0f64, 0u64, None);
    let mut companies = Distinct::default();
    let mut rank_max = None;
    for j in elements(&roots[1]) {
        let Val::Json(nodes) = j else { continue };
        if !matches!(nodes[0], simd_json::Node::Object { .. }) {
            continue;
        }
        let [is_primary, start_date, end_date, company, title] =
            members(&j, ["is_primary", "start_date", "end_date", "company", "title"]);
        let start = date(start_date);
        let t = tenure(start, date(end_date), ref_date);
        if primary.is_none() && matches!(is_primary, Val::Bool(true)) {
            primary = Some((j, start, t));
        }
        if let Some(s) = start {
            if latest.as_ref().is_none_or(|(best, _, _)| s > *best) {
                latest = Some((s, j, t));
            }
            first_start = Some(first_start.map_or(s.year(), |y: i32| y.min(s.year())));
        }
        if let Some(t) = t {
            tenure_sum += t as f64;
            tenure_count += 1;
            tenure_max = max_opt(tenure_max, t);
        }
        // trim(lower(name)) compared for equality = trim(name) compared ignoring ASCII case
        let [name] = members(&company, ["name"]);
        if let Val::Str(s) = name {
            let s = s.trim_matches(crate::eval::is_space);
            if !s.is_empty() {
                companies.insert(s);
            }
        }
        let [title_levels, title_name] = members(&title, ["levels", "name"]);
        let mut rank = None;
        for l in elements(&title_levels) {
            if let Val::Str(s) = l {
                memo.rank(keywords, seniority, s, &mut rank);
            }
        }
        if let Val::Str(s) = title_name {
            memo.rank(keywords, seniority, s, &mut rank);
        }
        rank_max = max_opt(rank_max, rank.unwrap_or(2));
    }
    let current = primary.or(latest.map(|(s, j, t)| (j, Some(s), t)));

    let graduation_year = grad_degree.or(grad_any);
    let first_job_start_year = first_start.map(i64::from);
    let number_of_jobs = count(roots[1]);
    let total_career_years = graduation_year.or(first_job_start_year).map(|y| (i64::from(ref_date.year()) - y).max(0));
    let max_seniority = rank_max.unwrap_or(0);

    slots[0] = current.map_or(Val::Null, |(j, _, _)| j);
    slots[1] = inputs[0].get(row);
    slots[2] = Val::Int(level.unwrap_or(0));
    slots[3] = int(graduation_year);
    slots[4] = count(roots[0]);
    slots[5] = number_of_jobs;
    slots[6] = count(roots[2]);
    slots[7] = int(first_job_start_year);
    slots[8] = int(current.and_then(|(_, s, _)| s).map(|s| i64::from(s.year())));
    slots[9] = int(total_career_years);
    slots[10] = match (number_of_jobs, total_career_years) {
        (Val::Int(n), Some(t)) => Val::Float(n as f64 / t.max(1) as f64),
        _ => Val::Null,
    };
    slots[11] = if tenure_count == 0 { Val::Null } else { Val::Float(tenure_sum / tenure_count as f64) };
    slots[12] = int(tenure_max);
    slots[13] = int(current.and_then(|(_, _, t)| t));
    slots[14] = Val::Int(companies.len() as i64);
    slots[15] = Val::Int(max_seniority);
    slots[16] = Val::Bool(max_seniority >= 4);
    slots[17] = count(roots[4]);
    slots[18] = count(roots[5]);
    slots[19] = count(roots[3]);
    slots[20] = inputs[1].get(row);
    slots[21] = inputs[2].get(row);
}
