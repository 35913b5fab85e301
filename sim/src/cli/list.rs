//! `cargo sim list`: scenarios, invariants, failpoints and environment variables.

use std::sync::Arc;

use crate::outcome::Exit;
use crate::scenario::Scenario;

pub(super) fn list(scenarios: &[Arc<dyn Scenario>]) -> Exit {
    println!("scenarios:");
    for scenario in scenarios {
        println!("  {:<22} {}", scenario.name(), scenario.summary());
        for invariant in scenario.invariants() {
            println!("    - {:<20} {}", invariant.name, invariant.checks);
        }
    }
    println!("failpoints ({}):", faultline_fp::declared().len());
    for point in faultline_fp::declared() {
        println!("  {:<40} {}:{}", point.name, point.file, point.line);
    }
    println!("environment:");
    for (name, meaning) in crate::env::VARIABLES {
        println!("  {name:<30} {meaning}");
    }
    Exit::Pass
}
