//! The command line: `run`, `replay`, `shrink`, `list`, `test` (and the internal `worker`).
//!
//! Exit codes: 0 nothing broke, 1 a run failed (or a replay diverged), 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::scenario::Scenario;

/// Exit code: no invariant broke.
pub const EXIT_PASS: u8 = 0;
/// Exit code: a run failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad input (unknown scenario, malformed range, bad tape file, bad variable).
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "cargo sim",
    about = "Faultline: deterministic simulation and fault injection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sweep seeds of a scenario; shrink and save every distinct failure.
    Run(RunArgs),
    /// Run seeds until a failure whose signature or message matches a pattern, then shrink
    /// and save it: a flaky race turned into a deterministic reproduction.
    Hunt(HuntArgs),
    /// Replay one run from a seed or a saved tape.
    Replay(ReplayArgs),
    /// Shrink a saved failing tape to a 1-minimal one.
    Shrink(ShrinkArgs),
    /// List scenarios, their invariants, every failpoint and the environment variables.
    List,
    /// Run every test suite: the plain build and the simulator build.
    Test,
    /// Print performance figures: runs per second per scenario, cost of a failpoint hit.
    Bench {
        /// Seeds per scenario.
        #[arg(long, default_value_t = 300)]
        seeds: u64,
    },
    /// Internal: run seeds for a sweep and report on stdout.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The scenario to run (see `cargo sim list`).
    #[arg(long)]
    pub scenario: String,
    /// Seeds to run, `A..B` (B excluded), e.g. `0..1000`.
    #[arg(long, conflicts_with = "budget")]
    pub seeds: Option<String>,
    /// Run seeds for this long instead, e.g. `60s`, `5m`.
    #[arg(long)]
    pub budget: Option<String>,
    /// Worker processes (default FAULTLINE_JOBS or the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Crash once at every failpoint hit the run reaches instead of drawing faults: `all`,
    /// or at most N per seed. Seeds default to `0..1`.
    #[arg(long, value_name = "all|N", conflicts_with = "budget")]
    pub crash_points: Option<String>,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
    /// Do not shrink failures (they are still saved).
    #[arg(long)]
    pub no_shrink: bool,
}

#[derive(Args, Debug)]
pub(crate) struct HuntArgs {
    /// A regular expression matched against `<kind>:<invariant>: <message>`.
    #[arg(long)]
    pub signature: String,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// The scenario (with --seed).
    #[arg(long, requires = "seed")]
    pub scenario: Option<String>,
    /// The seed to replay (with --scenario).
    #[arg(long, requires = "scenario")]
    pub seed: Option<String>,
    /// A saved tape file.
    #[arg(long, conflicts_with_all = ["scenario", "seed"])]
    pub trace: Option<PathBuf>,
    /// Print the readable timeline of the run.
    #[arg(long)]
    pub timeline: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Run twice and report the first event where the two runs differ.
    #[arg(long)]
    pub check_determinism: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ShrinkArgs {
    /// The failing tape to shrink.
    #[arg(long)]
    pub trace: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    #[arg(long)]
    pub scenario: String,
    #[arg(long)]
    pub first: u64,
    #[arg(long)]
    pub end: u64,
    #[arg(long)]
    pub stride: u64,
}

/// Runs the command line against `scenarios`; returns the process exit code.
pub fn main(scenarios: Vec<Arc<dyn Scenario>>) -> ExitCode {
    crate::allocator::tune();
    quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let code = if error.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_PASS
            };
            return ExitCode::from(code);
        }
    };
    let code = match dispatch(cli.command, &scenarios) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_BAD_INPUT
        }
    };
    ExitCode::from(code)
}

