//! Systematic crash points: the bounded-exhaustive complement to random seeds.
//!
//! For a seed, its own run comes first (a failure there is a failure like any sweep's), then
//! the run is replayed with every fault removed (a failure of this fault-free run is also
//! reported, and the seed has no crash points). Every failpoint hit on a workload node in
//! the fault-free run is a crash point of the first level; each is run once with a crash
//! there in every [`CrashScope`] (a process crash of the node, a crash of the whole store, a
//! power loss), and every invariant is checked. The second level is generic: every failpoint
//! hit that a crashed run reaches on a restarted node before that node says it is ready
//! (its recovery on reopen; see [`crate::world::World::node_ready`]), whatever the
//! failpoint's name, is crashed once more, in every scope. At every point of either level
//! the point's injected error is tried once too (the error path a crash never takes: a
//! rollback, a retry, a cleanup), so each point is run with every [`Fault`].
//!
//! Failpoints mark only the moments the engine's authors thought of. So the first level also
//! crashes the node's process at each statement boundary of the fault-free run
//! ([`crate::strategy::PREEMPT_CRASH`]), just after a statement completed: the window between
//! two statements that no failpoint marks, which is where a bug that splits one transaction
//! in two (or removes a file one statement too early) leaves the store. Boundaries are taken
//! in turn from each node (every node's first, then every node's second...), up to the same
//! limit, and crashed in the process scope only: a store crash or a power loss there is the
//! same as at the failpoint that follows.
//!
//! With `schedules` above 0, every first-level failpoint is also tried under that many other
//! schedules: its fault (each fault in turn) with one preemption added at a statement
//! boundary of the fault-free run, drawn with its pause (1 to 20 ms) from a stream of the
//! seed and the point, so that another node runs through the window before the fault (a
//! preemption drawn after the point changes nothing and is counted all the same). Works for
//! any scenario.

use crate::faults::{CrashScope, Decision};
use crate::outcome::{Result, RunResult};
use crate::site::{FailpointSite, Part};
use crate::strategy::PREEMPT_CRASH;
use crate::tape::{Source, Tape};

/// What a run of the enumeration injects at its point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A crash of this scope.
    Crash(CrashScope),
    /// The point's injected I/O error.
    Error,
}

impl Fault {
    /// Every fault tried at a point: the crashes in scope order, then the error.
    pub const ALL: [Fault; 4] = [
        Fault::Crash(CrashScope::Node),
        Fault::Crash(CrashScope::Store),
        Fault::Crash(CrashScope::Power),
        Fault::Error,
    ];

    /// What a report calls it (`process crash`, ..., `injected error`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Crash(scope) => scope.name(),
            Fault::Error => "injected error",
        }
    }

    fn decision(self) -> Decision {
        match self {
            Fault::Crash(scope) => Decision::Crash(scope),
            Fault::Error => Decision::Error,
        }
    }
}

/// Second-level points tried per crashed run, at most: a recovery that loops is bounded.
pub const SECOND_LEVEL_LIMIT: usize = 64;

/// Which run of a seed's enumeration this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// The seed's own run, faults as drawn.
    SeedRun,
    /// The seed's run with every fault removed.
    FaultFree,
    /// A crash at a first-level point.
    First(String),
    /// A process crash at a statement boundary of the fault-free run (its preemption site).
    Boundary(String),
    /// A fault at a first-level point with a preemption added at a boundary (`preempt`,
    /// sleeping `pause_ms`): the point under another schedule.
    Scheduled {
        /// The point's decision site.
        site: String,
        /// The preempted boundary's site.
        preempt: String,
        /// The preemption's pause.
        pause_ms: u64,
    },
    /// A crash at a second-level point reached after a crash at the first.
    Second(String, String),
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Point::SeedRun => f.write_str("the seed's own run"),
            Point::FaultFree => f.write_str("the seed's run without faults"),
            Point::First(site) | Point::Boundary(site) => f.write_str(site),
            Point::Scheduled {
                site,
                preempt,
                pause_ms,
            } => write!(f, "{site} after a {pause_ms}ms preemption at {preempt}"),
            Point::Second(first, second) => write!(f, "{first}+{second}"),
        }
    }
}

