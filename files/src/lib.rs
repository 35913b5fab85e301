//! The engine's plain-file operations (recovery sidecars, migration plans, owner lock files,
//! directories) behind one seam, in the shape of SQLite's VFS: a process-wide table of
//! mounts. A path under a mounted directory goes to that mount's [`FileSystem`]; every other
//! path goes to the real file system ([`Real`]).
//!
//! The simulator mounts its in-memory disk on each run's scratch directory, so that a
//! simulated store lives entirely in memory and its crash images copy every file; in
//! production nothing is mounted and every call is the `std::fs` call it replaces.
//!
//! The operations are the ones the engine's crash-safety arguments rest on, and each keeps
//! its real meaning: [`write_synced`] is create-or-truncate, write, fsync; [`rename`]
//! replaces its target atomically; [`try_lock`] is an exclusive `flock`-style lock that lives
//! as long as its [`LockGuard`] (a process crash drops it).
#![deny(missing_docs)]

pub mod conformance;
mod real;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

pub use real::Real;

/// A file system the engine's plain files can live on.
pub trait FileSystem: Send + Sync {
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates or truncates `path`, writes `bytes` and syncs them.
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to`, atomically replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Removes a file (`NotFound` if it is missing).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The entries (files and directories) directly in `dir`, sorted by path.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Tries to take the exclusive lock of the file at `path`, creating the file first if
    /// `create` is set.
    fn try_lock(&self, path: &Path, create: bool) -> io::Result<Lock>;
}

/// The outcome of [`try_lock`].
pub enum Lock {
    /// The lock is ours until the guard drops.
    Taken(LockGuard),
    /// Someone else holds it.
    Busy,
    /// There is no file at the path (and `create` was not set).
    Missing,
}

/// A held lock: released when dropped.
pub struct LockGuard(Box<dyn HeldLock>);

/// What a file system keeps for a held lock.
pub trait HeldLock: Send + Sync {
    /// Whether `path` still names the file this lock is on (it may have been removed, or
    /// replaced by another file, since the lock was taken).
    fn is_named_by(&self, path: &Path) -> bool;
}

impl LockGuard {
    /// Wraps a file system's held lock.
    pub fn new(held: Box<dyn HeldLock>) -> LockGuard {
        LockGuard(held)
    }

    /// Whether `path` still names the locked file.
    pub fn is_named_by(&self, path: &Path) -> bool {
        self.0.is_named_by(path)
    }
}

type Mounts = Vec<(PathBuf, Arc<dyn FileSystem>)>;

fn mounts() -> &'static RwLock<Mounts> {
    static MOUNTS: RwLock<Mounts> = RwLock::new(Vec::new());
    &MOUNTS
}

/// Serves every path under `root` from `system` until the returned value drops.
#[must_use = "the mount ends when the returned value drops"]
pub fn mount(root: &Path, system: Arc<dyn FileSystem>) -> Mounted {
    let root = root.to_owned();
    mounts()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push((root.clone(), system));
    Mounted { root }
}

/// A mount; dropping it unmounts.
pub struct Mounted {
    root: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let mut mounts = mounts().write().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = mounts.iter().rposition(|(root, _)| *root == self.root) {
            mounts.remove(index);
        }
    }
}

/// Runs `operation` on the file system that serves `path`.
fn on<T>(path: &Path, operation: impl FnOnce(&dyn FileSystem) -> T) -> T {
    let mounted = {
        let mounts = mounts().read().unwrap_or_else(PoisonError::into_inner);
        mounts
            .iter()
            .rev()
            .find(|(root, _)| is_under(path, root))
            .map(|(_, system)| system.clone())
    };
    match mounted {
        Some(system) => operation(system.as_ref()),
        None => operation(&Real),
    }
}

/// Whether `path` is `root` or below it, comparing bytes (this runs on every call, and
/// `Path::starts_with` parses components).
fn is_under(path: &Path, root: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (path, root) = (path.as_os_str().as_bytes(), root.as_os_str().as_bytes());
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

/// [`FileSystem::create_dir_all`] on whatever serves `path`.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    on(path, |fs| fs.create_dir_all(path))
}

/// [`FileSystem::write_synced`] on whatever serves `path`.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    on(path, |fs| fs.write_synced(path, bytes))
}

/// [`FileSystem::rename`] on whatever serves `from` (both paths must be served by it).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    on(from, |fs| fs.rename(from, to))
}

/// [`FileSystem::read`] on whatever serves `path`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    on(path, |fs| fs.read(path))
}

/// [`FileSystem::remove_file`] on whatever serves `path`.
pub fn remove_file(path: &Path) -> io::Result<()> {
    on(path, |fs| fs.remove_file(path))
}

/// [`FileSystem::list`] on whatever serves `dir`.
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    on(dir, |fs| fs.list(dir))
}

/// [`FileSystem::exists`] on whatever serves `path`.
pub fn exists(path: &Path) -> bool {
    on(path, |fs| fs.exists(path))
}

/// [`FileSystem::try_lock`] on whatever serves `path`.
pub fn try_lock(path: &Path, create: bool) -> io::Result<Lock> {
    on(path, |fs| fs.try_lock(path, create))
}

#[cfg(test)]
mod tests;
