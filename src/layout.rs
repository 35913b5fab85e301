//! Where a store keeps its files. A store is a directory:
//!
//! ```text
//! manifest.db          published version of every table, the version chain, owners
//! tables/<name>.db     one SQLite file per dataset: staged and published rows
//! pending/<txid>.json  recovery sidecars of writes between staging and publishing
//! owners/<id>.lock     one per open handle, write-locked while the handle lives
//! scopes.db            scopes, their sources' mirrors and last-fetched times (on first use)
//! ```

use std::path::{Path, PathBuf};

/// The manifest database.
pub fn manifest(store: &Path) -> PathBuf {
    store.join("manifest.db")
}

/// The scopes database (see [`crate::scopes`]).
pub fn scopes(store: &Path) -> PathBuf {
    store.join("scopes.db")
}

/// The directory of table files.
pub fn tables_dir(store: &Path) -> PathBuf {
    store.join("tables")
}

/// A dataset's table file.
pub fn table(store: &Path, dataset: &str) -> PathBuf {
    tables_dir(store).join(format!("{dataset}.db"))
}

/// The directory of recovery sidecars.
pub fn pending_dir(store: &Path) -> PathBuf {
    store.join("pending")
}

/// The directory of owner lock files.
pub fn owners_dir(store: &Path) -> PathBuf {
    store.join("owners")
}

/// An owner's lock file.
pub fn owner_lock(store: &Path, owner: u64) -> PathBuf {
    owners_dir(store).join(format!("{owner}.lock"))
}

/// Whether a dataset name is safe to use as a file name: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_dataset_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a table holds node records (`nodes-<type>`) rather than dataset items.
pub fn is_record_table(name: &str) -> bool {
    name.starts_with("nodes-")
}
