//! Shrinking a failing tape to a 1-minimal one.
//!
//! A candidate is the tape with some choices removed (a removed site replays as 0, the
//! simplest choice) or one value made simpler. It is kept only if its run fails with the
//! same signature, so shrinking never drifts to another bug; the kept tape is the run's own
//! record of what it asked for, so sites the smaller run no longer reaches drop out.
//!
//! Passes: take out one node of a group of numbered nodes (a writer, with its operations and
//! its failpoint decisions; the later nodes renumbered one down, see [`NodeGroup`]), remove
//! chunks of choices (halving the chunk size down to one), move a node's operation into an
//! empty slot before it (`op/1/4/...` to `op/1/3/...`), simplify each value
//! (to half, then one less), move each failpoint decision one hit earlier
//! (`fp/writer-0/engine.append.after_publish#3` and its `:ms` or `:scope` companions become
//! `#2`), and, once those find nothing on a short tape, remove one choice while moving every
//! decision of one node a hit earlier. The last two are what let an operation go: removing a
//! node's earlier operation renumbers that node's later hits, so the decisions that mattered
//! must move down with it. When a whole round changes nothing, the tape is 1-minimal:
//! removing any one node, removing any one choice, moving any one operation to an empty slot
//! before it, simplifying any one value or moving any one decision a hit earlier (alone, or
//! one node's decisions with a removal) loses the failure.
//! Proptest's shrinking works on values it generated itself; a tape is a record of an
//! external run, so this delta-debugging loop is written here.

use std::time::{Duration, Instant};

use crate::scenario::NodeGroup;
use crate::site::{FailpointSite, Part};
use crate::tape::{Entry, Tape};

/// Tapes longer than this skip the removal-with-shift pass (it tries every choice against
/// every node, quadratic in the tape's length).
const SHIFT_PASS_MAX_CHOICES: usize = 40;

/// The result of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing tape found.
    pub tape: Tape,
    /// Non-zero choices in the original tape.
    pub original_choices: usize,
    /// Non-zero choices in the shrunk tape.
    pub choices: usize,
    /// Candidate runs made.
    pub candidates: u32,
    /// Whether a full round found nothing to remove or simplify (1-minimal).
    pub one_minimal: bool,
    /// Wall time spent (outside any simulation).
    pub elapsed: Duration,
}

/// Runs a candidate tape leniently; returns its failure signature and the entries it used.
pub trait Oracle {
    /// Replays `tape` (missing sites are 0) and reports `(signature, consumed entries)`.
    fn check(&mut self, tape: &Tape) -> (String, Vec<Entry>);

    /// Whether the oracle can run no more candidates (an interrupt, a fault of the
    /// environment): the shrinker stops at once with what it has, not proven 1-minimal.
    fn stopped(&self) -> bool {
        false
    }
}

impl<F: FnMut(&Tape) -> (String, Vec<Entry>)> Oracle for F {
    fn check(&mut self, tape: &Tape) -> (String, Vec<Entry>) {
        self(tape)
    }
}

struct Shrinker<'a, O> {
    oracle: &'a mut O,
    groups: &'a [NodeGroup],
    signature: &'a str,
    best: Tape,
    candidates: u32,
    deadline: Option<Instant>,
}

/// Shrinks `tape`, whose run fails with `signature`, within `budget` of wall time. `groups`
/// are the scenario's numbered nodes (see [`NodeGroup`]), which the shrinker may take out.
pub fn shrink(
    tape: &Tape,
    signature: &str,
    budget: Duration,
    groups: &[NodeGroup],
    oracle: &mut impl Oracle,
) -> Shrunk {
    let started = Instant::now();
    let original_choices = tape.choices().len();
    let mut best = tape.clone();
    best.entries = tape.choices();
    let mut shrinker = Shrinker {
        oracle,
        groups,
        signature,
        best,
        candidates: 0,
        deadline: started.checked_add(budget),
    };
    let mut one_minimal = false;
    while !shrinker.out_of_time() {
        let removed = shrinker.remove_nodes() | shrinker.remove_chunks();
        let compacted = shrinker.compact_slots();
        let simplified = shrinker.simplify_values();
        let moved = shrinker.move_hits_earlier();
        let shifted =
            !(removed || compacted || simplified || moved) && shrinker.remove_and_shift_node();
        let changed = removed || compacted || simplified || moved || shifted;
        if !changed && !shrinker.out_of_time() {
            one_minimal = true;
            break;
        }
    }
    let mut tape = shrinker.best;
    let choices = tape.choices().len();
    if !shrinker.oracle.stopped() {
        // Replay once more to store the complete record (zeros included) for strict replay.
        let (_, entries) = shrinker.oracle.check(&tape);
        tape.entries = entries;
    }
    Shrunk {
        tape,
        original_choices,
        choices,
        candidates: shrinker.candidates + 1,
        one_minimal,
        elapsed: started.elapsed(),
    }
}

