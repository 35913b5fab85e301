//! The fault model: how a scenario wants failpoint hits decided while faults are on, and
//! the one mapping between a [`Decision`] and the tape entries that record it.
//!
//! Each hit draws one index from the tape at its [`FailpointSite`] (hits are counted per
//! node and point, so removing another node's operations while shrinking does not renumber
//! this node's hits); the index orders the kinds from simplest to most drastic
//! ([`Kind::ALL`]), so shrinking a value walks a fault back towards "continue". A sleep
//! draws its length and a crash its scope at the hit's companion sites.

use std::time::Duration;

use crate::site::{FailpointSite, Part};
use crate::tape::Entry;

/// Where a crash lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashScope {
    /// The node that hit the point dies; the others keep running on the same files.
    Node,
    /// Every node dies at once; the store's files are imaged at that instant and every node
    /// restarts on the image (a machine crash without power loss).
    Store,
    /// A power loss: like [`CrashScope::Store`], but the image keeps only what was synced
    /// before the crash; every write since a file's last sync is lost.
    Power,
}

impl CrashScope {
    /// Every scope, in tape-index order.
    pub const ALL: [CrashScope; 3] = [CrashScope::Node, CrashScope::Store, CrashScope::Power];

    /// The tape value.
    pub fn index(self) -> u64 {
        CrashScope::ALL
            .iter()
            .position(|s| *s == self)
            .expect("listed") as u64
    }

    /// The scope for a tape value (values past the last are the last).
    pub fn from_index(index: u64) -> Self {
        CrashScope::ALL[(index as usize).min(CrashScope::ALL.len() - 1)]
    }

    /// What a report calls it.
    pub fn name(self) -> &'static str {
        match self {
            CrashScope::Node => "process crash",
            CrashScope::Store => "store crash",
            CrashScope::Power => "power loss",
        }
    }
}

/// How failpoint hits are decided while faults are on. Every field's default is the value
/// shown by [`FaultModel::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultModel {
    /// Relative weights of the kinds in [`Kind::ALL`] order (continue, yield, sleep, error,
    /// crash). Default `[80, 10, 6, 3, 1]`.
    pub weights: [u32; Kind::ALL.len()],
    /// Longest injected sleep. Default 20 ms.
    pub max_sleep: Duration,
    /// Most crashes per run; further crash draws become "continue". Default 2.
    pub max_crashes: u32,
    /// Relative weights of the scopes in [`CrashScope::ALL`] order (node crashes, store
    /// crashes, power losses). Default `[1, 1, 0]`.
    pub crash_scope_weights: [u32; CrashScope::ALL.len()],
    /// Simulated time between a crash and the restart. Default 5 ms.
    pub restart_delay: Duration,
}

impl Default for FaultModel {
    fn default() -> Self {
        FaultModel {
            weights: [80, 10, 6, 3, 1],
            max_sleep: Duration::from_millis(20),
            max_crashes: 2,
            crash_scope_weights: [1, 1, 0],
            restart_delay: Duration::from_millis(5),
        }
    }
}

/// The kinds of decision, in tape-index order (the index is the position in [`Kind::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Go on.
    Continue,
    /// Yield to the scheduler.
    Yield,
    /// Sleep in simulated time.
    Sleep,
    /// Return an injected I/O error.
    Error,
    /// Crash (a node, the store or the power).
    Crash,
}

impl Kind {
    /// Every kind, simplest first; a kind's tape value is its position here.
    pub const ALL: [Kind; 5] = [
        Kind::Continue,
        Kind::Yield,
        Kind::Sleep,
        Kind::Error,
        Kind::Crash,
    ];

    /// The tape value.
    pub fn index(self) -> u64 {
        Kind::ALL.iter().position(|k| *k == self).expect("listed") as u64
    }

    /// The kind a tape value stands for (values past the last are the last).
    pub fn from_index(index: u64) -> Kind {
        Kind::ALL[(index as usize).min(Kind::ALL.len() - 1)]
    }

    /// Its name in reports (`continue`, `yield`, `sleep`, `error`, `crash`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Continue => "continue",
            Kind::Yield => "yield",
            Kind::Sleep => "sleep",
            Kind::Error => "error",
            Kind::Crash => "crash",
        }
    }
}

/// What a failpoint hit was told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Continue,
    /// Yield to the scheduler once.
    Yield,
    /// Sleep this long in simulated time.
    Sleep(Duration),
    /// Return an injected I/O error.
    Error,
    /// Crash with this scope.
    Crash(CrashScope),
}

/// The message an injected error carries.
pub const INJECTED_ERROR: &str = "injected I/O error";

