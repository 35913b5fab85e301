//! The recovery sweep run when a store is opened.
//!
//! Each sidecar left by a dead owner is classified against the manifest:
//! * **published**: the manifest's chain holds its txid, so its rows are live. The sweep rolls
//!   forward: the rows stay, get the version that published them if the write died before
//!   stamping them, and the sidecar goes.
//! * **unpublished**: the write never won its compare-and-swap. The sweep rolls back: it
//!   deletes the rows the write staged, then the sidecar.
//!
//! Every step can be repeated, so crashing anywhere in the sweep and sweeping again gives
//! the same store.

use std::path::Path;

use faultline_fp::fp;

use crate::error::Result;
use crate::sidecar::{self, Sidecar};
use crate::{owner, Engine};

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Sidecars of published writes removed (rows kept).
    pub rolled_forward: u32,
    /// Sidecars of unpublished writes whose staged rows were deleted.
    pub rolled_back: u32,
    /// Sidecars skipped because their owner is alive.
    pub skipped_live: u32,
    /// Migrations found complete (catalog switched): only their sidecar removed.
    pub migrations_completed: u32,
    /// Migrations rolled forward to the end.
    pub migrations_rolled_forward: u32,
    /// Leases released whose migration never started.
    pub leases_released: u32,
    /// Background migrations marked failed because their owner died mid-attempt.
    pub background_failed: u32,
}

/// Sweeps every pending write of a dead owner.
pub async fn sweep(engine: &Engine) -> Result<RecoveryReport> {
    let store = engine.dir();
    let pending = sidecar::list(store)?;
    let mut report = RecoveryReport::default();
    for (owner_id, path) in &pending.unfinished {
        if owner::is_dead(store, *owner_id)? {
            faultline_files::remove_file(path)?;
        }
    }
    for sidecar in &pending.sidecars {
        if !owner::is_dead(store, sidecar.owner)? {
            report.skipped_live += 1;
            continue;
        }
        fp!("engine.recovery.classify").await?;
        match recover(engine, sidecar).await? {
            Outcome::RolledForward => report.rolled_forward += 1,
            Outcome::RolledBack => report.rolled_back += 1,
        }
    }
    sweep_migrations(engine, &mut report).await?;
    report.background_failed = crate::background::fail_orphaned(engine).await?;
    forget_dead_owners(store, engine.owner())?;
    Ok(report)
}

async fn sweep_migrations(engine: &Engine, report: &mut RecoveryReport) -> Result<()> {
    let store = engine.dir();
    let migrations = crate::migrate::pending(store)?;
    for migration in &migrations {
        if !engine.claim(migration).await? {
            report.skipped_live += 1;
            continue;
        }
        fp!("engine.recovery.classify_migration").await?;
        match engine.resume_migration(migration).await? {
            true => report.migrations_completed += 1,
            false => report.migrations_rolled_forward += 1,
        }
    }
    report.leases_released += engine.release_orphan_leases(&migrations).await?;
    Ok(())
}

enum Outcome {
    RolledForward,
    RolledBack,
}

async fn recover(engine: &Engine, sidecar: &Sidecar) -> Result<Outcome> {
    let published = engine.published(&sidecar.txid).await?;
    let outcome = match published {
        Some(link) => {
            if !crate::layout::is_record_table(&sidecar.table) {
                fp!("engine.recovery.before_stamp").await?;
                engine
                    .stamp_rows(&sidecar.table, &sidecar.txid, link.version)
                    .await?;
            }
            Outcome::RolledForward
        }
        None => {
            fp!("engine.recovery.before_unstage").await?;
            engine.unstage(&sidecar.table, &sidecar.txid).await?;
            Outcome::RolledBack
        }
    };
    fp!("engine.recovery.before_sidecar_remove").await?;
    sidecar::remove(engine.dir(), &sidecar.txid)?;
    Ok(outcome)
}

fn forget_dead_owners(store: &Path, me: u64) -> Result<()> {
    let mut owners: Vec<u64> = faultline_files::list(&crate::layout::owners_dir(store))?
        .iter()
        .filter_map(|path| path.file_stem()?.to_str()?.parse().ok())
        .collect();
    owners.sort_unstable();
    let in_use: Vec<u64> = sidecar::list(store)?
        .sidecars
        .iter()
        .map(|s| s.owner)
        .collect();
    for id in owners {
        if id != me && !in_use.contains(&id) {
            owner::reap(store, id)?;
        }
    }
    Ok(())
}
