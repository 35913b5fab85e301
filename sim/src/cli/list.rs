//! `cargo sim list`: scenarios, invariants, failpoints and environment variables.

use std::sync::Arc;

use crate::outcome::Exit;
use crate::scenario::Scenario;

pub(super) fn list(scenarios: &[Arc<dyn Scenario>], json: bool) -> Exit {
    if json {
        println!("{}", as_json(scenarios));
        return Exit::Pass;
    }
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
    println!(
        "strategies (--strategy or FAULTLINE_STRATEGY, default {}; recorded in every tape):",
        crate::strategy::DEFAULT_FRESH
    );
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

/// `list --json`: the same, for scripts (a CI matrix of scenarios, say).
fn as_json(scenarios: &[Arc<dyn Scenario>]) -> serde_json::Value {
    use serde_json::json;
    let scenarios: Vec<serde_json::Value> = scenarios
        .iter()
        .map(|s| {
            json!({
                "name": s.name(),
                "summary": s.summary(),
                "invariants": s.invariants().iter()
                    .map(|i| json!({"name": i.name, "checks": i.checks})).collect::<Vec<_>>(),
                "sometimes": s.sometimes().iter()
                    .map(|d| json!({"name": d.name, "means": d.means})).collect::<Vec<_>>(),
                "must_reach": crate::coverage::expected_points(s.as_ref()),
                "network_faults_per_run": s.net_model().faults,
            })
        })
        .collect();
    json!({
        "schema": "faultline-list",
        "schema_version": 1,
        "scenarios": scenarios,
        "strategies": crate::strategy::StrategyKind::ALL.iter()
            .map(|k| json!({"name": k.to_string(), "summary": k.summary()})).collect::<Vec<_>>(),
        "failpoints": faultline_fp::declared().iter()
            .map(|p| json!({"name": p.name, "file": p.file, "line": p.line})).collect::<Vec<_>>(),
        "network_fault_kinds": crate::net::NetKind::ALL.into_iter().skip(1)
            .map(|k| json!({"name": k.name(), "means": k.meaning()})).collect::<Vec<_>>(),
        "environment": crate::env::VARIABLES.iter()
            .map(|(name, means)| json!({"name": name, "means": means})).collect::<Vec<_>>(),
    })
}
