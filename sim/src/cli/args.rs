//! The options of every verb, and the parsing and range checks of their values: each error
//! names the option and what it accepts.
// Without the simulator only the option structs are used (every verb that runs says so).
#![cfg_attr(not(madsim), allow(dead_code))]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::env::{Settings, MAX_JOBS, MAX_SECONDS};
use crate::outcome::{bad_input, Result};
use crate::scenario::Scenario;
#[cfg(madsim)]
use crate::sweep::Seeds;

/// `run` (and `hunt`).
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario to run (see `cargo sim list`).
    #[arg(long)]
    pub scenario: String,
    /// Seeds to run, `A..B` (B excluded), e.g. `0..1000`.
    #[arg(long, conflicts_with = "budget", allow_hyphen_values = true)]
    pub seeds: Option<String>,
    /// Run seeds for this long instead, e.g. `60s`, `5m`.
    #[arg(long, allow_hyphen_values = true)]
    pub budget: Option<String>,
    /// Worker processes (default FAULTLINE_JOBS or the number of cores).
    #[arg(long, allow_hyphen_values = true)]
    pub jobs: Option<String>,
    /// Crash once at every failpoint hit the run reaches instead of drawing faults: `all`,
    /// or at most N per seed. Seeds default to `0..1`.
    #[arg(long, value_name = "all|N", conflicts_with = "budget")]
    pub crash_points: Option<String>,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
    /// With --json: list every finished seed's trace hash (`trace_hashes`), so that sweeps
    /// on two machines can be compared seed by seed.
    #[arg(long)]
    pub trace_hashes: bool,
    /// Do not shrink failures (they are still saved).
    #[arg(long)]
    pub no_shrink: bool,
    /// How fresh runs search: `random` (default), `pct`, `pct:D` (D change points, 1 to 3)
    /// or `swarm`; overrides FAULTLINE_STRATEGY. Recorded in every tape.
    #[arg(long, value_name = "random|pct[:D]|swarm")]
    pub strategy: Option<String>,
    /// Fail (exit 1) when a sometimes-assertion the scenario declares never held, or a
    /// failpoint its workload must reach was never decided (`cargo sim list` names them).
    #[arg(long)]
    pub require_coverage: bool,
    /// Also print, per failpoint, how often each decision was drawn.
    #[arg(long)]
    pub coverage: bool,
}

/// `hunt`.
#[derive(Args, Debug)]
pub struct HuntArgs {
    /// A regular expression matched against `<kind>:<invariant>: <message>`.
    #[arg(long)]
    pub signature: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The scenario (with --seed).
    #[arg(long, requires = "seed")]
    pub scenario: Option<String>,
    /// The seed to replay (with --scenario).
    #[arg(long, requires = "scenario", allow_hyphen_values = true)]
    pub seed: Option<String>,
    /// A saved tape file.
    #[arg(long, conflicts_with_all = ["scenario", "seed"])]
    pub trace: Option<PathBuf>,
    /// Print the readable timeline of the run (up to where it stopped, for a hang or an
    /// abort).
    #[arg(long)]
    pub timeline: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Run twice and report the first event where the two runs differ.
    #[arg(long)]
    pub check_determinism: bool,
}

/// `shrink`.
#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// The failing tape to shrink.
    #[arg(long)]
    pub trace: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Seeds per scenario (1 to 1,000,000).
    #[arg(long, default_value = "300", allow_hyphen_values = true)]
    pub seeds: String,
}

/// The internal `worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The scenario whose runs it serves.
    #[arg(long)]
    pub scenario: String,
}

/// Finds a scenario by name, or lists the accepted names.
pub fn find(scenarios: &[Arc<dyn Scenario>], name: &str) -> Result<Arc<dyn Scenario>> {
    scenarios
        .iter()
        .find(|s| s.name() == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
            bad_input(format!(
                "unknown scenario {name:?}: accepted scenarios are {}",
                known.join(", ")
            ))
        })
}

/// Parses `--seeds A..B` (B excluded, A < B).
pub fn parse_seed_range(text: &str) -> Result<(u64, u64)> {
    let accepted =
        "expected A..B with whole numbers 0 <= A < B <= 18446744073709551615, e.g. 0..1000";
    let bad = |why: &str| bad_input(format!("--seeds {text:?}{why}: {accepted}"));
    let (first, end) = text.split_once("..").ok_or_else(|| bad(""))?;
    let first: u64 = first.trim().parse().map_err(|_| bad(""))?;
    let end: u64 = end.trim().parse().map_err(|_| bad(""))?;
    if first >= end {
        return Err(bad(" is empty"));
    }
    Ok((first, end))
}

/// Parses `--seed N`.
pub fn parse_seed(text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| {
        bad_input(format!(
            "--seed {text:?}: expected a whole number from 0 to 18446744073709551615, e.g. 42"
        ))
    })
}

