//! Deterministic synthetic predict-age data (FEATURES.md §1, §2, §5): a raw
//! table whose JSON columns look like real career data, with a hidden age
//! signal (graduation and first-job years, seniority and experience follow
//! age, with noise), a small share of malformed and odd cells, and the
//! matching targets table.
//!
//! Every row is a pure function of `(seed, row number)`, so the output is
//! the same whatever the file count or thread count.
//!
//! ```
//! use fleet_synth::{Person, Profile};
//! let a = Person::generate(42, 7, Profile::Typical, 0.0);
//! let b = Person::generate(42, 7, Profile::Typical, 0.0);
//! assert_eq!(a.pid, b.pid);
//! assert_eq!(a.work_experience, b.work_experience);
//! ```

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int32Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use fleet_store::{Location, ParquetSink, StoreError, WriteOptions};
use rayon::prelude::*;
use tracing::info;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building a batch of synthetic rows")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// Size profile of the JSON columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// About 2-3 KB of JSON per row.
    Typical,
    /// About 100 KB or more of JSON per row (long job summaries).
    Heavy,
}

impl std::str::FromStr for Profile {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, SynthError> {
        match s {
            "typical" => Ok(Profile::Typical),
            "heavy" => Ok(Profile::Heavy),
            _ => Err(SynthError::Invalid { what: "profile", reason: format!("{s:?}; expected typical or heavy") }),
        }
    }
}

/// SplitMix64: tiny, fast and good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next_u64() % xs.len() as u64) as usize]
    }
    /// Roughly normal (sum of uniforms).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..4).map(|_| (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64).sum();
        mean + (s - 2.0) * sd * 1.732
    }
}

const COMPANIES: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark industries",
    "wayne enterprises",
    "wonka",
    "cyberdyne",
    "soylent",
    "tyrell",
    "massive dynamic",
    "aperture science",
    "pied piper",
    "vandelay industries",
    "nakatomi",
    "oscorp",
    "zürich re",
    "são paulo tech",
    "gringotts",
    "monsters inc",
    "dunder mifflin",
    "prestige worldwide",
];
const SIZES: &[&str] = &["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+"];
const INDUSTRIES: &[&str] = &[
    "computer software",
    "information technology and services",
    "financial services",
    "hospital & health care",
    "retail",
    "higher education",
    "marketing and advertising",
    "construction",
    "telecommunications",
    "banking",
];
const ROLES: &[&str] =
    &["engineering", "sales", "marketing", "finance", "operations", "education", "health", "legal", "design"];
const TITLES: &[&str] = &[
    "software engineer",
    "data engineer",
    "account executive",
    "analyst",
    "designer",
    "consultant",
    "teacher",
    "nurse",
    "accountant",
    "product specialist",
    "sales representative",
    "operations coordinator",
    "recruiter",
];
const MAJORS: &[&str] =
    &["physics", "computer science", "economics", "biology", "history", "mathematics", "nursing", "marketing"];
const SKILLS: &[&str] = &[
    "sql",
    "python",
    "excel",
    "leadership",
    "java",
    "communication",
    "project management",
    "aws",
    "rust",
    "salesforce",
    "negotiation",
    "photoshop",
    "machine learning",
    "customer service",
    "public speaking",
];
const INTERESTS: &[&str] =
    &["chess", "hiking", "music", "reading", "travel", "photography", "cooking", "running", "golf"];
const LANGS: &[&str] = &["english", "spanish", "french", "german", "mandarin", "portuguese", "hindi", "arabic"];
const WORDS: &[&str] = &[
    "led",
    "built",
    "the",
    "team",
    "delivering",
    "scalable",
    "customer",
    "revenue",
    "platform",
    "across",
    "regions",
    "improved",
    "pipeline",
    "quarterly",
    "with",
    "stakeholders",
    "and",
    "launched",
    "new",
    "processes",
    "for",
    "data",
    "quality",
    "reduced",
    "costs",
    "by",
    "managed",
    "budget",
    "of",
    "partners",
    "mentored",
    "engineers",
];
const COUNTRIES: &[&str] = &["united states", "united kingdom", "india", "brazil", "germany", "canada", "france"];

