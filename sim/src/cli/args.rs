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
    /// Seeds to run: `A..B` (B excluded), `A..=B`, or `N` for `0..N`.
    #[arg(long, conflicts_with = "budget", allow_hyphen_values = true)]
    pub seeds: Option<String>,
    /// Run seeds for this long instead, e.g. `500ms`, `60s`, `1m30s`, `2h`.
    #[arg(long, allow_hyphen_values = true)]
    pub budget: Option<String>,
    /// Worker processes (default FAULTLINE_JOBS or the number of cores).
    #[arg(short = 'j', long, allow_hyphen_values = true)]
    pub jobs: Option<String>,
    /// Crash once at every failpoint hit the run reaches instead of drawing faults: `all`,
    /// or at most N per seed. Seeds default to `0..1`.
    #[arg(long, value_name = "all|N", conflicts_with = "budget")]
    pub crash_points: Option<String>,
    /// With --crash-points: also try each failpoint hit under K other schedules (its fault
    /// with one preemption added at a drawn statement boundary). Default 0.
    #[arg(long, value_name = "K", requires = "crash_points")]
    pub crash_schedules: Option<String>,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
    /// Print a JSON line per finished seed as it finishes (seed, outcome, message, trace
    /// hash), then the summary's JSON as the last line.
    #[arg(long)]
    pub json_lines: bool,
    /// With --json: list every finished seed's trace hash (`trace_hashes`), so that sweeps
    /// on two machines can be compared seed by seed.
    #[arg(long)]
    pub trace_hashes: bool,
    /// Do not shrink failures (they are still saved).
    #[arg(long)]
    pub no_shrink: bool,
    /// How fresh runs search: `random`, `pct`, `pct:D` (D change points, 1 to 3; `pct:1` is
    /// the default) or `swarm`; overrides FAULTLINE_STRATEGY. Recorded in every tape.
    #[arg(long, value_name = "random|pct[:D]|swarm")]
    pub strategy: Option<String>,
    /// Fail (exit 1) when a sometimes-assertion the scenario declares never held, or a
    /// failpoint its workload must reach was never decided (`cargo sim list` names them).
    #[arg(long)]
    pub require_coverage: bool,
    /// Also print, per failpoint, how often each decision was drawn.
    #[arg(long)]
    pub coverage: bool,
    /// Full report directories (tapes, timelines) for the first K failures of each
    /// signature; every other failure is one line of the scenario's `index.jsonl`.
    #[arg(
        long,
        value_name = "K",
        default_value = "3",
        allow_hyphen_values = true
    )]
    pub max_reports: String,
    /// Stop at the first failure (the seeds below it still finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Stop after N failed runs.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "fail_fast",
        allow_hyphen_values = true
    )]
    pub max_failures: Option<String>,
    /// Progress on stderr: `auto` (a bar on a terminal, a line every 10s in a log), `always`
    /// (even with --quiet) or `never`.
    #[arg(long, value_name = "auto|always|never", default_value = "auto")]
    pub progress: String,
    /// Print only the summary: no progress, no line per failure.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub report_files: ReportFiles,
    /// Run only share k of n of the seeds (`1/4` ... `4/4`), for splitting a sweep across
    /// CI machines; `merge` joins their `--json` results.
    #[arg(long, value_name = "k/n")]
    pub partition: Option<String>,
    /// The regression directory: its `<scenario>/` tapes are replayed before the sweep, and
    /// every new shrunk failure is added there (default FAULTLINE_REGRESSIONS or
    /// `regressions`).
    #[arg(long, value_name = "DIR")]
    pub regressions: Option<PathBuf>,
    /// Neither replay nor add regression tapes.
    #[arg(long, conflicts_with = "regressions")]
    pub no_regressions: bool,
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

/// The files `run`, `regress` and `merge` also write their result to.
#[derive(Args, Debug, Default)]
pub struct ReportFiles {
    /// Also write the result as JUnit XML to FILE (a suite per scenario, a case per
    /// invariant and per regression tape).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary to FILE (it is appended to $GITHUB_STEP_SUMMARY
    /// whenever that is set).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
}

