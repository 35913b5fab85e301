//! Every public future of the engine is `Send`, so that a library user can `tokio::spawn`
//! it on a multi-threaded runtime: checked at compile time for each one (an un-awaited
//! future given to [`assert_send`]), then exercised by running representative sequences of
//! them as spawned tasks on a two-thread runtime against real store directories.
//! (Not built for the simulator: `--cfg madsim` replaces tokio's runtime.)
#![cfg(not(madsim))]
//!
//! Nothing here configures failpoints, so these tests pass with and without the
//! `failpoints` feature.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use faultline::backfill::{migration_name, BackfillSettings, Cancel};
use faultline::background::Status;
use faultline::broadcast::{self, BroadcasterSettings};
use faultline::migrate::{
    BadRecordPolicy, MigrationOptions, MigrationSidecar, Step, StepKind, TablePlan,
};
use faultline::records::Stored;
use faultline::schema::{Encoding, NodeType, Property, Schema};
use faultline::sources::{self, Repository, Revision};
use faultline::workers::{Worker, WorkerSettings};
use faultline::{
    layout, legacy, manifest, records, recovery, sql, table, Engine, EngineError, Head, Item,
    RecoveryReport, Rows, SyncSettings, Synced, VersionStream,
};
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use common::items;

/// Compiles only if `T` is `Send`.
fn assert_send<T: Send>(_: &T) {}

/// Runs `call(engine)` as a task of its own (`tokio::spawn`, so it must be `Send`) and waits
/// for its output.
async fn on_task<T, F, Fut>(engine: &Engine, call: F) -> T
where
    F: FnOnce(Engine) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(call(engine.clone()))
        .await
        .expect("the spawned task panicked")
}

/// Opens the store in `dir` as a task of its own.
async fn open_on_task(dir: &Path, label: &'static str) -> (Engine, RecoveryReport) {
    let dir = dir.to_owned();
    tokio::spawn(async move { Engine::open(&dir, label).await })
        .await
        .expect("the spawned open panicked")
        .unwrap_or_else(|error| panic!("opening as {label:?}: {error}"))
}

