//! A node type's table file: records keyed by name, stored as JSON or in the legacy encoding,
//! plus the quarantine of records that could not be decoded.
//!
//! Rows with a NULL txid predate any load (imported or migrated in place); rows with a txid
//! are visible once the manifest publishes it, as with dataset items.

use crate::sql::Cached;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::sql;

/// The record table schema version stamped in `user_version`.
pub const SCHEMA_VERSION: u32 = 1001;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records(
    key TEXT PRIMARY KEY,
    txid TEXT,
    json TEXT,
    legacy BLOB
);
CREATE INDEX IF NOT EXISTS records_txid ON records(txid);
CREATE TABLE IF NOT EXISTS quarantine(
    key TEXT PRIMARY KEY,
    legacy BLOB NOT NULL,
    reason TEXT NOT NULL
);
";

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A JSON object.
    Json(Map<String, Value>),
    /// Legacy bytes not yet re-encoded.
    Legacy(Vec<u8>),
}

/// Creates the record table's schema if missing.
pub async fn create(connection: &mut Connection) -> Result<()> {
    sql::ensure_schema(connection, "records.create", SCHEMA, SCHEMA_VERSION, &[]).await
}

/// Inside an open write transaction: inserts JSON records tagged with `txid`.
pub fn insert(
    connection: &Connection,
    txid: &str,
    records: &[(String, Map<String, Value>)],
) -> Result<()> {
    let mut statement =
        connection.prepare_cached("INSERT INTO records(key, txid, json) VALUES (?1, ?2, ?3)")?;
    for (key, record) in records {
        statement.execute(params![
            key,
            txid,
            Value::Object(record.clone()).to_string()
        ])?;
    }
    Ok(())
}

/// Inside an open write transaction: inserts legacy records with no txid (an import).
pub fn import_legacy(connection: &Connection, records: &[(String, Vec<u8>)]) -> Result<()> {
    let mut statement =
        connection.prepare_cached("INSERT OR REPLACE INTO records(key, legacy) VALUES (?1, ?2)")?;
    for (key, bytes) in records {
        statement.execute(params![key, bytes])?;
    }
    Ok(())
}

/// Deletes the rows staged by `txid`.
pub fn unstage(connection: &Connection, txid: &str) -> rusqlite::Result<usize> {
    connection.run("DELETE FROM records WHERE txid = ?1", [txid])
}

/// The visible records (NULL txid or one of `txids`), by key.
pub fn visible(
    connection: &Connection,
    txids: &[String],
) -> rusqlite::Result<Vec<(String, Stored)>> {
    let list = serde_json::Value::from(txids.to_vec()).to_string();
    let mut statement = connection.prepare_cached(
        "SELECT key, json, legacy FROM records
         WHERE txid IS NULL OR txid IN (SELECT value FROM json_each(?1)) ORDER BY key",
    )?;
    let rows = statement.query_map([list], |r| {
        let key: String = r.get(0)?;
        let json: Option<String> = r.get(1)?;
        let legacy: Option<Vec<u8>> = r.get(2)?;
        Ok((key, json, legacy))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (key, json, legacy) = row?;
        let stored = match (json, legacy) {
            (Some(json), _) => Stored::Json(serde_json::from_str(&json).unwrap_or_default()),
            (None, bytes) => Stored::Legacy(bytes.unwrap_or_default()),
        };
        records.push((key, stored));
    }
    Ok(records)
}

/// A record the migration could not decode, kept whole in the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The record's key.
    pub key: String,
    /// Why it could not be decoded.
    pub reason: String,
    /// Its legacy bytes, exactly as they were stored.
    pub legacy: Vec<u8>,
}

/// The quarantined records, by key.
pub fn quarantined(connection: &Connection) -> rusqlite::Result<Vec<Quarantined>> {
    let mut statement =
        connection.prepare_cached("SELECT key, reason, legacy FROM quarantine ORDER BY key")?;
    let rows = statement.query_map([], |r| {
        Ok(Quarantined {
            key: r.get(0)?,
            reason: r.get(1)?,
            legacy: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Legacy rows still to re-encode: up to `limit` `(key, bytes)` in key order.
pub fn legacy_batch(
    connection: &Connection,
    limit: Option<u64>,
) -> rusqlite::Result<Vec<(String, Vec<u8>)>> {
    let limit = limit.map_or(-1, |l| l as i64);
    let mut statement = connection
        .prepare_cached("SELECT key, legacy FROM records WHERE json IS NULL AND legacy IS NOT NULL ORDER BY key LIMIT ?1")?;
    let rows = statement.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Inside a write transaction: stores the re-encoded JSON of `key` in place of its legacy bytes.
pub fn set_json(
    connection: &Connection,
    key: &str,
    record: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let json = Value::Object(record.clone()).to_string();
    connection.run(
        "UPDATE records SET json = ?2, legacy = NULL WHERE key = ?1",
        params![key, json],
    )?;
    Ok(())
}

/// Inside a write transaction: moves `key` to the quarantine with `reason`.
pub fn quarantine(connection: &Connection, key: &str, reason: &str) -> rusqlite::Result<()> {
    let bytes: Option<Vec<u8>> = connection
        .row("SELECT legacy FROM records WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    connection.run(
        "INSERT OR REPLACE INTO quarantine(key, legacy, reason) VALUES (?1, ?2, ?3)",
        params![key, bytes.unwrap_or_default(), reason],
    )?;
    connection.run("DELETE FROM records WHERE key = ?1", [key])?;
    Ok(())
}

/// Inside a write transaction: sets `property` to `default` on every JSON record lacking it.
pub fn add_property(
    connection: &Connection,
    property: &str,
    default: &Value,
) -> rusqlite::Result<usize> {
    let path = format!("$.\"{property}\"");
    connection.run(
        "UPDATE records SET json = json_set(json, ?1, json(?2))
         WHERE json IS NOT NULL AND json_type(json, ?1) IS NULL",
        params![path, default.to_string()],
    )
}

/// Inside a write transaction: removes `property` from up to `limit` records that have it.
pub fn drop_property(
    connection: &Connection,
    property: &str,
    limit: Option<u64>,
) -> rusqlite::Result<usize> {
    let path = format!("$.\"{property}\"");
    let limit = limit.map_or(-1, |l| l as i64);
    connection.run(
        "UPDATE records SET json = json_remove(json, ?1) WHERE key IN (
             SELECT key FROM records WHERE json IS NOT NULL AND json_type(json, ?1) IS NOT NULL
             ORDER BY key LIMIT ?2)",
        params![path, limit],
    )
}

/// How many records hold `property` / are still legacy.
pub fn count_where(connection: &Connection, condition: &str) -> rusqlite::Result<u64> {
    connection.row(
        &format!("SELECT COUNT(*) FROM records WHERE {condition}"),
        [],
        |r| r.get(0),
    )
}
