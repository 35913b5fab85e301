//! `backfill`: a background migration fills in a derived column over a store an older
//! engine wrote, while the store serves readers and writers. The store starts with 600 to
//! 1,200 rows that have no version yet (and up to 8 orphans of a txid never published); a
//! backfiller node runs the engine's chunked item-version backfill with a drawn batch size
//! and yield, and reads on its own handle throughout (the single-connection shape: its
//! reads queue behind its own batches); writers on other handles append rows that get their
//! version on the writers' path; an observer reads the status row; the first attempt may be
//! canceled at a drawn moment and is then retried. Faults: yields, injected errors and
//! crashes at every failpoint (the backfill's, its progress writes' and its status
//! transitions' among them), node and store crashes. Statements cost simulated time
//! (`FAULTLINE_IO_COST`), so a statement that holds the connection for long holds it for
//! long in simulated time. The incident: ../shared/seeds/002 (a single correlated UPDATE held
//! the only writer connection for minutes).

use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

pub mod invariants;
pub mod plan;
#[cfg(madsim)]
mod workload;

/// The backfill scenario.
pub struct Backfill;

impl Scenario for Backfill {
    fn name(&self) -> &'static str {
        "backfill"
    }

    fn summary(&self) -> &'static str {
        "a chunked background backfill under readers and writers; cancel, retry, crashes; simulated I/O time"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        invariants::DOCS
    }

    /// The default model without injected sleeps: reader-wait-bounded bounds the wait by the
    /// cost the I/O model charges, and a sleep injected while a batch holds the connection
    /// would be a slow disk the bound does not allow for.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[
            SometimesDoc {
                name: "read-during-backfill",
                means: "a read on the backfilling handle was issued while an attempt ran",
            },
            SometimesDoc {
                name: "attempt-canceled",
                means: "an attempt was asked to stop and reported canceled",
            },
            SometimesDoc {
                name: "attempt-retried",
                means: "the backfill took more than one attempt",
            },
        ]
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &[
            "engine.backfill.",
            "engine.background.",
            "engine.append.",
            "engine.open.",
        ]
    }

    fn preemption_horizon(&self) -> u64 {
        1_700
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.weights[2] = 0;
        model
    }

    /// Writers: `setup/writers` is their number minus 1, writer `i` draws `op/<i>/<slot>/...`
    /// and runs as node `writer-<i>`.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/writers",
            min: 1,
            site_prefix: |writer| format!("op/{writer}/"),
            node_name: plan::Plan::writer_name,
            slots: plan::MAX_OPS,
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
