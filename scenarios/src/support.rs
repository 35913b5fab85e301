//! Helpers every family's workload uses: opening a handle until it succeeds, and reading
//! what the store shows. The phases of a run (faults, then healing and a liveness bound) and
//! the backoff live in `faultline_sim::phases`.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline::{Engine, EngineError};
use faultline_sim::world::World;

use crate::concurrent_writers::invariants::{DatasetView, Latest, Observed};

// The phases of a run and the backoff are the simulator's, shared with scenarios outside
// this crate; re-exported so that the families keep naming them `support::...`.
pub use faultline_sim::phases::{faults_then_heal, Backoff, LIVENESS_BOUND};

/// Pause between attempts to open a store that failed to open (an injected fault).
const REOPEN_PAUSE: Duration = Duration::from_millis(5);

/// Opens a handle on the world's current store, retrying after each injected fault (each
/// is an event). Any other error is returned: it will not go away by retrying (a store that
/// recovery cannot open), and retrying it would spin until the run's step limit.
pub async fn open(world: &World, label: &str) -> Result<Engine, EngineError> {
    loop {
        match Engine::open(&world.store_dir(), label).await {
            Ok((engine, report)) => {
                world.node_ready();
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
                return Ok(engine);
            }
            Err(EngineError::Injected(injected)) => {
                world.event("open.error", &injected);
                tokio::time::sleep(REOPEN_PAUSE).await;
            }
            Err(error) => {
                world.event("open.error", &error);
                return Err(error);
            }
        }
    }
}

/// Opens a handle for `label` as [`open`] does; any error other than an injected fault
/// breaks `invariant` at once (the node cannot go on, and waiting for the liveness bound
/// would blame the wrong property).
pub async fn open_or_fail(world: &World, label: &str, invariant: &str) -> Option<Engine> {
    match open(world, label).await {
        Ok(engine) => Some(engine),
        Err(error) => {
            world.fail(
                invariant,
                format!("{label} could not open the store: {error}"),
            );
            None
        }
    }
}

/// Reads every dataset's chain, item count and the keys streamed at every version.
pub async fn observe(engine: &Engine, datasets: &[String]) -> Result<Observed, EngineError> {
    let mut observed = Observed::new();
    for dataset in datasets {
        let chain = engine.versions(dataset).await?;
        let item_count = engine.item_count(dataset).await?;
        let (mut streamed, mut payloads) = (Vec::new(), BTreeMap::new());
        for link in &chain {
            let items = engine
                .stream(dataset, link.version, 16)
                .await?
                .collect()
                .await?;
            streamed.push(items.iter().map(|item| item.key.clone()).collect());
            payloads = items.into_iter().map(|i| (i.key, i.payload)).collect();
        }
        observed.insert(
            dataset.clone(),
            DatasetView {
                chain,
                item_count,
                streamed,
                payloads,
            },
        );
    }
    Ok(observed)
}

/// Reads the keys of every dataset's latest version (one stream per dataset, where
/// [`observe`] streams every version).
pub async fn observe_latest(engine: &Engine, datasets: &[String]) -> Result<Latest, EngineError> {
    let mut latest = Latest::new();
    for dataset in datasets {
        let head = engine.head(dataset).await?;
        let items = engine
            .stream(dataset, head.version, 16)
            .await?
            .collect()
            .await?;
        latest.insert(dataset.clone(), items.into_iter().map(|i| i.key).collect());
    }
    Ok(latest)
}
