//! The simulator with one more scenario, `misbehave`, for the harness's own tests of
//! panics, aborts, hangs and early failures. Not what `cargo sim` runs.

fn main() -> std::process::ExitCode {
    let mut scenarios = faultline_scenarios::registry();
    scenarios.push(std::sync::Arc::new(
        faultline_scenarios::misbehave::Misbehave,
    ));
    faultline_sim::cli::main(scenarios)
}
