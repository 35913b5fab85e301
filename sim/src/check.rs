//! `cargo test` over a scenario: [`check`] (or the [`Check`] builder) runs a scenario for
//! every seed of a range, one run after another in the test's own process, with the settings
//! the `FAULTLINE_*` variables give ([`crate::env::settings`]: limits, scratch directory,
//! disk, I/O cost, strategy). At the first failed run it panics with the seed, the failure's
//! signature and message, and the line that replays it:
//!
//! ```text
//! faultline: scenario inventory failed at seed 3 (run 4 of seeds 0..200, 0.21s)
//!   FAIL seed 3: invariant:stock-balances: item apples: stock 4 + sold 8 != 10 at the start
//!   reproduce: cargo sim replay --scenario inventory --seed 3 --timeline
//! ```
//!
//! The line names the scenario's binary through the `cargo sim` alias (a `.cargo/config.toml`
//! alias that runs the binary calling [`crate::cli::main`] in the simulator build; see
//! `docs/own-crate.md`), and carries the `FAULTLINE_*` variables set that change what a
//! seed does. The in-process run and the binary's replay give the same trace.
//!
//! ```ignore
//! #[cfg(madsim)]
//! #[test]
//! fn inventory_survives_200_seeds() {
//!     let checked = faultline_sim::check(Inventory, 0..200);
//!     assert_eq!(checked.runs, 200);
//! }
//! ```
//!
//! What it does not do, which the command line's `run` does: worker processes (a run that
//! aborts its process takes the test down with it; a run still going after
//! `FAULTLINE_RUN_WALL_SECONDS` of wall time is reported as a `hang` and its thread is left
//! behind), shrinking, saved reports and tapes, regression tapes, coverage gates and
//! parallel runs.

use std::fmt;
use std::ops::Range;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::env::Settings;
use crate::outcome::{bad_input, environment, Error, Failure, FailureKind};
use crate::scenario::Scenario;
use crate::tape::Source;

/// The seeds a [`Check`] runs unless [`Check::seeds`] says otherwise.
pub const DEFAULT_SEEDS: Range<u64> = 0..100;

/// The variables that change what one seed does: a reproduction line starts with those set.
const RUN_VARIABLES: &[&str] = &[
    "FAULTLINE_STRATEGY",
    "FAULTLINE_IO_COST",
    "FAULTLINE_DISK",
    "FAULTLINE_TIME_LIMIT_SECONDS",
    "FAULTLINE_MAX_STEPS",
];

/// Runs `scenario` for every seed of `seeds`; panics at the first failed run with its seed,
/// signature, message and reproduction line. Short for
/// `Check::new(scenario).seeds(seeds).run()`.
#[track_caller]
pub fn check(scenario: impl Scenario, seeds: Range<u64>) -> Checked {
    Check::new(scenario).seeds(seeds).run()
}

/// A check of one scenario over a range of seeds; see the [module](self) documentation.
#[must_use = "a check runs nothing until `run` or `try_run`"]
pub struct Check {
    scenario: Arc<dyn Scenario>,
    seeds: Range<u64>,
}

/// What a check that passed did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checked {
    /// Runs made (every seed of the range).
    pub runs: u64,
    /// Wall time they took, in seconds.
    pub seconds: f64,
    /// Simulated time they covered, added up.
    pub simulated: Duration,
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum CheckError {
    /// A run failed.
    Failed(Box<SeedFailure>),
    /// The check could not run: a `FAULTLINE_*` variable is malformed, the scratch directory
    /// is unusable, the seed range is empty, or a run met a fault of the environment.
    Setup(Error),
}

/// The first failed run of a check.
#[derive(Debug, Clone)]
pub struct SeedFailure {
    /// The scenario's name.
    pub scenario: String,
    /// The seed that failed.
    pub seed: u64,
    /// How it failed.
    pub failure: Failure,
    /// The seeds the check was given.
    pub seeds: Range<u64>,
    /// Runs made, the failed one included.
    pub runs: u64,
    /// Wall time until the failure, in seconds.
    pub seconds: f64,
    /// The command that replays the failed seed, with its timeline.
    pub reproduce: String,
}

impl Check {
    /// A check of `scenario` over [`DEFAULT_SEEDS`].
    pub fn new(scenario: impl Scenario) -> Self {
        Check::shared(Arc::new(scenario))
    }

    /// A check of a scenario already shared (one of a registry's).
    pub fn shared(scenario: Arc<dyn Scenario>) -> Self {
        Check {
            scenario,
            seeds: DEFAULT_SEEDS,
        }
    }