/// One synthetic person: the raw row and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub pid: String,
    pub gender: Option<&'static str>,
    pub industry: &'static str,
    pub job_title: String,
    pub job_title_role: &'static str,
    pub job_title_levels: String,
    pub job_company_size: &'static str,
    pub job_company_founded: Option<i32>,
    pub job_start_date: Option<String>,
    pub location_country: &'static str,
    pub location_region: &'static str,
    pub linkedin_connections: Option<i32>,
    pub inferred_salary: Option<String>,
    pub inferred_years_experience: Option<i32>,
    pub education: Option<String>,
    pub work_experience: Option<String>,
    pub skills: Option<String>,
    pub interests: Option<String>,
    pub certifications: Option<String>,
    pub languages: Option<String>,
    pub dataset_version: &'static str,
    pub actual_age: Option<i32>,
    pub birth_year: Option<i32>,
    pub approximate_age: Option<bool>,
}

const REF_YEAR: i64 = 2025;

fn date(rng: &mut Rng, year: i64) -> String {
    match rng.range(0, 19) {
        0..=5 => format!("{year}"),
        6..=15 => format!("{year}-{:02}", rng.range(1, 12)),
        16..=18 => format!("{year}-{:02}-{:02}", rng.range(1, 12), rng.range(1, 28)),
        _ => match rng.range(0, 3) {
            0 => format!("June {year}"),
            1 => format!("{year}-13"),
            2 => format!("{year}/05"),
            _ => String::new(),
        },
    }
}

fn push_str_json(out: &mut String, key: &str, v: &str) {
    let _ = write!(out, "\"{key}\":\"{v}\"");
}

