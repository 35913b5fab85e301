//! The backfill workload under the simulator: a store an older engine wrote (rows without a
//! version, orphans among them), a backfiller node running the item-version backfill with
//! a reader on its own handle, an observer node reading the status row, writer nodes
//! appending; crashes and injected errors; then healing, the final store and the checks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::backfill::{self, BackfillSettings, Cancel};
use faultline::background::{Migration, Status};
use faultline::{Engine, EngineError, Item};
use faultline_sim::iotime::uncharged;
use faultline_sim::world::World;

use super::invariants::{self, Attempt, Ended, FinalStore, History, Observation, Read, Row};
use super::plan::{self, Plan, DATASET};
use crate::support::{self, Backoff};

/// Time between two reads on the backfilling handle.
const READ_EVERY: Duration = Duration::from_millis(2);
/// Time between two reads of the status row.
const OBSERVE_EVERY: Duration = Duration::from_millis(5);
/// Attempts at an append that keeps losing the compare-and-swap.
const ATTEMPTS: usize = 12;
/// Payload of every row (a few rows per page, so a batch's pages grow with its rows).
const PAYLOAD: usize = 1000;
/// Longest an attempt may run (liveness: backfill-terminates).
const ATTEMPT_BOUND: Duration = Duration::from_secs(5);

struct Shared {
    world: World,
    plan: Plan,
    history: Mutex<History>,
    done: AtomicBool,
    writers_done: Vec<AtomicBool>,
    progress: Vec<AtomicUsize>,
}

impl Shared {
    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.world.elapsed().as_nanos() as u64
    }

    fn finished(&self) -> bool {
        self.done.load(Ordering::SeqCst)
            && self.writers_done.iter().all(|d| d.load(Ordering::SeqCst))
    }
}

fn settings(plan: &Plan, yield_ms: i64) -> BackfillSettings {
    BackfillSettings {
        batch_size: plan.batch,
        yield_ms,
        progress_every: Duration::from_millis(plan.progress_every_ms),
    }
}

pub async fn run(world: World) {
    faultline::sql::seed_prng(world.seed());
    let plan = plan::draw(|site, bound| world.draw(site, bound));
    world.event(
        "plan",
        format!(
            "{} rows, {} orphans, batch {}, yield {}ms, cancel {:?}, writers {:?}",
            plan.rows, plan.orphans, plan.batch, plan.yield_ms, plan.cancel_after_ms, plan.writers
        ),
    );
    if set_up(&world, &plan).await.is_none() {
        return;
    }
    let bound = read_bound(&plan);
    world.event(
        "bound",
        format!("reads wait at most {}us", bound.as_micros()),
    );
    let writers = plan.writers.len();
    let shared = Arc::new(Shared {
        world: world.clone(),
        plan,
        history: Mutex::new(History::default()),
        done: AtomicBool::new(false),
        writers_done: (0..writers).map(|_| AtomicBool::new(false)).collect(),
        progress: (0..writers).map(|_| AtomicUsize::new(0)).collect(),
    });
    {
        let shared = shared.clone();
        world.add_node("backfiller", move || backfiller(shared.clone()));
    }
    {
        let shared = shared.clone();
        world.add_node("observer", move || observer(shared.clone()));
    }
    for index in 0..writers {
        let shared = shared.clone();
        world.add_node(&Plan::writer_name(index), move || {
            writer(shared.clone(), index)
        });
    }
    let finished = support::faults_then_heal(&world, || shared.finished()).await;
    if world.has_failed() {
        return;
    }
    if !finished {
        let why = match shared.done.load(Ordering::SeqCst) {
            true => "the writers had not finished their appends after healing",
            false => "the backfill was not done within the liveness bound after healing",
        };
        world.fail_liveness("backfill-terminates", why);
        return;
    }
    // Every node has returned, so every handle is gone: the checker's recovery stamps what
    // a writer left to it.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let store = match final_store(&world).await {
        Ok(store) => store,
        Err(error) => return world.fail("open-succeeds", format!("the checker: {error}")),
    };
    world.event(
        "checked",
        format!(
            "{} rows, final status {:?}",
            store.rows.len(),
            store.status.as_ref().map(|r| &r.status)
        ),
    );
    check(&shared, &store, bound);
    if !world.has_failed() {
        crate::store_clean::check_world(&world, &[ORPHAN_TXID]).await;
    }
}

