//! The network fault model on the net-canary: a bug only a network fault reveals is found,
//! shrunk to the network fault alone and replayed exactly; healing ends faults still in
//! effect; scenarios without a network model draw nothing from it.
#![cfg(madsim)]

mod common;

use faultline_sim::tape::{Entry, Source, Tape};

fn first_failing_seed() -> (u64, Tape) {
    (0..100)
        .map(|seed| (seed, common::run("net-canary", seed, Source::Seed)))
        .find(|(_, outcome)| outcome.failure.is_some())
        .map(|(seed, outcome)| (seed, outcome.tape))
        .expect("the net-canary fails within 100 seeds")
}

#[test]
fn the_planted_duplicate_needs_a_network_fault_and_replays_exactly() {
    let (seed, tape) = first_failing_seed();
    let replayed = common::run("net-canary", seed, Source::Replay(tape.clone()));
    assert_eq!(replayed.divergence, None);
    assert_eq!(
        Some(replayed.trace.hash()),
        tape.expected.as_ref().map(|e| e.trace_hash.clone())
    );
    assert!(replayed.trace.events.iter().any(|e| e.kind == "net"));
    let mut without_network = tape.clone();
    without_network
        .entries
        .retain(|e| !e.site.starts_with("net/"));
    let clean = common::run("net-canary", seed, Source::Lenient(without_network));
    assert_eq!(clean.failure, None, "the bug needs a network fault");
}

#[test]
fn shrinking_leaves_only_the_network_fault() {
    let (seed, tape) = first_failing_seed();
    let signature = tape.expected.clone().unwrap().signature;
    let mut oracle = |candidate: &Tape| {
        let outcome = common::run("net-canary", seed, Source::Lenient(candidate.clone()));
        (outcome.signature(), outcome.tape.entries)
    };
    let shrunk = faultline_sim::shrink::shrink(
        &tape,
        &signature,
        std::time::Duration::from_secs(60),
        &[],
        &mut oracle,
    );
    assert!(shrunk.one_minimal);
    let choices = shrunk.tape.choices();
    assert!(!choices.is_empty());
    assert!(
        choices.iter().all(|e| e.site.starts_with("net/")),
        "{choices:?}"
    );
}

fn entry(site: &str, value: u64) -> Entry {
    Entry {
        site: site.to_owned(),
        value,
    }
}

#[test]
fn healing_ends_a_fault_still_in_effect_and_every_ping_then_finishes() {
    let mut tape = Tape::new("net-canary", 1);
    // A partition of the only link from the start, for longer than the fault phase.
    tape.entries = vec![
        entry("net/0", 1),
        entry("net/0:start", 0),
        entry("net/0:for", 799),
    ];
    let outcome = common::run("net-canary", 1, Source::Lenient(tape));
    let net: Vec<String> = outcome
        .trace
        .events
        .iter()
        .filter(|e| e.kind == "net")
        .map(|e| format!("{} {}", e.time_ns / 1_000_000, e.detail))
        .collect();
    assert_eq!(net.len(), 2, "{net:?}");
    assert!(net[0].contains(" partition server <-> client"), "{net:?}");
    assert!(
        outcome
            .trace
            .events
            .iter()
            .find(|e| e.kind == "net")
            .unwrap()
            .time_ns
            < 2_000_000
    );
    assert!(net[1].starts_with("600 ended partition"), "{net:?}");
    assert_eq!(outcome.failure, None, "{:?}", outcome.failure);
}

#[test]
fn scenarios_without_a_network_model_draw_nothing_from_it() {
    for scenario in ["concurrent-writers", "schema-apply", "canary"] {
        for seed in 0..20 {
            let outcome = common::run(scenario, seed, Source::Seed);
            assert!(
                outcome
                    .tape
                    .entries
                    .iter()
                    .all(|e| !e.site.starts_with("net/")),
                "{scenario} seed {seed}"
            );
        }
    }
}
