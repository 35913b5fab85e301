//! Sweeps: many seeds across the worker processes of a [`Pool`], handed out one at a time in
//! seed order, so that a run that panics, aborts its process or hangs never takes the sweep
//! down, and the seeds covered are always a prefix of the range plus the runs in flight.
//! Seed arithmetic is checked: the range given is the range run, up to `u64::MAX`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::outcome::{Detail, Error, Failure, Result};
use crate::pool::Pool;
use crate::runner::RunRequest;

/// Which seeds to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeds {
    /// `first..end` (end exclusive).
    Range {
        /// The first seed.
        first: u64,
        /// One past the last seed.
        end: u64,
    },
    /// From `first` until the wall-time budget is spent (or the seeds run out).
    Budget {
        /// The first seed.
        first: u64,
        /// Wall time to spend.
        budget: Duration,
    },
}

impl Seeds {
    /// How many seeds there are, when a range says.
    pub fn total(&self) -> Option<u64> {
        match *self {
            Seeds::Range { first, end } => Some(end - first),
            Seeds::Budget { .. } => None,
        }
    }
}

/// How far a sweep is, for a progress line, and the run that just finished.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// The seed that just finished.
    pub seed: u64,
    /// Its failure, if it failed.
    pub failure: Option<&'a Failure>,
    /// Its trace hash, when it finished and one was computed.
    pub trace_hash: Option<&'a str>,
    /// Runs finished.
    pub runs: u64,
    /// Of them, failed.
    pub failures: usize,
    /// Wall time so far.
    pub elapsed: Duration,
    /// Seeds in all, when known.
    pub total: Option<u64>,
}

/// What a sweep found.
#[derive(Debug, Clone, Default)]
pub struct SweepResult {
    /// Runs completed (failed or not).
    pub runs: u64,
    /// Every failed run, in the order seen.
    pub failures: Vec<(u64, Failure)>,
    /// Each finished run's trace hash, in seed order (when asked for).
    pub trace_hashes: Vec<(u64, String)>,
    /// Every seed below this one finished (the sweep can be continued from here).
    pub done_below: u64,
    /// Whether Ctrl-C or SIGTERM stopped the sweep.
    pub interrupted: bool,
    /// Wall time of the sweep.
    pub elapsed: Duration,
    /// What the finished runs reached, summed.
    pub coverage: crate::coverage::Coverage,
}

/// What the sweep's caller decides about a failure that just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Go on.
    Continue,
    /// Stop at this seed: the seeds below it still run to the end (so a stop is reported at
    /// the lowest seed that asks for one, however the workers raced), those above are
    /// abandoned.
    StopHere,
}

/// Runs `seeds` on `pool`, building each seed's run with `request`. `on_failure` is called as
/// soon as a failure arrives (to save it at once); an error from it (a report that cannot be
/// written) ends the sweep. `on_progress` is called after every run.
pub fn sweep(
    pool: &mut Pool,
    seeds: Seeds,
    request: &dyn Fn(u64) -> RunRequest,
    keep_hashes: bool,
    mut on_failure: impl FnMut(u64, &Failure) -> Result<OnFailure>,
    mut on_progress: impl FnMut(Progress<'_>),
) -> Result<SweepResult> {
    let started = Instant::now();
    let (first, mut end, deadline) = match seeds {
        Seeds::Range { first, end } => (first, end, None),
        Seeds::Budget { first, budget } => (first, u64::MAX, started.checked_add(budget)),
    };
    let mut result = SweepResult {
        done_below: first,
        ..SweepResult::default()
    };
    let mut cursor = Some(first);
    let mut finished_above = BTreeSet::new();
    let mut jobs = std::collections::BTreeMap::new();
    loop {
        let spent = deadline.is_some_and(|d| Instant::now() >= d);
        while let Some(seed) = cursor.filter(|s| *s < end && !spent && pool.has_room()) {
            jobs.insert(pool.submit(request(seed), Detail::Summary)?, seed);
            cursor = seed.checked_add(1);
        }
        if pool.running() == 0 {
            break;
        }
        if spent {
            pool.abandon(|_| false);
            break;
        }
        let finished = match pool.wait() {
            Ok(finished) => finished,
            Err(Error::Interrupted) => {
                pool.abandon(|_| false);
                result.interrupted = true;
                break;
            }
            Err(error) => return Err(error),
        };
        let Some(seed) = jobs.remove(&finished.id) else {
            continue;
        };
        result.runs += 1;
        result.coverage.add(&finished.result.coverage);
        finished_above.insert(seed);
        while finished_above.remove(&result.done_below) {
            result.done_below += 1;
        }
        if let (true, Some(hash)) = (keep_hashes, &finished.result.trace_hash) {
            result.trace_hashes.push((seed, hash.clone()));
        }
        let failure = finished.result.failure;
        if let Some(failure) = &failure {
            if on_failure(seed, failure)? == OnFailure::StopHere && seed < end {
                end = seed + 1;
                pool.abandon(|running| running < end);
                jobs.retain(|_, s| *s < end);
            }
            result.failures.push((seed, failure.clone()));
        }
        on_progress(Progress {
            seed,
            failure: failure.as_ref(),
            trace_hash: finished.result.trace_hash.as_deref(),
            runs: result.runs,
            failures: result.failures.len(),
            elapsed: started.elapsed(),
            total: seeds.total(),
        });
    }
    result.trace_hashes.sort();
    result.elapsed = started.elapsed();
    Ok(result)
}
