//! Every environment override, in one place. All share the `FAULTLINE_` prefix; a value
//! that does not parse is a loud error naming the variable and what it accepts, and an
//! unknown `FAULTLINE_*` variable is reported so a typo is not silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use crate::crash::DiskKind;
use crate::iotime::IoCost;
use crate::limits::Limits;
use crate::outcome::Error;
use crate::strategy::StrategyKind;

/// The variables, what they set and their defaults.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "FAULTLINE_SEED",
        "first seed of a --budget run (default: drawn at random and printed)",
    ),
    (
        "FAULTLINE_JOBS",
        "worker processes for sweeps (default: the number of cores)",
    ),
    (
        "FAULTLINE_SHRINK_SECONDS",
        "wall-time bound on shrinking one failure (default 60)",
    ),
    (
        "FAULTLINE_RUN_WALL_SECONDS",
        "wall time after which one run counts as hung (default 30)",
    ),
    (
        "FAULTLINE_TIME_LIMIT_SECONDS",
        "simulated-time bound on one run (default 600)",
    ),
    (
        "FAULTLINE_MAX_STEPS",
        "bound on decisions and events in one run (default 200000)",
    ),
    (
        "FAULTLINE_SCRATCH",
        "where runs keep their store files (default /dev/shm, else the temp dir)",
    ),
    (
        "FAULTLINE_DISK",
        "where SQLite files live: memory (the simulated disk, default) or files (real files in the scratch directory)",
    ),
    (
        "FAULTLINE_IO_COST",
        "simulated time charged for I/O: off, or read=20us,write=40us,sync=1ms,steps=10us (the default; any subset)",
    ),
    (
        "FAULTLINE_STRATEGY",
        "how fresh runs search: random, pct, pct:D (1 to 3; pct:1 is the default) or swarm; --strategy overrides it",
    ),
    (
        "FAULTLINE_REPORTS",
        "where failures are written (default ./reports)",
    ),
    (
        "FAULTLINE_REGRESSIONS",
        "the regression directory: <scenario>/*.tape.json replayed before every run, new shrunk failures added (default ./regressions)",
    ),
];

/// Settings read from the environment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `FAULTLINE_SEED` (a budget run draws one when it is not set).
    pub seed: Option<u64>,
    /// `FAULTLINE_JOBS`.
    pub jobs: usize,
    /// `FAULTLINE_SHRINK_SECONDS`.
    pub shrink_budget: Duration,
    /// `FAULTLINE_RUN_WALL_SECONDS`.
    pub run_wall_limit: Duration,
    /// `FAULTLINE_TIME_LIMIT_SECONDS` and `FAULTLINE_MAX_STEPS`.
    pub limits: Limits,
    /// `FAULTLINE_SCRATCH`.
    pub scratch: PathBuf,
    /// `FAULTLINE_DISK`.
    pub disk: DiskKind,
    /// `FAULTLINE_REPORTS`.
    pub reports: PathBuf,
    /// `FAULTLINE_REGRESSIONS`.
    pub regressions: PathBuf,
    /// `FAULTLINE_IO_COST`.
    pub io_cost: IoCost,
    /// `FAULTLINE_STRATEGY` (a command's `--strategy` overrides it).
    pub strategy: StrategyKind,
}

/// Longest duration any setting accepts: a year, in seconds.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;
/// Most worker processes.
pub const MAX_JOBS: u64 = 1024;

