//! `cargo sim run` and `cargo sim hunt`: a sweep, every failure saved the moment it arrives,
//! then the first failure of each signature rerun, shrunk and saved.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use super::args::{self, HuntArgs, RunArgs};
use super::print::{self, ProgressLine};
use crate::coverage::{self, Coverage};
use crate::env;
use crate::outcome::{Exit, Failure, FailureKind, Result};
use crate::report;
use crate::scenario::Scenario;
use crate::session::{NotShrunk, Session, ShrunkCase, Writes};
use crate::sweep::{OnFailure, Seeds, SweepResult};

/// One failure in the summary.
#[derive(Debug, Clone, Serialize)]
struct Violation {
    seed: u64,
    kind: FailureKind,
    invariant: String,
    message: String,
    signature: String,
    replay: String,
    report_dir: String,
    shrunk: Option<ShrunkCase>,
}

#[derive(Debug, Serialize)]
struct TraceHash {
    seed: u64,
    hash: String,
}

#[derive(Debug, Serialize)]
struct Summary {
    scenario: String,
    seeds: String,
    jobs: usize,
    runs: u64,
    violations: Vec<Violation>,
    distinct_signatures: usize,
    runs_per_sec: f64,
    seconds: f64,
    /// Every seed below this one finished.
    done_below: u64,
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    hunt: Option<HuntResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_hashes: Option<Vec<TraceHash>>,
    strategy: String,
    coverage: Coverage,
    /// What the scenario declares and the sweep never reached.
    coverage_gaps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct HuntResult {
    pattern: String,
    found: bool,
}

pub(super) fn hunt(hunt: HuntArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let pattern = args::pattern(&hunt.signature)?;
    let mut run_args = hunt.run;
    if run_args.seeds.is_none() && run_args.budget.is_none() {
        run_args.budget = Some("5m".to_owned());
    }
    run(run_args, Some(pattern), scenarios)
}

pub(super) fn run(
    args: RunArgs,
    hunt: Option<Regex>,
    scenarios: &[Arc<dyn Scenario>],
) -> Result<Exit> {
    let scenario = args::find(scenarios, &args.scenario)?;
    let mut settings = env::settings()?;
    args::strategy(args.strategy.as_deref(), &mut settings)?;
    let seeds = args::seeds(&args, &settings)?;
    let jobs = args::jobs(args.jobs.as_deref(), &settings)?;
    let mut session = Session::new(scenario, settings, jobs, Writes::Reports)?;
    banner(&session, seeds, jobs);
    let wanted = |failure: &Failure| {
        hunt.as_ref()
            .is_none_or(|p| p.is_match(&failure.hunt_text()))
    };
    let reports = session.reports();
    let progress = RefCell::new(ProgressLine::new());
    let mut cases: Vec<(u64, Failure, PathBuf)> = Vec::new();
    let result = session.sweep(
        seeds,
        args.trace_hashes,
        |seed, failure| {
            progress.borrow_mut().clear();
            print::fail_line(&format!("seed {seed}"), failure);
            let dir = reports.save_failure(&format!("seed-{seed}"), seed, failure)?;
            cases.push((seed, failure.clone(), dir));
            let stop = hunt.is_some() && wanted(failure);
            Ok(if stop {
                OnFailure::StopHere
            } else {
                OnFailure::Continue
            })
        },
        |p| progress.borrow_mut().show(p),
    )?;
    progress.borrow_mut().clear();
    // In seed order, so that which case of a signature is shrunk does not depend on how the
    // workers were scheduled.
    cases.sort_by_key(|(seed, _, _)| *seed);
    let shrink = !args.no_shrink && !result.interrupted;
    let violations = finish_cases(&mut session, cases, shrink, &wanted)?;
    let summary = summarize(
        &session,
        seeds,
        jobs,
        &result,
        violations,
        hunt.as_ref(),
        &wanted,
    );
    print_summary(&summary, args.json, seeds);
    if !args.json {
        print_coverage(session.scenario().as_ref(), &summary, args.coverage);
    }
    let uncovered = args.require_coverage && !summary.coverage_gaps.is_empty();
    if uncovered {
        eprintln!(
            "coverage gate: {} declared case(s) never reached (--require-coverage)",
            summary.coverage_gaps.len()
        );
    }
    Ok(if result.interrupted {
        Exit::Interrupted
    } else if summary.violations.is_empty() && !uncovered {
        Exit::Pass
    } else {
        Exit::Failed
    })
}

fn banner(session: &Session, seeds: Seeds, jobs: usize) {
    let settings = session.settings();
    eprintln!(
        "faultline: scenario={} seeds={} strategy={} jobs={jobs} time_limit={}s max_steps={} run_wall_limit={}s",
        session.scenario().name(),
        describe(seeds),
        settings.strategy,
        settings.limits.time_limit.as_secs(),
        settings.limits.max_steps,
        settings.run_wall_limit.as_secs()
    );
}

fn describe(seeds: Seeds) -> String {
    match seeds {
        Seeds::Range { first, end } => format!("{first}..{end}"),
        Seeds::Budget { first, budget } => format!("{first}.. for {}s", budget.as_secs()),
    }
}

/// Shrinks the first failure of each signature and builds the summary rows.
fn finish_cases(
    session: &mut Session,
    cases: Vec<(u64, Failure, PathBuf)>,
    shrink: bool,
    wanted: &dyn Fn(&Failure) -> bool,
) -> Result<Vec<Violation>> {
    let mut seen = BTreeSet::new();
    let mut violations = Vec::new();
    let name = session.scenario().name().to_owned();
    for (seed, failure, dir) in cases {
        let first_of_kind = wanted(&failure) && seen.insert(failure.signature());
        let shrunk = match first_of_kind && shrink && failure.rerunnable() {
            true => shrink_seed(session, seed, &failure, &dir)?,
            false => None,
        };
        let replay = shrunk.as_ref().map_or_else(
            || report::replay_seed_command(&name, seed),
            |s| s.replay.clone(),
        );
        violations.push(Violation {
            seed,
            kind: failure.kind,
            invariant: failure.invariant.clone(),
            signature: failure.signature(),
            message: failure.message,
            replay,
            report_dir: dir.display().to_string(),
            shrunk,
        });
    }
    Ok(violations)
}

fn shrink_seed(
    session: &mut Session,
    seed: u64,
    failure: &Failure,
    dir: &std::path::Path,
) -> Result<Option<ShrunkCase>> {
    eprintln!(
        "shrinking seed {seed} (budget {}s)...",
        session.settings().shrink_budget.as_secs()
    );
    match session.rerun_and_shrink(seed, failure, dir)? {
        Ok(case) => {
            print::shrunk(&case);
            Ok(Some(case))
        }
        Err(NotShrunk::Rerun(signature)) => {
            eprintln!(
                "warning: seed {seed} gave {signature} when rerun, not {}: not shrunk",
                failure.signature()
            );
            Ok(None)
        }
    }
}

fn summarize(
    session: &Session,
    seeds: Seeds,
    jobs: usize,
    result: &SweepResult,
    violations: Vec<Violation>,
    hunt: Option<&Regex>,
    wanted: &dyn Fn(&Failure) -> bool,
) -> Summary {
    let found = hunt.map(|pattern| HuntResult {
        pattern: pattern.as_str().to_owned(),
        found: result.failures.iter().any(|(_, f)| wanted(f)),
    });
    let trace_hashes = (!result.trace_hashes.is_empty()).then(|| {
        result
            .trace_hashes
            .iter()
            .map(|(seed, hash)| TraceHash {
                seed: *seed,
                hash: hash.clone(),
            })
            .collect()
    });
    Summary {
        scenario: session.scenario().name().to_owned(),
        seeds: describe(seeds),
        jobs,
        runs: result.runs,
        distinct_signatures: violations
            .iter()
            .map(|v| &v.signature)
            .collect::<BTreeSet<_>>()
            .len(),
        violations,
        runs_per_sec: result.runs as f64 / result.elapsed.as_secs_f64().max(1e-9),
        seconds: result.elapsed.as_secs_f64(),
        done_below: result.done_below,
        interrupted: result.interrupted,
        hunt: found,
        trace_hashes,
        strategy: session.settings().strategy.to_string(),
        coverage_gaps: result.coverage.gaps(session.scenario().as_ref()),
        coverage: result.coverage.clone(),
    }
}

/// The coverage section of the text summary: what the scenario declares and how often it
/// was reached, the faults that fired, and (with `--coverage`) every failpoint's decisions.
fn print_coverage(scenario: &dyn Scenario, summary: &Summary, detail: bool) {
    let coverage = &summary.coverage;
    let expected = coverage::expected_points(scenario);
    let reached = expected.iter().filter(|p| coverage.reached(p) > 0).count();
    let faults: Vec<String> = coverage
        .faults
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    println!(
        "coverage: {reached} of {} expected failpoints decided, {} failpoints in all; faults: {}; \
         {} preemptions at {} statement boundaries",
        expected.len(),
        coverage.decisions.len(),
        if faults.is_empty() {
            "none".to_owned()
        } else {
            faults.join(", ")
        },
        coverage.preemptions,
        coverage.boundaries
    );
    for doc in scenario.sometimes() {
        let runs = coverage.sometimes.get(doc.name).copied().unwrap_or(0);
        println!("  sometimes {}: {runs} of {} runs", doc.name, coverage.runs);
    }
    if detail {
        for (point, kinds) in &coverage.decisions {
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("  {point}: {}", kinds.join(", "));
        }
    }
    for gap in &summary.coverage_gaps {
        println!("  NOT reached: {gap}");
    }
}

fn print_summary(summary: &Summary, json: bool, seeds: Seeds) {
    if json {
        println!("{}", serde_json::to_string(summary).expect("serialises"));
    } else {
        print_text(summary);
    }
    if summary.interrupted {
        let rest = match seeds {
            Seeds::Range { end, .. } => format!("--seeds {}..{end}", summary.done_below),
            Seeds::Budget { .. } => format!("FAULTLINE_SEED={} --budget ...", summary.done_below),
        };
        eprintln!(
            "interrupted: every seed below {} finished ({} runs); failures so far are saved; \
             continue with {rest}",
            summary.done_below, summary.runs
        );
    }
}

fn print_text(summary: &Summary) {
    println!(
        "scenario {}: {} runs, {} violations ({} distinct), {:.0} runs/s over {:.1}s with {} jobs",
        summary.scenario,
        summary.runs,
        summary.violations.len(),
        summary.distinct_signatures,
        summary.runs_per_sec,
        summary.seconds,
        summary.jobs
    );
    for violation in &summary.violations {
        println!(
            "  seed {}: {}: {}",
            violation.seed, violation.signature, violation.message
        );
    }
    if let Some(hunt) = &summary.hunt {
        let verdict = if hunt.found { "found" } else { "NOT found" };
        println!("hunt for /{}/: {verdict}", hunt.pattern);
    }
    if let Some(hashes) = &summary.trace_hashes {
        for entry in hashes {
            println!("  trace seed {} {}", entry.seed, entry.hash);
        }
    }
    let shrunk = summary.violations.iter().find(|v| v.shrunk.is_some());
    if let Some(first) = shrunk.or(summary.violations.first()) {
        println!("reproduce: {}", first.replay);
    }
}
