//! `faultline_sim::check` on runs that misbehave: a panic, a deadlock and a broken invariant
//! are failures of their own kinds, and a run that never yields is reported as a hang after
//! `FAULTLINE_RUN_WALL_SECONDS` instead of holding the test forever. One test in its own
//! binary: it sets a variable every check of the process reads, and leaves a spinning
//! thread behind that only the end of the process stops.
#![cfg(madsim)]

use faultline_scenarios::misbehave::Misbehave;
use faultline_sim::{Check, CheckError};

fn signature(seed: u64) -> (String, String) {
    match Check::new(Misbehave).seeds(seed..seed + 1).try_run() {
        Err(CheckError::Failed(failed)) => (failed.failure.signature(), failed.reproduce),
        other => panic!("seed {seed}: expected a failure, got {other:?}"),
    }
}

#[test]
fn each_misbehaviour_fails_as_its_kind_with_a_replay_line() {
    std::env::set_var("FAULTLINE_RUN_WALL_SECONDS", "1");
    for (seed, expected) in [
        (1, "panic:panic"),
        (4, "liveness:deadlock"),
        (5, "invariant:misbehave-ok"),
        (3, "hang:hang"),
    ] {
        let (signature, reproduce) = signature(seed);
        assert_eq!(signature, expected, "seed {seed}");
        let line = format!("cargo sim replay --scenario misbehave --seed {seed} --timeline");
        assert_eq!(reproduce, line, "seed {seed}");
    }
}
