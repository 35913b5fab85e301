//! The named invariants of schema-apply: pure functions over the plan (what the migration
//! should do), what the loaders saw, and snapshots of the store.

use std::collections::BTreeSet;

use faultline::legacy;
use faultline::migrate::BadRecordPolicy;
use faultline::records::Stored;
use faultline::schema::Schema;
use faultline_sim::InvariantDoc;
use serde_json::{json, Map, Value};

use super::plan::Plan;

/// The invariants, in the order they are checked.
pub const DOCS: &[InvariantDoc] = &[
    InvariantDoc {
        name: "open-succeeds",
        checks: "every open after any crash succeeds (injected faults aside); not what recovery did",
    },
    InvariantDoc {
        name: "schema-atomic",
        checks: "when no migration is pending, the catalog is the old or the new schema and every record agrees with it; not values",
    },
    InvariantDoc {
        name: "data-preserved",
        checks: "records equal the originals transformed exactly as the schema says (null and absent distinct), none lost, bad ones quarantined with their bytes intact; not loads",
    },
    InvariantDoc {
        name: "recovery-idempotent",
        checks: "reopening a crash image twice gives the same store with no sidecar or lease left; not the first recovery's correctness",
    },
    InvariantDoc {
        name: "no-lost-write",
        checks: "every acknowledged load is present after the run; not loads that failed or are in doubt",
    },
    InvariantDoc {
        name: "leases-released",
        checks: "once the migrator sees the migration settled (the catalog is the new schema, or it was refused), its live handle holds no lease: a finished migration keeps no table from its writers; not leases other handles hold",
    },
    crate::store_clean::DOC,
];

/// What the store shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The catalog.
    pub catalog: Schema,
    /// Visible records by key.
    pub records: Vec<(String, Stored)>,
    /// Quarantined records, with their bytes.
    pub quarantined: Vec<faultline::records::Quarantined>,
    /// The node table's published version.
    pub version: u64,
    /// Leases held.
    pub leases: usize,
    /// Migration sidecars present.
    pub migration_sidecars: usize,
    /// Write sidecars present.
    pub write_sidecars: usize,
}

impl Snapshot {
    /// Whether no migration is pending (no sidecar, no lease).
    pub fn quiescent(&self) -> bool {
        self.leases == 0 && self.migration_sidecars == 0
    }
}

/// Whether `stored` holds exactly `expected`. Legacy bytes are compared with the encoding of
/// `expected`, not decoded: the oracle must not trust the decoder under test.
fn holds(stored: &Stored, expected: &Map<String, Value>) -> bool {
    match stored {
        Stored::Json(record) => record == expected,
        Stored::Legacy(bytes) => legacy::encode(expected).is_ok_and(|encoded| &encoded == bytes),
    }
}

/// schema-atomic: with no migration pending, the catalog is exactly the old or the new
/// schema, and the records agree: under the new one no record is still legacy-encoded (if it
/// re-encodes), holds a hard-dropped property or lacks an added one; under the old one no
/// original record is re-encoded or holds an added property.
/// Does not check: the values of properties (data-preserved does).
pub fn schema_atomic(plan: &Plan, snapshot: &Snapshot) -> Result<(), String> {
    let (old, new) = (plan.old_schema(), plan.new_schema());
    let originals: BTreeSet<&str> = plan.originals.iter().map(|(k, _)| k.as_str()).collect();
    if snapshot.catalog == new {
        for (key, stored) in &snapshot.records {
            if plan.changes.reencode && matches!(stored, Stored::Legacy(_)) {
                return Err(format!(
                    "catalog is the new schema but {key} is still legacy-encoded"
                ));
            }
            // Without a re-encode there are no property changes (the engine refuses them).
            let Stored::Json(record) = stored else {
                continue;
            };
            if plan.changes.hard_drop_size && record.contains_key("size") {
                return Err(format!(
                    "catalog is the new schema but {key} still has the dropped property size"
                ));
            }
            if plan.changes.add_color && !record.contains_key("color") {
                return Err(format!(
                    "catalog is the new schema but {key} lacks the added property color"
                ));
            }
        }
        return Ok(());
    }
    if snapshot.catalog != old {
        return Err(format!(
            "catalog is version {} and neither the old nor the new schema",
            snapshot.catalog.version
        ));
    }
    for (key, stored) in snapshot
        .records
        .iter()
        .filter(|(k, _)| originals.contains(k.as_str()))
    {
        if matches!(stored, Stored::Json(_)) {
            return Err(format!(
                "catalog is the old schema but {key} is already re-encoded"
            ));
        }
    }
    Ok(())
}

