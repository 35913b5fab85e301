//! The regression corpus: each tape in fixtures/corpus/ is the shrunk run of a planted bug
//! (fixtures/mutants/<name>.patch). On the engine as it is, replaying it must pass, the same
//! way every time. (ci/mutants checks the other half: on the mutant it still fails.)
//!
//! The replay is lenient: the correct engine takes other paths than the mutant did (a
//! conflict instead of a double publish), so it asks for sites the tape never recorded; those
//! get the simplest choice.
#![cfg(madsim)]

mod common;

use faultline_sim::tape::{Source, Tape};

fn corpus() -> Vec<(String, Tape)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/corpus");
    let mut tapes: Vec<(String, Tape)> = std::fs::read_dir(dir)
        .expect("fixtures/corpus exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.to_string_lossy().ends_with(".tape.json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            (
                path.display().to_string(),
                Tape::parse(&text).expect("a valid tape"),
            )
        })
        .collect();
    tapes.sort_by(|a, b| a.0.cmp(&b.0));
    tapes
}

#[test]
fn every_mutant_has_a_regression_tape_and_every_tape_a_mutant() {
    let mutants = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mutants");
    for (path, _) in corpus() {
        let name = path
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".tape.json")
            .to_owned();
        assert!(
            std::path::Path::new(&format!("{mutants}/{name}.patch")).exists(),
            "{path} has no mutant"
        );
    }
    assert!(corpus().len() >= 5);
}

#[test]
fn every_regression_tape_passes_on_the_engine_and_replays_identically() {
    for (path, tape) in corpus() {
        let expected_on_mutant = tape
            .expected
            .as_ref()
            .map(|e| e.signature.clone())
            .unwrap_or_default();
        assert!(
            expected_on_mutant.starts_with("invariant:")
                || expected_on_mutant.starts_with("liveness:"),
            "{path}: recorded as {expected_on_mutant}, not an invariant or liveness failure"
        );
        let first = common::run(&tape.scenario, tape.seed, Source::Lenient(tape.clone()));
        assert_eq!(first.failure, None, "{path} fails on the engine");
        let second = common::run(&tape.scenario, tape.seed, Source::Lenient(tape.clone()));
        assert_eq!(
            first.trace.hash(),
            second.trace.hash(),
            "{path} is not deterministic"
        );
    }
}
