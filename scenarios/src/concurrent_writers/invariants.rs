//! The named invariants of concurrent-writers. Each is a pure function over what the writers
//! recorded ([`Ledger`]) and what the store shows ([`Observed`]), so each can be tested on
//! hand-made inputs and shown to fail.

use std::collections::{BTreeMap, BTreeSet};

use faultline::Link;
use faultline_sim::InvariantDoc;

use super::ledger::{Ledger, Status};

/// The invariants, in the order they are checked.
pub const DOCS: &[InvariantDoc] = &[
    InvariantDoc {
        name: "no-silent-drop",
        checks: "every append ended acknowledged (for all its items) or with an error, unless its writer crashed during it; not whether acked items are stored",
    },
    InvariantDoc {
        name: "errors-are-faults",
        checks: "every error an open, an append or a read returned is an injected fault (conflicts are retried, and a writer that keeps losing races counts as an error); not errors that a crash hides",
    },
    InvariantDoc {
        name: "linear-chain",
        checks: "each dataset's versions are 1..n, each extending the one before, each from a distinct write; not the items inside",
    },
    InvariantDoc {
        name: "counts-agree",
        checks: "item count, each version's items_total and the streamed count agree at every version; not which items",
    },
    InvariantDoc {
        name: "no-lost-write",
        checks: "every acknowledged item is in the latest version exactly once, no failed item is, in-doubt items at most once; not durability across crashes",
    },
    InvariantDoc {
        name: "durable-ack",
        checks: "every item acknowledged before a crash or a power loss is in the latest version after reopening the crash image (after the run: an image of what a power loss now would keep); not items written after the crash",
    },
    InvariantDoc {
        name: "payloads-intact",
        checks: "every acknowledged item in the latest version reads back with exactly the payload it was appended with (edge strings included: empty, multi-byte, NUL, escapes, line breaks, long); not items that failed or are in doubt",
    },
    crate::store_clean::DOC,
];

/// What the store shows for one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetView {
    /// The published chain, oldest first.
    pub chain: Vec<Link>,
    /// The dataset's item count at its latest version.
    pub item_count: u64,
    /// The keys streamed at each version (`streamed[v - 1]`).
    pub streamed: Vec<Vec<String>>,
    /// The payloads streamed at the latest version, by key.
    pub payloads: BTreeMap<String, String>,
}

impl DatasetView {
    /// The keys of the latest version.
    pub fn latest(&self) -> &[String] {
        self.streamed.last().map_or(&[], Vec::as_slice)
    }
}

/// What the store shows, by dataset name.
pub type Observed = BTreeMap<String, DatasetView>;

/// The keys of each dataset's latest version, by dataset name (all durable-ack needs).
pub type Latest = BTreeMap<String, Vec<String>>;

