//! `misbehave`: a planted misbehaving scenario for the harness's own tests, registered only
//! in the `faultline-sim-selftest` binary (never in `cargo sim`). What a run does is chosen
//! by its seed modulo 8:
//!
//! | seed % 8 | the run |
//! |---|---|
//! | 0, 7 | passes, hitting a failpoint a few times |
//! | 1 | panics before its first failpoint |
//! | 2 | writes a line on stderr, then aborts its process (SIGABRT) |
//! | 3 | busy-loops forever without awaiting (a wall-time hang) |
//! | 4 | awaits forever (every task blocked) |
//! | 5 | breaks its invariant before its first failpoint |
//! | 6 | writes a line on stderr and passes |
//!
//! Its failpoint is hit through `faultline_fp::hit`, not declared with `fp!`, so that it
//! never appears in the list of the engine's failpoints.

use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, Scenario};

/// The misbehaving scenario.
pub struct Misbehave;

const INVARIANTS: &[InvariantDoc] = &[InvariantDoc {
    name: "misbehave-ok",
    checks: "planted: breaks when seed % 8 == 5, before the first failpoint",
}];

impl Scenario for Misbehave {
    fn name(&self) -> &'static str {
        "misbehave"
    }

    fn summary(&self) -> &'static str {
        "harness test: panics, aborts, hangs, blocks or fails, chosen by seed (self-test binary only)"
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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use faultline_sim::world::World;

    pub async fn run(world: World) {
        let seed = world.seed();
        match seed % 8 {
            1 => panic!("misbehave: planted panic before the first failpoint (seed {seed})"),
            2 => {
                eprintln!("misbehave: seed {seed} is about to abort its process");
                std::process::abort();
            }
            3 => loop {
                std::hint::spin_loop();
            },
            4 => std::future::pending::<()>().await,
            5 => world.fail(
                "misbehave-ok",
                format!("planted violation before the first failpoint (seed {seed})"),
            ),
            6 => {
                eprintln!("misbehave: noise on stderr from seed {seed}, which passes");
                hit_a_few_times(&world).await;
            }
            _ => hit_a_few_times(&world).await,
        }
    }

    async fn hit_a_few_times(world: &World) {
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        world.add_node("worker", move || {
            let finished = finished.clone();
            async move {
                for _ in 0..3 {
                    let _ = faultline_fp::hit("misbehave.step").await;
                }
                finished.store(true, Ordering::SeqCst);
            }
        });
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        world.event("done", "three hits");
    }
}
