//! The running simulation as a scenario sees it: choices, events, violations, nodes,
//! crashes and the fault bridge that decides every failpoint hit.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use faultline_fp::{Decision, Simulation};
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use madsim::time::Instant;

use crate::crash::Disk;
use crate::faults::{self, CrashScope, FaultModel};
pub use crate::limits::Limits;
use crate::scenario::{Failure, FailureKind};
use crate::tape::{Chooser, Entry, Source};
use crate::trace::{Event, Trace};

struct WorkloadNode {
    id: NodeId,
    name: String,
    incarnation: u32,
}

struct State {
    chooser: Chooser,
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
}

struct Shared {
    seed: u64,
    model: FaultModel,
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
}

impl World {
    pub(crate) fn new(
        seed: u64,
        chooser: Chooser,
        model: FaultModel,
        limits: Limits,
        run_dir: PathBuf,
        disk: Box<dyn Disk>,
    ) -> Self {
        let state = State {
            chooser,
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
        };
        let shared = Shared {
            seed,
            model,
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
        state.trace.push(event);
    }

    /// Records that `invariant` broke (only the first failure of a run is kept).
    pub fn fail(&self, invariant: &str, message: impl Into<String>) {
        self.record_failure(FailureKind::Invariant, invariant, message.into());
    }

    /// Records a liveness failure: `bound` was not met.
    pub fn fail_liveness(&self, bound: &str, message: impl Into<String>) {
        self.record_failure(FailureKind::Liveness, bound, message.into());
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
    }

    /// Creates a workload node named `name` running `init`; `init` runs again after every
    /// restart of the node. Failpoint hits on workload nodes are decided by the fault model.
    pub fn add_node<F>(&self, name: &str, init: impl Fn() -> F + Send + Sync + 'static) -> NodeId
    where
        F: Future<Output = ()> + 'static,
    {
        let node = Handle::current()
            .create_node()
            .name(name)
            .init(init)
            .build();
        let id = node.id();
        self.state().nodes.push(WorkloadNode {
            id,
            name: name.to_owned(),
            incarnation: 0,
        });
        id
    }

    fn record_failure(&self, kind: FailureKind, invariant: &str, message: String) {
        let mut state = self.state();
        let event = self.make_event(
            &state,
            "violation",
            format!("{kind}:{invariant}: {message}"),
        );
        state.trace.push(event);
        if state.failure.is_none() {
            state.failure = Some(Failure {
                kind,
                invariant: invariant.to_owned(),
                message,
            });
        }
    }

    fn make_event(&self, state: &State, kind: &str, detail: String) -> Event {
        let time_ns = state
            .start
            .map_or(0, |start| start.elapsed().as_nanos() as u64);
        Event {
            time_ns,
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
        let chooser = std::mem::replace(&mut state.chooser, Chooser::new(0, &Source::Seed));
        let (entries, divergence) = chooser.finish();
        Finished {
            entries,
            divergence,
            trace: std::mem::take(&mut state.trace),
            failure: state.failure.take(),
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
    fn decide(&self, point: &'static str) -> Decision {
        let world = &self.world;
        let mut state = world.state();
        *state.all_hits.entry(point).or_insert(0) += 1;
        let Some(node) = current_workload_node(&state) else {
            return Decision::Continue;
        };
        if state.healed {
            return Decision::Continue;
        }
        world.step(&mut state);
        let (decision, scope) = draw_decision(&world.shared.model, &mut state, point);
        if let Some(scope) = scope {
            world.crash(state, node, scope);
        }
        decision
    }

    fn note(&self, name: &'static str, detail: &dyn fmt::Display) {
        self.world.event(name, detail);
    }
}

fn draw_decision(
    model: &FaultModel,
    state: &mut State,
    point: &'static str,
) -> (Decision, Option<CrashScope>) {
    let node = current_node_name(state);
    let hit = state.hits.entry((node.clone(), point)).or_insert(0);
    *hit += 1;
    let site = faults::site(&node, point, *hit);
    let mut index = state.chooser.draw_weighted(site.clone(), &model.weights);
    if index >= 4 && state.crashes >= model.max_crashes {
        state.chooser.amend_last(0);
        index = 0;
    }
    let sleep_ms = match index {
        2 => {
            1 + state.chooser.draw(
                format!("{site}:ms"),
                model.max_sleep.as_millis().max(1) as u64 - 1,
            )
        }
        _ => 0,
    };
    let scope = (index >= 4).then(|| {
        state.crashes += 1;
        CrashScope::from_index(
            state
                .chooser
                .draw_weighted(format!("{site}:scope"), &model.crash_scope_weights),
        )
    });
    let decision = faults::decision(index, sleep_ms);
    if decision != Decision::Continue {
        let time_ns = state.start.map_or(0, |s| s.elapsed().as_nanos() as u64);
        let detail = format!("{point}#{hit} -> {}", faults::describe(&decision));
        let node = current_node_name(state);
        state.trace.push(Event {
            time_ns,
            node,
            kind: "fp".to_owned(),
            detail,
        });
    }
    (decision, scope)
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
        state.trace.push(event);
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
                    let survived = chooser.draw(format!("power/{number}{file}@{chunk}"), 1) == 1;
                    asked += 1;
                    kept += usize::from(survived);
                    survived
                };
                disk.capture_after_power_loss(store, &image, &mut survives)
            }
        };
        if let Err(error) = captured {
            panic!("faultline: could not capture the crash image: {error}");
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
        for (_, name, incarnation) in &due {
            let time_ns = state.start.map_or(0, |s| s.elapsed().as_nanos() as u64);
            let detail = format!("incarnation {incarnation}");
            state.trace.push(Event {
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
        state.trace.push(event);
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
        state.trace.push(event);
        image
    }

    /// The run's scratch directory (never put into the trace).
    pub fn run_dir(&self) -> &Path {
        &self.shared.run_dir
    }
}