impl<O: Oracle> Shrinker<'_, O> {
    fn out_of_time(&self) -> bool {
        self.oracle.stopped() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Tries `entries`; keeps them (as the run recorded them) if the failure stays.
    fn attempt(&mut self, entries: Vec<Entry>) -> bool {
        let mut candidate = self.best.clone();
        candidate.entries = entries;
        self.candidates += 1;
        let (signature, consumed) = self.oracle.check(&candidate);
        if signature != self.signature {
            return false;
        }
        self.best.entries = consumed.into_iter().filter(|e| e.value != 0).collect();
        true
    }

    /// Tries taking out each node of each group, the last first; the nodes after it are
    /// renumbered one down, so a minimal tape has no idle node in the middle.
    fn remove_nodes(&mut self) -> bool {
        let mut changed = false;
        for group in self.groups {
            let mut node = node_count(&self.best.entries, group);
            while node > 0 && !self.out_of_time() {
                node -= 1;
                if let Some(entries) = without_node(&self.best.entries, group, node) {
                    changed |= self.attempt(entries);
                }
            }
        }
        changed
    }

    /// Tries moving each node's operation in slot `s` into slot `s - 1` when that slot has
    /// no choice, so that a minimal tape numbers a node's operations from 0.
    fn compact_slots(&mut self) -> bool {
        let mut changed = false;
        for group in self.groups {
            for node in 0..node_count(&self.best.entries, group) {
                for slot in 1..group.slots {
                    if self.out_of_time() {
                        return changed;
                    }
                    if let Some(entries) = slot_earlier(&self.best.entries, group, node, slot) {
                        changed |= self.attempt(entries);
                    }
                }
            }
        }
        changed
    }

    fn remove_chunks(&mut self) -> bool {
        let mut changed = false;
        let mut size = (self.best.entries.len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < self.best.entries.len() && !self.out_of_time() {
                let mut entries = self.best.entries.clone();
                let end = (start + size).min(entries.len());
                entries.drain(start..end);
                if self.attempt(entries) {
                    changed = true;
                } else {
                    start += size;
                }
            }
            if size == 1 || self.out_of_time() {
                return changed;
            }
            size /= 2;
        }
    }

    fn simplify_values(&mut self) -> bool {
        let mut changed = false;
        let mut index = 0;
        while index < self.best.entries.len() && !self.out_of_time() {
            let value = self.best.entries[index].value;
            let simpler = [value / 2, value.saturating_sub(1)];
            for candidate_value in simpler.into_iter().filter(|v| *v < value) {
                let mut entries = self.best.entries.clone();
                entries[index].value = candidate_value;
                if self.attempt(entries) {
                    changed = true;
                    break;
                }
            }
            index += 1;
        }
        changed
    }

    /// Tries each decision at hit `n > 1` at hit `n - 1` instead, when no choice is there.
    fn move_hits_earlier(&mut self) -> bool {
        let mut changed = false;
        let mut index = 0;
        while index < self.best.entries.len() && !self.out_of_time() {
            if let Some(entries) = earlier_hit(&self.best.entries, index) {
                changed |= self.attempt(entries);
            }
            index += 1;
        }
        changed
    }

    /// Tries removing each choice together with moving every decision of one node a hit
    /// earlier (the renumbering that removing one of that node's operations causes).
    fn remove_and_shift_node(&mut self) -> bool {
        if self.best.entries.len() > SHIFT_PASS_MAX_CHOICES {
            return false;
        }
        let mut changed = false;
        let mut index = 0;
        while index < self.best.entries.len() && !self.out_of_time() {
            let mut kept = false;
            for node in fault_nodes(&self.best.entries) {
                let mut entries = self.best.entries.clone();
                entries.remove(index);
                let Some(shifted) = shift_node_earlier(&entries, &node) else {
                    continue;
                };
                if self.attempt(shifted) {
                    kept = true;
                    break;
                }
            }
            changed |= kept;
            if !kept {
                index += 1;
            }
        }
        changed
    }
}

