//! The engine's plain files (sidecars, migration plans, owner lock files, directories) on
//! the simulated disk, through the engine's file seam ([`faultline_files::FileSystem`]).
//! They share the registry with the SQLite files, so one crash image copies both.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use faultline_files::{FileSystem, HeldLock, Lock, LockGuard};

use super::{path_string, registry, MemFile, Registry};

/// The in-memory file system mounted on every [`super::MemDisk`] root.
pub(crate) struct PlainFiles;

fn not_found(path: &str) -> io::Error {
    io::Error::new(
        ErrorKind::NotFound,
        format!("{path}: no such file or directory"),
    )
}

fn parent(path: &str) -> Option<String> {
    Path::new(path).parent().map(path_string)
}

impl Registry {
    /// Whether the directory that would hold `path` exists.
    pub(crate) fn parent_exists(&self, path: &str) -> bool {
        parent(path).is_some_and(|dir| self.dirs.contains(&dir))
    }

    fn require_parent(&self, path: &str) -> io::Result<()> {
        match self.parent_exists(path) {
            true => Ok(()),
            false => Err(not_found(path)),
        }
    }
}

struct MemLock {
    file: Arc<MemFile>,
    id: u64,
}

impl HeldLock for MemLock {
    fn is_named_by(&self, path: &Path) -> bool {
        registry()
            .files
            .get(&path_string(path))
            .is_some_and(|file| Arc::ptr_eq(file, &self.file))
    }
}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut state = self.file.state();
        if state.flock == Some(self.id) {
            state.flock = None;
        }
    }
}

impl FileSystem for PlainFiles {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut registry = registry();
        let mut current = Some(path);
        while let Some(dir) = current.filter(|d| registry.is_mounted(&path_string(d))) {
            registry.dirs.insert(path_string(dir));
            current = dir.parent();
        }
        Ok(())
    }

    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let path = path_string(path);
        let mut registry = registry();
        registry.require_parent(&path)?;
        let file = registry.files.entry(path).or_default().clone();
        drop(registry);
        let mut state = file.state();
        state.content.replace_synced(bytes);
        crate::iotime::write(bytes.len());
        crate::iotime::sync();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (path_string(from), path_string(to));
        let mut registry = registry();
        registry.require_parent(&to)?;
        let file = registry
            .files
            .remove(&from)
            .ok_or_else(|| not_found(&from))?;
        registry.files.insert(to, file);
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let path = path_string(path);
        let file = registry().files.get(&path).cloned();
        let file = file.ok_or_else(|| not_found(&path))?;
        let bytes = file.state().content.bytes().to_vec();
        crate::iotime::read(bytes.len());
        Ok(bytes)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = path_string(path);
        registry()
            .files
            .remove(&path)
            .map(drop)
            .ok_or_else(|| not_found(&path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = path_string(dir);
        let registry = registry();
        if !registry.dirs.contains(&dir) {
            return Err(not_found(&dir));
        }
        let prefix = format!("{dir}/");
        let inside = |path: &&String| !path[prefix.len()..].contains('/');
        let files = registry.files.range(prefix.clone()..).map(|(path, _)| path);
        let dirs = registry.dirs.range(prefix.clone()..);
        let mut entries: Vec<PathBuf> = (files.take_while(|p| p.starts_with(&prefix)))
            .chain(dirs.take_while(|p| p.starts_with(&prefix)))
            .filter(inside)
            .map(PathBuf::from)
            .collect();
        entries.sort();
        Ok(entries)
    }

    fn exists(&self, path: &Path) -> bool {
        let path = path_string(path);
        let registry = registry();
        registry.files.contains_key(&path) || registry.dirs.contains(&path)
    }

    fn try_lock(&self, path: &Path, create: bool) -> io::Result<Lock> {
        let path = path_string(path);
        let mut registry = registry();
        let file = match registry.files.get(&path) {
            Some(file) => file.clone(),
            None if !create => return Ok(Lock::Missing),
            None => {
                registry.require_parent(&path)?;
                registry.files.entry(path).or_default().clone()
            }
        };
        drop(registry);
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let mut state = file.state();
        if state.flock.is_some() {
            return Ok(Lock::Busy);
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        state.flock = Some(id);
        drop(state);
        Ok(Lock::Taken(LockGuard::new(Box::new(MemLock { file, id }))))
    }
}
