//! `cargo sim run` and `cargo sim hunt`: the scenario's regression tapes replayed first, then
//! a sweep with every failure saved the moment it arrives (a full report directory for the
//! first few of each signature, a line of the index for all), then the first failure of each
//! signature rerun, shrunk, saved and added to the regressions; the summary grouped by
//! signature, in text, JSON, JUnit and Markdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use super::args::{self, HuntArgs, RunArgs};
use super::outputs;
use super::print::{self, ProgressMode, ProgressView};
use crate::coverage;
use crate::env;
use crate::outcome::{bad_input, Exit, Failure, Result};
use crate::regressions;
use crate::report::{self, IndexLine};
use crate::scenario::Scenario;
use crate::session::{NotShrunk, Session, ShrunkCase, Writes};
use crate::summary::{self, Partition, RegressionResult, SeedsAsked, Summary, Violation};
use crate::sweep::{OnFailure, Seeds, SweepResult};
use crate::tape::Tape;

/// What the options of one `run` or `hunt` say, parsed and checked before anything runs.
struct Options {
    seeds: Seeds,
    partition: Option<Partition>,
    jobs: usize,
    max_reports: u64,
    max_failures: Option<u64>,
    progress: ProgressMode,
    regressions: Option<PathBuf>,
}

impl Options {
    fn parse(args: &RunArgs, settings: &env::Settings) -> Result<Options> {
        let partition = args
            .partition
            .as_deref()
            .map(args::parse_partition)
            .transpose()?;
        let seeds = match (args::seeds(args, settings)?, partition) {
            (Seeds::Range { first, end }, Some(part)) => {
                let (first, end) = args::partition_range((first, end), part);
                Seeds::Range { first, end }
            }
            (Seeds::Budget { first, budget }, Some(part)) => Seeds::Budget {
                first: args::partition_start(first, part),
                budget,
            },
            (seeds, None) => seeds,
        };
        let max_failures = match (&args.max_failures, args.fail_fast) {
            (Some(text), _) => Some(args::count("--max-failures", text, false)?),
            (None, true) => Some(1),
            (None, false) => None,
        };
        Ok(Options {
            seeds,
            partition,
            jobs: args::jobs(args.jobs.as_deref(), settings)?,
            max_reports: args::count("--max-reports", &args.max_reports, true)?,
            max_failures,
            progress: ProgressMode::parse(&args.progress).map_err(bad_input)?,
            regressions: (!args.no_regressions).then(|| {
                args.regressions
                    .clone()
                    .unwrap_or_else(|| settings.regressions.clone())
            }),
        })
    }
}

pub(super) fn hunt(hunt: HuntArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let pattern = args::pattern(&hunt.signature)?;
    let mut run_args = hunt.run;
    if run_args.seeds.is_none() && run_args.budget.is_none() {
        run_args.budget = Some("5m".to_owned());
    }
    run(run_args, Some(pattern), scenarios)
}

/// A failure as the sweep saw it: its seed, what broke, its report directory if it got one.
type Case = (u64, Failure, Option<PathBuf>);

