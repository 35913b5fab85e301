//! What a run reached: every failpoint hit's decision by kind, the faults that fired, the
//! preemptions made and the scenario's sometimes-assertions that held. Summed over a sweep,
//! it says what the sweep explored, and [`Coverage::gaps`] says what a scenario declared
//! that it never reached (a CI sweep with `--require-coverage` fails on a gap).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The sometimes-assertion the harness marks when a crash hits a node during its start-up
/// (its recovery on reopen, up to `World::node_ready`); a family declares it to gate on it.
pub const CRASH_IN_RECOVERY: &str = "crash-in-recovery";
/// The sometimes-assertion the harness marks when an error is injected into a node's
/// start-up.
pub const ERROR_IN_RECOVERY: &str = "error-in-recovery";

/// What one run, or a sweep, reached. Every map is sorted, so its rendering is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Runs summed.
    pub runs: u64,
    /// Decided hits (on workload nodes, faults on) per failpoint and decision kind.
    pub decisions: BTreeMap<String, BTreeMap<String, u64>>,
    /// Faults that happened, by kind: `process crash`, `store crash`, `power loss`, and each
    /// network fault kind (`partition`, `isolate`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Statement boundaries preempted.
    pub preemptions: u64,
    /// Statement boundaries reached on workload nodes while faults were on, every run
    /// counted (a run that does not decide them still numbers them).
    pub boundaries: u64,
    /// The same boundaries per node (a node's restarts counted together): what crash-point
    /// enumeration crashes at, besides the failpoint hits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub boundaries_by_node: BTreeMap<String, u64>,
    /// The scenario's sometimes-assertions that held, with how many runs saw each.
    pub sometimes: BTreeMap<String, u64>,
}

impl Coverage {
    /// Counts a decided hit of `point`.
    pub fn record(&mut self, point: &str, kind: crate::faults::Kind) {
        let kinds = match self.decisions.get_mut(point) {
            Some(kinds) => kinds,
            None => self.decisions.entry(point.to_owned()).or_default(),
        };
        match kinds.get_mut(kind.name()) {
            Some(count) => *count += 1,
            None => {
                kinds.insert(kind.name().to_owned(), 1);
            }
        }
    }

    /// Counts a fault of kind `name` that happened.
    pub fn fault(&mut self, name: &str) {
        *self.faults.entry(name.to_owned()).or_insert(0) += 1;
    }

    /// Notes that the sometimes-assertion `name` held (once per run however often).
    pub fn held(&mut self, name: &str) {
        if !self.sometimes.contains_key(name) {
            self.sometimes.insert(name.to_owned(), 1);
        }
    }

    /// Adds `other` (another run's, or another sweep's) to this.
    pub fn add(&mut self, other: &Coverage) {
        self.runs += other.runs;
        for (point, kinds) in &other.decisions {
            let mine = self.decisions.entry(point.clone()).or_default();
            for (kind, count) in kinds {
                *mine.entry(kind.clone()).or_insert(0) += count;
            }
        }
        for (name, count) in &other.faults {
            *self.faults.entry(name.clone()).or_insert(0) += count;
        }
        self.preemptions += other.preemptions;
        self.boundaries += other.boundaries;
        for (node, count) in &other.boundaries_by_node {
            *self.boundaries_by_node.entry(node.clone()).or_insert(0) += count;
        }
        for (name, count) in &other.sometimes {
            *self.sometimes.entry(name.clone()).or_insert(0) += count;
        }
    }

    /// Decided hits of `point`, every kind.
    pub fn reached(&self, point: &str) -> u64 {
        self.decisions
            .get(point)
            .map_or(0, |kinds| kinds.values().sum())
    }

    /// What `scenario` declares and this never reached: each sometimes-assertion that never
    /// held, and each failpoint its workload must reach ([`Scenario::failpoints`]) that no
    /// run decided. Empty when everything was reached.
    pub fn gaps(&self, scenario: &dyn Scenario) -> Vec<String> {
        let mut gaps: Vec<String> = scenario
            .sometimes()
            .iter()
            .filter(|doc| !self.sometimes.contains_key(doc.name))
            .map(|doc| {
                format!(
                    "sometimes-assertion {} never held ({})",
                    doc.name, doc.means
                )
            })
            .collect();
        gaps.extend(
            expected_points(scenario)
                .into_iter()
                .filter(|point| self.reached(point) == 0)
                .map(|point| format!("failpoint {point} was never reached")),
        );
        gaps
    }
}

/// The failpoints linked into this binary that `scenario`'s workload must reach: those that
/// [`Scenario::failpoints`] names, an entry ending in `.` naming every point under it,
/// sorted.
pub fn expected_points(scenario: &dyn Scenario) -> Vec<&'static str> {
    let prefixes = scenario.failpoints();
    let mut points: Vec<&'static str> = declared_points()
        .into_iter()
        .filter(|point| {
            prefixes.iter().any(|prefix| match prefix.ends_with('.') {
                true => point.starts_with(prefix),
                false => point == prefix,
            })
        })
        .collect();
    points.dedup();
    points
}

fn declared_points() -> Vec<&'static str> {
    faultline_fp::declared().iter().map(|d| d.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Kind;

    #[test]
    fn sums_add_up_and_sometimes_counts_runs() {
        let mut one = Coverage {
            runs: 1,
            ..Coverage::default()
        };
        one.record("p", Kind::Continue);
        one.record("p", Kind::Continue);
        one.record("p", Kind::Crash);
        one.fault("process crash");
        one.held("retried");
        one.held("retried");
        let mut sweep = Coverage::default();
        sweep.add(&one);
        sweep.add(&one);
        assert_eq!(sweep.runs, 2);
        assert_eq!(sweep.decisions["p"]["continue"], 4);
        assert_eq!(sweep.decisions["p"]["crash"], 2);
        assert_eq!(sweep.reached("p"), 6);
        assert_eq!(sweep.reached("q"), 0);
        assert_eq!(sweep.faults["process crash"], 2);
        assert_eq!(sweep.sometimes["retried"], 2);
    }
}
