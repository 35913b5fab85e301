//! `pct`: a probabilistic concurrency test in the manner of Burckhardt et al. (ASPLOS 2010),
//! fitted to a simulator that picks the next task itself. The run gets `depth` change points,
//! each placed uniformly among its first `horizon` statement boundaries (counted over every
//! node); at a change point the node that reached it is preempted, sleeping 1 to
//! [`MAX_PREEMPT_MS`] ms of simulated time, so that every other node runs through the window
//! between that statement and its next. A bug that needs `d` preemptions at particular
//! boundaries among `n` is found with probability about `1 / n^d` per run, where a random
//! choice at every boundary would need each of the `n` to be decided right.
//!
//! Failpoint hits still draw from the fault model unchanged.

use super::{streams, Strategy, MAX_PREEMPT_MS};
use crate::faults::Kind;
use crate::rng::Rng;

/// The `pct` strategy for one run.
pub struct Pct {
    /// The change points still to come, sorted, with the value each gets.
    points: Vec<(u64, u64)>,
}

impl Pct {
    /// `depth` change points for `seed` among `horizon` boundaries.
    pub fn new(seed: u64, depth: u32, horizon: u64) -> Self {
        let mut rng = Rng::new(seed, streams::PCT);
        let horizon = horizon.max(1);
        let mut points: Vec<(u64, u64)> = (0..depth)
            .map(|_| {
                let index = 1 + rng.below_or_equal(horizon - 1);
                let value = 2 + rng.below_or_equal(MAX_PREEMPT_MS - 1);
                (index, value)
            })
            .collect();
        points.sort_unstable();
        points.dedup_by_key(|(index, _)| *index);
        points.reverse();
        Pct { points }
    }
}

impl Strategy for Pct {
    fn preempt(&mut self, index: u64) -> u64 {
        while let Some(&(next, value)) = self.points.last() {
            if next > index {
                return 0;
            }
            self.points.pop();
            if next == index {
                return value;
            }
        }
        0
    }

    fn weights(&self, _point: &str, model: [u32; Kind::ALL.len()]) -> [u32; Kind::ALL.len()] {
        model
    }

    fn describe(&self) -> String {
        let mut points: Vec<String> = self
            .points
            .iter()
            .rev()
            .map(|(index, value)| format!("#{index} for {} ms", value - 1))
            .collect();
        if points.is_empty() {
            points.push("none".to_owned());
        }
        format!(
            "pct change points at statement boundaries {}",
            points.join(", ")
        )
    }
}
