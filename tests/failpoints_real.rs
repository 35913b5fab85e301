//! Real-mode recovery tests driven by fail-rs failpoints: the engine on multi-threaded tokio
//! with real files, faults injected through `fail::cfg`.
//!
//! Compiled only with the `failpoints` feature (without it `fp!` compiles to nothing and
//! this binary is empty):
//!
//! ```text
//! cargo test --features failpoints --test failpoints_real
//! ```
//!
//! fail-rs's configuration is process-global, so every test takes [`Failpoints`] first: it
//! holds a static lock for the whole test and a `fail::FailScenario` that clears every
//! failpoint on setup and on teardown (also when the test panics).
#![cfg(all(feature = "failpoints", not(madsim)))]

mod common;

use std::path::Path;

use faultline::sidecar;
use faultline::{layout, EngineError, Head, Receipt, RecoveryReport};

use common::{
    item, items, keys_at_head, linear_chain, open, owner_lock_files, pending_files, raw_rows,
};

const DATASET: &str = "events";

/// Serializes the tests of this binary. `FailScenario::setup` also takes a lock, but a
/// blocking one; this one is awaited, and is a tokio lock so that holding it across
/// `.await` is sound.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Exclusive use of the failpoint configuration for one test.
struct Failpoints {
    // Dropped first: clears every failpoint before the next test may start.
    scenario: fail::FailScenario<'static>,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Failpoints {
    async fn take() -> Failpoints {
        let serial = SERIAL.lock().await;
        Failpoints {
            scenario: fail::FailScenario::setup(),
            _serial: serial,
        }
    }

    fn set(&self, point: &str, actions: &str) {
        fail::cfg(point, actions).unwrap_or_else(|error| panic!("{point}={actions}: {error}"));
    }

    fn clear(&self, point: &str) {
        fail::remove(point);
    }

    fn teardown(self) {
        let Failpoints { scenario, _serial } = self;
        scenario.teardown();
    }
}

/// Asserts that an append failed with the fault injected at `point`.
fn assert_injected(result: Result<Receipt, EngineError>, point: &str, message: &str) {
    match result {
        Err(EngineError::Injected(injected)) => {
            assert_eq!(injected.point, point);
            assert_eq!(injected.message, message);
        }
        other => panic!("expected the fault injected at {point}, got {other:?}"),
    }
}

/// How many rows of the table file carry `key`, staged or published.
fn raw_count(dir: &Path, key: &str) -> usize {
    raw_rows(dir, DATASET)
        .iter()
        .filter(|(_, k)| k == key)
        .count()
}

/// Opens a store with one dataset holding one version of two items.
async fn seeded(dir: &Path) -> faultline::Engine {
    let (engine, _) = open(dir, "writer").await;
    engine.create_dataset(DATASET).await.unwrap();
    engine.append(DATASET, &items("seed", 2)).await.unwrap();
    engine
}

/// A fault after the publish committed is not reported: the append is acknowledged and its
/// sidecar kept. Once the handle is gone, the next open rolls the write forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_after_publish_is_acknowledged_and_rolled_forward_on_reopen() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;

    failpoints.set("engine.append.after_publish", "return(boom)");
    let receipt = writer
        .append(DATASET, &[item("kept")])
        .await
        .expect("acknowledged");
    failpoints.clear("engine.append.after_publish");
    assert_eq!(receipt.version, 2);
    assert_eq!(receipt.items_total, 3);

    let pending = sidecar::list(dir.path()).unwrap().sidecars;
    assert_eq!(
        pending.len(),
        1,
        "the sidecar of the published write is kept"
    );
    assert_eq!(pending[0].txid, receipt.txid);
    assert_eq!(pending[0].owner, writer.owner());
    assert_eq!(pending[0].target_version, 2);
    assert_eq!(
        keys_at_head(&writer, DATASET).await,
        ["seed-0", "seed-1", "kept"]
    );

    drop(writer);
    let (reopened, report) = open(dir.path(), "recovering").await;
    assert_eq!(
        report,
        RecoveryReport {
            rolled_forward: 1,
            rolled_back: 0,
            skipped_live: 0,
            ..RecoveryReport::default()
        }
    );
    assert!(
        pending_files(dir.path()).is_empty(),
        "left: {:?}",
        pending_files(dir.path())
    );
    assert_eq!(
        reopened.head(DATASET).await.unwrap(),
        Head {
            version: 2,
            items_total: 3
        }
    );
    assert_eq!(reopened.item_count(DATASET).await.unwrap(), 3);
    assert_eq!(
        keys_at_head(&reopened, DATASET).await,
        ["seed-0", "seed-1", "kept"]
    );
    assert_eq!(raw_count(dir.path(), "kept"), 1);
    linear_chain(&reopened, DATASET).await;
    failpoints.teardown();
}

