//! `cargo sim run` (a sweep), the worker it starts, and the work on each failure found:
//! save at once, rerun to a tape, shrink, save the shrunk tape, print the replay line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use regex::Regex;

use crate::cli::{self, HuntArgs, RunArgs, WorkerArgs};
use crate::env::{self, Settings};
use crate::report;
use crate::runner::{self, RunOutcome, RunRequest};
use crate::scenario::{Failure, FailureKind, Scenario};
use crate::shrink::{self, Shrunk};
use crate::sweep::{self, Seeds};
use crate::tape::{Source, Tape};

/// One failure in the summary.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Violation {
    seed: u64,
    kind: FailureKind,
    invariant: String,
    message: String,
    signature: String,
    replay: String,
    report_dir: Option<String>,
    shrunk: Option<ShrunkSummary>,
}

/// What shrinking one failure gave.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShrunkSummary {
    pub tape: String,
    pub original_choices: usize,
    pub choices: usize,
    pub candidates: u32,
    pub one_minimal: bool,
    pub seconds: f64,
    pub replay: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    hunt: Option<HuntResult>,
}

#[derive(Debug, Serialize)]
struct HuntResult {
    pattern: String,
    found: bool,
}

impl Violation {
    fn failure(&self) -> Failure {
        Failure {
            kind: self.kind,
            invariant: self.invariant.clone(),
            message: self.message.clone(),
        }
    }
}

