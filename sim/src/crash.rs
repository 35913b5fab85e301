//! Crash images: the store's files as they are at the crash instant.
//!
//! A process crash keeps everything the process handed to the OS, fsynced or not, and
//! nothing else: no destructor, no SQLite rollback-on-close, no WAL checkpoint. The image
//! is a byte-for-byte copy of the store directory taken at the crash instant (the simulator
//! is single-threaded, so no write is half-way through a system call). Restarting on the
//! image is what a restarted process sees.
//!
//! A power loss keeps less: what was synced, and of what was written since, only the pieces
//! the run chooses. [`Disk::capture_after_power_loss`] takes that image; the simulated disk
//! ([`crate::memdisk`]) tracks syncs and implements it, real files cannot and keep everything.

use std::fs;
use std::io;
use std::path::Path;

/// How a crash image is taken.
pub trait Disk: Send + Sync {
    /// Copies what survives a crash of `live` into `image` (which does not exist yet).
    fn capture(&self, live: &Path, image: &Path) -> io::Result<()>;

    /// Copies what survives a power loss: what was synced, plus each piece written since
    /// that `survives(file, chunk)` keeps (`file` relative to `live`, such as
    /// `/tables/dataset-0.db-wal`; asked in file order, then chunk order). A disk that cannot
    /// tell (real files) copies everything, as for a process crash, and asks nothing.
    fn capture_after_power_loss(
        &self,
        live: &Path,
        image: &Path,
        survives: &mut dyn FnMut(&str, usize) -> bool,
    ) -> io::Result<()> {
        let _ = survives;
        self.capture(live, image)
    }
}

/// A process crash: every byte written survives.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCrash;

impl Disk for ProcessCrash {
    fn capture(&self, live: &Path, image: &Path) -> io::Result<()> {
        copy_tree(live, image)
    }
}

/// Copies a directory tree, entries in name order.
fn copy_tree(source: &Path, target: &Path) -> io::Result<()> {
    fs::create_dir_all(target)?;
    let mut entries: Vec<_> = fs::read_dir(source)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let destination = target.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &destination)?;
        } else {
            fs::copy(entry.path(), destination)?;
        }
    }
    Ok(())
}

/// Where a run's SQLite files live (`FAULTLINE_DISK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    /// In memory, through the simulated disk ([`crate::memdisk`]); plain files stay real.
    #[default]
    Memory,
    /// Real files in the scratch directory, through SQLite's `unix` VFS (about half as
    /// fast; rules the simulated disk out when a failure looks odd).
    Files,
}

impl DiskKind {
    /// Parses `memory` or `files`.
    pub fn parse(text: &str) -> Result<DiskKind, String> {
        match text.trim() {
            "memory" => Ok(DiskKind::Memory),
            "files" => Ok(DiskKind::Files),
            other => Err(format!(
                "FAULTLINE_DISK={other:?} is not valid: expected `memory` or `files`"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_a_byte_for_byte_copy_including_subdirectories() {
        let base =
            std::env::temp_dir().join(format!("faultline-crash-test-{}", std::process::id()));
        let live = base.join("live");
        fs::create_dir_all(live.join("tables")).unwrap();
        fs::write(live.join("manifest.db"), b"manifest bytes").unwrap();
        fs::write(live.join("tables/a.db-wal"), b"wal bytes").unwrap();
        ProcessCrash.capture(&live, &base.join("image")).unwrap();
        assert_eq!(
            fs::read(base.join("image/manifest.db")).unwrap(),
            b"manifest bytes"
        );
        assert_eq!(
            fs::read(base.join("image/tables/a.db-wal")).unwrap(),
            b"wal bytes"
        );
        fs::remove_dir_all(base).unwrap();
    }
}
