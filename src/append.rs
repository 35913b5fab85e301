//! Appending items to a dataset: pin a base, write the sidecar, stage the rows as version
//! N+1, publish by compare-and-swap in the manifest, stamp the rows with their version,
//! remove the sidecar, acknowledge.
//!
//! A lost race is [`EngineError::Conflict`]; the staged rows are removed before it returns,
//! so a caller may retry on a fresh base. Once the compare-and-swap commits, the write is
//! durable and acknowledged: a failure while cleaning up afterwards leaves a sidecar for
//! recovery and is never reported as a failed write (that would invite a duplicate retry).

use crate::sql::Cached;
use faultline_fp::fp;

use crate::error::{EngineError, Result};
use crate::manifest::{self, Link};
use crate::sidecar::{self, Sidecar};
use crate::table::{self, Item};
use crate::{layout, records, sql, Engine};

/// What one write adds: dataset items, or node records (keyed JSON objects).
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Items appended to a dataset.
    Items(&'a [Item]),
    /// Records loaded into a node type's table, prepared against catalog version
    /// `catalog` (the publish fails with a conflict if the catalog moved since).
    Records {
        /// The records.
        rows: &'a [(String, serde_json::Map<String, serde_json::Value>)],
        /// The catalog version they were prepared for.
        catalog: u64,
    },
}

impl Rows<'_> {
    fn len(&self) -> u64 {
        match self {
            Rows::Items(items) => items.len() as u64,
            Rows::Records { rows, .. } => rows.len() as u64,
        }
    }

    fn insert(&self, connection: &rusqlite::Connection, txid: &str) -> Result<()> {
        match self {
            Rows::Items(items) => table::insert(connection, txid, items),
            Rows::Records { rows, .. } => records::insert(connection, txid, rows),
        }
    }
}

/// What an acknowledged append published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The version the append published.
    pub version: u64,
    /// The transaction id of the append.
    pub txid: String,
    /// Items visible at that version.
    pub items_total: u64,
    /// Items this append added.
    pub appended: u64,
}

impl Engine {
    /// Appends `items` to `dataset` as one new version. One attempt: on
    /// [`EngineError::Conflict`] the caller may retry, which pins a fresh base.
    pub async fn append(&self, dataset: &str, items: &[Item]) -> Result<Receipt> {
        self.write(dataset, Rows::Items(items)).await
    }

    /// Writes `rows` to `table` as one new version (the protocol of [`Engine::append`]).
    pub async fn write(&self, dataset: &str, rows: Rows<'_>) -> Result<Receipt> {
        self.retry_leftover_sidecars();
        let head = self.head(dataset).await?;
        fp!("engine.append.after_pin").await?;
        let link = Link {
            version: head.version + 1,
            parent: head.version,
            txid: self.next_txid(),
            items_total: head.items_total + rows.len(),
        };
        self.write_sidecar(dataset, &link).await?;
        if let Err(error) = self.stage_and_publish(dataset, &link, rows).await {
            self.abandon(dataset, &link.txid).await;
            return Err(error);
        }
        if self.stamp(dataset, &link).await {
            self.finish(&link.txid).await;
        }
        Ok(Receipt {
            version: link.version,
            txid: link.txid,
            items_total: link.items_total,
            appended: rows.len(),
        })
    }

    async fn write_sidecar(&self, dataset: &str, link: &Link) -> Result<()> {
        fp!("engine.sidecar.before_write").await?;
        let sidecar = Sidecar {
            txid: link.txid.clone(),
            owner: self.owner(),
            table: dataset.to_owned(),
            base_version: link.parent,
            target_version: link.version,
        };
        sidecar::write(self.dir(), &sidecar)
    }

    async fn stage_and_publish(&self, dataset: &str, link: &Link, rows: Rows<'_>) -> Result<()> {
        self.stage(dataset, &link.txid, rows).await?;
        fp!("engine.append.before_publish").await?;
        let catalog = match rows {
            Rows::Records { catalog, .. } => Some(catalog),
            Rows::Items(_) => None,
        };
        self.publish(dataset, link, catalog).await
    }