impl Point {
    /// The failpoint crashed last, if any (`engine.recovery.before_sweep`; none at a
    /// statement boundary).
    pub fn failpoint(&self) -> Option<String> {
        let site = match self {
            Point::First(site) | Point::Second(_, site) | Point::Scheduled { site, .. } => site,
            Point::SeedRun | Point::FaultFree | Point::Boundary(_) => return None,
        };
        FailpointSite::parse(site).map(|s| s.point)
    }
}

/// One run of the enumeration and what it gave.
#[derive(Debug, Clone)]
pub struct CrashRun {
    /// The seed whose workload ran.
    pub seed: u64,
    /// Where it crashed.
    pub point: Point,
    /// What was injected at the point (`None` for the seed's own and fault-free runs).
    pub fault: Option<Fault>,
    /// The run.
    pub result: RunResult,
}

impl CrashRun {
    /// Whether the fault actually happened (the run reached the point): a crash is in the
    /// trace, or the point's error was drawn.
    pub fn covered(&self) -> bool {
        match self.fault {
            None => false,
            Some(Fault::Crash(_)) => self.result.crashed,
            Some(Fault::Error) => self.point.failpoint().is_some_and(|point| {
                let kinds = self.result.coverage.decisions.get(&point);
                kinds.is_some_and(|kinds| kinds.contains_key(crate::faults::Kind::Error.name()))
            }),
        }
    }

    /// Whether it crashed at its point (not an error run).
    pub fn is_crash(&self) -> bool {
        matches!(self.fault, Some(Fault::Crash(_)))
    }
}

/// What enumerating some seeds found.
#[derive(Debug, Clone, Default)]
pub struct Enumeration {
    /// First-level crash points (failpoint hits of the fault-free runs).
    pub points: usize,
    /// Second-level crash points (reached only after a first crash, before readiness).
    pub second_points: usize,
    /// Statement boundaries crashed at (first level, beside the failpoint hits).
    pub boundary_points: usize,
    /// Runs of a first-level point under another schedule (one added preemption).
    pub schedule_runs: usize,
    /// Runs made with a fault at a point (the seeds' own and fault-free runs not counted).
    pub runs: usize,
    /// Of them, runs whose fault happened.
    pub covered: usize,
    /// Of the runs, those that injected the point's error instead of crashing.
    pub error_runs: usize,
}

impl Enumeration {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Enumeration) {
        self.points += other.points;
        self.second_points += other.second_points;
        self.boundary_points += other.boundary_points;
        self.schedule_runs += other.schedule_runs;
        self.runs += other.runs;
        self.covered += other.covered;
        self.error_runs += other.error_runs;
    }
}

/// Runs the given sources of one seed (as many at once as the pool allows), results in order.
pub type RunAll<'a> = dyn FnMut(u64, Vec<Source>) -> Result<Vec<RunResult>> + 'a;

/// One seed's first level: the seed's own and fault-free runs, then a fault at every
/// first-level point, in a fixed order; and what its second level needs.
#[derive(Debug, Clone)]
pub struct FirstLevel {
    /// The seed.
    pub seed: u64,
    /// The counts so far (second-level points not yet known).
    pub enumeration: Enumeration,
    /// Every run made, the seed's own and fault-free runs first.
    pub runs: Vec<CrashRun>,
    first: Vec<String>,
    limit: usize,
}

/// How much of each seed an enumeration tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// First-level failpoint hits, and statement boundaries, at most (each).
    pub limit: usize,
    /// Other schedules per first-level failpoint (0: none).
    pub schedules: usize,
}