    /// Runs the seeds `seeds` (`0..200`: 200 runs, seeds 0 to 199).
    pub fn seeds(self, seeds: Range<u64>) -> Self {
        Check { seeds, ..self }
    }

    /// Runs every seed; panics at the first failure with the message [`CheckError`]'s
    /// `Display` gives (seed, signature, message, reproduction line), at the caller's line.
    #[track_caller]
    pub fn run(self) -> Checked {
        match self.try_run() {
            Ok(checked) => checked,
            Err(error) => panic!("{error}"),
        }
    }

    /// Runs every seed, stopping at the first failure, and returns it instead of panicking.
    pub fn try_run(self) -> Result<Checked, CheckError> {
        let settings = crate::env::settings().map_err(CheckError::Setup)?;
        if self.seeds.is_empty() {
            let Range { start, end } = self.seeds;
            let empty = bad_input(format!("the seed range {start}..{end} is empty"));
            return Err(CheckError::Setup(empty));
        }
        crate::preflight::check_dir(&settings.scratch, "FAULTLINE_SCRATCH")
            .map_err(CheckError::Setup)?;
        self.sweep(&settings)
    }

    fn sweep(&self, settings: &Settings) -> Result<Checked, CheckError> {
        let started = Instant::now();
        let mut checked = Checked {
            runs: 0,
            seconds: 0.0,
            simulated: Duration::ZERO,
        };
        for seed in self.seeds.clone() {
            let (failure, simulated) =
                run_seed(&self.scenario, settings, seed).map_err(CheckError::Setup)?;
            checked.runs += 1;
            checked.simulated += simulated;
            if let Some(failure) = failure {
                let failed = self.failed(seed, failure, checked.runs, started.elapsed());
                return Err(CheckError::Failed(Box::new(failed)));
            }
        }
        checked.seconds = started.elapsed().as_secs_f64();
        Ok(checked)
    }

    fn failed(&self, seed: u64, failure: Failure, runs: u64, took: Duration) -> SeedFailure {
        let scenario = self.scenario.name().to_owned();
        SeedFailure {
            reproduce: reproduce_line(&scenario, seed),
            scenario,
            seed,
            failure,
            seeds: self.seeds.clone(),
            runs,
            seconds: took.as_secs_f64(),
        }
    }
}

/// One fresh run of `seed` on its own thread; its failure, if any, and the simulated time
/// it covered. A run still going after the settings' wall-time limit is a hang.
fn run_seed(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    seed: u64,
) -> Result<(Option<Failure>, Duration), Error> {
    let request = crate::session::request(settings, seed, Source::Seed);
    let (sender, receiver) = mpsc::channel();
    let scenario = scenario.clone();
    std::thread::Builder::new()
        .name("faultline-check".to_owned())
        .spawn(move || {
            let _ = sender.send(crate::runner::run(scenario, request));
        })
        .map_err(|e| environment(format!("cannot start a thread for the run: {e}")))?;
    match receiver.recv_timeout(settings.run_wall_limit) {
        Ok(outcome) => {
            let outcome = outcome?;
            let simulated = Duration::from_nanos(outcome.simulated_ns);
            Ok((outcome.failure, simulated))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Ok((Some(hang(settings)), Duration::ZERO)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(environment("the run's thread ended without an outcome"))
        }
    }
}

fn hang(settings: &Settings) -> Failure {
    Failure {
        kind: FailureKind::Hang,
        invariant: "hang".to_owned(),
        message: format!(
            "the run passed its wall-time limit of {}s (FAULTLINE_RUN_WALL_SECONDS); its \
             thread was left behind",
            settings.run_wall_limit.as_secs()
        ),
    }
}

/// The replay command ([`crate::report::replay_seed_command`]), after the `FAULTLINE_*`
/// variables set that change what the seed does.
fn reproduce_line(scenario: &str, seed: u64) -> String {
    let mut line = String::new();
    for name in RUN_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            line.push_str(&format!("{name}={value} "));
        }
    }
    line + &crate::report::replay_seed_command(scenario, seed)
}

impl fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Range { start, end } = self.seeds;
        writeln!(
            f,
            "faultline: scenario {} failed at seed {} (run {} of seeds {start}..{end}, {:.2}s)",
            self.scenario, self.seed, self.runs, self.seconds
        )?;
        let failure = &self.failure;
        let signature = failure.signature();
        writeln!(
            f,
            "  FAIL seed {}: {signature}: {}",
            self.seed, failure.message
        )?;
        write!(f, "  reproduce: {}", self.reproduce)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Failed(failed) => failed.fmt(f),
            CheckError::Setup(error) => write!(f, "faultline: the check could not run: {error}"),
        }
    }
}

impl std::error::Error for CheckError {}
