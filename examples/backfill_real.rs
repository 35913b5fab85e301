//! Real-mode figures for the item-version backfill: real SQLite files, real threads, wall
//! time. Writes ROWS rows (default 1,000,000) as a version 1 engine left them (no version),
//! then backfills them twice, each time on a fresh store: chunked (batch 5,000 rows, yield
//! 10 ms) and as one statement (a single batch covering every row: the incident's single
//! UPDATE). Two reader threads read through the backfilling handle (its head, then the first
//! page of five rows: they share its table connection) every 10 ms while it runs. Prints the
//! wall time of each backfill and its readers' waits (median, p99, worst).
//!
//! `cargo run --release --example backfill_real -- [ROWS]`

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::backfill::{BackfillSettings, Cancel};
use faultline::{Engine, Item};

const DATASET: &str = "items";
const APPEND: u64 = 10_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |n| n.parse())
        .expect("ROWS: a whole number");
    println!("backfill of {rows} rows on real files (2 reader threads on the backfilling handle, one read every 10 ms)");
    for (label, batch, yield_ms) in [
        ("chunked (batch 5000, yield 10 ms)", 5_000, 10),
        ("one statement (one batch of every row)", rows as i64, 0),
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let started = Instant::now();
        write_old_store(dir.path(), rows).await;
        let written = started.elapsed();
        let (engine, _) = Engine::open(dir.path(), "backfiller").await.expect("open");
        // The first use of the table upgrades the file (a column and an index over every
        // row): done before the clock starts.
        let upgraded = Instant::now();
        first_page(&engine).await;
        let upgrade = upgraded.elapsed();
        let stop = Arc::new(AtomicBool::new(false));
        let waits = Arc::new(Mutex::new(Vec::new()));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (engine, stop, waits) = (engine.clone(), stop.clone(), waits.clone());
                std::thread::spawn(move || reader(engine, stop, waits))
            })
            .collect();
        let settings = BackfillSettings {
            batch_size: batch,
            yield_ms,
            progress_every: Duration::from_secs(1),
        };
        let began = Instant::now();
        let report = engine
            .backfill_versions(DATASET, &settings, &Cancel::default())
            .await
            .expect("the backfill");
        let took = began.elapsed();
        stop.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.join().expect("a reader thread");
        }
        let mut waits = waits.lock().unwrap().clone();
        waits.sort();
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize];
        println!(
            "  {label}: {:.2} s for {} rows; {} reads waited median {:.1} ms, p99 {:.1} ms, worst {:.1} ms \
             (store written in {:.1} s, upgraded in {:.1} s)",
            took.as_secs_f64(),
            report.processed,
            waits.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
            written.as_secs_f64(),
            upgrade.as_secs_f64()
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Writes `rows` rows through the engine, then turns the table file back into version 1.
async fn write_old_store(dir: &Path, rows: u64) {
    let (engine, _) = Engine::open(dir, "setup").await.expect("open");
    engine.create_dataset(DATASET).await.expect("create");
    for start in (0..rows).step_by(APPEND as usize) {
        let items: Vec<Item> = (start..(start + APPEND).min(rows))
            .map(|n| Item {
                key: format!("key-{n}"),
                payload: format!("payload of row {n:>12}"),
            })
            .collect();
        engine.append(DATASET, &items).await.expect("append");
    }
    drop(engine);
    let connection =
        rusqlite::Connection::open(faultline::layout::table(dir, DATASET)).expect("the table file");
    connection
        .execute_batch(
            "DROP INDEX items_unversioned; ALTER TABLE items DROP COLUMN version; PRAGMA user_version = 1;",
        )
        .expect("aged");
}

async fn first_page(engine: &Engine) {
    let head = engine.head(DATASET).await.expect("head");
    engine
        .stream(DATASET, head.version, 5)
        .await
        .expect("stream")
        .next_page()
        .await
        .expect("a page");
}

/// Reads every 10 ms until stopped, on its own thread and runtime, recording each wait.
fn reader(engine: Engine, stop: Arc<AtomicBool>, waits: Arc<Mutex<Vec<Duration>>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        runtime.block_on(first_page(&engine));
        waits.lock().unwrap().push(started.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
}
