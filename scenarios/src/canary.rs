//! `canary`: the harness's self-test. Two nodes increment a shared counter with a
//! read-modify-write that a failpoint can interleave; the lost update is a bug every sweep
//! must find, shrink and replay. If a sweep of the canary stops failing, the harness (not the
//! engine) is broken.

use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, Scenario};

/// The canary scenario.
pub struct Canary;

const INVARIANTS: &[InvariantDoc] = &[InvariantDoc {
    name: "counter-exact",
    checks: "the counter equals the number of increments made; does not check ordering",
}];

impl Scenario for Canary {
    fn name(&self) -> &'static str {
        "canary"
    }

    fn summary(&self) -> &'static str {
        "harness self-test: a planted lost update between two nodes (must always be found)"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        INVARIANTS
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.weights = [90, 5, 5, 0, 0];
        model
    }

    #[cfg(madsim)]
    fn run(
        &self,
        world: faultline_sim::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(simulated::run(world))
    }
}

#[cfg(madsim)]
mod simulated {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use faultline_fp::fp;
    use faultline_sim::world::World;

    /// Increments per node.
    const INCREMENTS: u64 = 4;

    pub async fn run(world: World) {
        let counter = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicU64::new(0));
        for name in ["left", "right"] {
            let (counter, finished) = (counter.clone(), finished.clone());
            world.add_node(name, move || increment(counter.clone(), finished.clone()));
        }
        while finished.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let value = counter.load(Ordering::SeqCst);
        world.event("counter", value);
        if value != 2 * INCREMENTS {
            world.fail(
                "counter-exact",
                format!("counter is {value} after {} increments", 2 * INCREMENTS),
            );
        }
    }

    async fn increment(counter: Arc<AtomicU64>, finished: Arc<AtomicU64>) {
        for _ in 0..INCREMENTS {
            let read = counter.load(Ordering::SeqCst);
            let _ = fp!("canary.between_read_and_write").await;
            counter.store(read + 1, Ordering::SeqCst);
        }
        finished.fetch_add(1, Ordering::SeqCst);
    }
}
