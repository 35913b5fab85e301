//! A plain stress loop for crash windows, for comparison with the simulator: child processes
//! killed at random instants. Each iteration starts a child on a fresh store whose writer
//! threads (real threads, each on its own handle) append to one dataset until the child is
//! sent SIGKILL at an instant drawn uniformly between 20 and 220 ms after it started (the
//! writers are appending by then). The parent then opens the store (its recovery runs) and
//! checks what store-clean checks of it: no row of the table belongs to a txid the manifest's
//! chain does not publish, and no sidecar survived the recovery. Prints the iteration of the
//! first violation.
//!
//! With `RECOVERY-KILL` 1, the first recovery also runs in a child process, killed at an
//! instant drawn uniformly in its first 20 ms: two faults in sequence, a crash and then one
//! inside the recovery of it.
//!
//! With COUNT 1 it goes on after the first violation and prints how many iterations of all
//! broke it (the window's share of random kills).
//!
//! `cargo run --release --example stress_kill -- [ITERATIONS] [WRITERS] [RECOVERY-KILL] [COUNT]`
//! (default 300, 3, 0, 0)
//! `ci/stress-mutant NAME 300 stress_kill` runs it on a planted bug.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use faultline::{Engine, Item};

#[path = "common/stress.rs"]
mod support;
use support::{Instants, Sightings};

const DATASET: &str = "items";

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--child") => {
            let dir = args.next().expect("the store");
            let writers: usize = args.next().expect("writers").parse().expect("a number");
            return child(Path::new(&dir), writers);
        }
        Some("--recover") => {
            let dir = args.next().expect("the store");
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let _ = runtime.block_on(Engine::open(Path::new(&dir), "recoverer"));
            return;
        }
        _ => {}
    }
    let iterations = support::arg(0, 300, "ITERATIONS");
    let writers = support::arg(1, 3, "WRITERS") as usize;
    let kill_recovery = support::flag(2);
    let mut sightings = Sightings::new(support::flag(3));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut instants = Instants::default();
    for iteration in 1..=iterations {
        let dir = tempfile::tempdir().expect("a temporary directory");
        runtime.block_on(async {
            let (engine, _) = Engine::open(dir.path(), "setup").await.expect("open");
            engine.create_dataset(DATASET).await.expect("create");
        });
        let mut child = Command::new(std::env::current_exe().expect("this program"))
            .args([
                "--child",
                &dir.path().display().to_string(),
                &writers.to_string(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("a child");
        std::thread::sleep(Duration::from_millis(20) + instants.below(Duration::from_millis(200)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        if kill_recovery {
            let mut recoverer = Command::new(std::env::current_exe().expect("this program"))
                .args(["--recover", &dir.path().display().to_string()])
                .spawn()
                .expect("a child");
            std::thread::sleep(instants.below(Duration::from_millis(20)));
            let _ = recoverer.kill();
            recoverer.wait().expect("reaped");
        }
        if sightings.saw(iteration, runtime.block_on(check(dir.path()))) {
            return;
        }
    }
    sightings.finish(iterations, "");
}

/// Writers appending until killed.
fn child(dir: &Path, writers: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let (engine, _) = Engine::open(dir, &format!("writer-{writer}"))
                .await
                .expect("open");
            tasks.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let item = Item {
                        key: format!("w{writer}-{n}"),
                        payload: format!("payload {n}"),
                    };
                    let _ = engine.append(DATASET, &[item]).await;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// store-clean of the store after a recovery, read directly.
async fn check(dir: &Path) -> Option<String> {
    let (engine, _) = Engine::open(dir, "checker")
        .await
        .expect("open after the kill");
    drop(engine);
    let manifest = rusqlite::Connection::open(faultline::layout::manifest(dir)).unwrap();
    let mut published = manifest
        .prepare("SELECT txid FROM chain WHERE tbl = ?1")
        .unwrap();
    let published: Vec<String> = published
        .query_map([DATASET], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let table = rusqlite::Connection::open(faultline::layout::table(dir, DATASET)).unwrap();
    let mut rows = table.prepare("SELECT DISTINCT txid FROM items").unwrap();
    let txids: Vec<String> = rows
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    if let Some(orphan) = txids.iter().find(|t| !published.contains(t)) {
        return Some(format!(
            "store-clean: rows of {orphan}, which no published version names, survived recovery"
        ));
    }
    let pending = faultline::layout::pending_dir(dir);
    let left = std::fs::read_dir(&pending).map_or(0, |entries| entries.count());
    (left > 0).then(|| format!("store-clean: {left} sidecars survived recovery"))
}