/// `regress`.
#[derive(Args, Debug)]
pub struct RegressArgs {
    /// Regression directories or tape files (default FAULTLINE_REGRESSIONS or
    /// `regressions`); directories are searched for `*.tape.json`.
    pub paths: Vec<PathBuf>,
    /// Worker processes (default FAULTLINE_JOBS or the number of cores).
    #[arg(short = 'j', long, allow_hyphen_values = true)]
    pub jobs: Option<String>,
    /// Print one JSON object per scenario (the `run --json` summary).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report_files: ReportFiles,
}

/// `merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The `run --json` outputs of the partitions (one summary per file, any scenarios).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the merged summaries as JSON (one object per scenario, one per line).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub report_files: ReportFiles,
    /// Also write an HTML index to FILE, linking each signature's failure page where its
    /// report directory is at hand (the partitions' reports downloaded beside it).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
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

/// `test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Run only the tests whose names contain FILTER (cargo test's filter), in every suite.
    pub filter: Option<String>,
}

/// `list`.
#[derive(Args, Debug)]
pub struct ListArgs {
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

/// Parses `--seeds`: `A..B` (B excluded), `A..=B` (B included) or `N` (the same as `0..N`).
pub fn parse_seed_range(text: &str) -> Result<(u64, u64)> {
    let accepted = "expected A..B (B excluded), A..=B (B included) or N (0..N), with whole \
                    numbers from 0 to 18446744073709551615, e.g. 0..1000";
    let bad = |why: &str| bad_input(format!("--seeds {text:?}{why}: {accepted}"));
    let number = |part: &str| part.trim().parse::<u64>().map_err(|_| bad(""));
    let (first, end) = match text.split_once("..") {
        None => (0, number(text)?),
        Some((first, last)) => match last.strip_prefix('=') {
            Some(last) => {
                let last = number(last)?;
                let end = last
                    .checked_add(1)
                    .ok_or_else(|| bad(" ends past the last seed"))?;
                (number(first)?, end)
            }
            None => (number(first)?, number(last)?),
        },
    };
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

/// Parses `--budget`: a number of seconds (`90`) or numbers with units `ms`, `s`, `m`, `h`
/// (`500ms`, `90s`, `1m30s`, `2h`); above zero, at most a year.
pub fn parse_budget(text: &str) -> Result<Duration> {
    let accepted = format!(
        "expected a number of seconds, or numbers with units ms, s, m or h (e.g. 500ms, 60s, \
         1m30s, 2h), above zero and at most {MAX_SECONDS}s (a year)"
    );
    let bad = |why: &str| bad_input(format!("--budget {text:?}{why}: {accepted}"));
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return match seconds {
            0 => Err(bad(" is zero")),
            s if s <= MAX_SECONDS => Ok(Duration::from_secs(s)),
            _ => Err(bad(" is too long")),
        };
    }
    let mut millis: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad(""));
        }
        let value: u128 = rest[..digits].parse().map_err(|_| bad(" is too long"))?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let scale: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad("")),
        };
        rest = &rest[unit_len..];
        millis = value
            .checked_mul(scale)
            .and_then(|m| millis.checked_add(m))
            .ok_or_else(|| bad(" is too long"))?;
    }
    match millis {
        0 => Err(bad(" is zero")),
        m if m <= u128::from(MAX_SECONDS) * 1_000 => Ok(Duration::from_millis(m as u64)),
        _ => Err(bad(" is too long")),
    }
}

/// Parses `--crash-schedules`: a whole number from 0 to [`MAX_CRASH_SCHEDULES`].
pub fn parse_crash_schedules(text: &str) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(count) if count <= MAX_CRASH_SCHEDULES => Ok(count),
        _ => Err(bad_input(format!(
            "--crash-schedules {text:?}: expected a whole number from 0 to {MAX_CRASH_SCHEDULES}"
        ))),
    }
}