impl Person {
    /// Row `i` of the table generated from `seed`. `malformed` is the share
    /// of rows that get one malformed JSON cell.
    pub fn generate(seed: u64, i: u64, profile: Profile, malformed: f64) -> Person {
        let mut r = Rng::new(seed, i);
        let age = r.normal(40.0, 11.0).clamp(16.0, 85.0) as i64;
        let birth_year = REF_YEAR - age - i64::from(r.chance(0.5));
        // Education: a level drawn with age-dependent odds, graduation ~ birth + 18/22/24/28.
        let level = match r.range(0, 99) {
            0..=9 => 1,
            10..=19 => 2,
            20..=64 => 3,
            65..=89 => 4,
            _ => 5,
        };
        let mut edu = String::with_capacity(512);
        edu.push('[');
        let mut n_edu = 0;
        let mut grad_year = birth_year + 18;
        let steps: &[(i64, i64, &str, &str)] = &[
            (1, 18, "high school diploma", "secondary school"),
            (2, 20, "associate of arts", "post-secondary institution"),
            (3, 22, "bachelors", "post-secondary institution"),
            (4, 24, "masters", "post-secondary institution"),
            (5, 28, "phd", "post-secondary institution"),
        ];
        for &(lv, at, degree, kind) in steps {
            if lv > level || (lv == 2 && level > 2) || (lv == 1 && r.chance(0.6)) {
                continue;
            }
            let end = birth_year + at + r.range(-1, 1);
            if end > REF_YEAR {
                break;
            }
            grad_year = end;
            if n_edu > 0 {
                edu.push(',');
            }
            n_edu += 1;
            let degree_text = match (lv, r.range(0, 3)) {
                (3, 0) => "Bachelor of Science",
                (3, 1) => "B.A.",
                (4, 0) => "M.S.",
                (4, 1) => "MBA",
                (5, 0) => "Ph.D.",
                _ => degree,
            };
            let school = r.pick(&[
                "university of x",
                "state college",
                "institute of technology",
                "école normale",
                "lincoln high",
            ]);
            let _ = write!(
                edu,
                "{{\"school\":{{\"name\":\"{school}\",\"type\":\"{kind}\"}},\"degrees\":[\"{degree_text}\"],\"majors\":[\"{}\"],\"start_date\":\"{}\",\"end_date\":",
                r.pick(MAJORS),
                date(&mut r, end - 4)
            );
            if r.chance(0.05) {
                edu.push_str("null");
            } else {
                let _ = write!(edu, "\"{}\"", date(&mut r, end));
            }
            let _ = write!(edu, ",\"gpa\":{:.1}}}", r.normal(3.2, 0.3).clamp(2.0, 4.0));
        }
        edu.push(']');

        // Work: from graduation to now, tenures of 1-6 years; seniority grows with career years.
        let mut work = String::with_capacity(if profile == Profile::Heavy { 128 << 10 } else { 2048 });
        work.push('[');
        let mut year = grad_year + r.range(0, 2);
        let mut jobs = 0;
        let mut company_count = 0;
        let max_jobs = if profile == Profile::Heavy { 16 } else { 8 };
        let mut last_title = String::from("student");
        let mut last_start = None;
        while year <= REF_YEAR && jobs < max_jobs {
            let tenure = r.range(1, 6);
            let end = year + tenure;
            let current = end > REF_YEAR || jobs + 1 == max_jobs;
            let career = year - grad_year;
            let level = match career + r.range(-3, 3) {
                ..=0 => ["intern", "junior"][r.range(0, 1) as usize],
                1..=4 => "",
                5..=9 => "senior",
                10..=14 => ["lead", "manager"][r.range(0, 1) as usize],
                15..=20 => ["director", "head"][r.range(0, 1) as usize],
                21..=26 => "vp",
                _ => ["chief", "owner", "founder"][r.range(0, 2) as usize],
            };
            let base = r.pick(TITLES);
            let title = if level.is_empty() { base.to_string() } else { format!("{level} {base}") };
            if jobs > 0 {
                work.push(',');
            }
            jobs += 1;
            let company = if company_count > 0 && r.chance(0.15) { COMPANIES[0] } else { r.pick(COMPANIES) };
            company_count += 1;
            let _ = write!(
                work,
                "{{\"company\":{{\"name\":\"{company}\",\"size\":\"{}\",\"industry\":\"{}\"}},",
                r.pick(SIZES),
                r.pick(INDUSTRIES)
            );
            let levels = if level.is_empty() { String::new() } else { format!("\"{level}\"") };
            let _ = write!(
                work,
                "\"title\":{{\"name\":\"{title}\",\"role\":\"{}\",\"levels\":[{levels}]}},",
                r.pick(ROLES)
            );
            let start = date(&mut r, year);
            work.push_str("\"start_date\":\"");
            work.push_str(&start);
            work.push_str("\",\"end_date\":");
            if current {
                work.push_str(if r.chance(0.5) { "null" } else { "\"\"" });
            } else {
                let _ = write!(work, "\"{}\"", date(&mut r, end));
            }
            if current && r.chance(0.9) {
                work.push_str(",\"is_primary\":true");
            } else if r.chance(0.3) {
                work.push_str(",\"is_primary\":false");
            }
            work.push_str(",\"summary\":\"");
            let words = if profile == Profile::Heavy { r.range(2000, 4000) } else { r.range(4, 24) };
            for w in 0..words {
                if w > 0 {
                    work.push(' ');
                }
                work.push_str(r.pick(WORDS));
            }
            if r.chance(0.05) {
                work.push_str(" \\u00e9quipe \\\"quoted\\\"");
            }
            work.push_str("\"}");
            last_title = title;
            last_start = Some(start);
            if current {
                break;
            }
            year = end + i64::from(r.chance(0.2));
        }
        work.push(']');

        let list = |r: &mut Rng, pool: &[&str], lo: i64, hi: i64, objects: bool| {
            let n = r.range(lo, hi);
            let mut s = String::from("[");
            for k in 0..n {
                if k > 0 {
                    s.push(',');
                }
                if objects && r.chance(0.5) {
                    s.push('{');
                    push_str_json(&mut s, "name", r.pick(pool));
                    s.push('}');
                } else {
                    let _ = write!(s, "\"{}\"", r.pick(pool));
                }
            }
            s.push(']');
            s
        };
        let skills = list(&mut r, SKILLS, 0, 30, true);
        let interests = list(&mut r, INTERESTS, 0, 8, false);
        let languages = list(&mut r, LANGS, 1, 3, true);
        let n_cert = r.range(0, 4);
        let mut certifications = String::from("[");
        for k in 0..n_cert {
            if k > 0 {
                certifications.push(',');
            }
            let _ = write!(
                certifications,
                "{{\"name\":\"{} certified\",\"organization\":\"{}\",\"start_date\":\"{}\"}}",
                r.pick(SKILLS),
                r.pick(COMPANIES),
                {
                    let y = REF_YEAR - r.range(0, 10);
                    date(&mut r, y)
                }
            );
        }
        certifications.push(']');

        let mut cells = [Some(edu), Some(work), Some(skills), Some(interests), Some(certifications), Some(languages)];
        // Odd but valid cells: NULL, empty, whitespace, `null`.
        for c in cells.iter_mut() {
            if r.chance(0.01) {
                *c = match r.range(0, 3) {
                    0 => None,
                    1 => Some(String::new()),
                    2 => Some(" \n".into()),
                    _ => Some("null".into()),
                };
            }
        }
        if r.chance(malformed) {
            let k = r.range(0, 5) as usize;
            let bad = match (r.range(0, 5), cells[k].take()) {
                (0, Some(s)) if s.len() > 4 => s[..s.len() / 2].to_string(),
                (1, _) => "[NaN]".to_string(),
                (2, _) => "[{\"a\": 1,}]".to_string(),
                (3, _) => "{'single': 'quotes'}".to_string(),
                (4, _) => "{\"not\": \"an array\"}".to_string(),
                _ => "[1, 2".to_string(),
            };
            cells[k] = Some(bad);
        }
        let [education, work_experience, skills, interests, certifications, languages] = cells;

        let years = (REF_YEAR - grad_year).max(0);
        let actual_age = match r.range(0, 999) {
            0 => None,
            1 => Some(7),
            2 => Some(130),
            _ => Some(age as i32),
        };
        Person {
            pid: format!("p{seed:04x}-{i:010}"),
            gender: r.pick(&[Some("male"), Some("female"), None]),
            industry: r.pick(INDUSTRIES),
            job_title: last_title,
            job_title_role: r.pick(ROLES),
            job_title_levels: "[]".into(),
            job_company_size: r.pick(SIZES),
            job_company_founded: r.chance(0.8).then(|| r.range(1900, 2023) as i32),
            job_start_date: last_start,
            location_country: r.pick(COUNTRIES),
            location_region: r.pick(&["north", "south", "east", "west", "central"]),
            linkedin_connections: r.chance(0.9).then(|| (years * 40 + r.range(0, 600)).min(30_000) as i32),
            inferred_salary: r.chance(0.7).then(|| {
                let lo = 30 + years * 3 + r.range(0, 20);
                format!("{},000-{},000", lo, lo + 15)
            }),
            inferred_years_experience: r.chance(0.85).then(|| (years + r.range(-2, 2)).max(0) as i32),
            education,
            work_experience,
            skills,
            interests,
            certifications,
            languages,
            dataset_version: "2025.07",
            actual_age,
            birth_year: Some(birth_year as i32),
            approximate_age: Some(r.chance(0.1)),
        }
    }
}