/// Every public future, created and dropped without being polled (a future does nothing
/// until polled), each checked by [`assert_send`]. Most take their arguments by reference,
/// so they are checked here as they are made; the spawning tests below show they run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_future_is_send() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open_on_task(dir.path(), "checker").await;
    on_task(&engine, |e| async move { e.create_dataset("d").await })
        .await
        .unwrap();
    let mut stream: VersionStream = on_task(&engine, |e| async move { e.stream("d", 0, 4).await })
        .await
        .unwrap();
    let broadcaster = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = broadcaster.local_addr().unwrap();
    let broadcasting = tokio::spawn(broadcast::serve(
        broadcaster,
        BroadcasterSettings::default(),
        None,
    ));
    let worker = Worker::start(
        "checker",
        engine.clone(),
        address,
        WorkerSettings::default(),
    )
    .expect("a valid worker name");

    let schema = Schema::default();
    let options = MigrationOptions::default();
    let legacy_rows: Vec<(String, Vec<u8>)> = Vec::new();
    let json_rows: Vec<(String, Map<String, Value>)> = Vec::new();
    let batch = items("k", 2);
    let settings = BackfillSettings::default();
    let cancel = Cancel::default();
    let timeout = Duration::from_millis(100);

    // `Engine` (src/lib.rs).
    assert_send(&Engine::open(dir.path(), "never-polled"));
    assert_send(&engine.create_dataset("d"));
    assert_send(&engine.published("txid"));
    // Node records (src/nodes.rs).
    assert_send(&engine.schema());
    assert_send(&engine.define_schema(&schema));
    assert_send(&engine.import_legacy("item", &legacy_rows));
    assert_send(&engine.load("item", &json_rows));
    assert_send(&engine.records("item"));
    assert_send(&engine.quarantined("item"));
    assert_send(&engine.leases());
    // Reads (src/read.rs).
    assert_send(&engine.versions("d"));
    assert_send(&engine.heads());
    assert_send(&engine.head("d"));
    assert_send(&engine.item_count("d"));
    assert_send(&engine.stream("d", 0, 4));
    assert_send(&stream.next_page());
    let whole = on_task(&engine, |e| async move { e.stream("d", 0, 4).await })
        .await
        .unwrap();
    assert_send(&whole.collect());
    // Writes (src/append.rs).
    assert_send(&engine.append("d", &batch));
    assert_send(&engine.write("d", Rows::Items(&batch)));
    assert_send(&engine.write(
        "nodes-item",
        Rows::Records {
            rows: &json_rows,
            catalog: 0,
        },
    ));
    // Migrations (src/migrate.rs), background migrations and the backfill.
    assert_send(&engine.apply_schema(&schema, &options));
    assert_send(&engine.resume_migrations());
    assert_send(&engine.background_migrations());
    assert_send(&engine.background_migration("m"));
    assert_send(&engine.backfill_versions("d", &settings, &cancel));
    // Scopes (src/scopes.rs).
    assert_send(&engine.create_scope("s", "source", address));
    assert_send(&engine.scopes());
    assert_send(&engine.mirror("source"));
    assert_send(&engine.scope_state());
    assert_send(&engine.delete_scope("s"));
    assert_send(&engine.sync_all(SyncSettings::default()));
    assert_send(&engine.sync_source("source", address, timeout));
    // Workers (src/workers.rs).
    assert_send(&worker.change("d", &batch));
    assert_send(&worker.stopped());
    // The recovery sweep (src/recovery.rs).
    assert_send(&recovery::sweep(&engine));
    // Sources and the broadcaster (src/sources.rs, src/broadcast.rs).
    let listener = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tokio_listener = |l: std::net::TcpListener| {
        l.set_nonblocking(true).unwrap();
        tokio::net::TcpListener::from_std(l).unwrap()
    };
    assert_send(&sources::serve(
        tokio_listener(listener()),
        Repository::default(),
    ));
    assert_send(&sources::serve_slowly(
        tokio_listener(listener()),
        Repository::default(),
        timeout,
    ));
    assert_send(&sources::latest(address, timeout));
    assert_send(&sources::fetch(address, 1, timeout));
    assert_send(&broadcast::serve(
        tokio_listener(listener()),
        BroadcasterSettings::default(),
        None,
    ));
    // The building blocks on a connection (src/sql.rs, src/manifest.rs, src/table.rs,
    // src/records.rs), on a file of their own.
    let mut connection = sql::open(&dir.path().join("blocks.db")).unwrap();
    let shared = tokio::sync::Mutex::new(sql::open(&dir.path().join("shared.db")).unwrap());
    let txids = vec!["t".to_owned()];
    assert_send(&sql::ensure_schema(&mut connection, "check", "", 1, &[]));
    assert_send(&sql::retry_busy(&mut connection, "check", |c| {
        c.execute_batch("SELECT 1")
    }));
    assert_send(&sql::begin_write(&mut connection, "check"));
    assert_send(&sql::retry_busy_shared(&shared, "check", |c| {
        c.execute_batch("SELECT 1")
    }));
    assert_send(&sql::begin_write_shared(&shared, "check"));
    assert_send(&manifest::create(&mut connection));
    assert_send(&manifest::register_owner(&mut connection, "label"));
    assert_send(&manifest::add_table(&mut connection, "d"));
    assert_send(&manifest::version(&mut connection, "d"));
    assert_send(&manifest::heads(&mut connection));
    assert_send(&manifest::chain(&mut connection, "d"));
    assert_send(&manifest::published(&mut connection, "t"));
    assert_send(&table::create(&mut connection));
    assert_send(&table::unstage(&mut connection, "t"));
    assert_send(&table::stamp(&mut connection, "t", 1));
    assert_send(&table::count(&mut connection, &txids));
    assert_send(&table::page(&mut connection, &txids, 0, 4));
    assert_send(&records::create(&mut connection));

    worker.stop();
    broadcasting.abort();
}

