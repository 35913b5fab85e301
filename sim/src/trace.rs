//! The trace: the ordered events of a run, with a stable hash and a readable timeline.
//!
//! Only simulated time, node names and values the run computed go in; never a path, a
//! wall-clock time or anything from the OS. The hash is FNV-1a over a canonical rendering,
//! the same on every platform.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Simulated nanoseconds since the run started.
    pub time_ns: u64,
    /// The node it happened on (`supervisor` for the harness itself).
    pub node: String,
    /// What happened, for example `append.ok` or `fp`.
    pub kind: String,
    /// Its details.
    pub detail: String,
}

impl Event {
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{}|{}|{}|{}",
            self.time_ns, self.node, self.kind, self.detail
        );
    }
}

/// The ordered events of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The events, in the order they happened.
    pub events: Vec<Event>,
}

/// Where two traces first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The index of the first differing event.
    pub index: usize,
    /// The event in the first trace there, if any.
    pub left: Option<Event>,
    /// The event in the second trace there, if any.
    pub right: Option<Event>,
}

impl Trace {
    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// The stable 64-bit FNV-1a hash of the trace, as 16 hex digits.
    pub fn hash(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut line = String::new();
        for event in &self.events {
            line.clear();
            event.render(&mut line);
            for byte in line.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{hash:016x}")
    }

    /// The first event at which `self` and `other` differ, if they differ.
    pub fn first_difference(&self, other: &Trace) -> Option<Difference> {
        let longest = self.events.len().max(other.events.len());
        (0..longest)
            .find(|i| self.events.get(*i) != other.events.get(*i))
            .map(|index| Difference {
                index,
                left: self.events.get(index).cloned(),
                right: other.events.get(index).cloned(),
            })
    }

    /// A readable timeline: one line per event, time in milliseconds.
    pub fn timeline(&self) -> String {
        let mut out = String::new();
        for (index, event) in self.events.iter().enumerate() {
            let _ = writeln!(
                out,
                "{index:>5} {:>10.3}ms  {:<12} {:<22} {}",
                event.time_ns as f64 / 1e6,
                event.node,
                event.kind,
                event.detail
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> Event {
        Event {
            time_ns: 5,
            node: "writer-1".into(),
            kind: kind.into(),
            detail: "d".into(),
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive_to_every_field() {
        let trace = Trace {
            events: vec![event("a"), event("b")],
        };
        assert_eq!(trace.hash(), trace.clone().hash());
        let mut changed = trace.clone();
        changed.events[1].time_ns = 6;
        assert_ne!(trace.hash(), changed.hash());
        assert_eq!(Trace::default().hash(), "cbf29ce484222325");
    }

    #[test]
    fn first_difference_points_at_the_first_changed_or_missing_event() {
        let left = Trace {
            events: vec![event("a"), event("b")],
        };
        let right = Trace {
            events: vec![event("a"), event("c"), event("d")],
        };
        let difference = left.first_difference(&right).unwrap();
        assert_eq!(difference.index, 1);
        assert_eq!(difference.right.unwrap().kind, "c");
        assert!(left.first_difference(&left.clone()).is_none());
    }
}
