//! A dataset's table file: rows tagged with the transaction that staged them.
//!
//! Rows are committed to the table file when staged and become visible only when the
//! manifest publishes their transaction; readers select rows by the published txids of
//! their snapshot, so a staged-but-unpublished write is invisible.

use crate::sql::Cached;
use rusqlite::{params, Connection};

use crate::error::Result;
use crate::sql;

/// The table file schema version stamped in `user_version`.
///
/// Version 2 adds `version`, the published version whose write added the row. A write
/// stamps its rows once its publish committed ([`stamp`]); rows of a version 1 file get
/// theirs from the background backfill ([`crate::backfill`]).
pub const SCHEMA_VERSION: u32 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items(
    seq INTEGER PRIMARY KEY,
    txid TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    version INTEGER
);
CREATE INDEX IF NOT EXISTS items_txid ON items(txid);
CREATE INDEX IF NOT EXISTS items_unversioned ON items(seq) WHERE version IS NULL;
";

/// From version 1: the rows a version 1 engine wrote have no version yet.
/// The partial index holds only the rows still without a version, so the backfill finds its
/// next batch without reading past the rows it already did.
const UPGRADES: &[(u32, &str)] = &[(
    1,
    "ALTER TABLE items ADD COLUMN version INTEGER;
     CREATE INDEX IF NOT EXISTS items_unversioned ON items(seq) WHERE version IS NULL;",
)];

/// One item of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    /// The item's key, chosen by the caller (the harness makes it unique).
    pub key: String,
    /// The item's content.
    pub payload: String,
}

/// Creates the table file's schema if missing.
pub async fn create(connection: &mut Connection) -> Result<()> {
    sql::ensure_schema(connection, "table.create", SCHEMA, SCHEMA_VERSION, UPGRADES).await
}

/// Inside an open write transaction: inserts `items` tagged with `txid`.
pub fn insert(connection: &Connection, txid: &str, items: &[Item]) -> Result<()> {
    let mut statement =
        connection.prepare_cached("INSERT INTO items(txid, key, payload) VALUES (?1, ?2, ?3)")?;
    for item in items {
        statement.execute(params![txid, item.key, item.payload])?;
    }
    Ok(())
}

/// Deletes every row staged by `txid` (idempotent).
pub async fn unstage(connection: &mut Connection, txid: &str) -> Result<usize> {
    sql::retry_busy(connection, "table.unstage", |c| {
        c.run("DELETE FROM items WHERE txid = ?1", [txid])
    })
    .await
}

/// Stamps the rows of `txid` with the version that published them (rows already stamped
/// keep theirs). Returns how many it stamped.
pub async fn stamp(connection: &mut Connection, txid: &str, version: u64) -> Result<usize> {
    sql::retry_busy(connection, "table.stamp", |c| {
        c.run(
            "UPDATE items SET version = ?2 WHERE txid = ?1 AND version IS NULL",
            params![txid, version],
        )
    })
    .await
}

fn txid_list(txids: &[String]) -> String {
    serde_json::Value::from(txids.to_vec()).to_string()
}

/// How many rows belong to the given transactions.
pub async fn count(connection: &mut Connection, txids: &[String]) -> Result<u64> {
    let list = txid_list(txids);
    sql::retry_busy(connection, "table.count", |c| {
        c.row(
            "SELECT COUNT(*) FROM items WHERE txid IN (SELECT value FROM json_each(?1))",
            [&list],
            |r| r.get(0),
        )
    })
    .await
}

/// One page of the rows of the given transactions, after row `after`, in row order.
/// Returns the rows with their sequence numbers.
pub async fn page(
    connection: &mut Connection,
    txids: &[String],
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, Item)>> {
    let list = txid_list(txids);
    sql::retry_busy(connection, "table.page", |c| {
        let mut statement = c.prepare_cached(
            "SELECT seq, key, payload FROM items
             WHERE txid IN (SELECT value FROM json_each(?1)) AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let rows = statement.query_map(params![list, after, limit as i64], |r| {
            Ok((
                r.get(0)?,
                Item {
                    key: r.get(1)?,
                    payload: r.get(2)?,
                },
            ))
        })?;
        rows.collect()
    })
    .await
}