fn payload(key: &str) -> String {
    let mut payload = format!("{key}:");
    while payload.len() < PAYLOAD {
        payload.push_str(key);
    }
    payload.truncate(PAYLOAD);
    payload
}

fn items(prefix: &str, count: u64) -> Vec<Item> {
    (0..count)
        .map(|n| {
            let key = format!("{prefix}-{n}");
            Item {
                payload: payload(&key),
                key,
            }
        })
        .collect()
}

/// Writes the store an older engine would have left (rows with no version, orphans), then
/// measures one batch's cost: a backfill of exactly `batch` rows less one of none, on idle
/// copies with chains as long as the main one's. `None` once a failure is recorded.
async fn set_up(world: &World, plan: &Plan) -> Option<()> {
    let engine = support::open_or_fail(world, "setup", "open-succeeds").await?;
    let links = plan.rows.div_ceil(plan::SETUP_APPEND);
    let result = async {
        engine.create_dataset(DATASET).await?;
        for link in 0..links {
            let count = plan::SETUP_APPEND.min(plan.rows - link * plan::SETUP_APPEND);
            engine
                .append(DATASET, &items(&format!("setup-{link}"), count))
                .await?;
        }
        Ok::<(), EngineError>(())
    }
    .await;
    if let Err(error) = result {
        world.fail(
            "open-succeeds",
            format!("the setup could not write: {error}"),
        );
        return None;
    }
    drop(engine);
    if let Err(error) = uncharged(|| make_old(world, plan.orphans)) {
        world.fail(
            "open-succeeds",
            format!("the setup could not age the store: {error}"),
        );
        return None;
    }
    Some(())
}

/// The bound of reader-wait-bounded from the run's cost model: W = Y + 3 B + 5 ms, where one
/// batch costs at most B = sync + (b x row / 4 KiB + 2) x (read + write) (its rows' pages,
/// two index or interior pages, one commit). A reader waits behind at most one batch, one
/// progress write and one commit of a writer's stamp on the same file (each at most B), and
/// 5 ms cover its own three statements and SQLite's passive WAL checkpoints, which a commit
/// runs now and then on whichever connection makes the WAL pass its limit.
fn read_bound(plan: &Plan) -> Duration {
    let cost = faultline_sim::iotime::current().unwrap_or_default();
    let row = (PAYLOAD + 100) as u32;
    let pages = (plan.batch as u32 * row).div_ceil(4096) + 2;
    let batch = cost.sync + (cost.read + cost.write) * pages;
    Duration::from_millis(plan.yield_ms as u64) + batch * 3 + Duration::from_millis(5)
}

/// The harness's own connection to the dataset's table file (its reads are wrapped in
/// `uncharged`: they must cost the engine no simulated time).
fn table_file(world: &World) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open(faultline::layout::table(&world.store_dir(), DATASET))
}

/// The txid of the orphan rows [`make_old`] plants (written into its statement).
const ORPHAN_TXID: &str = "orphan-tx";

/// Turns the table files back into what a version 1 engine wrote: no `version` column, and
/// `orphans` rows staged by a txid no version publishes.
fn make_old(world: &World, orphans: u64) -> rusqlite::Result<()> {
    let connection = table_file(world)?;
    for item in items("orphan", orphans) {
        connection.execute(
            "INSERT INTO items(txid, key, payload) VALUES ('orphan-tx', ?1, ?2)",
            (&item.key, &item.payload),
        )?;
    }
    connection.execute_batch(
        "DROP INDEX items_unversioned; ALTER TABLE items DROP COLUMN version; PRAGMA user_version = 1;",
    )
}

fn row_of(migration: Migration) -> Row {
    Row {
        status: migration.status.as_str().to_owned(),
        attempt: migration.attempt,
        processed: migration.rows_processed,
        total: migration.rows_total,
        error: migration.error,
    }
}

async fn observe(shared: &Shared, engine: &Engine) {
    let row = engine
        .background_migration(&backfill::migration_name(DATASET))
        .await
        .map(|found| found.map(row_of))
        .map_err(|e| e.to_string());
    let at = shared.now();
    shared.history().observations.push(Observation { at, row });
}

