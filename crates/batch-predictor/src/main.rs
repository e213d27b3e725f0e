//! batch-predictor: the worker of `fleet_predictor`, run by the framework.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    fleet_worker::main::<fleet_predictor::BatchPredictor>()
}
