//! The manifest database: each table's published version and the version chain.
//!
//! Publishing is a compare-and-swap: the version moves from the write's pinned base to
//! base + 1 only if nobody moved it first, in one manifest transaction that also appends the
//! new link to the chain.

use crate::sql::Cached;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{EngineError, Result};
use crate::sql;

/// The manifest schema version stamped in `user_version`.
pub const SCHEMA_VERSION: u32 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tables(
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chain(
    tbl TEXT NOT NULL,
    version INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    txid TEXT NOT NULL,
    items_total INTEGER NOT NULL,
    PRIMARY KEY(tbl, version)
);
CREATE INDEX IF NOT EXISTS chain_txid ON chain(txid);
CREATE TABLE IF NOT EXISTS owners(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog(
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases(
    tbl TEXT PRIMARY KEY,
    migration TEXT NOT NULL,
    owner INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS background(
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT,
    rows_processed INTEGER NOT NULL,
    rows_total INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
";

/// One published version of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The version number (1 for the first write).
    pub version: u64,
    /// The version it extends.
    pub parent: u64,
    /// The transaction whose rows it adds.
    pub txid: String,
    /// Items visible at this version, as recorded when it was staged.
    pub items_total: u64,
}

/// Creates the manifest's tables if they are missing.
pub async fn create(connection: &mut Connection) -> Result<()> {
    sql::ensure_schema(connection, "manifest.create", SCHEMA, SCHEMA_VERSION, &[]).await
}

/// Registers a new owner (an open handle) and returns its id.
pub async fn register_owner(connection: &mut Connection, label: &str) -> Result<u64> {
    sql::retry_busy(connection, "manifest.register_owner", |c| {
        c.run("INSERT INTO owners(label) VALUES (?1)", [label])?;
        Ok(c.last_insert_rowid() as u64)
    })
    .await
}

/// Adds a table at version 0; an existing table is left alone.
pub async fn add_table(connection: &mut Connection, table: &str) -> Result<()> {
    sql::retry_busy(connection, "manifest.add_table", |c| {
        c.run(
            "INSERT OR IGNORE INTO tables(name, version) VALUES (?1, 0)",
            [table],
        )
    })
    .await?;
    Ok(())
}

/// The published version of `table`.
pub async fn version(connection: &mut Connection, table: &str) -> Result<u64> {
    let found = sql::retry_busy(connection, "manifest.version", |c| {
        c.row("SELECT version FROM tables WHERE name = ?1", [table], |r| {
            r.get(0)
        })
        .optional()
    })
    .await?;
    found.ok_or_else(|| EngineError::UnknownDataset(table.to_owned()))
}

/// Every table's published version, by name, read in one snapshot.
pub async fn heads(connection: &mut Connection) -> Result<std::collections::BTreeMap<String, u64>> {
    sql::retry_busy(connection, "manifest.heads", |c| {
        let mut statement = c.prepare_cached("SELECT name, version FROM tables")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })
    .await
}

/// The chain of `table`, oldest first, read in one snapshot.
pub async fn chain(connection: &mut Connection, table: &str) -> Result<Vec<Link>> {
    version(connection, table).await?;
    sql::retry_busy(connection, "manifest.chain", |c| {
        let mut statement = c.prepare_cached(
            "SELECT version, parent, txid, items_total FROM chain WHERE tbl = ?1 ORDER BY version",
        )?;
        let rows = statement.query_map([table], |r| {
            Ok(Link {
                version: r.get(0)?,
                parent: r.get(1)?,
                txid: r.get(2)?,
                items_total: r.get(3)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// The link that published `txid`, if any.
pub async fn published(connection: &mut Connection, txid: &str) -> Result<Option<Link>> {
    sql::retry_busy(connection, "manifest.published", |c| {
        c.row(
            "SELECT version, parent, txid, items_total FROM chain WHERE txid = ?1",
            [txid],
            |r| {
                Ok(Link {
                    version: r.get(0)?,
                    parent: r.get(1)?,
                    txid: r.get(2)?,
                    items_total: r.get(3)?,
                })
            },
        )
        .optional()
    })
    .await
}

/// Inside an open write transaction: moves `table` from `link.parent` to `link.version` and
/// appends the link, or returns [`EngineError::Conflict`] if the table is not at the parent.
pub fn compare_and_swap(connection: &Connection, table: &str, link: &Link) -> Result<()> {
    let current: u64 =
        connection.row("SELECT version FROM tables WHERE name = ?1", [table], |r| {
            r.get(0)
        })?;
    if let Some(migration) = lease_of(connection, table)? {
        return Err(EngineError::Migrating {
            table: table.to_owned(),
            migration,
        });
    }
    if current != link.parent {
        return Err(EngineError::Conflict {
            table: table.to_owned(),
            expected: link.parent,
            current,
        });
    }
    connection.run(
        "INSERT INTO chain(tbl, version, parent, txid, items_total) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            table,
            link.version,
            link.parent,
            link.txid,
            link.items_total
        ],
    )?;
    connection.run(
        "UPDATE tables SET version = ?2 WHERE name = ?1",
        params![table, link.version],
    )?;
    Ok(())
}

/// The migration holding `table`, if one does.
pub fn lease_of(connection: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    connection
        .row(
            "SELECT migration FROM leases WHERE tbl = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()
}

/// Every lease: `(table, migration, owner)`, by table.
pub fn leases(connection: &Connection) -> rusqlite::Result<Vec<(String, String, u64)>> {
    let mut statement =
        connection.prepare_cached("SELECT tbl, migration, owner FROM leases ORDER BY tbl")?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Inside an open write transaction: publishes one step of `migration` on `table`, moving it
/// from `from` to `from + 1`, or fails with [`EngineError::Conflict`] if the table is not at
/// `from` (the migration holds the lease, so only a bug or a stale plan gets there).
pub fn publish_step(connection: &Connection, table: &str, from: u64, txid: &str) -> Result<()> {
    let current: u64 =
        connection.row("SELECT version FROM tables WHERE name = ?1", [table], |r| {
            r.get(0)
        })?;
    if current != from {
        return Err(EngineError::Conflict {
            table: table.to_owned(),
            expected: from,
            current,
        });
    }
    connection.run(
        "INSERT INTO chain(tbl, version, parent, txid, items_total) VALUES (?1, ?2, ?3, ?4, 0)",
        params![table, from + 1, from, txid],
    )?;
    connection.run(
        "UPDATE tables SET version = ?2 WHERE name = ?1",
        params![table, from + 1],
    )?;
    Ok(())
}
