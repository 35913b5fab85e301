//! store-clean, checked by every family that runs the engine: after a completed recovery,
//! the store holds nothing that nobody can name.
//!
//! The check images the store as a crash now would leave it, opens a fresh handle on the
//! image (every other owner is dead there, so its recovery has everything to finish), and
//! reads the image's files and tables directly, not through the engine:
//! * every file is one the layout names (`manifest.db`, `scopes.db`, `tables/<t>.db` for a
//!   table the manifest knows, each with SQLite's `-wal`, `-shm` and `-journal`, and the
//!   checker's own lock file); no sidecar, migration sidecar or dead owner's lock survives;
//! * every row of every table file belongs to a version the manifest's chain publishes (no
//!   staged rows left by a write that never published and was never rolled back);
//! * no lease names a dead owner, and no background migration still says it is running.
//!
//! Does not check the scopes database's rows (delete-vs-fetch's own invariants do), nor
//! space SQLite keeps inside a file (free pages).

use std::collections::{BTreeMap, BTreeSet};

/// The invariant's entry in a family's list.
pub const DOC: faultline_sim::InvariantDoc = faultline_sim::InvariantDoc {
    name: "store-clean",
    checks: "after a completed recovery (a fresh handle on an image of the final store), every file is one the layout names (no sidecar, migration sidecar or dead owner's lock left), every table row belongs to a published version, and no lease or running background migration names a dead owner; does not check the scopes database's rows nor free pages inside a file",
};

/// What the image holds, read directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every file, relative to the store, `/`-separated, sorted (directories left out).
    pub files: Vec<String>,
    /// The tables the manifest knows.
    pub tables: BTreeSet<String>,
    /// Per table, the txids its published chain names.
    pub published: BTreeMap<String, BTreeSet<String>>,
    /// Per table file, the distinct txids of its rows.
    pub rows: BTreeMap<String, BTreeSet<String>>,
    /// Leases: (table, migration, owner).
    pub leases: Vec<(String, String, u64)>,
    /// Background migrations still `running`: (name, owner).
    pub running: Vec<(String, u64)>,
    /// The checking handle's owner id (its lock file is expected).
    pub me: u64,
    /// Txids of rows the scenario planted itself as a legacy store's debris, which the engine
    /// is documented to keep (backfill's orphans).
    pub planted: BTreeSet<String>,
}

const SQLITE_SUFFIXES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

fn is_database(file: &str, name: &str) -> bool {
    SQLITE_SUFFIXES
        .iter()
        .any(|suffix| file == format!("{name}{suffix}"))
}

/// The check over an inventory: `Err` names the first thing left behind.
pub fn check(inventory: &Inventory) -> Result<(), String> {
    for file in &inventory.files {
        let named = is_database(file, "manifest.db")
            || is_database(file, "scopes.db")
            || *file == format!("owners/{}.lock", inventory.me)
            || file.strip_prefix("tables/").is_some_and(|rest| {
                inventory
                    .tables
                    .iter()
                    .any(|table| is_database(rest, &format!("{table}.db")))
            });
        if !named {
            let why = if file.starts_with("pending/") {
                "a write's sidecar survived a completed recovery"
            } else if file.starts_with("migrations/") {
                "a migration's sidecar survived a completed recovery"
            } else if file.starts_with("owners/") {
                "a dead owner's lock file survived a completed recovery"
            } else {
                "no part of the store's layout names it"
            };
            return Err(format!("{file}: {why}"));
        }
    }
    for (table, txids) in &inventory.rows {
        let published = inventory.published.get(table);
        let orphan = txids
            .iter()
            .filter(|txid| !inventory.planted.contains(*txid))
            .find(|txid| published.is_none_or(|p| !p.contains(*txid)));
        if let Some(txid) = orphan {
            return Err(format!(
                "tables/{table}.db holds rows of {txid}, which no published version names \
                 and recovery left behind"
            ));
        }
    }
    if let Some((table, migration, owner)) = inventory.leases.first() {
        return Err(format!(
            "the lease on {table} by migration {migration} of dead owner {owner} survived recovery"
        ));
    }
    if let Some((name, owner)) = inventory.running.first() {
        return Err(format!(
            "background migration {name} still says running for dead owner {owner}"
        ));
    }
    Ok(())
}

#[cfg(madsim)]
pub use gather::check_world;

#[cfg(madsim)]
mod gather {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use faultline_sim::world::World;

    use super::{check, Inventory};

