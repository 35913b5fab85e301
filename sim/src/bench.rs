//! The figures of `cargo sim bench`, never assertions. Runs per second of each scenario on one
//! core (seeds run one after another in this process), on the simulated disk and on real
//! files, and the cost of one failpoint hit:
//! compiled out (the disabled macro's expansion), compiled in but outside a simulation
//! (fail-rs with nothing configured), and inside a simulation (decided, drawn from the tape
//! and recorded, on a workload node). Quote ratios from one run: the machines are shared.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use madsim::runtime::Runtime;

use crate::crash::{DiskKind, ProcessCrash};
use crate::env::Settings;
use crate::faults::FaultModel;
use crate::limits::Limits;
use crate::outcome::Result;
use crate::session::Session;
use crate::tape::{Chooser, Source};
use crate::world::World;

/// Hits per failpoint measurement.
pub const HITS: u32 = 100_000;

fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected a ready future"),
    }
}

fn nanos_per(elapsed: Duration, count: u32) -> f64 {
    elapsed.as_nanos() as f64 / f64::from(count)
}

/// Seeds run on one disk before switching to the other.
pub const BLOCK: u64 = 50;

/// What [`runs_per_second`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Runs per second on the simulated disk.
    pub memory: f64,
    /// Runs per second on real files.
    pub files: f64,
    /// Simulated seconds per wall second on the simulated disk.
    pub simulated_per_wall: f64,
}

/// Runs per second of a session's scenario on the simulated disk and on real files, `seeds`
/// seeds each, one after another in one worker, the two disks interleaved in blocks of
/// [`BLOCK`] seeds so that the ratio is fair; and the simulated time the runs on the
/// simulated disk covered per second of wall time.
pub fn runs_per_second(session: &mut Session, seeds: u64) -> Result<Throughput> {
    let mut elapsed = [Duration::ZERO; 2];
    let mut simulated = Duration::ZERO;
    for block in (0..seeds).step_by(BLOCK as usize) {
        let block = block..(block + BLOCK).min(seeds);
        for (slot, disk) in [DiskKind::Memory, DiskKind::Files].into_iter().enumerate() {
            let (wall, covered) = session.time_runs(disk, block.clone())?;
            elapsed[slot] += wall;
            if slot == 0 {
                simulated += covered;
            }
        }
    }
    let [memory, files] = elapsed.map(|e| seeds as f64 / e.as_secs_f64().max(1e-9));
    Ok(Throughput {
        memory,
        files,
        simulated_per_wall: simulated.as_secs_f64() / elapsed[0].as_secs_f64().max(1e-9),
    })
}

/// Nanoseconds per failpoint hit.
#[derive(Debug, Clone, Copy)]
pub struct FailpointCost {
    /// Compiled out: the disabled macro's expansion.
    pub compiled_out: f64,
    /// Compiled in, outside a simulation (fail-rs with nothing configured).
    pub outside: f64,
    /// Inside a simulation: decided, drawn from the tape and recorded, on a workload node.
    pub inside: f64,
}

/// Measures [`FailpointCost`] over [`HITS`] hits each, in this process (no engine runs).
pub fn failpoint_cost(settings: &Settings) -> FailpointCost {
    let started = Instant::now();
    for _ in 0..HITS {
        let _ = std::hint::black_box(poll_ready(std::future::ready(Ok::<
            (),
            faultline_fp::Injected,
        >(()))));
    }
    let compiled_out = nanos_per(started.elapsed(), HITS);
    let started = Instant::now();
    for _ in 0..HITS {
        let _ = std::hint::black_box(poll_ready(faultline_fp::hit("bench.outside")));
    }
    FailpointCost {
        compiled_out,
        outside: nanos_per(started.elapsed(), HITS),
        inside: inside_simulation(settings),
    }
}

/// Inside the runtime `Instant` is simulated time, so the runs are timed from outside:
/// the cost per hit is (a run with `HITS` hits - the same run with none) / `HITS`.
fn inside_simulation(settings: &Settings) -> f64 {
    let with_hits = time_simulated_hits(settings, HITS);
    let without = time_simulated_hits(settings, 0);
    nanos_per(with_hits.saturating_sub(without), HITS)
}

fn time_simulated_hits(settings: &Settings, hits: u32) -> Duration {
    let model = FaultModel {
        weights: [1, 0, 0, 0, 0],
        ..FaultModel::default()
    };
    let limits = Limits {
        time_limit: Duration::from_secs(60),
        max_steps: u64::from(HITS) * 2,
    };
    let scratch = settings
        .scratch
        .join(format!("faultline-bench-{}", std::process::id()));
    let world = World::new(
        0,
        (
            Chooser::new(0, &Source::Seed, Default::default()),
            crate::strategy::build(Default::default(), 0, 1),
        ),
        (model, crate::net::NetModel::default()),
        limits,
        scratch,
        Box::new(ProcessCrash),
    );
    let started = Instant::now();
    let runtime = Runtime::with_seed_and_config(0, madsim::Config::default());
    let _installed = faultline_fp::install(world.bridge());
    runtime.block_on(async move {
        world.start();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let finished = done.clone();
        world.add_node("bench", move || {
            let finished = finished.clone();
            async move {
                for _ in 0..hits {
                    let _ = faultline_fp::hit("bench.inside").await;
                }
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            madsim::time::sleep(Duration::from_millis(1)).await;
        }
    });
    drop(runtime);
    started.elapsed()
}
