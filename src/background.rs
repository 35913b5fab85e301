//! Background migrations: long jobs over a store's data (a backfill) that run while the store
//! serves readers and writers, with a status row each in the manifest's `background` table.
//!
//! A migration is `pending` until it first starts, `running` while an attempt runs, then
//! `done`, `failed` (with the error's text) or `canceled`. Each start is a new attempt: it
//! claims the row for this handle and resets the progress to zero (rows processed, rows
//! total, last update), so a retry never shows the numbers of the attempt before it. A
//! migration cannot start while a live handle runs it; a `running` row whose owner died is
//! left as it is until the next start (or the recovery sweep, which marks it failed).
//!
//! Progress is written at most once per `progress_every` of (simulated) time per attempt,
//! so the bookkeeping does not compete with the work for the writer, plus one terminal
//! write that records the final counts with the final status, on success and on failure.
//!
//! Reading the status ([`Engine::background_migrations`]) returns an error when the read
//! fails, never an empty list: a status surface that lies under contention is worse than
//! none.

use std::time::Duration;

use faultline_fp::fp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{EngineError, Result};
use crate::sql::{self, Cached};
use crate::{owner, Engine};

/// Where a background migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Never started.
    Pending,
    /// An attempt is running (or its owner died while it ran).
    Running,
    /// Finished: every row it covers is done.
    Done,
    /// An attempt failed; the error's text is kept.
    Failed,
    /// An attempt was canceled between batches; what it committed stays.
    Canceled,
}

impl Status {
    /// The word stored in the status row.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
        }
    }

    fn parse(text: &str) -> Result<Status> {
        Ok(match text {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "done" => Status::Done,
            "failed" => Status::Failed,
            "canceled" => Status::Canceled,
            other => {
                return Err(EngineError::Corrupt(format!(
                    "background migration status {other:?} is none of pending, running, done, failed, canceled"
                )))
            }
        })
    }

    /// Whether an attempt ended here.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Done | Status::Failed | Status::Canceled)
    }
}

/// A background migration's status row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its name, for example `item-versions:orders`.
    pub name: String,
    /// Where it is.
    pub status: Status,
    /// The handle that ran the latest attempt.
    pub owner: u64,
    /// How many times it was started.
    pub attempt: u64,
    /// The error text of a failed attempt.
    pub error: Option<String>,
    /// Rows this attempt has processed, as last written.
    pub rows_processed: u64,
    /// Rows this attempt covers, as last written (0 until counted).
    pub rows_total: u64,
    /// When the row was last written, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn read_row(connection: &Connection, name: &str) -> rusqlite::Result<Option<Raw>> {
    connection
        .row(
            "SELECT name, status, owner, attempt, error, rows_processed, rows_total, updated_ms
             FROM background WHERE name = ?1",
            [name],
            row_of,
        )
        .optional()
}

type Raw = (String, String, u64, u64, Option<String>, u64, u64, u64);

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn migration_of(raw: Raw) -> Result<Migration> {
    let (name, status, owner, attempt, error, rows_processed, rows_total, updated_ms) = raw;
    Ok(Migration {
        name,
        status: Status::parse(&status)?,
        owner,
        attempt,
        error,
        rows_processed,
        rows_total,
        updated_ms,
    })
}

/// One running attempt of a background migration, held by the handle that started it.
pub(crate) struct Attempt {
    engine: Engine,
    name: String,
    number: u64,
    every: Duration,
    last_write: Option<tokio::time::Instant>,
    /// The counts as last given to [`Attempt::progress`].
    pub(crate) processed: u64,
    pub(crate) total: u64,
}

/// What [`Engine::start_background`] found.
pub(crate) enum Started {
    /// A new attempt, claimed for this handle.
    Attempt(Attempt),
    /// The migration is already done; nothing to run.
    AlreadyDone(Migration),
}

impl Engine {
    /// Every background migration's status row, by name. A failed read is an error.
    pub async fn background_migrations(&self) -> Result<Vec<Migration>> {
        fp!("engine.background.read").await?;
        let mut connection = self.inner.manifest.lock().await;
        let raws = sql::retry_busy(&mut connection, "background.read", |c| {
            let mut statement = c.prepare_cached(
                "SELECT name, status, owner, attempt, error, rows_processed, rows_total, updated_ms
                 FROM background ORDER BY name",
            )?;
            let rows = statement.query_map([], row_of)?;
            rows.collect::<rusqlite::Result<Vec<Raw>>>()
        })
        .await?;
        raws.into_iter().map(migration_of).collect()
    }

    /// One background migration's status row (`None` if it never started). A failed read is
    /// an error.
    pub async fn background_migration(&self, name: &str) -> Result<Option<Migration>> {
        let all = self.background_migrations().await?;
        Ok(all.into_iter().find(|migration| migration.name == name))
    }

    /// Starts a new attempt of `name` for this handle: refused while a live handle runs
    /// it; a done migration is not run again.
    pub(crate) async fn start_background(&self, name: &str, every: Duration) -> Result<Started> {
        let store = self.dir().to_owned();
        let me = self.owner();
        let mut connection =
            sql::begin_write_shared(&self.inner.manifest, "background.start").await?;
        let claimed = match claim(&connection, &store, name, me) {
            Ok(Claimed::Attempt(number)) => fp!("engine.background.start.before_commit")
                .await
                .map(|()| number)
                .map_err(EngineError::from),
            Ok(Claimed::Done(row)) => {
                sql::rollback_quietly(&connection);
                return Ok(Started::AlreadyDone(row));
            }
            Err(error) => Err(error),
        };
        let number = match claimed {
            Ok(number) => number,
            Err(error) => {
                sql::rollback_quietly(&connection);
                return Err(error);
            }
        };
        sql::retry_busy(&mut connection, "background.start.commit", |c| {
            c.control("COMMIT")
        })
        .await?;
        Ok(Started::Attempt(Attempt {
            engine: self.clone(),
            name: name.to_owned(),
            number,
            every,
            last_write: None,
            processed: 0,
            total: 0,
        }))
    }
}

