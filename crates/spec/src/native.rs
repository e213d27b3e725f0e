//! The built-in predict-age spec in plain Rust: the same 21 features as
//! `specs/predict-age.spec` evaluates, with every loop over a row's jobs
//! and schools fused into one pass. The members it reads of `education`
//! and `work_experience` are taken straight from the JSON text by a
//! scanner as strict as the full parser ([`Extract::scan`]), with no tape;
//! a cell the scanner is not sure of is parsed and read from its tape.
//!
//! It is used only when the spec in use is the built-in text itself (see
//! [`crate::Spec::parse`]); any other spec, an edited copy included, runs on
//! the interpreter. The tests evaluate every predict-age case both ways and
//! require identical output (`tests/predict_age.rs`, `tests/native.rs`), so
//! the spec file stays the definition and this module an implementation
//! of it. Keyword ranks come from the spec's own tables.

use crate::cell::{between, cell_elements, each_element, each_member, scan_string_escaped, scan_value, skip};
use crate::compile::{KeywordTable, Program};
use crate::emptied;
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

/// Every member name [`evaluate_row`] reads, at any depth ([`Extract`]).
const KEYS: [&str; 10] =
    ["degrees", "school", "type", "end_date", "is_primary", "start_date", "company", "name", "title", "levels"];

/// Whether `prog` has the layout this module fills (inputs, JSON columns,
/// keyword tables and steps in the built-in order) and reads the members
/// [`Extract`] reads ([`KEYS`]), no more and no fewer.
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
fn date(v: Option<&str>) -> Option<Ymd> {
    v.and_then(parse_date)
}

/// `least(len(root), 32767)`.
fn count(n: usize) -> Val<'static> {
    Val::Int(n.min(32767) as i64)
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

/// What the spec reads of one element of `education` (an element that is
/// not an object reads as one with no members).
#[derive(Debug, Clone, Copy, Default)]
struct School<'a> {
    /// The strings among `degrees` (when an array): `Extract::strs[degrees]`.
    degrees: (usize, usize),
    /// `school.type`, when a string.
    kind: Option<&'a str>,
    end_date: Option<&'a str>,
}

/// What the spec reads of one element of `work_experience` that is an
/// object (the others are skipped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Job<'a> {
    is_primary: bool,
    start_date: Option<&'a str>,
    end_date: Option<&'a str>,
    /// `company.name`, when a string.
    company: Option<&'a str>,
    /// `title.name`, when a string.
    title: Option<&'a str>,
    /// The strings among `title.levels`: `Extract::strs[levels]`.
    levels: (usize, usize),
}

/// The members [`evaluate_row`] reads of a row's `education` and
/// `work_experience`, as typed values: filled by [`Extract::scan`] straight
/// from the JSON text (no tape), or from a parsed tape when the scanner is
/// not sure of a cell. Of duplicate members the last wins, as in
/// [`members`]. Reused from row to row (see [`Extract::recycle`]).
#[derive(Debug, Default)]
pub(crate) struct Extract<'a> {
    /// The number of elements of each of the two columns, once read.
    counts: [Option<usize>; 2],
    schools: Vec<School<'a>>,
    jobs: Vec<Job<'a>>,
    strs: Vec<&'a str>,
}

/// The JSON columns [`Extract::scan`] reads: `education` and `work_experience`.
pub(crate) const SCANNED: usize = 2;

impl<'a> Extract<'a> {
    /// Emptied, for the next row (whose strings live as long as `'b`),
    /// keeping the buffers.
    pub(crate) fn recycle<'b>(self) -> Extract<'b> {
        Extract {
            counts: [None; 2],
            schools: emptied(self.schools),
            jobs: emptied(self.jobs),
            strs: emptied(self.strs),
        }
    }

    /// Reads column `k` (0: `education`, 1: `work_experience`) from its
    /// JSON text when it is, without doubt, a valid array (as strict as the
    /// full parser); `false` when not sure, with nothing read, and then the
    /// full parser decides ([`Extract::read_tape`]). Besides the doubts of
    /// [`crate::cell::array_len`]: an escape in a string it keeps or in a
    /// member name of an object it reads (the parser would unescape it).
    pub(crate) fn scan(&mut self, k: usize, text: &'a str) -> bool {
        let marks = (self.schools.len(), self.jobs.len(), self.strs.len());
        let n = if k == 0 { self.scan_education(text) } else { self.scan_work(text) };
        if n.is_none() {
            self.schools.truncate(marks.0);
            self.jobs.truncate(marks.1);
            self.strs.truncate(marks.2);
        }
        self.counts[k] = n;
        n.is_some()
    }

