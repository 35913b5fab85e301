//! A plain stress loop for crash windows in a migration, for comparison with the simulator:
//! a child process killed at a random instant while it migrates. Each iteration writes a
//! fresh legacy store of RECORDS records (`legacy_fixture`'s samples), starts a child that
//! applies the schema-apply family's widest change (re-encode to JSON, add `color`, drop
//! `size`, batches of 20) and sends it SIGKILL at an instant drawn uniformly over the time a
//! whole migration takes (measured once, un-killed, before the loop: a generous loop that
//! never kills before the child started or after it finished). The parent then opens the
//! store (its recovery resumes the migration) and, with that handle still open, checks
//! what leases-released checks: once the catalog is the new schema, the handle holds no
//! lease. It also checks that the catalog is the new schema and no migration sidecar is
//! left.
//!
//! Prints the first violation's iteration and time; with COUNT 1 it goes on and prints how
//! many iterations of all broke it (the window's share of random kills).
//!
//! `cargo run --release --example stress_migrate_kill -- [ITERATIONS] [RECORDS] [COUNT]`
//! (default 2000, 200, 0)
//! `ci/stress-mutant NAME 2000 stress_migrate_kill` runs it on a planted bug.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use faultline::migrate::MigrationOptions;
use faultline::Engine;

#[path = "legacy_fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "common/stress.rs"]
mod support;
use support::{Instants, Sightings};

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--child") {
        let dir = args.next().expect("the store");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(migrate(Path::new(&dir)));
        return;
    }
    let iterations = support::arg(0, 2_000, "ITERATIONS");
    let records = support::arg(1, 200, "RECORDS");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // One un-killed child: how long a whole migration takes, process start-up included.
    let calibration = tempfile::tempdir().expect("a temporary directory");
    runtime.block_on(setup(calibration.path(), records));
    let started = Instant::now();
    let status = spawn(calibration.path()).wait().expect("the child");
    assert!(status.success(), "the calibration migration failed");
    let whole = started.elapsed();
    println!(
        "a whole migration of {records} records takes {:.1} ms (child process included); kills \
         are drawn uniformly over it",
        whole.as_secs_f64() * 1e3
    );
    let mut sightings = Sightings::new(support::flag(2));
    let mut instants = Instants::default();
    for iteration in 1..=iterations {
        let dir = tempfile::tempdir().expect("a temporary directory");
        runtime.block_on(setup(dir.path(), records));
        let mut child = spawn(dir.path());
        std::thread::sleep(instants.below(whole));
        let _ = child.kill();
        child.wait().expect("reaped");
        if sightings.saw(iteration, runtime.block_on(check(dir.path()))) {
            return;
        }
    }
    sightings.finish(iterations, "");
}

fn spawn(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("this program"))
        .args(["--child", &dir.display().to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("a child")
}

/// A fresh legacy store of `records` sample records.
async fn setup(dir: &Path, records: u64) {
    let (engine, _) = Engine::open(dir, "setup").await.expect("open");
    engine
        .define_schema(&fixture::legacy_schema())
        .await
        .expect("the legacy catalog");
    fixture::import_samples(&engine, records)
        .await
        .expect("import");
}

/// The child: migrates, then exits.
async fn migrate(dir: &Path) {
    let (engine, _) = Engine::open(dir, "migrator").await.expect("open");
    let new = fixture::widest_change(&engine.schema().await.expect("the catalog"));
    let options = MigrationOptions::default().allow_data_loss().batch_size(20);
    engine.apply_schema(&new, &options).await.expect("migrate");
}

/// After the kill: a handle opens the store (its recovery finishes the migration) and, kept
/// open, must hold no lease once the catalog is the new schema.
async fn check(dir: &Path) -> Option<String> {
    let (engine, _) = Engine::open(dir, "recoverer")
        .await
        .expect("open after the kill");
    let catalog = engine.schema().await.expect("the catalog");
    if catalog.version < 2 {
        // Killed before the migration's sidecar: nothing was started, nothing to resume.
        let pending = faultline::migrate::pending(dir).expect("sidecars");
        return (!pending.is_empty())
            .then(|| format!("{} migration sidecars left after recovery", pending.len()));
    }
    let leases = engine.leases().await.expect("leases");
    leases
        .iter()
        .find(|(_, _, owner)| *owner == engine.owner())
        .map(|(table, migration, _)| {
            format!(
                "leases-released: the recovering handle still holds the lease on {table} of \
                 finished migration {migration}"
            )
        })
}
