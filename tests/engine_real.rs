//! Real-mode integration tests: the engine on multi-threaded tokio with real files.
//! (Not built for the simulator: `--cfg madsim` replaces tokio's runtime.)
#![cfg(not(madsim))]
//!
//! Nothing here configures failpoints, so these tests pass with and without the
//! `failpoints` feature. Failpoint-driven recovery tests live in `failpoints_real.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use faultline::sidecar::{self, Sidecar};
use faultline::{layout, Engine, EngineError, Head, Item, Receipt, RecoveryReport};

use common::{
    item, items, items_at, keys_at_head, linear_chain, open, owner_lock_files, pending_files,
    raw_rows, stage_raw,
};

const DATASET: &str = "events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_and_read_back_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, report) = open(dir.path(), "writer").await;
    assert_eq!(
        report,
        RecoveryReport::default(),
        "a fresh store has nothing to recover"
    );

    engine.create_dataset(DATASET).await.unwrap();
    assert_eq!(
        engine.head(DATASET).await.unwrap(),
        Head {
            version: 0,
            items_total: 0
        }
    );
    assert!(engine.versions(DATASET).await.unwrap().is_empty());
    assert_eq!(engine.item_count(DATASET).await.unwrap(), 0);
    assert!(items_at(&engine, DATASET, 0, 4).await.is_empty());
    assert!(matches!(
        engine.stream(DATASET, 1, 4).await,
        Err(EngineError::UnknownVersion { version: 1, .. })
    ));

    let batch_sizes = [3, 1, 4, 1, 5, 9, 2];
    let batches: Vec<Vec<Item>> = batch_sizes
        .iter()
        .enumerate()
        .map(|(b, &n)| items(&format!("b{b}"), n))
        .collect();
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut total = 0;
    for (index, batch) in batches.iter().enumerate() {
        let receipt = engine.append(DATASET, batch).await.unwrap();
        total += batch.len() as u64;
        assert_eq!(receipt.version, index as u64 + 1);
        assert_eq!(receipt.appended, batch.len() as u64);
        assert_eq!(receipt.items_total, total);
        assert_eq!(
            engine.head(DATASET).await.unwrap(),
            Head {
                version: receipt.version,
                items_total: total
            }
        );
        receipts.push(receipt);
    }
    assert_eq!(total, 25);

    let chain = linear_chain(&engine, DATASET).await;
    assert_eq!(chain.len(), batches.len());
    let mut expected_total = 0;
    for ((link, receipt), batch) in chain.iter().zip(&receipts).zip(&batches) {
        expected_total += batch.len() as u64;
        assert_eq!(link.txid, receipt.txid);
        assert_eq!(
            link.items_total, expected_total,
            "items_total of version {}",
            link.version
        );
        assert_eq!(
            engine.published(&receipt.txid).await.unwrap().as_ref(),
            Some(link)
        );
    }
    assert_eq!(engine.published("o999999-t00000001").await.unwrap(), None);
    assert_eq!(engine.item_count(DATASET).await.unwrap(), total);

    // Every version shows exactly the batches up to it, in append order, whatever the page
    // size (1, a divisor of the total, the exact total, more than the total, 0 = clamped to 1).
    for version in 0..=batches.len() as u64 {
        let expected: Vec<Item> = batches[..version as usize].concat();
        for page_size in [0, 1, 2, 5, 25, 100] {
            let got = items_at(&engine, DATASET, version, page_size).await;
            assert_eq!(got, expected, "version {version}, page size {page_size}");
        }
    }
    assert!(matches!(
        engine.stream(DATASET, batches.len() as u64 + 1, 4).await,
        Err(EngineError::UnknownVersion { .. })
    ));
    assert_eq!(
        raw_rows(dir.path(), DATASET).len() as u64,
        total,
        "no stray rows"
    );
    assert!(pending_files(dir.path()).is_empty());

    // Creating an existing dataset changes nothing.
    engine.create_dataset(DATASET).await.unwrap();
    assert_eq!(
        engine.head(DATASET).await.unwrap(),
        Head {
            version: 7,
            items_total: 25
        }
    );

    // A new handle after this one is gone sees the same store, and forgets the dead owner.
    drop(engine);
    let (reopened, report) = open(dir.path(), "reader").await;
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(linear_chain(&reopened, DATASET).await, chain);
    assert_eq!(reopened.item_count(DATASET).await.unwrap(), total);
    assert_eq!(items_at(&reopened, DATASET, 7, 3).await, batches.concat());
    assert_eq!(
        owner_lock_files(dir.path()),
        vec![layout::owner_lock(dir.path(), reopened.owner())],
        "only the live owner's lock file remains"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_are_independent() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open(dir.path(), "writer").await;
    engine.create_dataset("left").await.unwrap();
    engine.create_dataset("right").await.unwrap();
    engine.append("left", &items("l1", 2)).await.unwrap();
    engine.append("right", &items("r1", 5)).await.unwrap();
    engine.append("left", &items("l2", 1)).await.unwrap();

    assert_eq!(
        engine.head("left").await.unwrap(),
        Head {
            version: 2,
            items_total: 3
        }
    );
    assert_eq!(
        engine.head("right").await.unwrap(),
        Head {
            version: 1,
            items_total: 5
        }
    );
    assert_eq!(engine.item_count("left").await.unwrap(), 3);
    assert_eq!(engine.item_count("right").await.unwrap(), 5);
    assert_eq!(
        keys_at_head(&engine, "left").await,
        ["l1-0", "l1-1", "l2-0"]
    );
    assert_eq!(linear_chain(&engine, "right").await.len(), 1);
    assert!(matches!(
        engine.head("missing").await,
        Err(EngineError::UnknownDataset(_))
    ));
    assert!(matches!(
        engine.append("missing", &[item("k")]).await,
        Err(EngineError::UnknownDataset(_))
    ));
    assert!(
        pending_files(dir.path()).is_empty(),
        "a rejected append leaves no sidecar"
    );
}

