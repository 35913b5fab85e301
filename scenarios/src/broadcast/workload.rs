//! The broadcaster-disconnect workload under the simulator: a broadcaster host, worker hosts
//! (engine handles on one store, each running a [`Worker`] and a probe), network faults and
//! crashes; then healing, convergence and the checks over the recorded history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::broadcast::{self, BroadcastEvent, BroadcasterSettings};
use faultline::workers::{OnDisconnect, Worker, WorkerSettings};
use faultline::{EngineError, Item};
use faultline_sim::world::World;
use tokio::time::Instant;

use super::invariants::{self, Commit, History, Observation, Relay};
use super::plan::{self, Plan};
use crate::support::{self, Backoff};

/// The port the broadcaster listens on.
const PORT: u16 = 7100;
/// Time between two probe reads of a worker.
const PROBE: Duration = Duration::from_millis(20);
/// The bound of no-lost-update, never-deaf and bounded-staleness: a worker's 300 ms
/// silence, its reconnect backoff, injected delays and latency, with slack.
const BOUND: Duration = Duration::from_secs(1);
/// Simulated time after healing within which every worker must have converged.
const CONVERGE_BOUND: Duration = Duration::from_secs(5);
/// Pause before a supervisor starts a fresh worker after one exited.
const RESPAWN: Duration = Duration::from_millis(10);
/// Attempts at a change that keeps losing the compare-and-swap.
const ATTEMPTS: usize = 12;

/// What every node of the run shares.
struct Shared {
    world: World,
    plan: Plan,
    broadcaster: SocketAddr,
    start: Instant,
    history: Arc<Mutex<History>>,
    current: Vec<Mutex<Option<Worker>>>,
    progress: Vec<AtomicUsize>,
    done: Vec<AtomicBool>,
}

impl Shared {
    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self, worker: usize) -> Option<Worker> {
        self.current[worker].lock().unwrap().clone()
    }

    fn set_current(&self, worker: usize, running: Option<Worker>) {
        *self.current[worker].lock().unwrap() = running;
    }
}

