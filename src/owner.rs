//! Owner liveness. Every open handle holds an exclusive lock on its own lock file for as
//! long as it lives, as a process would; when the process dies (or the handle is dropped)
//! the lock goes with it. Recovery touches only the pending writes of owners whose lock it
//! can take, so a handle opening the store never rolls back a live handle's write.
//!
//! The lock is `flock`-style (`File::try_lock`): it belongs to the open file, so two handles
//! in one process exclude each other just as two processes do.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::layout;

/// The lock a live handle holds.
pub struct OwnerLock {
    _file: File,
}

/// Takes the lock file of `owner` and holds it until the returned value drops.
pub fn hold(store: &Path, owner: u64) -> Result<OwnerLock> {
    let file = open(store, owner)?;
    match file.try_lock() {
        Ok(()) => Ok(OwnerLock { _file: file }),
        Err(error) => Err(EngineError::Io(format!(
            "owner {owner} lock is taken: {error}"
        ))),
    }
}

fn open(store: &Path, owner: u64) -> Result<File> {
    let path = layout::owner_lock(store, owner);
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

/// Whether `owner` is dead: its lock file is missing or can be locked right now.
pub fn is_dead(store: &Path, owner: u64) -> Result<bool> {
    if !layout::owner_lock(store, owner).exists() {
        return Ok(true);
    }
    match open(store, owner)?.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(error)) => Err(error.into()),
    }
}

/// Removes a dead owner's lock file (idempotent).
pub fn forget(store: &Path, owner: u64) -> Result<()> {
    match std::fs::remove_file(layout::owner_lock(store, owner)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}
