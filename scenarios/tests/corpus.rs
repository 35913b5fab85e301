//! The regression corpus: each tape in regressions/<scenario>/ is the shrunk run of a planted
//! bug (fixtures/mutants/<name>.patch), or of a bug a sweep found and `run` added. On the engine as it is, replaying it must pass, the same
//! way every time. (ci/mutants checks the other half: on the mutant it still fails.)
//!
//! The replay is lenient: the correct engine takes other paths than the mutant did (a
//! conflict instead of a double publish), so it asks for sites the tape never recorded; those
//! get the simplest choice.
#![cfg(madsim)]

mod common;

use faultline_sim::tape::{Source, Tape};

fn corpus() -> Vec<(String, Tape)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../regressions");
    faultline_sim::regressions::load(std::path::Path::new(root))
        .expect("regressions/ reads")
        .into_iter()
        .map(|(path, tape)| (path.display().to_string(), tape))
        .collect()
}

#[test]
fn every_mutant_has_a_regression_tape_and_every_planted_bug_tape_a_mutant() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let tapes = corpus();
    for patch in std::fs::read_dir(format!("{root}/fixtures/mutants")).unwrap() {
        let name = patch
            .unwrap()
            .file_name()
            .to_string_lossy()
            .replace(".patch", "");
        let wanted = format!("/{name}.tape.json");
        assert!(
            tapes.iter().any(|(path, _)| path.ends_with(&wanted)),
            "mutant {name} has no regression tape (ci/mutants --update-corpus {name})"
        );
    }
    for (path, tape) in &tapes {
        let story = tape.story.as_deref().unwrap_or_default();
        if let Some(rest) = story.strip_prefix("planted bug ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                std::path::Path::new(&format!("{root}/fixtures/mutants/{name}.patch")).exists(),
                "{path} names a mutant that does not exist"
            );
            assert!(
                path.ends_with(&format!("/{}/{name}.tape.json", tape.scenario)),
                "{path}"
            );
        }
    }
    assert!(tapes.len() >= 5);
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
