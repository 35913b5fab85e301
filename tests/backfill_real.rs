//! Real-mode tests of background migrations and the item-version backfill: real SQLite files
//! on tokio, a store aged to what a version 1 engine wrote.
#![cfg(not(madsim))]

use std::path::Path;
use std::time::Duration;

use faultline::backfill::{migration_name, BackfillSettings, Cancel};
use faultline::background::{Migration, Status};
use faultline::{Engine, EngineError, Item};

const DATASET: &str = "items";

/// fail-rs's configuration is process-global: the tests of this file run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A store with `rows` rows in `rows / 10` versions, then aged: no `version` column, and two
/// orphan rows of a txid no version publishes.
async fn old_store(dir: &Path, rows: u64) {
    let (engine, _) = Engine::open(dir, "setup").await.unwrap();
    engine.create_dataset(DATASET).await.unwrap();
    for start in (0..rows).step_by(10) {
        let items: Vec<Item> = (start..(start + 10).min(rows))
            .map(|n| Item {
                key: format!("k{n}"),
                payload: format!("p{n}"),
            })
            .collect();
        engine.append(DATASET, &items).await.unwrap();
    }
    drop(engine);
    let connection = rusqlite::Connection::open(faultline::layout::table(dir, DATASET)).unwrap();
    connection
        .execute_batch(
            "INSERT INTO items(txid, key, payload) VALUES ('orphan', 'o1', ''), ('orphan', 'o2', '');
             DROP INDEX items_unversioned; ALTER TABLE items DROP COLUMN version;
             PRAGMA user_version = 1;",
        )
        .unwrap();
}

/// `(rows without a version of a published txid, orphans with one)`.
async fn left(dir: &Path, engine: &Engine) -> (u64, u64) {
    let chain = engine.versions(DATASET).await.unwrap();
    let txids: Vec<String> = chain.into_iter().map(|l| l.txid).collect();
    let connection = rusqlite::Connection::open(faultline::layout::table(dir, DATASET)).unwrap();
    let list = serde_json::to_string(&txids).unwrap();
    let unstamped = connection
        .query_row(
            "SELECT COUNT(*) FROM items WHERE version IS NULL AND txid IN (SELECT value FROM json_each(?1))",
            [&list],
            |r| r.get(0),
        )
        .unwrap();
    let orphans = connection
        .query_row(
            "SELECT COUNT(*) FROM items WHERE version IS NOT NULL AND txid = 'orphan'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (unstamped, orphans)
}

/// The backfill's status row (it must exist).
async fn status(engine: &Engine) -> Migration {
    engine
        .background_migration(&migration_name(DATASET))
        .await
        .unwrap()
        .expect("a status row")
}

fn settings(batch_size: i64) -> BackfillSettings {
    BackfillSettings {
        batch_size,
        yield_ms: 0,
        progress_every: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn bad_settings_are_refused_naming_what_is_accepted_before_anything_starts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    old_store(dir.path(), 20).await;
    let (engine, _) = Engine::open(dir.path(), "b").await.unwrap();
    for (batch, yield_ms, accepted) in [
        (0, 0, "1 to 10000000 rows"),
        (-5, 0, "1 to 10000000 rows"),
        (10, -1, "0 to 60000 ms"),
    ] {
        let bad = BackfillSettings {
            batch_size: batch,
            yield_ms,
            progress_every: Duration::from_secs(1),
        };
        match engine
            .backfill_versions(DATASET, &bad, &Cancel::default())
            .await
        {
            Err(EngineError::InvalidSetting(message)) => {
                assert!(message.contains(accepted), "{message}")
            }
            other => panic!("batch {batch}, yield {yield_ms}: {other:?}"),
        }
    }
    assert_eq!(engine.background_migrations().await.unwrap(), Vec::new());
}

#[tokio::test]
async fn a_backfill_stamps_every_published_row_skips_orphans_and_reports_done() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    old_store(dir.path(), 95).await;
    let (engine, _) = Engine::open(dir.path(), "b").await.unwrap();
    let report = engine
        .backfill_versions(DATASET, &settings(7), &Cancel::default())
        .await
        .unwrap();
    assert_eq!(
        (report.status, report.processed, report.total),
        (Status::Done, 95, 95)
    );
    assert_eq!(left(dir.path(), &engine).await, (0, 0));
    let row = status(&engine).await;
    assert_eq!(
        (row.status, row.rows_processed, row.rows_total),
        (Status::Done, 95, 95)
    );
    // Rows written now get their version on the writers' path.
    engine
        .append(
            DATASET,
            &[Item {
                key: "new".into(),
                payload: String::new(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(left(dir.path(), &engine).await, (0, 0));
    // A done backfill is not run again.
    let again = engine
        .backfill_versions(DATASET, &settings(7), &Cancel::default())
        .await
        .unwrap();
    assert_eq!((again.status, again.attempt), (Status::Done, 1));
}

#[tokio::test]
async fn a_canceled_backfill_keeps_its_batches_says_canceled_and_a_retry_completes_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    old_store(dir.path(), 60).await;
    let (engine, _) = Engine::open(dir.path(), "b").await.unwrap();
    let cancel = Cancel::default();
    cancel.cancel();
    let canceled = engine
        .backfill_versions(DATASET, &settings(5), &cancel)
        .await
        .unwrap();
    assert_eq!((canceled.status, canceled.processed), (Status::Canceled, 0));
    let row = status(&engine).await;
    assert_eq!(
        (row.status, row.attempt, row.rows_total),
        (Status::Canceled, 1, 60)
    );
    let done = engine
        .backfill_versions(DATASET, &settings(5), &Cancel::default())
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.attempt, done.processed),
        (Status::Done, 2, 60)
    );
    assert_eq!(left(dir.path(), &engine).await, (0, 0));
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn an_injected_error_fails_the_attempt_with_its_text_and_a_retry_resets_the_progress() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    old_store(dir.path(), 40).await;
    let (engine, _) = Engine::open(dir.path(), "b").await.unwrap();
    fail::cfg(
        "engine.backfill.batch.before_commit",
        "1*off->return(disk gone)",
    )
    .unwrap();
    let failed = engine
        .backfill_versions(DATASET, &settings(10), &Cancel::default())
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("disk gone"), "{failed}");
    let row = status(&engine).await;
    assert_eq!((row.status, row.rows_processed), (Status::Failed, 10));
    assert!(
        row.error.as_deref().unwrap().contains("disk gone"),
        "{row:?}"
    );
    fail::cfg("engine.backfill.batch.before_commit", "off").unwrap();
    let done = engine
        .backfill_versions(DATASET, &settings(10), &Cancel::default())
        .await
        .unwrap();
    assert_eq!((done.attempt, done.processed, done.total), (2, 30, 30));
    assert_eq!(left(dir.path(), &engine).await, (0, 0));
    scenario.teardown();
}
