//! Scopes and the mirrors of their sources (see [`crate::sources`]).
//!
//! A scope names a source (several scopes may share one). Syncing fetches a source's latest
//! revision over the network into its mirror in the store; deleting a scope removes the
//! source's mirror when no other scope uses it. Everything lives in one SQLite file,
//! `scopes.db`: the scopes, each mirror's revision and last-fetched time, and its entries.
//!
//! Ordering and atomicity:
//! - The network work of a fetch (asking for the latest revision, fetching it) happens
//!   first, outside any lock, and with a timeout.
//! - Then, under the source's in-process lock (one per source per handle) and a write
//!   transaction on `scopes.db` (`BEGIN IMMEDIATE`, which SQLite grants to one connection
//!   of any process at a time: this is what orders a fetch and a delete across handles), the
//!   fetch checks that some scope still names the source (a completed delete wins: the fetch
//!   is dropped), replaces the mirror's entries and stamps its revision and last-fetched
//!   time, and commits. A mirror is therefore always exactly one revision; a crash leaves the
//!   previous one. The last-fetched time is written only in that commit, after the fetch
//!   succeeded.
//! - A delete takes the same two locks, removes the scope and, when no other scope names
//!   the deleted scope's own source, the mirror and every in-memory cache entry for it.
//!
//! The handle's caches (per-source locks and the last revision it fetched per source) are
//! observable with [`Engine::cache_sizes`]; a delete purges a source's entries from the
//! caches of the handle that deletes it (another handle's entries for it go at its next
//! sync, which finds no scope for the source).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::Mutex;

use crate::error::{EngineError, Result};
use crate::sources::{self, FetchError, Revision};
use crate::sql::{self, Cached};
use crate::Engine;
use faultline_fp::fp;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scopes(
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mirrors(
    source TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries(
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY(source, name)
);
";

/// The schema version stamped in `scopes.db`'s `user_version`.
const SCHEMA_VERSION: u32 = 1;

/// How [`Engine::sync_all`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncSettings {
    /// Fetches in flight at once. Default 10; below 1 is refused.
    pub concurrency: usize,
    /// The bound on each call to a source. Default 2 s.
    pub timeout: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            concurrency: 10,
            timeout: Duration::from_secs(2),
        }
    }
}

impl SyncSettings {
    /// Settings with `concurrency` fetches at once and the default timeout.
    pub fn with_concurrency(concurrency: usize) -> Self {
        SyncSettings {
            concurrency,
            ..SyncSettings::default()
        }
    }
}

/// What one source's sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The mirror now holds this revision.
    Fetched(u64),
    /// The mirror already held the latest revision.
    Unchanged(u64),
    /// Every scope naming the source was deleted while it was fetched; nothing was written.
    Deleted,
    /// The fetch failed; the mirror and its last-fetched time are as they were.
    Failed(String),
}

/// What a pass of [`Engine::sync_all`] did, per distinct source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Every source synced in the pass, in name order.
    pub sources: BTreeMap<String, Synced>,
    /// The most fetches that were in flight at once.
    pub most_in_flight: usize,
}

impl SyncReport {
    /// The sources whose fetch failed, with why.
    pub fn failures(&self) -> Vec<(&str, &str)> {
        self.sources
            .iter()
            .filter_map(|(source, synced)| match synced {
                Synced::Failed(why) => Some((source.as_str(), why.as_str())),
                _ => None,
            })
            .collect()
    }
}

/// The sizes of a handle's in-memory caches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheSizes {
    /// Per-source locks.
    pub locks: usize,
    /// Last revision fetched, per source.
    pub fetched: usize,
}

/// A mirror as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The source's revision it holds.
    pub revision: u64,
    /// When it was last fetched successfully (milliseconds since the Unix epoch).
    pub fetched_at_ms: u64,
    /// Its entries.
    pub entries: Revision,
}

