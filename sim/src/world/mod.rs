//! The running simulation as a scenario sees it: choices, events, violations, nodes,
//! crashes and the fault bridge that decides every failpoint hit.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use faultline_fp::Simulation;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use madsim::time::Instant;

use crate::coverage::{Coverage, CRASH_IN_RECOVERY, ERROR_IN_RECOVERY};
use crate::crash::Disk;
use crate::faults::{CrashScope, Decision, FaultModel};
pub use crate::limits::Limits;
use crate::net::NetModel;
use crate::outcome::{Failure, FailureKind};
use crate::site::{self, FailpointSite};
use crate::strategy::{Strategy, PREEMPT_CRASH, PREEMPT_POINT};
use crate::tape::{Chooser, Entry, Source};
use crate::trace::{Event, Trace};

mod net;

struct WorkloadNode {
    id: NodeId,
    name: String,
    incarnation: u32,
    /// Restarted and not yet ready ([`World::node_ready`]): its hits are its start-up.
    starting: bool,
    /// Its address, for a host ([`World::add_host`]); network faults act on hosts only.
    ip: Option<std::net::IpAddr>,
    /// Statement boundaries it reached, across its restarts (numbers its preemption sites).
    boundaries: u64,
}

/// Sees every event as it is recorded (a worker streams them, so a run that hangs or kills
/// its process still leaves its timeline).
pub type Observer = Box<dyn Fn(&Event) + Send + Sync>;

/// A fault of the environment met inside a run (a crash image that cannot be written):
/// the runner reports it as such, never as a failure of the engine.
#[derive(Debug)]
pub struct EnvironmentFault(pub String);

struct State {
    chooser: Chooser,
    /// Operation kinds the strategy left out that the workload asked about.
    left_out: std::collections::BTreeSet<String>,
    trace: Trace,
    failure: Option<Failure>,
    nodes: Vec<WorkloadNode>,
    healed: bool,
    crashes: u32,
    /// Decided hits per (node name, failpoint).
    hits: BTreeMap<(String, &'static str), u64>,
    all_hits: BTreeMap<&'static str, u64>,
    steps: u64,
    store: PathBuf,
    images: u32,
    supervisor: Option<NodeHandle>,
    start: Option<Instant>,
    start_up_sites: Vec<String>,
    observer: Option<Observer>,
    network: net::Network,
    injected: Vec<Injection>,
    strategy: Box<dyn Strategy>,
    preempted: Vec<Preemption>,
    /// Statement boundaries reached on workload nodes, every node counted.
    boundaries: u64,
    coverage: Coverage,
}

/// A statement boundary the run preempted ([`crate::strategy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// Simulated nanoseconds since the run started (the trace's clock).
    pub at: u64,
    /// The node that was preempted.
    pub node: String,
    /// How long it was held back (zero for a yield).
    pub pause: std::time::Duration,
}

/// An error the run injected at a failpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// Simulated nanoseconds since the run started (the trace's clock).
    pub at: u64,
    /// The node it was injected on.
    pub node: String,
    /// The failpoint.
    pub point: &'static str,
}

impl State {
    /// Simulated nanoseconds since the run started (the trace's clock).
    fn now_ns(&self) -> u64 {
        self.start
            .map_or(0, |start| start.elapsed().as_nanos() as u64)
    }

    fn push(&mut self, event: Event) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
        self.trace.push(event);
    }
}

struct Shared {
    seed: u64,
    model: FaultModel,
    net_model: NetModel,
    limits: Limits,
    run_dir: PathBuf,
    disk: Box<dyn Disk>,
    state: Mutex<State>,
}

/// A handle on the running simulation; cheap to clone and `Send`.
#[derive(Clone)]
pub struct World {
    shared: Arc<Shared>,
}

/// What a finished run leaves behind.
pub struct Finished {
    /// Every choice made, in order.
    pub entries: Vec<Entry>,
    /// The first replay divergence, if any.
    pub divergence: Option<String>,
    /// The events.
    pub trace: Trace,
    /// The first failure recorded by the scenario or the harness.
    pub failure: Option<Failure>,
    /// How often each failpoint was hit, on any node, faults on or off.
    pub hits: BTreeMap<String, u64>,
    /// The failpoint sites drawn on restarted nodes before they were ready, in order.
    pub start_up_sites: Vec<String>,
    /// What the run reached.
    pub coverage: Coverage,
}