/// no-silent-drop: every append ended acknowledged for all of its items, or with an error;
/// only an append whose writer crashed during the call may have no outcome.
/// Does not check: that acknowledged items are actually stored (no-lost-write does).
pub fn no_silent_drop(ledger: &Ledger) -> Result<(), String> {
    for ((writer, op), record) in &ledger.records {
        match &record.status {
            Status::Planned | Status::InFlight => {
                return Err(format!(
                    "append writer-{writer}/op{op} never finished: {:?}",
                    record.status
                ));
            }
            Status::Acked { appended, .. } if *appended != record.keys.len() as u64 => {
                return Err(format!(
                    "append writer-{writer}/op{op} was acknowledged for {appended} of its {} items",
                    record.keys.len()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// errors-are-faults: every error the engine returned to a writer or the reader is a fault
/// this run injected. (An open that fails otherwise, on any node or in the final checks, is
/// reported under this name at once by the workload, since the node cannot go on.) An engine that turns one injected fault into lasting trouble (a write
/// lock left held, a handle that refuses every later call, a writer starved by endless
/// conflicts) returns errors nothing injected. Does not check: calls cut short by a crash
/// (they return nothing), nor how long the calls that succeeded took.
pub fn errors_are_faults(ledger: &Ledger) -> Result<(), String> {
    match ledger.unexplained.first() {
        None => Ok(()),
        Some((who, error)) => Err(format!(
            "{who} got an error no injected fault explains: {error} ({} such errors in the run)",
            ledger.unexplained.len()
        )),
    }
}

/// linear-chain: versions are exactly 1..=n, version v extends v - 1, and no two versions
/// publish the same write. Does not check: the items of each version.
pub fn linear_chain(observed: &Observed) -> Result<(), String> {
    for (name, view) in observed {
        let mut txids = BTreeSet::new();
        for (index, link) in view.chain.iter().enumerate() {
            let expected = index as u64 + 1;
            if link.version != expected || link.parent != expected - 1 {
                return Err(format!(
                    "{name}: link {index} is version {} on parent {}, expected {expected} on {}",
                    link.version,
                    link.parent,
                    expected - 1
                ));
            }
            if !txids.insert(&link.txid) {
                return Err(format!("{name}: write {} is published twice", link.txid));
            }
        }
    }
    Ok(())
}

/// counts-agree: the item count equals the latest items_total, and every version streams
/// exactly its items_total items. Does not check: which items they are.
pub fn counts_agree(observed: &Observed) -> Result<(), String> {
    for (name, view) in observed {
        let latest_total = view.chain.last().map_or(0, |l| l.items_total);
        if view.item_count != latest_total {
            return Err(format!(
                "{name}: item count is {} but the latest version's items_total is {latest_total}",
                view.item_count
            ));
        }
        for (link, keys) in view.chain.iter().zip(&view.streamed) {
            if keys.len() as u64 != link.items_total {
                return Err(format!(
                    "{name}: version {} streams {} items but its items_total is {}",
                    link.version,
                    keys.len(),
                    link.items_total
                ));
            }
        }
    }
    Ok(())
}

/// no-lost-write: every acknowledged item is in its dataset's latest version exactly once;
/// an item whose append failed is absent; an in-doubt item appears at most once.
/// Does not check: durability across a crash (durable-ack does).
pub fn no_lost_write(ledger: &Ledger, observed: &Observed) -> Result<(), String> {
    for ((writer, op), record) in &ledger.records {
        let latest = observed
            .get(&record.dataset)
            .map_or(&[][..], DatasetView::latest);
        for key in &record.keys {
            let copies = latest.iter().filter(|k| *k == key).count();
            let allowed = match record.status {
                Status::Acked { .. } => copies == 1,
                Status::Failed(_) => copies == 0,
                _ => copies <= 1,
            };
            if !allowed {
                return Err(format!(
                    "item {key} of writer-{writer}/op{op} ({}) appears {copies} times in the latest version of {}",
                    describe(&record.status),
                    record.dataset
                ));
            }
        }
    }
    Ok(())
}

/// payloads-intact: every acknowledged item present in its dataset's latest version reads
/// back byte for byte with the payload it was appended with.
/// Does not check: whether it is present (no-lost-write does).
pub fn payloads_intact(ledger: &Ledger, observed: &Observed) -> Result<(), String> {
    for ((writer, op), record) in &ledger.records {
        if !matches!(record.status, Status::Acked { .. }) {
            continue;
        }
        let Some(view) = observed.get(&record.dataset) else {
            continue;
        };
        for key in &record.keys {
            let expected = super::plan::Plan::payload(record.payload, key);
            match view.payloads.get(key) {
                Some(read) if *read != expected => {
                    return Err(format!(
                        "item {key} of writer-{writer}/op{op} reads back as {read:?}, appended as {expected:?}"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// durable-ack: every item acknowledged before the crash is present in the latest version
/// of the reopened crash image. Does not check: duplicates (no-lost-write does).
pub fn durable_ack(ledger: &Ledger, reopened: &Latest) -> Result<(), String> {
    for (dataset, keys) in ledger.acked_keys() {
        let latest: BTreeSet<&str> = reopened
            .get(dataset)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(String::as_str)
            .collect();
        if let Some(missing) = keys.iter().find(|k| !latest.contains(*k)) {
            return Err(format!(
                "acknowledged item {missing} of {dataset} is gone after crash and reopen"
            ));
        }
    }
    Ok(())
}

fn describe(status: &Status) -> &'static str {
    match status {
        Status::Acked { .. } => "acknowledged",
        Status::Failed(_) => "failed",
        Status::InDoubt => "in doubt",
        Status::Planned | Status::InFlight => "unfinished",
    }
}

#[cfg(test)]
mod tests {
    use super::super::ledger::Record;
    use super::*;

    fn link(version: u64, parent: u64, txid: &str, items_total: u64) -> Link {
        Link {
            version,
            parent,
            txid: txid.into(),
            items_total,
        }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn good_view() -> DatasetView {
        DatasetView {
            chain: vec![link(1, 0, "a", 1), link(2, 1, "b", 2)],
            item_count: 2,
            streamed: vec![keys(&["k1"]), keys(&["k1", "k2"])],
            payloads: ["k1", "k2"]
                .iter()
                .map(|k| (k.to_string(), format!("payload of {k}")))
                .collect(),
        }
    }

    fn ledger(status: Status, record_keys: &[&str]) -> Ledger {
        let mut ledger = Ledger::default();
        let record = Record {
            dataset: "d".into(),
            keys: keys(record_keys),
            payload: 0,
            status,
            conflicts: 0,
        };
        ledger.records.insert((0, 0), record);
        ledger
    }

    fn observed(view: DatasetView) -> Observed {
        [("d".to_owned(), view)].into_iter().collect()
    }

    fn latest(view: DatasetView) -> Latest {
        [("d".to_owned(), view.latest().to_vec())]
            .into_iter()
            .collect()
    }

    #[test]
    fn a_correct_store_passes_every_invariant() {
        let acked = ledger(
            Status::Acked {
                version: 2,
                appended: 1,
            },
            &["k2"],
        );
        let store = observed(good_view());
        assert_eq!(durable_ack(&acked, &latest(good_view())), Ok(()));
        assert_eq!(no_silent_drop(&acked), Ok(()));
        assert_eq!(linear_chain(&store), Ok(()));
        assert_eq!(counts_agree(&store), Ok(()));
        assert_eq!(no_lost_write(&acked, &store), Ok(()));
    }

    #[test]
    fn no_silent_drop_fails_on_an_unfinished_or_partial_append() {
        assert!(no_silent_drop(&ledger(Status::InFlight, &["k"])).is_err());
        assert!(no_silent_drop(&ledger(
            Status::Acked {
                version: 1,
                appended: 1
            },
            &["k", "j"]
        ))
        .is_err());
        assert_eq!(no_silent_drop(&ledger(Status::InDoubt, &["k"])), Ok(()));
    }

    #[test]
    fn errors_are_faults_fails_on_any_unexplained_error() {
        let mut ledger = Ledger::default();
        assert!(errors_are_faults(&ledger).is_ok());
        ledger
            .unexplained
            .push(("writer-1/op0".into(), "database is locked".into()));
        assert!(errors_are_faults(&ledger)
            .unwrap_err()
            .contains("writer-1/op0 got an error no injected fault explains"));
    }

    #[test]
    fn linear_chain_fails_on_a_fork_or_a_republished_write() {
        let mut fork = good_view();
        fork.chain[1] = link(2, 0, "b", 2);
        assert!(linear_chain(&observed(fork)).is_err());
        let mut twice = good_view();
        twice.chain[1].txid = "a".into();
        assert!(linear_chain(&observed(twice))
            .unwrap_err()
            .contains("published twice"));
    }

    #[test]
    fn counts_agree_fails_when_any_layer_disagrees() {
        let mut count = good_view();
        count.item_count = 3;
        assert!(counts_agree(&observed(count)).is_err());
        let mut stream = good_view();
        stream.streamed[0].clear();
        assert!(counts_agree(&observed(stream))
            .unwrap_err()
            .contains("version 1 streams 0"));
    }

    #[test]
    fn no_lost_write_fails_on_missing_duplicate_or_phantom_items() {
        let store = observed(good_view());
        assert!(no_lost_write(
            &ledger(
                Status::Acked {
                    version: 3,
                    appended: 1
                },
                &["k9"]
            ),
            &store
        )
        .is_err());
        assert!(no_lost_write(&ledger(Status::Failed("x".into()), &["k2"]), &store).is_err());
        let mut doubled = good_view();
        doubled.streamed[1].push("k2".into());
        assert!(no_lost_write(
            &ledger(
                Status::Acked {
                    version: 2,
                    appended: 1
                },
                &["k2"]
            ),
            &observed(doubled)
        )
        .is_err());
    }

    #[test]
    fn durable_ack_fails_when_an_acked_item_is_gone_after_reopen() {
        let acked = ledger(
            Status::Acked {
                version: 2,
                appended: 1,
            },
            &["k2"],
        );
        let mut lost = good_view();
        lost.streamed[1].pop();
        assert!(durable_ack(&acked, &latest(lost))
            .unwrap_err()
            .contains("k2"));
    }
    #[test]
    fn a_payload_read_back_changed_breaks_payloads_intact() {
        let acked = ledger(
            Status::Acked {
                version: 2,
                appended: 1,
            },
            &["k2"],
        );
        assert!(payloads_intact(&acked, &observed(good_view())).is_ok());
        let mut view = good_view();
        view.payloads.insert("k2".into(), "payload of k2\n".into());
        let message = payloads_intact(&acked, &observed(view)).unwrap_err();
        assert!(message.contains("reads back as"), "{message}");
    }
}
