//! Owner liveness. Every open handle holds an exclusive lock on its own lock file for as
//! long as it lives, as a process would; when the process dies (or the handle is dropped)
//! the lock goes with it. Recovery touches only the pending writes of owners whose lock it
//! can take, so a handle opening the store never rolls back a live handle's write.
//!
//! The lock is `flock`-style (`File::try_lock`): it belongs to the open file, so two handles
//! in one process exclude each other just as two processes do.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::error::{EngineError, Result};
use crate::layout;

/// The lock a live handle holds.
pub struct OwnerLock {
    _file: File,
}

/// Attempts to take a lock another handle is briefly holding (while checking it).
const HOLD_ATTEMPTS: u32 = 100;

/// Takes the lock file of `owner` and holds it until the returned value drops.
///
/// Another handle's sweep may lock and delete the file between our create and our lock
/// (it takes the lock before it deletes, see [`reap`]); so after locking we check that the
/// path still names the file we locked, and start again if it does not.
pub async fn hold(store: &Path, owner: u64) -> Result<OwnerLock> {
    let path = layout::owner_lock(store, owner);
    for _ in 0..HOLD_ATTEMPTS {
        let file = open(store, owner)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Err(TryLockError::Error(error)) => return Err(error.into()),
        }
        let locked = file.metadata()?.ino();
        if std::fs::metadata(&path).is_ok_and(|m| m.ino() == locked) {
            return Ok(OwnerLock { _file: file });
        }
    }
    Err(EngineError::Io(format!(
        "could not take the lock of owner {owner}"
    )))
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

/// Removes the lock file of `owner` if the owner is dead, holding its lock while it does so
/// (so a handle that is just taking it will notice and start again). Returns whether it
/// was dead.
pub fn reap(store: &Path, owner: u64) -> Result<bool> {
    let path = layout::owner_lock(store, owner);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(error) => return Err(error.into()),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(error)) => return Err(error.into()),
    }
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(true),
    }
}
