//! One scenario, the settings and the worker processes: the only place a run request is
//! built, and the core loop every verb shares (run seeds, save a failure at once, rerun it to
//! a tape, shrink, replay strictly, save). Returns values; never prints.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crash::DiskKind;
use crate::crash_points::{self, CrashRun, Enumeration};
use crate::env::Settings;
use crate::outcome::{Detail, Error, Failure, Result, RunResult};
use crate::pool::Pool;
use crate::report::{self, Reports};
use crate::runner::RunRequest;
use crate::scenario::Scenario;
use crate::shrink::{self, Oracle, Shrunk};
pub use crate::summary::ShrunkCase;
use crate::sweep::{self, OnFailure, Progress, Seeds, SweepResult};
use crate::tape::{Entry, Source, Tape};
use crate::trace::Trace;

/// Whether a command writes reports (checked before the first run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Failures, tapes and timelines under `FAULTLINE_REPORTS`.
    Reports,
    /// Nothing (a replay).
    Nothing,
}

/// A scenario with its settings and worker processes.
pub struct Session {
    scenario: Arc<dyn Scenario>,
    settings: Settings,
    pool: Pool,
}

/// Why a failure was not shrunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotShrunk {
    /// The rerun gave another signature (named).
    Rerun(String),
}

impl Session {
    /// A session for `scenario` with at most `jobs` worker processes. Checks the scratch
    /// directory (and the reports directory, if the command writes reports) first.
    pub fn new(
        scenario: Arc<dyn Scenario>,
        settings: Settings,
        jobs: usize,
        writes: Writes,
    ) -> Result<Self> {
        crate::preflight::check_dir(&settings.scratch, "FAULTLINE_SCRATCH")?;
        if writes == Writes::Reports {
            crate::preflight::check_dir(&settings.reports, "FAULTLINE_REPORTS")?;
        }
        let pool = Pool::new(
            scenario.name(),
            jobs,
            settings.run_wall_limit,
            settings.scratch.clone(),
        );
        Ok(Session {
            scenario,
            settings,
            pool,
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Arc<dyn Scenario> {
        &self.scenario
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs one seed from `source` in a worker process.
    pub fn run(&mut self, seed: u64, source: Source, detail: Detail) -> Result<RunResult> {
        let request = request(&self.settings, seed, source);
        self.pool.run_one(request, detail)
    }

    /// Sweeps `seeds`; see [`sweep::sweep`].
    pub fn sweep(
        &mut self,
        seeds: Seeds,
        keep_hashes: bool,
        on_failure: impl FnMut(u64, &Failure) -> Result<OnFailure>,
        on_progress: impl FnMut(Progress<'_>),
    ) -> Result<SweepResult> {
        let settings = &self.settings;
        let make = |seed| request(settings, seed, Source::Seed);
        sweep::sweep(
            &mut self.pool,
            seeds,
            &make,
            keep_hashes,
            on_failure,
            on_progress,
        )
    }

    /// Where this session's reports go.
    pub fn reports(&self) -> Reports {
        Reports {
            dir: self.settings.reports.clone(),
            scenario: self.scenario.name().to_owned(),
        }
    }

    /// Times runs of `seeds` one after another on `disk` (a bench), in one worker: the wall
    /// time they took and the simulated time they covered.
    pub fn time_runs(
        &mut self,
        disk: DiskKind,
        seeds: std::ops::Range<u64>,
    ) -> Result<(Duration, Duration)> {
        let settings = Settings {
            disk,
            ..self.settings.clone()
        };
        let requests = seeds
            .map(|seed| request(&settings, seed, Source::Seed))
            .collect();
        let started = Instant::now();
        let results = self.pool.run_all(requests, Detail::Summary)?;
        let simulated = results.iter().map(|r| r.simulated_ns).sum();
        Ok((started.elapsed(), Duration::from_nanos(simulated)))
    }

    /// Reruns `seed`, checks it fails as `failure` did, saves the original tape in `dir`,
    /// shrinks it and saves the shrunk tape and the failure's page; returns the shrink and
    /// the shrunk tape.
    pub fn rerun_and_shrink(
        &mut self,
        seed: u64,
        failure: &Failure,
        dir: &Path,
    ) -> Result<std::result::Result<(ShrunkCase, Tape), NotShrunk>> {
        let original = self.run(seed, Source::Seed, Detail::Full)?;
        if original.signature() != failure.signature() {
            return Ok(Err(NotShrunk::Rerun(original.signature())));
        }
        let (tape, trace) = full(&original);
        let reports = self.reports();
        reports.save_run(dir, "original", &tape, &trace)?;
        let (shrunk, replayed) = self.shrink(&tape, &failure.signature())?;
        let (shrunk_tape, shrunk_trace) = full(&replayed);
        let path = reports.save_run(dir, "shrunk", &shrunk_tape, &shrunk_trace)?;
        let mut case = shrunk_case(&shrunk, &path);
        case.also_broke = also_broke(&shrunk_trace, &failure.signature());
        let page = crate::html::FailurePage {
            scenario: self.scenario.name(),
            seed,
            signature: &failure.signature(),
            message: &failure.message,
            original: (&tape, &trace),
            shrunk: (&shrunk_tape, &shrunk_trace),
            replay: &case.replay,
        };
        reports.save_page(dir, &page)?;
        Ok(Ok((case, shrunk_tape)))
    }

    /// Shrinks `tape` keeping `signature`, then replays the result strictly so that the
    /// tape carries its own expected outcome and trace hash.
    pub fn shrink(&mut self, tape: &Tape, signature: &str) -> Result<(Shrunk, RunResult)> {
        let groups = self.scenario.node_groups();
        let mut oracle = PoolOracle {
            pool: &mut self.pool,
            settings: &self.settings,
            error: None,
        };
        let shrunk = shrink::shrink(
            tape,
            signature,
            self.settings.shrink_budget,
            groups,
            &mut oracle,
        );
        if let Some(error) = oracle.error {
            return Err(error);
        }
        let replayed = self.run(tape.seed, Source::Replay(shrunk.tape.clone()), Detail::Full)?;
        Ok((shrunk, replayed))
    }

    /// Replays regression tapes of this scenario (leniently: a tape recorded before the
    /// engine changed still decides what it can) in the worker processes; each result says
    /// `pass` or the signature the tape still fails with.
    pub fn regressions(
        &mut self,
        tapes: &[(std::path::PathBuf, Tape)],
    ) -> Result<Vec<crate::summary::RegressionResult>> {
        let requests = tapes
            .iter()
            .map(|(_, tape)| request(&self.settings, tape.seed, Source::Lenient(tape.clone())))
            .collect();
        let results = self.pool.run_all(requests, Detail::Summary)?;
        Ok(tapes
            .iter()
            .zip(results)
            .map(|((path, tape), result)| crate::summary::RegressionResult {
                tape: path.display().to_string(),
                story: crate::regressions::story(tape),
                signature: result.signature(),
                message: result.failure.map(|f| f.message),
            })
            .collect())
    }

    /// Enumerates the crash points of each seed of `first..end` within `bounds`, calling
    /// `on_run` after each run; `on_run` says whether to stop.
    pub fn crash_points(
        &mut self,
        (first, end): (u64, u64),
        bounds: crash_points::Bounds,
        mut on_run: impl FnMut(&mut Session, &CrashRun) -> Result<bool>,
    ) -> Result<(Enumeration, f64)> {
        let started = Instant::now();
        let mut total = Enumeration::default();
        // Breadth first: every seed's first level, then every seed's second level, so that
        // a hunt reaches a one-fault bug of a later seed before the long second levels.
        let mut levels = Vec::new();
        for seed in first..end {
            let mut level = crash_points::first_level(seed, bounds, &mut self.run_all())?;
            total.add(&level.enumeration);
            for run in &level.runs {
                if on_run(self, run)? {
                    return Ok((total, started.elapsed().as_secs_f64()));
                }
            }
            level.keep_for_second_level();
            levels.push(level);
        }
        for level in &levels {
            let (found, runs) = crash_points::second_level(level, &mut self.run_all())?;
            total.add(&found);
            for run in &runs {
                if on_run(self, run)? {
                    return Ok((total, started.elapsed().as_secs_f64()));
                }
            }
        }
        Ok((total, started.elapsed().as_secs_f64()))
    }

    /// Runs a seed's sources in the worker processes, results in order.
    fn run_all(&mut self) -> impl FnMut(u64, Vec<Source>) -> Result<Vec<RunResult>> + '_ {
        let (pool, settings) = (&mut self.pool, &self.settings);
        move |seed, sources: Vec<Source>| {
            let requests = sources
                .into_iter()
                .map(|s| request(settings, seed, s))
                .collect();
            pool.run_all(requests, Detail::Tape)
        }
    }
}

/// The request for one run: the one place one is built (the sessions' runs and
/// [`crate::check`]'s in-process runs alike).
/// A replay charges I/O as its tape did; a fresh run as the settings say.
pub(crate) fn request(settings: &Settings, seed: u64, source: Source) -> RunRequest {
    let io_cost = source.io_cost(settings.io_cost);
    let strategy = source.strategy(settings.strategy);
    RunRequest {
        seed,
        source,
        limits: settings.limits,
        scratch: settings.scratch.clone(),
        disk: settings.disk,
        io_cost,
        strategy,
    }
}

/// The tape and trace of a [`Detail::Full`] result (a run that never finished has only the
/// events it streamed, and an empty tape).
pub fn full(result: &RunResult) -> (Tape, Trace) {
    (
        result
            .tape
            .clone()
            .unwrap_or_else(|| Tape::new("", result.seed)),
        result.trace.clone().unwrap_or_default(),
    )
}

/// The summary of a shrink whose tape was saved at `path`.
pub fn shrunk_case(shrunk: &Shrunk, path: &Path) -> ShrunkCase {
    ShrunkCase {
        tape: path.display().to_string(),
        original_choices: shrunk.original_choices,
        choices: shrunk.choices,
        candidates: shrunk.candidates,
        one_minimal: shrunk.one_minimal,
        seconds: shrunk.elapsed.as_secs_f64(),
        replay: report::replay_trace_command(path),
        regression: None,
        also_broke: Vec::new(),
    }
}

/// The other signatures a run's trace records violations of (each once, in order).
fn also_broke(trace: &Trace, signature: &str) -> Vec<String> {
    let mut others: Vec<String> = Vec::new();
    for event in trace.events.iter().filter(|e| e.kind == "violation") {
        let other = event.detail.split(": ").next().unwrap_or_default();
        if other != signature && !others.iter().any(|o| o == other) {
            others.push(other.to_owned());
        }
    }
    others
}

/// Runs shrink candidates leniently in the pool; the first error stops the shrinker.
struct PoolOracle<'a> {
    pool: &'a mut Pool,
    settings: &'a Settings,
    error: Option<Error>,
}

impl Oracle for PoolOracle<'_> {
    fn check(&mut self, tape: &Tape) -> (String, Vec<Entry>) {
        if self.error.is_some() {
            return ("stopped".to_owned(), Vec::new());
        }
        let candidate = request(self.settings, tape.seed, Source::Lenient(tape.clone()));
        match self.pool.run_one(candidate, Detail::Tape) {
            Ok(result) => {
                let entries = result.tape.as_ref().map(|t| t.entries.clone());
                (result.signature(), entries.unwrap_or_default())
            }
            Err(error) => {
                self.error = Some(error);
                ("stopped".to_owned(), Vec::new())
            }
        }
    }

    fn stopped(&self) -> bool {
        self.error.is_some()
    }
}