    fn scan_education(&mut self, text: &'a str) -> Option<usize> {
        let b = text.as_bytes();
        cell_elements(b, |at| {
            let from = self.strs.len();
            let mut school = School { degrees: (from, from), ..School::default() };
            let end = if b.get(at) == Some(&b'{') {
                each_member(b, at, |name, at| match name? {
                    b"degrees" => {
                        self.strs.truncate(from);
                        strings_of(text, at, &mut self.strs)
                    }
                    b"school" => member_string(text, at, b"type", &mut school.kind),
                    b"end_date" => string_or_skip(text, at, &mut school.end_date),
                    _ => skip(b, at),
                })?
            } else {
                scan_value(b, at)?
            };
            school.degrees.1 = self.strs.len();
            self.schools.push(school);
            Some(end)
        })
    }

    fn scan_work(&mut self, text: &'a str) -> Option<usize> {
        let b = text.as_bytes();
        cell_elements(b, |at| {
            if b.get(at) != Some(&b'{') {
                return scan_value(b, at);
            }
            let from = self.strs.len();
            let mut job = Job { levels: (from, from), ..Job::default() };
            let end = each_member(b, at, |name, at| match name? {
                b"is_primary" => {
                    let end = scan_value(b, at)?;
                    job.is_primary = &b[at..end] == b"true";
                    Some(end)
                }
                b"start_date" => string_or_skip(text, at, &mut job.start_date),
                b"end_date" => string_or_skip(text, at, &mut job.end_date),
                b"company" => member_string(text, at, b"name", &mut job.company),
                b"title" => {
                    // the last title wins, levels and all
                    self.strs.truncate(from);
                    job.title = None;
                    if b.get(at) != Some(&b'{') {
                        return scan_value(b, at);
                    }
                    each_member(b, at, |name, at| match name? {
                        b"name" => string_or_skip(text, at, &mut job.title),
                        b"levels" => {
                            self.strs.truncate(from);
                            strings_of(text, at, &mut self.strs)
                        }
                        _ => skip(b, at),
                    })
                }
                _ => skip(b, at),
            })?;
            job.levels.1 = self.strs.len();
            self.jobs.push(job);
            Some(end)
        })
    }

    /// Reads column `k` from its tape (`root`: the parsed cell, or `[]` for
    /// an empty or rejected one), as the spec's member look-ups do.
    fn read_tape(&mut self, k: usize, root: &Val<'a>) {
        let str_of = |v: Val<'a>| if let Val::Str(s) = v { Some(s) } else { None };
        let strings = |strs: &mut Vec<&'a str>, v: &Val<'a>| {
            let from = strs.len();
            strs.extend(elements(v).filter_map(str_of));
            (from, strs.len())
        };
        if k == 0 {
            for e in elements(root) {
                let [degrees, school, end_date] = members(&e, ["degrees", "school", "end_date"]);
                let [kind] = members(&school, ["type"]);
                let degrees = strings(&mut self.strs, &degrees);
                self.schools.push(School { degrees, kind: str_of(kind), end_date: str_of(end_date) });
            }
        } else {
            for j in elements(root) {
                if !matches!(j, Val::Json(nodes) if matches!(nodes[0], simd_json::Node::Object { .. })) {
                    continue;
                }
                let [is_primary, start_date, end_date, company, title] =
                    members(&j, ["is_primary", "start_date", "end_date", "company", "title"]);
                let [name] = members(&company, ["name"]);
                let [title_levels, title_name] = members(&title, ["levels", "name"]);
                self.jobs.push(Job {
                    is_primary: matches!(is_primary, Val::Bool(true)),
                    start_date: str_of(start_date),
                    end_date: str_of(end_date),
                    company: str_of(name),
                    title: str_of(title_name),
                    levels: strings(&mut self.strs, &title_levels),
                });
            }
        }
        self.counts[k] = Some(len(root).map_or(0, |n| n as usize));
    }
}