/// The backfilling node: a reader on its own handle, and attempts until one is done.
async fn backfiller(shared: Arc<Shared>) {
    let world = &shared.world;
    let Some(engine) = support::open_or_fail(world, "backfiller", "open-succeeds").await else {
        return;
    };
    // The first read after an open pays for SQLite's recovery of the table's WAL (after a
    // crash, the whole log is read back): done before the backfill and not recorded.
    // (the upgrade of a version 1 file, an index over every row, also happens there).
    let mut backoff = Backoff::new(Duration::from_millis(1));
    while first_page(&engine).await.is_err() {
        backoff.pause().await;
    }
    let reader = {
        let (shared, engine) = (shared.clone(), engine.clone());
        tokio::spawn(async move {
            loop {
                let at = shared.now();
                if first_page(&engine).await.is_ok() {
                    let done = shared.now();
                    shared.history().reads.push(Read { at, done });
                }
                tokio::time::sleep(READ_EVERY).await;
            }
        })
    };
    let mut backoff = Backoff::new(Duration::from_millis(5));
    while !shared.done.load(Ordering::SeqCst) {
        let cancel = Cancel::default();
        let index = {
            let mut history = shared.history();
            history.attempts.push(Attempt {
                started: shared.now(),
                ended: None,
                canceled_at: None,
                left_at_done: None,
            });
            history.attempts.len() - 1
        };
        let canceller = (index == 0)
            .then_some(shared.plan.cancel_after_ms)
            .flatten()
            .map(|after| {
                let (shared, cancel) = (shared.clone(), cancel.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after)).await;
                    shared.history().attempts[index].canceled_at = Some(shared.now());
                    cancel.cancel();
                })
            });
        let covered = covered_rows(&shared.world, &engine).await;
        let chosen = settings(&shared.plan, shared.plan.yield_ms);
        let call = engine.backfill_versions(DATASET, &chosen, &cancel);
        let Ok(result) = tokio::time::timeout(ATTEMPT_BOUND, call).await else {
            return world.fail_liveness(
                "backfill-terminates",
                format!(
                    "attempt {} ran for more than {} s",
                    index + 1,
                    ATTEMPT_BOUND.as_secs()
                ),
            );
        };
        if let Some(canceller) = canceller {
            canceller.abort();
        }
        let ended = match &result {
            Ok(report) => Ended::Report {
                status: report.status.as_str().to_owned(),
                attempt: report.attempt,
                processed: report.processed,
                total: report.total,
            },
            Err(error) => Ended::Error(error.to_string()),
        };
        world.event("backfill", format!("{ended:?}"));
        let left = match (&result, &covered) {
            (Ok(report), Ok(covered)) if report.status == Status::Done => {
                unstamped(&shared.world, covered).ok()
            }
            _ => None,
        };
        {
            let mut history = shared.history();
            history.attempts[index].ended = Some((shared.now(), ended));
            history.attempts[index].left_at_done = left;
        }
        observe(&shared, &engine).await;
        match result {
            Ok(report) if report.status == Status::Done => {
                shared.done.store(true, Ordering::SeqCst)
            }
            Ok(_) => {}
            Err(_) => backoff.pause().await,
        }
    }
    reader.abort();
}

/// What an attempt started now must cover at least: the largest row and the published txids
/// (the attempt's own snapshot, taken a moment later, covers these and maybe more).
async fn covered_rows(world: &World, engine: &Engine) -> Result<(i64, String), String> {
    let chain = engine.versions(DATASET).await.map_err(|e| e.to_string())?;
    let txids: Vec<String> = chain.into_iter().map(|link| link.txid).collect();
    let last = uncharged(|| {
        table_file(world)
            .and_then(|c| c.query_row("SELECT COALESCE(MAX(seq), 0) FROM items", [], |r| r.get(0)))
    })
    .map_err(|e| e.to_string())?;
    Ok((
        last,
        serde_json::to_string(&txids).expect("strings serialise"),
    ))
}

/// How many of the rows `covered` names have no version (read on the harness's own
/// connection, with no await, right as the attempt returned).
fn unstamped(world: &World, (last, txids): &(i64, String)) -> rusqlite::Result<u64> {
    uncharged(|| {
        table_file(world)?.query_row(
            "SELECT COUNT(*) FROM items WHERE seq <= ?1 AND version IS NULL
             AND txid IN (SELECT value FROM json_each(?2))",
            (last, txids),
            |r| r.get(0),
        )
    })
}

/// A read that needs the backfilling handle's table connection but little work of its own:
/// the head, then the first page of five rows of it.
async fn first_page(engine: &Engine) -> Result<(), EngineError> {
    let head = engine.head(DATASET).await?;
    engine
        .stream(DATASET, head.version, 5)
        .await?
        .next_page()
        .await?;
    Ok(())
}

