//! `cargo sim run --crash-points all` (and `hunt --crash-points`): the crash-point report.
//! Every failed run, the seed's own and fault-free runs included, is a violation, saved
//! with a tape that replays it strictly.

use std::collections::BTreeSet;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use super::args::{self, RunArgs};
use super::print;
use crate::crash_points::{CrashRun, Point};
use crate::env;
use crate::outcome::{Detail, Error, Exit, Failure, Result};
use crate::report;
use crate::scenario::Scenario;
use crate::session::{self, Session, Writes};
use crate::tape::Source;

#[derive(Debug, Serialize)]
struct CrashViolation {
    seed: u64,
    point: String,
    scope: Option<&'static str>,
    signature: String,
    invariant: String,
    message: String,
    report_dir: String,
    replay: Option<String>,
    /// A hunt's finding, shrunk to a 1-minimal tape (unless `--no-shrink`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shrunk: Option<crate::summary::ShrunkCase>,
}

#[derive(Debug, Serialize)]
struct CrashReport {
    scenario: String,
    seeds: String,
    crash_points: usize,
    second_level_crash_points: usize,
    boundary_crash_points: usize,
    runs: usize,
    schedule_runs: usize,
    error_runs: usize,
    covered: usize,
    distinct_failpoints: usize,
    violations: Vec<CrashViolation>,
    seconds: f64,
    runs_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    hunt: Option<String>,
    found: bool,
}

pub(super) fn run(
    args: RunArgs,
    hunt: Option<Regex>,
    scenarios: &[Arc<dyn Scenario>],
) -> Result<Exit> {
    let scenario = args::find(scenarios, &args.scenario)?;
    let settings = env::settings()?;
    let bounds = crate::crash_points::Bounds {
        limit: args::parse_crash_points(args.crash_points.as_deref().unwrap_or("all"))?,
        schedules: args::parse_crash_schedules(args.crash_schedules.as_deref().unwrap_or("0"))?,
    };
    let (first, end) = args::parse_seed_range(args.seeds.as_deref().unwrap_or("0..1"))?;
    let jobs = args::jobs(args.jobs.as_deref(), &settings)?;
    let mut session = Session::new(scenario, settings, jobs, Writes::Reports)?;
    let mut violations = Vec::new();
    let mut failpoints = BTreeSet::new();
    let mut found = false;
    let enumerated = session.crash_points((first, end), bounds, |session, run| {
        failpoints.extend(run.point.failpoint());
        let Some(failure) = &run.result.failure else {
            return Ok(false);
        };
        let matched = hunt
            .as_ref()
            .is_none_or(|p| p.is_match(&failure.hunt_text()));
        let hunted = hunt.is_some() && matched;
        found |= hunted;
        violations.push(save(session, run, failure, hunted && !args.no_shrink)?);
        Ok(hunted)
    });
    let (enumeration, seconds) = match enumerated {
        Ok(done) => done,
        Err(Error::Interrupted) => {
            eprintln!(
                "interrupted: {} violations found so far are saved above",
                violations.len()
            );
            return Ok(Exit::Interrupted);
        }
        Err(error) => return Err(error),
    };
    let report = CrashReport {
        scenario: session.scenario().name().to_owned(),
        seeds: format!("{first}..{end}"),
        crash_points: enumeration.points,
        second_level_crash_points: enumeration.second_points,
        boundary_crash_points: enumeration.boundary_points,
        runs: enumeration.runs,
        schedule_runs: enumeration.schedule_runs,
        error_runs: enumeration.error_runs,
        covered: enumeration.covered,
        distinct_failpoints: failpoints.len(),
        violations,
        seconds,
        runs_per_sec: enumeration.runs as f64 / seconds.max(1e-9),
        hunt: hunt.as_ref().map(|p| p.as_str().to_owned()),
        found,
    };
    print_report(&report, args.json);
    // A hunt succeeds when it found what it hunted; a run when nothing broke.
    let passed = match report.hunt {
        Some(_) => report.found,
        None => report.violations.is_empty(),
    };
    Ok(if passed { Exit::Pass } else { Exit::Failed })
}

/// Saves a failed run: `failure.json`, and (for a run that finished) its tape replayed
/// strictly so that it carries its outcome; with `shrink`, that tape shrunk too.
fn save(
    session: &mut Session,
    run: &CrashRun,
    failure: &Failure,
    shrink: bool,
) -> Result<CrashViolation> {
    let scope = run.fault.map(|s| s.name());
    let what = match scope {
        Some(scope) => format!("seed {} {scope} at {}", run.seed, run.point),
        None => format!("seed {} ({})", run.seed, run.point),
    };
    print::fail_line(&what, failure);
    let reports = session.reports();
    let dir = reports.save_failure(&format!("crash-seed-{}", run.seed), run.seed, failure)?;
    let source = match (&run.point, &run.result.tape) {
        (Point::SeedRun, _) => Some(Source::Seed),
        (_, Some(tape)) => Some(Source::Replay(tape.clone())),
        (_, None) => None,
    };
    let (mut replay, mut shrunk) = (None, None);
    if let Some(source) = source.filter(|_| failure.rerunnable()) {
        let replayed = session.run(run.seed, source, Detail::Full)?;
        let (tape, trace) = session::full(&replayed);
        let path = reports.save_run(&dir, "crash", &tape, &trace)?;
        replay = Some(report::replay_trace_command(&path));
        if shrink {
            let (found, replayed) = session.shrink(&tape, &failure.signature())?;
            let (tape, trace) = session::full(&replayed);
            let path = reports.save_run(&dir, "shrunk", &tape, &trace)?;
            let case = session::shrunk_case(&found, &path);
            eprintln!(
                "  shrunk {} -> {} choices ({} runs): {}",
                case.original_choices, case.choices, case.candidates, case.replay
            );
            shrunk = Some(case);
        }
    }
    Ok(CrashViolation {
        seed: run.seed,
        point: run.point.to_string(),
        scope,
        signature: failure.signature(),
        invariant: failure.invariant.clone(),
        message: failure.message.clone(),
        report_dir: dir.display().to_string(),
        replay,
        shrunk,
    })
}

fn print_report(report: &CrashReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).expect("serialises"));
        return;
    }
    println!(
        "scenario {} seeds {}: {} crash points at {} distinct failpoints, {} statement \
         boundaries, {} more points reached only after a crash, before the restarted node was \
         ready",
        report.scenario,
        report.seeds,
        report.crash_points,
        report.distinct_failpoints,
        report.boundary_crash_points,
        report.second_level_crash_points,
    );
    println!(
        "{} runs ({} crashing, {} injecting the point's error, {} of them under another \
         schedule; {} covered: the fault happened), {} violations, {:.1}s ({:.0} runs/s)",
        report.runs,
        report.runs - report.error_runs,
        report.error_runs,
        report.schedule_runs,
        report.covered,
        report.violations.len(),
        report.seconds,
        report.runs_per_sec
    );
    for violation in &report.violations {
        let scope = violation
            .scope
            .map_or_else(String::new, |s| format!(" ({s})"));
        println!(
            "  seed {} at {}{scope}: {}: {}",
            violation.seed, violation.point, violation.signature, violation.message
        );
    }
    if let Some(pattern) = &report.hunt {
        let verdict = if report.found { "found" } else { "NOT found" };
        println!("hunt for /{pattern}/: {verdict}");
    }
    if let Some(replay) = report.violations.iter().find_map(|v| v.replay.as_ref()) {
        println!("reproduce: {replay}");
    }
}