/// The value at `at` into `out`: the string when it is one (`None` when
/// the string has an escape: not sure), `None` for any other value.
#[inline(always)]
fn string_or_skip<'a>(text: &'a str, at: usize, out: &mut Option<&'a str>) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'"') {
        *out = None;
        return scan_value(b, at);
    }
    let (end, escaped) = scan_string_escaped(b, at)?;
    if escaped {
        return None;
    }
    *out = Some(between(text, at + 1, end - 1));
    Some(end)
}

/// Member `name` of the value at `at` into `out` when that value is an
/// object and the member a string (the last of duplicates), else `None`.
fn member_string<'a>(text: &'a str, at: usize, name: &[u8], out: &mut Option<&'a str>) -> Option<usize> {
    let b = text.as_bytes();
    *out = None;
    if b.get(at) != Some(&b'{') {
        return scan_value(b, at);
    }
    each_member(b, at, |n, at| if n? == name { string_or_skip(text, at, out) } else { skip(b, at) })
}

/// The strings among the elements of the value at `at` (when an array),
/// onto `strs`.
fn strings_of<'a>(text: &'a str, at: usize, strs: &mut Vec<&'a str>) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'[') {
        return scan_value(b, at);
    }
    let (end, _) = each_element(b, at, |at| {
        let mut s = None;
        let end = string_or_skip(text, at, &mut s)?;
        strs.extend(s);
        Some(end)
    })?;
    Some(end)
}

