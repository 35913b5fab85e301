//! `swarm`: swarm testing (Groce et al., ISSTA 2012), as TigerBeetle's and FoundationDB's
//! simulators use it. Each seed enables a random subset of the fault kinds (yield, sleep,
//! error, crash: each on with probability 1/2) and of the failpoints (each on with
//! probability 1/2, decided by the point's name), and either leaves statement boundaries
//! alone or preempts each with a drawn probability (1 in 20, 100 or 500); when crashes are
//! on, one preemption in [`CRASH_ONE_IN`] crashes the node's process there instead, between
//! two statements that no failpoint marks ([`PREEMPT_CRASH`]). Each network fault kind is
//! on with probability 1/2, and each kind of workload operation a family can leave out
//! ([`crate::world::World::allows`]) with probability 3/4, decided by its name. A run that never
//! sees, say, sleeps or errors gets deeper into the paths the remaining faults open, where
//! a run drawing every kind at every point keeps being cut short.
//!
//! Everything is drawn from a stream of its own ([`streams::SWARM`]), so the workload's and
//! the faults' draws are those `random` would make for the seed; a disabled kind only
//! changes what those draws decide.

use super::{streams, Strategy, MAX_PREEMPT_MS, PREEMPT_CRASH};
use crate::faults::Kind;
use crate::net::NetKind;
use crate::rng::Rng;

/// One preemption in this many is a process crash, when the seed's crashes are on.
pub const CRASH_ONE_IN: u64 = 8;

/// The index of crashes in [`Kind::ALL`].
const CRASH: usize = Kind::ALL.len() - 1;

/// The `swarm` strategy for one run.
pub struct Swarm {
    seed: u64,
    /// Which of yield, sleep, error and crash are on (continue always is).
    kinds: [bool; Kind::ALL.len()],
    /// One in how many statement boundaries is preempted (0: none).
    preempt_one_in: u64,
    /// Which network fault kinds are on ("no fault" always is).
    net: [bool; NetKind::ALL.len()],
    rng: Rng,
}

impl Swarm {
    /// The subset for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, streams::SWARM);
        let mut kinds = [true; Kind::ALL.len()];
        for kind in kinds.iter_mut().skip(1) {
            *kind = rng.below_or_equal(1) == 1;
        }
        let preempt_one_in = [0, 20, 100, 500][rng.below_or_equal(3) as usize];
        let mut net = [true; NetKind::ALL.len()];
        for kind in net.iter_mut().skip(1) {
            *kind = rng.below_or_equal(1) == 1;
        }
        Swarm {
            seed,
            kinds,
            preempt_one_in,
            net,
            rng,
        }
    }

    /// A draw for `name` that depends on the seed and the name only (not on the order
    /// names are met).
    fn by_name(&self, name: &str) -> u64 {
        Rng::for_name(self.seed, name, streams::SWARM).next_u64()
    }

    /// Whether `point` is on for this seed (probability 1/2).
    fn point_enabled(&self, point: &str) -> bool {
        self.by_name(point) & 1 == 1
    }
}

impl Strategy for Swarm {
    fn preempt(&mut self, _index: u64) -> u64 {
        if self.preempt_one_in == 0 || self.rng.below_or_equal(self.preempt_one_in - 1) != 0 {
            return 0;
        }
        if self.kinds[CRASH] && self.rng.below_or_equal(CRASH_ONE_IN - 1) == 0 {
            return PREEMPT_CRASH;
        }
        2 + self.rng.below_or_equal(MAX_PREEMPT_MS - 1)
    }

    fn weights(&self, point: &str, model: [u32; Kind::ALL.len()]) -> [u32; Kind::ALL.len()] {
        let point_on = self.point_enabled(point);
        let mut weights = model;
        for (index, weight) in weights.iter_mut().enumerate().skip(1) {
            if !(point_on && self.kinds[index]) {
                *weight = 0;
            }
        }
        weights
    }

    fn net_weights(&self, model: [u32; NetKind::ALL.len()]) -> [u32; NetKind::ALL.len()] {
        let mut weights = model;
        for (weight, on) in weights.iter_mut().zip(self.net) {
            if !on {
                *weight = 0;
            }
        }
        weights
    }

    fn allows(&self, operation: &str) -> bool {
        // Named apart from the failpoints, so an operation and a point of the same name
        // are decided independently.
        self.by_name(&format!("operation:{operation}")) & 3 != 0
    }

    fn describe(&self) -> String {
        let kinds: Vec<&str> = ["yield", "sleep", "error", "crash"]
            .iter()
            .zip(&self.kinds[1..])
            .filter(|(_, on)| **on)
            .map(|(name, _)| *name)
            .collect();
        let preempt = match self.preempt_one_in {
            0 => "no preemptions".to_owned(),
            n => format!("preemptions at 1 in {n} statement boundaries"),
        };
        let kinds = if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        };
        let net: Vec<&str> = NetKind::ALL
            .iter()
            .zip(self.net)
            .skip(1)
            .filter(|(_, on)| *on)
            .map(|(kind, _)| kind.name())
            .collect();
        let net = if net.is_empty() {
            "none".to_owned()
        } else {
            net.join(", ")
        };
        format!(
            "swarm: fault kinds {kinds} at half the failpoints; network faults {net}; {preempt}"
        )
    }
}
