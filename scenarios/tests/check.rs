//! `faultline_sim::check`, the test entry point: a scenario that holds passes every seed; the
//! canary panics with its seed, signature and reproduction line; and that line, run as
//! printed, replays the same failure in the simulator binary.
#![cfg(madsim)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline_fp::fp;
use faultline_scenarios::canary::Canary;
use faultline_sim::faults::FaultModel;
use faultline_sim::world::World;
use faultline_sim::{Check, CheckError, InvariantDoc, Scenario};

/// The canary without its bug: each increment is one atomic step, so no interleaving at the
/// failpoint loses one.
struct FixedCanary;

const INVARIANTS: &[InvariantDoc] = &[InvariantDoc {
    name: "counter-exact",
    checks: "the counter equals the number of increments made",
}];

impl Scenario for FixedCanary {
    fn name(&self) -> &'static str {
        "fixed-canary"
    }

    fn summary(&self) -> &'static str {
        "the canary's workload with an atomic increment (must always pass)"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        INVARIANTS
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.weights = [90, 5, 5, 0, 0];
        model
    }

    fn run(&self, world: World) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(count(world))
    }
}

async fn count(world: World) {
    let counter = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    for name in ["left", "right"] {
        let (counter, finished) = (counter.clone(), finished.clone());
        world.add_node(name, move || {
            let (counter, finished) = (counter.clone(), finished.clone());
            async move {
                for _ in 0..4 {
                    let _ = fp!("fixed_canary.between_increments").await;
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                finished.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while finished.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let value = counter.load(Ordering::SeqCst);
    if value != 8 {
        world.fail(
            "counter-exact",
            format!("counter is {value} after 8 increments"),
        );
    }
}

#[test]
fn a_scenario_that_holds_passes_every_seed() {
    let checked = faultline_sim::check(FixedCanary, 0..50);
    assert_eq!(checked.runs, 50);
    assert!(checked.seconds > 0.0);
    assert!(checked.simulated > Duration::ZERO);
}

#[test]
#[should_panic(expected = "reproduce: cargo sim replay --scenario canary --seed ")]
fn the_canary_panics_with_the_line_that_replays_it() {
    faultline_sim::check(Canary, 0..200);
}

#[test]
fn the_printed_line_replays_the_failure_in_the_binary() {
    let Err(CheckError::Failed(failed)) = Check::new(Canary).seeds(0..200).try_run() else {
        panic!("the canary passed 200 seeds");
    };
    assert_eq!(failed.failure.signature(), "invariant:counter-exact");
    assert_eq!(failed.runs, failed.seed + 1, "stops at the first failure");
    let message = failed.to_string();
    assert!(
        message.contains(&format!("failed at seed {}", failed.seed)),
        "{message}"
    );
    assert!(message.contains(&failed.failure.message), "{message}");
    let line = message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("reproduce: "))
        .expect("a reproduction line");
    let args: Vec<&str> = line
        .strip_prefix("cargo sim ")
        .expect("a cargo sim command")
        .split(' ')
        .collect();
    let reports = tempfile::tempdir().unwrap();
    let replay = common::binary()
        .args(&args)
        .env("FAULTLINE_REPORTS", reports.path())
        .output()
        .expect("run the simulator");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(replay.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("FAIL invariant:counter-exact"),
        "{printed}"
    );
    assert!(printed.contains(&failed.failure.message), "{printed}");
    assert!(!printed.contains("NOT reproduced"), "{printed}");
}

#[test]
fn an_empty_seed_range_is_refused_not_passed() {
    let result = Check::new(FixedCanary).seeds(5..5).try_run();
    let Err(CheckError::Setup(error)) = result else {
        panic!("an empty range passed: {result:?}");
    };
    assert!(error.to_string().contains("5..5 is empty"), "{error}");
}