const TASKS: usize = 4;
const APPENDS: usize = 20;
const ITEMS: usize = 3;
const MAX_ATTEMPTS: usize = 1_000;

/// One acknowledged append: its receipt and the items it carried.
type Acked = (Receipt, Vec<Item>);

/// Runs one append loop per entry of `tasks` (`(task id, handle)`) with `tokio::spawn`, so
/// that on a multi-threaded runtime they run in parallel. Returns every acknowledged append
/// and how many conflicts were retried.
async fn spawn_append_loops(tasks: Vec<(usize, Engine)>) -> (Vec<Acked>, usize) {
    let handles = tasks
        .into_iter()
        .map(|(task, engine)| tokio::spawn(append_loop(task, engine)))
        .collect();
    join_append_loops(handles).await
}

/// Runs one append loop per entry of `tasks` as local tasks of this thread; they interleave
/// whenever an append waits on a lock. A second shape of concurrency next to
/// `tokio::spawn`.
async fn run_append_loops_locally(tasks: Vec<(usize, Engine)>) -> (Vec<Acked>, usize) {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let handles = tasks
                .into_iter()
                .map(|(task, engine)| tokio::task::spawn_local(append_loop(task, engine)))
                .collect();
            join_append_loops(handles).await
        })
        .await
}

async fn join_append_loops(
    handles: Vec<tokio::task::JoinHandle<(Vec<Acked>, usize)>>,
) -> (Vec<Acked>, usize) {
    let mut acknowledged = Vec::new();
    let mut conflicts = 0;
    for handle in handles {
        let (acks, task_conflicts) = handle.await.expect("append task panicked");
        acknowledged.extend(acks);
        conflicts += task_conflicts;
    }
    (acknowledged, conflicts)
}

/// Handles are shared between tasks on a multi-threaded runtime.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Engine>();
};

