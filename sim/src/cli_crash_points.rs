//! `cargo sim run --crash-points all`: the crash-point report.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::cli;
use crate::crash_points::{self, CrashRun};
use crate::env::Settings;
use crate::report;
use crate::runner::{self, RunRequest};
use crate::scenario::Scenario;
use crate::tape::Source;

#[derive(Debug, Serialize)]
struct CrashViolation {
    seed: u64,
    point: String,
    scope: &'static str,
    signature: String,
    message: String,
    replay: Option<String>,
}

#[derive(Debug, Serialize)]
struct CrashReport {
    scenario: String,
    seeds: String,
    crash_points: usize,
    recovery_crash_points: usize,
    runs: usize,
    covered: usize,
    distinct_failpoints: usize,
    violations: Vec<CrashViolation>,
    seconds: f64,
    runs_per_sec: f64,
}

pub(crate) fn run(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    (first, end): (u64, u64),
    limit: usize,
    json: bool,
) -> Result<u8, String> {
    let started = Instant::now();
    let mut report = CrashReport {
        scenario: scenario.name().to_owned(),
        seeds: format!("{first}..{end}"),
        crash_points: 0,
        recovery_crash_points: 0,
        runs: 0,
        covered: 0,
        distinct_failpoints: 0,
        violations: Vec::new(),
        seconds: 0.0,
        runs_per_sec: 0.0,
    };
    let mut failpoints = BTreeSet::new();
    for seed in first..end {
        let enumeration = crash_points::enumerate(scenario, settings, seed, limit, |crash| {
            if let Some(violation) = violation(scenario, settings, crash) {
                eprintln!(
                    "FAIL crash at {} ({}): {}: {}",
                    crash.point, violation.scope, violation.signature, violation.message
                );
                report.violations.push(violation);
            }
        });
        report.crash_points += enumeration.points;
        report.recovery_crash_points += enumeration.recovery_points;
        report.runs += enumeration.runs.len();
        report.covered += enumeration.runs.iter().filter(|r| r.covered()).count();
        failpoints.extend(enumeration.runs.iter().map(|r| point_name(&r.point)));
    }
    report.distinct_failpoints = failpoints.len();
    report.seconds = started.elapsed().as_secs_f64();
    report.runs_per_sec = report.runs as f64 / report.seconds.max(1e-9);
    print(&report, json);
    Ok(if report.violations.is_empty() {
        cli::EXIT_PASS
    } else {
        cli::EXIT_FAILED
    })
}

fn point_name(point: &str) -> String {
    let last = point.rsplit('+').next().unwrap_or(point);
    crate::faults::site_point(last).unwrap_or(last).to_owned()
}

/// A failed crash run, saved with its tape (replayed strictly so it carries its outcome).
fn violation(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    crash: &CrashRun,
) -> Option<CrashViolation> {
    let failure = crash.outcome.failure.as_ref()?;
    let request = RunRequest {
        seed: crash.seed,
        source: Source::Replay(crash.outcome.tape.clone()),
        limits: settings.limits,
        scratch: settings.scratch.clone(),
        disk: settings.disk,
    };
    let replayed = runner::run(scenario.clone(), request);
    let label = format!("crash-seed-{}", crash.seed);
    let saved =
        report::fresh_case_dir(&settings.reports, scenario.name(), &label).and_then(|dir| {
            report::write_failure(&dir, scenario.name(), crash.seed, failure)?;
            report::write_run(&dir, "crash", &replayed.tape, &replayed.trace)
        });
    Some(CrashViolation {
        seed: crash.seed,
        point: crash.point.clone(),
        scope: match crash.scope {
            0 => "process crash",
            1 => "store crash",
            _ => "power loss",
        },
        signature: failure.signature(),
        message: failure.message.clone(),
        replay: saved.ok().map(|path| report::replay_trace_command(&path)),
    })
}

fn print(report: &CrashReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).expect("serialises"));
        return;
    }
    println!(
        "scenario {} seeds {}: {} crash points ({} more reached only in recovery) at {} distinct failpoints",
        report.scenario, report.seeds, report.crash_points, report.recovery_crash_points, report.distinct_failpoints
    );
    println!(
        "{} runs ({} covered: the crash happened), {} violations, {:.1}s ({:.0} runs/s)",
        report.runs,
        report.covered,
        report.violations.len(),
        report.seconds,
        report.runs_per_sec
    );
    for violation in &report.violations {
        println!(
            "  seed {} crash at {} ({}): {}: {}",
            violation.seed,
            violation.point,
            violation.scope,
            violation.signature,
            violation.message
        );
    }
    if let Some(replay) = report.violations.iter().find_map(|v| v.replay.as_ref()) {
        println!("reproduce: {replay}");
    }
}