impl Decision {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Decision::Continue => Kind::Continue,
            Decision::Yield => Kind::Yield,
            Decision::Sleep(_) => Kind::Sleep,
            Decision::Error => Kind::Error,
            Decision::Crash(_) => Kind::Crash,
        }
    }

    /// Draws the decision of the hit at `site`: its kind with `model`'s weights (a crash past
    /// `crash_allowed` is recorded as "continue"), then its companion if it has one.
    pub fn draw(
        model: &FaultModel,
        site: &FailpointSite,
        crash_allowed: bool,
        draws: &mut dyn Draws,
    ) -> Decision {
        let mut kind = Kind::from_index(draws.weighted(site.to_string(), &model.weights));
        if kind == Kind::Crash && !crash_allowed {
            draws.amend_last(Kind::Continue.index());
            kind = Kind::Continue;
        }
        match kind {
            Kind::Continue => Decision::Continue,
            Kind::Yield => Decision::Yield,
            Kind::Sleep => {
                let bound = model.max_sleep.as_millis().max(1) as u64 - 1;
                let ms = 1 + draws.below_or_equal(site.with_part(Part::SleepMs).to_string(), bound);
                Decision::Sleep(Duration::from_millis(ms))
            }
            Kind::Error => Decision::Error,
            Kind::Crash => {
                let scope_site = site.with_part(Part::Scope).to_string();
                let scope = draws.weighted(scope_site, &model.crash_scope_weights);
                Decision::Crash(CrashScope::from_index(scope))
            }
        }
    }

    /// The tape entries that make a run decide this at `site` (the inverse of
    /// [`Decision::draw`]).
    pub fn entries(&self, site: &FailpointSite) -> Vec<Entry> {
        let decision = Entry {
            site: site.to_string(),
            value: self.kind().index(),
        };
        let companion = match self {
            Decision::Continue | Decision::Yield | Decision::Error => None,
            Decision::Sleep(duration) => {
                Some((Part::SleepMs, (duration.as_millis() as u64).max(1) - 1))
            }
            Decision::Crash(scope) => Some((Part::Scope, scope.index())),
        };
        let companion = companion.map(|(part, value)| Entry {
            site: site.with_part(part).to_string(),
            value,
        });
        std::iter::once(decision).chain(companion).collect()
    }

    /// What the failpoint macro does with it.
    pub fn action(&self) -> faultline_fp::Decision {
        match self {
            Decision::Continue => faultline_fp::Decision::Continue,
            Decision::Yield => faultline_fp::Decision::Yield,
            Decision::Sleep(duration) => faultline_fp::Decision::Sleep(*duration),
            Decision::Error => faultline_fp::Decision::Error(INJECTED_ERROR.to_owned()),
            Decision::Crash(_) => faultline_fp::Decision::Crash,
        }
    }

    /// A short rendering for the trace.
    pub fn describe(&self) -> String {
        match self {
            Decision::Continue => "continue".to_owned(),
            Decision::Yield => "yield".to_owned(),
            Decision::Sleep(duration) => format!("sleep {}ms", duration.as_millis()),
            Decision::Error => format!("error ({INJECTED_ERROR})"),
            Decision::Crash(_) => "crash".to_owned(),
        }
    }
}

/// Where a decision's values come from (the run's chooser).
pub trait Draws {
    /// A value in `0..=bound` for `site`.
    fn below_or_equal(&mut self, site: String, bound: u64) -> u64;
    /// An index into `weights` for `site`.
    fn weighted(&mut self, site: String, weights: &[u32]) -> u64;
    /// Replaces the value last drawn.
    fn amend_last(&mut self, value: u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays fixed values and records what was asked.
    struct Fixed(Vec<u64>, Vec<Entry>);

    impl Draws for Fixed {
        fn below_or_equal(&mut self, site: String, _bound: u64) -> u64 {
            let value = self.0.remove(0);
            self.1.push(Entry { site, value });
            value
        }
        fn weighted(&mut self, site: String, _weights: &[u32]) -> u64 {
            self.below_or_equal(site, 0)
        }
        fn amend_last(&mut self, value: u64) {
            self.1.last_mut().unwrap().value = value;
        }
    }

    #[test]
    fn every_decision_draws_back_from_its_own_entries() {
        let site = FailpointSite::decision("w", "p", 3);
        let decisions = [
            Decision::Continue,
            Decision::Yield,
            Decision::Sleep(Duration::from_millis(7)),
            Decision::Error,
            Decision::Crash(CrashScope::Node),
            Decision::Crash(CrashScope::Store),
            Decision::Crash(CrashScope::Power),
        ];
        for decision in decisions {
            let entries = decision.entries(&site);
            let mut fixed = Fixed(entries.iter().map(|e| e.value).collect(), Vec::new());
            let drawn = Decision::draw(&FaultModel::default(), &site, true, &mut fixed);
            assert_eq!(drawn, decision);
            assert_eq!(fixed.1, entries, "{decision:?}");
        }
    }

    #[test]
    fn a_crash_over_the_budget_is_recorded_as_continue() {
        let site = FailpointSite::decision("w", "p", 1);
        let mut fixed = Fixed(vec![Kind::Crash.index()], Vec::new());
        let drawn = Decision::draw(&FaultModel::default(), &site, false, &mut fixed);
        assert_eq!(drawn, Decision::Continue);
        assert_eq!(fixed.1, Decision::Continue.entries(&site));
    }
}
