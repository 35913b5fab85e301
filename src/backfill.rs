//! The item-version backfill: a chunked background migration that gives every row a
//! version 1 table file holds its `version` (the published version whose write added it),
//! without holding the writer for longer than one short batch.
//!
//! One attempt:
//! 1. snapshots the dataset's chain (the published txids and their versions) and the
//!    largest row number: rows added later are the writers' job ([`crate::table::stamp`]
//!    after each publish, or recovery's roll-forward), never the backfill's, so the loop
//!    cannot chase a stream of inserts;
//! 2. counts the eligible rows, a batch's worth of row numbers per statement: no version yet, at or below the snapshot's largest row, and
//!    staged by a txid the snapshot publishes. Rows of a txid that is not published (an
//!    orphan: a write that never won its publish) can never get a version and are skipped,
//!    so the loop ends;
//! 3. updates at most `batch_size` eligible rows per write transaction, then sleeps `yield`
//!    with no lock held, so readers and writers get in between batches; while it waits for
//!    another handle's write it does not hold its handle's connection either;
//! 4. stops between batches once canceled (what it committed stays; the status says
//!    canceled, never done) and propagates every error (the status says failed, with the
//!    error's text, never done).
//!
//! Rows already stamped are never selected again, so a retry after a crash or a failure
//! resumes where the batches stopped and changes no row twice. Progress goes through
//! [`crate::background`]: rate-limited writes and a terminal write with the final counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline_fp::fp;
use rusqlite::params;

use crate::background::{Started, Status};
use crate::error::{EngineError, Result};
use crate::sql::{self, Cached};
use crate::Engine;

/// Largest batch accepted.
pub const MAX_BATCH: i64 = 10_000_000;
/// Longest yield accepted, in milliseconds.
pub const MAX_YIELD_MS: i64 = 60_000;

/// How a backfill runs. Signed, as settings arrive from configuration: a batch size below 1
/// and a negative yield are refused, never taken as a sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillSettings {
    /// Rows per batch: 1 to [`MAX_BATCH`].
    pub batch_size: i64,
    /// Pause between batches with no lock held, in milliseconds: 0 to [`MAX_YIELD_MS`] (0
    /// still yields to the scheduler once).
    pub yield_ms: i64,
    /// Least time between two progress writes (the terminal write is always made).
    pub progress_every: Duration,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings {
            batch_size: 5000,
            yield_ms: 100,
            progress_every: Duration::from_secs(1),
        }
    }
}

impl BackfillSettings {
    fn validate(&self) -> Result<(i64, Duration)> {
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return Err(EngineError::InvalidSetting(format!(
                "backfill batch size {} is not accepted: 1 to {MAX_BATCH} rows",
                self.batch_size
            )));
        }
        if !(0..=MAX_YIELD_MS).contains(&self.yield_ms) {
            return Err(EngineError::InvalidSetting(format!(
                "backfill yield of {} ms is not accepted: 0 to {MAX_YIELD_MS} ms",
                self.yield_ms
            )));
        }
        Ok((self.batch_size, Duration::from_millis(self.yield_ms as u64)))
    }
}

/// Asks a running backfill to stop at its next batch boundary. Clones share the request.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Requests the stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How an attempt ended (an attempt that failed returns the error instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillReport {
    /// [`Status::Done`] or [`Status::Canceled`].
    pub status: Status,
    /// The attempt's number (the stored one, if the backfill was already done).
    pub attempt: u64,
    /// Rows this attempt updated.
    pub processed: u64,
    /// Rows it found eligible.
    pub total: u64,
}

/// The background migration's name for `dataset`.
pub fn migration_name(dataset: &str) -> String {
    format!("item-versions:{dataset}")
}

enum Ended {
    Finished,
    Canceled,
}

