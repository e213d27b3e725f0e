//! ndjson-converter: the worker of `fleet_ndjson`, run by the framework.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    fleet_worker::main::<fleet_ndjson::NdjsonConverter>()
}
