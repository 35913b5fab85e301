//! Faultline's storage engine: datasets with a version chain, stored as a directory of
//! SQLite files (a manifest plus one file per dataset), with recovery sidecars and a
//! recovery sweep on open.
//!
//! The engine is async on tokio (through madsim-tokio, so the same code runs for real and
//! under the simulator) and never blocks its thread on a lock: see [`sql`]. Failpoints
//! ([`faultline_fp::fp!`]) mark every step where a crash, delay or error matters; they are
//! compiled in only with the `failpoints` feature.
//!
//! Dropping an [`Engine`] runs no cleanup of its own (no `Drop` impl touches the store):
//! a handle that vanishes mid-write leaves exactly what a crashed process would.
#![deny(missing_docs)]

mod append;
pub mod backfill;
pub mod background;
pub mod broadcast;
pub mod error;
pub mod layout;
pub mod legacy;
pub mod manifest;
pub mod migrate;
mod nodes;
mod owner;
mod read;
pub mod records;
pub mod recovery;
pub mod schema;
pub mod scopes;
pub mod sidecar;
pub mod sources;
pub mod sql;
pub mod table;
pub mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::Mutex;

pub use append::{Receipt, Rows};
pub use error::{EngineError, Result};
pub use manifest::Link;
pub use read::{Head, VersionStream};
pub use recovery::RecoveryReport;
pub use scopes::{CacheSizes, Mirror, SyncReport, SyncSettings, Synced};
pub use table::Item;

/// A handle on an open store. Several handles may open one store at once, as separate
/// processes would; cloning a handle shares it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    owner: u64,
    manifest: Mutex<Connection>,
    tables: Mutex<BTreeMap<String, Arc<Mutex<Connection>>>>,
    sequence: AtomicU64,
    leftover_sidecars: std::sync::Mutex<Vec<String>>,
    scopes: scopes::Scopes,
    _lock: owner::OwnerLock,
}

impl Engine {
    /// Opens (creating if needed) the store in `dir`, registers this handle as a new owner
    /// labelled `label`, and runs the recovery sweep.
    pub async fn open(dir: &Path, label: &str) -> Result<(Engine, RecoveryReport)> {
        for sub in [
            layout::tables_dir(dir),
            layout::pending_dir(dir),
            layout::owners_dir(dir),
        ] {
            faultline_files::create_dir_all(&sub)?;
        }
        let mut manifest = sql::open(&layout::manifest(dir))?;
        manifest::create(&mut manifest).await?;
        let owner = manifest::register_owner(&mut manifest, label).await?;
        let lock = owner::hold(dir, owner).await?;
        let engine = Engine {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                owner,
                manifest: Mutex::new(manifest),
                tables: Mutex::new(BTreeMap::new()),
                sequence: AtomicU64::new(0),
                leftover_sidecars: std::sync::Mutex::new(Vec::new()),
                scopes: scopes::Scopes::default(),
                _lock: lock,
            }),
        };
        fp!("engine.open.before_recovery").await?;
        let report = recovery::sweep(&engine).await?;
        Ok((engine, report))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// This handle's owner id (unique within the store).
    pub fn owner(&self) -> u64 {
        self.inner.owner
    }

    /// Creates an empty dataset (version 0). Creating one that exists does nothing.
    /// Names are 1 to 64 characters of `[A-Za-z0-9_-]`. The connection it opens to the new
    /// table file stays open as this handle's connection to the dataset.
    pub async fn create_dataset(&self, name: &str) -> Result<()> {
        if !layout::valid_dataset_name(name) {
            return Err(EngineError::InvalidName(name.to_owned()));
        }
        let mut connection = sql::open(&layout::table(self.dir(), name))?;
        create_table_file(&mut connection, name).await?;
        {
            let mut manifest = self.inner.manifest.lock().await;
            manifest::add_table(&mut manifest, name).await?;
        }
        // Kept as this handle's connection to the dataset, but only once the manifest lists
        // it (`table` checks that before opening a file, not when it finds one kept) and with
        // the manifest lock released (`table` takes the tables lock, then the manifest's).
        // A connection `table` opened meanwhile wins; this one is then closed.
        self.inner
            .tables
            .lock()
            .await
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(connection)));
        Ok(())
    }

    fn next_txid(&self) -> String {
        let sequence = self.inner.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        sidecar::txid(self.inner.owner, sequence)
    }

    /// The connection to a dataset's table file, opened on first use (or kept from
    /// [`Engine::create_dataset`]).
    async fn table(&self, dataset: &str) -> Result<Arc<Mutex<Connection>>> {
        let mut tables = self.inner.tables.lock().await;
        if let Some(connection) = tables.get(dataset) {
            return Ok(connection.clone());
        }
        self.head(dataset).await?;
        let mut connection = sql::open(&layout::table(self.dir(), dataset))?;
        create_table_file(&mut connection, dataset).await?;
        let connection = Arc::new(Mutex::new(connection));
        tables.insert(dataset.to_owned(), connection.clone());
        Ok(connection)
    }

    /// The link that published `txid`, if it was published.
    pub async fn published(&self, txid: &str) -> Result<Option<Link>> {
        let mut manifest = self.inner.manifest.lock().await;
        manifest::published(&mut manifest, txid).await
    }

    /// Deletes the rows `txid` staged in `dataset` (idempotent).
    async fn unstage(&self, dataset: &str, txid: &str) -> Result<usize> {
        let table = self.table(dataset).await?;
        let mut connection = table.lock().await;
        if layout::is_record_table(dataset) {
            return sql::retry_busy(&mut connection, "records.unstage", |c| {
                records::unstage(c, txid)
            })
            .await;
        }
        table::unstage(&mut connection, txid).await
    }
}

use faultline_fp::fp;

/// Creates the schema a table file of this name holds (node records or dataset items).
async fn create_table_file(connection: &mut Connection, name: &str) -> Result<()> {
    if layout::is_record_table(name) {
        records::create(connection).await
    } else {
        table::create(connection).await
    }
}
