//! Determinism: the same seed gives the same trace, byte for byte, in one process and across
//! processes; a replayed tape gives the trace its recording gave.
#![cfg(madsim)]

mod common;

use std::time::Duration;

use faultline_sim::crash::DiskKind;
use faultline_sim::iotime::IoCost;
use faultline_sim::tape::Source;

#[test]
fn every_seed_gives_the_same_trace_twice_in_one_process() {
    for name in ["concurrent-writers", "schema-apply", "canary"] {
        for seed in 0..40 {
            let first = common::run(name, seed, Source::Seed);
            let second = common::run(name, seed, Source::Seed);
            if let Some(difference) = first.trace.first_difference(&second.trace) {
                panic!("{name} seed {seed} is not deterministic: first difference {difference:?}");
            }
            assert_eq!(first.tape, second.tape, "{name} seed {seed}: tapes differ");
        }
    }
}

/// The simulated disk is faithful where it matters to the engine (locks, WAL, crash images):
/// a run on it gives the trace the same run gives on real files in the scratch directory.
/// Real files are not charged for pages and syncs, so both run with only SQLite's steps
/// charged (which both disks charge alike).
#[test]
fn the_simulated_disk_and_real_files_give_the_same_trace() {
    let steps_only = IoCost {
        read: Duration::ZERO,
        write: Duration::ZERO,
        sync: Duration::ZERO,
        ..IoCost::default()
    };
    for name in ["concurrent-writers", "schema-apply"] {
        for seed in 0..25 {
            let run = |disk| common::run_charged(name, seed, Source::Seed, disk, steps_only);
            let (memory, files) = (run(DiskKind::Memory), run(DiskKind::Files));
            if let Some(difference) = memory.trace.first_difference(&files.trace) {
                panic!("{name} seed {seed}: memory and files differ at {difference:?}");
            }
            assert_eq!(memory.failure, files.failure, "{name} seed {seed}");
        }
    }
}

#[test]
fn a_recorded_tape_replays_to_the_same_trace_without_divergence() {
    for name in ["concurrent-writers", "schema-apply"] {
        for seed in 0..20 {
            let recorded = common::run(name, seed, Source::Seed);
            let replayed = common::run(name, seed, Source::Replay(recorded.tape.clone()));
            assert_eq!(replayed.divergence, None, "{name} seed {seed}");
            assert_eq!(
                replayed.trace.hash(),
                recorded.trace.hash(),
                "{name} seed {seed}"
            );
        }
    }
}

/// pct and swarm runs preempt statement boundaries (sparse tape entries): a replay takes them
/// from the tape alone, with no divergence and the same trace, and a tape that lost its
/// preemptions no longer preempts.
#[test]
fn pct_and_swarm_tapes_replay_to_the_same_trace_and_preempt_only_as_recorded() {
    use faultline_sim::strategy::StrategyKind;
    let mut preempted = 0;
    for (name, strategy) in [
        ("concurrent-writers", StrategyKind::Pct { depth: 3 }),
        ("concurrent-writers", StrategyKind::Swarm),
        ("backfill", StrategyKind::Pct { depth: 2 }),
        ("delete-vs-fetch", StrategyKind::Swarm),
    ] {
        for seed in 0..6 {
            let cost = faultline_sim::iotime::IoCost::default();
            let fresh = (Source::Seed, strategy);
            let recorded = common::run_searching(name, seed, fresh, Default::default(), cost);
            assert_eq!(recorded.tape.strategy, strategy);
            let boundaries = recorded.tape.entries.iter();
            let count = boundaries
                .filter(|e| e.site.contains("sched.preempt"))
                .count();
            preempted += count;
            let replayed = common::run(name, seed, Source::Replay(recorded.tape.clone()));
            assert_eq!(replayed.divergence, None, "{name} {strategy} seed {seed}");
            assert_eq!(
                replayed.trace.hash(),
                recorded.trace.hash(),
                "{name} seed {seed}"
            );
            let preempts = |o: &faultline_sim::outcome::RunOutcome| {
                o.trace
                    .events
                    .iter()
                    .filter(|e| e.kind == "preempt")
                    .count()
            };
            assert_eq!(preempts(&recorded), count, "{name} seed {seed}");
            let mut stripped = recorded.tape.clone();
            stripped
                .entries
                .retain(|e| !e.site.contains("sched.preempt"));
            let lenient = common::run(name, seed, Source::Lenient(stripped));
            assert_eq!(preempts(&lenient), 0, "{name} seed {seed}");
        }
    }
    assert!(preempted > 0, "some run preempted a statement boundary");
}

#[test]
fn a_seed_replayed_in_a_new_process_gives_the_in_process_trace_hash() {
    for seed in [3, 11] {
        let in_process = common::run("concurrent-writers", seed, Source::Seed)
            .trace
            .hash();
        // The in-process run is random's; fresh runs of the binary default to pct:1.
        let output = common::binary()
            .env("FAULTLINE_STRATEGY", "random")
            .args([
                "replay",
                "--scenario",
                "concurrent-writers",
                "--seed",
                &seed.to_string(),
                "--json",
            ])
            .output()
            .expect("run the simulator");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(report["trace_hash"], in_process.as_str(), "seed {seed}");
    }
}

#[test]
fn a_changed_tape_is_reported_as_a_divergence_at_its_first_site() {
    let recorded = common::run("concurrent-writers", 4, Source::Seed);
    let mut tape = recorded.tape.clone();
    let removed = tape.entries.remove(0);
    let replayed = common::run("concurrent-writers", 4, Source::Replay(tape));
    let divergence = replayed.divergence.expect("a divergence");
    assert!(divergence.contains(&removed.site), "{divergence}");
}

#[test]
fn a_crash_at_a_statement_boundary_restarts_the_node_and_replays_exactly() {
    use faultline_sim::crash_points::{boundary_sites, without_faults};
    use faultline_sim::strategy::PREEMPT_CRASH;
    for name in ["delete-vs-fetch", "concurrent-writers"] {
        let own = common::run(name, 2, Source::Seed);
        let base = common::run(name, 2, Source::Lenient(without_faults(&own.tape)));
        let sites = boundary_sites(&base.coverage.boundaries_by_node, 6);
        assert_eq!(
            sites.len(),
            6,
            "{name}: {:?}",
            base.coverage.boundaries_by_node
        );
        let site = sites.last().unwrap().clone();
        let mut tape = base.tape.clone();
        tape.entries.push(faultline_sim::tape::Entry {
            site: site.clone(),
            value: PREEMPT_CRASH,
        });
        let crashed = common::run(name, 2, Source::Lenient(tape));
        assert_eq!(crashed.failure, None, "{name}: {:?}", crashed.failure);
        let kinds: Vec<&str> = crashed
            .trace
            .events
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        let at = crashed
            .trace
            .events
            .iter()
            .position(|e| e.kind == "preempt" && e.detail.ends_with("-> crash"))
            .unwrap_or_else(|| panic!("{name}: no boundary crash at {site}: {kinds:?}"));
        assert_eq!(crashed.trace.events[at + 1].kind, "crash", "{name}");
        assert_eq!(
            crashed.coverage.faults.get("process crash"),
            Some(&1),
            "{name}"
        );
        let replayed = common::run(name, 2, Source::Replay(crashed.tape.clone()));
        assert_eq!(replayed.divergence, None, "{name}");
        assert_eq!(replayed.trace.hash(), crashed.trace.hash(), "{name}");
    }
}
