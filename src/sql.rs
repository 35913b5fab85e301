//! Opening SQLite files and running write transactions without blocking the thread.
//!
//! Every connection uses `busy_timeout(0)`: a locked file returns `SQLITE_BUSY` at once and
//! the caller retries after an async sleep, so that under a simulator the lock holder gets to
//! run (a blocking busy timeout would stall the only thread). Each retry is noted in the trace.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Params, Row};

use crate::error::{EngineError, Result};

/// How many times a locked operation is tried before it fails with [`EngineError::Busy`].
pub const BUSY_ATTEMPTS: u32 = 400;

/// Statements a connection keeps prepared (more than the engine's distinct statements on
/// any one file, so that none is ever parsed twice on one connection).
const STATEMENT_CACHE: usize = 64;

/// Opens (creating if needed) a SQLite file in WAL mode with a zero busy timeout.
pub fn open(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::ZERO)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// `execute` and `query_row` through the connection's statement cache: the engine runs the
/// same few statements over and over, and parsing them each time was a third of the
/// engine's CPU time under the simulator. Transaction control (`BEGIN IMMEDIATE`,
/// `COMMIT`, `ROLLBACK`) goes through it too.
pub trait Cached {
    /// Runs one statement; returns the number of rows it changed.
    fn run<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// Runs a parameterless statement such as `BEGIN IMMEDIATE`, `COMMIT` or `ROLLBACK`.
    fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.run(sql, []).map(drop)
    }
    /// Runs a query and maps its first row (`QueryReturnedNoRows` if there is none).
    fn row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, map)
    }
}

/// Applies the per-connection durability setting (full sync on commit).
pub fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.pragma_update(None, "synchronous", "FULL")
}

/// Creates a file's schema once: if its `user_version` is not `version`, switches it to WAL
/// (a setting the file keeps) and runs `schema` in one transaction, then stamps the version.
/// Opening an existing file costs one pragma read, not a parse of every `CREATE`.
/// A file stamped with a version that `upgrades` lists gets that upgrade script instead
/// (in one transaction, with the new stamp).
pub async fn ensure_schema(
    connection: &mut Connection,
    name: &'static str,
    schema: &str,
    version: u32,
    upgrades: &[(u32, &str)],
) -> Result<()> {
    retry_busy(connection, name, configure).await?;
    let current: u32 = retry_busy(connection, name, |c| {
        c.pragma_query_value(None, "user_version", |r| r.get(0))
    })
    .await?;
    if current == version {
        return Ok(());
    }
    if let Some((from, upgrade)) = upgrades.iter().find(|(from, _)| *from == current) {
        // Another handle may upgrade the file first: the version is read again under the
        // write lock, and the upgrade runs only if it still applies.
        let script = format!("{upgrade} PRAGMA user_version = {version};");
        return retry_busy(connection, name, |c| {
            c.control("BEGIN IMMEDIATE")?;
            let outcome = c
                .pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0))
                .and_then(|now| match now == *from {
                    true => c.execute_batch(&script),
                    false => Ok(()),
                })
                .and_then(|()| c.control("COMMIT"));
            if outcome.is_err() {
                rollback_quietly(c);
            }
            outcome
        })
        .await;
    }
    retry_busy(connection, name, |c| {
        c.pragma_update(None, "journal_mode", "WAL")
    })
    .await?;
    let script = format!("BEGIN IMMEDIATE; {schema} PRAGMA user_version = {version}; COMMIT;");
    let result = retry_busy(connection, name, |c| {
        let outcome = c.execute_batch(&script);
        if outcome.is_err() {
            rollback_quietly(c);
        }
        outcome
    })
    .await;
    result
}

/// Whether an error is a lock conflict worth retrying.
pub fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

/// The pause before retry number `attempt` (1-based): 1, 2, 4 then 8 ms, in (simulated) time.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(1 << attempt.saturating_sub(1).min(3))
}