/// Simulated nanoseconds since `start`.
fn clock(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

pub async fn run(world: World) {
    faultline::sql::seed_prng(world.seed());
    let plan = plan::draw(|site, bound| world.draw(site, bound));
    let start = Instant::now();
    let history = Arc::new(Mutex::new(History::default()));
    let ip = {
        let (world, history) = (world.clone(), history.clone());
        world.clone().add_host(Plan::BROADCASTER, move || {
            broadcaster(world.clone(), history.clone(), start)
        })
    };
    if !set_up(&world).await {
        return;
    }
    let workers = plan.workers.len();
    let shared = Arc::new(Shared {
        world: world.clone(),
        plan,
        broadcaster: SocketAddr::new(ip, PORT),
        start,
        history,
        current: (0..workers).map(|_| Mutex::new(None)).collect(),
        progress: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
        done: (0..workers).map(|_| AtomicBool::new(false)).collect(),
    });
    for index in 0..workers {
        let shared = shared.clone();
        world.add_host(&Plan::worker_name(index), move || {
            worker_node(shared.clone(), index)
        });
    }
    let all_done = || shared.done.iter().all(|d| d.load(Ordering::SeqCst));
    let finished = support::faults_then_heal(&world, all_done).await;
    if world.has_failed() {
        return;
    }
    let converged = match finished {
        true => converge(&shared).await,
        false => Err("the workers had not finished their changes after healing".to_owned()),
    };
    check_history(&shared);
    match converged {
        Err(why) if !world.has_failed() => world.fail_liveness("converges", why),
        Ok(after) => world.event(
            "converged",
            format!("{}ms after healing", after.as_millis()),
        ),
        Err(_) => {}
    }
    if !world.has_failed() {
        crate::store_clean::check_world(&world, &[]).await;
    }
}

/// The broadcaster host: every (re)start ends every subscription in the history.
async fn broadcaster(world: World, history: Arc<Mutex<History>>, start: Instant) {
    history.lock().unwrap().broadcaster_started(clock(start));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", PORT))
        .await
        .expect("bind");
    world.node_ready();
    let observer: broadcast::Observer = Arc::new(move |event| {
        let at = clock(start);
        let mut history = history.lock().unwrap();
        match &event {
            BroadcastEvent::Subscribed { name, .. } => {
                if let Some(worker) = worker_index(name) {
                    history.subscribed(worker, at);
                }
                world.event("subscribed", name);
            }
            BroadcastEvent::Unsubscribed { name, .. } => {
                if let Some(worker) = worker_index(name) {
                    history.unsubscribed(worker, at);
                }
                world.event("unsubscribed", name);
                world.sometimes("unsubscribed", true);
            }
            BroadcastEvent::Relayed {
                payload,
                subscribers,
                ..
            } => {
                let parsed = payload.split_once(' ');
                if let Some((dataset, Ok(version))) = parsed.map(|(d, v)| (d, v.parse())) {
                    history.relays.push(Relay {
                        at,
                        dataset: dataset.to_owned(),
                        version,
                    });
                }
                world.event("relay", format!("{payload} to {subscribers}"));
                world.sometimes("relay-delivered", *subscribers > 0);
            }
        }
    });
    broadcast::serve(listener, BroadcasterSettings::default(), Some(observer)).await;
}

fn worker_index(name: &str) -> Option<usize> {
    name.strip_prefix("worker-")?.parse().ok()
}

/// Creates the datasets before the workers start.
async fn set_up(world: &World) -> bool {
    let Some(engine) = support::open_or_fail(world, "setup", "open-succeeds").await else {
        return false;
    };
    for number in 0..plan::DATASETS {
        let dataset = Plan::dataset_name(number);
        if let Err(error) = engine.create_dataset(&dataset).await {
            world.fail(
                "open-succeeds",
                format!("setup could not create {dataset}: {error}"),
            );
            return false;
        }
    }
    world.event("setup", format!("{} datasets", plan::DATASETS));
    true
}

fn settings(plan: &Plan) -> WorkerSettings {
    let mut settings = WorkerSettings::default();
    if plan.exit_on_disconnect {
        settings.on_disconnect = OnDisconnect::Exit;
    }
    settings
}

/// A worker host: opens its handle, starts its worker (and, when workers exit on a lost
/// subscription, the supervisor that starts a fresh one), probes it, and makes its changes.
async fn worker_node(shared: Arc<Shared>, index: usize) {
    shared.set_current(index, None);
    let world = &shared.world;
    let name = Plan::worker_name(index);
    let Some(engine) = support::open_or_fail(world, &name, "open-succeeds").await else {
        return;
    };
    let settings = settings(&shared.plan);
    let worker = Worker::start(&name, engine.clone(), shared.broadcaster, settings)
        .expect("a valid worker name");
    shared.set_current(index, Some(worker.clone()));
    tokio::spawn(probe(shared.clone(), index));
    if settings.on_disconnect == OnDisconnect::Exit {
        let (shared, name) = (shared.clone(), name.clone());
        tokio::spawn(async move {
            let mut worker = worker;
            loop {
                let why = worker.stopped().await;
                shared.world.event("worker.exit", format!("{name}: {why}"));
                shared.world.sometimes("worker-exited", true);
                tokio::time::sleep(RESPAWN).await;
                worker = Worker::start(&name, engine.clone(), shared.broadcaster, settings)
                    .expect("a valid worker name");
                shared.set_current(index, Some(worker.clone()));
            }
        });
    }
    let changes = &shared.plan.workers[index];
    loop {
        let slot = shared.progress[index].fetch_add(1, Ordering::SeqCst);
        let Some((pause, dataset)) = changes.get(slot) else {
            break;
        };
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        change(&shared, index, slot, &Plan::dataset_name(*dataset)).await;
        if world.has_failed() {
            return;
        }
    }
    shared.done[index].store(true, Ordering::SeqCst);
    // madsim ends a node, and drops every task it spawned, when its init future returns: the
    // worker and its probe live on until the run ends.
    std::future::pending::<()>().await;
}

/// One change through the worker running now, retried while it loses the race.
async fn change(shared: &Shared, index: usize, slot: usize, dataset: &str) {
    let world = &shared.world;
    let name = Plan::worker_name(index);
    let item = Item {
        key: format!("{name}/{slot}"),
        payload: format!("change {slot} of {name}"),
    };
    let mut backoff = Backoff::new(Duration::from_millis(2));
    for _ in 0..ATTEMPTS {
        let Some(worker) = shared.current(index) else {
            backoff.pause().await;
            continue;
        };
        match worker.change(dataset, std::slice::from_ref(&item)).await {
            Ok(receipt) => {
                shared.history().commits.push(Commit {
                    at: clock(shared.start),
                    dataset: dataset.to_owned(),
                    version: receipt.version,
                });
                world.event("change", format!("{dataset} {}", receipt.version));
                return;
            }
            Err(EngineError::Conflict { .. }) => backoff.pause().await,
            Err(error) => return world.event("change.error", format!("{dataset}: {error}")),
        }
    }
    world.event("change.gave-up", dataset);
}

/// Reads the worker's view and health every [`PROBE`], for as long as the node lives.
async fn probe(shared: Arc<Shared>, index: usize) {
    loop {
        tokio::time::sleep(PROBE).await;
        let Some(worker) = shared.current(index) else {
            continue;
        };
        let health = worker.health();
        let observation = Observation {
            at: clock(shared.start),
            worker: index,
            connected: health.connected,
            healthy: health.healthy(),
            view: worker.view(),
        };
        shared.history().observations.push(observation);
    }
}

/// After healing: waits until every worker is healthy and serves the store's heads (two
/// probes in a row); returns how long that took after healing.
async fn converge(shared: &Shared) -> Result<Duration, String> {
    let world = &shared.world;
    let healed = Instant::now();
    let checker = support::open(world, "checker")
        .await
        .map_err(|e| format!("the checker could not open the store: {e}"))?;
    let mut agreed = 0;
    let mut why = String::new();
    while healed.elapsed() < CONVERGE_BOUND {
        let heads: BTreeMap<String, u64> = match checker.heads().await {
            Ok(heads) => heads,
            Err(error) => {
                why = format!("the checker could not read the heads: {error}");
                tokio::time::sleep(PROBE).await;
                continue;
            }
        };
        let behind = (0..shared.plan.workers.len()).find_map(|index| {
            let name = Plan::worker_name(index);
            let Some(worker) = shared.current(index) else {
                return Some(format!("{name} is not running"));
            };
            if !worker.health().healthy() {
                return Some(format!("{name} is not healthy: {:?}", worker.health()));
            }
            let view = worker.view().unwrap_or_default();
            invariants::converged(&view, &heads)
                .err()
                .map(|e| format!("{name}: {e}"))
        });
        match behind {
            None => {
                agreed += 1;
                if agreed == 2 {
                    return Ok(healed.elapsed());
                }
            }
            Some(reason) => {
                agreed = 0;
                why = reason;
            }
        }
        tokio::time::sleep(PROBE).await;
    }
    Err(format!(
        "{}ms after healing: {why}",
        CONVERGE_BOUND.as_millis()
    ))
}

/// The safety checks over the whole history; the first one broken is the failure.
fn check_history(shared: &Shared) {
    let history = shared.history().clone();
    let bound = BOUND.as_nanos() as u64;
    let checks: [(&str, Result<(), String>); 4] = [
        ("no-regression", invariants::no_regression(&history)),
        ("never-deaf", invariants::never_deaf(&history, bound)),
        (
            "no-lost-update",
            invariants::no_lost_update(&history, bound),
        ),
        (
            "bounded-staleness",
            invariants::bounded_staleness(&history, bound),
        ),
    ];
    for (invariant, result) in checks {
        if let Err(message) = result {
            shared.world.fail(invariant, message);
            return;
        }
    }
}
