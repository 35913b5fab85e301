//! The compiled-in half: the link-time registry, the simulation hook and the hit path.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::Injected;

#[doc(hidden)]
pub use linkme;

/// One failpoint as declared in the source.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    /// The point's name, for example `engine.publish.before_commit`.
    pub name: &'static str,
    /// The source file that declares it.
    pub file: &'static str,
    /// The line that declares it.
    pub line: u32,
}

/// Every failpoint linked into this binary (link-time registry, any order).
#[linkme::distributed_slice]
pub static DECLARED: [Declared];

/// The declared failpoints, sorted by name (deterministic whatever the link order).
pub fn declared() -> Vec<Declared> {
    let mut points: Vec<Declared> = DECLARED.iter().copied().collect();
    points.sort_by(|left, right| left.name.cmp(right.name).then(left.line.cmp(&right.line)));
    points
}

/// What a simulation decides for one failpoint hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Carry on as if the point were not there.
    Continue,
    /// Yield to the scheduler once, letting other tasks interleave.
    Yield,
    /// Sleep for this long in simulated time.
    Sleep(Duration),
    /// Return an injected error with this message.
    Error(String),
    /// The process crashes here: the simulation has already killed the node; the hit never
    /// returns.
    Crash,
}

/// The running simulation, as seen from a failpoint.
pub trait Simulation {
    /// Decides what this hit of `point` does, and records it.
    fn decide(&self, point: &'static str) -> Decision;
    /// Records a named event with a detail (no decision).
    fn note(&self, name: &'static str, detail: &dyn fmt::Display);
    /// The simulated time the work done since the last settle costs, to be slept now
    /// (zero when the simulation charges nothing).
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
    /// Decides the scheduling point at a statement boundary ([`settle`]): continue, or yield
    /// or sleep so that other nodes run there, or crash the node there (the simulation
    /// kills the task, as at a failpoint). Never an error: the statement has completed.
    fn preempt(&self) -> Decision {
        Decision::Continue
    }
}

thread_local! {
    static ACTIVE: RefCell<Option<Rc<dyn Simulation>>> = const { RefCell::new(None) };
}

/// Removes the installed simulation when dropped.
pub struct InstallGuard(());

impl Drop for InstallGuard {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.borrow_mut().take());
    }
}

/// Installs `simulation` as this thread's decider until the guard drops.
pub fn install(simulation: Rc<dyn Simulation>) -> InstallGuard {
    ACTIVE.with(|active| *active.borrow_mut() = Some(simulation));
    InstallGuard(())
}

fn active() -> Option<Rc<dyn Simulation>> {
    ACTIVE.with(|active| active.borrow().clone())
}

/// Evaluates one hit of `point`. Use through [`fp!`](crate::fp), which also registers it.
///
/// The decision is taken before the first await, so the future holds no `Rc` and stays
/// `Send` (engine futures must run on multi-threaded tokio too).
pub async fn hit(point: &'static str) -> Result<(), Injected> {
    pay().await;
    let decision = active().map(|simulation| simulation.decide(point));
    match decision {
        Some(decision) => apply(point, decision).await,
        None => outside_simulation(point),
    }
}

async fn apply(point: &'static str, decision: Decision) -> Result<(), Injected> {
    match decision {
        Decision::Continue => Ok(()),
        Decision::Yield => {
            tokio::task::yield_now().await;
            Ok(())
        }
        Decision::Sleep(duration) => {
            tokio::time::sleep(duration).await;
            Ok(())
        }
        Decision::Error(message) => Err(Injected { point, message }),
        Decision::Crash => std::future::pending().await,
    }
}

fn outside_simulation(point: &'static str) -> Result<(), Injected> {
    match fail::eval(point, |argument| {
        argument.unwrap_or_else(|| "fail-rs".to_owned())
    }) {
        Some(message) => Err(Injected { point, message }),
        None => Ok(()),
    }
}

/// Marks a statement boundary: pays the simulated time of the work done since the last
/// settle (statements' I/O and SQLite's own work, as the simulation charges it) by sleeping
/// that long in simulated time, then lets the simulation decide the boundary as a scheduling
/// point (it may yield or sleep there, so that other nodes run between two statements).
/// Call it after each statement. Outside a simulation it is ready at once.
pub async fn settle() {
    pay().await;
    let decision = active().map(|simulation| simulation.preempt());
    if let Some(decision @ (Decision::Yield | Decision::Sleep(_) | Decision::Crash)) = decision {
        // A yield or a sleep never returns an error; a crash never returns.
        let _ = apply("sched.preempt", decision).await;
    }
}

async fn pay() {
    let debt = active().map_or(Duration::ZERO, |simulation| simulation.settle());
    if !debt.is_zero() {
        tokio::time::sleep(debt).await;
    }
}

/// Records a named event in the running simulation's trace (for example a lock retry).
/// Does nothing outside a simulation.
pub fn note(name: &'static str, detail: &dyn fmt::Display) {
    if let Some(simulation) = active() {
        simulation.note(name, detail);
    }
}
