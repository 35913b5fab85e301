//! Helpers every family's workload uses: opening a handle until it succeeds, and reading
//! what the store shows.

use std::time::Duration;

use faultline::{Engine, EngineError};
use faultline_sim::world::World;

use crate::concurrent_writers::invariants::{DatasetView, Latest, Observed};

/// Simulated time with faults on before everything heals.
pub const FAULT_PHASE: Duration = Duration::from_secs(2);
/// Simulated time, after healing, within which every node must finish.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(20);

/// Safety, then liveness: waits through the fault phase for `done`; if the nodes are not
/// done by then, heals everything and waits up to the liveness bound. Always leaves the
/// world healed. Returns whether the nodes finished (a recorded failure also ends the wait).
pub async fn faults_then_heal(world: &World, done: impl Fn() -> bool) -> bool {
    let finished = wait_until(world, &done, FAULT_PHASE).await || {
        world.heal();
        wait_until(world, &done, LIVENESS_BOUND).await
    };
    if !world.is_healed() {
        world.heal();
    }
    finished
}

async fn wait_until(world: &World, done: &impl Fn() -> bool, bound: Duration) -> bool {
    let poll = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while !done() && !world.has_failed() {
        if waited >= bound {
            return false;
        }
        tokio::time::sleep(poll).await;
        waited += poll;
    }
    true
}

/// The longest pause a [`Backoff`] makes.
const BACKOFF_CAP: Duration = Duration::from_millis(500);

/// Pauses between attempts at something that keeps failing: `first`, then twice the last
/// pause, up to half a second. A node retrying a failure that does not go away (a store a
/// planted bug has wedged) makes about fifty attempts in the fault phase and the liveness
/// bound together instead of eleven thousand, each a SQLite transaction and an event: a shrinker's candidate that ends in
/// that liveness failure costs a few runs' time, not a hundred.
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A backoff whose first pause is `first`.
    pub fn new(first: Duration) -> Self {
        Backoff { next: first }
    }

    /// Sleeps (in simulated time) for the next pause.
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }

    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        pause
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        let pauses: Vec<u128> = (0..10).map(|_| backoff.next_pause().as_millis()).collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64, 128, 256, 500, 500]);
    }

    #[test]
    fn a_retry_that_never_succeeds_makes_tens_of_attempts_within_the_liveness_bound() {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        let mut waited = Duration::ZERO;
        let mut attempts = 0;
        while waited < FAULT_PHASE + LIVENESS_BOUND {
            waited += backoff.next_pause();
            attempts += 1;
        }
        assert!((40..=60).contains(&attempts), "{attempts} attempts");
    }
}
