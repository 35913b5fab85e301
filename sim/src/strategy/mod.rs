//! Search strategies: how a fresh run decides its scheduling points and which faults it may
//! draw. One seam ([`Strategy`]), one strategy per file, chosen with `--strategy` (or
//! `FAULTLINE_STRATEGY`) and recorded in the tape, so that a replay needs nothing else.
//!
//! A strategy only shapes what a fresh run draws. A replay or a shrink candidate takes every
//! decision from its tape, whatever the strategy; the strategy's name is kept for the record
//! and so that a replay consults the tape at statement boundaries only when it can hold
//! preemptions there.
//!
//! * [`random`]: every failpoint hit draws from the scenario's fault model; statement
//!   boundaries are never preempted (the behaviour before strategies).
//! * [`pct`]: a probabilistic concurrency test (`pct:1` is [`DEFAULT_FRESH`]). `depth` change points are placed uniformly
//!   among the run's first `horizon` statement boundaries (the scenario's
//!   [`crate::Scenario::preemption_horizon`]); at each the running node is preempted for 1 to
//!   20 ms of simulated time, so that every other node runs through that window.
//! * [`swarm`]: per seed, a random subset of the fault kinds, of the failpoints, of the
//!   network fault kinds and of the workload's operation kinds is enabled, and statement
//!   boundaries are preempted at a drawn rate (or not at all); the subset comes from a
//!   stream of its own, so the workload's draws are those of `random`.

use std::fmt;

use crate::faults::Kind;
use crate::net::NetKind;

mod pct;
mod random;
mod swarm;

/// The strategy fresh runs use unless `--strategy` or `FAULTLINE_STRATEGY` names another:
/// `pct:1`, picked from the strategy table of all 49 mutants (docs/performance.md): it needs
/// 0.88 times random's runs to the first failure (geometric mean), less than half random's
/// runs in the worst case summed over the mutants, and found every mutant from every start
/// seed. A tape without a strategy was recorded with `random` ([`StrategyKind::default`]).
pub const DEFAULT_FRESH: StrategyKind = StrategyKind::Pct { depth: 1 };

/// Which strategy a run uses, as named on the command line and in a tape. Its `Default` is
/// `Random`, what a tape that names none was recorded with; fresh runs default to
/// [`DEFAULT_FRESH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrategyKind {
    /// [`random`].
    #[default]
    Random,
    /// [`pct`] with this many change points (1 to [`MAX_PCT_DEPTH`]).
    Pct {
        /// The number of change points.
        depth: u32,
    },
    /// [`swarm`].
    Swarm,
}

/// The failpoint name a statement boundary's tape site carries
/// (`fp/<node>/sched.preempt#<n>`, `n` counting the node's boundaries): a site like every
/// failpoint's, so the shrinker moves and renumbers it the same way. No fault is ever drawn
/// there, and crash-point enumeration does not crash there.
pub const PREEMPT_POINT: &str = "sched.preempt";
/// The most change points `pct` accepts.
pub const MAX_PCT_DEPTH: u32 = 3;
/// The change points `pct` places when none are named.
pub const DEFAULT_PCT_DEPTH: u32 = 2;
/// The longest preemption a strategy draws, in milliseconds.
pub const MAX_PREEMPT_MS: u64 = 20;
/// The largest pause a preemption entry holds: 0 continue, 1 yield, `v` sleeps `v - 1` ms.
pub const MAX_PREEMPT_VALUE: u64 = MAX_PREEMPT_MS + 1;
/// The preemption entry that crashes the node's process at the boundary, just after its
/// statement completed: a window between two statements that no failpoint marks (what
/// crash-point enumeration tries at every boundary, and `swarm` draws now and then).
pub const PREEMPT_CRASH: u64 = MAX_PREEMPT_VALUE + 1;
/// What the strategies accept, for error messages.
pub const ACCEPTED: &str = "random, pct, pct:D (D change points, 1 to 3; pct is pct:2) or swarm";

impl StrategyKind {
    /// Every strategy, with its default settings (for tables and `list`).
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::Random,
        StrategyKind::Pct {
            depth: DEFAULT_PCT_DEPTH,
        },
        StrategyKind::Swarm,
    ];

    /// Parses `random`, `pct`, `pct:D` or `swarm`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("unknown strategy {text:?}: accepted are {ACCEPTED}");
        match text.trim() {
            "random" => Ok(StrategyKind::Random),
            "swarm" => Ok(StrategyKind::Swarm),
            "pct" => Ok(StrategyKind::Pct {
                depth: DEFAULT_PCT_DEPTH,
            }),
            other => {
                let depth = other.strip_prefix("pct:").ok_or_else(bad)?;
                match depth.parse::<u32>() {
                    Ok(depth) if (1..=MAX_PCT_DEPTH).contains(&depth) => {
                        Ok(StrategyKind::Pct { depth })
                    }
                    _ => Err(bad()),
                }
            }
        }
    }

    /// Whether runs of this strategy may hold preemptions at statement boundaries.
    pub fn preempts(self) -> bool {
        self != StrategyKind::Random
    }

    /// One line for `list` and the README.
    pub fn summary(self) -> &'static str {
        match self {
            StrategyKind::Random => {
                "every failpoint hit draws from the fault model; statements are never preempted"
            }
            StrategyKind::Pct { .. } => {
                "D change points among the run's statement boundaries, each preempting the node \
                 that runs there for 1 to 20 ms"
            }
            StrategyKind::Swarm => {
                "per seed, a random subset of fault kinds, failpoints, network fault kinds and \
                 workload operations, and a drawn rate of preemptions (some of them crashes) at \
                 statement boundaries"
            }
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyKind::Random => f.write_str("random"),
            StrategyKind::Pct { depth } => write!(f, "pct:{depth}"),
            StrategyKind::Swarm => f.write_str("swarm"),
        }
    }
}