/// Runs the first level of `seed`'s enumeration: up to `limit` failpoint hits of its
/// fault-free run and up to `limit` statement boundaries, and `schedules` other schedules
/// of each of those hits.
pub fn first_level(seed: u64, bounds: Bounds, run_all: &mut RunAll<'_>) -> Result<FirstLevel> {
    let Bounds { limit, schedules } = bounds;
    let mut enumeration = Enumeration::default();
    let unplanned = |point, result| CrashRun {
        seed,
        point,
        fault: None,
        result,
    };
    // A seed whose own run failed is reported, and still enumerates from its fault-free run.
    let own = run_all(seed, vec![Source::Seed])?.remove(0);
    let clean = without_faults(own.tape.as_ref().unwrap_or(&Tape::new("", seed)));
    let mut runs = vec![unplanned(Point::SeedRun, own)];
    let base = run_all(seed, vec![Source::Lenient(clean)])?.remove(0);
    let Some(base_tape) = base.tape.clone().filter(|_| base.failure.is_none()) else {
        runs.push(unplanned(Point::FaultFree, base));
        return Ok(FirstLevel {
            seed,
            enumeration,
            runs,
            first: Vec::new(),
            limit,
        });
    };
    let first: Vec<String> = decision_sites(&base_tape).into_iter().take(limit).collect();
    enumeration.points = first.len();
    let boundaries = boundary_sites(&base.coverage.boundaries_by_node, limit);
    enumeration.boundary_points = boundaries.len();
    let at_failpoints = first.iter().flat_map(|site| {
        Fault::ALL.map(|fault| {
            (
                Point::First(site.clone()),
                fault,
                with_decision(&base_tape, site, fault.decision()),
            )
        })
    });
    let at_boundaries = boundaries.iter().map(|site| {
        (
            Point::Boundary(site.clone()),
            Fault::Crash(CrashScope::Node),
            with_preemption(base_tape.clone(), site, PREEMPT_CRASH),
        )
    });
    // Every boundary is a candidate for another schedule; listed only when one is asked for.
    let everywhere = match schedules {
        0 => Vec::new(),
        _ => boundary_sites(&base.coverage.boundaries_by_node, usize::MAX),
    };
    let at_schedules = first.iter().flat_map(|site| {
        rescheduled(seed, site, &everywhere, schedules)
            .into_iter()
            .enumerate()
            .map(|(variant, (preempt, pause_ms))| {
                let fault = Fault::ALL[variant % Fault::ALL.len()];
                let decided = with_decision(&base_tape, site, fault.decision());
                // A preemption value v sleeps v - 1 ms.
                let tape = with_preemption(decided, &preempt, pause_ms + 1);
                let point = Point::Scheduled {
                    site: site.clone(),
                    preempt,
                    pause_ms,
                };
                (point, fault, tape)
            })
    });
    let planned: Vec<(Point, Fault, Tape)> = at_failpoints
        .chain(at_boundaries)
        .chain(at_schedules)
        .collect();
    runs.extend(run_planned(seed, planned, run_all)?);
    count(&mut enumeration, &runs);
    Ok(FirstLevel {
        seed,
        enumeration,
        runs,
        first,
        limit,
    })
}

impl FirstLevel {
    /// Drops the runs the second level does not build on (all but the covered crashes whose
    /// restarted nodes drew sites in their recovery), to hold many seeds' levels at once.
    pub fn keep_for_second_level(&mut self) {
        self.runs.retain(|run| {
            matches!(run.point, Point::First(_) | Point::Boundary(_))
                && run.is_crash()
                && run.covered()
                && !run.result.start_up_sites.is_empty()
        });
        for run in &mut self.runs {
            run.result.trace = None;
        }
    }
}

/// Runs the second level that `level` reveals; returns its counts and runs.
pub fn second_level(
    level: &FirstLevel,
    run_all: &mut RunAll<'_>,
) -> Result<(Enumeration, Vec<CrashRun>)> {
    let second: Vec<_> = level
        .runs
        .iter()
        .flat_map(|run| second_level_of(run, &level.first, level.limit))
        .collect();
    let mut enumeration = Enumeration {
        second_points: second.len() / Fault::ALL.len(),
        ..Enumeration::default()
    };
    let runs = run_planned(level.seed, second, run_all)?;
    count(&mut enumeration, &runs);
    Ok((enumeration, runs))
}

