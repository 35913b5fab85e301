//! `concurrent-writers`: two to five writer nodes, each with its own engine handle on one
//! store, append batches to one or two datasets and retry on conflict, while a reader node
//! streams versions. Faults: delays, yields and injected I/O errors at every engine
//! failpoint, process crashes of single nodes, store crashes that restart every node on
//! an image of the files, and power losses (the image keeps only what was synced). Then
//! everything heals and every writer must finish in a bound.

use faultline_sim::coverage;
use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

pub mod invariants;
pub mod ledger;
pub mod plan;
#[cfg(madsim)]
mod workload;

/// The concurrent-writers scenario.
pub struct ConcurrentWriters;

impl Scenario for ConcurrentWriters {
    fn name(&self) -> &'static str {
        "concurrent-writers"
    }

    fn summary(&self) -> &'static str {
        "2-5 writers extend one version chain with retries; a reader streams; crashes and faults"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        invariants::DOCS
    }

    /// The default model with power losses as likely as node and store crashes.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[
            SometimesDoc {
                name: "conflict-retried",
                means: "an append lost the race for the head and was retried",
            },
            SometimesDoc {
                name: coverage::CRASH_IN_RECOVERY,
                means: "a crash hit a writer while it recovered on reopen",
            },
            SometimesDoc {
                name: coverage::ERROR_IN_RECOVERY,
                means: "an error was injected into a writer's recovery",
            },
        ]
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &[
            "engine.append.",
            "engine.publish.",
            "engine.stage.",
            "engine.sidecar.",
            "engine.abandon.",
            "engine.open.",
            "engine.stream.",
            "engine.recovery.before_sidecar_remove",
            "engine.recovery.before_stamp",
            "engine.recovery.before_unstage",
            "engine.recovery.classify",
        ]
    }

    fn preemption_horizon(&self) -> u64 {
        200
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.crash_scope_weights = [1, 1, 1];
        model
    }

    /// Writers: `setup/writers` is their number minus 2, writer `i` draws
    /// `op/<i>/<slot>/...` and runs as node `writer-<i>`.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/writers",
            min: 2,
            site_prefix: |writer| format!("op/{writer}/"),
            node_name: plan::Plan::writer_name,
            slots: plan::MAX_OPS_PER_WRITER,
        }]
    }

    #[cfg(madsim)]
    fn run(
        &self,
        world: faultline_sim::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(workload::run(world))
    }
}