/// `APPENDS` appends of `ITEMS` items each through `engine`, retrying on conflict.
async fn append_loop(task: usize, engine: Engine) -> (Vec<Acked>, usize) {
    let mut acknowledged = Vec::new();
    let mut conflicts = 0;
    for append in 0..APPENDS {
        let batch = items(&format!("t{task}-a{append}"), ITEMS);
        let mut attempts = 0;
        let receipt = loop {
            attempts += 1;
            match engine.append(DATASET, &batch).await {
                Ok(receipt) => break receipt,
                Err(error) if error.is_conflict() && attempts < MAX_ATTEMPTS => {
                    conflicts += 1;
                    tokio::task::yield_now().await;
                }
                Err(error) => panic!("task {task} append {append} attempt {attempts}: {error}"),
            }
        };
        assert_eq!(receipt.appended, ITEMS as u64);
        acknowledged.push((receipt, batch));
    }
    (acknowledged, conflicts)
}

/// Checks the store after `TASKS x APPENDS` acknowledged appends, reading through `readers`:
/// a linear chain whose links match the receipts, every acknowledged key present exactly once
/// and nothing else, no rows of lost races and no sidecars.
async fn check_after_concurrent_appends(dir: &Path, readers: &[&Engine], acknowledged: &[Acked]) {
    let appends = (TASKS * APPENDS) as u64;
    let total = appends * ITEMS as u64;
    assert_eq!(acknowledged.len() as u64, appends);

    // The chain is linear and each receipt names its own link.
    let chain = linear_chain(readers[0], DATASET).await;
    assert_eq!(chain.len() as u64, appends);
    for reader in &readers[1..] {
        assert_eq!(
            linear_chain(reader, DATASET).await,
            chain,
            "handles disagree on the chain"
        );
    }
    for (receipt, _) in acknowledged {
        let link = &chain[receipt.version as usize - 1];
        assert_eq!(
            link.txid, receipt.txid,
            "version {} published by another txid",
            receipt.version
        );
        assert_eq!(link.items_total, receipt.items_total);
        assert_eq!(receipt.items_total, receipt.version * ITEMS as u64);
    }

    // Every acknowledged key is present exactly once, and nothing else is.
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (_, batch) in acknowledged {
        for item in batch {
            assert!(
                expected.insert(item.key.clone()),
                "test bug: duplicate key {}",
                item.key
            );
        }
    }
    for reader in readers {
        assert_eq!(
            reader.head(DATASET).await.unwrap(),
            Head {
                version: appends,
                items_total: total
            }
        );
        assert_eq!(reader.item_count(DATASET).await.unwrap(), total);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for key in keys_at_head(reader, DATASET).await {
            *seen.entry(key).or_default() += 1;
        }
        let duplicated: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
        assert!(
            duplicated.is_empty(),
            "keys present more than once: {duplicated:?}"
        );
        assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    }

    // Every version shows exactly as many items as its link records.
    for link in &chain {
        let visible = items_at(readers[readers.len() - 1], DATASET, link.version, 16).await;
        assert_eq!(
            visible.len() as u64,
            link.items_total,
            "version {}",
            link.version
        );
    }

    // Conflicted attempts left no staged rows and no sidecars behind.
    let rows = raw_rows(dir, DATASET);
    assert_eq!(
        rows.len() as u64,
        total,
        "rows of lost races were not unstaged"
    );
    let published: BTreeSet<&str> = chain.iter().map(|l| l.txid.as_str()).collect();
    assert!(rows
        .iter()
        .all(|(txid, _)| published.contains(txid.as_str())));
    assert!(
        pending_files(dir).is_empty(),
        "sidecars left: {:?}",
        pending_files(dir)
    );
}