/// Reads the settings, or says which variable is wrong and what it accepts.
pub fn settings() -> Result<Settings, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let limits = Limits {
        time_limit: seconds("FAULTLINE_TIME_LIMIT_SECONDS", 600, 1)?,
        max_steps: number("FAULTLINE_MAX_STEPS", 200_000, (1, u64::MAX / 2))?,
    };
    Ok(Settings {
        seed: match std::env::var_os("FAULTLINE_SEED") {
            Some(_) => Some(number("FAULTLINE_SEED", 0, (0, u64::MAX))?),
            None => None,
        },
        jobs: number("FAULTLINE_JOBS", cores.min(MAX_JOBS), (1, MAX_JOBS))? as usize,
        shrink_budget: seconds("FAULTLINE_SHRINK_SECONDS", 60, 0)?,
        run_wall_limit: seconds("FAULTLINE_RUN_WALL_SECONDS", 30, 1)?,
        limits,
        scratch: path("FAULTLINE_SCRATCH").unwrap_or_else(default_scratch),
        disk: match std::env::var("FAULTLINE_DISK") {
            Ok(text) => DiskKind::parse(&text).map_err(Error::BadInput)?,
            Err(_) => DiskKind::default(),
        },
        reports: path("FAULTLINE_REPORTS").unwrap_or_else(|| PathBuf::from("reports")),
        regressions: path("FAULTLINE_REGRESSIONS")
            .unwrap_or_else(|| PathBuf::from(crate::regressions::DEFAULT_DIR)),
        io_cost: match std::env::var("FAULTLINE_IO_COST") {
            Ok(text) => IoCost::parse(&text).map_err(|e| {
                Error::BadInput(format!("FAULTLINE_IO_COST={text:?} is not valid: {e}"))
            })?,
            Err(_) => IoCost::default(),
        },
        strategy: match std::env::var("FAULTLINE_STRATEGY") {
            Ok(text) => StrategyKind::parse(&text)
                .map_err(|e| Error::BadInput(format!("FAULTLINE_STRATEGY: {e}")))?,
            Err(_) => crate::strategy::DEFAULT_FRESH,
        },
    })
}

fn seconds(name: &str, default: u64, minimum: u64) -> Result<Duration, Error> {
    number(name, default, (minimum, MAX_SECONDS)).map(Duration::from_secs)
}

fn number(name: &str, default: u64, (minimum, maximum): (u64, u64)) -> Result<u64, Error> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(value) if (minimum..=maximum).contains(&value) => Ok(value),
        _ => Err(Error::BadInput(format!(
            "{name}={text:?} is not valid: expected a whole number from {minimum} to {maximum}"
        ))),
    }
}

fn path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn default_scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() && tempfile_probe(&shm) {
        shm
    } else {
        std::env::temp_dir()
    }
}

fn tempfile_probe(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!("faultline-probe-{}", std::process::id()));
    let writable = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(probe);
    writable
}

/// The `FAULTLINE_*` variables set in the environment that no setting reads (a typo is
/// warned about, not silently ignored), sorted.
pub fn unknown_variables() -> Vec<String> {
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter(|key| key.starts_with("FAULTLINE_") && !VARIABLES.iter().any(|(k, _)| k == key))
        .collect();
    unknown.sort();
    unknown
}

/// Variables other tools read that Faultline does not, each with what to use instead: a user
/// who sets `MADSIM_TEST_SEED` out of habit is told, not silently ignored.
pub const FOREIGN: &[(&str, &str)] = &[
    (
        "MADSIM_TEST_SEED",
        "--seeds A..B, or FAULTLINE_SEED for a --budget run",
    ),
    (
        "MADSIM_TEST_NUM",
        "--seeds A..B (how many seeds) or --budget",
    ),
    ("MADSIM_TEST_JOBS", "--jobs or FAULTLINE_JOBS"),
    ("MADSIM_TEST_TIME_LIMIT", "FAULTLINE_TIME_LIMIT_SECONDS"),
    ("PROPTEST_CASES", "--seeds A..B or --budget"),
    ("PROPTEST_MAX_SHRINK_TIME", "FAULTLINE_SHRINK_SECONDS"),
];

/// The foreign variables set in the environment, with what to use instead.
pub fn foreign_variables() -> Vec<(&'static str, &'static str)> {
    FOREIGN
        .iter()
        .filter(|(key, _)| std::env::var_os(key).is_some())
        .copied()
        .collect()
}
