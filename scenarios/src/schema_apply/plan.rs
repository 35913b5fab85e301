//! The workload of one schema-apply run, drawn before anything starts.
//!
//! Sites: `setup/records` (+3 records), `setup/record/<n>/note` (0 absent, 1 null, 2 text),
//! `setup/bad` (an undecodable legacy record), `setup/policy` (0 quarantine, 1 fail the
//! migration), `change/{reencode,add,soft-drop,hard-drop}` (each 0 or 1), `change/batch`
//! (+1 records per batch step), `setup/loaders` (0..=2), `load/<l>/<n>/kind`.

use std::collections::BTreeMap;

use faultline::migrate::{BadRecordPolicy, MigrationOptions};
use faultline::schema::{Encoding, NodeType, Property, Schema};
use serde_json::{json, Map, Value};

use crate::values;

/// The node type every run migrates.
pub const NODE_TYPE: &str = "item";
/// Most loads per loader.
pub const MAX_LOADS: usize = 3;
/// The bytes of the undecodable legacy record (`setup/bad`): a header and a property name
/// cut off before its value. The quarantine must keep them exactly.
pub const BAD_RECORD: &[u8] = b"LR1\x01\x00\x04\x00name\x07";

/// What the migration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    /// Re-encode legacy records as JSON.
    pub reencode: bool,
    /// Add `color` with default `"none"`.
    pub add_color: bool,
    /// Soft-drop `note` (catalog only).
    pub soft_drop_note: bool,
    /// Hard-drop `size` (data loss allowed).
    pub hard_drop_size: bool,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The records imported in the legacy encoding before the migration.
    pub originals: Vec<(String, Map<String, Value>)>,
    /// The key of an undecodable record, if there is one.
    pub bad_key: Option<String>,
    /// The bad-record policy.
    pub policy: BadRecordPolicy,
    /// The change.
    pub changes: Changes,
    /// Records per batch step.
    pub batch_size: u64,
    /// For each loader, how many single-record loads it makes.
    pub loaders: Vec<usize>,
}

impl Plan {
    /// The catalog before.
    pub fn old_schema(&self) -> Schema {
        let properties = ["name", "size", "note", "flag"]
            .iter()
            .map(|p| (p.to_string(), Property::default()));
        node_schema(1, Encoding::Legacy, properties.collect())
    }

    /// The catalog after.
    pub fn new_schema(&self) -> Schema {
        let mut schema = self.old_schema();
        schema.version = 2;
        let node = schema.node_types.get_mut(NODE_TYPE).expect("one type");
        if self.changes.reencode {
            node.encoding = Encoding::Json;
        }
        if self.changes.add_color {
            node.properties.insert(
                "color".into(),
                Property {
                    default: Some(json!("none")),
                    soft_dropped: false,
                },
            );
        }
        if self.changes.soft_drop_note {
            node.properties.get_mut("note").expect("note").soft_dropped = true;
        }
        if self.changes.hard_drop_size {
            node.properties.remove("size");
        }
        schema
    }

    /// The options the migration runs with.
    pub fn options(&self) -> MigrationOptions {
        MigrationOptions::default()
            .allow_data_loss()
            .batch_size(self.batch_size)
            .bad_records(self.policy)
    }

    /// The key of load `n` of loader `l`.
    pub fn load_key(loader: usize, n: usize) -> String {
        format!("load-{loader}-{n}")
    }
}

fn node_schema(version: u64, encoding: Encoding, properties: BTreeMap<String, Property>) -> Schema {
    let node = NodeType {
        encoding,
        properties,
    };
    Schema {
        version,
        node_types: [(NODE_TYPE.to_owned(), node)].into_iter().collect(),
    }
}

/// Draws a plan through `draw(site, bound)`.
pub fn draw(mut draw: impl FnMut(String, u64) -> u64) -> Plan {
    let count = 3 + draw("setup/records".into(), 9) as usize;
    let originals = (0..count)
        .map(|n| {
            let mut record = Map::new();
            let site = |property: &str| format!("setup/record/{n}/{property}");
            let name = values::string(&mut draw, site("name"), format!("record {n}"));
            record.insert("name".into(), name);
            let size = values::integer(&mut draw, site("size"), n as i64 * 10 - 15);
            record.insert("size".into(), size);
            match draw(site("note"), 2) {
                0 => None,
                1 => record.insert("note".into(), Value::Null),
                _ => {
                    let note = values::string(&mut draw, site("note/text"), format!("note {n}"));
                    record.insert("note".into(), note)
                }
            };
            match draw(site("flag"), 2) {
                0 => None,
                v => record.insert("flag".into(), Value::Bool(v == 2)),
            };
            (format!("record-{n:02}"), record)
        })
        .collect();
    let bad_key = (draw("setup/bad".into(), 1) == 1).then(|| "record-bad".to_owned());
    let policy = match draw("setup/policy".into(), 1) {
        0 => BadRecordPolicy::Quarantine,
        _ => BadRecordPolicy::FailMigration,
    };
    let mut changes = Changes {
        reencode: draw("change/reencode".into(), 1) == 1,
        add_color: draw("change/add".into(), 1) == 1,
        soft_drop_note: draw("change/soft-drop".into(), 1) == 1,
        hard_drop_size: draw("change/hard-drop".into(), 1) == 1,
    };
    // The engine changes properties of JSON records only: such a change re-encodes too.
    changes.reencode |= changes.add_color || changes.hard_drop_size;
    let batch_size = 1 + draw("change/batch".into(), 3);
    let loaders = (0..draw("setup/loaders".into(), 2))
        .map(|l| {
            (0..MAX_LOADS)
                .filter(|n| draw(format!("load/{l}/{n}/kind"), 1) == 1)
                .count()
        })
        .collect();
    Plan {
        originals,
        bad_key,
        policy,
        changes,
        batch_size,
        loaders,
    }
}

/// The name of loader `index`'s node.
pub fn loader_name(index: usize) -> String {
    format!("loader-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short sweep of plans meets every edge kind of the value space: each edge string and
    /// integer, both booleans and null.
    #[test]
    fn a_short_sweep_draws_every_edge_kind() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let mut rng = faultline_sim::rng::Rng::new(seed, 1);
            let plan = draw(|_, bound| rng.below_or_equal(bound));
            for (_, record) in &plan.originals {
                seen.extend(record.values().filter_map(values::edge_kind));
            }
        }
        let kinds = values::EDGE_STRINGS.iter().map(|(kind, _)| *kind);
        let kinds = kinds.chain(values::EDGE_INTEGERS.iter().map(|(kind, _)| *kind));
        for kind in kinds.chain(["true", "false", "null"]) {
            assert!(
                seen.contains(kind),
                "edge kind {kind} never drawn: {seen:?}"
            );
        }
    }
}