/// The raw table schema of FEATURES.md §1.
pub fn raw_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let i = |n: &str| Field::new(n, DataType::Int32, true);
    Arc::new(Schema::new(vec![
        Field::new("pid", DataType::Utf8, false),
        s("gender"),
        s("industry"),
        s("job_title"),
        s("job_title_role"),
        s("job_title_levels"),
        s("job_company_size"),
        i("job_company_founded"),
        s("job_start_date"),
        s("location_country"),
        s("location_region"),
        i("linkedin_connections"),
        s("inferred_salary"),
        i("inferred_years_experience"),
        s("education"),
        s("work_experience"),
        s("skills"),
        s("interests"),
        s("certifications"),
        s("languages"),
        s("dataset_version"),
    ]))
}

/// The targets table schema of FEATURES.md §2.
pub fn targets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pid", DataType::Utf8, false),
        Field::new("actual_age", DataType::Int32, true),
        Field::new("birth_year", DataType::Int32, true),
        Field::new("approximate_age", DataType::Boolean, true),
    ]))
}

/// The raw table rows of `people` as one batch, with the schema of [`raw_schema`].
pub fn raw_batch(people: &[Person]) -> Result<RecordBatch, SynthError> {
    let n = people.len();
    let strs = |f: &dyn Fn(&Person) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for p in people {
            b.append_option(f(p));
        }
        Arc::new(b.finish())
    };
    let ints = |f: &dyn Fn(&Person) -> Option<i32>| -> ArrayRef {
        let mut b = Int32Builder::with_capacity(n);
        for p in people {
            b.append_option(f(p));
        }
        Arc::new(b.finish())
    };
    Ok(RecordBatch::try_new(
        raw_schema(),
        vec![
            strs(&|p| Some(&p.pid)),
            strs(&|p| p.gender),
            strs(&|p| Some(p.industry)),
            strs(&|p| Some(&p.job_title)),
            strs(&|p| Some(p.job_title_role)),
            strs(&|p| Some(&p.job_title_levels)),
            strs(&|p| Some(p.job_company_size)),
            ints(&|p| p.job_company_founded),
            strs(&|p| p.job_start_date.as_deref()),
            strs(&|p| Some(p.location_country)),
            strs(&|p| Some(p.location_region)),
            ints(&|p| p.linkedin_connections),
            strs(&|p| p.inferred_salary.as_deref()),
            ints(&|p| p.inferred_years_experience),
            strs(&|p| p.education.as_deref()),
            strs(&|p| p.work_experience.as_deref()),
            strs(&|p| p.skills.as_deref()),
            strs(&|p| p.interests.as_deref()),
            strs(&|p| p.certifications.as_deref()),
            strs(&|p| p.languages.as_deref()),
            strs(&|p| Some(p.dataset_version)),
        ],
    )?)
}

