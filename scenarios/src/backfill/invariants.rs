//! The backfill invariants: pure functions over the [`History`] a run recorded, each saying
//! what it checks and what it does not, each made to fail by a unit test below. Times are
//! simulated nanoseconds on the trace's clock.

use std::collections::BTreeMap;

use faultline_sim::InvariantDoc;

/// Every invariant of the family, as `cargo sim list` shows them.
pub const DOCS: &[InvariantDoc] = &[
    InvariantDoc { name: "open-succeeds", checks: "every handle opens the store, after any crash; does not check what it then reads" },
    InvariantDoc { name: "reader-wait-bounded", checks: "every read issued on the backfilling handle while an attempt runs completes within W = Y + 3 B + 5 ms (plus the pauses of any preemption a strategy made while it waited), Y the yield, B = sync + (b x row / 4 KiB + 2) x (read + write) the most one batch of b rows costs under the run's I/O model; does not check reads on other handles (WAL readers never wait for the writer) nor reads a crash cut short" },
    InvariantDoc { name: "done-means-done", checks: "once the status is done, every row of a published txid has the version that published it (backfilled up to the snapshot, stamped by its writer or by recovery after it) and no orphan row has one; checked on the final store" },
    InvariantDoc { name: "cancel-is-partial", checks: "an attempt asked to stop that reports done left none of its rows without a version; one that reports canceled has a canceled status row, never done; the run ends done (the retry completes the rest); does not check how soon a cancel takes effect" },
    InvariantDoc { name: "errors-propagate", checks: "an attempt during which an error was injected in the backfill or its bookkeeping returns that error, and its status row never says done (failed with the error's text, or still running when the terminal write itself failed)" },
    InvariantDoc { name: "progress-honest", checks: "rows processed never exceeds rows total, never goes back within an attempt, and the total never changes once counted; an attempt's terminal row holds the counts it reported; a retry starts from zero; a status read never returns no row once one was written" },
    InvariantDoc { name: "liveness:backfill-terminates", checks: "every attempt ends within 5 s, and the backfill is done within the liveness bound after healing, with writers inserting and orphans present" },
    crate::store_clean::DOC,
];

/// A read issued on the backfilling handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// When it was issued.
    pub at: u64,
    /// When it completed.
    pub done: u64,
}

/// How one attempt's call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It returned a report.
    Report {
        /// `done` or `canceled`.
        status: String,
        /// The attempt's number.
        attempt: u64,
        /// Rows it reported processed.
        processed: u64,
        /// Rows it reported eligible.
        total: u64,
    },
    /// It returned an error (its text).
    Error(String),
}

/// One call of the backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it was called.
    pub started: u64,
    /// When and how it returned (`None`: a crash ended it).
    pub ended: Option<(u64, Ended)>,
    /// When a cancel was requested during it, if one was.
    pub canceled_at: Option<u64>,
    /// For an attempt that reported done: rows it should have covered (at or below the
    /// largest row when it was called, of a txid published then) still without a version
    /// when it returned.
    pub left_at_done: Option<u64>,
}

/// A status row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its status word.
    pub status: String,
    /// Its attempt number.
    pub attempt: u64,
    /// Rows processed.
    pub processed: u64,
    /// Rows total.
    pub total: u64,
    /// The error text.
    pub error: Option<String>,
}

/// One read of the status row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When it returned.
    pub at: u64,
    /// What it returned: the row, no row, or the read's error.
    pub row: Result<Option<Row>, String>,
}

/// The store at the end, read by a fresh handle after every node stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalStore {
    /// Every row: (row number, txid, version).
    pub rows: Vec<(i64, String, Option<u64>)>,
    /// The published txids and their versions.
    pub chain: BTreeMap<String, u64>,
    /// The status row.
    pub status: Option<Row>,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Reads on the backfilling handle.
    pub reads: Vec<Read>,
    /// Calls of the backfill, in order.
    pub attempts: Vec<Attempt>,
    /// Reads of the status row, in order.
    pub observations: Vec<Observation>,
    /// Times of errors injected in the backfill and its bookkeeping on the backfilling node.
    pub injections: Vec<u64>,
    /// Statement boundaries the run's strategy preempted, any node: (when, for how long).
    pub preemptions: Vec<(u64, u64)>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// reader-wait-bounded: every read issued during an attempt that completed waited at most
