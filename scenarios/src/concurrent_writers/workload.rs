//! The simulated run: setup, writer and reader nodes, the fault phase, healing, the
//! liveness bound and the final checks.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faultline::{Engine, Item};
use faultline_sim::world::World;

use super::invariants;
use super::ledger::{Ledger, Record, Status};
use super::plan::{self, Plan};
use crate::support;

/// Conflicts an append retries through before it gives up with an error.
const MAX_CONFLICT_RETRIES: u32 = 12;
/// Items per page when streaming.
const PAGE: usize = 3;

struct Shared {
    world: World,
    plan: Plan,
    ledger: Mutex<Ledger>,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub async fn run(world: World) {
    faultline::sql::seed_prng(world.seed());
    let plan = plan::draw(|site, bound| world.draw(site, bound));
    world.event("plan", describe(&plan));
    // The setup handle stays open for the whole run, as a long-lived process on the store
    // would; it also keeps SQLite from tearing down and rebuilding the WAL at every close.
    let _keeper = create_datasets(&world, &plan).await;
    let shared = Arc::new(Shared {
        ledger: Mutex::new(ledger_for(&plan)),
        world: world.clone(),
        plan,
    });
    start_nodes(&shared);
    if !support::faults_then_heal(&world, || all_done(&shared)).await {
        let unfinished = unfinished(&shared);
        let bound = support::LIVENESS_BOUND;
        world.fail_liveness(
            "writers-finish",
            format!("not finished {bound:?} after healing: {unfinished}"),
        );
        return;
    }
    check_final(&shared).await;
}

fn describe(plan: &Plan) -> String {
    let ops: Vec<String> = plan
        .writers
        .iter()
        .map(|ops| ops.len().to_string())
        .collect();
    format!(
        "{} datasets, writers with ops [{}], {} reads",
        plan.datasets.len(),
        ops.join(","),
        plan.reads.len()
    )
}

async fn create_datasets(world: &World, plan: &Plan) -> Engine {
    let engine = support::open(world, "setup")
        .await
        .expect("setup runs without faults");
    for dataset in &plan.datasets {
        engine
            .create_dataset(dataset)
            .await
            .expect("setup runs without faults");
        engine
            .item_count(dataset)
            .await
            .expect("setup runs without faults");
    }
    engine
}

fn ledger_for(plan: &Plan) -> Ledger {
    let mut ledger = Ledger {
        next_op: vec![0; plan.writers.len()],
        writer_done: vec![false; plan.writers.len()],
        ..Ledger::default()
    };
    for (writer, ops) in plan.writers.iter().enumerate() {
        for (index, op) in ops.iter().enumerate() {
            let keys = (0..op.batch).map(|i| Plan::key(writer, index, i)).collect();
            let dataset = plan.datasets[op.dataset].clone();
            ledger.records.insert(
                (writer, index),
                Record {
                    dataset,
                    keys,
                    payload: op.payload,
                    status: Status::Planned,
                    conflicts: 0,
                },
            );
        }
    }
    ledger
}

fn start_nodes(shared: &Arc<Shared>) {
    for writer in 0..shared.plan.writers.len() {
        let node_shared = shared.clone();
        shared.world.add_node(&Plan::writer_name(writer), move || {
            run_writer(node_shared.clone(), writer)
        });
    }
    if !shared.plan.reads.is_empty() {
        let node_shared = shared.clone();
        shared
            .world
            .add_node("reader", move || run_reader(node_shared.clone()));
    }
}

fn all_done(shared: &Shared) -> bool {
    let ledger = shared.ledger();
    ledger.writer_done.iter().all(|d| *d) && ledger.reads_done >= shared.plan.reads.len()
}

fn unfinished(shared: &Shared) -> String {
    let ledger = shared.ledger();
    let mut names: Vec<String> = (0..ledger.writer_done.len())
        .filter(|w| !ledger.writer_done[*w])
        .map(|w| format!("{} at op {}", Plan::writer_name(w), ledger.next_op[w]))
        .collect();
    if ledger.reads_done < shared.plan.reads.len() {
        names.push(format!("reader at round {}", ledger.reads_done));
    }
    names.join(", ")
}

/// A writer node's life (runs again after each restart). A restarted writer is not done
/// until it has checked durable-ack on the store it reopened, even if it had finished its
/// appends before the crash: the run waits for that check instead of ending under it.
async fn run_writer(shared: Arc<Shared>, writer: usize) {
    let world = &shared.world;
    shared.ledger().writer_done[writer] = false;
    let Some(engine) =
        support::open_or_fail(world, &Plan::writer_name(writer), "errors-are-faults").await
    else {
        return;
    };
    if resume_after_crash(&shared, writer) {
        check_durable(&shared, &engine).await;
    }
    while let Some((index, dataset, items)) = next_append(&shared, writer) {
        let status = append_with_retry(&shared, &engine, (writer, index), &dataset, &items).await;
        let mut ledger = shared.ledger();
        ledger
            .records
            .get_mut(&(writer, index))
            .expect("planned")
            .status = status;
        ledger.next_op[writer] = index + 1;
    }
    shared.ledger().writer_done[writer] = true;
    world.event("writer.done", writer);
}

/// After a restart: the append that was in flight when the writer died is in doubt.
/// Returns whether this is a restart.
fn resume_after_crash(shared: &Shared, writer: usize) -> bool {
    let mut ledger = shared.ledger();
    let next = ledger.next_op[writer];
    let in_flight = ledger
        .records
        .get(&(writer, next))
        .is_some_and(|r| r.status == Status::InFlight);
    if in_flight {
        ledger
            .records
            .get_mut(&(writer, next))
            .expect("present")
            .status = Status::InDoubt;
        ledger.next_op[writer] = next + 1;
    }
    in_flight
        || ledger
            .records
            .range((writer, 0)..(writer, next))
            .next()
            .is_some()
}

fn next_append(shared: &Shared, writer: usize) -> Option<(usize, String, Vec<Item>)> {
    let mut ledger = shared.ledger();
    let index = ledger.next_op[writer];
    let record = ledger.records.get_mut(&(writer, index))?;
    record.status = Status::InFlight;
    let items = record
        .keys
        .iter()
        .map(|key| Item {
            key: key.clone(),
            payload: Plan::payload(record.payload, key),
        })
        .collect();
    Some((index, record.dataset.clone(), items))
}

async fn append_with_retry(
    shared: &Shared,
    engine: &Engine,
    op: (usize, usize),
    dataset: &str,
    items: &[Item],
) -> Status {
    let world = &shared.world;
    for attempt in 0..=MAX_CONFLICT_RETRIES {
        match engine.append(dataset, items).await {
            Ok(receipt) => {
                world.event(
                    "append.ok",
                    format!(
                        "{dataset} v{} +{} = {}",
                        receipt.version, receipt.appended, receipt.items_total
                    ),
                );
                return Status::Acked {
                    version: receipt.version,
                    appended: receipt.appended,
                };
            }
            Err(error) if error.is_conflict() => {
                world.event("append.conflict", &error);
                world.sometimes("conflict-retried", true);
                shared
                    .ledger()
                    .records
                    .get_mut(&op)
                    .expect("planned")
                    .conflicts += 1;
                tokio::time::sleep(Duration::from_millis(1 + u64::from(attempt))).await;
            }
            Err(error) => {
                world.event("append.error", &error);
                let who = format!("writer-{}/op{}", op.0, op.1);
                note_unexplained(shared, &who, &error);
                return Status::Failed(error.to_string());
            }
        }
    }
    let starved = format!("gave up after {MAX_CONFLICT_RETRIES} conflicts");
    shared
        .ledger()
        .unexplained
        .push((format!("writer-{}/op{}", op.0, op.1), starved.clone()));
    Status::Failed(starved)
}

/// Keeps an error for errors-are-faults unless it is an injected fault.
fn note_unexplained(shared: &Shared, who: &str, error: &faultline::EngineError) {
    if !matches!(error, faultline::EngineError::Injected(_)) {
        shared
            .ledger()
            .unexplained
            .push((who.to_owned(), error.to_string()));
    }
}

/// durable-ack on the live store, as a restarted writer sees it.
async fn check_durable(shared: &Shared, engine: &Engine) {
    // Take the acknowledgements before reading: anything acked later may legitimately be
    // missing from this read.
    let ledger = shared.ledger().clone();
    match support::observe_latest(engine, &shared.plan.datasets).await {
        Ok(latest) => {
            if let Err(message) = invariants::durable_ack(&ledger, &latest) {
                shared.world.fail("durable-ack", message);
            }
        }
        Err(error) => shared.world.event("observe.error", &error),
    }
}

/// The reader node: streams the head version of a dataset each round and checks that the
/// stream agrees with the version's items_total (counts-agree, as a concurrent reader sees it).
async fn run_reader(shared: Arc<Shared>) {
    let world = &shared.world;
    let Some(engine) = support::open_or_fail(world, "reader", "errors-are-faults").await else {
        return;
    };
    // swarm may leave the reads out of a seed: the writers then have the store to themselves.
    if !world.allows("read") {
        shared.ledger().reads_done = shared.plan.reads.len();
        return;
    }
    loop {
        let round = shared.ledger().reads_done;
        let Some(&(pause, dataset)) = shared.plan.reads.get(round) else {
            break;
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let dataset = &shared.plan.datasets[dataset];
        match read_head(&engine, dataset).await {
            Ok(Some((version, total, streamed))) => {
                world.event(
                    "read",
                    format!("{dataset} v{version}: streamed {streamed} of {total}"),
                );
                if streamed != total {
                    let message = format!("reader streamed {streamed} items of {dataset} v{version} whose items_total is {total}");
                    world.fail("counts-agree", message);
                }
            }
            Ok(None) => world.event("read", format!("{dataset} is empty")),
            Err(error) => {
                world.event("read.error", &error);
                note_unexplained(&shared, &format!("reader/round{round}"), &error);
                continue;
            }
        }
        shared.ledger().reads_done = round + 1;
    }
}

async fn read_head(engine: &Engine, dataset: &str) -> faultline::Result<Option<(u64, u64, u64)>> {
    let chain = engine.versions(dataset).await?;
    let Some(head) = chain.last() else {
        return Ok(None);
    };
    let items = engine
        .stream(dataset, head.version, PAGE)
        .await?
        .collect()
        .await?;
    Ok(Some((head.version, head.items_total, items.len() as u64)))
}

/// After the run: every invariant on the live store, then durable-ack on a crash image.
async fn check_final(shared: &Shared) {
    let world = &shared.world;
    let ledger = shared.ledger().clone();
    let Some(engine) = support::open_or_fail(world, "checker", "errors-are-faults").await else {
        return;
    };
    let observed = support::observe(&engine, &shared.plan.datasets)
        .await
        .expect("no faults after healing");
    let checks: [(&str, Result<(), String>); 6] = [
        ("no-silent-drop", invariants::no_silent_drop(&ledger)),
        ("errors-are-faults", invariants::errors_are_faults(&ledger)),
        ("linear-chain", invariants::linear_chain(&observed)),
        ("counts-agree", invariants::counts_agree(&observed)),
        (
            "no-lost-write",
            invariants::no_lost_write(&ledger, &observed),
        ),
        (
            "payloads-intact",
            invariants::payloads_intact(&ledger, &observed),
        ),
    ];
    for (name, result) in checks {
        if let Err(message) = result {
            world.fail(name, message);
            return;
        }
    }
    let image = world.capture_image_after_power_loss();
    let (reopened, _) = match faultline::Engine::open(&image, "image-checker").await {
        Ok(opened) => opened,
        Err(error) => {
            let message = format!("image-checker could not open the power-loss image: {error}");
            world.fail("errors-are-faults", message);
            return;
        }
    };
    let after_crash = support::observe_latest(&reopened, &shared.plan.datasets)
        .await
        .expect("no faults after healing");
    if let Err(message) = invariants::durable_ack(&ledger, &after_crash) {
        world.fail("durable-ack", message);
        return;
    }
    if !crate::store_clean::check_world(world, &[]).await {
        return;
    }
    let totals: Vec<String> = observed
        .iter()
        .map(|(d, v)| format!("{d}={}", v.item_count))
        .collect();
    world.event("checked", totals.join(" "));
}
