//! One run: a scenario, a seed and a source of choices, on a fresh OS thread with a fresh
//! madsim runtime (HashMap order and thread-locals are per thread; see FIELD-NOTES), in a
//! fresh scratch directory that is removed afterwards and never named in the trace.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::Runtime;
use serde::{Deserialize, Serialize};

use crate::crash::{Disk, DiskKind, ProcessCrash};
use crate::iotime::IoCost;
use crate::limits::Limits;
use crate::memdisk::MemDisk;
use crate::outcome::{environment, signature_of, Failure, FailureKind, Result, RunOutcome};
use crate::scenario::Scenario;
use crate::strategy::{self, StrategyKind};
use crate::tape::{Chooser, Expected, Source, Tape};
use crate::world::{EnvironmentFault, Observer, World};

/// What to run. Built by [`crate::session::Session`] only (tests aside), so that no mode
/// can forget a limit; a worker process receives it whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// The seed (drives the scheduler and, with [`Source::Seed`], every choice).
    pub seed: u64,
    /// Where the choices come from.
    pub source: Source,
    /// Bounds on the run.
    pub limits: Limits,
    /// Where scratch directories are made.
    pub scratch: PathBuf,
    /// Where the run's SQLite files live.
    pub disk: DiskKind,
    /// What the run's I/O costs in simulated time.
    pub io_cost: IoCost,
    /// How a fresh run searches ([`crate::strategy`]); a replay's is its tape's.
    pub strategy: StrategyKind,
}

/// Runs once, on a new thread, and waits for it. An error is a fault of the environment
/// (the scratch directory, a crash image that cannot be written), never of the engine.
pub fn run(scenario: Arc<dyn Scenario>, request: RunRequest) -> Result<RunOutcome> {
    run_observed(scenario, request, None)
}

/// [`run`], calling `observer` with every event as it is recorded.
pub fn run_observed(
    scenario: Arc<dyn Scenario>,
    request: RunRequest,
    observer: Option<Observer>,
) -> Result<RunOutcome> {
    static WARM_UP: std::sync::Once = std::sync::Once::new();
    WARM_UP.call_once(warm_up);
    std::thread::Builder::new()
        .name("faultline-run".to_owned())
        .spawn(move || run_on_this_thread(scenario.as_ref(), request, observer))
        .map_err(|e| environment(format!("cannot start a thread for the run: {e}")))?
        .join()
        .expect("the run thread catches every panic")
}

fn run_on_this_thread(
    scenario: &dyn Scenario,
    request: RunRequest,
    observer: Option<Observer>,
) -> Result<RunOutcome> {
    let run_dir = fresh_scratch(&request.scratch)?;
    let memory = (request.disk == DiskKind::Memory).then(|| MemDisk::mount(&run_dir));
    let disk: Box<dyn Disk> = match &memory {
        Some(memory) => Box::new(memory.clone()),
        None => Box::new(ProcessCrash),
    };
    let chooser = Chooser::new(request.seed, &request.source, request.strategy);
    let strategy = strategy::build(
        request.strategy,
        request.seed,
        scenario.preemption_horizon(),
    );
    let world = World::new(
        request.seed,
        (chooser, strategy),
        (scenario.fault_model(), scenario.net_model()),
        request.limits,
        run_dir.clone(),
        disk,
    );
    if let Some(observer) = observer {
        world.observe(observer);
    }
    let simulated = std::cell::RefCell::new(Duration::ZERO);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut runtime = Runtime::with_seed_and_config(request.seed, madsim::Config::default());
        runtime.set_time_limit(request.limits.time_limit);
        let _installed = faultline_fp::install(world.bridge());
        let _charged = crate::iotime::activate(request.io_cost);
        runtime.block_on(async {
            world.start();
            scenario.run(world.clone()).await;
            *simulated.borrow_mut() = world.elapsed();
            world.stop_nodes().await;
        });
    }));
    let finished = world.finish();
    let full = (finished.failure.is_some() || result.is_err())
        .then(|| scratch_nearly_full(&run_dir))
        .flatten();
    let _ = std::fs::remove_dir_all(&run_dir);
    drop(memory);
    if let Some(free) = full {
        return Err(environment(format!(
            "the scratch directory {} has only {free} KiB free: the run's failure may be the \
             full disk, not the engine (free some space or set FAULTLINE_SCRATCH)",
            request.scratch.display()
        )));
    }
    let failure = match result {
        Err(panic) if panic.is::<EnvironmentFault>() => {
            let fault = panic.downcast::<EnvironmentFault>().expect("checked");
            return Err(environment(fault.0));
        }
        Err(panic) => finished.failure.or_else(|| Some(classify_panic(&*panic))),
        Ok(()) => finished.failure,
    };
    let mut tape = Tape::new(scenario.name(), request.seed);
    tape.io_cost = request.io_cost.to_string();
    tape.strategy = request.strategy;
    tape.entries = finished.entries;
    tape.expected = Some(Expected {
        signature: signature_of(failure.as_ref()),
        trace_hash: finished.trace.hash(),
    });
    Ok(RunOutcome {
        scenario: scenario.name().to_owned(),
        seed: request.seed,
        tape,
        trace: finished.trace,
        failure,
        divergence: finished.divergence,
        hits: finished.hits,
        start_up_sites: finished.start_up_sites,
        coverage: finished.coverage,
        simulated_ns: simulated.into_inner().as_nanos() as u64,
    })
}

/// Free space below which a failed run is blamed on the disk rather than the engine.
pub const MIN_FREE_KIB: u64 = 4 * 1024;

/// The free space of the filesystem holding `dir`, in KiB, if it is below
/// [`MIN_FREE_KIB`].
fn scratch_nearly_full(dir: &Path) -> Option<u64> {
    crate::preflight::free_kib(dir).filter(|free| *free < MIN_FREE_KIB)
}

/// Process-wide one-time initialisations that draw randomness must happen outside any
/// simulation: inside one, madsim serves `getrandom` from the run's RNG, so whichever run
/// came first in a process would draw more and schedule differently from a replay in a new
/// process. ahash's fixed seeds (used by rusqlite's statement cache) are one such.
fn warm_up() {
    let _ = ahash::RandomState::new();
    crate::iotime::install_step_charge();
}

fn classify_panic(panic: &(dyn std::any::Any + Send)) -> Failure {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    let (kind, invariant) = if message.contains("time limit exceeded") {
        (FailureKind::Liveness, "time-limit")
    } else if message.contains("all tasks will block forever") {
        (FailureKind::Liveness, "deadlock")
    } else {
        (FailureKind::Panic, "panic")
    };
    Failure {
        kind,
        invariant: invariant.to_owned(),
        message,
    }
}

/// Removes the scratch directories that process `process` left under `base` (a worker that
/// was stopped or died mid-run never removes its own).
pub fn remove_scratch_of(base: &Path, process: u32) {
    let prefix = scratch_prefix(process);
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn scratch_prefix(process: u32) -> String {
    format!("faultline-{process}-")
}

fn fresh_scratch(base: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{}{number}", scratch_prefix(std::process::id())));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| {
        environment(format!(
            "cannot make a run's scratch directory {} (FAULTLINE_SCRATCH): {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}