/// Two handles on one store (as two processes would hold them), four tasks appending
/// through them from the multi-threaded runtime, retrying on conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_append_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path(), "first").await;
    let (second, report) = open(dir.path(), "second").await;
    assert_eq!(report, RecoveryReport::default());
    assert_ne!(first.owner(), second.owner());
    first.create_dataset(DATASET).await.unwrap();
    let seen_by_second = second.head(DATASET).await.unwrap();
    assert_eq!(
        seen_by_second,
        Head::default(),
        "the second handle sees the dataset"
    );

    let handles = [&first, &second];
    let tasks = (0..TASKS)
        .map(|task| (task, handles[task % handles.len()].clone()))
        .collect();
    let (acknowledged, conflicts) = spawn_append_loops(tasks).await;
    eprintln!(
        "{} appends acknowledged after {conflicts} conflicts",
        acknowledged.len()
    );

    check_after_concurrent_appends(dir.path(), &[&first, &second], &acknowledged).await;
}

/// The same workload with each handle driven from its own thread and runtime (two tasks per
/// handle), the closest this test binary gets to two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_separate_runtimes_append_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (setup, _) = open(dir.path(), "setup").await;
        setup.create_dataset(DATASET).await.unwrap();
    }
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|thread| {
            let dir = dir.path().to_owned();
            let start = start.clone();
            tokio::task::spawn_blocking(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let opened = Engine::open(&dir, &format!("thread-{thread}")).await;
                    start.wait(); // reached even if opening failed, so the other thread goes on
                    let (engine, _) = opened.expect("open writer handle");
                    let tasks = (thread..TASKS)
                        .step_by(2)
                        .map(|t| (t, engine.clone()))
                        .collect();
                    run_append_loops_locally(tasks).await
                })
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut conflicts = 0;
    for thread in threads {
        let (acks, thread_conflicts) = thread.await.expect("writer thread panicked");
        acknowledged.extend(acks);
        conflicts += thread_conflicts;
    }
    eprintln!(
        "{} appends acknowledged after {conflicts} conflicts",
        acknowledged.len()
    );

    // The writers are gone: two fresh handles find nothing to recover and agree on the store.
    let (reader, report) = open(dir.path(), "reader").await;
    assert_eq!(report, RecoveryReport::default());
    let (other_reader, _) = open(dir.path(), "other reader").await;
    check_after_concurrent_appends(dir.path(), &[&reader, &other_reader], &acknowledged).await;
}

/// A handle opening the store must not touch the pending write of a handle that is alive,
/// and recovers it once that handle is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_skips_pending_write_of_live_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = open(dir.path(), "live").await;
    live.create_dataset(DATASET).await.unwrap();
    live.append(DATASET, &items("published", 2)).await.unwrap();

    // A write of the live handle between staging and publishing: sidecar plus staged rows.
    let txid = sidecar::txid(live.owner(), 1_000);
    let pending = Sidecar {
        txid: txid.clone(),
        owner: live.owner(),
        table: DATASET.to_owned(),
        base_version: 1,
        target_version: 2,
    };
    sidecar::write(dir.path(), &pending).unwrap();
    stage_raw(dir.path(), DATASET, &txid, &items("staged", 3));
    let sidecar_path = layout::pending_dir(dir.path()).join(format!("{txid}.json"));
    assert!(sidecar_path.exists());

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
    assert!(
        sidecar_path.exists(),
        "the live owner's sidecar was removed"
    );
    assert_eq!(
        sidecar::list(dir.path()).unwrap().sidecars,
        vec![pending.clone()]
    );
    let staged = raw_rows(dir.path(), DATASET)
        .into_iter()
        .filter(|(t, _)| *t == txid)
        .count();
    assert_eq!(staged, 3, "the live owner's staged rows were rolled back");
    assert!(
        layout::owner_lock(dir.path(), live.owner()).exists(),
        "the live owner's lock file was forgotten"
    );

    // Staged rows are invisible, and both handles keep working.
    assert_eq!(other.item_count(DATASET).await.unwrap(), 2);
    assert_eq!(
        keys_at_head(&other, DATASET).await,
        ["published-0", "published-1"]
    );
    live.append(DATASET, &[item("after")]).await.unwrap();
    other.append(DATASET, &[item("other")]).await.unwrap();
    assert_eq!(
        live.head(DATASET).await.unwrap(),
        Head {
            version: 3,
            items_total: 4
        }
    );

    // A second open while both are alive still skips it.
    let (third, report) = open(dir.path(), "third").await;
    assert_eq!(report.skipped_live, 1);
    assert!(sidecar_path.exists());
    drop(third);

    // Once the owner is gone, the next open rolls its unpublished write back.
    drop(live);
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
    assert!(!sidecar_path.exists());
    assert!(pending_files(dir.path()).is_empty());
    assert!(
        raw_rows(dir.path(), DATASET)
            .iter()
            .all(|(t, _)| *t != txid),
        "staged rows kept"
    );
    assert_eq!(recovering.item_count(DATASET).await.unwrap(), 4);
    assert_eq!(
        keys_at_head(&recovering, DATASET).await,
        ["published-0", "published-1", "after", "other"]
    );
    drop(other);
}

