//! `cargo sim merge FILE...`: the `run --json` results of a sweep's partitions (one file per
//! CI machine) joined into one summary per scenario, one JUnit file and one Markdown summary.

use std::collections::BTreeMap;

use super::args::MergeArgs;
use super::outputs;
use crate::outcome::{bad_input, environment, Exit, Result};
use crate::summary::{self, Summary};

pub(super) fn merge(args: MergeArgs) -> Result<Exit> {
    let mut by_scenario: BTreeMap<String, Vec<Summary>> = BTreeMap::new();
    for file in &args.files {
        if !file.is_file() {
            return Err(bad_input(format!(
                "{} is not a file: give the files `cargo sim run --json` wrote",
                file.display()
            )));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| environment(format!("cannot read {}: {e}", file.display())))?;
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let part = Summary::parse(line).map_err(|e| {
                bad_input(format!(
                    "{} line {}: {e} (merge reads the output of `cargo sim run --json`)",
                    file.display(),
                    number + 1
                ))
            })?;
            by_scenario
                .entry(part.scenario.clone())
                .or_default()
                .push(part);
        }
    }
    let mut merged = Vec::new();
    for parts in by_scenario.values() {
        merged.push(summary::merge(parts).map_err(bad_input)?);
    }
    if merged.is_empty() {
        return Err(bad_input(
            "the files hold no summaries (write them with `cargo sim run --json`)",
        ));
    }
    for summary in &merged {
        match args.json {
            true => println!("{}", serde_json::to_string(summary).expect("serialises")),
            false => outputs::print_text(summary),
        }
        if summary.interrupted {
            eprintln!(
                "note: a partition of {} was interrupted: its seeds are not all covered",
                summary.scenario
            );
        }
    }
    outputs::write(&merged, &args.report_files, args.html.as_deref())?;
    Ok(match merged.iter().any(Summary::failed) {
        true => Exit::Failed,
        false => Exit::Pass,
    })
}