impl serde::Serialize for StrategyKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StrategyKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StrategyKind::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Decides, for a fresh run, what its scheduling points do and which faults it may draw.
pub trait Strategy: Send {
    /// The value of the run's statement boundary number `index` (counted over every node
    /// from 1): 0 continue, 1 yield, `v` sleeps `v - 1` ms (at most [`MAX_PREEMPT_VALUE`]),
    /// or [`PREEMPT_CRASH`].
    fn preempt(&mut self, index: u64) -> u64;
    /// The weights, in [`Kind::ALL`] order, a hit of `point` draws its kind with, given the
    /// fault model's. A kind the strategy disables gets weight 0.
    fn weights(&self, point: &str, model: [u32; Kind::ALL.len()]) -> [u32; Kind::ALL.len()];
    /// The weights a network fault slot draws its kind with, in [`NetKind::ALL`] order,
    /// given the model's. A kind the strategy disables gets weight 0. Default: the model's.
    fn net_weights(&self, model: [u32; NetKind::ALL.len()]) -> [u32; NetKind::ALL.len()] {
        model
    }
    /// Whether the workload may perform operations of kind `operation` in this run (a family
    /// asks through [`crate::world::World::allows`] for each kind it can leave out).
    /// Default: every kind.
    fn allows(&self, _operation: &str) -> bool {
        true
    }
    /// What the strategy chose for this run, for the trace (empty if nothing).
    fn describe(&self) -> String;
}

/// The strategy `kind` for a fresh run of `seed` whose scenario expects about `horizon`
/// statement boundaries per run.
pub fn build(kind: StrategyKind, seed: u64, horizon: u64) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Random => Box::new(random::Random),
        StrategyKind::Pct { depth } => Box::new(pct::Pct::new(seed, depth, horizon)),
        StrategyKind::Swarm => Box::new(swarm::Swarm::new(seed)),
    }
}

/// The stream numbers of the strategies' generators ([`crate::rng::Rng::new`]): apart from
/// the workload's and faults' stream 1, so a strategy's draws never shift the run's own.
pub(crate) mod streams {
    /// [`super::pct`]'s change points and preemption lengths.
    pub const PCT: u64 = 3;
    /// [`super::swarm`]'s subset and preemptions.
    pub const SWARM: u64 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_accepted() {
        for text in ["random", "pct:1", "pct:2", "pct:3", "swarm"] {
            assert_eq!(StrategyKind::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            StrategyKind::parse("pct").unwrap(),
            StrategyKind::Pct { depth: 2 }
        );
        for bad in ["", "pct:0", "pct:4", "pct:x", "PCT", "swarm:2", "dfs"] {
            let error = StrategyKind::parse(bad).unwrap_err();
            assert!(error.contains(ACCEPTED), "{bad}: {error}");
        }
    }

    #[test]
    fn random_never_preempts_and_keeps_the_model() {
        let mut strategy = build(StrategyKind::Random, 7, 100);
        assert!((1..1000).all(|i| strategy.preempt(i) == 0));
        assert_eq!(strategy.weights("p", [80, 10, 6, 3, 1]), [80, 10, 6, 3, 1]);
    }

    #[test]
    fn pct_preempts_exactly_its_depth_within_the_horizon() {
        for seed in 0..50 {
            let mut strategy = build(StrategyKind::Pct { depth: 3 }, seed, 200);
            let values: Vec<u64> = (1..=200).map(|i| strategy.preempt(i)).collect();
            let preempted = values.iter().filter(|v| **v != 0).count();
            assert!((1..=3).contains(&preempted), "seed {seed}: {preempted}");
            assert!(values.iter().all(|v| *v <= MAX_PREEMPT_VALUE));
            assert!((201..2000).all(|i| strategy.preempt(i) == 0));
        }
    }

    #[test]
    fn swarm_leaves_out_network_kinds_and_operations_by_seed_and_others_never_do() {
        let model = [4, 2, 1, 1, 1, 1];
        let (mut net_subsets, mut left_out) = (std::collections::BTreeSet::new(), 0);
        for seed in 0..64 {
            let swarm = build(StrategyKind::Swarm, seed, 100);
            let weights = swarm.net_weights(model);
            assert_eq!(weights[0], model[0], "no fault is always possible");
            assert!(weights.iter().zip(model).all(|(w, m)| *w == 0 || *w == m));
            net_subsets.insert(weights);
            left_out += usize::from(!swarm.allows("delete"));
            assert_eq!(swarm.allows("delete"), swarm.allows("delete"), "stable");
            for other in [StrategyKind::Random, StrategyKind::Pct { depth: 2 }] {
                let strategy = build(other, seed, 100);
                assert_eq!(strategy.net_weights(model), model);
                assert!(strategy.allows("delete"));
            }
        }
        assert!(net_subsets.len() > 4, "{net_subsets:?}");
        assert!(
            (4..=32).contains(&left_out),
            "a quarter expected: {left_out} of 64"
        );
    }

    #[test]
    fn swarm_subsets_differ_between_seeds_and_never_enable_a_disabled_kind() {
        let model = [80, 10, 6, 3, 1];
        let mut subsets = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let strategy = build(StrategyKind::Swarm, seed, 100);
            let weights = strategy.weights("engine.publish.before_commit", model);
            assert_eq!(weights[0], model[0], "continue is always possible");
            assert!(weights.iter().zip(model).all(|(w, m)| *w == 0 || *w == m));
            subsets.insert(weights);
        }
        assert!(subsets.len() > 4, "{subsets:?}");
    }
}