/// The most other schedules `--crash-schedules` tries per point.
pub const MAX_CRASH_SCHEDULES: usize = 64;

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
            first: settings.seed.unwrap_or_else(random_seed),
            budget: parse_budget(budget)?,
        }),
        (None, None) => Err(bad_input(
            "give the seeds to run: --seeds A..B or --budget 60s",
        )),
    }
}

/// A positive count option (`--max-reports`, `--max-failures`); `zero_ok` lets 0 through.
pub fn count(option: &str, text: &str, zero_ok: bool) -> Result<u64> {
    let least = u64::from(!zero_ok);
    match text.trim().parse::<u64>() {
        Ok(n) if n >= least => Ok(n),
        _ => Err(bad_input(format!(
            "{option} {text:?}: expected a whole number from {least} up"
        ))),
    }
}

/// Parses `--partition k/n` (1 <= k <= n <= 1024).
pub fn parse_partition(text: &str) -> Result<crate::summary::Partition> {
    let bad = || {
        bad_input(format!(
            "--partition {text:?}: expected k/n with whole numbers 1 <= k <= n <= 1024, e.g. 2/4"
        ))
    };
    let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
    let (index, count): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if index == 0 || index > count || count > 1024 {
        return Err(bad());
    }
    Ok(crate::summary::Partition { index, count })
}

/// This partition's share of `first..end`: the k-th of n contiguous slices, as even as the
/// division allows (a slice may be empty when there are fewer seeds than partitions).
pub fn partition_range((first, end): (u64, u64), part: crate::summary::Partition) -> (u64, u64) {
    let span = u128::from(end - first);
    let at = |k: u64| first + (span * u128::from(k) / u128::from(part.count)) as u64;
    (at(part.index - 1), at(part.index))
}

/// This partition's first seed of a budget run: the k-th of n equal blocks of the seed
/// space after `first`, so that the machines never run a seed twice.
pub fn partition_start(first: u64, part: crate::summary::Partition) -> u64 {
    first.wrapping_add((u64::MAX / part.count) * (part.index - 1))
}

/// A budget run's first seed when FAULTLINE_SEED does not pin it: drawn from the OS, so
/// that successive nightly runs cover new seeds (the banner prints it; it feeds no trace).
#[cfg(madsim)]
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    // Below 2^53, so that the seed survives tools that read JSON numbers as doubles.
    hasher.finish() >> 11
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
        assert_eq!(parse_seed_range("3000").unwrap(), (0, 3000));
        assert_eq!(parse_seed_range("5..=9").unwrap(), (5, 10));
        assert_eq!(parse_seed_range("7..=7").unwrap(), (7, 8));
        for bad in [
            "0",
            "..",
            "3..=18446744073709551615",
            "9..=3",
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
        assert_eq!(parse_budget("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_budget("1h2m3s4ms").unwrap(),
            Duration::from_millis(3_723_004)
        );
        assert!(message(parse_budget("0s")).contains("is zero"));
        assert!(message(parse_budget("0ms")).contains("is zero"));
        for bad in ["5x", "m5", "1.5s", "-3s", "5 s", ""] {
            assert!(message(parse_budget(bad)).contains("e.g. 500ms"), "{bad}");
        }
        assert!(message(parse_budget("fast")).contains("e.g. 500ms"));
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
    fn partitions_split_ranges_evenly_and_reject_nonsense() {
        let part = |text: &str| parse_partition(text).unwrap();
        let slices: Vec<(u64, u64)> = (1..=3)
            .map(|k| partition_range((10, 20), part(&format!("{k}/3"))))
            .collect();
        assert_eq!(slices, [(10, 13), (13, 16), (16, 20)]);
        assert_eq!(partition_range((0, u64::MAX), part("2/2")).1, u64::MAX);
        assert_ne!(
            partition_start(5, part("1/2")),
            partition_start(5, part("2/2"))
        );
        for bad in ["0/3", "4/3", "3", "a/b", "1/2000", "1/0"] {
            assert!(
                message(parse_partition(bad)).contains("--partition"),
                "{bad}"
            );
        }
        assert!(message(count("--max-reports", "-1", true)).contains("from 0 up"));
        assert!(message(count("--max-failures", "0", false)).contains("from 1 up"));
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
