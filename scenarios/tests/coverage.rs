//! Every declared failpoint is unique and is hit by some seed the suite runs.
#![cfg(madsim)]

mod common;

use std::collections::BTreeSet;

use faultline_sim::tape::Source;

#[test]
fn failpoint_names_are_unique() {
    let mut seen = BTreeSet::new();
    for point in faultline_fp::declared() {
        assert!(
            seen.insert(point.name),
            "failpoint {} is declared twice ({}:{})",
            point.name,
            point.file,
            point.line
        );
    }
    assert!(
        seen.len() >= 10,
        "the engine declares its failpoints: {seen:?}"
    );
}

#[test]
fn every_declared_failpoint_is_hit_by_some_seed() {
    let mut hit = BTreeSet::new();
    for scenario in faultline_scenarios::registry() {
        for seed in 0..400 {
            hit.extend(
                common::run(scenario.name(), seed, Source::Seed)
                    .hits
                    .into_keys(),
            );
        }
    }
    let never: Vec<&str> = faultline_fp::declared()
        .iter()
        .map(|p| p.name)
        .filter(|name| !hit.contains(*name))
        .collect();
    assert!(
        never.is_empty(),
        "failpoints never hit by any seed: {never:?}"
    );
}
