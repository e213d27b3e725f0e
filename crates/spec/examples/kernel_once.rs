//! The kernel bench's typical evaluation, run a fixed number of times with
//! no timing: for counting instructions under valgrind, which is exact where
//! timings on a shared machine are not:
//! `valgrind --tool=cachegrind --branch-sim=yes target/release/examples/kernel_once`
//! (`scripts/count-kernel` does this).

use fleet_spec::{Spec, Workspace, Ymd};
use fleet_synth::{Person, Profile};

fn main() {
    let rows: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2048);
    let people: Vec<Person> = (0..rows).map(|i| Person::generate(42, i, Profile::Typical, 0.003)).collect();
    let b = fleet_synth::raw_batch(&people).expect("a batch");
    let ev = Spec::predict_age().bind(&b.schema(), Ymd::new(2025, 7, 1).expect("a date")).expect("bound");
    let mut ws = Workspace::default();
    let mut rejected = 0;
    for _ in 0..3 {
        rejected += ev.evaluate(&b, 0..b.num_rows(), &mut ws).rows_rejected;
    }
    assert!(rejected > 0 || rows < 1000, "typical rows have a few rejects");
}
