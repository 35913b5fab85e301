//! `cargo sim`: the command line over every registered scenario.

fn main() -> std::process::ExitCode {
    faultline_sim::cli::main(faultline_scenarios::registry())
}
