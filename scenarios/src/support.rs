//! Helpers every family's workload uses: opening a handle until it succeeds, and reading
//! what the store shows.

use std::time::Duration;

use faultline::{Engine, EngineError};
use faultline_sim::world::World;

use crate::concurrent_writers::invariants::{DatasetView, Observed};

/// Pause between attempts to open a store that failed to open (an injected fault).
const REOPEN_PAUSE: Duration = Duration::from_millis(5);

/// Opens a handle on the world's current store, retrying after each failure (each failure
/// is an event; the run's liveness bound stops a store that never opens).
pub async fn open(world: &World, label: &str) -> Engine {
    loop {
        match Engine::open(&world.store_dir(), label).await {
            Ok((engine, report)) => {
                world.event(
                    "open",
                    format!(
                        "owner {} recovered: {} forward, {} back, {} live skipped",
                        engine.owner(),
                        report.rolled_forward,
                        report.rolled_back,
                        report.skipped_live
                    ),
                );
                return engine;
            }
            Err(error) => {
                world.event("open.error", &error);
                tokio::time::sleep(REOPEN_PAUSE).await;
            }
        }
    }
}

/// Reads every dataset's chain, item count and the keys streamed at every version.
pub async fn observe(engine: &Engine, datasets: &[String]) -> Result<Observed, EngineError> {
    let mut observed = Observed::new();
    for dataset in datasets {
        let chain = engine.versions(dataset).await?;
        let item_count = engine.item_count(dataset).await?;
        let mut streamed = Vec::new();
        for link in &chain {
            let items = engine
                .stream(dataset, link.version, 16)
                .await?
                .collect()
                .await?;
            streamed.push(items.into_iter().map(|item| item.key).collect());
        }
        observed.insert(
            dataset.clone(),
            DatasetView {
                chain,
                item_count,
                streamed,
            },
        );
    }
    Ok(observed)
}
