//! What a scenario family gives the simulator.

use crate::faults::FaultModel;
use crate::net::NetModel;

/// A named invariant and what it checks.
#[derive(Debug, Clone, Copy)]
pub struct InvariantDoc {
    /// The invariant's name, for example `no-lost-write`.
    pub name: &'static str,
    /// One line: the property, and what it does not check.
    pub checks: &'static str,
}

/// A sometimes-assertion: something a healthy sweep of the scenario must see happen at
/// least once ("a conflict was retried"), recorded with [`crate::world::World::sometimes`].
/// One that never holds means the workload or the faults stopped reaching a case.
#[derive(Debug, Clone, Copy)]
pub struct SometimesDoc {
    /// Its name, for example `conflict-retried`.
    pub name: &'static str,
    /// One line: what happened when it holds.
    pub means: &'static str,
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
    /// How the network between the scenario's hosts ([`crate::world::World::add_host`]) is
    /// faulted while faults are on. None by default.
    fn net_model(&self) -> NetModel {
        NetModel::default()
    }
    /// The scenario's groups of numbered nodes whose count is a tape choice (writers,
    /// loaders), so that the shrinker can take a node out and renumber the rest. None by
    /// default.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[]
    }
    /// The scenario's sometimes-assertions. None by default.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[]
    }
    /// The failpoints the workload must reach, each a name or, ending in `.`, every point
    /// under it (`engine.append.`): a sweep with `--require-coverage` fails when one linked
    /// in is never decided. None by default.
    fn failpoints(&self) -> &'static [&'static str] {
        &[]
    }
    /// About how many statement boundaries a run reaches, every node counted: `pct` places
    /// its change points among the first this many. 1,000 by default.
    fn preemption_horizon(&self) -> u64 {
        1_000
    }
    /// Runs one simulated run. Called inside a fresh madsim runtime on a fresh thread.
    #[cfg(madsim)]
    fn run(
        &self,
        world: crate::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
}