/// `bound` (W = Y + 3 B + 5 ms; see [`DOCS`]), plus the part of every preemption's pause
/// that overlaps its wait (a lock holder preempted between two statements delays every reader
/// behind it by that long, whatever the engine does). Does not check reads issued between
/// attempts.
pub fn reader_wait_bounded(history: &History, bound: u64) -> Result<(), String> {
    for attempt in &history.attempts {
        let end = attempt.ended.as_ref().map_or(u64::MAX, |(at, _)| *at);
        for read in &history.reads {
            if read.at < attempt.started || read.at > end {
                continue;
            }
            let waited = read.done - read.at;
            // A preemption counts for the part of its pause that overlaps the wait: one
            // that began before the read was issued still holds it back until it ends.
            let held_back: u64 = history
                .preemptions
                .iter()
                .map(|(at, pause)| {
                    let (from, to) = ((*at).max(read.at), (at + pause).min(read.done));
                    to.saturating_sub(from)
                })
                .sum();
            if waited > bound + held_back {
                return Err(format!(
                    "a read issued at {:.3}ms during the backfill waited {:.3}ms (bound {:.3}ms)",
                    ms(read.at),
                    ms(waited),
                    ms(bound)
                ));
            }
        }
    }
    Ok(())
}

/// done-means-done over the final store: if the status is done, every row of a published
/// txid carries that txid's version and no other row has one. Does not check a store whose
/// backfill is not done (that is liveness's business).
pub fn done_means_done(store: &FinalStore) -> Result<(), String> {
    if store.status.as_ref().map(|r| r.status.as_str()) != Some("done") {
        return Ok(());
    }
    for (seq, txid, version) in &store.rows {
        let expected = store.chain.get(txid).copied();
        if *version != expected {
            return Err(format!(
                "the backfill is done but row {seq} (txid {txid}) has version {version:?}, expected {expected:?}"
            ));
        }
    }
    Ok(())
}

/// cancel-is-partial: an attempt that was asked to stop and reported done left none of its
/// rows behind (a cancel that came after its last batch may end in done); an attempt that
/// reported canceled has a canceled status row, never done; a run with a canceled attempt
/// ends done (the retry completes the rest). Does not check that the retry skips the
/// committed batches (done-means-done and progress-honest see what it did).
pub fn cancel_is_partial(history: &History, final_row: Option<&Row>) -> Result<(), String> {
    let mut canceled_any = false;
    for attempt in &history.attempts {
        let Some((
            _,
            Ended::Report {
                status,
                attempt: number,
                ..
            },
        )) = &attempt.ended
        else {
            continue;
        };
        if let (Some(at), Some(left)) = (attempt.canceled_at, attempt.left_at_done) {
            if left > 0 {
                return Err(format!(
                    "attempt {number} was canceled at {:.3}ms and reported done with {left} of its rows still to do",
                    ms(at)
                ));
            }
        }
        if status == "canceled" {
            canceled_any = true;
            let row = rows_of(history, *number).last().cloned();
            if let Some(row) = row.filter(|r| r.status != "running") {
                if row.status != "canceled" {
                    return Err(format!(
                        "attempt {number} reported canceled but its status row says {}",
                        row.status
                    ));
                }
            }
        }
    }
    if canceled_any && final_row.map(|r| r.status.as_str()) != Some("done") {
        return Err(format!(
            "a canceled backfill was retried but the final status is {:?}, not done",
            final_row.map(|r| r.status.clone())
        ));
    }
    Ok(())
}

fn rows_of(history: &History, attempt: u64) -> Vec<&Row> {
    history
        .observations
        .iter()
        .filter_map(|o| o.row.as_ref().ok()?.as_ref())
        .filter(|r| r.attempt == attempt)
        .collect()
}