pub(super) fn run(
    args: RunArgs,
    hunt: Option<Regex>,
    scenarios: &[Arc<dyn Scenario>],
) -> Result<Exit> {
    let scenario = args::find(scenarios, &args.scenario)?;
    let mut settings = env::settings()?;
    args::strategy(args.strategy.as_deref(), &mut settings)?;
    let options = Options::parse(&args, &settings)?;
    let mut session = Session::new(scenario, settings, options.jobs, Writes::Reports)?;
    banner(&session, &options);
    let regressions = replay_regressions(&mut session, &options, args.quiet)?;
    if regressions.iter().any(RegressionResult::failed) {
        let summary = summarize(
            &session,
            &options,
            &SweepResult {
                done_below: first_seed(options.seeds),
                ..SweepResult::default()
            },
            (Vec::new(), ShrunkTapes::new()),
            regressions,
            hunt.as_ref(),
        );
        eprintln!("a regression tape still fails: the sweep does not run until it passes");
        return finish(&session, &args, &summary, options.seeds, hunt.is_some());
    }
    let wanted = |failure: &Failure| {
        hunt.as_ref()
            .is_none_or(|p| p.is_match(&failure.hunt_text()))
    };
    let reports = session.reports();
    let mut progress = ProgressView::new(
        options.progress,
        args.quiet,
        options.seeds.total(),
        match options.seeds {
            Seeds::Budget { budget, .. } => Some(budget),
            Seeds::Range { .. } => None,
        },
    );
    let progress_cell = std::cell::RefCell::new(&mut progress);
    let mut cases: Vec<Case> = Vec::new();
    let mut per_signature: BTreeMap<String, u64> = BTreeMap::new();
    let mut stopped_early = false;
    let result = session.sweep(
        options.seeds,
        args.trace_hashes,
        |seed, failure| {
            let seen = per_signature.entry(failure.signature()).or_insert(0);
            *seen += 1;
            let dir = match *seen <= options.max_reports {
                true => Some(reports.save_failure(&format!("seed-{seed}"), seed, failure)?),
                false => None,
            };
            reports.append_index(&IndexLine {
                seed,
                signature: failure.signature(),
                message: &failure.message,
                report_dir: dir.as_ref().map(|d| d.display().to_string()),
                replay: report::replay_seed_command(&reports.scenario, seed),
            })?;
            let progress = progress_cell.borrow();
            if dir.is_some() {
                progress.say(&print::fail_text(&format!("seed {seed}"), failure));
            } else if *seen == options.max_reports + 1 {
                progress.say(&format!(
                    "     (more failures of {} are counted, and listed in {}/index.jsonl)",
                    failure.signature(),
                    reports.dir.join(&reports.scenario).display()
                ));
            }
            cases.push((seed, failure.clone(), dir));
            let enough = options
                .max_failures
                .is_some_and(|most| cases.len() as u64 >= most);
            stopped_early |= enough;
            Ok(match (hunt.is_some() && wanted(failure)) || enough {
                true => OnFailure::StopHere,
                false => OnFailure::Continue,
            })
        },
        |p| {
            if args.json_lines {
                let line = serde_json::json!({
                    "seed": p.seed,
                    "outcome": crate::outcome::signature_of(p.failure),
                    "message": p.failure.map(|f| f.message.as_str()),
                    "trace_hash": p.trace_hash,
                });
                println!("{line}");
            }
            progress_cell.borrow_mut().show(&p)
        },
    )?;
    progress.finish();
    // In seed order, so that which case of a signature is shrunk does not depend on how the
    // workers were scheduled.
    cases.sort_by_key(|(seed, _, _)| *seed);
    let shrink = !args.no_shrink && !result.interrupted;
    let finished = finish_cases(
        &mut session,
        cases,
        shrink,
        &wanted,
        options.regressions.as_deref(),
        args.quiet,
    )?;
    let mut summary = summarize(
        &session,
        &options,
        &result,
        finished,
        regressions,
        hunt.as_ref(),
    );
    summary.stopped_early = stopped_early && !result.interrupted;
    finish(&session, &args, &summary, options.seeds, hunt.is_some())
}

/// Prints the summary, writes the machine reports, and decides the exit code.
fn finish(
    session: &Session,
    args: &RunArgs,
    summary: &Summary,
    seeds: Seeds,
    hunting: bool,
) -> Result<Exit> {
    let json = args.json || args.json_lines;
    print_summary(summary, json, seeds);
    if !json {
        print_coverage(session.scenario().as_ref(), summary, args.coverage);
    }
    outputs::write(std::slice::from_ref(summary), &args.report_files, None)?;
    let index = session
        .reports()
        .save_index(std::slice::from_ref(summary))?;
    if summary.failed() && !json {
        println!("html: {}", index.display());
    }
    let uncovered = args.require_coverage && !summary.coverage_gaps.is_empty();
    if uncovered {
        eprintln!(
            "coverage gate: {} declared case(s) never reached (--require-coverage)",
            summary.coverage_gaps.len()
        );
    }
    let regression_failed = summary.regressions.iter().any(RegressionResult::failed);
    Ok(if summary.interrupted {
        Exit::Interrupted
    } else if hunting {
        // A hunt succeeds when it found what it hunted.
        match summary.hunt.as_ref().is_some_and(|h| h.found) && !regression_failed {
            true => Exit::Pass,
            false => Exit::Failed,
        }
    } else if summary.failed() || uncovered {
        Exit::Failed
    } else {
        Exit::Pass
    })
}