/// Enumerates the first-level crash points of `seed` within `bounds` and the second-level points
/// each reveals; returns the counts and every run made (the seed's own and fault-free runs
/// first), in a fixed order.
pub fn enumerate(
    seed: u64,
    bounds: Bounds,
    run_all: &mut RunAll<'_>,
) -> Result<(Enumeration, Vec<CrashRun>)> {
    let mut level = first_level(seed, bounds, run_all)?;
    let (more, runs) = second_level(&level, run_all)?;
    level.enumeration.add(&more);
    level.runs.extend(runs);
    Ok((level.enumeration, level.runs))
}

/// The `count` preemptions (a boundary among `boundaries` and a pause of 1 to 20 ms) that
/// give the point `site` of `seed` its other schedules: drawn from a stream of the seed and
/// the site, so the same enumeration always tries the same schedules.
fn rescheduled(seed: u64, site: &str, boundaries: &[String], count: usize) -> Vec<(String, u64)> {
    if boundaries.is_empty() {
        return Vec::new();
    }
    let mut rng = crate::rng::Rng::for_name(seed, site, SCHEDULES_STREAM);
    (0..count)
        .map(|_| {
            let boundary = rng.below_or_equal(boundaries.len() as u64 - 1) as usize;
            let pause = 1 + rng.below_or_equal(crate::strategy::MAX_PREEMPT_MS - 1);
            (boundaries[boundary].clone(), pause)
        })
        .collect()
}

/// The stream [`rescheduled`] draws from (apart from the runs' own and the strategies').
const SCHEDULES_STREAM: u64 = 5;

/// Adds the fault runs among `runs` to the counts.
fn count(enumeration: &mut Enumeration, runs: &[CrashRun]) {
    let fault_runs = runs.iter().filter(|run| run.fault.is_some());
    enumeration.runs += fault_runs.clone().count();
    enumeration.covered += fault_runs.clone().filter(|run| run.covered()).count();
    enumeration.error_runs += fault_runs
        .clone()
        .filter(|run| run.fault == Some(Fault::Error))
        .count();
    enumeration.schedule_runs += fault_runs
        .filter(|run| matches!(run.point, Point::Scheduled { .. }))
        .count();
}

fn run_planned(
    seed: u64,
    planned: Vec<(Point, Fault, Tape)>,
    run_all: &mut RunAll<'_>,
) -> Result<Vec<CrashRun>> {
    let sources = planned
        .iter()
        .map(|(_, _, tape)| Source::Lenient(tape.clone()))
        .collect();
    let results = run_all(seed, sources)?;
    Ok(planned
        .into_iter()
        .zip(results)
        .map(|((point, fault, _), result)| CrashRun {
            seed,
            point,
            fault: Some(fault),
            result,
        })
        .collect())
}

/// The second-level runs a covered first-level run reveals: each failpoint site its
/// restarted nodes drew before they were ready (and that the fault-free run never reached),
/// crashed in every scope, and given its error, on top of the first crash.
fn second_level_of(run: &CrashRun, first: &[String], limit: usize) -> Vec<(Point, Fault, Tape)> {
    let (Point::First(first_site) | Point::Boundary(first_site), Some(after_first)) =
        (&run.point, run.result.tape.as_ref())
    else {
        return Vec::new();
    };
    if !run.is_crash() || !run.covered() {
        return Vec::new();
    }
    run.result
        .start_up_sites
        .iter()
        .filter(|site| !first.contains(site))
        .take(limit.min(SECOND_LEVEL_LIMIT))
        .flat_map(|site| {
            Fault::ALL.map(|fault| {
                let point = Point::Second(first_site.to_owned(), site.clone());
                (
                    point,
                    fault,
                    with_decision(after_first, site, fault.decision()),
                )
            })
        })
        .collect()
}

/// `tape` without its faults: every failpoint hit continues, no network fault happens.
pub fn without_faults(tape: &Tape) -> Tape {
    let mut clean = tape.clone();
    clean
        .entries
        .retain(|e| !FailpointSite::is_failpoint(&e.site) && !crate::net::is_site(&e.site));
    clean
}

