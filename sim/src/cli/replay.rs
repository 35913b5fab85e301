//! `cargo sim replay` and `cargo sim shrink`. Both run in a worker process under the
//! wall-time limit: a run that hangs or aborts is reported as such (the signal named, the
//! timeline up to where it stopped) and exits 1.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::args::{self, ReplayArgs, ShrinkArgs};
use super::print;
use crate::env;
use crate::outcome::{bad_input, Detail, Exit, Result, RunResult};
use crate::scenario::Scenario;
use crate::session::{self, Session, Writes};
use crate::tape::{Expected, Source, Tape};
use crate::trace::{Difference, Trace};

/// Events of an unfinished run shown without `--timeline`.
const LAST_EVENTS: usize = 10;

pub(super) fn replay(args: ReplayArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let settings = env::settings()?;
    let (scenario, seed, source, expected) = match (&args.trace, &args.scenario, &args.seed) {
        (Some(path), _, _) => {
            let tape = load_tape(path)?;
            let scenario = args::find(scenarios, &tape.scenario)?;
            let expected = tape.expected.clone();
            (scenario, tape.seed, Source::Replay(tape), expected)
        }
        (None, Some(name), Some(seed)) => (
            args::find(scenarios, name)?,
            args::parse_seed(seed)?,
            Source::Seed,
            None,
        ),
        _ => return Err(bad_input("give --trace FILE, or --scenario NAME --seed N")),
    };
    let mut session = Session::new(scenario, settings, 1, Writes::Nothing)?;
    let result = session.run(seed, source.clone(), Detail::Full)?;
    let determinism = match args.check_determinism && result.finished() {
        true => {
            let again = session.run(seed, source, Detail::Full)?;
            Some(trace_of(&result).first_difference(&trace_of(&again)))
        }
        false => None,
    };
    let expected_matches = expected.as_ref().filter(|_| result.finished()).map(|e| {
        Some(&e.signature) == Some(&result.signature())
            && result.trace_hash.as_ref() == Some(&e.trace_hash)
    });
    let name = session.scenario().name();
    if args.timeline {
        let trace = trace_of(&result);
        if let Some(tape) = &result.tape {
            print!("{}", crate::report::timeline_header(tape, &trace));
        }
        print!("{}", trace.timeline());
    }
    let verdict = Verdict {
        expected: expected.as_ref(),
        expected_matches,
        determinism: determinism.as_ref(),
    };
    match args.json {
        true => print_json(name, &result, &verdict),
        false => print_text(name, &result, &verdict, args.timeline),
    }
    let clean = result.failure.is_none()
        && result.divergence.is_none()
        && expected_matches != Some(false)
        && !matches!(determinism, Some(Some(_)));
    Ok(if clean { Exit::Pass } else { Exit::Failed })
}

fn trace_of(result: &RunResult) -> Trace {
    result.trace.clone().unwrap_or_default()
}

struct Verdict<'a> {
    expected: Option<&'a Expected>,
    expected_matches: Option<bool>,
    determinism: Option<&'a Option<Difference>>,
}

fn print_json(scenario: &str, result: &RunResult, verdict: &Verdict<'_>) {
    let object = json!({
        "scenario": scenario,
        "seed": result.seed,
        "finished": result.finished(),
        "trace_hash": result.trace_hash,
        "events": result.events,
        "violation": result.failure.as_ref().map(|f| json!({
            "kind": f.kind, "invariant": f.invariant, "message": f.message, "signature": f.signature(),
        })),
        "divergence": result.divergence,
        "expected": verdict.expected.map(|e| json!({"signature": e.signature, "trace_hash": e.trace_hash})),
        "expected_matches": verdict.expected_matches,
        "deterministic": verdict.determinism.map(|d| d.is_none()),
    });
    println!("{object}");
}

fn print_text(scenario: &str, result: &RunResult, verdict: &Verdict<'_>, timeline: bool) {
    let outcome = match &result.failure {
        Some(failure) => format!("FAIL {}: {}", failure.signature(), failure.message),
        None => "PASS".to_owned(),
    };
    println!("scenario {scenario} seed {}: {outcome}", result.seed);
    match &result.trace_hash {
        Some(hash) => println!("trace hash {hash} ({} events)", result.events),
        None => print_unfinished(result, timeline),
    }
    if let Some(divergence) = &result.divergence {
        println!("replay diverged from the tape: {divergence}");
    }
    if let (Some(expected), Some(false)) = (verdict.expected, verdict.expected_matches) {
        println!(
            "expected {} with trace hash {}: NOT reproduced",
            expected.signature, expected.trace_hash
        );
    }
    match verdict.determinism {
        Some(Some(difference)) => println!(
            "NOT deterministic: runs differ first at event {}: {:?} vs {:?}",
            difference.index, difference.left, difference.right
        ),
        Some(None) => println!("deterministic: two runs gave identical traces"),
        None => {}
    }
}

fn print_unfinished(result: &RunResult, timeline: bool) {
    println!(
        "the run did not finish: {} events recorded before it stopped",
        result.events
    );
    if timeline {
        return;
    }
    let trace = trace_of(result);
    let skip = trace.events.len().saturating_sub(LAST_EVENTS);
    let last = Trace {
        events: trace.events[skip..].to_vec(),
    };
    for line in last.timeline().lines() {
        println!("  {line}");
    }
    println!("(the whole partial timeline: add --timeline)");
}

pub(super) fn shrink(args: ShrinkArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let settings = env::settings()?;
    let tape = load_tape(&args.trace)?;
    let scenario = args::find(scenarios, &tape.scenario)?;
    let mut session = Session::new(scenario, settings, 1, Writes::Reports)?;
    let replayed = session.run(tape.seed, Source::Replay(tape.clone()), Detail::Tape)?;
    let Some(failure) = replayed.failure.clone() else {
        return Err(bad_input(format!(
            "{} does not fail when replayed: nothing to shrink",
            args.trace.display()
        )));
    };
    if !failure.rerunnable() {
        print::fail_line(&format!("replaying {}", args.trace.display()), &failure);
        println!(
            "cannot shrink a {}: each candidate would take the wall-time limit",
            failure.kind
        );
        return Ok(Exit::Failed);
    }
    let (shrunk, replayed) = session.shrink(&tape, &failure.signature())?;
    let reports = session.reports();
    let dir = reports.fresh_dir(&format!("shrink-seed-{}", tape.seed))?;
    let (shrunk_tape, trace) = session::full(&replayed);
    let path = reports.save_run(&dir, "shrunk", &shrunk_tape, &trace)?;
    let case = session::shrunk_case(&shrunk, &path);
    if args.json {
        println!("{}", serde_json::to_string(&case).expect("serialises"));
    } else {
        println!(
            "{}: {} -> {} choices in {:.1}s ({} runs, {})\nreplay: {}",
            failure.signature(),
            case.original_choices,
            case.choices,
            case.seconds,
            case.candidates,
            print::minimality(&case),
            case.replay
        );
    }
    Ok(Exit::Failed)
}

fn load_tape(path: &Path) -> Result<Tape> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("cannot read trace file {}: {e}", path.display())))?;
    Tape::parse(&text).map_err(|e| bad_input(format!("trace file {}: {e}", path.display())))
}
