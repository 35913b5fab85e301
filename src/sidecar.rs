//! Recovery sidecars: a small file written before a write stages rows and removed after it
//! publishes. A sidecar left behind by a dead owner tells the recovery sweep which table and
//! transaction to roll forward or back.

use std::path::{Path, PathBuf};

use faultline_files as files;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::layout;

/// What a pending write pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// The write's transaction id (unique per store).
    pub txid: String,
    /// The handle that owns the write.
    pub owner: u64,
    /// The table (dataset) being extended.
    pub table: String,
    /// The published version the write was based on.
    pub base_version: u64,
    /// The version the write publishes if it wins.
    pub target_version: u64,
}

fn path(store: &Path, txid: &str) -> PathBuf {
    layout::pending_dir(store).join(format!("{txid}.json"))
}

/// Writes the sidecar durably: temporary file, fsync, rename.
pub fn write(store: &Path, sidecar: &Sidecar) -> Result<()> {
    let target = path(store, &sidecar.txid);
    let temporary = target.with_extension("tmp");
    let bytes = serde_json::to_vec(sidecar).map_err(|e| EngineError::Io(e.to_string()))?;
    files::write_synced(&temporary, &bytes)?;
    files::rename(&temporary, &target)?;
    Ok(())
}

/// Removes a sidecar; a sidecar already gone is not an error (removal is idempotent).
pub fn remove(store: &Path, txid: &str) -> Result<()> {
    match files::remove_file(&path(store, txid)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// The transaction id of a handle's `sequence`-th write: `o<owner>-t<sequence>`, zero-padded
/// so that names sort in creation order.
pub fn txid(owner: u64, sequence: u64) -> String {
    format!("o{owner:06}-t{sequence:08}")
}

/// The owner encoded in a transaction id, if it is one.
pub fn owner_of(txid: &str) -> Option<u64> {
    txid.strip_prefix('o')?.split('-').next()?.parse().ok()
}

/// What the pending directory holds.
#[derive(Debug, Default)]
pub struct Pending {
    /// Complete sidecars, sorted by transaction id (deterministic order).
    pub sidecars: Vec<Sidecar>,
    /// Temporary files of sidecars whose rename never happened: `(owner, path)`.
    pub unfinished: Vec<(u64, PathBuf)>,
}

/// Lists the pending directory.
pub fn list(store: &Path) -> Result<Pending> {
    let names = files::list(&layout::pending_dir(store))?;
    let mut pending = Pending::default();
    for name in names {
        let stem = name
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        match (name.extension().and_then(|e| e.to_str()), owner_of(stem)) {
            (Some("json"), _) => pending.sidecars.push(read(&name)?),
            (Some("tmp"), Some(owner)) => pending.unfinished.push((owner, name.clone())),
            _ => {}
        }
    }
    Ok(pending)
}

fn read(path: &Path) -> Result<Sidecar> {
    let bytes = files::read(path)?;
    serde_json::from_slice(&bytes).map_err(|error| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        EngineError::Corrupt(format!("sidecar {}: {error}", name.unwrap_or_default()))
    })
}