/// How many nodes of `group` the tape asks for.
fn node_count(entries: &[Entry], group: &NodeGroup) -> usize {
    let chosen = entries.iter().find(|e| e.site == group.count_site);
    group.min + chosen.map_or(0, |e| e.value as usize)
}

/// `entries` without node `node` of `group`: the count one lower, the node's own sites
/// (workload and failpoint) gone, and every later node's sites renamed one node down.
/// `None` when the group is at its minimum or has no such node.
fn without_node(entries: &[Entry], group: &NodeGroup, node: usize) -> Option<Vec<Entry>> {
    let count = node_count(entries, group);
    if count <= group.min || node >= count {
        return None;
    }
    let (own_prefix, own_name) = ((group.site_prefix)(node), (group.node_name)(node));
    let renamed = |site: &str| -> Option<String> {
        if let Some(fp) = FailpointSite::parse(site) {
            let later = (node + 1..count).find(|i| (group.node_name)(*i) == fp.node)?;
            return Some(fp.on_node(&(group.node_name)(later - 1)).to_string());
        }
        (node + 1..count).find_map(|later| {
            let rest = site.strip_prefix((group.site_prefix)(later).as_str())?;
            Some(format!("{}{rest}", (group.site_prefix)(later - 1)))
        })
    };
    let own = |site: &str| match FailpointSite::parse(site) {
        Some(fp) => fp.node == own_name,
        None => site.starts_with(own_prefix.as_str()),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.site == group.count_site {
            if count - 1 > group.min {
                out.push(Entry {
                    site: entry.site.clone(),
                    value: entry.value - 1,
                });
            }
        } else if !own(&entry.site) {
            out.push(Entry {
                site: renamed(&entry.site).unwrap_or_else(|| entry.site.clone()),
                value: entry.value,
            });
        }
    }
    Some(out)
}

/// `entries` with node `node`'s slot `slot` renamed to slot `slot - 1`, or `None` if the slot
/// has no choice or the slot before it has one.
fn slot_earlier(
    entries: &[Entry],
    group: &NodeGroup,
    node: usize,
    slot: usize,
) -> Option<Vec<Entry>> {
    let prefix = |slot: usize| format!("{}{slot}/", (group.site_prefix)(node));
    let (from, to) = (prefix(slot), prefix(slot - 1));
    let in_slot = |p: &str| entries.iter().any(|e| e.site.starts_with(p));
    if !in_slot(&from) || in_slot(&to) {
        return None;
    }
    let moved = entries
        .iter()
        .map(|entry| Entry {
            site: match entry.site.strip_prefix(from.as_str()) {
                Some(rest) => format!("{to}{rest}"),
                None => entry.site.clone(),
            },
            value: entry.value,
        })
        .collect();
    Some(moved)
}