/// Handles opening and closing a store concurrently (as processes starting and stopping
/// would) must all open, and a live handle must keep its owner lock file.
///
/// Regression (found by review): each open's sweep reaps dead owners' lock files; a handle
/// that had created its lock file but not yet locked it looked dead, lost its file, and
/// every later sweep would roll back its in-flight writes. Many threads open and drop
/// handles; every open must succeed and every live owner keep its lock file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_all_succeed() {
    const THREADS: usize = 8;
    const OPENS_PER_THREAD: usize = 60;

    let dir = tempfile::tempdir().unwrap();
    let failed = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let dir = dir.path().to_owned();
            let failed = failed.clone();
            tokio::task::spawn_blocking(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(open_and_close(&dir, thread, OPENS_PER_THREAD, &failed))
            })
        })
        .collect();
    let mut opens = 0;
    let mut failures = Vec::new();
    for thread in threads {
        let (thread_opens, thread_failures) = thread.await.expect("opening thread panicked");
        opens += thread_opens;
        failures.extend(thread_failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {opens} opens failed: {failures:#?}",
        failures.len()
    );
}

/// Opens and drops `count` handles or until any thread sees a failure; returns how many
/// opens were tried and what failed.
async fn open_and_close(
    dir: &Path,
    thread: usize,
    count: usize,
    failed: &AtomicBool,
) -> (usize, Vec<String>) {
    let mut opens = 0;
    let mut failures = Vec::new();
    while opens < count && !failed.load(Ordering::Relaxed) {
        opens += 1;
        match Engine::open(dir, &format!("thread-{thread}")).await {
            Ok((engine, _)) => {
                // Stay alive for a moment while the other threads sweep.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let lock = layout::owner_lock(dir, engine.owner());
                if !lock.exists() {
                    failures.push(format!("live owner's lock {} deleted", lock.display()));
                }
            }
            Err(error) => failures.push(format!("thread {thread}, open {opens}: {error}")),
        }
        if !failures.is_empty() {
            failed.store(true, Ordering::Relaxed);
        }
    }
    (opens, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open(dir.path(), "names").await;

    let too_long = "n".repeat(65);
    let rejected = [
        "../x",
        "..",
        "",
        "a/b",
        "a.b",
        "with space",
        "é",
        too_long.as_str(),
    ];
    for name in rejected {
        let error = engine.create_dataset(name).await.expect_err(name);
        assert!(!error.is_conflict(), "{name:?}: {error}");
        assert!(engine.head(name).await.is_err(), "{name:?} was registered");
    }
    assert!(
        !dir.path().join("x.db").exists(),
        "a table file escaped tables/"
    );
    assert!(!dir.path().parent().unwrap().join("x.db").exists());
    let tables: Vec<_> = std::fs::read_dir(layout::tables_dir(dir.path()))
        .unwrap()
        .collect();
    assert!(
        tables.is_empty(),
        "files created for rejected names: {tables:?}"
    );

    let longest = "n".repeat(64);
    for name in ["x", "a-b_C9", longest.as_str()] {
        engine
            .create_dataset(name)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(engine.head(name).await.unwrap(), Head::default());
        assert!(layout::table(dir.path(), name).exists());
    }
}