const DATASET: &str = "events";

/// Writes and reads, each a spawned task: open, create, append, read back at every version
/// (several reads in flight at once), then reopen the store and read it back again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_writes_and_reads_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, report) = open_on_task(dir.path(), "writer").await;
    assert_eq!(report, RecoveryReport::default());
    on_task(&engine, |e| async move { e.create_dataset(DATASET).await })
        .await
        .unwrap();

    let (first, second) = (items("first", 3), items("second", 4));
    let batch = first.clone();
    let one = on_task(
        &engine,
        move |e| async move { e.append(DATASET, &batch).await },
    )
    .await
    .unwrap();
    let batch = second.clone();
    let two = on_task(&engine, move |e| async move {
        e.write(DATASET, Rows::Items(&batch)).await
    })
    .await
    .unwrap();
    assert_eq!((one.version, one.appended, one.items_total), (1, 3, 3));
    assert_eq!((two.version, two.appended, two.items_total), (2, 4, 7));

    // Reads in flight at once, on both worker threads.
    let head = tokio::spawn({
        let e = engine.clone();
        async move { e.head(DATASET).await }
    });
    let chain = tokio::spawn({
        let e = engine.clone();
        async move { e.versions(DATASET).await }
    });
    let heads = tokio::spawn({
        let e = engine.clone();
        async move { e.heads().await }
    });
    let count = tokio::spawn({
        let e = engine.clone();
        async move { e.item_count(DATASET).await }
    });
    let published = tokio::spawn({
        let (e, txid) = (engine.clone(), two.txid.clone());
        async move { e.published(&txid).await }
    });
    let at_one = tokio::spawn({
        let e = engine.clone();
        async move { e.stream(DATASET, 1, 2).await?.collect().await }
    });
    let at_two = tokio::spawn({
        let e = engine.clone();
        async move {
            let mut stream = e.stream(DATASET, 2, 3).await?;
            let mut pages = Vec::new();
            while let Some(page) = stream.next_page().await? {
                pages.push(page);
            }
            Ok::<_, EngineError>(pages)
        }
    });
    assert_eq!(
        head.await.unwrap().unwrap(),
        Head {
            version: 2,
            items_total: 7
        }
    );
    let chain = chain.await.unwrap().unwrap();
    let txids: Vec<&str> = chain.iter().map(|l| l.txid.as_str()).collect();
    assert_eq!(txids, [one.txid.as_str(), two.txid.as_str()]);
    assert_eq!(
        heads.await.unwrap().unwrap(),
        BTreeMap::from([(DATASET.to_owned(), 2)])
    );
    assert_eq!(count.await.unwrap().unwrap(), 7);
    assert_eq!(published.await.unwrap().unwrap().as_ref(), chain.get(1));
    assert_eq!(at_one.await.unwrap().unwrap(), first);
    let pages = at_two.await.unwrap().unwrap();
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1], "pages of 3 over 7 items");
    let everything: Vec<Item> = first.iter().chain(&second).cloned().collect();
    assert_eq!(pages.concat(), everything);

    // The sweep by hand (nothing to do), then the store reopened by a new handle.
    let swept = on_task(&engine, |e| async move { recovery::sweep(&e).await })
        .await
        .unwrap();
    assert_eq!(swept, RecoveryReport::default());
    drop(engine);
    let (reopened, report) = open_on_task(dir.path(), "reader").await;
    assert_eq!(report, RecoveryReport::default());
    let read_back = on_task(&reopened, |e| async move {
        let head = e.head(DATASET).await?;
        e.stream(DATASET, head.version, 5).await?.collect().await
    })
    .await
    .unwrap();
    assert_eq!(read_back, everything);
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn catalog(version: u64, encoding: Encoding, properties: &[&str]) -> Schema {
    let properties = properties
        .iter()
        .map(|name| {
            let property = match *name {
                "color" => Property {
                    default: Some(json!("none")),
                    soft_dropped: false,
                },
                _ => Property::default(),
            };
            (name.to_string(), property)
        })
        .collect();
    Schema {
        version,
        node_types: BTreeMap::from([(
            "item".to_owned(),
            NodeType {
                encoding,
                properties,
            },
        )]),
    }
}

