//! `schema-apply`: a store with legacy-encoded records gets a random multi-step schema
//! change (re-encode to JSON, add a property, soft-drop one, hard-drop one, in batch steps)
//! from one handle while zero to two others load records. Crashes anywhere, in the migration
//! or in the recovery of a crashed one; every crash is followed by a reopen.

use faultline_sim::coverage;
use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

pub mod invariants;
pub mod plan;
#[cfg(madsim)]
mod workload;

/// The schema-apply scenario.
pub struct SchemaApply;

impl Scenario for SchemaApply {
    fn name(&self) -> &'static str {
        "schema-apply"
    }

    fn summary(&self) -> &'static str {
        "a multi-step migration of legacy records with concurrent loads; crash anywhere, reopen"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        invariants::DOCS
    }

    /// The default model with power losses as likely as node and store crashes.
    fn sometimes(&self) -> &'static [SometimesDoc] {
        &[
            SometimesDoc {
                name: "migration-applied",
                means: "a migration ran to the end",
            },
            SometimesDoc {
                name: "migration-refused",
                means: "a migration refused a bad record",
            },
            SometimesDoc {
                name: coverage::CRASH_IN_RECOVERY,
                means: "a crash hit a node while it recovered on reopen",
            },
        ]
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &[
            "engine.migrate.",
            "engine.recovery.migration_step",
            "engine.recovery.classify_migration",
            "engine.recovery.before_migration_sidecar_remove",
            "engine.append.after_pin",
            "engine.append.before_publish",
            "engine.append.after_publish",
            "engine.append.before_ack",
            "engine.open.",
        ]
    }

    fn preemption_horizon(&self) -> u64 {
        75
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.crash_scope_weights = [1, 1, 1];
        model
    }

    /// Loaders: `setup/loaders` is their number, loader `l` draws `load/<l>/<slot>/kind` and
    /// runs as node `loader-<l>`.
    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/loaders",
            min: 0,
            site_prefix: |loader| format!("load/{loader}/"),
            node_name: plan::loader_name,
            slots: plan::MAX_LOADS,
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
