//! A plain stress loop for the broadcaster family, for comparison with the simulator: real
//! threads (multi-threaded tokio), real SQLite files, real TCP on loopback, no control over
//! the schedule. One broadcaster and a writer worker stay up; each iteration starts a fresh
//! reader worker (a restarted worker: it subscribes and resyncs) while the writer, after a
//! random pause of up to 2 ms, appends to a dataset and publishes the new head. Once the
//! reader is healthy it must come to serve that head within 300 ms (what no-lost-update
//! checks); a reader that does not has lost the update. Prints the iteration of the first
//! lost update.
//!
//! `cargo run --release --example stress_broadcast -- [ITERATIONS]` (default 2000)
//! `ci/stress-mutant NAME [ITERATIONS] stress_broadcast` runs it on a planted bug.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultline::broadcast::{self, BroadcasterSettings};
use faultline::workers::{Worker, WorkerSettings};
use faultline::{Engine, Item};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(2_000), |n| n.parse())
        .expect("ITERATIONS: a whole number");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (setup, _) = Engine::open(dir.path(), "setup").await.expect("open");
    setup.create_dataset("a").await.expect("create");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(broadcast::serve(
        listener,
        BroadcasterSettings::default(),
        None,
    ));
    let settings = WorkerSettings::default();
    let (handle, _) = Engine::open(dir.path(), "writer").await.expect("open");
    let writer = Worker::start("writer", handle, address, settings).expect("a valid worker name");
    let (reader_handle, _) = Engine::open(dir.path(), "reader").await.expect("open");
    while !writer.health().healthy() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut random = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let started = Instant::now();
    for iteration in 1..=iterations {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let pause = Duration::from_micros(random % 2_000);
        let reader = Worker::start("reader", reader_handle.clone(), address, settings)
            .expect("a valid worker name");
        let change = {
            let writer = writer.clone();
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                let item = Item {
                    key: format!("k{iteration}"),
                    payload: String::new(),
                };
                writer.change("a", &[item]).await.expect("change").version
            })
        };
        let version = change.await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        let (served, healthy) = loop {
            let view = reader.view().unwrap_or_default();
            let served = view.get("a").copied().unwrap_or(0);
            let healthy = reader.health().healthy();
            if (healthy && served >= version) || Instant::now() > deadline {
                break (served, healthy);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        reader.stop();
        // A reader that could not subscribe in time is not a lost update.
        if healthy && served < version {
            println!(
                "first lost update at iteration {iteration} after {:.2}s: the reader served a at version {served}, not {version}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
    }
    println!(
        "no lost update in {iterations} iterations ({:.2}s)",
        started.elapsed().as_secs_f64()
    );
}
