//! The parse-and-extract kernel on one thread: simd-json parse only (the
//! ceiling) against the full predict-age evaluation (parse included), both
//! the compiled-in version the built-in spec runs as and the interpreter
//! (what any other spec runs on), on synthetic rows of the typical and
//! heavy profiles. `cargo bench -p fleet-spec --bench kernel`.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int32Array, RecordBatch, StringArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleet_spec::{CellParser, Spec, Workspace, Ymd};
use fleet_synth::{Person, Profile};
use simd_json::Tape;

fn batch(profile: Profile, rows: u64) -> (RecordBatch, u64) {
    let people: Vec<Person> = (0..rows).map(|i| Person::generate(42, i, profile, 0.003)).collect();
    let s = |f: &dyn Fn(&Person) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(people.iter().map(f).collect::<Vec<_>>()))
    };
    let b = RecordBatch::try_from_iter([
        ("pid", s(&|p| Some(p.pid.clone()))),
        (
            "linkedin_connections",
            Arc::new(Int32Array::from(people.iter().map(|p| p.linkedin_connections).collect::<Vec<_>>())) as ArrayRef,
        ),
        (
            "inferred_years_experience",
            Arc::new(Int32Array::from(people.iter().map(|p| p.inferred_years_experience).collect::<Vec<_>>()))
                as ArrayRef,
        ),
        ("education", s(&|p| p.education.clone())),
        ("work_experience", s(&|p| p.work_experience.clone())),
        ("skills", s(&|p| p.skills.clone())),
        ("interests", s(&|p| p.interests.clone())),
        ("certifications", s(&|p| p.certifications.clone())),
        ("languages", s(&|p| p.languages.clone())),
    ])
    .unwrap();
    let bytes = people
        .iter()
        .map(|p| {
            [&p.education, &p.work_experience, &p.skills, &p.interests, &p.certifications, &p.languages]
                .iter()
                .map(|c| c.as_ref().map_or(0, |s| s.len() as u64))
                .sum::<u64>()
        })
        .sum();
    (b, bytes)
}

fn bench(c: &mut Criterion) {
    let spec = Spec::predict_age();
    for (name, profile, rows) in [("typical", Profile::Typical, 4096), ("heavy", Profile::Heavy, 64)] {
        let (b, bytes) = batch(profile, rows);
        let cells: Vec<&str> = (3..9)
            .flat_map(|c| {
                let a = b.column(c).as_any().downcast_ref::<StringArray>().unwrap();
                (0..a.len()).filter(|i| !a.is_null(*i)).map(move |i| a.value(i))
            })
            .collect();
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes));
        g.sample_size(20);
        let mut parser = CellParser::default();
        let mut tape = Tape(Vec::new());
        g.bench_function("simd_json_parse_only", |bench| {
            bench.iter(|| {
                let mut ok = 0usize;
                for cell in &cells {
                    let mut t = std::mem::replace(&mut tape, Tape(Vec::new())).reset();
                    ok += usize::from(parser.parse(cell.as_bytes(), &mut t).is_ok());
                    tape = t.reset();
                }
                ok
            })
        });
        let ev = spec.bind(&b.schema(), Ymd::new(2025, 7, 1).unwrap()).unwrap();
        let mut ws = Workspace::default();
        g.bench_function("predict_age_evaluate", |bench| {
            bench.iter(|| ev.evaluate(&b, 0..b.num_rows(), &mut ws).rows_rejected)
        });
        let interpreted = ev.clone().interpreted();
        g.bench_function("predict_age_interpreted", |bench| {
            bench.iter(|| interpreted.evaluate(&b, 0..b.num_rows(), &mut ws).rows_rejected)
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