/// Version 1: legacy-encoded items with a name and a size.
fn old_catalog() -> Schema {
    catalog(1, Encoding::Legacy, &["name", "size"])
}

/// Version 2: JSON, and a color (default "none") added.
fn new_catalog() -> Schema {
    catalog(2, Encoding::Json, &["name", "size", "color"])
}

fn originals() -> Vec<(String, Map<String, Value>)> {
    (0..5)
        .map(|i| {
            let record = object(json!({"name": format!("n{i}"), "size": i}));
            (format!("k{i}"), record)
        })
        .collect()
}

/// A store whose node type `item` holds the legacy-encoded [`originals`].
async fn legacy_store(engine: &Engine) {
    on_task(
        engine,
        |e| async move { e.define_schema(&old_catalog()).await },
    )
    .await
    .unwrap();
    let rows: Vec<(String, Vec<u8>)> = originals()
        .iter()
        .map(|(key, record)| (key.clone(), legacy::encode(record).unwrap()))
        .collect();
    on_task(engine, move |e| async move {
        e.import_legacy("item", &rows).await
    })
    .await
    .unwrap();
}

/// The records `item` should hold once migrated to [`new_catalog`].
fn migrated(extra: &[(String, Map<String, Value>)]) -> Vec<(String, Stored)> {
    let mut expected: Vec<(String, Stored)> = originals()
        .into_iter()
        .chain(extra.iter().cloned())
        .map(|(key, mut record)| {
            record.insert("color".to_owned(), json!("none"));
            (key, Stored::Json(record))
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    expected
}

/// The catalog, node records, a migration, the backfill and the background status, each a
/// spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_schema_migration_and_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open_on_task(dir.path(), "migrator").await;
    legacy_store(&engine).await;
    let loaded = vec![("fresh".to_owned(), object(json!({"name": "f", "size": 9})))];
    let rows = loaded.clone();
    let receipt = on_task(&engine, move |e| async move { e.load("item", &rows).await })
        .await
        .unwrap();
    assert_eq!(receipt.appended, 1);
    let before = on_task(&engine, |e| async move { e.records("item").await })
        .await
        .unwrap();
    assert_eq!(before.len(), 6);
    assert!(matches!(&before[0], (key, Stored::Json(_)) if key == "fresh"));

    let options = MigrationOptions::default().batch_size(2);
    let report = on_task(&engine, move |e| async move {
        e.apply_schema(&new_catalog(), &options).await
    })
    .await
    .unwrap();
    assert_eq!(report.reencoded, 5);
    assert!(report.quarantined.is_empty());
    let schema = on_task(&engine, |e| async move { e.schema().await })
        .await
        .unwrap();
    assert_eq!(schema, new_catalog());
    let after = on_task(&engine, |e| async move { e.records("item").await })
        .await
        .unwrap();
    assert_eq!(after, migrated(&loaded));
    let quarantined = on_task(&engine, |e| async move { e.quarantined("item").await })
        .await
        .unwrap();
    assert!(quarantined.is_empty());
    let leases = on_task(&engine, |e| async move { e.leases().await })
        .await
        .unwrap();
    assert!(leases.is_empty(), "{leases:?}");
    let resumed = on_task(&engine, |e| async move { e.resume_migrations().await })
        .await
        .unwrap();
    assert_eq!(resumed, 0, "nothing was left pending");

    // The backfill of a dataset this engine wrote (every row already has its version).
    on_task(&engine, |e| async move { e.create_dataset(DATASET).await })
        .await
        .unwrap();
    let batch = items("b", 4);
    on_task(
        &engine,
        move |e| async move { e.append(DATASET, &batch).await },
    )
    .await
    .unwrap();
    let settings = BackfillSettings {
        batch_size: 2,
        yield_ms: 0,
        progress_every: Duration::from_secs(1),
    };
    let backfill = on_task(&engine, move |e| async move {
        e.backfill_versions(DATASET, &settings, &Cancel::default())
            .await
    })
    .await
    .unwrap();
    assert_eq!(
        (backfill.status, backfill.attempt, backfill.processed),
        (Status::Done, 1, 0)
    );
    let all = on_task(&engine, |e| async move { e.background_migrations().await })
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [migration_name(DATASET)]);
    let one = on_task(&engine, |e| async move {
        e.background_migration(&migration_name(DATASET)).await
    })
    .await
    .unwrap();
    assert_eq!(one.as_ref(), all.first());
    assert_eq!(one.map(|m| m.status), Some(Status::Done));
}