/// The decision sites of every failpoint hit on `tape`, in order (statement boundaries, which
/// are never crashed, left out).
pub fn decision_sites(tape: &Tape) -> Vec<String> {
    tape.entries
        .iter()
        .filter(|e| {
            FailpointSite::parse(&e.site).is_some_and(|s| {
                s.part == Part::Decision && s.point != crate::strategy::PREEMPT_POINT
            })
        })
        .map(|e| e.site.clone())
        .collect()
}

/// The preemption sites of the first `limit` statement boundaries, taken in turn from each
/// node of `by_node` (boundaries per node): every node's first, then every node's second...
pub fn boundary_sites(
    by_node: &std::collections::BTreeMap<String, u64>,
    limit: usize,
) -> Vec<String> {
    let most = by_node.values().copied().max().unwrap_or(0);
    (1..=most)
        .flat_map(|number| {
            by_node
                .iter()
                .filter(move |(_, count)| **count >= number)
                .map(move |(node, _)| {
                    FailpointSite::decision(node, crate::strategy::PREEMPT_POINT, number)
                        .to_string()
                })
        })
        .take(limit)
        .collect()
}

/// `tape` with the statement boundary whose preemption site is `site` decided as `value`
/// (a pause, or [`PREEMPT_CRASH`]).
fn with_preemption(mut tape: Tape, site: &str, value: u64) -> Tape {
    tape.entries.push(crate::tape::Entry {
        site: site.to_owned(),
        value,
    });
    tape
}

/// `base` with a crash of `scope` at the hit whose decision site is `site`.
pub fn with_crash(base: &Tape, site: &str, scope: CrashScope) -> Tape {
    with_decision(base, site, Decision::Crash(scope))
}

/// `base` with `decision` at the hit whose decision site is `site` (its earlier decision
/// and companions replaced).
pub fn with_decision(base: &Tape, site: &str, decision: Decision) -> Tape {
    let parsed = FailpointSite::parse(site).expect("a decision site");
    let mut tape = base.clone();
    tape.entries.retain(|e| {
        FailpointSite::parse(&e.site).is_none_or(|s| s.with_part(Part::Decision) != parsed)
    });
    tape.entries.extend(decision.entries(&parsed));
    tape
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::Entry;

    fn entry(site: &str, value: u64) -> Entry {
        Entry {
            site: site.to_owned(),
            value,
        }
    }

    #[test]
    fn a_crash_replaces_the_hits_decision_and_its_companions_only() {
        let mut base = Tape::new("demo", 1);
        base.entries = vec![
            entry("op/0", 3),
            entry("fp/w/p#1", 2),
            entry("fp/w/p#1:ms", 5),
            entry("fp/w/p#2", 0),
            entry("net/0", 1),
        ];
        let crashed = with_crash(&base, "fp/w/p#1", CrashScope::Store);
        assert_eq!(
            crashed.entries,
            vec![
                entry("op/0", 3),
                entry("fp/w/p#2", 0),
                entry("net/0", 1),
                entry("fp/w/p#1", 4),
                entry("fp/w/p#1:scope", 1),
            ]
        );
        assert_eq!(decision_sites(&base), vec!["fp/w/p#1", "fp/w/p#2"]);
        assert_eq!(without_faults(&base).entries, vec![entry("op/0", 3)]);
    }

    #[test]
    fn boundaries_are_taken_in_turn_from_each_node_up_to_the_limit() {
        let by_node = [("a".to_owned(), 3), ("b".to_owned(), 1)]
            .into_iter()
            .collect();
        assert_eq!(
            boundary_sites(&by_node, 10),
            vec![
                "fp/a/sched.preempt#1",
                "fp/b/sched.preempt#1",
                "fp/a/sched.preempt#2",
                "fp/a/sched.preempt#3"
            ]
        );
        assert_eq!(boundary_sites(&by_node, 2).len(), 2);
    }
}
