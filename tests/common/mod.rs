//! Helpers shared by the real-mode integration tests (real files, real tokio).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultline::{layout, Engine, Item, Link, RecoveryReport};

/// An item whose payload is derived from its key.
pub fn item(key: &str) -> Item {
    Item {
        key: key.to_owned(),
        payload: format!("payload of {key}"),
    }
}

/// `count` items with keys `<prefix>-0`, `<prefix>-1`, ...
pub fn items(prefix: &str, count: usize) -> Vec<Item> {
    (0..count).map(|i| item(&format!("{prefix}-{i}"))).collect()
}

/// Opens the store, panicking with the error if that fails.
pub async fn open(dir: &Path, label: &str) -> (Engine, RecoveryReport) {
    match Engine::open(dir, label).await {
        Ok(opened) => opened,
        Err(error) => panic!("opening {} as {label:?}: {error}", dir.display()),
    }
}

/// Every file in `<dir>/pending/`, sorted.
pub fn pending_files(dir: &Path) -> Vec<PathBuf> {
    files_in(&layout::pending_dir(dir))
}

/// Every owner lock file (`<dir>/owners/*.lock`, ignoring any other file there), sorted.
pub fn owner_lock_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = files_in(&layout::owners_dir(dir));
    files.retain(|path| path.extension().is_some_and(|e| e == "lock"));
    files
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

/// Every row of a dataset's table file, staged or published, as `(txid, key)` in row order,
/// read with a separate SQLite connection (bypassing the engine's visibility rules).
pub fn raw_rows(dir: &Path, dataset: &str) -> Vec<(String, String)> {
    let connection = rusqlite::Connection::open(layout::table(dir, dataset)).expect("open table");
    let mut statement = connection
        .prepare("SELECT txid, key FROM items ORDER BY seq")
        .expect("prepare");
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<Vec<_>>>()
        .expect("read rows");
    rows
}

/// Inserts rows tagged with `txid` straight into a dataset's table file, as a write that
/// staged its rows but never published would have left them.
pub fn stage_raw(dir: &Path, dataset: &str, txid: &str, items: &[Item]) {
    let connection = rusqlite::Connection::open(layout::table(dir, dataset)).expect("open table");
    for item in items {
        connection
            .execute(
                "INSERT INTO items(txid, key, payload) VALUES (?1, ?2, ?3)",
                [txid, item.key.as_str(), item.payload.as_str()],
            )
            .expect("insert staged row");
    }
}

/// The published chain of `dataset`, checked to be linear: versions `1..=n`, each with
/// parent `version - 1`, distinct txids and non-decreasing `items_total`.
pub async fn linear_chain(engine: &Engine, dataset: &str) -> Vec<Link> {
    let chain = engine.versions(dataset).await.expect("versions");
    let mut txids = BTreeMap::new();
    for (index, link) in chain.iter().enumerate() {
        let expected = index as u64 + 1;
        assert_eq!(link.version, expected, "chain position {index}: {chain:#?}");
        assert_eq!(link.parent, expected - 1, "parent of version {expected}");
        if let Some(earlier) = txids.insert(link.txid.clone(), link.version) {
            panic!(
                "txid {} published twice: versions {earlier} and {}",
                link.txid, link.version
            );
        }
        if index > 0 {
            assert!(
                link.items_total >= chain[index - 1].items_total,
                "items_total went down"
            );
        }
    }
    chain
}

/// The items visible at `version`, read with the given page size.
pub async fn items_at(engine: &Engine, dataset: &str, version: u64, page_size: usize) -> Vec<Item> {
    let stream = engine
        .stream(dataset, version, page_size)
        .await
        .expect("stream");
    stream.collect().await.expect("collect")
}

/// The keys visible at the head of `dataset`.
pub async fn keys_at_head(engine: &Engine, dataset: &str) -> Vec<String> {
    let head = engine.head(dataset).await.expect("head");
    items_at(engine, dataset, head.version, 7)
        .await
        .into_iter()
        .map(|i| i.key)
        .collect()
}