/// Runs `operation` until it stops returning a busy error, sleeping between attempts.
///
/// Takes the connection by `&mut` so that the future stays `Send` (a `Connection` is `Send`
/// but not `Sync`); the operation borrows it only between awaits.
pub async fn retry_busy<T>(
    connection: &mut Connection,
    name: &'static str,
    mut operation: impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    for attempt in 1..=BUSY_ATTEMPTS {
        let outcome = operation(connection);
        faultline_fp::settle().await;
        match outcome {
            Err(error) if is_busy(&error) => pause_after_busy(name, attempt).await,
            other => return other.map_err(EngineError::from),
        }
    }
    Err(exhausted(name))
}

/// Starts a write transaction (`BEGIN IMMEDIATE`), retrying while another handle writes.
pub async fn begin_write(connection: &mut Connection, name: &'static str) -> Result<()> {
    retry_busy(connection, name, |c| c.control("BEGIN IMMEDIATE")).await
}

/// [`retry_busy`] on a connection other tasks share: the connection is taken for each
/// attempt and let go during the pause after a busy one, so that waiting for another
/// handle's write never holds up this handle's other users.
pub async fn retry_busy_shared<T>(
    connection: &tokio::sync::Mutex<Connection>,
    name: &'static str,
    operation: impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let (value, _released) = retry_locked(connection, name, operation).await?;
    Ok(value)
}

/// Starts a write transaction on a connection that other tasks share, letting go of it
/// while it waits for another handle's write to end: a long wait for SQLite's write lock
/// then never holds up this handle's readers. Returns the connection, its transaction open.
pub async fn begin_write_shared<'a>(
    connection: &'a tokio::sync::Mutex<Connection>,
    name: &'static str,
) -> Result<tokio::sync::MutexGuard<'a, Connection>> {
    let ((), guard) = retry_locked(connection, name, |c| c.control("BEGIN IMMEDIATE")).await?;
    Ok(guard)
}

/// The retry loop of the shared forms: the operation's value, the connection still held.
async fn retry_locked<'a, T>(
    connection: &'a tokio::sync::Mutex<Connection>,
    name: &'static str,
    mut operation: impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<(T, tokio::sync::MutexGuard<'a, Connection>)> {
    for attempt in 1..=BUSY_ATTEMPTS {
        let guard = connection.lock().await;
        let outcome = operation(&guard);
        faultline_fp::settle().await;
        match outcome {
            Ok(value) => return Ok((value, guard)),
            Err(error) if is_busy(&error) => {
                drop(guard);
                pause_after_busy(name, attempt).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(exhausted(name))
}

/// After busy attempt number `attempt`: notes it and sleeps its backoff.
async fn pause_after_busy(name: &'static str, attempt: u32) {
    faultline_fp::note("sqlite.busy", &name);
    tokio::time::sleep(backoff(attempt)).await;
}

fn exhausted(name: &'static str) -> EngineError {
    EngineError::Busy {
        operation: name,
        attempts: BUSY_ATTEMPTS,
    }
}

/// Rolls back an open transaction if there is one; errors are ignored (nothing to undo).
pub fn rollback_quietly(connection: &Connection) {
    if !connection.is_autocommit() {
        let _ = connection.control("ROLLBACK");
    }
}

/// Seeds SQLite's process-wide PRNG so that anything it randomises is reproducible.
pub fn seed_prng(seed: u64) {
    const SQLITE_TESTCTRL_PRNG_SEED: std::os::raw::c_int = 28;
    let folded = (seed ^ (seed >> 32)) as std::os::raw::c_int;
    // SAFETY: PRNG_SEED takes an int and a null database pointer; it only touches the PRNG.
    unsafe {
        rusqlite::ffi::sqlite3_test_control(
            SQLITE_TESTCTRL_PRNG_SEED,
            folded,
            std::ptr::null_mut::<rusqlite::ffi::sqlite3>(),
        );
    }
}