/// What an original record must look like under the new schema.
pub fn migrated(plan: &Plan, original: &Map<String, Value>) -> Map<String, Value> {
    let mut record = original.clone();
    if plan.changes.hard_drop_size {
        record.remove("size");
    }
    if plan.changes.add_color {
        record.entry("color").or_insert(json!("none"));
    }
    record
}

/// data-preserved: every original record is present and equals what the schema says it
/// becomes (a soft drop keeps the data, a hard drop removes exactly the dropped property,
/// null and absent stay distinct); an undecodable record is quarantined under the
/// quarantine policy, its bytes kept exactly, and still present otherwise; nothing else
/// disappears.
/// Does not check: loaded records (no-lost-write does).
pub fn data_preserved(plan: &Plan, snapshot: &Snapshot) -> Result<(), String> {
    let migrated_catalog = snapshot.catalog == plan.new_schema();
    for (key, original) in &plan.originals {
        let Some((_, stored)) = snapshot.records.iter().find(|(k, _)| k == key) else {
            return Err(format!("record {key} is gone"));
        };
        let expected = if migrated_catalog {
            migrated(plan, original)
        } else {
            original.clone()
        };
        if !holds(stored, &expected) {
            return Err(format!("record {key} is {stored:?}, expected {expected:?}"));
        }
    }
    if let Some(bad) = &plan.bad_key {
        let present = snapshot.records.iter().any(|(k, _)| k == bad);
        let kept = snapshot.quarantined.iter().find(|q| q.key == *bad);
        let quarantined = kept.is_some();
        let expected_quarantined =
            migrated_catalog && plan.changes.reencode && plan.policy == BadRecordPolicy::Quarantine;
        if quarantined != expected_quarantined || present == quarantined {
            return Err(format!(
                "bad record {bad}: present {present}, quarantined {quarantined}, expected quarantined {expected_quarantined}"
            ));
        }
        if let Some(kept) = kept.filter(|q| q.legacy != crate::schema_apply::plan::BAD_RECORD) {
            return Err(format!(
                "bad record {bad} is quarantined with bytes {:?}, not the {:?} it was stored with",
                kept.legacy,
                crate::schema_apply::plan::BAD_RECORD
            ));
        }
    }
    Ok(())
}

/// recovery-idempotent: a second reopen finds nothing left to do and changes nothing.
/// Does not check: that the first recovery was right (the other invariants do).
pub fn recovery_idempotent(first: &Snapshot, second: &Snapshot) -> Result<(), String> {
    if first != second {
        return Err(format!(
            "reopening again changed the store: {first:?} then {second:?}"
        ));
    }
    if !second.quiescent() || second.write_sidecars != 0 {
        return Err(format!(
            "after two reopens {} migration sidecars, {} leases and {} write sidecars remain",
            second.migration_sidecars, second.leases, second.write_sidecars
        ));
    }
    Ok(())
}

/// no-lost-write: every acknowledged load's record is present.
/// Does not check: the contents of loaded records.
pub fn no_lost_write(acked: &[String], snapshot: &Snapshot) -> Result<(), String> {
    match acked
        .iter()
        .find(|key| !snapshot.records.iter().any(|(k, _)| k == *key))
    {
        Some(missing) => Err(format!("acknowledged load {missing} is missing")),
        None => Ok(()),
    }
}

/// leases-released: once the migration has settled, the handle `me` (the migrator's, still
/// open) holds none of `leases` (table, migration, owner). A crash image hides this (its
/// reopen releases a dead owner's leases), so it is checked on the live handle.
/// Does not check: leases held by other handles (one may be finishing a migration it claimed).
pub fn leases_released(me: u64, leases: &[(String, String, u64)]) -> Result<(), String> {
    match leases.iter().find(|(_, _, owner)| *owner == me) {
        Some((table, migration, _)) => Err(format!(
            "the migration is finished, yet this handle still holds the lease on {table} of \
             migration {migration}: writers to {table} are refused for as long as it lives"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_the_handle_still_holds_breaks_leases_released() {
        let other = vec![("nodes".to_owned(), "m1".to_owned(), 7)];
        assert!(leases_released(3, &other).is_ok());
        assert!(leases_released(3, &[]).is_ok());
        let mine = vec![("nodes".to_owned(), "m1".to_owned(), 3)];
        let message = leases_released(3, &mine).unwrap_err();
        assert!(
            message.contains("lease on nodes of migration m1"),
            "{message}"
        );
    }
}
