//! The network fault model: how a scenario wants the network between its hosts faulted
//! while faults are on, built on madsim's own network simulator (link and node clogging and
//! its send latency), and knowing nothing of what the hosts say to each other.
//!
//! A run has up to [`NetModel::faults`] fault slots. Slot `k` draws, at the start of the run,
//! its kind at `net/<k>` (0, the simplest, is "no fault"), and for a fault: when it starts
//! (`net/<k>:start`, ms after the run starts), how long it lasts (`net/<k>:for`, ms, plus
//! one), which hosts (`net/<k>:from`, `net/<k>:to`, indices into the hosts present when it
//! starts) and, for latency, how much (`net/<k>:extra`, ms, plus one). Every value shrinks
//! towards "no fault", "at once", "1 ms" and "the first host", so the shrinker removes and
//! shortens network faults like any other choice. The world heals the network with
//! everything else; the timeline has a `net` line when each fault starts and ends.
//!
//! What is not modelled: packet loss inside a connection (madsim delivers a connection's
//! bytes in order or not at all), per-link latency (the latency fault widens every link's),
//! and a reset of one established connection (madsim's connections are reliable channels and
//! its `reset_node` only drops a host's bindings; see FIELD-NOTES): a server that should reset
//! connections mid-transfer passes a failpoint between writes, where an injected error drops
//! the connection (the engine's sources do, at `engine.sources.answer.entry`).

use std::time::Duration;

/// Kinds of network fault, in tape-index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    /// No fault in this slot.
    None,
    /// Both directions of the link between two hosts are clogged (a partition).
    Partition,
    /// One direction of a link is clogged: the first host's packets to the second are held.
    OneWay,
    /// A host is cut off: nothing in, nothing out.
    Isolate,
    /// A host receives but sends nothing: it accepts and never answers.
    Mute,
    /// Every link's latency grows.
    Latency,
}

impl NetKind {
    /// Every kind, simplest first.
    pub const ALL: [NetKind; 6] = [
        NetKind::None,
        NetKind::Partition,
        NetKind::OneWay,
        NetKind::Isolate,
        NetKind::Mute,
        NetKind::Latency,
    ];

    /// The kind a tape value stands for.
    pub fn from_index(index: u64) -> NetKind {
        NetKind::ALL[(index as usize).min(NetKind::ALL.len() - 1)]
    }

    /// Whether it names two hosts.
    pub fn is_link(self) -> bool {
        matches!(self, NetKind::Partition | NetKind::OneWay)
    }

    /// Whether it names one host.
    pub fn is_host(self) -> bool {
        matches!(self, NetKind::Isolate | NetKind::Mute)
    }

    /// Its name in the timeline and `cargo sim list`.
    pub fn name(self) -> &'static str {
        match self {
            NetKind::None => "none",
            NetKind::Partition => "partition",
            NetKind::OneWay => "one-way",
            NetKind::Isolate => "isolate",
            NetKind::Mute => "mute",
            NetKind::Latency => "latency",
        }
    }

    /// What it does, for `cargo sim list`.
    pub fn meaning(self) -> &'static str {
        match self {
            NetKind::None => "no network fault",
            NetKind::Partition => "both directions of a link clogged for a drawn interval",
            NetKind::OneWay => "one direction of a link clogged for a drawn interval",
            NetKind::Isolate => "a host cut off from every other for a drawn interval",
            NetKind::Mute => "a host that receives but never sends (accepts, never answers)",
            NetKind::Latency => "every link's latency raised by a drawn amount",
        }
    }
}

/// How a scenario wants its network faulted. Every field's default is the value shown by
/// [`NetModel::default`]: no network faults at all, so a scenario without a network draws
/// nothing and its traces do not change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetModel {
    /// Fault slots per run. Default 0.
    pub faults: u32,
    /// Relative weights of the kinds in [`NetKind::ALL`] order. Default
    /// `[4, 2, 1, 1, 1, 1]`.
    pub weights: [u32; NetKind::ALL.len()],
    /// Latest start of a fault after the run starts. Default 200 ms.
    pub max_start: Duration,
    /// Longest fault. Default 500 ms.
    pub max_duration: Duration,
    /// Most latency a latency fault adds. Default 50 ms.
    pub max_extra_latency: Duration,
}

impl Default for NetModel {
    fn default() -> Self {
        NetModel {
            faults: 0,
            weights: [4, 2, 1, 1, 1, 1],
            max_start: Duration::from_millis(200),
            max_duration: Duration::from_millis(500),
            max_extra_latency: Duration::from_millis(50),
        }
    }
}

/// One drawn network fault, before its hosts are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetFault {
    /// Its slot.
    pub slot: u32,
    /// What it does.
    pub kind: NetKind,
    /// When it starts, after the run starts.
    pub start: Duration,
    /// How long it lasts.
    pub duration: Duration,
    /// The first (or only) host, an index taken modulo the hosts present when it starts.
    pub from: u64,
    /// The second host of a link, an index into the other hosts.
    pub to: u64,
    /// Latency added.
    pub extra: Duration,
}

