//! Every environment override, in one place. All share the `FAULTLINE_` prefix; a value
//! that does not parse is a loud error naming the variable and what it accepts, and an
//! unknown `FAULTLINE_*` variable is reported so a typo is not silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use crate::crash::DiskKind;
use crate::limits::Limits;

/// The variables, what they set and their defaults.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "FAULTLINE_SEED",
        "first seed of a --budget run, and the seed when none is given (default 0)",
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
        "FAULTLINE_REPORTS",
        "where failures are written (default ./reports)",
    ),
];

/// Settings read from the environment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `FAULTLINE_SEED`.
    pub seed: u64,
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
}

/// Reads the settings, or says which variable is wrong and what it accepts.
pub fn settings() -> Result<Settings, String> {
    warn_unknown();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = Limits {
        time_limit: Duration::from_secs(number("FAULTLINE_TIME_LIMIT_SECONDS", 600, 1)?),
        max_steps: number("FAULTLINE_MAX_STEPS", 200_000, 1)?,
    };
    Ok(Settings {
        seed: number("FAULTLINE_SEED", 0, 0)?,
        jobs: number("FAULTLINE_JOBS", cores as u64, 1)? as usize,
        shrink_budget: Duration::from_secs(number("FAULTLINE_SHRINK_SECONDS", 60, 0)?),
        run_wall_limit: Duration::from_secs(number("FAULTLINE_RUN_WALL_SECONDS", 30, 1)?),
        limits,
        scratch: path("FAULTLINE_SCRATCH").unwrap_or_else(default_scratch),
        disk: match std::env::var("FAULTLINE_DISK") {
            Ok(text) => DiskKind::parse(&text)?,
            Err(_) => DiskKind::default(),
        },
        reports: path("FAULTLINE_REPORTS").unwrap_or_else(|| PathBuf::from("reports")),
    })
}

fn number(name: &str, default: u64, minimum: u64) -> Result<u64, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(value) if value >= minimum => Ok(value),
        _ => Err(format!(
            "{name}={text:?} is not valid: expected a whole number >= {minimum}"
        )),
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

fn warn_unknown() {
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter(|key| key.starts_with("FAULTLINE_") && !VARIABLES.iter().any(|(k, _)| k == key))
        .collect();
    unknown.sort();
    for key in unknown {
        eprintln!("warning: unknown environment variable {key} (known: see `cargo sim list`)");
    }
}
