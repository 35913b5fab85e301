//! A plain stress loop, for comparison with the simulator: real threads (multi-threaded
//! tokio), real SQLite files and real TCP on loopback, no control over the schedule. Each
//! iteration makes a scope, gives its source a new revision, and runs a sync on one handle
//! at the same time as the delete of that scope on another; then it checks what the
//! delete-vs-fetch invariants check: no mirror survives a completed delete (delete-wins),
//! at most N fetches ran at once (bounded-concurrency), the deleting handle's caches hold
//! nothing of the source (caches-drain). Prints the iteration of the first violation.
//!
//! `cargo run --release --example stress_delete_fetch -- [ITERATIONS]` (default 10000)
//! `ci/stress-mutant NAME` runs it on a planted bug.

use std::time::{Duration, Instant};

use faultline::sources::{self, Repository, Revision};
use faultline::{Engine, SyncSettings};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(10_000), |n| n.parse())
        .expect("ITERATIONS: a whole number");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (first, _) = Engine::open(dir.path(), "first").await.expect("open");
    let (second, _) = Engine::open(dir.path(), "second").await.expect("open");
    let mut sources = Vec::new();
    for _ in 0..3 {
        let repository = Repository::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(sources::serve(listener, repository.clone()));
        sources.push((repository, address));
    }
    let started = Instant::now();
    for iteration in 1..=iterations {
        let mut names = Vec::new();
        for (index, (repository, address)) in sources.iter().enumerate() {
            let name = format!("source-{index}");
            first.create_scope(&name, &name, *address).await.unwrap();
            let mut revision = Revision::new();
            revision.insert("n".to_owned(), iteration.to_le_bytes().to_vec());
            repository.commit(revision);
            names.push(name);
        }
        let mut settings = SyncSettings::with_concurrency(1);
        settings.timeout = Duration::from_secs(2);
        let (synced, deleted) =
            tokio::join!(second.sync_all(settings), first.delete_scope("source-0"));
        let (report, _) = (synced.unwrap(), deleted.unwrap());
        let violation = if first.mirror("source-0").await.unwrap().is_some() {
            Some("delete-wins: the mirror of source-0 survived its scope's delete")
        } else if report.most_in_flight > 1 {
            Some("bounded-concurrency: more than 1 fetch in flight at N = 1")
        } else if first.cached_sources().contains(&"source-0".to_owned()) {
            Some("caches-drain: the deleting handle still caches source-0")
        } else {
            None
        };
        if let Some(violation) = violation {
            println!(
                "first violation at iteration {iteration} after {:.2}s: {violation}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        for name in &names[1..] {
            first.delete_scope(name).await.unwrap();
        }
    }
    println!(
        "no violation in {iterations} iterations ({:.2}s)",
        started.elapsed().as_secs_f64()
    );
}
