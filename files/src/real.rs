//! The real file system: each operation is the `std::fs` call it stands for.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{FileSystem, HeldLock, Lock, LockGuard};

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct Real;

/// An open file holding its `flock`, and the inode it is on.
struct RealLock {
    _file: File,
    inode: u64,
}

impl HeldLock for RealLock {
    fn is_named_by(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| m.ino() == self.inode)
    }
}

impl FileSystem for Real {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        entries.sort();
        Ok(entries)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn try_lock(&self, path: &Path, create: bool) -> io::Result<Lock> {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Lock::Missing),
            Err(error) => return Err(error),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(Lock::Busy),
            Err(TryLockError::Error(error)) => return Err(error),
        }
        let inode = file.metadata()?.ino();
        Ok(Lock::Taken(LockGuard::new(Box::new(RealLock {
            _file: file,
            inode,
        }))))
    }
}
