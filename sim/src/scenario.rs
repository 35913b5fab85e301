//! What a scenario family gives the simulator, and how a failed run is described.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::faults::FaultModel;

/// A named invariant and what it checks.
#[derive(Debug, Clone, Copy)]
pub struct InvariantDoc {
    /// The invariant's name, for example `no-lost-write`.
    pub name: &'static str,
    /// One line: the property, and what it does not check.
    pub checks: &'static str,
}

/// Numbered nodes whose count is drawn from the tape: the shrinker takes node `i` out by
/// lowering the count, dropping the sites of node `i` and renumbering the sites of every later
/// node one down, and moves a node's operations down into empty slots (see
/// [`crate::shrink`]).
#[derive(Debug, Clone, Copy)]
pub struct NodeGroup {
    /// The site whose value is the number of nodes minus [`NodeGroup::min`].
    pub count_site: &'static str,
    /// How many nodes there are when the count site's value is 0.
    pub min: usize,
    /// The prefix of node `i`'s workload sites, trailing `/` included (`op/2/`).
    pub site_prefix: fn(usize) -> String,
    /// Node `i`'s name, which its failpoint sites carry (`fp/writer-2/...`).
    pub node_name: fn(usize) -> String,
    /// How many operation slots each node has, numbered right after its prefix
    /// (`op/2/<slot>/...`); a skipped slot draws nothing more, so the shrinker may move an
    /// operation into an empty slot before it. 0 if the node's sites have no slots.
    pub slots: usize,
}

/// A scenario family: a workload, a fault model and named invariants.
pub trait Scenario: Send + Sync + 'static {
    /// The name used on the command line.
    fn name(&self) -> &'static str;
    /// One line describing the workload.
    fn summary(&self) -> &'static str;
    /// The invariants the scenario checks.
    fn invariants(&self) -> &'static [InvariantDoc];
    /// How failpoint hits are decided while faults are on.
    fn fault_model(&self) -> FaultModel;
    /// The scenario's groups of numbered nodes whose count is a tape choice (writers,
    /// loaders), so that the shrinker can take a node out and renumber the rest. None by
    /// default.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[]
    }
    /// Runs one simulated run. Called inside a fresh madsim runtime on a fresh thread.
    #[cfg(madsim)]
    fn run(
        &self,
        world: crate::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
}

/// The class of a failure; each has its own meaning for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// A named safety invariant broke.
    Invariant,
    /// The run stopped making progress (a bound on time or steps, or a deadlock).
    Liveness,
    /// The engine or the scenario panicked.
    Panic,
    /// The run exceeded its wall-time limit and its worker process was stopped.
    Hang,
    /// The worker process died while running this seed (abort, signal).
    Abort,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FailureKind::Invariant => "invariant",
            FailureKind::Liveness => "liveness",
            FailureKind::Panic => "panic",
            FailureKind::Hang => "hang",
            FailureKind::Abort => "abort",
        };
        f.write_str(name)
    }
}

/// One failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// The invariant (or liveness bound) that broke; `panic`, `hang` or `abort` otherwise.
    pub invariant: String,
    /// What was seen.
    pub message: String,
}

impl Failure {
    /// The signature shrinking preserves: kind and invariant, not the message.
    pub fn signature(&self) -> String {
        format!("{}:{}", self.kind, self.invariant)
    }
}

/// The signature of a run that did not fail.
pub const PASS: &str = "pass";