pub(crate) fn hunt(args: HuntArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<u8, String> {
    let pattern = Regex::new(&args.signature).map_err(|e| {
        format!(
            "--signature {:?} is not a valid regular expression: {e}",
            args.signature
        )
    })?;
    if args.run.seeds.is_none() && args.run.budget.is_none() {
        return run(
            RunArgs {
                budget: Some("5m".to_owned()),
                ..args.run
            },
            Some(pattern),
            scenarios,
        );
    }
    run(args.run, Some(pattern), scenarios)
}

/// What `failure` is matched against when hunting.
fn hunt_text(failure: &Failure) -> String {
    format!("{}: {}", failure.signature(), failure.message)
}

pub(crate) fn run(
    args: RunArgs,
    hunt: Option<Regex>,
    scenarios: &[Arc<dyn Scenario>],
) -> Result<u8, String> {
    let scenario = cli::find(scenarios, &args.scenario)?;
    let settings = env::settings()?;
    if let Some(limit) = &args.crash_points {
        let limit = cli::parse_crash_points(limit)?;
        let (first, end) = cli::parse_seed_range(args.seeds.as_deref().unwrap_or("0..1"))?;
        return crate::cli_crash_points::run(&scenario, &settings, (first, end), limit, args.json);
    }
    let seeds = seeds(&args, &settings)?;
    let jobs = match args.jobs {
        Some(0) => return Err("--jobs 0: expected at least 1 worker".to_owned()),
        Some(jobs) => jobs,
        None => settings.jobs,
    };
    eprintln!(
        "faultline: scenario={} seeds={} jobs={jobs} time_limit={}s max_steps={} run_wall_limit={}s",
        scenario.name(),
        describe(seeds),
        settings.limits.time_limit.as_secs(),
        settings.limits.max_steps,
        settings.run_wall_limit.as_secs()
    );
    let mut cases: Vec<(u64, Failure, Option<PathBuf>)> = Vec::new();
    let mut progress = Progress::default();
    let result = sweep::sweep(
        scenario.name(),
        seeds,
        (jobs, &settings.scratch),
        |seed, failure| {
            let dir = save_at_once(&settings, scenario.name(), seed, failure);
            cases.push((seed, failure.clone(), dir));
            hunt.as_ref()
                .is_some_and(|pattern| pattern.is_match(&hunt_text(failure)))
        },
        |runs, failures, elapsed| progress.show(runs, failures, elapsed),
    )?;
    eprintln!();
    // In seed order, so that which case of a signature is shrunk does not depend on how the
    // workers were scheduled.
    cases.sort_by_key(|(seed, _, _)| *seed);
    let wanted = |failure: &Failure| {
        hunt.as_ref()
            .is_none_or(|p| p.is_match(&hunt_text(failure)))
    };
    let violations = finish_cases(&scenario, &settings, cases, !args.no_shrink, &wanted);
    let found = hunt.as_ref().map(|pattern| HuntResult {
        pattern: pattern.as_str().to_owned(),
        found: violations.iter().any(|v| wanted(&v.failure())),
    });
    let summary = Summary {
        scenario: scenario.name().to_owned(),
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
        hunt: found,
    };
    print_summary(&summary, args.json);
    Ok(if summary.violations.is_empty() {
        cli::EXIT_PASS
    } else {
        cli::EXIT_FAILED
    })
}

fn seeds(args: &RunArgs, settings: &Settings) -> Result<Seeds, String> {
    match (&args.seeds, &args.budget) {
        (Some(range), _) => {
            let (first, end) = cli::parse_seed_range(range)?;
            Ok(Seeds::Range { first, end })
        }
        (None, Some(budget)) => Ok(Seeds::Budget {
            first: settings.seed,
            budget: cli::parse_budget(budget)?,
        }),
        (None, None) => Err("give the seeds to run: --seeds A..B or --budget 60s".to_owned()),
    }
}

fn describe(seeds: Seeds) -> String {
    match seeds {
        Seeds::Range { first, end } => format!("{first}..{end}"),
        Seeds::Budget { first, budget } => format!("{first}.. for {}s", budget.as_secs()),
    }
}

#[derive(Default)]
struct Progress {
    last: Option<Instant>,
}

impl Progress {
    fn show(&mut self, runs: u64, failures: usize, elapsed: Duration) {
        if self
            .last
            .is_some_and(|last| last.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(Instant::now());
        let rate = runs as f64 / elapsed.as_secs_f64().max(1e-9);
        eprint!("\r  {runs} runs  {failures} violations  {rate:.0} runs/s   ");
        let _ = std::io::stderr().flush();
    }
}

/// Writes the failure record the moment it arrives, so no failing seed is ever lost.
fn save_at_once(
    settings: &Settings,
    scenario: &str,
    seed: u64,
    failure: &Failure,
) -> Option<PathBuf> {
    eprintln!(
        "\nFAIL seed {seed}: {}: {}",
        failure.signature(),
        failure.message
    );
    let saved = report::fresh_case_dir(&settings.reports, scenario, &format!("seed-{seed}"))
        .and_then(|dir| report::write_failure(&dir, scenario, seed, failure).map(|()| dir));
    match saved {
        Ok(dir) => Some(dir),
        Err(error) => {
            eprintln!("warning: could not save the failure of seed {seed}: {error}");
            None
        }
    }
}

/// Shrinks the first failure of each signature and builds the summary rows.
fn finish_cases(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    cases: Vec<(u64, Failure, Option<PathBuf>)>,
    shrink_enabled: bool,
    wanted: &dyn Fn(&Failure) -> bool,
) -> Vec<Violation> {
    let mut seen = BTreeSet::new();
    let mut violations = Vec::new();
    for (seed, failure, dir) in cases {
        let first_of_kind = wanted(&failure) && seen.insert(failure.signature());
        let shrunk = match (
            &dir,
            first_of_kind && shrink_enabled && rerunnable(&failure),
        ) {
            (Some(dir), true) => shrink_seed(scenario, settings, seed, &failure, dir),
            _ => None,
        };
        let replay = shrunk.as_ref().map_or_else(
            || report::replay_seed_command(scenario.name(), seed),
            |s| s.replay.clone(),
        );
        violations.push(Violation {
            seed,
            kind: failure.kind,
            invariant: failure.invariant.clone(),
            signature: failure.signature(),
            message: failure.message,
            replay,
            report_dir: dir.map(|d| d.display().to_string()),
            shrunk,
        });
    }
    violations
}

fn rerunnable(failure: &Failure) -> bool {
    !matches!(failure.kind, FailureKind::Hang | FailureKind::Abort)
}

fn shrink_seed(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    seed: u64,
    failure: &Failure,
    dir: &Path,
) -> Option<ShrunkSummary> {
    let original = run_once(scenario, settings, seed, Source::Seed);
    if original.signature() != failure.signature() {
        eprintln!(
            "warning: seed {seed} gave {} when rerun in-process, not {}: not shrunk",
            original.signature(),
            failure.signature()
        );
        return None;
    }
    let _ = report::write_run(dir, "original", &original.tape, &original.trace);
    eprintln!(
        "shrinking seed {seed} ({} choices, budget {}s)...",
        original.tape.choices().len(),
        settings.shrink_budget.as_secs()
    );
    let (shrunk, replayed) = shrink_tape(scenario, settings, &original.tape, &failure.signature());
    let path = report::write_run(dir, "shrunk", &replayed.tape, &replayed.trace).ok()?;
    let summary = summarize(&shrunk, &path);
    eprintln!(
        "  shrunk {} -> {} choices in {:.1}s ({} runs, {})\n  replay: {}",
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
    Some(summary)
}

pub(crate) fn summarize(shrunk: &Shrunk, path: &Path) -> ShrunkSummary {
    ShrunkSummary {
        tape: path.display().to_string(),
        original_choices: shrunk.original_choices,
        choices: shrunk.choices,
        candidates: shrunk.candidates,
        one_minimal: shrunk.one_minimal,
        seconds: shrunk.elapsed.as_secs_f64(),
        replay: report::replay_trace_command(path),
    }
}

/// Shrinks `tape` keeping `signature`, then replays the result strictly so the saved tape
/// carries its own expected outcome and trace hash.
pub(crate) fn shrink_tape(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    tape: &Tape,
    signature: &str,
) -> (Shrunk, RunOutcome) {
    let mut oracle = |candidate: &Tape| {
        let outcome = run_once(
            scenario,
            settings,
            candidate.seed,
            Source::Lenient(candidate.clone()),
        );
        (outcome.signature(), outcome.tape.entries)
    };
    let shrunk = shrink::shrink(
        tape,
        signature,
        settings.shrink_budget,
        scenario.node_groups(),
        &mut oracle,
    );
    let replayed = run_once(
        scenario,
        settings,
        tape.seed,
        Source::Replay(shrunk.tape.clone()),
    );
    (shrunk, replayed)
}

pub(crate) fn run_once(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    seed: u64,
    source: Source,
) -> RunOutcome {
    let request = RunRequest {
        seed,
        source,
        limits: settings.limits,
        scratch: settings.scratch.clone(),
        disk: settings.disk,
    };
    runner::run(scenario.clone(), request)
}

fn print_summary(summary: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(summary).expect("serialises"));
        return;
    }
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
    let shrunk = summary.violations.iter().find(|v| v.shrunk.is_some());
    if let Some(first) = shrunk.or(summary.violations.first()) {
        println!("reproduce: {}", first.replay);
    }
}

pub(crate) fn worker(args: WorkerArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<u8, String> {
    let scenario = cli::find(scenarios, &args.scenario)?;
    let settings = env::settings()?;
    sweep::worker(
        scenario,
        &settings,
        args.first,
        args.end,
        args.stride.max(1),
    );
    Ok(cli::EXIT_PASS)
}