impl Engine {
    /// Runs (or resumes) the item-version backfill of `dataset`; see the module docs.
    /// Refused while another live handle runs it; a done backfill returns its stored report.
    pub async fn backfill_versions(
        &self,
        dataset: &str,
        settings: &BackfillSettings,
        cancel: &Cancel,
    ) -> Result<BackfillReport> {
        let (batch, pause) = settings.validate()?;
        self.head(dataset).await?;
        let name = migration_name(dataset);
        let mut attempt = match self
            .start_background(&name, settings.progress_every)
            .await?
        {
            Started::AlreadyDone(row) => {
                return Ok(BackfillReport {
                    status: Status::Done,
                    attempt: row.attempt,
                    processed: row.rows_processed,
                    total: row.rows_total,
                })
            }
            Started::Attempt(attempt) => attempt,
        };
        let ended = self
            .run_backfill(dataset, batch, pause, cancel, &mut attempt)
            .await;
        let status = match &ended {
            Ok(Ended::Finished) => Status::Done,
            Ok(Ended::Canceled) => Status::Canceled,
            Err(_) => Status::Failed,
        };
        let error = ended.as_ref().err().map(ToString::to_string);
        let recorded = attempt.finish(status, error.as_deref()).await;
        ended?;
        recorded?;
        Ok(BackfillReport {
            status,
            attempt: attempt.number(),
            processed: attempt.processed,
            total: attempt.total,
        })
    }

    async fn run_backfill(
        &self,
        dataset: &str,
        batch: i64,
        pause: Duration,
        cancel: &Cancel,
        attempt: &mut crate::background::Attempt,
    ) -> Result<Ended> {
        let chain = self.versions(dataset).await?;
        let published: serde_json::Map<String, serde_json::Value> = chain
            .iter()
            .map(|link| (link.txid.clone(), link.version.into()))
            .collect();
        let published = serde_json::Value::Object(published).to_string();
        fp!("engine.backfill.after_snapshot").await?;
        let table = self.table(dataset).await?;
        let last_row: i64 = sql::retry_busy_shared(&table, "backfill.snapshot", |c| {
            c.row("SELECT COALESCE(MAX(seq), 0) FROM items", [], |r| r.get(0))
        })
        .await?;
        // Counted a batch's worth of row numbers at a time, letting go of the connection in
        // between: one count over the whole table would hold it as long as the work itself.
        let mut total = 0;
        let mut from = 0;
        while from < last_row {
            let to = from.saturating_add(batch).min(last_row);
            total += sql::retry_busy_shared(&table, "backfill.count", |c| {
                c.row(
                    "SELECT COUNT(*) FROM items WHERE seq > ?1 AND seq <= ?2 AND version IS NULL
                     AND txid IN (SELECT key FROM json_each(?3))",
                    params![from, to, published],
                    |r| r.get::<_, u64>(0),
                )
            })
            .await?;
            from = to;
            tokio::task::yield_now().await;
        }
        fp!("engine.backfill.after_count").await?;
        let mut processed = 0;
        attempt.progress(processed, total).await?;
        loop {
            if cancel.is_canceled() {
                return Ok(Ended::Canceled);
            }
            let updated = {
                let mut connection = sql::begin_write_shared(&table, "backfill.batch").await?;
                let result = backfill_batch(&mut connection, &published, last_row, batch).await;
                if result.is_err() {
                    sql::rollback_quietly(&connection);
                }
                result?
            };
            if updated == 0 {
                return Ok(Ended::Finished);
            }
            processed += updated;
            attempt.progress(processed, total).await?;
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Inside a write transaction: stamps at most `batch` eligible rows and commits.
async fn backfill_batch(
    connection: &mut rusqlite::Connection,
    published: &str,
    last_row: i64,
    batch: i64,
) -> Result<u64> {
    let updated = connection.run(
        "UPDATE items SET version = (SELECT value FROM json_each(?1) WHERE key = items.txid)
         WHERE seq IN (SELECT seq FROM items WHERE version IS NULL AND seq <= ?2
                       AND txid IN (SELECT key FROM json_each(?1)) ORDER BY seq LIMIT ?3)",
        params![published, last_row, batch],
    )?;
    fp!("engine.backfill.batch.before_commit").await?;
    sql::retry_busy(connection, "backfill.batch.commit", |c| c.control("COMMIT")).await?;
    Ok(updated as u64)
}