/// Fills `slots` (one per step of the built-in spec) for one row whose JSON
/// roots are `roots` (rejected or empty cells already replaced by `[]`);
/// `ex` holds the columns [`Extract::scan`] already read, and the others
/// are read from their tapes here.
#[allow(clippy::too_many_arguments, reason = "the row's inputs and the thread's memos")]
pub(crate) fn evaluate_row<'a>(
    keywords: &[KeywordTable],
    memo: &mut RankMemo,
    ex: &mut Extract<'a>,
    inputs: &[Column<'a>],
    row: usize,
    roots: &[Val<'a>],
    ref_date: Ymd,
    slots: &mut [Val<'a>],
) {
    let (levels, seniority) = (0, 1);
    for (k, root) in roots.iter().enumerate().take(SCANNED) {
        if ex.counts[k].is_none() {
            ex.read_tape(k, root);
        }
    }
    let Extract { counts, schools, jobs, strs } = &*ex;

    // Schools: own_level(e), and the latest end year overall and of degrees of level 3 and up.
    let (mut level, mut grad_degree, mut grad_any) = (None, None, None);
    for s in schools {
        let mut rank = None;
        for d in &strs[s.degrees.0..s.degrees.1] {
            memo.rank(keywords, levels, d, &mut rank);
        }
        let secondary = s.kind.is_some_and(|t| t.eq_ignore_ascii_case("secondary school"));
        let own = rank.unwrap_or(0).max(i64::from(secondary));
        level = max_opt(level, own);
        if let Some(d) = date(s.end_date) {
            let y = i64::from(d.year());
            grad_any = max_opt(grad_any, y);
            if own >= 3 {
                grad_degree = max_opt(grad_degree, y);
            }
        }
    }

    // Jobs: the current job, start years, tenures, companies, seniority.
    let mut primary: Option<(Option<Ymd>, Option<i64>)> = None;
    let mut latest: Option<(Ymd, Option<i64>)> = None;
    let mut first_start = None;
    let (mut tenure_sum, mut tenure_count, mut tenure_max) = (0f64, 0u64, None);
    let mut companies = Distinct::default();
    let mut rank_max = None;
    for j in jobs {
        let start = date(j.start_date);
        let t = tenure(start, date(j.end_date), ref_date);
        if primary.is_none() && j.is_primary {
            primary = Some((start, t));
        }
        if let Some(s) = start {
            if latest.as_ref().is_none_or(|(best, _)| s > *best) {
                latest = Some((s, t));
            }
            first_start = Some(first_start.map_or(s.year(), |y: i32| y.min(s.year())));
        }
        if let Some(t) = t {
            tenure_sum += t as f64;
            tenure_count += 1;
            tenure_max = max_opt(tenure_max, t);
        }
        // trim(lower(name)) compared for equality = trim(name) compared ignoring ASCII case
        if let Some(s) = j.company {
            let s = s.trim_matches(crate::eval::is_space);
            if !s.is_empty() {
                companies.insert(s);
            }
        }
        let mut rank = None;
        for l in &strs[j.levels.0..j.levels.1] {
            memo.rank(keywords, seniority, l, &mut rank);
        }
        if let Some(s) = j.title {
            memo.rank(keywords, seniority, s, &mut rank);
        }
        rank_max = max_opt(rank_max, rank.unwrap_or(2));
    }
    let current = primary.or(latest.map(|(s, t)| (Some(s), t)));

    let graduation_year = grad_degree.or(grad_any);
    let first_job_start_year = first_start.map(i64::from);
    let (schools, jobs) = (counts[0].unwrap_or(0), counts[1].unwrap_or(0));
    let total_career_years = graduation_year.or(first_job_start_year).map(|y| (i64::from(ref_date.year()) - y).max(0));
    let max_seniority = rank_max.unwrap_or(0);

    // `current_job` is a `let` the features above read through `current`;
    // its own value is not written anywhere
    slots[0] = Val::Null;
    slots[1] = inputs[0].get(row);
    slots[2] = Val::Int(level.unwrap_or(0));
    slots[3] = int(graduation_year);
    slots[4] = count(schools);
    slots[5] = count(jobs);
    slots[6] = count_of(&roots[2]);
    slots[7] = int(first_job_start_year);
    slots[8] = int(current.and_then(|(s, _)| s).map(|s| i64::from(s.year())));
    slots[9] = int(total_career_years);
    slots[10] = match total_career_years {
        Some(t) => Val::Float(jobs.min(32767) as f64 / t.max(1) as f64),
        None => Val::Null,
    };
    slots[11] = if tenure_count == 0 { Val::Null } else { Val::Float(tenure_sum / tenure_count as f64) };
    slots[12] = int(tenure_max);
    slots[13] = int(current.and_then(|(_, t)| t));
    slots[14] = Val::Int(companies.len() as i64);
    slots[15] = Val::Int(max_seniority);
    slots[16] = Val::Bool(max_seniority >= 4);
    slots[17] = count_of(&roots[4]);
    slots[18] = count_of(&roots[5]);
    slots[19] = count_of(&roots[3]);
    slots[20] = inputs[1].get(row);
    slots[21] = inputs[2].get(row);
}

/// `least(len(root), 32767)` of a column read from its tape.
fn count_of(root: &Val<'_>) -> Val<'static> {
    len(root).map_or(Val::Null, |n| Val::Int(n.min(32767)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{CellParser, Parsed};

    /// What `ex` read of column `k`, with the string ranges resolved.
    type Read<'a> =
        (Option<usize>, Vec<(Vec<&'a str>, Option<&'a str>, Option<&'a str>)>, Vec<(Job<'a>, Vec<&'a str>)>);

    fn read<'a>(ex: &Extract<'a>, k: usize) -> Read<'a> {
        let strs = |r: (usize, usize)| ex.strs[r.0..r.1].to_vec();
        let schools = ex.schools.iter().map(|s| (strs(s.degrees), s.kind, s.end_date)).collect();
        let jobs = ex.jobs.iter().map(|j| (Job { levels: (0, 0), ..*j }, strs(j.levels))).collect();
        (ex.counts[k], schools, jobs)
    }

    /// The scanner must never accept what the full parser rejects, and must
    /// read what the tape gives, on JSONTestSuite (each file and its
    /// prefixes), odd documents, and synthetic cells with single-byte
    /// mutations; it must be sure of nearly all plain synthetic cells.
    #[test]
    fn the_scanner_reads_what_the_tape_gives() {
        let mut cells: Vec<(Vec<u8>, bool)> = Vec::new();
        for (_, bytes) in fleet_test_support::json_test_suite() {
            for end in 0..bytes.len().min(300) {
                cells.push((bytes[..end].to_vec(), false));
            }
            cells.push((bytes, false));
        }
        let odd = [
            r#"[{"company": {"name": "a"}, "company": {"size": 1}, "title": {"name": "x", "levels": ["vp"]}, "title": 3}]"#,
            r#"[{"title": {"levels": ["vp", 1, ["cto"], "head"], "levels": ["senior"], "name": "a", "name": null}}]"#,
            r#"[{"is_primary": true, "is_primary": "true"}, {"is_primary": false}, {"is_primary": true}, 7, "job"]"#,
            r#"[{"start_date": "2020-01", "start_date": 2020, "end_date": "2021"}, {"end_date": ["2020"]}]"#,
            r#"[{"degrees": ["MBA"], "degrees": "phd", "school": {"type": "secondary school", "type": 1}}, null, []]"#,
            r#"[{"school": {"type": "Secondary School"}, "school": "x", "end_date": "2001-02-03"}, {"degrees": [["phd"], "bsc"]}]"#,
            r#" [ { "company" : { "name" : " Acme " } , "title" : { } } , { } ] "#,
            r#"[{"summary": "a \"quoted\" \u00e9 \\ / \n", "company": {"name": "x", "industry": "\u0041"}}]"#,
            r#"[{"company": {"name": "caf\u00e9"}}]"#,
            r#"[{"title": {"name": "a\nb"}}]"#,
            r#"[{"na\u006de": 1}]"#,
            r#"[{"degrees": ["\ud83d\ude00"]}]"#,
            r#"[{"a": [1, 2.5e3, -0, true, false, null, {"b": {"c": [[]]}}], "title": {"name": "cto", "x": {"name": "y"}}}]"#,
            r#"[{"start_date": "2020-01"}]x"#,
            r#"[{"start_date": "2020-01",}]"#,
            r#"[{"start_date" "2020-01"}]"#,
            r#"[{"title": {"levels": ["vp",]}}]"#,
            r#"{"company": {"name": "a"}}"#,
            "[{\"company\": {\"name\": \"a\tb\"}}]",
        ];
        cells.extend(odd.iter().map(|c| (c.as_bytes().to_vec(), false)));
        let marks = [b'[', b']', b'{', b'}', b',', b':', b'"', b'\\', b'0', b'-', b't', b' ', 0x1f, 0xc3];
        for i in 0..3000u64 {
            let profile = if i % 10 == 0 { fleet_synth::Profile::Heavy } else { fleet_synth::Profile::Typical };
            let p = fleet_synth::Person::generate(17, i, profile, 0.02);
            for cell in [p.education, p.work_experience].into_iter().flatten() {
                let b = cell.into_bytes();
                for m in 0..3u64 {
                    if b.is_empty() {
                        break;
                    }
                    let at = ((i * 31 + m * 17) % b.len() as u64) as usize;
                    let mut x = b.clone();
                    x[at] = marks[((i + m) % marks.len() as u64) as usize];
                    cells.push((x, false));
                    let mut y = b.clone();
                    y.remove(at);
                    cells.push((y, false));
                }
                cells.push((b, true));
            }
        }
        let mut parser = CellParser::default();
        let (mut plain, mut sure, mut suite_sure) = (0, 0, 0);
        for (cell, synthetic) in &cells {
            let Ok(text) = std::str::from_utf8(cell) else { continue };
            for k in 0..SCANNED {
                let mut scanned = Extract::default();
                let ok = scanned.scan(k, text);
                plain += usize::from(*synthetic && k == 0);
                if !ok {
                    assert_eq!(read(&scanned, k), (None, vec![], vec![]), "nothing is left of an unsure scan");
                    continue;
                }
                sure += usize::from(*synthetic && k == 0);
                suite_sure += usize::from(!*synthetic && k == 0);
                let mut tape = simd_json::Tape::null();
                let parsed = parser.parse(cell, &mut tape);
                assert!(
                    matches!(parsed, Ok(Parsed::Document)) && matches!(tape.0[0], simd_json::Node::Array { .. }),
                    "scanned where the parser says {parsed:?}: {text:?}"
                );
                let mut from_tape = Extract::default();
                from_tape.read_tape(k, &Val::from_tape(&tape.0));
                assert_eq!(read(&scanned, k), read(&from_tape, k), "column {k}: {text:?}");
            }
        }
        assert!(suite_sure > 300, "sure of only {suite_sure} odd cells");
        assert!(plain > 5000 && sure * 100 >= plain * 95, "sure of {sure} of {plain} synthetic cells");
    }
}
