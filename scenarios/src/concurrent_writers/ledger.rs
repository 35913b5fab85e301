//! What the workload did: every planned append and how it ended, as the writers saw it.

use std::collections::BTreeMap;

/// How one planned append ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not started yet.
    Planned,
    /// Its writer is inside the engine call.
    InFlight,
    /// The writer crashed during the call: it may or may not have published.
    InDoubt,
    /// The engine acknowledged it: published at this version with this many items.
    Acked {
        /// The version the receipt names.
        version: u64,
        /// The items the receipt says were appended.
        appended: u64,
    },
    /// The engine returned an error (after any conflict retries).
    Failed(String),
}

/// One planned append and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The dataset.
    pub dataset: String,
    /// The item keys it carries.
    pub keys: Vec<String>,
    /// Its items' payload draw ([`super::plan::Plan::payload`]).
    pub payload: u64,
    /// How it ended.
    pub status: Status,
    /// Conflicts it retried through.
    pub conflicts: u32,
}

/// Every append of the run, by `(writer, op)`, plus each writer's progress.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The appends, keyed by `(writer, op index)` (ordered, deterministic).
    pub records: BTreeMap<(usize, usize), Record>,
    /// The next operation each writer runs.
    pub next_op: Vec<usize>,
    /// Whether each writer finished its plan.
    pub writer_done: Vec<bool>,
    /// Read rounds the reader completed.
    pub reads_done: usize,
    /// Errors the engine returned that no injected fault explains (appends and reads), in
    /// the order they happened: `(who, error)`.
    pub unexplained: Vec<(String, String)>,
}

impl Ledger {
    /// Keys of acknowledged appends, by dataset.
    pub fn acked_keys(&self) -> BTreeMap<&str, Vec<&str>> {
        self.keys_where(|s| matches!(s, Status::Acked { .. }))
    }

    /// Keys of appends that returned an error, by dataset.
    pub fn failed_keys(&self) -> BTreeMap<&str, Vec<&str>> {
        self.keys_where(|s| matches!(s, Status::Failed(_)))
    }

    fn keys_where(&self, keep: impl Fn(&Status) -> bool) -> BTreeMap<&str, Vec<&str>> {
        let mut keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for record in self.records.values().filter(|r| keep(&r.status)) {
            keys.entry(&record.dataset)
                .or_default()
                .extend(record.keys.iter().map(String::as_str));
        }
        keys
    }
}