fn first_seed(seeds: Seeds) -> u64 {
    match seeds {
        Seeds::Range { first, .. } | Seeds::Budget { first, .. } => first,
    }
}

/// Replays the scenario's regression tapes (if any) and prints one line each.
fn replay_regressions(
    session: &mut Session,
    options: &Options,
    quiet: bool,
) -> Result<Vec<RegressionResult>> {
    let Some(root) = &options.regressions else {
        return Ok(Vec::new());
    };
    let dir = regressions::scenario_dir(root, session.scenario().name());
    let tapes = regressions::load(&dir)?;
    if let Some((path, tape)) = tapes
        .iter()
        .find(|(_, t)| t.scenario != session.scenario().name())
    {
        return Err(bad_input(format!(
            "regression tape {} is of scenario {}, not {}: move it to that scenario's directory",
            path.display(),
            tape.scenario,
            session.scenario().name()
        )));
    }
    if tapes.is_empty() {
        return Ok(Vec::new());
    }
    let results = session.regressions(&tapes)?;
    let failed = results.iter().filter(|r| r.failed()).count();
    for r in results.iter().filter(|r| r.failed()) {
        eprintln!(
            "FAIL regression {}: {}: {} ({})",
            r.tape,
            r.signature,
            r.message.as_deref().unwrap_or(""),
            r.story
        );
    }
    if !quiet || failed > 0 {
        eprintln!(
            "regressions: {} tapes of {} replayed, {}",
            results.len(),
            dir.display(),
            match failed {
                0 => "all pass".to_owned(),
                n => format!("{n} still fail"),
            }
        );
    }
    Ok(results)
}

fn banner(session: &Session, options: &Options) {
    let settings = session.settings();
    let partition = options.partition.map_or_else(String::new, |p| {
        format!(" partition={}/{}", p.index, p.count)
    });
    eprintln!(
        "faultline: scenario={} seeds={}{partition} strategy={} jobs={} time_limit={}s max_steps={} run_wall_limit={}s",
        session.scenario().name(),
        describe(options.seeds),
        settings.strategy,
        options.jobs,
        settings.limits.time_limit.as_secs(),
        settings.limits.max_steps,
        settings.run_wall_limit.as_secs()
    );
    if let (Seeds::Budget { first, .. }, None) = (options.seeds, settings.seed) {
        eprintln!("faultline: a budget run from a random first seed; FAULTLINE_SEED={first} runs the same seeds again");
    }
}

fn describe(seeds: Seeds) -> String {
    match seeds {
        Seeds::Range { first, end } => format!("{first}..{end}"),
        Seeds::Budget { first, budget } => {
            format!("{first}.. for {:.1}s", budget.as_secs_f64())
        }
    }
}

/// The shrunk tape of each signature, by signature: what the regressions get and what tells
/// which signatures are likely one cause.
type ShrunkTapes = BTreeMap<String, Tape>;

/// Shrinks the first failure of each signature, adds it to the regressions and builds the
/// summary rows.
fn finish_cases(
    session: &mut Session,
    cases: Vec<Case>,
    shrink: bool,
    wanted: &dyn Fn(&Failure) -> bool,
    regressions: Option<&std::path::Path>,
    quiet: bool,
) -> Result<(Vec<Violation>, ShrunkTapes)> {
    let mut tapes = ShrunkTapes::new();
    let mut shrunk_signatures = std::collections::BTreeSet::new();
    let mut violations = Vec::new();
    let name = session.scenario().name().to_owned();
    let reports = session.reports();
    for (seed, failure, dir) in cases {
        let first_of_kind = wanted(&failure) && shrunk_signatures.insert(failure.signature());
        let mut shrunk = None;
        let mut report_dir = dir;
        if first_of_kind && shrink && failure.rerunnable() {
            let dir = match report_dir.take() {
                Some(dir) => dir,
                None => reports.save_failure(&format!("seed-{seed}"), seed, &failure)?,
            };
            if let Some((mut case, tape)) = shrink_seed(session, seed, &failure, &dir, quiet)? {
                reports.note_shrunk(&dir, seed, &failure, &case)?;
                if let Some(root) = regressions {
                    case.regression = add_regression(root, &case, &tape, &failure, seed)?;
                }
                tapes.insert(failure.signature(), tape);
                shrunk = Some(case);
            }
            report_dir = Some(dir);
        }
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
            report_dir: report_dir.map(|d| d.display().to_string()),
            shrunk,
        });
    }
    Ok((violations, tapes))
}