/// The tape site of slot `slot`'s `part` (`""` for its kind, `":start"`, `":for"`...).
pub fn site(slot: u32, part: &str) -> String {
    format!("net/{slot}{part}")
}

/// Whether `site` is a network fault's.
pub fn is_site(site: &str) -> bool {
    site.starts_with("net/")
}

/// Largest host index drawn (indices are taken modulo the hosts present).
const HOST_BOUND: u64 = 15;

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

impl NetFault {
    /// Draws slot `slot` from `draw(site, bound)` and `weighted(site, weights)`; `None` when
    /// the slot has no fault.
    pub fn draw(
        model: &NetModel,
        slot: u32,
        draws: &mut dyn crate::faults::Draws,
    ) -> Option<NetFault> {
        let kind = NetKind::from_index(draws.weighted(site(slot, ""), &model.weights));
        if kind == NetKind::None {
            return None;
        }
        let start = draws.below_or_equal(site(slot, ":start"), millis(model.max_start));
        let duration =
            1 + draws.below_or_equal(site(slot, ":for"), millis(model.max_duration).max(1) - 1);
        let from = match kind.is_link() || kind.is_host() {
            true => draws.below_or_equal(site(slot, ":from"), HOST_BOUND),
            false => 0,
        };
        let to = match kind.is_link() {
            true => draws.below_or_equal(site(slot, ":to"), HOST_BOUND),
            false => 0,
        };
        let extra = match kind {
            NetKind::Latency => {
                let bound = millis(model.max_extra_latency).max(1) - 1;
                1 + draws.below_or_equal(site(slot, ":extra"), bound)
            }
            _ => 0,
        };
        Some(NetFault {
            slot,
            kind,
            start: Duration::from_millis(start),
            duration: Duration::from_millis(duration),
            from,
            to,
            extra: Duration::from_millis(extra),
        })
    }

    /// The hosts it acts on among `hosts` present (`None` if there are too few).
    pub fn hosts(&self, hosts: usize) -> Option<(usize, Option<usize>)> {
        if self.kind.is_link() {
            if hosts < 2 {
                return None;
            }
            let from = (self.from % hosts as u64) as usize;
            let other = (self.to % (hosts as u64 - 1)) as usize;
            let to = if other >= from { other + 1 } else { other };
            return Some((from, Some(to)));
        }
        if self.kind.is_host() {
            return (hosts > 0).then(|| ((self.from % hosts as u64) as usize, None));
        }
        Some((0, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::{Chooser, Source, Tape};

    #[test]
    fn a_slot_whose_entries_are_missing_has_no_fault() {
        let mut chooser = Chooser::new(
            1,
            &Source::Lenient(Tape::new("demo", 1)),
            Default::default(),
        );
        let model = NetModel {
            faults: 1,
            ..NetModel::default()
        };
        assert_eq!(NetFault::draw(&model, 0, &mut chooser), None);
    }

    #[test]
    fn a_link_always_joins_two_different_hosts() {
        for from in 0..6 {
            for to in 0..6 {
                let fault = NetFault {
                    slot: 0,
                    kind: NetKind::Partition,
                    start: Duration::ZERO,
                    duration: Duration::from_millis(1),
                    from,
                    to,
                    extra: Duration::ZERO,
                };
                let (a, b) = fault.hosts(3).unwrap();
                assert_ne!(Some(a), b, "{from} {to}");
                assert!(a < 3 && b.unwrap() < 3);
            }
        }
        let lonely = NetFault {
            slot: 0,
            kind: NetKind::OneWay,
            start: Duration::ZERO,
            duration: Duration::ZERO,
            from: 0,
            to: 0,
            extra: Duration::ZERO,
        };
        assert_eq!(lonely.hosts(1), None);
    }

    #[test]
    fn drawn_faults_round_trip_through_a_tape() {
        let model = NetModel {
            faults: 4,
            weights: [0, 1, 1, 1, 1, 1],
            ..NetModel::default()
        };
        let mut recording = Chooser::new(9, &Source::Seed, Default::default());
        let drawn: Vec<_> = (0..4)
            .map(|k| NetFault::draw(&model, k, &mut recording))
            .collect();
        let mut tape = Tape::new("demo", 9);
        tape.entries = recording.finish().0;
        let mut replay = Chooser::new(9, &Source::Replay(tape), Default::default());
        let again: Vec<_> = (0..4)
            .map(|k| NetFault::draw(&model, k, &mut replay))
            .collect();
        assert_eq!(drawn, again);
        assert_eq!(replay.finish().1, None);
        assert!(drawn.iter().all(Option::is_some));
    }
}
