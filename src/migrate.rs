//! Schema migrations: `apply_schema` plans a change as steps and runs each as its own
//! commit, first on the table file, then on the manifest (one table version per step); the
//! catalog switches to the new schema in a last manifest commit.
//!
//! Before any step, the migration takes a lease on its tables in the manifest (loads are
//! refused with a typed conflict until it ends) and writes a migration sidecar recording its
//! whole plan: for every table the version it started from and the version it ends at, which
//! may be many steps later (a hard drop or a re-encode runs in batches). The recovery
//! classifier reads those pins as a range: a migration whose catalog switch committed is
//! complete whatever the table versions are; otherwise each table is rolled forward from
//! whatever version inside the range it reached. Nothing is ever re-published at the version
//! the migration started from.
//!
//! Steps are idempotent in effect: a step re-run after a crash between its table commit and
//! its manifest commit processes the next batch, and the last step of each kind processes
//! everything left.

use crate::sql::Cached;
use std::path::{Path, PathBuf};

use faultline_fp::fp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::nodes::finish_write;
use crate::records::{self, Stored};
use crate::schema::{self, Encoding, Schema};
use crate::{legacy, manifest, owner, sql, Engine};

/// What happens to a legacy record that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BadRecordPolicy {
    /// The migration fails before changing anything, naming the record.
    FailMigration,
    /// The record moves to the table's quarantine and is listed in the report.
    Quarantine,
}

/// How to apply a schema change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationOptions {
    /// Allow hard drops (data loss). Default false.
    pub allow_data_loss: bool,
    /// Records per batch step of a re-encode or hard drop. Default 500.
    pub batch_size: u64,
    /// What to do with undecodable legacy records. Default fail the migration.
    pub bad_records: BadRecordPolicy,
}

impl MigrationOptions {
    /// Allows hard drops.
    pub fn allow_data_loss(mut self) -> Self {
        self.allow_data_loss = true;
        self
    }

    /// Sets the records per batch step.
    pub fn batch_size(mut self, batch_size: u64) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the bad-record policy.
    pub fn bad_records(mut self, policy: BadRecordPolicy) -> Self {
        self.bad_records = policy;
        self
    }
}

impl Default for MigrationOptions {
    fn default() -> Self {
        MigrationOptions {
            allow_data_loss: false,
            batch_size: 500,
            bad_records: BadRecordPolicy::FailMigration,
        }
    }
}

/// One step's work on a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StepKind {
    /// Re-encode legacy records as JSON.
    ReEncode,
    /// Give every record lacking `property` the value `default`.
    AddProperty {
        /// The property.
        property: String,
        /// Its value on existing records.
        default: Value,
    },
    /// Remove `property` from every record.
    HardDrop {
        /// The property.
        property: String,
    },
}

/// One step: its work and how many records it may touch (`None`: all that are left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The work.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Records it may touch.
    pub limit: Option<u64>,
}

/// A table's part of a migration and its pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePlan {
    /// The table.
    pub table: String,
    /// The version the migration started from.
    pub base_version: u64,
    /// The version the migration ends at (`base_version + steps.len()`).
    pub final_version: u64,
    /// The steps, in order; step `i` publishes version `base_version + i + 1`.
    pub steps: Vec<Step>,
}

/// The migration sidecar: the whole plan, written before the first step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSidecar {
    /// The migration's id.
    pub id: String,
    /// The handle running it.
    pub owner: u64,
    /// The catalog before.
    pub old: Schema,
    /// The catalog after.
    pub new: Schema,
    /// Every table it touches.
    pub tables: Vec<TablePlan>,
    /// The bad-record policy.
    pub bad_records: BadRecordPolicy,
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migration's id.
    pub migration: String,
    /// Steps committed.
    pub steps: u64,
    /// Records re-encoded.
    pub reencoded: u64,
    /// Records quarantined: `(key, reason)`.
    pub quarantined: Vec<(String, String)>,
}

fn migrations_dir(store: &Path) -> PathBuf {
    store.join("migrations")
}

fn sidecar_path(store: &Path, id: &str) -> PathBuf {
    migrations_dir(store).join(format!("{id}.json"))
}

