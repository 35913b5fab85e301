//! `cargo sim`: Faultline's command line over this crate's scenarios (run, replay, shrink,
//! hunt, list, ...). Build it with `--cfg madsim` (the `sim` alias in `.cargo/config.toml`).

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    faultline_sim::cli::main(vec![Arc::new(inventory::scenario::InventoryScenario)])
}