/// The nodes with failpoint decisions on the tape (`fp/<node>/...`), in order.
fn fault_nodes(entries: &[Entry]) -> Vec<String> {
    let mut nodes: Vec<String> = entries
        .iter()
        .filter_map(|e| FailpointSite::parse(&e.site))
        .map(|site| site.node)
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// `entries` with every decision of `node` one hit earlier, for each of its points whose
/// first decision is past hit 1; `None` if nothing moves.
fn shift_node_earlier(entries: &[Entry], node: &str) -> Option<Vec<Entry>> {
    let sites: Vec<Option<FailpointSite>> = entries
        .iter()
        .map(|e| FailpointSite::parse(&e.site))
        .collect();
    let first_hit = |point: &str| {
        sites
            .iter()
            .flatten()
            .filter(|s| s.node == node && s.point == point)
            .map(|s| s.hit)
            .min()
            .unwrap_or(0)
    };
    let mut moved_any = false;
    let shifted = entries
        .iter()
        .zip(&sites)
        .map(|(entry, site)| match site {
            Some(site) if site.node == node && first_hit(&site.point) >= 2 => {
                moved_any = true;
                Entry {
                    site: site.at_hit(site.hit - 1).to_string(),
                    value: entry.value,
                }
            }
            _ => entry.clone(),
        })
        .collect();
    moved_any.then_some(shifted)
}

/// `entries` with the decision of entry `index` (and its companions at the same hit) moved
/// one hit earlier, or `None` if it is at hit 1, is a companion itself, or hit `n - 1` of the
/// same point already has a choice.
fn earlier_hit(entries: &[Entry], index: usize) -> Option<Vec<Entry>> {
    let chosen = FailpointSite::parse(&entries[index].site)?;
    if chosen.hit < 2 || chosen.part != Part::Decision {
        return None;
    }
    let same_point = |site: &FailpointSite| site.node == chosen.node && site.point == chosen.point;
    let at = |entry: &Entry, wanted: u64| {
        FailpointSite::parse(&entry.site).is_some_and(|s| same_point(&s) && s.hit == wanted)
    };
    if entries.iter().any(|e| at(e, chosen.hit - 1)) {
        return None;
    }
    let moved = entries
        .iter()
        .map(|entry| match FailpointSite::parse(&entry.site) {
            Some(site) if same_point(&site) && site.hit == chosen.hit => Entry {
                site: site.at_hit(site.hit - 1).to_string(),
                value: entry.value,
            },
            _ => entry.clone(),
        })
        .collect();
    Some(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The value a toy run draws at `site`: the tape's, or 0 where the tape has none.
    fn value_of(tape: &Tape, site: &str) -> u64 {
        tape.entries
            .iter()
            .find(|e| e.site == site)
            .map_or(0, |e| e.value)
    }

    /// A toy oracle: fails ("bug") when site `a` is at least 3 and site `c` is non-zero.
    fn toy(tape: &Tape) -> (String, Vec<Entry>) {
        let get = |site: &str| value_of(tape, site);
        let signature = if get("a") >= 3 && get("c") != 0 {
            "invariant:bug"
        } else {
            "pass"
        };
        let consumed = ["a", "b", "c", "d"]
            .iter()
            .map(|s| Entry {
                site: s.to_string(),
                value: get(s),
            })
            .collect();
        (signature.to_owned(), consumed)
    }

    fn tape(values: [u64; 4]) -> Tape {
        let mut tape = Tape::new("toy", 0);
        tape.entries = ["a", "b", "c", "d"]
            .iter()
            .zip(values)
            .map(|(site, value)| Entry {
                site: site.to_string(),
                value,
            })
            .collect();
        tape
    }

    #[test]
    fn shrinks_to_the_minimal_failing_choices() {
        let shrunk = shrink(
            &tape([9, 7, 5, 8]),
            "invariant:bug",
            Duration::from_secs(10),
            &[],
            &mut toy,
        );
        assert!(shrunk.one_minimal);
        assert_eq!(
            shrunk.tape.choices(),
            vec![
                Entry {
                    site: "a".into(),
                    value: 3
                },
                Entry {
                    site: "c".into(),
                    value: 1
                },
            ]
        );
        assert_eq!(shrunk.original_choices, 4);
        assert_eq!(shrunk.choices, 2);
    }

    #[test]
    fn a_decision_moves_to_an_earlier_hit_with_its_companions() {
        let entry = |site: &str, value| Entry {
            site: site.into(),
            value,
        };
        let entries = vec![
            entry("op/0/1/kind", 1),
            entry("fp/w/p#3", 2),
            entry("fp/w/p#3:ms", 4),
            entry("fp/w/q#2", 3),
            entry("fp/w/q#1", 1),
        ];
        assert_eq!(
            earlier_hit(&entries, 1).unwrap(),
            vec![
                entry("op/0/1/kind", 1),
                entry("fp/w/p#2", 2),
                entry("fp/w/p#2:ms", 4),
                entry("fp/w/q#2", 3),
                entry("fp/w/q#1", 1),
            ]
        );
        assert_eq!(earlier_hit(&entries, 0), None, "not a hit");
        assert_eq!(
            earlier_hit(&entries, 2),
            None,
            "a companion moves with its decision"
        );
        assert_eq!(earlier_hit(&entries, 3), None, "hit 1 of q is taken");
        assert_eq!(earlier_hit(&entries, 4), None, "already the first hit");
    }

    /// A toy run whose bug needs its fault at hit 1 of `fp/w/p` once op `o` is gone: the
    /// shrinker must move the fault down to remove the op.
    fn renumbering(tape: &Tape) -> (String, Vec<Entry>) {
        let get = |site: &str| value_of(tape, site);
        let op = get("o");
        let fault_hit = (1..=2).find(|h| get(&format!("fp/w/p#{h}")) != 0);
        let fails = fault_hit == Some(1 + op);
        let mut consumed = vec![Entry {
            site: "o".into(),
            value: op,
        }];
        consumed.extend((1..=1 + op).map(|h| Entry {
            site: format!("fp/w/p#{h}"),
            value: get(&format!("fp/w/p#{h}")),
        }));
        let signature = if fails { "invariant:bug" } else { "pass" };
        (signature.to_owned(), consumed)
    }

    #[test]
    fn shrinking_moves_a_fault_earlier_so_that_an_operation_can_go() {
        let mut original = Tape::new("toy", 0);
        original.entries = vec![
            Entry {
                site: "o".into(),
                value: 1,
            },
            Entry {
                site: "fp/w/p#2".into(),
                value: 1,
            },
        ];
        assert_eq!(renumbering(&original).0, "invariant:bug");
        let shrunk = shrink(
            &original,
            "invariant:bug",
            Duration::from_secs(10),
            &[],
            &mut renumbering,
        );
        assert!(shrunk.one_minimal);
        assert_eq!(
            shrunk.tape.choices(),
            vec![Entry {
                site: "fp/w/p#1".into(),
                value: 1
            }]
        );
    }

    /// Nodes `0..1 + n` where `n` is site `setup/n`; the bug needs one node whose value
    /// `w/<i>/x` is at least 2 and whose failpoint `fp/node-<i>/p#1` fired.
    fn nodes(tape: &Tape) -> (String, Vec<Entry>) {
        let get = |site: &str| value_of(tape, site);
        let drawn = |site: String| Entry {
            value: get(&site),
            site,
        };
        let mut consumed = vec![drawn("setup/n".into())];
        let mut fails = false;
        for node in 0..1 + get("setup/n") {
            let (value, fault) = (
                drawn(format!("w/{node}/x")),
                drawn(format!("fp/node-{node}/p#1")),
            );
            fails |= value.value >= 2 && fault.value != 0;
            consumed.extend([value, fault]);
        }
        let signature = if fails { "invariant:bug" } else { "pass" };
        (signature.to_owned(), consumed)
    }

    const NODES: NodeGroup = NodeGroup {
        count_site: "setup/n",
        min: 1,
        site_prefix: |i| format!("w/{i}/"),
        node_name: |i| format!("node-{i}"),
        slots: 4,
    };

    fn entry(site: &str, value: u64) -> Entry {
        Entry {
            site: site.into(),
            value,
        }
    }

    #[test]
    fn taking_a_node_out_renumbers_the_nodes_after_it() {
        let entries = vec![
            entry("setup/n", 2),
            entry("w/0/x", 1),
            entry("fp/node-0/p#1", 4),
            entry("w/1/x", 3),
            entry("fp/node-1/p#2", 1),
            entry("w/2/x", 5),
            entry("fp/node-2/p#1:ms", 7),
            entry("reader/x", 1),
        ];
        assert_eq!(
            without_node(&entries, &NODES, 1).unwrap(),
            vec![
                entry("setup/n", 1),
                entry("w/0/x", 1),
                entry("fp/node-0/p#1", 4),
                entry("w/1/x", 5),
                entry("fp/node-1/p#1:ms", 7),
                entry("reader/x", 1),
            ]
        );
        let last_out = without_node(&entries, &NODES, 2).unwrap();
        assert_eq!(last_out.len(), 6);
        assert_eq!(last_out[0], entry("setup/n", 1));
        assert_eq!(without_node(&entries, &NODES, 3), None, "no node 3");
        assert_eq!(
            without_node(&[entry("w/0/x", 1)], &NODES, 0),
            None,
            "one node is the minimum"
        );
    }

    #[test]
    fn shrinking_takes_idle_nodes_out_so_the_failing_one_is_alone() {
        let mut original = Tape::new("toy", 0);
        original.entries = vec![
            entry("setup/n", 2),
            entry("w/0/x", 1),
            entry("fp/node-1/p#1", 3),
            entry("w/2/x", 5),
            entry("fp/node-2/p#1", 1),
        ];
        assert_eq!(nodes(&original).0, "invariant:bug");
        let budget = Duration::from_secs(10);
        let without = shrink(&original, "invariant:bug", budget, &[], &mut nodes);
        assert_eq!(
            without.tape.choices(),
            vec![
                entry("setup/n", 2),
                entry("w/2/x", 2),
                entry("fp/node-2/p#1", 1)
            ],
            "without the group, the idle nodes 0 and 1 stay"
        );
        let with = shrink(&original, "invariant:bug", budget, &[NODES], &mut nodes);
        assert!(with.one_minimal);
        assert_eq!(
            with.tape.choices(),
            vec![entry("w/0/x", 2), entry("fp/node-0/p#1", 1)]
        );
    }

    /// One node with four slots `w/0/<slot>/k`; the bug needs two operations.
    fn slotted(tape: &Tape) -> (String, Vec<Entry>) {
        let consumed: Vec<Entry> = (0..4)
            .map(|slot| {
                let site = format!("w/0/{slot}/k");
                let value = value_of(tape, &site);
                Entry { site, value }
            })
            .collect();
        let ops = consumed.iter().filter(|e| e.value != 0).count();
        let signature = if ops >= 2 { "invariant:bug" } else { "pass" };
        (signature.to_owned(), consumed)
    }

    #[test]
    fn operations_move_down_into_empty_slots() {
        let entries = vec![
            entry("w/0/1/k", 1),
            entry("w/0/1/k2", 5),
            entry("w/0/3/k", 1),
        ];
        assert_eq!(
            slot_earlier(&entries, &NODES, 0, 1).unwrap(),
            vec![
                entry("w/0/0/k", 1),
                entry("w/0/0/k2", 5),
                entry("w/0/3/k", 1)
            ]
        );
        assert_eq!(
            slot_earlier(&entries, &NODES, 0, 2),
            None,
            "slot 2 is empty"
        );
        assert_eq!(
            slot_earlier(&entries, &NODES, 0, 3).unwrap()[2],
            entry("w/0/2/k", 1)
        );
        let mut taken = entries.clone();
        taken.push(entry("w/0/2/k", 1));
        assert_eq!(slot_earlier(&taken, &NODES, 0, 3), None, "slot 2 is taken");

        let mut original = Tape::new("toy", 0);
        original.entries = vec![entry("w/0/1/k", 1), entry("w/0/3/k", 1)];
        let budget = Duration::from_secs(10);
        let without = shrink(&original, "invariant:bug", budget, &[], &mut slotted);
        assert_eq!(
            without.tape.choices(),
            original.entries,
            "nothing to shrink without slots"
        );
        let with = shrink(&original, "invariant:bug", budget, &[NODES], &mut slotted);
        assert!(with.one_minimal);
        assert_eq!(
            with.tape.choices(),
            vec![entry("w/0/0/k", 1), entry("w/0/1/k", 1)]
        );
    }

    proptest! {
        #[test]
        fn shrinking_keeps_the_signature_and_never_grows(a in 3u64..50, b in 0u64..50, c in 1u64..50, d in 0u64..50) {
            let original = tape([a, b, c, d]);
            let shrunk = shrink(&original, "invariant:bug", Duration::from_secs(10), &[], &mut toy);
            prop_assert_eq!(toy(&shrunk.tape).0, "invariant:bug");
            prop_assert!(shrunk.choices <= original.choices().len());
            prop_assert!(shrunk.one_minimal);
            prop_assert_eq!(shrunk.choices, 2);
        }
    }
}