/// errors-propagate: every attempt with an injected error inside its window returned an
/// error, and no status row of that attempt says done; one whose terminal row was written
/// says failed with a non-empty error text. Does not check errors outside the backfill.
pub fn errors_propagate(history: &History) -> Result<(), String> {
    for (index, attempt) in history.attempts.iter().enumerate() {
        let Some((ended, how)) = &attempt.ended else {
            continue;
        };
        let next = history
            .attempts
            .get(index + 1)
            .map_or(u64::MAX, |a| a.started);
        let Some(injected) = history
            .injections
            .iter()
            .find(|at| **at >= attempt.started && **at <= *ended && **at < next)
        else {
            continue;
        };
        if let Ended::Report {
            status,
            attempt: number,
            ..
        } = how
        {
            return Err(format!(
                "attempt {} had an error injected at {:.3}ms yet reported {status} (attempt {number})",
                index + 1,
                ms(*injected)
            ));
        }
        for observation in &history.observations {
            let Ok(Some(row)) = &observation.row else {
                continue;
            };
            if observation.at < *ended || observation.at > next {
                continue;
            }
            if row.status == "done" {
                return Err(format!(
                    "an attempt failed with an injected error at {:.3}ms but the status row says done",
                    ms(*injected)
                ));
            }
            if row.status == "failed" && row.error.as_deref().is_none_or(str::is_empty) {
                return Err("a failed attempt's status row has no error text".to_owned());
            }
        }
    }
    Ok(())
}