/// Lets a closed pipe end the program quietly, as it does other command-line tools
/// (`cargo sim list | head`), rather than with a panic on the next print. Every report and
/// tape is written to its file before the summary is printed, so nothing is lost.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn dispatch(command: Command, scenarios: &[Arc<dyn Scenario>]) -> Result<u8, String> {
    match command {
        Command::List => Ok(crate::cli_list::list(scenarios)),
        Command::Test => crate::cli_test::test(),
        #[cfg(madsim)]
        Command::Run(args) => crate::cli_run::run(args, None, scenarios),
        #[cfg(madsim)]
        Command::Hunt(args) => crate::cli_run::hunt(args, scenarios),
        #[cfg(madsim)]
        Command::Replay(args) => crate::cli_replay::replay(args, scenarios),
        #[cfg(madsim)]
        Command::Shrink(args) => crate::cli_replay::shrink(args, scenarios),
        #[cfg(madsim)]
        Command::Worker(args) => crate::cli_run::worker(args, scenarios),
        #[cfg(madsim)]
        Command::Bench { seeds } => {
            crate::bench::bench(scenarios, &crate::env::settings()?, seeds);
            Ok(EXIT_PASS)
        }
        #[cfg(not(madsim))]
        _ => Err(
            "this binary was built without the simulator: run it through `cargo sim`, \
                  which builds with --cfg madsim"
                .to_owned(),
        ),
    }
}

/// Finds a scenario by name, or lists the accepted names.
#[cfg_attr(not(madsim), allow(dead_code))]
pub(crate) fn find(
    scenarios: &[Arc<dyn Scenario>],
    name: &str,
) -> Result<Arc<dyn Scenario>, String> {
    scenarios
        .iter()
        .find(|s| s.name() == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
            format!(
                "unknown scenario {name:?}: accepted scenarios are {}",
                known.join(", ")
            )
        })
}

/// Parses `A..B` (B excluded, A < B).
pub fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let accepted = "expected A..B with whole numbers A < B, e.g. 0..1000";
    let (first, end) = text
        .split_once("..")
        .ok_or_else(|| format!("seed range {text:?}: {accepted}"))?;
    let first: u64 = first
        .trim()
        .parse()
        .map_err(|_| format!("seed range {text:?}: {accepted}"))?;
    let end: u64 = end
        .trim()
        .parse()
        .map_err(|_| format!("seed range {text:?}: {accepted}"))?;
    if first >= end {
        return Err(format!("seed range {text:?} is empty: {accepted}"));
    }
    Ok((first, end))
}

/// Parses a seed: a whole number.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("seed {text:?}: expected a whole number, e.g. 42"))
}

/// Parses a wall-time budget: `90`, `90s`, `5m`, `1h`.
pub fn parse_budget(text: &str) -> Result<Duration, String> {
    let accepted = "expected a number of seconds with an optional unit s, m or h, e.g. 60s or 5m";
    let trimmed = text.trim();
    let (number, unit) = match trimmed.char_indices().last() {
        Some((index, 's' | 'm' | 'h')) => (&trimmed[..index], &trimmed[index..]),
        _ => (trimmed, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("budget {text:?}: {accepted}"))?;
    let seconds = match unit {
        "m" => value * 60,
        "h" => value * 3600,
        _ => value,
    };
    if seconds == 0 {
        return Err(format!("budget {text:?} is zero: {accepted}"));
    }
    Ok(Duration::from_secs(seconds))
}

/// Parses `--crash-points`: `all` or a positive whole number.
pub fn parse_crash_points(text: &str) -> Result<usize, String> {
    match text.trim() {
        "all" => Ok(usize::MAX),
        number => match number.parse::<usize>() {
            Ok(limit) if limit > 0 => Ok(limit),
            _ => Err(format!(
                "--crash-points {text:?}: expected `all` or a whole number above 0"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(parse_seed_range("0..1000"), Ok((0, 1000)));
        for bad in ["10", "5..5", "9..3", "a..b", "1...3", "-1..4"] {
            assert!(
                parse_seed_range(bad).unwrap_err().contains("expected A..B"),
                "{bad}"
            );
        }
    }

    #[test]
    fn budgets_accept_units_and_reject_zero_and_junk() {
        assert_eq!(parse_budget("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_budget("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_budget("90"), Ok(Duration::from_secs(90)));
        assert!(parse_budget("0s").is_err());
        assert!(parse_budget("fast").unwrap_err().contains("e.g. 60s"));
    }
}
