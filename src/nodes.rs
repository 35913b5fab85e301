//! Node records through an engine handle: the catalog, legacy imports, loads and reads.

use crate::sql::Cached;
use serde_json::{Map, Value};

use crate::append::{Receipt, Rows};
use crate::error::{EngineError, Result};
use crate::records::{self, Stored};
use crate::schema::{self, Schema};
use crate::{manifest, sql, Engine};

impl Engine {
    /// The current catalog (version 0 and no types before [`Engine::define_schema`]).
    pub async fn schema(&self) -> Result<Schema> {
        let mut connection = self.inner.manifest.lock().await;
        sql::retry_busy(&mut connection, "catalog.read", schema::read).await
    }

    /// Defines the first catalog of an empty store and creates a table per node type.
    pub async fn define_schema(&self, catalog: &Schema) -> Result<()> {
        for node_type in catalog.node_types.keys() {
            self.create_dataset(&schema::table_name(node_type)).await?;
        }
        let mut connection = self.inner.manifest.lock().await;
        sql::begin_write(&mut connection, "catalog.define").await?;
        let current = schema::read(&connection)?;
        let result = if current.version != 0 {
            Err(EngineError::InvalidSchema(format!(
                "a schema (version {}) is already defined",
                current.version
            )))
        } else {
            schema::write(&connection, catalog)
        };
        finish_write(&mut connection, result).await
    }

    /// Imports legacy-encoded records (bytes from [`crate::legacy::encode`]) as they are.
    pub async fn import_legacy(&self, node_type: &str, rows: &[(String, Vec<u8>)]) -> Result<()> {
        let table = self.table(&schema::table_name(node_type)).await?;
        let mut connection = table.lock().await;
        sql::begin_write(&mut connection, "records.import").await?;
        let result = records::import_legacy(&connection, rows);
        finish_write(&mut connection, result).await
    }

    /// Loads JSON records into `node_type` as one new version. While a migration holds the
    /// table this fails with [`EngineError::Migrating`] (a conflict: retry later).
    ///
    /// Properties the catalog gives a default are filled in where a record lacks them. A
    /// migration that runs between the load's staging and its publish moves the table's
    /// version, so the load then fails with a conflict and is retried against the new catalog.
    pub async fn load(
        &self,
        node_type: &str,
        rows: &[(String, Map<String, Value>)],
    ) -> Result<Receipt> {
        let catalog = self.schema().await?;
        let defaults: Vec<(&String, &Value)> = catalog
            .node_types
            .get(node_type)
            .ok_or_else(|| EngineError::UnknownDataset(schema::table_name(node_type)))?
            .properties
            .iter()
            .filter(|(_, p)| !p.soft_dropped)
            .filter_map(|(name, p)| p.default.as_ref().map(|d| (name, d)))
            .collect();
        let filled: Vec<(String, Map<String, Value>)> = rows
            .iter()
            .map(|(key, record)| {
                let mut record = record.clone();
                for (name, default) in &defaults {
                    record
                        .entry(name.to_string())
                        .or_insert_with(|| (*default).clone());
                }
                (key.clone(), record)
            })
            .collect();
        let rows = Rows::Records {
            rows: &filled,
            catalog: catalog.version,
        };
        self.write(&schema::table_name(node_type), rows).await
    }

    /// The visible records of `node_type`, by key.
    pub async fn records(&self, node_type: &str) -> Result<Vec<(String, Stored)>> {
        let name = schema::table_name(node_type);
        let txids: Vec<String> = self
            .versions(&name)
            .await?
            .into_iter()
            .map(|l| l.txid)
            .collect();
        let table = self.table(&name).await?;
        let mut connection = table.lock().await;
        sql::retry_busy(&mut connection, "records.read", |c| {
            records::visible(c, &txids)
        })
        .await
    }

    /// The quarantined records of `node_type`, each with its reason and its bytes.
    pub async fn quarantined(&self, node_type: &str) -> Result<Vec<records::Quarantined>> {
        let table = self.table(&schema::table_name(node_type)).await?;
        let mut connection = table.lock().await;
        sql::retry_busy(&mut connection, "records.quarantined", records::quarantined).await
    }

    /// Every lease held on the store's tables: `(table, migration, owner)`.
    pub async fn leases(&self) -> Result<Vec<(String, String, u64)>> {
        let mut connection = self.inner.manifest.lock().await;
        sql::retry_busy(&mut connection, "leases.read", manifest::leases).await
    }
}

/// Commits after `result` succeeded, or rolls back and returns its error.
pub(crate) async fn finish_write(
    connection: &mut rusqlite::Connection,
    result: Result<()>,
) -> Result<()> {
    match result {
        Ok(()) => sql::retry_busy(connection, "commit", |c| c.control("COMMIT")).await,
        Err(error) => {
            sql::rollback_quietly(connection);
            Err(error)
        }
    }
}
