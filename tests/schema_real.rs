//! Real-mode tests of schema migrations: legacy re-encoding, added and dropped properties,
//! bad-record policies, and leases refusing loads.
#![cfg(not(madsim))]

use std::collections::BTreeMap;

use faultline::migrate::{BadRecordPolicy, MigrationOptions};
use faultline::records::Stored;
use faultline::schema::{Encoding, NodeType, Property, Schema};
use faultline::{legacy, Engine, EngineError};
use serde_json::{json, Map, Value};

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn schema(version: u64, encoding: Encoding, properties: &[(&str, Property)]) -> Schema {
    let properties: BTreeMap<String, Property> = properties
        .iter()
        .map(|(n, p)| (n.to_string(), p.clone()))
        .collect();
    Schema {
        version,
        node_types: [(
            "item".to_owned(),
            NodeType {
                encoding,
                properties,
            },
        )]
        .into_iter()
        .collect(),
    }
}

fn old_schema() -> Schema {
    schema(
        1,
        Encoding::Legacy,
        &[
            ("name", Property::default()),
            ("size", Property::default()),
            ("note", Property::default()),
        ],
    )
}

fn new_schema() -> Schema {
    let color = Property {
        default: Some(json!("none")),
        soft_dropped: false,
    };
    let note = Property {
        default: None,
        soft_dropped: true,
    };
    schema(
        2,
        Encoding::Json,
        &[
            ("name", Property::default()),
            ("note", note),
            ("color", color),
        ],
    )
}

fn originals() -> Vec<(String, Map<String, Value>)> {
    (0..7)
        .map(|i| {
            let mut record = object(json!({"name": format!("n{i}"), "size": i}));
            match i % 3 {
                0 => record.insert("note".into(), Value::Null),
                1 => record.insert("note".into(), json!("kept")),
                _ => None,
            };
            (format!("k{i}"), record)
        })
        .collect()
}

async fn legacy_store(dir: &std::path::Path, bad: bool) -> Engine {
    let (engine, _) = Engine::open(dir, "setup").await.unwrap();
    engine.define_schema(&old_schema()).await.unwrap();
    let mut rows: Vec<(String, Vec<u8>)> = originals()
        .iter()
        .map(|(k, r)| (k.clone(), legacy::encode(r).unwrap()))
        .collect();
    if bad {
        rows.push(("bad".to_owned(), b"LR1\x01\x00".to_vec()));
    }
    engine.import_legacy("item", &rows).await.unwrap();
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_step_migration_re_encodes_adds_and_drops_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = legacy_store(dir.path(), false).await;
    let options = MigrationOptions::default().allow_data_loss().batch_size(2);
    let report = engine.apply_schema(&new_schema(), &options).await.unwrap();
    assert_eq!(report.reencoded, 7);
    assert!(report.steps >= 4 + 1 + 4, "batched steps: {report:?}");
    assert_eq!(engine.schema().await.unwrap(), new_schema());
    assert_eq!(
        engine.head("nodes-item").await.unwrap().version,
        report.steps
    );
    let records = engine.records("item").await.unwrap();
    assert_eq!(records.len(), 7);
    for ((key, stored), (original_key, original)) in records.iter().zip(originals()) {
        assert_eq!(key, &original_key);
        let mut expected = original.clone();
        expected.remove("size");
        expected.insert("color".into(), json!("none"));
        assert_eq!(
            stored,
            &Stored::Json(expected),
            "{key}: null and absent must survive"
        );
    }
    assert!(engine.leases().await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("migrations"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_fails_the_migration_untouched_or_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let engine = legacy_store(dir.path(), true).await;
    let options = MigrationOptions::default().allow_data_loss().batch_size(3);
    let error = engine
        .apply_schema(&new_schema(), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::BadRecord { key, .. } if key == "bad"),
        "{error}"
    );
    assert_eq!(engine.schema().await.unwrap(), old_schema());
    assert_eq!(engine.head("nodes-item").await.unwrap().version, 0);
    let options = options.bad_records(BadRecordPolicy::Quarantine);
    let report = engine.apply_schema(&new_schema(), &options).await.unwrap();
    assert_eq!(report.quarantined.len(), 1);
    let quarantined = engine.quarantined("item").await.unwrap();
    assert_eq!(quarantined[0].key, "bad");
    assert!(
        !quarantined[0].legacy.is_empty(),
        "the bad record's bytes are kept"
    );
    assert_eq!(engine.records("item").await.unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_drops_need_permission_and_versions_must_grow() {
    let dir = tempfile::tempdir().unwrap();
    let engine = legacy_store(dir.path(), false).await;
    let error = engine
        .apply_schema(&new_schema(), &MigrationOptions::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("loses data"), "{error}");
    let error = engine
        .apply_schema(&old_schema(), &MigrationOptions::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("must be above"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_land_before_and_after_but_conflict_during_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let engine = legacy_store(dir.path(), false).await;
    let loaded = vec![(
        "fresh".to_owned(),
        object(json!({"name": "fresh", "size": 1})),
    )];
    engine.load("item", &loaded).await.unwrap();
    let (other, _) = Engine::open(dir.path(), "loader").await.unwrap();
    engine
        .apply_schema(
            &new_schema(),
            &MigrationOptions::default().allow_data_loss(),
        )
        .await
        .unwrap();
    let after = vec![(
        "later".to_owned(),
        object(json!({"name": "later", "color": "red"})),
    )];
    other.load("item", &after).await.unwrap();
    let records = engine.records("item").await.unwrap();
    assert_eq!(records.len(), 9);
    let fresh = records.iter().find(|(k, _)| k == "fresh").unwrap();
    assert_eq!(
        fresh.1,
        Stored::Json(object(json!({"name": "fresh", "color": "none"})))
    );
}

/// The checked-in legacy store (written by `examples/legacy_fixture.rs`, 60 records) migrates
/// to JSON with every record equal to the sample it was made from, null and absent included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checked_in_legacy_fixture_migrates_exactly() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/legacy-small");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let (engine, _) = Engine::open(dir.path(), "fixture-test").await.unwrap();
    let mut new = engine.schema().await.unwrap();
    assert_eq!(new.node_types["item"].encoding, Encoding::Legacy);
    new.version = 2;
    new.node_types.get_mut("item").unwrap().encoding = Encoding::Json;
    let report = engine
        .apply_schema(&new, &MigrationOptions::default().batch_size(16))
        .await
        .unwrap();
    assert_eq!((report.reencoded, report.steps), (60, 4));
    let records = engine.records("item").await.unwrap();
    assert_eq!(records.len(), 60);
    for (index, (key, stored)) in records.into_iter().enumerate() {
        assert_eq!(key, legacy::sample_key(index as u64));
        assert_eq!(
            stored,
            Stored::Json(legacy::sample_record(index as u64)),
            "{key}"
        );
    }
}

fn copy_dir(source: &std::path::Path, target: &std::path::Path) {
    std::fs::create_dir_all(target).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        let destination = target.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &destination);
        } else {
            std::fs::copy(entry.path(), destination).unwrap();
        }
    }
}