/// Every migration sidecar in the store, by id.
pub fn pending(store: &Path) -> Result<Vec<MigrationSidecar>> {
    let dir = migrations_dir(store);
    if !faultline_files::exists(&dir) {
        return Ok(Vec::new());
    }
    let paths = faultline_files::list(&dir)?;
    let mut sidecars = Vec::new();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let bytes = faultline_files::read(path)?;
        let sidecar = serde_json::from_slice(&bytes).map_err(|e| {
            EngineError::Corrupt(format!("migration sidecar {}: {e}", path.display()))
        })?;
        sidecars.push(sidecar);
    }
    Ok(sidecars)
}

fn write_sidecar(store: &Path, sidecar: &MigrationSidecar) -> Result<()> {
    let target = sidecar_path(store, &sidecar.id);
    let temporary = target.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(sidecar).map_err(|e| EngineError::Io(e.to_string()))?;
    faultline_files::create_dir_all(&migrations_dir(store))?;
    faultline_files::write_synced(&temporary, &bytes)?;
    faultline_files::rename(&temporary, &target)?;
    Ok(())
}

fn remove_sidecar(store: &Path, id: &str) -> Result<()> {
    match faultline_files::remove_file(&sidecar_path(store, id)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// What a node type's change needs, before row counts turn it into batch steps.
fn changes(
    node_type: &str,
    old: &schema::NodeType,
    new: &schema::NodeType,
    options: &MigrationOptions,
) -> Result<Vec<StepKind>> {
    let mut kinds = Vec::new();
    match (old.encoding, new.encoding) {
        (Encoding::Legacy, Encoding::Json) => kinds.push(StepKind::ReEncode),
        (Encoding::Json, Encoding::Legacy) => {
            return Err(EngineError::InvalidSchema(format!(
                "{node_type}: cannot go back to the legacy encoding"
            )))
        }
        _ => {}
    }
    for (name, property) in &new.properties {
        if !old.properties.contains_key(name) {
            let default = property.default.clone().unwrap_or(Value::Null);
            kinds.push(StepKind::AddProperty {
                property: name.clone(),
                default,
            });
        }
    }
    for name in old
        .properties
        .keys()
        .filter(|name| !new.properties.contains_key(*name))
    {
        if !options.allow_data_loss {
            return Err(EngineError::InvalidSchema(format!(
                "{node_type}: removing property {name} loses data; allow data loss or soft-drop it"
            )));
        }
        kinds.push(StepKind::HardDrop {
            property: name.clone(),
        });
    }
    let changes_properties = kinds.iter().any(|k| !matches!(k, StepKind::ReEncode));
    if changes_properties && new.encoding == Encoding::Legacy {
        return Err(EngineError::InvalidSchema(format!(
            "{node_type}: adding or removing properties of a legacy-encoded type needs re-encoding it to JSON"
        )));
    }
    Ok(kinds)
}

fn validate(old: &Schema, new: &Schema) -> Result<()> {
    if new.version <= old.version {
        return Err(EngineError::InvalidSchema(format!(
            "the new schema's version {} must be above the current {}",
            new.version, old.version
        )));
    }
    if old.node_types.keys().ne(new.node_types.keys()) {
        return Err(EngineError::InvalidSchema(
            "adding or removing node types is not supported".to_owned(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Applies `new` to the catalog and every table, as a multi-step migration.
    pub async fn apply_schema(
        &self,
        new: &Schema,
        options: &MigrationOptions,
    ) -> Result<MigrationReport> {
        let old = self.schema().await?;
        validate(&old, new)?;
        let mut kinds = Vec::new();
        for (node_type, old_type) in &old.node_types {
            let table_kinds = changes(node_type, old_type, &new.node_types[node_type], options)?;
            if table_kinds.contains(&StepKind::ReEncode)
                && options.bad_records == BadRecordPolicy::FailMigration
            {
                self.preflight(node_type).await?;
            }
            kinds.push((schema::table_name(node_type), table_kinds));
        }
        let id = format!("m{}", self.next_txid());
        let bases = self.take_lease(&id, old.version, &kinds).await?;
        let planned = self.plan(&id, old, new, kinds, bases, options).await;
        let sidecar = match planned {
            Ok(sidecar) => sidecar,
            Err(error) => {
                // Nothing has changed yet: give the tables back before failing.
                self.release_lease(&id).await?;
                return Err(error);
            }
        };
        let mut report = MigrationReport {
            migration: sidecar.id.clone(),
            ..MigrationReport::default()
        };
        for plan in &sidecar.tables {
            self.run_steps(&sidecar, plan, plan.base_version, &mut report)
                .await?;
        }
        self.switch_catalog(&sidecar).await?;
        fp!("engine.migrate.before_sidecar_remove").await?;
        remove_sidecar(self.dir(), &sidecar.id)?;
        Ok(report)
    }

    /// Sizes the steps and writes the sidecar (after the lease, before any step).
    async fn plan(
        &self,
        id: &str,
        old: Schema,
        new: &Schema,
        kinds: Vec<(String, Vec<StepKind>)>,
        bases: Vec<u64>,
        options: &MigrationOptions,
    ) -> Result<MigrationSidecar> {
        fp!("engine.migrate.after_lease").await?;
        let mut tables = Vec::new();
        for ((table, table_kinds), base) in kinds.into_iter().zip(bases) {
            let steps = self
                .batch(&table, table_kinds, options.batch_size.max(1))
                .await?;
            let final_version = base + steps.len() as u64;
            tables.push(TablePlan {
                table,
                base_version: base,
                final_version,
                steps,
            });
        }
        let sidecar = MigrationSidecar {
            id: id.to_owned(),
            owner: self.owner(),
            old,
            new: new.clone(),
            tables,
            bad_records: options.bad_records,
        };
        fp!("engine.migrate.before_sidecar_write").await?;
        write_sidecar(self.dir(), &sidecar)?;
        Ok(sidecar)
    }

    async fn release_lease(&self, id: &str) -> Result<()> {
        let mut connection = self.inner.manifest.lock().await;
        sql::retry_busy(&mut connection, "migrate.release", |c| {
            c.run("DELETE FROM leases WHERE migration = ?1", [id])
        })
        .await
        .map(drop)
    }

    /// Takes over a pending migration from its dead runner, or says another live handle has
    /// it. The lease names the handle running the migration; taking it over is a
    /// compare-and-swap on that name, so two handles opening at once never both resume it.
    pub(crate) async fn claim(&self, sidecar: &MigrationSidecar) -> Result<bool> {
        let leases = self.leases().await?;
        let Some((_, _, holder)) = leases.iter().find(|(_, m, _)| *m == sidecar.id) else {
            // No lease left: the catalog switch committed; only the sidecar remains.
            return Ok(true);
        };
        if *holder == self.owner() {
            return Ok(true);
        }
        if !owner::is_dead(self.dir(), *holder)? {
            return Ok(false);
        }
        let mut connection = self.inner.manifest.lock().await;
        let (me, id, dead) = (self.owner(), sidecar.id.clone(), *holder);
        let moved = sql::retry_busy(&mut connection, "migrate.claim", |c| {
            c.run(
                "UPDATE leases SET owner = ?1 WHERE migration = ?2 AND owner = ?3",
                rusqlite::params![me, id, dead],
            )
        })
        .await?;
        Ok(moved > 0)
    }

    /// Fails with [`EngineError::BadRecord`] if any legacy record of `node_type` is undecodable.
    async fn preflight(&self, node_type: &str) -> Result<()> {
        for (key, stored) in self.records(node_type).await? {
            if let Stored::Legacy(bytes) = stored {
                legacy::decode(&bytes).map_err(|reason| EngineError::BadRecord { key, reason })?;
            }
        }
        Ok(())
    }

    /// Takes the lease on every table of the migration, planned against catalog version
    /// `planned_on`; returns their versions. Refused with [`EngineError::SchemaChanged`] if
    /// the catalog moved since it was read: another handle finished a migration in between
    /// (the same change, perhaps), and this one would otherwise lease tables for a change
    /// already made and never give them back.
    async fn take_lease(
        &self,
        id: &str,
        planned_on: u64,
        kinds: &[(String, Vec<StepKind>)],
    ) -> Result<Vec<u64>> {
        let mut connection = self.inner.manifest.lock().await;
        sql::begin_write(&mut connection, "migrate.lease").await?;
        let mut bases = Vec::new();
        let mut result = match schema::read(&connection) {
            Ok(catalog) if catalog.version == planned_on => Ok(()),
            Ok(catalog) => Err(EngineError::SchemaChanged {
                expected: planned_on,
                current: catalog.version,
            }),
            Err(error) => Err(error.into()),
        };
        for (table, _) in kinds.iter().filter(|_| result.is_ok()) {
            let taken = (|| -> Result<u64> {
                if let Some(migration) = manifest::lease_of(&connection, table)? {
                    return Err(EngineError::Migrating {
                        table: table.clone(),
                        migration,
                    });
                }
                connection.run(
                    "INSERT INTO leases(tbl, migration, owner) VALUES (?1, ?2, ?3)",
                    rusqlite::params![table, id, self.owner()],
                )?;
                Ok(
                    connection.row("SELECT version FROM tables WHERE name = ?1", [table], |r| {
                        r.get(0)
                    })?,
                )
            })();
            match taken {
                Ok(base) => bases.push(base),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        finish_write(&mut connection, result).await?;
        Ok(bases)
    }

    /// Turns a table's changes into steps sized by its current rows.
    async fn batch(&self, table: &str, kinds: Vec<StepKind>, batch_size: u64) -> Result<Vec<Step>> {
        let connection = self.table(table).await?;
        let mut connection = connection.lock().await;
        let mut steps = Vec::new();
        for kind in kinds {
            let touched = match &kind {
                StepKind::ReEncode => "json IS NULL AND legacy IS NOT NULL".to_owned(),
                StepKind::AddProperty { .. } => String::new(),
                // Legacy rows hold the property too once re-encoded: size by every row.
                StepKind::HardDrop { .. } => "1 = 1".to_owned(),
            };
            let rows = match touched.is_empty() {
                true => 1,
                false => {
                    sql::retry_busy(&mut connection, "migrate.count", |c| {
                        records::count_where(c, &touched)
                    })
                    .await?
                }
            };
            let batches = rows.div_ceil(batch_size).max(1);
            for index in 0..batches {
                let limit = (index + 1 < batches).then_some(batch_size);
                steps.push(Step {
                    kind: kind.clone(),
                    limit,
                });
            }
        }
        Ok(steps)
    }

    /// Runs the steps of `plan` from table version `from` to its final version.
    async fn run_steps(
        &self,
        sidecar: &MigrationSidecar,
        plan: &TablePlan,
        from: u64,
        report: &mut MigrationReport,
    ) -> Result<()> {
        let end = plan.base_version + plan.steps.len() as u64;
        for version in from..end {
            let step = &plan.steps[(version - plan.base_version) as usize];
            fp!("engine.migrate.before_step").await?;
            self.apply_step(&plan.table, step, sidecar.bad_records, report)
                .await?;
            fp!("engine.migrate.after_step_table").await?;
            let txid = format!("{}-s{}", sidecar.id, version + 1 - plan.base_version);
            let mut connection = self.inner.manifest.lock().await;
            sql::begin_write(&mut connection, "migrate.publish_step").await?;
            let result = manifest::publish_step(&connection, &plan.table, version, &txid);
            finish_write(&mut connection, result).await?;
            report.steps += 1;
        }
        Ok(())
    }

    async fn apply_step(
        &self,
        table: &str,
        step: &Step,
        policy: BadRecordPolicy,
        report: &mut MigrationReport,
    ) -> Result<()> {
        let connection = self.table(table).await?;
        let mut connection = connection.lock().await;
        sql::begin_write(&mut connection, "migrate.step").await?;
        let result = match &step.kind {
            StepKind::ReEncode => reencode(&connection, step.limit, policy, report),
            StepKind::AddProperty { property, default } => {
                records::add_property(&connection, property, default)
                    .map(drop)
                    .map_err(Into::into)
            }
            StepKind::HardDrop { property } => {
                records::drop_property(&connection, property, step.limit)
                    .map(drop)
                    .map_err(Into::into)
            }
        };
        finish_write(&mut connection, result).await
    }

    /// The last commit: the catalog becomes the new schema and the leases go, together.
    async fn switch_catalog(&self, sidecar: &MigrationSidecar) -> Result<()> {
        let mut connection = self.inner.manifest.lock().await;
        sql::begin_write(&mut connection, "migrate.catalog").await?;
        // The statements, then the failpoint, with no borrow of the guard held across its
        // await: a `&Connection` is not `Send` (a `Connection` is not `Sync`), and an async
        // block borrowing the guard here made `Engine::open`, `apply_schema` and
        // `resume_migrations` not `Send`.
        let written = (|| -> Result<()> {
            schema::write(&connection, &sidecar.new)?;
            connection.run("DELETE FROM leases WHERE migration = ?1", [&sidecar.id])?;
            Ok(())
        })();
        let result = match written {
            Ok(()) => fp!("engine.migrate.before_catalog_commit")
                .await
                .map_err(EngineError::from),
            Err(error) => Err(error),
        };
        finish_write(&mut connection, result).await
    }

    /// Recovery of a migration whose owner is dead. Complete if its catalog switch
    /// committed (tables at or beyond their pins); otherwise rolled forward from wherever
    /// each table got to inside its pinned range.
    /// Returns whether it had already completed.
    pub(crate) async fn resume_migration(&self, sidecar: &MigrationSidecar) -> Result<bool> {
        let mut report = MigrationReport {
            migration: sidecar.id.clone(),
            ..MigrationReport::default()
        };
        let completed = self.schema().await?.version >= sidecar.new.version;
        if !completed {
            for plan in &sidecar.tables {
                let current = self.head(&plan.table).await?.version;
                if current < plan.base_version || current > plan.final_version {
                    return Err(EngineError::Corrupt(format!(
                        "{} is at version {current}, outside migration {}'s range {}..={}",
                        plan.table, sidecar.id, plan.base_version, plan.final_version
                    )));
                }
                let resume_from = current;
                fp!("engine.recovery.migration_step").await?;
                self.run_steps(sidecar, plan, resume_from, &mut report)
                    .await?;
            }
            self.switch_catalog(sidecar).await?;
        }
        fp!("engine.recovery.before_migration_sidecar_remove").await?;
        remove_sidecar(self.dir(), &sidecar.id)?;
        Ok(completed)
    }

    /// Finishes every pending migration this handle owns or whose owner is dead (after
    /// `apply_schema` returned an error mid-way, for example). Returns how many it finished.
    pub async fn resume_migrations(&self) -> Result<u32> {
        let mut finished = 0;
        for sidecar in pending(self.dir())? {
            if self.claim(&sidecar).await? {
                self.resume_migration(&sidecar).await?;
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Releases leases of dead owners whose migration never wrote its sidecar.
    pub(crate) async fn release_orphan_leases(&self, sidecars: &[MigrationSidecar]) -> Result<u32> {
        let mut released = 0;
        for (table, migration, lease_owner) in self.leases().await? {
            let planned = sidecars.iter().any(|s| s.id == migration);
            if planned || !owner::is_dead(self.dir(), lease_owner)? {
                continue;
            }
            let mut connection = self.inner.manifest.lock().await;
            sql::retry_busy(&mut connection, "migrate.release", |c| {
                c.run(
                    "DELETE FROM leases WHERE tbl = ?1 AND migration = ?2",
                    [&table, &migration],
                )
            })
            .await?;
            released += 1;
        }
        Ok(released)
    }
}

fn reencode(
    connection: &rusqlite::Connection,
    limit: Option<u64>,
    policy: BadRecordPolicy,
    report: &mut MigrationReport,
) -> Result<()> {
    for (key, bytes) in records::legacy_batch(connection, limit)? {
        match (legacy::decode(&bytes), policy) {
            (Ok(record), _) => {
                records::set_json(connection, &key, &record)?;
                report.reencoded += 1;
            }
            (Err(reason), BadRecordPolicy::Quarantine) => {
                records::quarantine(connection, &key, &reason)?;
                report.quarantined.push((key, reason));
            }
            (Err(reason), BadRecordPolicy::FailMigration) => {
                return Err(EngineError::BadRecord { key, reason })
            }
        }
    }
    Ok(())
}