impl World {
    pub(crate) fn new(
        seed: u64,
        (chooser, strategy): (Chooser, Box<dyn Strategy>),
        (model, net_model): (FaultModel, NetModel),
        limits: Limits,
        run_dir: PathBuf,
        disk: Box<dyn Disk>,
    ) -> Self {
        let state = State {
            chooser,
            left_out: Default::default(),
            trace: Trace::default(),
            failure: None,
            nodes: Vec::new(),
            healed: false,
            crashes: 0,
            hits: BTreeMap::new(),
            all_hits: BTreeMap::new(),
            steps: 0,
            store: run_dir.join("store"),
            images: 0,
            supervisor: None,
            start: None,
            start_up_sites: Vec::new(),
            observer: None,
            network: net::Network::default(),
            injected: Vec::new(),
            strategy,
            preempted: Vec::new(),
            boundaries: 0,
            coverage: Coverage::default(),
        };
        let shared = Shared {
            seed,
            model,
            net_model,
            limits,
            run_dir,
            disk,
            state: Mutex::new(state),
        };
        World {
            shared: Arc::new(shared),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called by the runner inside the runtime before the scenario starts.
    pub(crate) fn start(&self) {
        let supervisor = Handle::current().create_node().name("supervisor").build();
        let mut state = self.state();
        state.supervisor = Some(supervisor);
        state.start = Some(Instant::now());
        let chosen = state.strategy.describe();
        drop(state);
        if !chosen.is_empty() {
            self.event("strategy", chosen);
        }
        self.start_network_faults();
    }

    /// Every statement boundary preempted so far, in order: checks that bound how long
    /// something takes allow for the time a preempted node was held back.
    pub fn preemptions(&self) -> Vec<Preemption> {
        self.state().preempted.clone()
    }

    /// Every error injected so far, in order.
    pub fn injected_errors(&self) -> Vec<Injection> {
        self.state().injected.clone()
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.state().now_ns())
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The directory the store lives in now (it moves to an image after a store crash).
    pub fn store_dir(&self) -> PathBuf {
        self.state().store.clone()
    }

    /// A value in `0..=bound` for `site` (0 is the simplest choice).
    pub fn draw(&self, site: impl Into<String>, bound: u64) -> u64 {
        let mut state = self.state();
        self.step(&mut state);
        state.chooser.draw(site.into(), bound)
    }

    /// Records an event on the current node.
    pub fn event(&self, kind: &str, detail: impl fmt::Display) {
        let mut state = self.state();
        self.step(&mut state);
        let event = self.make_event(&state, kind, detail.to_string());
        state.push(event);
    }

    /// Records that `invariant` broke (only the first failure of a run is kept).
    pub fn fail(&self, invariant: &str, message: impl Into<String>) {
        self.record_failure(FailureKind::Invariant, invariant, message.into());
    }

    /// Records a liveness failure: `bound` was not met.
    pub fn fail_liveness(&self, bound: &str, message: impl Into<String>) {
        self.record_failure(FailureKind::Liveness, bound, message.into());
    }

    /// Notes that the sometimes-assertion `name` (one of [`crate::Scenario::sometimes`])
    /// holds now, if `held`: a sweep reports how many runs saw each hold, and a sweep with
    /// `--require-coverage` fails when one never did. Records nothing in the trace.
    pub fn sometimes(&self, name: &'static str, held: bool) {
        if held {
            self.state().coverage.held(name);
        }
    }

    /// Whether the workload may perform operations of kind `operation` in this run: always,
    /// unless the strategy (`swarm`) leaves that kind out for this seed. A family asks once
    /// for each kind it can do without (`"delete"`, `"read"`...) and skips the operations
    /// of a kind left out; the first refusal of each kind is a `swarm` event in the trace.
    pub fn allows(&self, operation: &str) -> bool {
        let mut state = self.state();
        if state.strategy.allows(operation) {
            return true;
        }
        if state.left_out.insert(operation.to_owned()) {
            let event = self.make_event(&state, "swarm", format!("operation {operation} left out"));
            state.push(event);
        }
        false
    }

    /// Whether a failure has been recorded.
    pub fn has_failed(&self) -> bool {
        self.state().failure.is_some()
    }

    /// Whether faults are off.
    pub fn is_healed(&self) -> bool {
        self.state().healed
    }

    /// Stops injecting faults: every later failpoint hit continues and draws nothing.
    pub fn heal(&self) {
        self.state().healed = true;
        self.event("heal", "faults off");
        self.heal_network();
    }

    /// Creates a workload node named `name` running `init`; `init` runs again after every
    /// restart of the node. Failpoint hits on workload nodes are decided by the fault model.
    pub fn add_node<F>(&self, name: &str, init: impl Fn() -> F + Send + Sync + 'static) -> NodeId
    where
        F: Future<Output = ()> + 'static,
    {
        self.create_node(name, None, init)
    }

    /// Creates a workload node like [`World::add_node`], with a network address of its own
    /// (`10.0.0.1`, `10.0.0.2`, ... in order of creation), which the network fault model
    /// partitions, isolates, mutes and slows. Returns the address.
    pub fn add_host<F>(
        &self,
        name: &str,
        init: impl Fn() -> F + Send + Sync + 'static,
    ) -> std::net::IpAddr
    where
        F: Future<Output = ()> + 'static,
    {
        let hosts = self.state().nodes.iter().filter(|n| n.ip.is_some()).count();
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, hosts as u8 + 1));
        self.create_node(name, Some(ip), init);
        ip
    }

    fn create_node<F>(
        &self,
        name: &str,
        ip: Option<std::net::IpAddr>,
        init: impl Fn() -> F + Send + Sync + 'static,
    ) -> NodeId
    where
        F: Future<Output = ()> + 'static,
    {
        let handle = Handle::current();
        let builder = handle.create_node().name(name).init(init);
        let node = match ip {
            Some(ip) => builder.ip(ip).build(),
            None => builder.build(),
        };
        let id = node.id();
        self.state().nodes.push(WorkloadNode {
            id,
            name: name.to_owned(),
            incarnation: 0,
            starting: false,
            ip,
            boundaries: 0,
        });
        id
    }

    /// Says that the current node has finished starting up (for an engine: its handle is
    /// open, recovery done). Failpoint hits on a restarted node before this call are its
    /// start-up, which crash-point enumeration crashes a second time; a node that never
    /// calls it counts every hit after a restart as start-up. Records nothing.
    pub fn node_ready(&self) {
        let mut state = self.state();
        let id = madsim::plugin::node();
        if let Some(node) = state.nodes.iter_mut().find(|n| n.id == id) {
            node.starting = false;
        }
    }

    /// Calls `observer` with every event as it is recorded. Set before the run starts.
    pub(crate) fn observe(&self, observer: Observer) {
        self.state().observer = Some(observer);
    }

    fn record_failure(&self, kind: FailureKind, invariant: &str, message: String) {
        let mut state = self.state();
        let event = self.make_event(
            &state,
            "violation",
            format!("{kind}:{invariant}: {message}"),
        );
        state.push(event);
        if state.failure.is_none() {
            state.failure = Some(Failure {
                kind,
                invariant: invariant.to_owned(),
                message,
            });
        }
    }

    fn make_event(&self, state: &State, kind: &str, detail: String) -> Event {
        Event {
            time_ns: state.now_ns(),
            node: current_node_name(state),
            kind: kind.to_owned(),
            detail,
        }
    }

    fn step(&self, state: &mut State) {
        state.steps += 1;
        if state.steps > self.shared.limits.max_steps {
            let limit = self.shared.limits.max_steps;
            if state.failure.is_none() {
                state.failure = Some(Failure {
                    kind: FailureKind::Liveness,
                    invariant: "step-limit".to_owned(),
                    message: format!("the run took more than {limit} steps"),
                });
            }
            panic!("faultline: step limit of {limit} exceeded");
        }
    }

    /// Ends the run's nodes once the scenario has returned: kills every workload node and the
    /// supervisor (pending restarts), then yields once so that the executor drops their
    /// tasks. Without this, a node still running at the end (a restarted writer re-reading,
    /// a node the checks outlived) kept its engine handle past the run: madsim never drops
    /// the futures of tasks still pending when its runtime goes, so their SQLite connections
    /// and memory leaked, about one connection in 500, and a long sweep slowed down as they
    /// piled up. Records nothing: the trace and the tape are complete by then.
    pub(crate) async fn stop_nodes(&self) {
        let handle = Handle::current();
        {
            let state = self.state();
            for node in &state.nodes {
                handle.kill(node.id);
            }
            if let Some(supervisor) = &state.supervisor {
                handle.kill(supervisor.id());
            }
        }
        tokio::task::yield_now().await;
    }

    pub(crate) fn finish(&self) -> Finished {
        let mut state = self.state();
        let chooser = std::mem::replace(
            &mut state.chooser,
            Chooser::new(0, &Source::Seed, Default::default()),
        );
        let (entries, divergence) = chooser.finish();
        Finished {
            entries,
            divergence,
            trace: std::mem::take(&mut state.trace),
            failure: state.failure.take(),
            start_up_sites: std::mem::take(&mut state.start_up_sites),
            coverage: Coverage {
                runs: 1,
                preemptions: state.preempted.len() as u64,
                boundaries: state.boundaries,
                boundaries_by_node: state
                    .nodes
                    .iter()
                    .filter(|node| node.boundaries > 0)
                    .map(|node| (node.name.clone(), node.boundaries))
                    .collect(),
                ..std::mem::take(&mut state.coverage)
            },
            hits: state
                .all_hits
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    pub(crate) fn bridge(&self) -> std::rc::Rc<dyn Simulation> {
        std::rc::Rc::new(Bridge {
            world: self.clone(),
        })
    }
}

fn current_node_name(state: &State) -> String {
    let id = madsim::plugin::node();
    state
        .nodes
        .iter()
        .find(|n| n.id == id)
        .map_or_else(|| "supervisor".to_owned(), |n| n.name.clone())
}

fn current_workload_node(state: &State) -> Option<usize> {
    let id = madsim::plugin::node();
    state.nodes.iter().position(|n| n.id == id)
}

/// Decides failpoint hits for the running simulation.
struct Bridge {
    world: World,
}

impl Simulation for Bridge {
    fn decide(&self, point: &'static str) -> faultline_fp::Decision {
        let world = &self.world;
        let mut state = world.state();
        *state.all_hits.entry(point).or_insert(0) += 1;
        let Some(node) = current_workload_node(&state) else {
            return faultline_fp::Decision::Continue;
        };
        if state.healed {
            return faultline_fp::Decision::Continue;
        }
        world.step(&mut state);
        let decision = draw_decision(&world.shared.model, &mut state, node, point);
        if let Decision::Crash(scope) = decision {
            world.crash(state, node, scope);
        }
        decision.action()
    }

    fn note(&self, name: &'static str, detail: &dyn fmt::Display) {
        self.world.event(name, detail);
    }

    fn preempt(&self) -> faultline_fp::Decision {
        let world = &self.world;
        let mut state = world.state();
        if state.healed {
            return faultline_fp::Decision::Continue;
        }
        let Some(node) = current_workload_node(&state) else {
            return faultline_fp::Decision::Continue;
        };
        // Numbered in every run, so that crash-point enumeration can name the boundaries of
        // a run that never decided them.
        state.boundaries += 1;
        state.nodes[node].boundaries += 1;
        if !state.chooser.preempts() {
            return faultline_fp::Decision::Continue;
        }
        let (index, number) = (state.boundaries, state.nodes[node].boundaries);
        let name = state.nodes[node].name.clone();
        let site = FailpointSite::decision(&name, PREEMPT_POINT, number).to_string();
        let State {
            chooser, strategy, ..
        } = &mut *state;
        let mut value = chooser.preemption(site, || strategy.preempt(index));
        if value == PREEMPT_CRASH && state.crashes >= world.shared.model.max_crashes {
            // Over the crash budget: the tape says what happened, a continue.
            state.chooser.amend_last(0);
            value = 0;
        }
        if value == 0 {
            return faultline_fp::Decision::Continue;
        }
        world.step(&mut state);
        let time_ns = state.now_ns();
        if value == PREEMPT_CRASH {
            state.crashes += 1;
            if state.nodes[node].starting {
                state.coverage.held(CRASH_IN_RECOVERY);
            }
            let detail = format!("statement boundary #{number} -> crash");
            state.push(Event {
                time_ns,
                node: name,
                kind: "preempt".to_owned(),
                detail,
            });
            world.crash(state, node, CrashScope::Node);
            return faultline_fp::Decision::Crash;
        }
        // 1 is a yield (no pause), v sleeps v - 1 ms.
        let pause = std::time::Duration::from_millis(value - 1);
        let (decision, what) = match value {
            1 => (faultline_fp::Decision::Yield, "yield".to_owned()),
            _ => (
                faultline_fp::Decision::Sleep(pause),
                format!("sleep {}ms", value - 1),
            ),
        };
        state.preempted.push(Preemption {
            at: time_ns,
            node: name.clone(),
            pause,
        });
        let detail = format!("statement boundary #{number} -> {what}");
        state.push(Event {
            time_ns,
            node: name,
            kind: "preempt".to_owned(),
            detail,
        });
        decision
    }

    /// A debt madsim can sleep (1 ms or more) is slept by the payer; a smaller one moves
    /// the clock of the whole simulation at once.
    fn settle(&self) -> std::time::Duration {
        let debt = crate::iotime::settle();
        if debt >= std::time::Duration::from_millis(1) {
            return debt;
        }
        if !debt.is_zero() {
            madsim::time::advance(debt);
        }
        std::time::Duration::ZERO
    }
}

fn draw_decision(
    model: &FaultModel,
    state: &mut State,
    node: usize,
    point: &'static str,
) -> Decision {
    let name = state.nodes[node].name.clone();
    let hit = state.hits.entry((name.clone(), point)).or_insert(0);
    *hit += 1;
    let site = FailpointSite::decision(&name, point, *hit);
    let starting = state.nodes[node].starting;
    if starting {
        state.start_up_sites.push(site.to_string());
    }
    let crash_allowed = state.crashes < model.max_crashes;
    let weights = state.strategy.weights(point, model.weights);
    let decision = if weights == model.weights {
        Decision::draw(model, &site, crash_allowed, &mut state.chooser)
    } else {
        let model = FaultModel {
            weights,
            ..model.clone()
        };
        Decision::draw(&model, &site, crash_allowed, &mut state.chooser)
    };
    state.coverage.record(point, decision.kind());
    match (starting, &decision) {
        (true, Decision::Crash(_)) => state.coverage.held(CRASH_IN_RECOVERY),
        (true, Decision::Error) => state.coverage.held(ERROR_IN_RECOVERY),
        _ => {}
    }
    if let Decision::Crash(_) = decision {
        state.crashes += 1;
    }
    if decision != Decision::Continue {
        let time_ns = state.now_ns();
        if let Decision::Error = decision {
            state.injected.push(Injection {
                at: time_ns,
                node: name.clone(),
                point,
            });
        }
        let detail = format!("{point}#{} -> {}", site.hit, decision.describe());
        state.push(Event {
            time_ns,
            node: name,
            kind: "fp".to_owned(),
            detail,
        });
    }
    decision
}

impl World {
    /// Crashes at the current instant: kills the node (or every node, after imaging the
    /// store) and schedules the restart on the supervisor node.
    fn crash(&self, mut state: MutexGuard<'_, State>, node: usize, scope: CrashScope) {
        let handle = Handle::current();
        let victims: Vec<usize> = match scope {
            CrashScope::Node => vec![node],
            CrashScope::Store | CrashScope::Power => (0..state.nodes.len()).collect(),
        };
        let (image, kept) = match scope {
            CrashScope::Node => (None, String::new()),
            _ => {
                let (image, kept) =
                    self.capture_image_locked(&mut state, scope == CrashScope::Power);
                (Some(image), kept)
            }
        };
        let names: Vec<String> = victims
            .iter()
            .map(|v| state.nodes[*v].name.clone())
            .collect();
        let detail = match scope {
            CrashScope::Node => format!("process crash of {}", names.join(",")),
            CrashScope::Store => {
                format!("store crash: image {} taken, all nodes down", state.images)
            }
            CrashScope::Power => format!(
                "power loss: image {} taken ({kept}), all nodes down",
                state.images
            ),
        };
        let event = self.make_event(&state, "crash", detail);
        state.push(event);
        state.coverage.fault(scope.name());
        let mut restarts = Vec::new();
        for victim in victims {
            let entry = &mut state.nodes[victim];
            entry.incarnation += 1;
            handle.kill(entry.id);
            restarts.push((entry.id, entry.incarnation));
        }
        let supervisor = state
            .supervisor
            .clone()
            .expect("supervisor created at start");
        drop(state);
        let world = self.clone();
        let delay = self.shared.model.restart_delay;
        supervisor.spawn(async move {
            madsim::time::sleep(delay).await;
            world.restart(image, restarts);
        });
    }

    /// Takes the next image of the store; for a power loss, also says how many of the chunks
    /// written since their file's last sync the image kept (each a tape choice).
    fn capture_image_locked(&self, state: &mut State, power_loss: bool) -> (PathBuf, String) {
        state.images += 1;
        let image = self.shared.run_dir.join(format!("image-{}", state.images));
        let disk = &self.shared.disk;
        let (mut asked, mut kept) = (0, 0);
        let captured = match power_loss {
            false => disk.capture(&state.store, &image),
            true => {
                let (store, chooser, number) = (&state.store, &mut state.chooser, state.images);
                let mut survives = |file: &str, chunk: usize| {
                    let survived = chooser.draw(site::power_chunk(number, file, chunk), 1) == 1;
                    asked += 1;
                    kept += usize::from(survived);
                    survived
                };
                disk.capture_after_power_loss(store, &image, &mut survives)
            }
        };
        if let Err(error) = captured {
            std::panic::panic_any(EnvironmentFault(format!(
                "could not write a crash image under the scratch directory: {error}"
            )));
        }
        let kept = match power_loss {
            false => String::new(),
            true => format!("{kept} of {asked} chunks written since their file's last sync kept"),
        };
        (image, kept)
    }

    fn restart(&self, image: Option<PathBuf>, restarts: Vec<(NodeId, u32)>) {
        let mut state = self.state();
        if let Some(image) = image {
            state.store = image;
        }
        let mut due = Vec::new();
        for (id, incarnation) in restarts {
            let Some(entry) = state.nodes.iter().find(|n| n.id == id) else {
                continue;
            };
            if entry.incarnation == incarnation {
                due.push((id, entry.name.clone(), incarnation));
            }
        }
        for (id, _, _) in &due {
            if let Some(entry) = state.nodes.iter_mut().find(|n| n.id == *id) {
                entry.starting = true;
            }
        }
        for (_, name, incarnation) in &due {
            let time_ns = state.now_ns();
            let detail = format!("incarnation {incarnation}");
            state.push(Event {
                time_ns,
                node: name.clone(),
                kind: "restart".to_owned(),
                detail,
            });
        }
        drop(state);
        let handle = Handle::current();
        for (id, _, _) in due {
            handle.restart(id);
        }
    }

    /// Images the store as a crash would leave it, without stopping anything, and returns
    /// the image's directory (for checks that reopen a crash image).
    pub fn capture_image(&self) -> PathBuf {
        let mut state = self.state();
        let (image, _) = self.capture_image_locked(&mut state, false);
        let event = self.make_event(&state, "image", format!("image {} taken", state.images));
        state.push(event);
        image
    }

    /// Images the store's files as a power loss now would leave them (what was synced, and
    /// the chunks written since that the run's choices keep) and returns the image's
    /// directory.
    pub fn capture_image_after_power_loss(&self) -> PathBuf {
        let mut state = self.state();
        let (image, kept) = self.capture_image_locked(&mut state, true);
        let detail = format!("image {} taken after a power loss ({kept})", state.images);
        let event = self.make_event(&state, "image", detail);
        state.push(event);
        image
    }

    /// The run's scratch directory (never put into the trace).
    pub fn run_dir(&self) -> &Path {
        &self.shared.run_dir
    }
}