/// A handle removes the sidecars it kept after a post-publish fault on its next append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_sidecar_is_removed_by_the_next_append() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;

    failpoints.set("engine.append.after_publish", "1*return(boom)");
    writer
        .append(DATASET, &[item("first")])
        .await
        .expect("acknowledged");
    assert_eq!(pending_files(dir.path()).len(), 1);
    writer
        .append(DATASET, &[item("second")])
        .await
        .expect("acknowledged");
    assert!(
        pending_files(dir.path()).is_empty(),
        "left: {:?}",
        pending_files(dir.path())
    );
    assert_eq!(
        writer.head(DATASET).await.unwrap(),
        Head {
            version: 3,
            items_total: 4
        }
    );

    drop(writer);
    let (_reopened, report) = open(dir.path(), "reopened").await;
    assert_eq!(report, RecoveryReport::default());
    failpoints.teardown();
}

/// A fault at any step before the publish commits fails the append with that fault and
/// leaves the store as it was: same head, no rows, no sidecar. A retry then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_before_publish_fails_the_append_and_leaves_nothing() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;
    let before = writer.head(DATASET).await.unwrap();

    let points = [
        "engine.append.after_pin",
        "engine.sidecar.before_write",
        "engine.stage.before_commit",
        "engine.append.before_publish",
        "engine.publish.before_commit",
    ];
    for point in points {
        let key = format!("lost at {point}");
        failpoints.set(point, "return(boom)");
        let result = writer.append(DATASET, &[item(&key)]).await;
        failpoints.clear(point);
        assert_injected(result, point, "boom");
        assert_eq!(writer.head(DATASET).await.unwrap(), before, "{point}");
        assert_eq!(writer.item_count(DATASET).await.unwrap(), 2, "{point}");
        assert!(
            !keys_at_head(&writer, DATASET).await.contains(&key),
            "{point}"
        );
        assert_eq!(
            raw_count(dir.path(), &key),
            0,
            "{point}: staged rows not removed"
        );
        assert!(
            pending_files(dir.path()).is_empty(),
            "{point}: sidecar not removed"
        );
    }

    let receipt = writer.append(DATASET, &[item("retried")]).await.unwrap();
    assert_eq!(receipt.version, before.version + 1);
    assert_eq!(
        keys_at_head(&writer, DATASET).await,
        ["seed-0", "seed-1", "retried"]
    );
    linear_chain(&writer, DATASET).await;

    drop(writer);
    let (_reopened, report) = open(dir.path(), "reopened").await;
    assert_eq!(report, RecoveryReport::default());
    failpoints.teardown();
}

/// A fault just before the acknowledgement is not reported: the write is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_before_ack_is_not_reported() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;

    failpoints.set("engine.append.before_ack", "return(boom)");
    let receipt = writer
        .append(DATASET, &[item("acked")])
        .await
        .expect("acknowledged");
    failpoints.clear("engine.append.before_ack");
    assert_eq!(receipt.version, 2);
    assert_eq!(
        keys_at_head(&writer, DATASET).await,
        ["seed-0", "seed-1", "acked"]
    );
    assert!(pending_files(dir.path()).is_empty());
    failpoints.teardown();
}

