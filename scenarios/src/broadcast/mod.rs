//! `broadcaster-disconnect`: workers (engine handles on one store) keep an in-memory view of
//! every dataset's head, kept in step by notifications through a broadcaster node that
//! keeps nothing for a subscriber that is away. Two to four workers append to three
//! datasets; the links between workers and the broadcaster are partitioned, cut one way,
//! isolated, muted and slowed; the broadcaster and the workers crash and restart; failpoints
//! around publish, subscribe, resync and apply delay, fail and crash. A probe on every
//! worker reads its view and health every 20 ms. Then everything heals and every worker must
//! converge on the store's heads. The incident: ../shared/seeds/004 (a worker that lost its
//! broadcaster connection recovered only because its process was respawned).

use std::time::Duration;

use faultline_sim::faults::FaultModel;
use faultline_sim::net::NetModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

pub mod invariants;
pub mod plan;
#[cfg(madsim)]
mod workload;

/// The broadcaster-disconnect scenario.
pub struct BroadcasterDisconnect;

impl Scenario for BroadcasterDisconnect {
    fn name(&self) -> &'static str {
        "broadcaster-disconnect"
    }

    fn summary(&self) -> &'static str {
        "2-4 workers kept in step by a broadcaster whose links drop and come back; resync, convergence"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        invariants::DOCS
    }

    /// The default model: crashes of single nodes (the broadcaster included) and of the store.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[
            SometimesDoc {
                name: "relay-delivered",
                means: "the broadcaster relayed a change to at least one subscriber",
            },
            SometimesDoc {
                name: "unsubscribed",
                means: "the broadcaster lost a subscriber (a drop, a crash, a reconnect)",
            },
            SometimesDoc {
                name: "worker-exited",
                means: "a worker in exit mode left after losing the broadcaster",
            },
        ]
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &[
            "engine.workers.",
            "engine.broadcast.",
            "engine.append.",
            "engine.open.",
        ]
    }

    fn preemption_horizon(&self) -> u64 {
        110
    }

    fn fault_model(&self) -> FaultModel {
        FaultModel::default()
    }

    /// Three network fault slots in the first 500 ms, each up to 700 ms: longer than a
    /// worker's 300 ms silence, so subscriptions are lost, not only delayed.
    fn net_model(&self) -> NetModel {
        let mut model = NetModel::default();
        model.faults = 3;
        model.max_start = Duration::from_millis(500);
        model.max_duration = Duration::from_millis(700);
        model
    }

    /// Workers: `setup/workers` is their number minus 2; worker `i` draws `op/<i>/<slot>/...`
    /// and runs as host `worker-<i>`.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/workers",
            min: 2,
            site_prefix: |worker| format!("op/{worker}/"),
            node_name: plan::Plan::worker_name,
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
