//! `cargo sim replay` and `cargo sim shrink`.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::cli::{self, ReplayArgs, ShrinkArgs};
use crate::cli_run::{run_once, shrink_tape, summarize};
use crate::env;
use crate::report;
use crate::runner::RunOutcome;
use crate::scenario::Scenario;
use crate::tape::{Source, Tape};

pub(crate) fn replay(args: ReplayArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<u8, String> {
    let settings = env::settings()?;
    let (scenario, seed, source, expected) = match (&args.trace, &args.scenario, &args.seed) {
        (Some(path), _, _) => {
            let tape = load_tape(path)?;
            let scenario = cli::find(scenarios, &tape.scenario)?;
            (
                scenario,
                tape.seed,
                Source::Replay(tape.clone()),
                tape.expected,
            )
        }
        (None, Some(name), Some(seed)) => (
            cli::find(scenarios, name)?,
            cli::parse_seed(seed)?,
            Source::Seed,
            None,
        ),
        _ => return Err("give --trace FILE, or --scenario NAME --seed N".to_owned()),
    };
    let outcome = run_once(&scenario, &settings, seed, source.clone());
    let determinism = args.check_determinism.then(|| {
        let again = run_once(&scenario, &settings, seed, source);
        outcome.trace.first_difference(&again.trace)
    });
    let expected_matches = expected
        .as_ref()
        .map(|e| e.signature == outcome.signature() && e.trace_hash == outcome.trace.hash());
    if args.timeline {
        print!("{}", outcome.trace.timeline());
    }
    print_outcome(
        &outcome,
        &args,
        expected.as_ref(),
        expected_matches,
        determinism.as_ref(),
    );
    let clean = outcome.failure.is_none()
        && outcome.divergence.is_none()
        && expected_matches != Some(false)
        && !matches!(determinism, Some(Some(_)));
    Ok(if clean {
        cli::EXIT_PASS
    } else {
        cli::EXIT_FAILED
    })
}

fn print_outcome(
    outcome: &RunOutcome,
    args: &ReplayArgs,
    expected: Option<&crate::tape::Expected>,
    expected_matches: Option<bool>,
    determinism: Option<&Option<crate::trace::Difference>>,
) {
    if args.json {
        let object = json!({
            "scenario": outcome.scenario,
            "seed": outcome.seed,
            "trace_hash": outcome.trace.hash(),
            "events": outcome.trace.events.len(),
            "violation": outcome.failure.as_ref().map(|f| json!({
                "kind": f.kind, "invariant": f.invariant, "message": f.message, "signature": f.signature(),
            })),
            "divergence": outcome.divergence,
            "expected": expected.map(|e| json!({"signature": e.signature, "trace_hash": e.trace_hash})),
            "expected_matches": expected_matches,
            "deterministic": determinism.map(|d| d.is_none()),
        });
        println!("{object}");
        return;
    }
    let verdict = match &outcome.failure {
        Some(failure) => format!("FAIL {}: {}", failure.signature(), failure.message),
        None => "PASS".to_owned(),
    };
    println!(
        "scenario {} seed {}: {verdict}",
        outcome.scenario, outcome.seed
    );
    println!(
        "trace hash {} ({} events)",
        outcome.trace.hash(),
        outcome.trace.events.len()
    );
    if let Some(divergence) = &outcome.divergence {
        println!("replay diverged from the tape: {divergence}");
    }
    if let (Some(expected), Some(false)) = (expected, expected_matches) {
        println!(
            "expected {} with trace hash {}: NOT reproduced",
            expected.signature, expected.trace_hash
        );
    }
    match determinism {
        Some(Some(difference)) => println!(
            "NOT deterministic: runs differ first at event {}: {:?} vs {:?}",
            difference.index, difference.left, difference.right
        ),
        Some(None) => println!("deterministic: two runs gave identical traces"),
        None => {}
    }
}

pub(crate) fn shrink(args: ShrinkArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<u8, String> {
    let settings = env::settings()?;
    let tape = load_tape(&args.trace)?;
    let scenario = cli::find(scenarios, &tape.scenario)?;
    let outcome = run_once(
        &scenario,
        &settings,
        tape.seed,
        Source::Replay(tape.clone()),
    );
    let Some(failure) = outcome.failure else {
        return Err(format!(
            "{} does not fail when replayed: nothing to shrink",
            args.trace.display()
        ));
    };
    let (shrunk, replayed) = shrink_tape(&scenario, &settings, &tape, &failure.signature());
    let dir = report::fresh_case_dir(
        &settings.reports,
        scenario.name(),
        &format!("shrink-seed-{}", tape.seed),
    )
    .map_err(|e| format!("cannot create a report directory: {e}"))?;
    let path = report::write_run(&dir, "shrunk", &replayed.tape, &replayed.trace)
        .map_err(|e| format!("cannot save the shrunk tape: {e}"))?;
    let summary = summarize(&shrunk, &path);
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("serialises"));
    } else {
        println!(
            "{}: {} -> {} choices in {:.1}s ({} runs, {})\nreplay: {}",
            failure.signature(),
            summary.original_choices,
            summary.choices,
            summary.seconds,
            summary.candidates,
            if summary.one_minimal {
                "1-minimal"
            } else {
                "time bound hit, not proven 1-minimal"
            },
            summary.replay
        );
    }
    Ok(cli::EXIT_FAILED)
}

fn load_tape(path: &Path) -> Result<Tape, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read trace file {}: {e}", path.display()))?;
    Tape::parse(&text).map_err(|e| format!("trace file {}: {e}", path.display()))
}