/// An unpublished write whose cleanup also failed leaves its sidecar and staged rows. They
/// stay while the owner lives (another open skips them) and are rolled back once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublished_write_is_rolled_back_once_its_owner_is_gone() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;

    failpoints.set("engine.append.before_publish", "return(boom)");
    failpoints.set("engine.abandon.before_unstage", "return(stuck)");
    let result = writer.append(DATASET, &[item("orphan")]).await;
    failpoints.clear("engine.append.before_publish");
    failpoints.clear("engine.abandon.before_unstage");
    assert_injected(result, "engine.append.before_publish", "boom");
    assert_eq!(
        pending_files(dir.path()).len(),
        1,
        "the sidecar stays for recovery"
    );
    assert_eq!(
        raw_count(dir.path(), "orphan"),
        1,
        "the staged row stays for recovery"
    );
    assert_eq!(
        writer.item_count(DATASET).await.unwrap(),
        2,
        "staged rows are invisible"
    );

    let (other, report) = open(dir.path(), "other").await;
    assert_eq!(
        report,
        RecoveryReport {
            rolled_forward: 0,
            rolled_back: 0,
            skipped_live: 1,
            ..RecoveryReport::default()
        }
    );
    assert_eq!(pending_files(dir.path()).len(), 1);
    assert_eq!(raw_count(dir.path(), "orphan"), 1);
    drop(other);

    drop(writer);
    let (recovering, report) = open(dir.path(), "recovering").await;
    assert_eq!(
        report,
        RecoveryReport {
            rolled_forward: 0,
            rolled_back: 1,
            skipped_live: 0,
            ..RecoveryReport::default()
        }
    );
    assert!(
        pending_files(dir.path()).is_empty(),
        "left: {:?}",
        pending_files(dir.path())
    );
    assert_eq!(
        raw_count(dir.path(), "orphan"),
        0,
        "staged row not rolled back"
    );
    assert_eq!(
        recovering.head(DATASET).await.unwrap(),
        Head {
            version: 1,
            items_total: 2
        }
    );
    assert_eq!(
        keys_at_head(&recovering, DATASET).await,
        ["seed-0", "seed-1"]
    );
    failpoints.teardown();
}

/// A sweep interrupted by faults fails the open; sweeping again finishes the job (each
/// step is repeatable), and the owners of the failed opens are forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_recovery_can_be_repeated() {
    let failpoints = Failpoints::take().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = seeded(dir.path()).await;

    // Leave an unpublished write (sidecar and staged row), then a published one (sidecar
    // kept). In this order: an append first removes the sidecars its handle kept.
    failpoints.set("engine.append.before_publish", "return(boom)");
    failpoints.set("engine.abandon.before_unstage", "return(stuck)");
    let lost = writer.append(DATASET, &[item("unpublished")]).await;
    failpoints.clear("engine.append.before_publish");
    failpoints.clear("engine.abandon.before_unstage");
    assert_injected(lost, "engine.append.before_publish", "boom");
    failpoints.set("engine.append.after_publish", "return(boom)");
    let kept = writer.append(DATASET, &[item("published")]).await;
    failpoints.clear("engine.append.after_publish");
    assert_eq!(kept.expect("acknowledged").version, 2);
    assert_eq!(pending_files(dir.path()).len(), 2);
    assert_eq!(raw_count(dir.path(), "unpublished"), 1);
    drop(writer);

    // Sidecars are swept in txid order: the unpublished write first, then the published one.
    let faults = [
        ("engine.open.before_recovery", "return(crash)", 2),
        ("engine.recovery.classify", "return(crash)", 2),
        ("engine.recovery.before_unstage", "return(crash)", 2),
        ("engine.recovery.before_sidecar_remove", "return(crash)", 2),
        // The first removal goes through, the second fails.
        (
            "engine.recovery.before_sidecar_remove",
            "1*off->return(crash)",
            1,
        ),
    ];
    for (point, actions, pending_after) in faults {
        failpoints.set(point, actions);
        let opened = faultline::Engine::open(dir.path(), "interrupted").await;
        failpoints.clear(point);
        match opened {
            Err(EngineError::Injected(injected)) => assert_eq!(injected.point, point),
            Err(other) => panic!("{point}: unexpected error {other}"),
            Ok((_, report)) => panic!("{point}: open succeeded with {report:?}"),
        }
        let pending = pending_files(dir.path()).len();
        assert_eq!(pending, pending_after, "after {point}={actions}");
    }
    assert_eq!(
        raw_count(dir.path(), "unpublished"),
        0,
        "rolled back before the fault"
    );

    let (recovered, report) = open(dir.path(), "recovered").await;
    let expected = RecoveryReport {
        rolled_forward: 1,
        rolled_back: 0,
        skipped_live: 0,
        ..RecoveryReport::default()
    };
    assert_eq!(report, expected);
    assert!(
        pending_files(dir.path()).is_empty(),
        "left: {:?}",
        pending_files(dir.path())
    );
    assert_eq!(raw_count(dir.path(), "published"), 1);
    let keys = keys_at_head(&recovered, DATASET).await;
    assert_eq!(keys, ["seed-0", "seed-1", "published"]);
    let live_lock = layout::owner_lock(dir.path(), recovered.owner());
    assert_eq!(
        owner_lock_files(dir.path()),
        [live_lock],
        "dead owners' lock files remain"
    );
    failpoints.teardown();
}
