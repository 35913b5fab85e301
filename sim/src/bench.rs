//! `cargo sim bench`: figures, never assertions. Runs per second of each scenario on one
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
use crate::runner::{self, RunRequest};
use crate::scenario::Scenario;
use crate::tape::{Chooser, Source};
use crate::world::World;

/// Hits per failpoint measurement.
const HITS: u32 = 100_000;

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

/// Prints every figure.
pub fn bench(scenarios: &[Arc<dyn Scenario>], settings: &Settings, seeds: u64) {
    println!(
        "runs per second on one core ({seeds} seeds each, one after another; the simulated \
         disk and real files interleaved in blocks of {BLOCK} seeds, so the ratio is fair):"
    );
    for scenario in scenarios {
        let mut elapsed = [Duration::ZERO; 2];
        for block in (0..seeds).step_by(BLOCK as usize) {
            let block = block..(block + BLOCK).min(seeds);
            for (slot, disk) in [DiskKind::Memory, DiskKind::Files].into_iter().enumerate() {
                elapsed[slot] += time_runs(scenario, settings, disk, block.clone());
            }
        }
        let [memory, files] = elapsed.map(|e| seeds as f64 / e.as_secs_f64());
        println!(
            "  {:<20} {memory:>8.0} runs/s   (real files {files:.0} runs/s, {:.1}x)",
            scenario.name(),
            memory / files
        );
    }
    println!("nanoseconds per failpoint hit ({HITS} hits):");
    let started = Instant::now();
    for _ in 0..HITS {
        let _ = std::hint::black_box(poll_ready(std::future::ready(Ok::<
            (),
            faultline_fp::Injected,
        >(()))));
    }
    println!(
        "  compiled out (disabled macro)      {:>8.1} ns",
        nanos_per(started.elapsed(), HITS)
    );
    let started = Instant::now();
    for _ in 0..HITS {
        let _ = std::hint::black_box(poll_ready(faultline_fp::hit("bench.outside")));
    }
    println!(
        "  compiled in, outside a simulation  {:>8.1} ns",
        nanos_per(started.elapsed(), HITS)
    );
    println!(
        "  inside a simulation (drawn, recorded) {:>5.1} ns",
        inside_simulation(settings)
    );
}

/// Seeds run on one disk before switching to the other.
const BLOCK: u64 = 50;

fn time_runs(
    scenario: &Arc<dyn Scenario>,
    settings: &Settings,
    disk: DiskKind,
    seeds: std::ops::Range<u64>,
) -> Duration {
    let started = Instant::now();
    for seed in seeds {
        let request = RunRequest {
            seed,
            source: Source::Seed,
            limits: settings.limits,
            scratch: settings.scratch.clone(),
            disk,
        };
        runner::run(scenario.clone(), request);
    }
    started.elapsed()
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
        Chooser::new(0, &Source::Seed),
        model,
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
