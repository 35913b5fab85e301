//! Helpers shared by the simulator-build tests.
#![allow(dead_code)]

use std::sync::Arc;

use faultline_sim::crash::DiskKind;
use faultline_sim::limits::Limits;
use faultline_sim::outcome::RunOutcome;
use faultline_sim::runner::{self, RunRequest};
use faultline_sim::strategy::StrategyKind;
use faultline_sim::tape::Source;
use faultline_sim::Scenario;

/// The registered scenario called `name`.
pub fn scenario(name: &str) -> Arc<dyn Scenario> {
    faultline_scenarios::registry()
        .into_iter()
        .find(|s| s.name() == name)
        .expect("registered")
}

/// One run of `name` with `seed` from `source`, with default limits, on the default disk.
pub fn run(name: &str, seed: u64, source: Source) -> RunOutcome {
    run_on(name, seed, source, DiskKind::default())
}

/// One run of `name` with `seed` from `source`, with default limits, on `disk`.
pub fn run_on(name: &str, seed: u64, source: Source, disk: DiskKind) -> RunOutcome {
    let io_cost = source.io_cost(faultline_sim::iotime::IoCost::default());
    run_charged(name, seed, source, disk, io_cost)
}

/// [`run_on`] under the I/O cost model `io_cost`.
pub fn run_charged(
    name: &str,
    seed: u64,
    source: Source,
    disk: DiskKind,
    io_cost: faultline_sim::iotime::IoCost,
) -> RunOutcome {
    let strategy = source.strategy(StrategyKind::default());
    run_searching(name, seed, (source, strategy), disk, io_cost)
}

/// [`run_charged`], a fresh run searching with `strategy`.
pub fn run_searching(
    name: &str,
    seed: u64,
    (source, strategy): (Source, StrategyKind),
    disk: DiskKind,
    io_cost: faultline_sim::iotime::IoCost,
) -> RunOutcome {
    let request = RunRequest {
        seed,
        source,
        limits: Limits::default(),
        scratch: std::env::temp_dir(),
        disk,
        io_cost,
        strategy,
    };
    runner::run(scenario(name), request).expect("the run's environment is usable")
}

/// The simulator binary built for these tests.
pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_faultline-sim"))
}

/// A command's stdout and stderr together, for assertion messages and searches.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A command's stdout as one JSON value (the test fails with everything it printed if not).
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not one JSON value ({e}): {}", text(output)))
}