/// Parses `--budget`: `90`, `90s`, `5m`, `1h`; at least a second, at most a year.
pub fn parse_budget(text: &str) -> Result<Duration> {
    let accepted = format!(
        "expected a number of seconds with an optional unit s, m or h, from 1s to {MAX_SECONDS}s \
         (a year), e.g. 60s or 5m"
    );
    let bad = |why: &str| bad_input(format!("--budget {text:?}{why}: {accepted}"));
    let trimmed = text.trim();
    let (number, unit) = match trimmed.char_indices().last() {
        Some((index, 's' | 'm' | 'h')) => (&trimmed[..index], &trimmed[index..]),
        _ => (trimmed, "s"),
    };
    let value: u64 = number.parse().map_err(|_| bad(""))?;
    let scale = match unit {
        "m" => 60,
        "h" => 3600,
        _ => 1,
    };
    match value.checked_mul(scale) {
        Some(0) => Err(bad(" is zero")),
        Some(seconds) if seconds <= MAX_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(bad(" is too long")),
    }
}

/// Parses `--crash-points`: `all` or a positive whole number.
pub fn parse_crash_points(text: &str) -> Result<usize> {
    match text.trim() {
        "all" => Ok(usize::MAX),
        number => match number.parse::<usize>() {
            Ok(limit) if limit > 0 => Ok(limit),
            _ => Err(bad_input(format!(
                "--crash-points {text:?}: expected `all` or a whole number above 0"
            ))),
        },
    }
}

/// Applies `--strategy` to the settings (it overrides `FAULTLINE_STRATEGY`).
pub fn strategy(text: Option<&str>, settings: &mut Settings) -> Result<()> {
    if let Some(text) = text {
        settings.strategy = crate::strategy::StrategyKind::parse(text)
            .map_err(|e| bad_input(format!("--strategy: {e}")))?;
    }
    Ok(())
}

/// `--jobs`, or the setting's default.
pub fn jobs(jobs: Option<&str>, settings: &Settings) -> Result<usize> {
    let Some(text) = jobs else {
        return Ok(settings.jobs);
    };
    match text.trim().parse::<u64>() {
        Ok(jobs) if (1..=MAX_JOBS).contains(&jobs) => Ok(jobs as usize),
        _ => Err(bad_input(format!(
            "--jobs {text:?}: expected a whole number of worker processes from 1 to {MAX_JOBS}"
        ))),
    }
}

/// `--seeds` or `--budget` of a sweep.
#[cfg(madsim)]
pub fn seeds(args: &RunArgs, settings: &Settings) -> Result<Seeds> {
    match (&args.seeds, &args.budget) {
        (Some(range), _) => {
            let (first, end) = parse_seed_range(range)?;
            Ok(Seeds::Range { first, end })
        }
        (None, Some(budget)) => Ok(Seeds::Budget {
            first: settings.seed,
            budget: parse_budget(budget)?,
        }),
        (None, None) => Err(bad_input(
            "give the seeds to run: --seeds A..B or --budget 60s",
        )),
    }
}

/// `hunt --signature`: a regular expression.
pub fn pattern(text: &str) -> Result<regex::Regex> {
    regex::Regex::new(text).map_err(|e| {
        bad_input(format!(
            "--signature {text:?} is not a valid regular expression: {e}"
        ))
    })
}

/// `bench --seeds`.
pub fn bench_seeds(text: &str) -> Result<u64> {
    match text.trim().parse::<u64>() {
        Ok(seeds) if (1..=1_000_000).contains(&seeds) => Ok(seeds),
        _ => Err(bad_input(format!(
            "--seeds {text:?}: expected a whole number of seeds from 1 to 1000000"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: std::fmt::Debug>(result: Result<T>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn seed_ranges_parse_and_bad_ones_name_the_option_and_what_is_accepted() {
        assert_eq!(parse_seed_range("0..1000").unwrap(), (0, 1000));
        assert_eq!(
            parse_seed_range("18446744073709551614..18446744073709551615").unwrap(),
            (u64::MAX - 1, u64::MAX)
        );
        for bad in [
            "10",
            "5..5",
            "9..3",
            "a..b",
            "1...3",
            "-1..4",
            "0..18446744073709551616",
        ] {
            let text = message(parse_seed_range(bad));
            assert!(
                text.contains("--seeds") && text.contains("expected A..B"),
                "{bad}: {text}"
            );
        }
    }

    #[test]
    fn budgets_accept_units_and_reject_zero_junk_and_overflow() {
        assert_eq!(parse_budget("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_budget("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_budget("90").unwrap(), Duration::from_secs(90));
        assert!(message(parse_budget("0s")).contains("is zero"));
        assert!(message(parse_budget("fast")).contains("e.g. 60s"));
        for huge in [
            "18446744073709551615",
            "3381903080180084463m",
            "366d",
            "8761h",
        ] {
            assert!(message(parse_budget(huge)).contains("--budget"), "{huge}");
        }
    }

    #[test]
    fn jobs_and_bench_seeds_are_range_checked() {
        let settings = crate::env::settings().unwrap();
        assert_eq!(jobs(Some("2"), &settings).unwrap(), 2);
        for bad in ["0", "-1", "1025", "many"] {
            assert!(
                message(jobs(Some(bad), &settings)).contains("--jobs"),
                "{bad}"
            );
        }
        assert_eq!(bench_seeds("300").unwrap(), 300);
        assert!(message(bench_seeds("0")).contains("from 1 to"));
    }
}
