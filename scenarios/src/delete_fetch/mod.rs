//! `delete-vs-fetch`: sources fetched over the network into the store while scopes are
//! deleted. One to three source hosts serve repositories that gain revisions during the
//! run; one or two server hosts (engine handles on one store) create, delete and sync scopes
//! (sync-all at a drawn concurrency, 0 included, which must be refused). Faults: network
//! partitions, one-way links, isolated and mute hosts, extra latency; delays, injected
//! errors and crashes at the engine's scope failpoints. Then everything heals, every server
//! syncs until its mirrors reach their sources' latest revisions, and a fresh handle checks
//! the store. The incident: ../shared/seeds/004 (a policy server's boot sync).

use std::time::Duration;

use faultline_sim::faults::FaultModel;
use faultline_sim::net::NetModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

pub mod invariants;
pub mod plan;
#[cfg(madsim)]
mod workload;

/// The delete-vs-fetch scenario.
pub struct DeleteVsFetch;

impl Scenario for DeleteVsFetch {
    fn name(&self) -> &'static str {
        "delete-vs-fetch"
    }

    fn summary(&self) -> &'static str {
        "1-3 sources fetched into the store by 1-2 servers while scopes are deleted; network faults and crashes"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        invariants::DOCS
    }

    /// The default model, crashes of single servers and of the store.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[
            SometimesDoc {
                name: "scope-deleted",
                means: "a delete removed a scope that existed",
            },
            SometimesDoc {
                name: "fetch-failed",
                means: "a sync pass reported a source whose fetch failed (unreachable, cut off)",
            },
        ]
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &["engine.scopes.", "engine.sources.", "engine.open."]
    }

    fn preemption_horizon(&self) -> u64 {
        32
    }

    fn fault_model(&self) -> FaultModel {
        FaultModel::default()
    }

    /// Two network fault slots in the first 600 ms, each up to 400 ms.
    fn net_model(&self) -> NetModel {
        let mut model = NetModel::default();
        model.faults = 2;
        model.max_start = Duration::from_millis(600);
        model.max_duration = Duration::from_millis(400);
        model
    }

    /// Servers: `setup/servers` is their number minus 1; server `i` draws
    /// `op/<i>/<slot>/...` and runs as host `server-<i>`.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/servers",
            min: 1,
            site_prefix: |server| format!("op/{server}/"),
            node_name: plan::Plan::server_name,
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