    /// Images the store, opens a fresh handle on the image, and checks store-clean there
    /// (rows of the `planted` txids allowed); records the failure and returns false if it
    /// breaks.
    pub async fn check_world(world: &World, planted: &[&str]) -> bool {
        let image = world.capture_image();
        let engine = match faultline::Engine::open(&image, "store-clean").await {
            Ok((engine, _)) => engine,
            Err(error) => {
                world.fail(
                    "store-clean",
                    format!("the image of the store did not open: {error}"),
                );
                return false;
            }
        };
        let result = inventory(&image, engine.owner()).and_then(|mut inventory| {
            inventory.planted = planted.iter().map(|t| (*t).to_owned()).collect();
            check(&inventory)
        });
        drop(engine);
        match result {
            Ok(()) => true,
            Err(message) => {
                world.fail("store-clean", message);
                false
            }
        }
    }

    fn inventory(store: &Path, me: u64) -> Result<Inventory, String> {
        let mut files = Vec::new();
        walk(store, store, &mut files)?;
        files.sort();
        let manifest = open(&faultline::layout::manifest(store))?;
        let tables: BTreeSet<String> = rows(&manifest, "SELECT name FROM tables", |r| r.get(0))?
            .into_iter()
            .collect();
        let mut inventory = Inventory {
            files,
            me,
            ..Inventory::default()
        };
        let chain = rows(&manifest, "SELECT tbl, txid FROM chain", |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        for (table, txid) in chain {
            inventory.published.entry(table).or_default().insert(txid);
        }
        for table in &tables {
            let path = faultline::layout::table(store, table);
            if !faultline_files::exists(&path) {
                continue;
            }
            let connection = open(&path)?;
            let query = match faultline::layout::is_record_table(table) {
                true => "SELECT DISTINCT txid FROM records WHERE txid IS NOT NULL",
                false => "SELECT DISTINCT txid FROM items",
            };
            let txids = rows(&connection, query, |r| r.get(0))?
                .into_iter()
                .collect();
            inventory.rows.insert(table.clone(), txids);
        }
        inventory.tables = tables;
        let query = "SELECT tbl, migration, owner FROM leases ORDER BY tbl";
        inventory.leases = rows(&manifest, query, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let query = "SELECT name, owner FROM background WHERE status = 'running' ORDER BY name";
        inventory.running = rows(&manifest, query, |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(inventory)
    }

    fn walk(store: &Path, dir: &Path, files: &mut Vec<String>) -> Result<(), String> {
        let entries: Vec<PathBuf> = faultline_files::list(dir)
            .map_err(|e| format!("cannot list {}: {e}", relative(store, dir)))?;
        for entry in entries {
            match faultline_files::list(&entry) {
                Ok(_) => walk(store, &entry, files)?,
                Err(_) => files.push(relative(store, &entry)),
            }
        }
        Ok(())
    }

    fn relative(store: &Path, path: &Path) -> String {
        let rest = path.strip_prefix(store).unwrap_or(path);
        rest.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn open(path: &Path) -> Result<rusqlite::Connection, String> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        rusqlite::Connection::open_with_flags(path, flags).map_err(sql)
    }

    fn sql(error: rusqlite::Error) -> String {
        format!("the harness could not read the image: {error}")
    }

    /// Every row `query` returns, each read by `row`.
    fn rows<T>(
        connection: &rusqlite::Connection,
        query: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, String> {
        let mut statement = connection.prepare(query).map_err(sql)?;
        let rows = statement.query_map([], row).map_err(sql)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Inventory {
        Inventory {
            files: vec![
                "manifest.db".into(),
                "manifest.db-wal".into(),
                "owners/7.lock".into(),
                "tables/a.db".into(),
                "tables/a.db-shm".into(),
            ],
            tables: ["a".to_owned()].into(),
            published: [("a".to_owned(), ["t1".to_owned(), "t2".to_owned()].into())].into(),
            rows: [("a".to_owned(), ["t1".to_owned()].into())].into(),
            me: 7,
            ..Inventory::default()
        }
    }

    #[test]
    fn a_clean_store_passes_and_each_leftover_breaks_it() {
        assert_eq!(check(&clean()), Ok(()));
        let with = |file: &str| {
            let mut inventory = clean();
            inventory.files.push(file.to_owned());
            check(&inventory).unwrap_err()
        };
        assert!(with("pending/o000003-t00000002.json").contains("sidecar survived"));
        assert!(with("migrations/m1.json").contains("migration's sidecar"));
        assert!(with("owners/3.lock").contains("dead owner's lock"));
        assert!(with("tables/b.db").contains("no part of the store's layout"));
        assert!(with("stray.tmp").contains("no part of the store's layout"));
        let mut orphan = clean();
        orphan.rows.get_mut("a").unwrap().insert("t9".into());
        assert!(check(&orphan).unwrap_err().contains("rows of t9"));
        let mut leased = clean();
        leased.leases.push(("a".into(), "m1".into(), 3));
        assert!(check(&leased).unwrap_err().contains("lease on a"));
        let mut running = clean();
        running.running.push(("backfill-a".into(), 3));
        assert!(check(&running).unwrap_err().contains("still says running"));
    }
}