/// The case that was not `Send`: `Engine::open` whose recovery sweep finishes a migration a
/// dead handle left (its lease taken and its sidecar written, as `apply_schema` does before
/// its first step), through to the catalog switch, on a spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_open_finishes_a_dead_handles_migration() {
    let dir = tempfile::tempdir().unwrap();
    let (setup, _) = open_on_task(dir.path(), "setup").await;
    legacy_store(&setup).await;
    drop(setup);

    // The handle that "crashed" right after writing its migration sidecar.
    let (crashed, _) = open_on_task(dir.path(), "crashed").await;
    let dead = crashed.owner();
    drop(crashed);
    let table = "nodes-item".to_owned();
    let id = format!("m-crashed-{dead}");
    let manifest = Connection::open(layout::manifest(dir.path())).unwrap();
    manifest
        .execute(
            "INSERT INTO leases(tbl, migration, owner) VALUES (?1, ?2, ?3)",
            rusqlite::params![table, id, dead],
        )
        .unwrap();
    drop(manifest);
    let steps = vec![
        Step {
            kind: StepKind::ReEncode,
            limit: None,
        },
        Step {
            kind: StepKind::AddProperty {
                property: "color".to_owned(),
                default: json!("none"),
            },
            limit: None,
        },
    ];
    let sidecar = MigrationSidecar {
        id: id.clone(),
        owner: dead,
        old: old_catalog(),
        new: new_catalog(),
        tables: vec![TablePlan {
            table: table.clone(),
            base_version: 0,
            final_version: steps.len() as u64,
            steps,
        }],
        bad_records: BadRecordPolicy::FailMigration,
    };
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        migrations.join(format!("{id}.json")),
        serde_json::to_vec_pretty(&sidecar).unwrap(),
    )
    .unwrap();

    let (engine, report) = open_on_task(dir.path(), "recoverer").await;
    assert_eq!(
        report,
        RecoveryReport {
            migrations_rolled_forward: 1,
            ..RecoveryReport::default()
        }
    );
    let (schema, records, head, leases) = on_task(&engine, move |e| async move {
        let schema = e.schema().await?;
        let records = e.records("item").await?;
        let head = e.head(&table).await?;
        let leases = e.leases().await?;
        Ok::<_, EngineError>((schema, records, head, leases))
    })
    .await
    .unwrap();
    assert_eq!(schema, new_catalog());
    assert_eq!(records, migrated(&[]));
    assert_eq!(head.version, 2, "one version per step");
    assert!(leases.is_empty(), "{leases:?}");
    assert_eq!(std::fs::read_dir(&migrations).unwrap().count(), 0);
}

