//! A simulated disk: a store under a mounted directory lives in memory. Its SQLite files are
//! served by a SQLite VFS registered as the process default ([`vfs`]); the engine's plain
//! files (sidecars, migration plans, owner lock files, directories) by the engine's file
//! seam, [`faultline_files`] ([`plain`]). Paths outside every mount, and SQLite's temporary
//! files, stay on the real file system (SQLite's own `unix` VFS, `std::fs`).
//!
//! Why: a simulated run spent most of its time in system calls on small files (opens,
//! `fcntl` locks, `pread`/`pwrite`, `fsync`, renames, directory listings). In memory those
//! become a lock and a copy, while SQLite itself runs unchanged: WAL mode, the wal-index
//! shared memory, the file and shm lock protocols between handles (see [`locks`]), recovery
//! of a WAL on open; and the plain files keep their meaning (synced writes, atomic renames,
//! `flock`-style owner locks that die with their holder).
//!
//! Crash images stay faithful ([`MemDisk`] implements [`Disk`]): an image holds every byte
//! written to every file at the crash instant, and no lock and no wal-index (SQLite rebuilds
//! it from the WAL, exactly as when the first process opens a file after a crash and finds
//! no other process attached to the `-shm` file).
//!
//! Paths are kept as given (absolute paths under a mount): the VFS never resolves
//! symbolic links, and nothing here reaches a trace.

mod content;
pub mod locks;
mod plain;
mod vfs;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::crash::Disk;

/// One file's bytes and the state its open handles share.
#[derive(Debug, Default)]
pub(crate) struct MemFile {
    state: Mutex<FileState>,
}

#[derive(Debug, Default)]
pub(crate) struct FileState {
    /// The bytes, and what a power loss keeps of them.
    pub content: content::Content,
    pub lock: locks::FileLock,
    pub shm: Shm,
    /// The holder of the file's `flock`-style lock (plain files only).
    pub flock: Option<u64>,
}

/// The wal-index shared by every handle that mapped it. The regions are boxed so that the
/// pointers handed to SQLite stay put while more regions are added.
#[derive(Debug, Default)]
pub(crate) struct Shm {
    pub regions: Vec<Box<[u8]>>,
    pub locks: locks::ShmLocks,
    pub users: u32,
}

impl MemFile {
    /// A file in an image: its content is all on disk (synced), and nothing else of the live
    /// file's state comes along.
    fn with_bytes(bytes: Vec<u8>) -> Arc<MemFile> {
        Arc::new(MemFile {
            state: Mutex::new(FileState {
                content: content::Content::synced(bytes),
                ..FileState::default()
            }),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, FileState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every mounted directory and the in-memory files and directories under them, by full path.
#[derive(Default)]
struct Registry {
    mounts: Vec<String>,
    files: BTreeMap<String, Arc<MemFile>>,
    dirs: BTreeSet<String>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    fn is_mounted(&self, path: &str) -> bool {
        self.mounts.iter().any(|mount| under(path, mount))
    }
}

fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn path_string(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => path.to_string_lossy().into_owned(),
    }
}

/// A mounted directory: SQLite files under it live in memory until the last clone of this
/// handle drops, which forgets them. Cheap to clone.
#[derive(Clone)]
pub struct MemDisk {
    _mount: Arc<Mount>,
}

struct Mount {
    root: String,
    _files: faultline_files::Mounted,
}

impl MemDisk {
    /// Mounts `root` (an absolute path, which starts out as an empty directory): SQLite and
    /// the engine's file seam both serve paths under it from memory. Registers the VFS on
    /// first use.
    pub fn mount(root: &Path) -> MemDisk {
        vfs::register();
        let root = path_string(root).trim_end_matches('/').to_owned();
        {
            let mut registry = registry();
            registry.mounts.push(root.clone());
            registry.dirs.insert(root.clone());
        }
        let files = faultline_files::mount(Path::new(&root), Arc::new(plain::PlainFiles));
        MemDisk {
            _mount: Arc::new(Mount {
                root,
                _files: files,
            }),
        }
    }

    /// How many in-memory SQLite files are open in this process, across all mounts (for
    /// tests: a run that ends leaves none open).
    pub fn open_handles() -> usize {
        vfs::open_handles()
    }

    /// The in-memory files under `dir`, with their sizes, in path order (for tests and
    /// diagnostics).
    pub fn files_under(dir: &Path) -> Vec<(PathBuf, usize)> {
        let dir = path_string(dir);
        registry()
            .files
            .iter()
            .filter(|(path, _)| under(path, &dir))
            .map(|(path, file)| (PathBuf::from(path), file.state().content.len()))
            .collect()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let mut registry = registry();
        registry.mounts.retain(|mount| *mount != self.root);
        let root = &self.root;
        registry.files.retain(|path, _| !under(path, root));
        registry
            .dirs
            .retain(|path| path != root && !under(path, root));
    }
}

impl Disk for MemDisk {
    /// Copies every directory and file under `live` to `image`, byte for byte, without
    /// locks or wal-index.
    fn capture(&self, live: &Path, image: &Path) -> io::Result<()> {
        copy_image(live, image, |_, state| Some(state.content.bytes().to_vec()))
    }

    /// As [`MemDisk::capture`], but each file as of its last sync plus the chunks written
    /// since that `survives` keeps (see [`content`]); a file never synced is not in the
    /// image. (Directory entries are kept: creating, renaming and removing files count as
    /// durable at once, which is kinder than a file system without a directory sync.)
    fn capture_after_power_loss(
        &self,
        live: &Path,
        image: &Path,
        survives: &mut dyn FnMut(&str, usize) -> bool,
    ) -> io::Result<()> {
        copy_image(live, image, |file, state| {
            state
                .content
                .after_power_loss(|chunk| survives(file, chunk))
        })
    }
}

/// Copies the files under `live` to `image`, in path order, each with the content `keep`
/// gives for its path relative to `live` (none: the file is left out), and the directories
/// under `live`.
fn copy_image(
    live: &Path,
    image: &Path,
    mut keep: impl FnMut(&str, &FileState) -> Option<Vec<u8>>,
) -> io::Result<()> {
    let (live, image) = (path_string(live), path_string(image));
    let mut registry = registry();
    if !registry.is_mounted(&image) {
        return Err(io::Error::other(format!(
            "crash image {image} is outside the simulated disk"
        )));
    }
    let copies: Vec<(String, Arc<MemFile>)> = registry
        .files
        .iter()
        .filter_map(|(path, file)| {
            let rest = path.strip_prefix(&live).filter(|r| r.starts_with('/'))?;
            let bytes = keep(rest, &file.state())?;
            Some((format!("{image}{rest}"), MemFile::with_bytes(bytes)))
        })
        .collect();
    registry.files.extend(copies);
    let dirs: Vec<String> = std::iter::once(live.clone())
        .chain(registry.dirs.iter().filter(|d| under(d, &live)).cloned())
        .map(|dir| format!("{image}{}", &dir[live.len()..]))
        .collect();
    registry.dirs.extend(dirs);
    Ok(())
}

#[cfg(test)]
mod tests;
