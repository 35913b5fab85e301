//! Scenario families: each joins the engine to the simulator with a workload, a fault model
//! and named invariants. One module per family.
#![deny(missing_docs)]

use std::sync::Arc;

use faultline_sim::Scenario;

pub mod backfill;
pub mod broadcast;
pub mod canary;
pub mod concurrent_writers;
pub mod delete_fetch;
pub mod misbehave;
pub mod net_canary;
pub mod schema_apply;
pub mod store_clean;
#[cfg(madsim)]
mod support;
pub mod values;

/// Every scenario the command line knows, in the order `cargo sim list` shows them.
pub fn registry() -> Vec<Arc<dyn Scenario>> {
    vec![
        Arc::new(concurrent_writers::ConcurrentWriters),
        Arc::new(schema_apply::SchemaApply),
        Arc::new(delete_fetch::DeleteVsFetch),
        Arc::new(broadcast::BroadcasterDisconnect),
        Arc::new(backfill::Backfill),
        Arc::new(canary::Canary),
        Arc::new(net_canary::NetCanary),
    ]
}
