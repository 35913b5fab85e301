//! One run: a scenario, a seed and a source of choices, on a fresh OS thread with a fresh
//! madsim runtime (HashMap order and thread-locals are per thread; see FIELD-NOTES), in a
//! fresh scratch directory that is removed afterwards and never named in the trace.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use madsim::runtime::Runtime;

use crate::crash::{Disk, DiskKind, ProcessCrash};
use crate::limits::Limits;
use crate::memdisk::MemDisk;
use crate::scenario::{Failure, FailureKind, Scenario, PASS};
use crate::tape::{Chooser, Expected, Source, Tape};
use crate::trace::Trace;
use crate::world::World;

/// What to run.
#[derive(Debug, Clone)]
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
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Every choice made, ready to save and replay (with its expected outcome).
    pub tape: Tape,
    /// The events.
    pub trace: Trace,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// Where a replay first diverged from its tape, if it did.
    pub divergence: Option<String>,
    /// How often each failpoint was hit (coverage).
    pub hits: std::collections::BTreeMap<String, u64>,
}

impl RunOutcome {
    /// `pass`, or the failure's signature.
    pub fn signature(&self) -> String {
        self.failure
            .as_ref()
            .map_or_else(|| PASS.to_owned(), Failure::signature)
    }
}

/// Runs once, on a new thread, and waits for it.
pub fn run(scenario: Arc<dyn Scenario>, request: RunRequest) -> RunOutcome {
    static WARM_UP: std::sync::Once = std::sync::Once::new();
    WARM_UP.call_once(warm_up);
    std::thread::Builder::new()
        .name("faultline-run".to_owned())
        .spawn(move || run_on_this_thread(scenario.as_ref(), request))
        .expect("spawn a run thread")
        .join()
        .expect("the run thread catches every panic")
}

fn run_on_this_thread(scenario: &dyn Scenario, request: RunRequest) -> RunOutcome {
    let run_dir = fresh_scratch(&request.scratch);
    let memory = (request.disk == DiskKind::Memory).then(|| MemDisk::mount(&run_dir));
    let disk: Box<dyn Disk> = match &memory {
        Some(memory) => Box::new(memory.clone()),
        None => Box::new(ProcessCrash),
    };
    let chooser = Chooser::new(request.seed, &request.source);
    let world = World::new(
        request.seed,
        chooser,
        scenario.fault_model(),
        request.limits,
        run_dir.clone(),
        disk,
    );
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut runtime = Runtime::with_seed_and_config(request.seed, madsim::Config::default());
        runtime.set_time_limit(request.limits.time_limit);
        let _installed = faultline_fp::install(world.bridge());
        runtime.block_on(async {
            world.start();
            scenario.run(world.clone()).await;
            world.stop_nodes().await;
        });
    }));
    let finished = world.finish();
    let _ = std::fs::remove_dir_all(&run_dir);
    drop(memory);
    let failure = finished
        .failure
        .or_else(|| result.err().map(|panic| classify_panic(&*panic)));
    let mut tape = Tape::new(scenario.name(), request.seed);
    tape.entries = finished.entries;
    let outcome_signature = failure
        .as_ref()
        .map_or_else(|| PASS.to_owned(), Failure::signature);
    tape.expected = Some(Expected {
        signature: outcome_signature,
        trace_hash: finished.trace.hash(),
    });
    RunOutcome {
        scenario: scenario.name().to_owned(),
        seed: request.seed,
        tape,
        trace: finished.trace,
        failure,
        divergence: finished.divergence,
        hits: finished.hits,
    }
}

/// Process-wide one-time initialisations that draw randomness must happen outside any
/// simulation: inside one, madsim serves `getrandom` from the run's RNG, so whichever run
/// came first in a process would draw more and schedule differently from a replay in a new
/// process. ahash's fixed seeds (used by rusqlite's statement cache) are one such.
fn warm_up() {
    let _ = ahash::RandomState::new();
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

fn fresh_scratch(base: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{}{number}", scratch_prefix(std::process::id())));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the run's scratch directory");
    dir
}