    async fn stage(&self, dataset: &str, txid: &str, rows: Rows<'_>) -> Result<()> {
        let table = self.table(dataset).await?;
        let mut connection = table.lock().await;
        sql::begin_write(&mut connection, "table.stage").await?;
        let result = stage_rows(&mut connection, txid, rows).await;
        if result.is_err() {
            sql::rollback_quietly(&connection);
        }
        result
    }

    async fn publish(&self, dataset: &str, link: &Link, catalog: Option<u64>) -> Result<()> {
        let mut connection = self.inner.manifest.lock().await;
        sql::begin_write(&mut connection, "manifest.publish").await?;
        let result = swap_and_commit(&mut connection, dataset, link, catalog).await;
        if result.is_err() {
            sql::rollback_quietly(&connection);
        }
        result
    }

    /// Undoes a write that did not publish: staged rows first, then the sidecar. If either
    /// step fails the sidecar stays and recovery finishes the job once this owner is gone.
    async fn abandon(&self, dataset: &str, txid: &str) {
        let cleaned = match fp!("engine.abandon.before_unstage").await {
            Ok(()) => self.unstage(dataset, txid).await.map(drop),
            Err(injected) => Err(EngineError::from(injected)),
        };
        match cleaned.and_then(|()| sidecar::remove(self.dir(), txid)) {
            Ok(()) => {}
            Err(error) => faultline_fp::note("engine.abandon_incomplete", &error),
        }
    }

    /// After the publish committed: stamp the rows with the version that published them. On
    /// a failure the sidecar stays, so that recovery stamps them once this handle is gone
    /// (the write is still acknowledged: it is durable).
    async fn stamp(&self, dataset: &str, link: &Link) -> bool {
        if layout::is_record_table(dataset) {
            return true;
        }
        let stamped = match fp!("engine.append.before_stamp").await {
            Ok(()) => self.stamp_rows(dataset, &link.txid, link.version).await,
            Err(injected) => Err(injected.into()),
        };
        match stamped {
            Ok(_) => true,
            Err(error) => {
                faultline_fp::note("engine.stamp_deferred", &error);
                false
            }
        }
    }

    /// Stamps the rows `txid` staged in `dataset` with `version` (idempotent).
    pub(crate) async fn stamp_rows(
        &self,
        dataset: &str,
        txid: &str,
        version: u64,
    ) -> Result<usize> {
        let table = self.table(dataset).await?;
        let mut connection = table.lock().await;
        table::stamp(&mut connection, txid, version).await
    }

    /// After the publish committed: remove the sidecar. Failures are kept for a later retry.
    async fn finish(&self, txid: &str) {
        let removed = match fp!("engine.append.after_publish").await {
            Ok(()) => sidecar::remove(self.dir(), txid),
            Err(injected) => Err(injected.into()),
        };
        if let Err(error) = removed {
            faultline_fp::note("engine.sidecar_kept", &error);
            self.inner
                .leftover_sidecars
                .lock()
                .expect("poisoned")
                .push(txid.to_owned());
        }
        if let Err(injected) = fp!("engine.append.before_ack").await {
            faultline_fp::note("engine.ack_fault_ignored", &injected);
        }
    }

    fn retry_leftover_sidecars(&self) {
        let mut leftovers = self.inner.leftover_sidecars.lock().expect("poisoned");
        leftovers.retain(|txid| sidecar::remove(self.dir(), txid).is_err());
    }
}

async fn stage_rows(
    connection: &mut rusqlite::Connection,
    txid: &str,
    rows: Rows<'_>,
) -> Result<()> {
    rows.insert(connection, txid)?;
    fp!("engine.stage.before_commit").await?;
    sql::retry_busy(connection, "table.stage.commit", |c| c.control("COMMIT")).await
}

async fn swap_and_commit(
    connection: &mut rusqlite::Connection,
    dataset: &str,
    link: &Link,
    catalog: Option<u64>,
) -> Result<()> {
    manifest::compare_and_swap(connection, dataset, link)?;
    if let Some(expected) = catalog {
        let current = crate::schema::read(connection)?.version;
        if current != expected {
            return Err(EngineError::SchemaChanged { expected, current });
        }
    }
    fp!("engine.publish.before_commit").await?;
    sql::retry_busy(connection, "manifest.publish.commit", |c| {
        c.control("COMMIT")
    })
    .await
}
