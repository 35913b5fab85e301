//! Systematic crash points: the bounded-exhaustive complement to random seeds.
//!
//! For a seed, the run is first replayed with every fault removed; every failpoint hit on a
//! workload node in that run (`fp/<node>/<name>#<hit>`) is a crash point. Each is then run
//! once with a crash there (as a process crash of the node, a crash of the whole store and a
//! power loss), and
//! every invariant is checked. Failpoints that are first reached only after such a crash
//! (recovery, on reopen) are crash points of the second level: each is crashed once more,
//! which covers "a second crash during recovery". Works for any scenario.

use std::sync::Arc;

use crate::env::Settings;
use crate::faults;
use crate::runner::{self, RunOutcome, RunRequest};
use crate::scenario::Scenario;
use crate::tape::{Entry, Source, Tape};

/// Tape value of a crash decision (see `faults::decision`).
const CRASH: u64 = 4;

/// The crash scopes tried at every first-level point: a process crash of the node, a crash
/// of the whole store, a power loss (see [`crate::faults::CrashScope`]).
pub const CRASH_SCOPES: [u64; 3] = [0, 1, 2];

/// One crash point and what crashing there gave.
#[derive(Debug, Clone)]
pub struct CrashRun {
    /// The seed whose workload ran.
    pub seed: u64,
    /// The failpoint hit, `fp/<node>/<name>#<hit>`; a second-level point follows the first
    /// after `+`.
    pub point: String,
    /// 0: process crash of the node; 1: crash of the whole store; 2: power loss.
    pub scope: u64,
    /// The run.
    pub outcome: RunOutcome,
}

impl CrashRun {
    /// Whether the crash actually happened (the run reached the point).
    pub fn covered(&self) -> bool {
        self.outcome.trace.events.iter().any(|e| e.kind == "crash")
    }
}

/// What enumerating one seed found.
#[derive(Debug, Clone, Default)]
pub struct Enumeration {
    /// First-level crash points (failpoint hits of the fault-free run).
    pub points: usize,
    /// Second-level crash points (reached only after a first crash).
    pub recovery_points: usize,
    /// Every run made.
    pub runs: Vec<CrashRun>,
}

fn is_fault_site(site: &str) -> bool {
    site.starts_with("fp/")
}

fn without_faults(tape: &Tape) -> Tape {
    let mut clean = tape.clone();
    clean.entries.retain(|entry| !is_fault_site(&entry.site));
    clean
}

fn crash_points(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| is_fault_site(&e.site) && !e.site.contains(':'))
        .map(|e| e.site.clone())
        .collect()
}

fn with_crash(base: &Tape, point: &str, scope: u64) -> Tape {
    let mut tape = base.clone();
    tape.entries
        .retain(|e| e.site != point && !e.site.starts_with(&format!("{point}:")));
    tape.entries.push(Entry {
        site: point.to_owned(),
        value: CRASH,
    });
    tape.entries.push(Entry {
        site: format!("{point}:scope"),
        value: scope,
    });
    tape
}

fn run(scenario: &Arc<dyn Scenario>, settings: &Settings, tape: Tape) -> RunOutcome {
    let request = RunRequest {
        seed: tape.seed,
        source: Source::Lenient(tape),
        limits: settings.limits,
        scratch: settings.scratch.clone(),
        disk: settings.disk,
    };
    runner::run(scenario.clone(), request)
}

/// Enumerates up to `limit` first-level crash points of `seed` (and the recovery points each
/// reveals, within the same limit per point), calling `on_run` after each run.
pub fn enumerate(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    seed: u64,
    limit: usize,
    mut on_run: impl FnMut(&CrashRun),
) -> Enumeration {
    let seeded = runner::run(
        scenario.clone(),
        RunRequest {
            seed,
            source: Source::Seed,
            limits: settings.limits,
            scratch: settings.scratch.clone(),
            disk: settings.disk,
        },
    );
    let base = run(scenario, settings, without_faults(&seeded.tape));
    let first = crash_points(&base.tape.entries);
    let mut enumeration = Enumeration {
        points: first.len().min(limit),
        ..Enumeration::default()
    };
    for point in first.iter().take(limit) {
        for scope in CRASH_SCOPES {
            let tape = with_crash(&base.tape, point, scope);
            let outcome = run(scenario, settings, tape);
            let later: Vec<String> = crash_points(&outcome.tape.entries)
                .into_iter()
                .filter(|site| !first.contains(site))
                .collect();
            let crash = CrashRun {
                seed,
                point: point.clone(),
                scope,
                outcome,
            };
            on_run(&crash);
            let covered = crash.covered();
            let after_first = crash.outcome.tape.clone();
            enumeration.runs.push(crash);
            if covered {
                enumerate_second(
                    scenario,
                    settings,
                    &after_first,
                    point,
                    &later,
                    limit,
                    &mut enumeration,
                    &mut on_run,
                );
            }
        }
    }
    enumeration
}

#[allow(clippy::too_many_arguments)]
fn enumerate_second(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    after_first: &Tape,
    first: &str,
    later: &[String],
    limit: usize,
    enumeration: &mut Enumeration,
    on_run: &mut impl FnMut(&CrashRun),
) {
    for point in later
        .iter()
        .filter(|site| faults::site_point(site).is_some_and(|p| p.starts_with("engine.recovery")))
        .take(limit)
    {
        enumeration.recovery_points += 1;
        let outcome = run(scenario, settings, with_crash(after_first, point, 0));
        let crash = CrashRun {
            seed: after_first.seed,
            point: format!("{first}+{point}"),
            scope: 0,
            outcome,
        };
        on_run(&crash);
        enumeration.runs.push(crash);
    }
}
