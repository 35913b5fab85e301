//! `cargo sim regress [PATH...]`: replay every regression tape, expecting each to pass. Exits
//! 0 once every bug they record is fixed, 1 while one still fails; strict replay (`replay
//! --trace`) keeps its meaning for determinism.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::args::{self, RegressArgs};
use super::outputs;
use crate::env;
use crate::outcome::{bad_input, Exit, Result};
use crate::regressions;
use crate::scenario::Scenario;
use crate::session::{Session, Writes};
use crate::summary::Summary;
use crate::tape::Tape;

pub(super) fn regress(args: RegressArgs, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    let settings = env::settings()?;
    let jobs = args::jobs(args.jobs.as_deref(), &settings)?;
    let paths = match args.paths.is_empty() {
        true => vec![settings.regressions.clone()],
        false => args.paths.clone(),
    };
    let mut by_scenario: BTreeMap<String, Vec<(PathBuf, Tape)>> = BTreeMap::new();
    for path in &paths {
        if !path.exists() {
            return Err(bad_input(format!(
                "{} does not exist: give regression directories or *.tape.json files (default \
                 FAULTLINE_REGRESSIONS or ./regressions)",
                path.display()
            )));
        }
        for (file, tape) in regressions::load(path)? {
            by_scenario
                .entry(tape.scenario.clone())
                .or_default()
                .push((file, tape));
        }
    }
    if by_scenario.is_empty() {
        eprintln!(
            "regress: no *.tape.json under {}: nothing to replay",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut summaries = Vec::new();
    for (name, tapes) in by_scenario {
        let scenario = args::find(scenarios, &name).map_err(|e| {
            bad_input(format!(
                "{e} (named by regression tape {})",
                tapes[0].0.display()
            ))
        })?;
        let invariants = scenario
            .invariants()
            .iter()
            .map(|i| i.name.to_owned())
            .collect();
        let mut session = Session::new(scenario, settings.clone(), jobs, Writes::Nothing)?;
        let started = std::time::Instant::now();
        let results = session.regressions(&tapes)?;
        for r in &results {
            match r.failed() {
                true => eprintln!(
                    "FAIL {}: {}: {} ({})",
                    r.tape,
                    r.signature,
                    r.message.as_deref().unwrap_or(""),
                    r.story
                ),
                false => eprintln!("pass {}", r.tape),
            }
        }
        let mut summary = Summary::empty(&name, invariants, &settings.strategy.to_string());
        summary.jobs = jobs;
        summary.seconds = started.elapsed().as_secs_f64();
        summary.regressions = results;
        summaries.push(summary);
    }
    let failed: usize = summaries
        .iter()
        .map(|s| s.regressions.iter().filter(|r| r.failed()).count())
        .sum();
    let total: usize = summaries.iter().map(|s| s.regressions.len()).sum();
    if args.json {
        for summary in &summaries {
            println!("{}", serde_json::to_string(summary).expect("serialises"));
        }
    } else {
        println!(
            "regress: {total} tapes replayed, {failed} still fail{}",
            if failed == 0 {
                ""
            } else {
                " (their bugs are not fixed)"
            }
        );
    }
    outputs::write(&summaries, &args.report_files, None)?;
    Ok(if failed == 0 {
        Exit::Pass
    } else {
        Exit::Failed
    })
}