fn targets_batch(people: &[Person]) -> Result<RecordBatch, SynthError> {
    let mut pid = StringBuilder::new();
    let mut age = Int32Builder::new();
    let mut by = Int32Builder::new();
    let mut approx = BooleanBuilder::new();
    for p in people {
        pid.append_value(&p.pid);
        age.append_option(p.actual_age);
        by.append_option(p.birth_year);
        approx.append_option(p.approximate_age);
    }
    Ok(RecordBatch::try_new(
        targets_schema(),
        vec![Arc::new(pid.finish()), Arc::new(age.finish()), Arc::new(by.finish()), Arc::new(approx.finish())],
    )?)
}

/// Output format of the raw table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Ndjson,
}

/// Writes raw (and optionally targets) tables.
#[derive(Debug, Clone)]
pub struct Generator {
    profile: Profile,
    seed: u64,
    rows: u64,
    files: u64,
    malformed: f64,
    format: Format,
    batch_rows: usize,
}

/// What a generator wrote.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub rows: u64,
    pub files: Vec<String>,
    pub bytes: u64,
}

impl Generator {
    pub fn new(profile: Profile) -> Self {
        Self { profile, seed: 42, rows: 10_000, files: 1, malformed: 0.003, format: Format::Parquet, batch_rows: 4096 }
    }
    /// Default 42.
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
    /// Default 10,000.
    pub fn with_rows(self, rows: u64) -> Self {
        Self { rows, ..self }
    }
    /// Default 1; rows are split evenly, in order.
    pub fn with_files(self, files: u64) -> Self {
        Self { files: files.max(1), ..self }
    }
    /// Share of rows with one malformed JSON cell. Default 0.003.
    pub fn with_malformed_share(self, malformed: f64) -> Self {
        Self { malformed, ..self }
    }
    /// Default Parquet (zstd).
    pub fn with_format(self, format: Format) -> Self {
        Self { format, ..self }
    }

