//! The kernel bench's typical evaluation, run a fixed number of times with
//! no timing: for counting instructions under valgrind, which is exact where
//! timings on a shared machine are not:
//! `valgrind --tool=cachegrind --branch-sim=yes target/release/examples/kernel_once`
//! (`scripts/count-kernel` does this).

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use fleet_spec::{Spec, Workspace, Ymd};
use fleet_synth::{Person, Profile};

fn main() {
    let rows: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2048);
    let people: Vec<Person> = (0..rows).map(|i| Person::generate(42, i, Profile::Typical, 0.003)).collect();
    let s = |f: &dyn Fn(&Person) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(people.iter().map(f).collect::<Vec<_>>()))
    };
    let ints = |f: &dyn Fn(&Person) -> Option<i32>| -> ArrayRef {
        Arc::new(Int32Array::from(people.iter().map(f).collect::<Vec<_>>()))
    };
    let b = RecordBatch::try_from_iter([
        ("pid", s(&|p| Some(p.pid.clone()))),
        ("linkedin_connections", ints(&|p| p.linkedin_connections)),
        ("inferred_years_experience", ints(&|p| p.inferred_years_experience)),
        ("education", s(&|p| p.education.clone())),
        ("work_experience", s(&|p| p.work_experience.clone())),
        ("skills", s(&|p| p.skills.clone())),
        ("interests", s(&|p| p.interests.clone())),
        ("certifications", s(&|p| p.certifications.clone())),
        ("languages", s(&|p| p.languages.clone())),
    ])
    .expect("a batch");
    let ev = Spec::predict_age().bind(&b.schema(), Ymd::new(2025, 7, 1).expect("a date")).expect("bound");
    let mut ws = Workspace::default();
    let mut rejected = 0;
    for _ in 0..3 {
        rejected += ev.evaluate(&b, 0..b.num_rows(), &mut ws).rows_rejected;
    }
    assert!(rejected > 0 || rows < 1000, "typical rows have a few rejects");
}