/// Adds a shrunk tape to the regression directory with its story; the file's path.
fn add_regression(
    root: &std::path::Path,
    case: &ShrunkCase,
    tape: &Tape,
    failure: &Failure,
    seed: u64,
) -> Result<Option<String>> {
    let story = format!(
        "{}: {} (seed {seed}, strategy {}, shrunk {} -> {} choices)",
        failure.signature(),
        failure.message,
        tape.strategy,
        case.original_choices,
        case.choices
    );
    let added = regressions::save(root, tape, &failure.signature(), &story)?;
    if let Some(path) = &added {
        eprintln!(
            "  added to the regressions: {} (commit it; every run replays it first)",
            path.display()
        );
    }
    Ok(added.map(|p| p.display().to_string()))
}

fn shrink_seed(
    session: &mut Session,
    seed: u64,
    failure: &Failure,
    dir: &std::path::Path,
    quiet: bool,
) -> Result<Option<(ShrunkCase, Tape)>> {
    if !quiet {
        eprintln!(
            "shrinking seed {seed} (budget {}s)...",
            session.settings().shrink_budget.as_secs()
        );
    }
    match session.rerun_and_shrink(seed, failure, dir)? {
        Ok((case, tape)) => {
            if !quiet {
                print::shrunk(&case);
            }
            Ok(Some((case, tape)))
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
    options: &Options,
    result: &SweepResult,
    (violations, shrunk_tapes): (Vec<Violation>, ShrunkTapes),
    regressions: Vec<RegressionResult>,
    hunt: Option<&Regex>,
) -> Summary {
    let found = hunt.map(|pattern| summary::HuntResult {
        pattern: pattern.as_str().to_owned(),
        found: result
            .failures
            .iter()
            .any(|(_, f)| pattern.is_match(&f.hunt_text())),
    });
    let trace_hashes = (!result.trace_hashes.is_empty()).then(|| {
        result
            .trace_hashes
            .iter()
            .map(|(seed, hash)| summary::TraceHash {
                seed: *seed,
                hash: hash.clone(),
            })
            .collect()
    });
    let choices: BTreeMap<String, String> = shrunk_tapes
        .iter()
        .map(|(signature, tape)| {
            let choices: Vec<String> = tape
                .choices()
                .iter()
                .map(|e| format!("{}={}", e.site, e.value))
                .collect();
            (signature.clone(), choices.join(";"))
        })
        .collect();
    let groups = summary::group(&violations, &choices);
    let scenario = session.scenario();
    Summary {
        schema: summary::SCHEMA.to_owned(),
        schema_version: summary::SCHEMA_VERSION,
        scenario: scenario.name().to_owned(),
        invariants: scenario
            .invariants()
            .iter()
            .map(|i| i.name.to_owned())
            .collect(),
        seeds: match options.seeds {
            Seeds::Range { first, end } => SeedsAsked::Range { first, end },
            Seeds::Budget { first, budget } => SeedsAsked::Budget {
                first,
                seconds: budget.as_secs_f64(),
            },
        },
        partition: options.partition,
        strategy: session.settings().strategy.to_string(),
        jobs: options.jobs,
        runs: result.runs,
        done_below: result.done_below,
        interrupted: result.interrupted,
        stopped_early: false,
        seconds: result.elapsed.as_secs_f64(),
        runs_per_sec: result.runs as f64 / result.elapsed.as_secs_f64().max(1e-9),
        failures: violations.len() as u64,
        distinct_signatures: groups.len(),
        groups,
        violations,
        regressions,
        coverage_gaps: result.coverage.gaps(scenario.as_ref()),
        coverage: result.coverage.clone(),
        hunt: found,
        trace_hashes,
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
        outputs::print_text(summary);
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