    /// Writes `raw/part-NNNNN.parquet` under `raw` and, when given,
    /// `part-NNNNN.parquet` targets under `targets`.
    pub async fn write(
        &self,
        raw: &Location,
        targets: Option<&Location>,
    ) -> Result<(Generated, Generated), SynthError> {
        let mut out = (Generated::default(), Generated::default());
        let opts = WriteOptions::default().with_row_group_bytes(64 << 20);
        for f in 0..self.files {
            let start = self.rows * f / self.files;
            let end = self.rows * (f + 1) / self.files;
            let ext = if self.format == Format::Parquet { "parquet" } else { "ndjson" };
            let name = format!("part-{f:05}.{ext}");
            let mut raw_sink = match self.format {
                Format::Parquet => Some(ParquetSink::create(raw, raw.join(&name)?, raw_schema(), &opts)?),
                Format::Ndjson => None,
            };
            let mut ndjson = Vec::new();
            let mut tgt_sink = match targets {
                Some(t) => {
                    Some(ParquetSink::create(t, t.join(&format!("part-{f:05}.parquet"))?, targets_schema(), &opts)?)
                }
                None => None,
            };
            let mut at = start;
            while at < end {
                let stop = (at + self.batch_rows as u64).min(end);
                let (seed, profile, malformed) = (self.seed, self.profile, self.malformed);
                let people: Vec<Person> = tokio::task::spawn_blocking(move || {
                    (at..stop).into_par_iter().map(|i| Person::generate(seed, i, profile, malformed)).collect()
                })
                .await
                .map_err(|e| SynthError::Invalid { what: "generator thread", reason: e.to_string() })?;
                match raw_sink.as_mut() {
                    Some(s) => s.write(&raw_batch(&people)?).await?,
                    None => {
                        for p in &people {
                            ndjson_line(&mut ndjson, p);
                        }
                    }
                }
                if let Some(t) = tgt_sink.as_mut() {
                    t.write(&targets_batch(&people)?).await?;
                }
                at = stop;
            }
            match raw_sink {
                Some(s) => {
                    let st = s.close().await?;
                    out.0.bytes += st.bytes;
                    out.0.files.push(st.uri);
                }
                None => {
                    out.0.bytes += ndjson.len() as u64;
                    raw.put_bytes(&name, ndjson).await?;
                    out.0.files.push(raw.child(&name)?.uri());
                }
            }
            out.0.rows += end - start;
            if let Some(t) = tgt_sink {
                let st = t.close().await?;
                out.1.bytes += st.bytes;
                out.1.files.push(st.uri);
                out.1.rows += end - start;
            }
            info!(file = %out.0.files.last().map(String::as_str).unwrap_or_default(), rows = end - start, "Generated a file.");
        }
        Ok(out)
    }
}

fn ndjson_line(out: &mut Vec<u8>, p: &Person) {
    let v = serde_json_line(p);
    out.extend_from_slice(v.as_bytes());
    out.push(b'\n');
}