/// A handle's scope state: the connection to `scopes.db` (opened on first use) and caches.
#[derive(Default)]
pub(crate) struct Scopes {
    connection: Mutex<Option<Connection>>,
    locks: std::sync::Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    fetched: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Scopes {
    fn lock_of(&self, source: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(source.to_owned()).or_default().clone()
    }

    fn purge(&self, source: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(source);
        self.fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(source);
    }
}

impl Engine {
    async fn scopes_db(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Connection>>> {
        let mut guard = self.inner.scopes.connection.lock().await;
        if guard.is_none() {
            let mut connection = sql::open(&crate::layout::scopes(self.dir()))?;
            sql::ensure_schema(
                &mut connection,
                "scopes.create",
                SCHEMA,
                SCHEMA_VERSION,
                &[],
            )
            .await?;
            *guard = Some(connection);
        }
        Ok(guard)
    }

    /// Creates scope `name` naming `source`, served at `address`. Creating a scope that
    /// exists with the same source does nothing; names are 1 to 64 of `[A-Za-z0-9_-]`.
    pub async fn create_scope(&self, name: &str, source: &str, address: SocketAddr) -> Result<()> {
        for text in [name, source] {
            if !crate::layout::valid_dataset_name(text) {
                return Err(EngineError::InvalidName(text.to_owned()));
            }
        }
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        let address = address.to_string();
        sql::retry_busy(connection, "scopes.create_scope", |c| {
            c.run(
                "INSERT INTO scopes(name, source, address) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO NOTHING",
                params![name, source, address],
            )
        })
        .await?;
        Ok(())
    }

    /// Every scope and the source it names, in name order.
    pub async fn scopes(&self) -> Result<Vec<(String, String)>> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::retry_busy(connection, "scopes.list", |c| {
            let mut statement =
                c.prepare_cached("SELECT name, source FROM scopes ORDER BY name")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    /// The mirror of `source`, if there is one.
    pub async fn mirror(&self, source: &str) -> Result<Option<Mirror>> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::retry_busy(connection, "scopes.mirror", |c| {
            // One read transaction: the revision and the entries come from one snapshot.
            c.control("BEGIN")?;
            let mirror = read_mirror(c, source);
            let _ = c.control("COMMIT");
            mirror
        })
        .await
    }

    /// Every scope (name to source) and every mirror (by source), read in one transaction:
    /// a consistent picture of the store.
    pub async fn scope_state(
        &self,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, Mirror>)> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::retry_busy(connection, "scopes.state", |c| {
            c.control("BEGIN")?;
            let state = read_state(c);
            let _ = c.control("COMMIT");
            state
        })
        .await
    }

    /// The sources this handle holds any cache entry for, in name order.
    pub fn cached_sources(&self) -> Vec<String> {
        let scopes = &self.inner.scopes;
        let mut sources: Vec<String> = scopes
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .chain(
                scopes
                    .fetched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .keys(),
            )
            .cloned()
            .collect();
        sources.sort();
        sources.dedup();
        sources
    }

    /// The revision `source`'s mirror holds (0: no mirror), without reading its entries.
    async fn held_revision(&self, source: &str) -> Result<u64> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        let held: Option<i64> = sql::retry_busy(connection, "scopes.held", |c| {
            c.query_row(
                "SELECT revision FROM mirrors WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
        })
        .await?;
        Ok(held.map_or(0, |revision| revision as u64))
    }

    /// The sizes of this handle's caches.
    pub fn cache_sizes(&self) -> CacheSizes {
        let scopes = &self.inner.scopes;
        CacheSizes {
            locks: scopes.locks.lock().unwrap_or_else(|p| p.into_inner()).len(),
            fetched: scopes
                .fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
        }
    }

    /// Deletes scope `name`; when no other scope names its source, also the source's mirror
    /// and this handle's cache entries for it. Returns whether the scope existed.
    pub async fn delete_scope(&self, name: &str) -> Result<bool> {
        let Some(source) = self.source_of(name).await? else {
            return Ok(false);
        };
        let lock = self.inner.scopes.lock_of(&source);
        let _held = lock.lock().await;
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::begin_write(connection, "scopes.delete").await?;
        let removed = delete_locked(connection, name, &source);
        if let Err(error) = fp!("engine.scopes.delete.before_commit").await {
            sql::rollback_quietly(connection);
            return Err(error.into());
        }
        let removed = match removed.and_then(|r| connection.control("COMMIT").map(|()| r)) {
            Ok(removed) => removed,
            Err(error) => {
                sql::rollback_quietly(connection);
                return Err(error.into());
            }
        };
        if removed.mirror_removed {
            self.inner.scopes.purge(&source);
        }
        Ok(removed.scope_existed)
    }

    async fn source_of(&self, scope: &str) -> Result<Option<String>> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::retry_busy(connection, "scopes.source_of", |c| {
            c.query_row("SELECT source FROM scopes WHERE name = ?1", [scope], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    /// Syncs every distinct source that some scope names, at most `settings.concurrency` at
    /// once, each once. A failing or unreachable source is reported and never stops or
    /// cancels the others.
    pub async fn sync_all(&self, settings: SyncSettings) -> Result<SyncReport> {
        if settings.concurrency < 1 {
            return Err(EngineError::InvalidSetting(format!(
                "sync concurrency {} : expected at least 1 fetch at once",
                settings.concurrency
            )));
        }
        let sources = self.sources_to_sync().await?;
        // Entries for sources no scope names any more (another handle deleted them) go now.
        for source in self.cached_sources() {
            if !sources.contains_key(&source) {
                self.inner.scopes.purge(&source);
            }
        }
        let gate = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (source, address) in sources {
            let (engine, gate) = (self.clone(), gate.clone());
            let (in_flight, most) = (in_flight.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("never closed");
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                let synced = engine.sync_source(&source, address, settings.timeout).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                (source, synced)
            }));
        }
        let mut report = SyncReport::default();
        for task in tasks {
            let (source, synced) = task.await.map_err(|e| EngineError::Io(e.to_string()))?;
            let synced = synced.unwrap_or_else(|error| Synced::Failed(error.to_string()));
            report.sources.insert(source, synced);
        }
        report.most_in_flight = most.load(std::sync::atomic::Ordering::SeqCst);
        Ok(report)
    }

    /// The distinct sources some scope names, with an address (the first scope's, by name).
    async fn sources_to_sync(&self) -> Result<BTreeMap<String, SocketAddr>> {
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        let rows: Vec<(String, String)> = sql::retry_busy(connection, "scopes.sources", |c| {
            let mut statement =
                c.prepare_cached("SELECT source, address FROM scopes ORDER BY name")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await?;
        let mut sources = BTreeMap::new();
        for (source, address) in rows {
            let address: SocketAddr = address
                .parse()
                .map_err(|_| EngineError::Corrupt(format!("scope address {address:?}")))?;
            sources.entry(source).or_insert(address);
        }
        Ok(sources)
    }

    /// Fetches `source`'s latest revision into its mirror, unless it holds it already.
    pub async fn sync_source(
        &self,
        source: &str,
        address: SocketAddr,
        timeout: Duration,
    ) -> Result<Synced> {
        let held = self.held_revision(source).await?;
        let latest = match sources::latest(address, timeout).await {
            Ok(latest) => latest,
            Err(error) => return Ok(failed(error)),
        };
        if latest <= held {
            return Ok(Synced::Unchanged(held));
        }
        let revision = match sources::fetch(address, latest, timeout).await {
            Ok(revision) => revision,
            Err(error) => return Ok(failed(error)),
        };
        fp!("engine.scopes.fetch.before_write").await?;
        let lock = self.inner.scopes.lock_of(source);
        let _held = lock.lock().await;
        let mut guard = self.scopes_db().await?;
        let connection = guard.as_mut().expect("opened");
        sql::begin_write(connection, "scopes.fetch").await?;
        let written = write_locked(connection, source, latest, &revision);
        if let Err(error) = fp!("engine.scopes.fetch.before_commit").await {
            sql::rollback_quietly(connection);
            return Err(error.into());
        }
        match written.and_then(|w| connection.control("COMMIT").map(|()| w)) {
            Ok(true) => {
                let mut fetched = self
                    .inner
                    .scopes
                    .fetched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                fetched.insert(source.to_owned(), latest);
                Ok(Synced::Fetched(latest))
            }
            Ok(false) => {
                drop(guard);
                self.inner.scopes.purge(source);
                Ok(Synced::Deleted)
            }
            Err(error) => {
                sql::rollback_quietly(connection);
                Err(error.into())
            }
        }
    }
}

fn failed(error: FetchError) -> Synced {
    Synced::Failed(error.to_string())
}

struct Removed {
    scope_existed: bool,
    mirror_removed: bool,
}

/// Inside a write transaction: removes `scope`, and `source`'s mirror if no scope names it.
fn delete_locked(connection: &Connection, scope: &str, source: &str) -> rusqlite::Result<Removed> {
    let scope_existed = connection.run("DELETE FROM scopes WHERE name = ?1", [scope])? > 0;
    let siblings: i64 = connection.query_row(
        "SELECT COUNT(*) FROM scopes WHERE source = ?1",
        [source],
        |row| row.get(0),
    )?;
    let mirror_removed = siblings == 0;
    if mirror_removed {
        connection.run("DELETE FROM entries WHERE source = ?1", [source])?;
        connection.run("DELETE FROM mirrors WHERE source = ?1", [source])?;
    }
    Ok(Removed {
        scope_existed,
        mirror_removed,
    })
}

/// Inside a write transaction: replaces `source`'s mirror with `revision` (number `number`)
/// and stamps it, if a scope still names the source. Whether it wrote.
fn write_locked(
    connection: &Connection,
    source: &str,
    number: u64,
    revision: &Revision,
) -> rusqlite::Result<bool> {
    let named: i64 = connection.query_row(
        "SELECT COUNT(*) FROM scopes WHERE source = ?1",
        [source],
        |row| row.get(0),
    )?;
    if named == 0 {
        return Ok(false);
    }
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;
    for (name, bytes) in revision {
        connection.run(
            "INSERT INTO entries(source, name, bytes) VALUES (?1, ?2, ?3)",
            params![source, name, bytes],
        )?;
    }
    connection.run(
        "INSERT INTO mirrors(source, revision, fetched_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(source) DO UPDATE SET revision = ?2, fetched_at_ms = ?3",
        params![source, number as i64, now_ms() as i64],
    )?;
    Ok(true)
}

type State = (BTreeMap<String, String>, BTreeMap<String, Mirror>);

fn read_state(connection: &Connection) -> rusqlite::Result<State> {
    let mut statement = connection.prepare_cached("SELECT name, source FROM scopes")?;
    let scopes = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<String, String>>>()?;
    let mut statement = connection.prepare_cached("SELECT source FROM mirrors")?;
    let sources = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut mirrors = BTreeMap::new();
    for source in sources {
        if let Some(mirror) = read_mirror(connection, &source)? {
            mirrors.insert(source, mirror);
        }
    }
    Ok((scopes, mirrors))
}

fn read_mirror(connection: &Connection, source: &str) -> rusqlite::Result<Option<Mirror>> {
    let stamp: Option<(i64, i64)> = connection
        .query_row(
            "SELECT revision, fetched_at_ms FROM mirrors WHERE source = ?1",
            [source],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((revision, fetched_at_ms)) = stamp else {
        return Ok(None);
    };
    let mut statement =
        connection.prepare_cached("SELECT name, bytes FROM entries WHERE source = ?1")?;
    let entries = statement
        .query_map([source], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Revision>>()?;
    Ok(Some(Mirror {
        revision: revision as u64,
        fetched_at_ms: fetched_at_ms as u64,
        entries,
    }))
}

/// Milliseconds since the Unix epoch (simulated time under the simulator).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
