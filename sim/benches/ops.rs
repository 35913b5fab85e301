//! Per-operation costs of the harness (`cargo bench -p faultline-sim`): a tape draw, a trace
//! append and hash, a failpoint hit outside a simulation, the shrinker's tape edits. Whole
//! runs (runs per second per scenario, a failpoint hit inside a simulation) are
//! `cargo sim bench`'s.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use faultline_sim::strategy::StrategyKind;
use faultline_sim::tape::{Chooser, Source, Tape};
use faultline_sim::trace::{Event, Trace};

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a failpoint outside a simulation is ready at once"),
    }
}

/// Site labels as a run makes them (one per decision; a site is asked once per run).
fn sites(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("fp/writer-{}/engine.append.before_publish#{i}", i % 4))
        .collect()
}

fn tape_draws(c: &mut Criterion) {
    let labels = sites(1000);
    c.bench_function("tape: 1000 fresh draws (a run's decisions)", |b| {
        b.iter_batched(
            || labels.clone(),
            |labels| {
                let mut chooser = Chooser::new(7, &Source::Seed, StrategyKind::Random);
                for site in labels {
                    black_box(chooser.draw(site, 4));
                }
                chooser
            },
            BatchSize::SmallInput,
        )
    });
    let mut recorded = Chooser::new(7, &Source::Seed, StrategyKind::Random);
    for site in labels.clone() {
        recorded.draw(site, 4);
    }
    let mut tape = Tape::new("bench", 7);
    tape.entries = recorded.finish().0;
    c.bench_function("tape: 1000 replayed draws (strict)", |b| {
        b.iter_batched(
            || (labels.clone(), Source::Replay(tape.clone())),
            |(labels, source)| {
                let mut chooser = Chooser::new(7, &source, StrategyKind::Random);
                for site in labels {
                    black_box(chooser.draw(site, 4));
                }
                chooser
            },
            BatchSize::SmallInput,
        )
    });
}

fn trace_appends(c: &mut Criterion) {
    let event = Event {
        time_ns: 21_790_000,
        node: "writer-2".to_owned(),
        kind: "append.ok".to_owned(),
        detail: "dataset-0 v1 +3 = 3".to_owned(),
    };
    c.bench_function("trace: 1000 appends", |b| {
        b.iter(|| {
            let mut trace = Trace::default();
            for i in 0..1000u64 {
                let mut e = event.clone();
                e.time_ns += i;
                trace.push(e);
            }
            trace
        })
    });
    let mut trace = Trace::default();
    for _ in 0..1000 {
        trace.push(event.clone());
    }
    c.bench_function("trace: hash of 1000 events", |b| {
        b.iter(|| black_box(&trace).hash())
    });
}

fn failpoint_hits(c: &mut Criterion) {
    c.bench_function(
        "failpoint: a hit outside a simulation (fail-rs, nothing configured)",
        |b| b.iter(|| black_box(ready(faultline_fp::hit("bench.outside")))),
    );
}

fn tape_edits(c: &mut Criterion) {
    let mut tape = Tape::new("bench", 7);
    let mut chooser = Chooser::new(7, &Source::Seed, StrategyKind::Random);
    for site in sites(1000) {
        chooser.draw(site, 4);
    }
    tape.entries = chooser.finish().0;
    c.bench_function(
        "tape: choices of a 1000-entry tape (a shrink step's size)",
        |b| b.iter(|| black_box(&tape).choices().len()),
    );
    c.bench_function("tape: serialise and parse a 1000-entry tape", |b| {
        b.iter(|| Tape::parse(&black_box(&tape).to_json()).unwrap())
    });
}

criterion_group!(
    benches,
    tape_draws,
    trace_appends,
    failpoint_hits,
    tape_edits
);
criterion_main!(benches);