fn revision(entries: &[(&str, &str)]) -> Revision {
    entries
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.as_bytes().to_vec()))
        .collect()
}

/// Sources and scopes over loopback TCP, and a worker's change through a broadcaster, each
/// a spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_scopes_sources_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open_on_task(dir.path(), "scopes").await;
    let repository = Repository::default();
    repository.commit(revision(&[("README", "one")]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    let serving = tokio::spawn(sources::serve(listener, repository.clone()));
    let timeout = Duration::from_secs(2);

    let latest = tokio::spawn(sources::latest(source, timeout));
    let fetched = tokio::spawn(sources::fetch(source, 1, timeout));
    assert_eq!(latest.await.unwrap(), Ok(1));
    assert_eq!(fetched.await.unwrap(), Ok(revision(&[("README", "one")])));

    on_task(&engine, move |e| async move {
        e.create_scope("team", "alpha", source).await
    })
    .await
    .unwrap();
    let scopes = on_task(&engine, |e| async move { e.scopes().await })
        .await
        .unwrap();
    assert_eq!(scopes, [("team".to_owned(), "alpha".to_owned())]);
    let synced = on_task(&engine, move |e| async move {
        e.sync_source("alpha", source, timeout).await
    })
    .await
    .unwrap();
    assert_eq!(synced, Synced::Fetched(1));
    repository.commit(revision(&[("README", "two"), ("NEWS", "")]));
    let mut settings = SyncSettings::with_concurrency(2);
    settings.timeout = timeout;
    let report = on_task(&engine, move |e| async move { e.sync_all(settings).await })
        .await
        .unwrap();
    assert_eq!(report.sources["alpha"], Synced::Fetched(2));
    let mirror = on_task(&engine, |e| async move { e.mirror("alpha").await })
        .await
        .unwrap()
        .expect("a mirror");
    assert_eq!(
        (mirror.revision, mirror.entries),
        (2, revision(&[("README", "two"), ("NEWS", "")]))
    );
    let (named, mirrors) = on_task(&engine, |e| async move { e.scope_state().await })
        .await
        .unwrap();
    assert_eq!(
        named,
        BTreeMap::from([("team".to_owned(), "alpha".to_owned())])
    );
    assert_eq!(mirrors.keys().collect::<Vec<_>>(), ["alpha"]);
    let deleted = on_task(&engine, |e| async move { e.delete_scope("team").await })
        .await
        .unwrap();
    assert!(deleted);
    let gone = on_task(&engine, |e| async move { e.mirror("alpha").await })
        .await
        .unwrap();
    assert_eq!(gone, None, "the last scope of a source takes its mirror");
    serving.abort();

    // A worker's change, and its end, through a broadcaster on loopback.
    on_task(&engine, |e| async move { e.create_dataset(DATASET).await })
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broadcaster = listener.local_addr().unwrap();
    let broadcasting = tokio::spawn(broadcast::serve(
        listener,
        BroadcasterSettings::default(),
        None,
    ));
    let worker = Worker::start("w", engine.clone(), broadcaster, WorkerSettings::default())
        .expect("a valid worker name");
    until_healthy(&worker).await;
    let changing = worker.clone();
    let receipt = tokio::spawn(async move { changing.change(DATASET, &items("w", 2)).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((receipt.version, receipt.items_total), (1, 2));
    assert_eq!(
        worker.view(),
        Some(BTreeMap::from([(DATASET.to_owned(), 1)]))
    );
    let waiting = worker.clone();
    let stopped = tokio::spawn(async move { waiting.stopped().await });
    worker.stop();
    assert_eq!(stopped.await.unwrap(), "stopped");
    broadcasting.abort();
}

/// Waits up to 5 s for `worker` to be healthy.
async fn until_healthy(worker: &Worker) {
    let started = Instant::now();
    while !worker.health().healthy() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the worker never got healthy: {:?}",
            worker.health()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
