//! `cargo sim list`: scenarios, invariants, failpoints and environment variables.

use std::sync::Arc;

use crate::outcome::Exit;
use crate::scenario::Scenario;

pub(super) fn list(scenarios: &[Arc<dyn Scenario>]) -> Exit {
    println!("scenarios:");
    for scenario in scenarios {
        println!("  {:<22} {}", scenario.name(), scenario.summary());
        let net = scenario.net_model();
        if net.faults > 0 {
            println!(
                "    network faults: up to {} per run (see the kinds below)",
                net.faults
            );
        }
        for invariant in scenario.invariants() {
            println!("    - {:<20} {}", invariant.name, invariant.checks);
        }
        for doc in scenario.sometimes() {
            println!("    sometimes {:<20} {}", doc.name, doc.means);
        }
        let expected = crate::coverage::expected_points(scenario.as_ref());
        if !expected.is_empty() {
            println!(
                "    must reach {} failpoints (--require-coverage): {}",
                expected.len(),
                expected.join(", ")
            );
        }
    }
    println!("strategies (--strategy or FAULTLINE_STRATEGY; recorded in every tape):");
    for strategy in crate::strategy::StrategyKind::ALL {
        let name = match strategy {
            crate::strategy::StrategyKind::Pct { .. } => "pct[:D]".to_owned(),
            other => other.to_string(),
        };
        println!("  {name:<40} {}", strategy.summary());
    }
    println!("failpoints ({}):", faultline_fp::declared().len());
    for point in faultline_fp::declared() {
        println!("  {:<40} {}:{}", point.name, point.file, point.line);
    }
    println!("network fault kinds (a scenario's net model draws them; none by default):");
    for kind in crate::net::NetKind::ALL.into_iter().skip(1) {
        println!("  {:<40} {}", kind.name(), kind.meaning());
    }
    println!("environment:");
    for (name, meaning) in crate::env::VARIABLES {
        println!("  {name:<30} {meaning}");
    }
    Exit::Pass
}
