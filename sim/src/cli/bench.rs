//! `cargo sim bench`: prints figures (runs per second per scenario on one core, on the
//! simulated disk and on real files; simulated seconds per wall second; nanoseconds per
//! failpoint hit). Quote ratios from one
//! run: the machines are shared.

use std::sync::Arc;

use super::args::{self, BenchArgs};
use crate::bench;
use crate::env;
use crate::outcome::{Exit, Result};
use crate::scenario::Scenario;
use crate::session::{Session, Writes};

pub(super) fn bench(args: BenchArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let seeds = args::bench_seeds(&args.seeds)?;
    let settings = env::settings()?;
    println!(
        "runs per second on one core ({seeds} seeds each, one after another in one worker \
         process; the simulated disk and real files interleaved in blocks of {} seeds, so the \
         ratio is fair):",
        bench::BLOCK
    );
    let width = scenarios.iter().map(|s| s.name().len()).max().unwrap_or(0);
    for scenario in scenarios {
        let mut session = Session::new(scenario.clone(), settings.clone(), 1, Writes::Nothing)?;
        let figures = bench::runs_per_second(&mut session, seeds)?;
        println!(
            "  {:<width$} {:>8.0} runs/s   (real files {:.0} runs/s, {:.1}x)   {:.1} simulated s per wall s",
            scenario.name(),
            figures.memory,
            figures.files,
            figures.memory / figures.files,
            figures.simulated_per_wall
        );
    }
    let cost = bench::failpoint_cost(&settings);
    println!("nanoseconds per failpoint hit ({} hits):", bench::HITS);
    println!(
        "  compiled out (disabled macro)      {:>8.1} ns",
        cost.compiled_out
    );
    println!(
        "  compiled in, outside a simulation  {:>8.1} ns",
        cost.outside
    );
    println!(
        "  inside a simulation (drawn, recorded) {:>5.1} ns",
        cost.inside
    );
    Ok(Exit::Pass)
}
