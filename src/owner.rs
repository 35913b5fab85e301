//! Owner liveness. Every open handle holds an exclusive lock on its own lock file for as
//! long as it lives, as a process would; when the process dies (or the handle is dropped)
//! the lock goes with it. Recovery touches only the pending writes of owners whose lock it
//! can take, so a handle opening the store never rolls back a live handle's write.
//!
//! The lock is `flock`-style (through [`faultline_files::try_lock`]; `File::try_lock` on real
//! files): it belongs to the open file, so two handles in one process exclude each other just
//! as two processes do.

use std::path::Path;
use std::time::Duration;

use faultline_files::{self as files, Lock, LockGuard};

use crate::error::{EngineError, Result};
use crate::layout;

/// The lock a live handle holds.
pub struct OwnerLock {
    _guard: LockGuard,
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
        match files::try_lock(&path, true)? {
            Lock::Taken(guard) if guard.is_named_by(&path) => {
                return Ok(OwnerLock { _guard: guard })
            }
            Lock::Taken(_) | Lock::Missing => {}
            Lock::Busy => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    Err(EngineError::Io(format!(
        "could not take the lock of owner {owner}"
    )))
}

/// Whether `owner` is dead: its lock file is missing or can be locked right now.
pub fn is_dead(store: &Path, owner: u64) -> Result<bool> {
    let alive = matches!(
        files::try_lock(&layout::owner_lock(store, owner), false)?,
        Lock::Busy
    );
    Ok(!alive)
}

/// Removes the lock file of `owner` if the owner is dead, holding its lock while it does so
/// (so a handle that is just taking it will notice and start again). Returns whether it
/// was dead.
pub fn reap(store: &Path, owner: u64) -> Result<bool> {
    let path = layout::owner_lock(store, owner);
    let _guard = match files::try_lock(&path, false)? {
        Lock::Taken(guard) => guard,
        Lock::Missing => return Ok(true),
        Lock::Busy => return Ok(false),
    };
    match files::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(true),
    }
}