/// Reads the status row on its own handle until the backfill is done.
async fn observer(shared: Arc<Shared>) {
    let Some(engine) = support::open_or_fail(&shared.world, "observer", "open-succeeds").await
    else {
        return;
    };
    while !shared.done.load(Ordering::SeqCst) {
        observe(&shared, &engine).await;
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}

/// A writer: appends new rows (stamped on the writers' path) during the backfill.
async fn writer(shared: Arc<Shared>, index: usize) {
    let world = &shared.world;
    let name = Plan::writer_name(index);
    let Some(engine) = support::open_or_fail(world, &name, "open-succeeds").await else {
        return;
    };
    let appends = &shared.plan.writers[index];
    loop {
        let slot = shared.progress[index].fetch_add(1, Ordering::SeqCst);
        let Some(pause) = appends.get(slot) else {
            break;
        };
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        let rows = items(&format!("{name}-{slot}"), plan::WRITER_ROWS);
        let mut backoff = Backoff::new(Duration::from_millis(2));
        for _ in 0..ATTEMPTS {
            match engine.append(DATASET, &rows).await {
                Ok(receipt) => {
                    world.event("append", format!("v{}", receipt.version));
                    break;
                }
                Err(error) if error.is_conflict() => backoff.pause().await,
                Err(error) => {
                    world.event("append.error", &error);
                    break;
                }
            }
        }
    }
    shared.writers_done[index].store(true, Ordering::SeqCst);
}

/// Reads the final store through a fresh handle (its recovery ran first).
async fn final_store(world: &World) -> Result<FinalStore, String> {
    let checker = support::open(world, "checker")
        .await
        .map_err(|e| e.to_string())?;
    let chain: BTreeMap<String, u64> = checker
        .versions(DATASET)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|link| (link.txid, link.version))
        .collect();
    let status = checker
        .background_migration(&backfill::migration_name(DATASET))
        .await
        .map_err(|e| e.to_string())?
        .map(row_of);
    let rows = uncharged(|| {
        let connection = table_file(world)?;
        let mut statement =
            connection.prepare("SELECT seq, txid, version FROM items ORDER BY seq")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(|e| e.to_string())?;
    Ok(FinalStore {
        rows,
        chain,
        status,
    })
}

/// Every check over the history and the final store; the first one broken is the failure.
fn check(shared: &Shared, store: &FinalStore, bound: Duration) {
    let mut history = shared.history().clone();
    history.injections = shared
        .world
        .injected_errors()
        .into_iter()
        .filter(|i| i.node == "backfiller")
        .filter(|i| {
            i.point.starts_with("engine.backfill.") || i.point.starts_with("engine.background.")
        })
        .filter(|i| i.point != "engine.background.read")
        .map(|i| i.at)
        .collect();
    history.preemptions = shared
        .world
        .preemptions()
        .into_iter()
        .map(|p| (p.at, p.pause.as_nanos() as u64))
        .collect();
    history.observations.push(Observation {
        at: shared.now(),
        row: Ok(store.status.clone()),
    });
    let world = &shared.world;
    let during = |read: &invariants::Read, a: &invariants::Attempt| {
        read.at >= a.started && a.ended.as_ref().is_none_or(|(end, _)| read.at <= *end)
    };
    world.sometimes(
        "read-during-backfill",
        history
            .reads
            .iter()
            .any(|r| history.attempts.iter().any(|a| during(r, a))),
    );
    world.sometimes("attempt-retried", history.attempts.len() > 1);
    world.sometimes(
        "attempt-canceled",
        history.attempts.iter().any(|a| {
            matches!(&a.ended, Some((_, invariants::Ended::Report { status, .. })) if status == "canceled")
        }),
    );
    let checks: [(&str, Result<(), String>); 5] = [
        ("errors-propagate", invariants::errors_propagate(&history)),
        (
            "cancel-is-partial",
            invariants::cancel_is_partial(&history, store.status.as_ref()),
        ),
        ("progress-honest", invariants::progress_honest(&history)),
        ("done-means-done", invariants::done_means_done(store)),
        (
            "reader-wait-bounded",
            invariants::reader_wait_bounded(&history, bound.as_nanos() as u64),
        ),
    ];
    for (invariant, result) in checks {
        if let Err(message) = result {
            shared.world.fail(invariant, message);
            return;
        }
    }
}