/// progress-honest over every status read and every report. Does not check how often the
/// progress is written.
pub fn progress_honest(history: &History) -> Result<(), String> {
    let mut seen_row = false;
    let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for observation in &history.observations {
        let row = match &observation.row {
            Err(_) => continue,
            Ok(None) if seen_row => {
                return Err(format!(
                    "a status read at {:.3}ms returned no row after one was written",
                    ms(observation.at)
                ))
            }
            Ok(None) => continue,
            Ok(Some(row)) => row,
        };
        seen_row = true;
        if row.total > 0 && row.processed > row.total {
            return Err(format!(
                "attempt {} shows {} rows processed of {} total",
                row.attempt, row.processed, row.total
            ));
        }
        if let Some((processed, total)) = last.get(&row.attempt) {
            if row.processed < *processed {
                return Err(format!(
                    "attempt {}'s rows processed went back from {processed} to {}",
                    row.attempt, row.processed
                ));
            }
            if *total > 0 && row.total != *total {
                return Err(format!(
                    "attempt {}'s rows total changed from {total} to {} (a retry that kept an earlier attempt's numbers?)",
                    row.attempt, row.total
                ));
            }
        }
        last.insert(row.attempt, (row.processed, row.total));
    }
    for attempt in &history.attempts {
        let Some((
            _,
            Ended::Report {
                status,
                attempt: number,
                processed,
                total,
            },
        )) = &attempt.ended
        else {
            continue;
        };
        let rows = rows_of(history, *number);
        if let Some(first) = rows.first() {
            if first.total != 0 && first.total != *total {
                return Err(format!(
                    "attempt {number} reported {total} rows total but its first status row showed {}",
                    first.total
                ));
            }
        }
        let Some(terminal) = rows.iter().find(|r| r.status == *status) else {
            continue;
        };
        if (terminal.processed, terminal.total) != (*processed, *total) {
            return Err(format!(
                "attempt {number} ended {status} having processed {processed} of {total} rows, but its terminal status row says {} of {}",
                terminal.processed, terminal.total
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, attempt: u64, processed: u64, total: u64) -> Row {
        Row {
            status: status.to_owned(),
            attempt,
            processed,
            total,
            error: (status == "failed").then(|| "boom".to_owned()),
        }
    }

    fn seen(at: u64, row: Row) -> Observation {
        Observation {
            at,
            row: Ok(Some(row)),
        }
    }

    fn report(status: &str, attempt: u64, processed: u64, total: u64) -> Ended {
        Ended::Report {
            status: status.to_owned(),
            attempt,
            processed,
            total,
        }
    }

    fn attempt(started: u64, ended: u64, how: Ended) -> Attempt {
        Attempt {
            started,
            ended: Some((ended, how)),
            canceled_at: None,
            left_at_done: None,
        }
    }

    #[test]
    fn a_single_statement_backfill_breaks_reader_wait_bounded() {
        let mut history = History {
            attempts: vec![attempt(0, 100, report("done", 1, 10, 10))],
            reads: vec![Read { at: 10, done: 12 }],
            ..History::default()
        };
        assert!(reader_wait_bounded(&history, 5).is_ok());
        history.reads.push(Read { at: 20, done: 90 });
        assert!(reader_wait_bounded(&history, 5)
            .unwrap_err()
            .contains("waited"));
    }

    #[test]
    fn a_row_left_behind_breaks_done_means_done() {
        let mut store = FinalStore {
            rows: vec![(1, "a".into(), Some(1)), (2, "orphan".into(), None)],
            chain: BTreeMap::from([("a".to_owned(), 1)]),
            status: Some(row("done", 1, 1, 1)),
        };
        assert!(done_means_done(&store).is_ok());
        store.rows.push((3, "a".into(), None));
        assert!(done_means_done(&store).unwrap_err().contains("row 3"));
        store.rows.pop();
        store.rows[1].2 = Some(1);
        assert!(done_means_done(&store).is_err(), "an orphan with a version");
    }

    #[test]
    fn a_cancel_reported_as_done_breaks_cancel_is_partial() {
        let done = row("done", 2, 5, 5);
        let mut history = History {
            attempts: vec![Attempt {
                started: 0,
                ended: Some((100, report("canceled", 1, 3, 8))),
                canceled_at: Some(50),
                left_at_done: None,
            }],
            observations: vec![seen(101, row("canceled", 1, 3, 8))],
            ..History::default()
        };
        assert!(cancel_is_partial(&history, Some(&done)).is_ok());
        assert!(cancel_is_partial(&history, Some(&row("failed", 2, 0, 5))).is_err());
        history.attempts[0].ended = Some((100, report("done", 1, 3, 8)));
        history.attempts[0].left_at_done = Some(5);
        assert!(cancel_is_partial(&history, Some(&done))
            .unwrap_err()
            .contains("reported done with 5"));
        history.attempts[0].left_at_done = Some(0);
        assert!(
            cancel_is_partial(&history, Some(&done)).is_ok(),
            "the cancel came after the last batch"
        );
        history.attempts[0].ended = Some((100, report("canceled", 1, 3, 8)));
        history.observations = vec![seen(101, row("done", 1, 3, 8))];
        assert!(cancel_is_partial(&history, Some(&done)).is_err());
    }

    #[test]
    fn a_swallowed_error_breaks_errors_propagate() {
        let mut history = History {
            attempts: vec![attempt(0, 100, Ended::Error("injected".into()))],
            injections: vec![50],
            observations: vec![seen(101, row("failed", 1, 3, 8))],
            ..History::default()
        };
        assert!(errors_propagate(&history).is_ok());
        history.observations = vec![seen(101, row("done", 1, 3, 8))];
        assert!(errors_propagate(&history)
            .unwrap_err()
            .contains("says done"));
        history.attempts[0].ended = Some((100, report("done", 1, 8, 8)));
        assert!(errors_propagate(&history)
            .unwrap_err()
            .contains("reported done"));
    }

    #[test]
    fn dishonest_progress_breaks_progress_honest() {
        let honest = History {
            attempts: vec![attempt(0, 100, report("done", 1, 8, 8))],
            observations: vec![
                seen(10, row("running", 1, 0, 8)),
                seen(50, row("running", 1, 5, 8)),
                seen(101, row("done", 1, 8, 8)),
            ],
            ..History::default()
        };
        assert!(progress_honest(&honest).is_ok());
        let mut stale = honest.clone();
        stale.observations[2] = seen(101, row("done", 1, 5, 8));
        assert!(progress_honest(&stale).unwrap_err().contains("terminal"));
        let mut back = honest.clone();
        back.observations[1] = seen(50, row("running", 1, 9, 8));
        assert!(progress_honest(&back).unwrap_err().contains("of 8 total"));
        let mut kept = honest.clone();
        kept.observations[0] = seen(10, row("running", 1, 0, 12));
        assert!(
            progress_honest(&kept).is_err(),
            "a retry with the last attempt's total"
        );
        let mut vanished = honest;
        vanished.observations.push(Observation {
            at: 120,
            row: Ok(None),
        });
        assert!(progress_honest(&vanished).unwrap_err().contains("no row"));
    }
}