/// What [`claim`] found.
enum Claimed {
    /// The new attempt's number.
    Attempt(u64),
    /// The migration is done: its row.
    Done(Migration),
}

/// Inside a write transaction: claims `name` for owner `me` as a new attempt, unless the
/// migration is done.
fn claim(connection: &Connection, store: &std::path::Path, name: &str, me: u64) -> Result<Claimed> {
    let current = read_row(connection, name)?.map(migration_of).transpose()?;
    let attempt = match current {
        Some(row) if row.status == Status::Done => return Ok(Claimed::Done(row)),
        Some(row) if row.status == Status::Running && row.owner != me && !owner::is_dead(store, row.owner)? => {
            return Err(EngineError::InvalidSetting(format!(
                "background migration {name} is already running (owner {}); start it again once it ends",
                row.owner
            )))
        }
        Some(row) => row.attempt + 1,
        None => 1,
    };
    connection.run(
        "INSERT INTO background(name, status, owner, attempt, error, rows_processed, rows_total, updated_ms)
         VALUES (?1, 'running', ?2, ?3, NULL, 0, 0, ?4)
         ON CONFLICT(name) DO UPDATE SET status = 'running', owner = ?2, attempt = ?3,
             error = NULL, rows_processed = 0, rows_total = 0, updated_ms = ?4",
        params![name, me, attempt, now_ms()],
    )?;
    Ok(Claimed::Attempt(attempt))
}

impl Attempt {
    /// The attempt's number (1 for the first start).
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Records progress; written at most once per `every` (the first call always writes).
    /// A failed write is an error: the caller must not go on as if it had been recorded.
    pub(crate) async fn progress(&mut self, processed: u64, total: u64) -> Result<()> {
        self.processed = processed;
        self.total = total;
        let now = tokio::time::Instant::now();
        if self
            .last_write
            .is_some_and(|last| now.duration_since(last) < self.every)
        {
            return Ok(());
        }
        fp!("engine.background.progress.before_write").await?;
        self.write(None).await?;
        self.last_write = Some(now);
        Ok(())
    }

    /// The terminal write: the final status with the final counts (and the error's text).
    pub(crate) async fn finish(&mut self, status: Status, error: Option<&str>) -> Result<()> {
        fp!("engine.background.finish.before_write").await?;
        self.write(Some((status, error))).await
    }

    async fn write(&mut self, terminal: Option<(Status, Option<&str>)>) -> Result<()> {
        let (name, number, me) = (self.name.clone(), self.number, self.engine.owner());
        let (processed, total) = (self.processed, self.total);
        let manifest = &self.engine.inner.manifest;
        let changed = sql::retry_busy_shared(manifest, "background.write", |c| match terminal {
            None => c.run(
                "UPDATE background SET rows_processed = ?4, rows_total = ?5, updated_ms = ?6
                 WHERE name = ?1 AND attempt = ?2 AND owner = ?3 AND status = 'running'",
                params![name, number, me, processed, total, now_ms()],
            ),
            Some((status, error)) => c.run(
                "UPDATE background SET rows_processed = ?4, rows_total = ?5, updated_ms = ?6,
                     status = ?7, error = ?8
                 WHERE name = ?1 AND attempt = ?2 AND owner = ?3 AND status = 'running'",
                params![
                    name,
                    number,
                    me,
                    processed,
                    total,
                    now_ms(),
                    status.as_str(),
                    error
                ],
            ),
        })
        .await?;
        if changed != 1 {
            return Err(EngineError::Corrupt(format!(
                "background migration {name}: attempt {number}'s status row is gone or no longer this handle's"
            )));
        }
        Ok(())
    }
}

/// For the recovery sweep: marks failed every running migration whose owner is dead (its
/// attempt will never write a terminal status). Returns how many.
pub(crate) async fn fail_orphaned(engine: &Engine) -> Result<u32> {
    let store = engine.dir().to_owned();
    let mut connection = engine.inner.manifest.lock().await;
    let running: Vec<(String, u64, u64)> = sql::retry_busy(&mut connection, "background.orphans", |c| {
        let mut statement =
            c.prepare_cached("SELECT name, owner, attempt FROM background WHERE status = 'running' ORDER BY name")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    })
    .await?;
    let mut failed = 0;
    for (name, dead, attempt) in running {
        if dead == engine.owner() || !owner::is_dead(&store, dead)? {
            continue;
        }
        let error = format!("interrupted: owner {dead} died during attempt {attempt}");
        failed += sql::retry_busy(&mut connection, "background.orphans.fail", |c| {
            c.run(
                "UPDATE background SET status = 'failed', error = ?3, updated_ms = ?4
                 WHERE name = ?1 AND attempt = ?2 AND status = 'running'",
                params![name, attempt, error, now_ms()],
            )
        })
        .await? as u32;
    }
    Ok(failed)
}
