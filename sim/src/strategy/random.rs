//! `random`: every failpoint hit draws from the scenario's fault model as it stands, and no
//! statement boundary is preempted.

use super::Strategy;
use crate::faults::Kind;

/// The default strategy.
pub struct Random;

impl Strategy for Random {
    fn preempt(&mut self, _index: u64) -> u64 {
        0
    }

    fn weights(&self, _point: &str, model: [u32; Kind::ALL.len()]) -> [u32; Kind::ALL.len()] {
        model
    }

    fn describe(&self) -> String {
        String::new()
    }
}
