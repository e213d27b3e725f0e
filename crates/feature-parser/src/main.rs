//! feature-parser: glue between the shard contract and `fleet_parser`.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    fleet_worker::main(
        "feature-parser",
        fleet_parser::ABOUT,
        |e| fleet_parser::exit_code(e.as_ref()),
        |config| async move {
            fleet_parser::FeatureParser::new(config).await?.run().await?;
            Ok(())
        },
    )
}