/// One NDJSON line with the raw table's keys; JSON columns are JSON strings.
fn serde_json_line(p: &Person) -> String {
    fn q(s: Option<&str>) -> String {
        match s {
            None => "null".into(),
            Some(s) => {
                let mut o = String::with_capacity(s.len() + 2);
                o.push('"');
                for c in s.chars() {
                    match c {
                        '"' => o.push_str("\\\""),
                        '\\' => o.push_str("\\\\"),
                        '\n' => o.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(o, "\\u{:04x}", c as u32);
                        }
                        c => o.push(c),
                    }
                }
                o.push('"');
                o
            }
        }
    }
    let n = |v: Option<i32>| v.map_or("null".to_string(), |v| v.to_string());
    format!(
        "{{\"pid\":{},\"gender\":{},\"industry\":{},\"job_title\":{},\"job_title_role\":{},\"job_title_levels\":{},\"job_company_size\":{},\"job_company_founded\":{},\"job_start_date\":{},\"location_country\":{},\"location_region\":{},\"linkedin_connections\":{},\"inferred_salary\":{},\"inferred_years_experience\":{},\"education\":{},\"work_experience\":{},\"skills\":{},\"interests\":{},\"certifications\":{},\"languages\":{},\"dataset_version\":{}}}",
        q(Some(&p.pid)),
        q(p.gender),
        q(Some(p.industry)),
        q(Some(&p.job_title)),
        q(Some(p.job_title_role)),
        q(Some(&p.job_title_levels)),
        q(Some(p.job_company_size)),
        n(p.job_company_founded),
        q(p.job_start_date.as_deref()),
        q(Some(p.location_country)),
        q(Some(p.location_region)),
        n(p.linkedin_connections),
        q(p.inferred_salary.as_deref()),
        n(p.inferred_years_experience),
        q(p.education.as_deref()),
        q(p.work_experience.as_deref()),
        q(p.skills.as_deref()),
        q(p.interests.as_deref()),
        q(p.certifications.as_deref()),
        q(p.languages.as_deref()),
        q(Some(p.dataset_version)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_len(p: &Person) -> usize {
        [&p.education, &p.work_experience, &p.skills, &p.interests, &p.certifications, &p.languages]
            .iter()
            .map(|c| c.as_ref().map_or(0, String::len))
            .sum()
    }

    #[test]
    fn profiles_have_the_documented_sizes() {
        let n = 2000;
        let typical: usize = (0..n).map(|i| json_len(&Person::generate(1, i, Profile::Typical, 0.0))).sum();
        let avg = typical as f64 / n as f64;
        assert!((2000.0..=3000.0).contains(&avg), "typical average {avg}");
        let heavy: usize = (0..200).map(|i| json_len(&Person::generate(1, i, Profile::Heavy, 0.0))).sum();
        assert!(heavy as f64 / 200.0 >= 100_000.0, "heavy average {}", heavy / 200);
    }

    #[test]
    fn cells_are_json_arrays_except_the_malformed_share() {
        let n = 5000;
        let mut bad_rows = 0;
        for i in 0..n {
            let p = Person::generate(7, i, Profile::Typical, 0.01);
            let mut bad = false;
            for c in [&p.education, &p.work_experience, &p.skills, &p.interests, &p.certifications, &p.languages] {
                let Some(c) = c else { continue };
                if c.trim().is_empty() || c == "null" {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(c) {
                    Ok(v) if v.is_array() => {}
                    _ => bad = true,
                }
            }
            bad_rows += usize::from(bad);
        }
        assert!((25..=80).contains(&bad_rows), "{bad_rows} malformed rows of {n}");
    }

    #[test]
    fn the_age_signal_is_there() {
        // older people graduated earlier: correlation of age and graduation-ish year is strongly negative
        let (mut sx, mut sy, mut sxx, mut syy, mut sxy, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..3000 {
            let p = Person::generate(3, i, Profile::Typical, 0.0);
            let (Some(age), Some(y)) = (p.actual_age, p.inferred_years_experience) else { continue };
            if !(14..=100).contains(&age) {
                continue;
            }
            let (x, y) = (f64::from(age), f64::from(y));
            sx += x;
            sy += y;
            sxx += x * x;
            syy += y * y;
            sxy += x * y;
            n += 1.0;
        }
        let r = (n * sxy - sx * sy) / ((n * sxx - sx * sx).sqrt() * (n * syy - sy * sy).sqrt());
        assert!(r > 0.8, "correlation of age and experience {r}");
    }
}
