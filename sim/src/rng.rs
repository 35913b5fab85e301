//! The run's own pseudo-random generator (SplitMix64): small, fast and the same on every
//! platform, so a seed means the same choices everywhere. Never seeded from the OS.

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`, offset by `stream` so that separate uses of one seed
    /// (workload choices, fault choices) do not share a sequence.
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng {
            state: seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
        }
    }

    /// A generator for `seed` and `name` (an FNV-1a hash of the name over the seed), offset
    /// by `stream`: its draws depend on the seed and the name only, never on the order in
    /// which names are met.
    pub fn for_name(seed: u64, name: &str, stream: u64) -> Self {
        let mut hash = seed ^ 0xCBF2_9CE4_8422_2325;
        for byte in name.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
        }
        Rng::new(hash, stream)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=bound`, without modulo bias worth caring about for small bounds.
    pub fn below_or_equal(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(span) => ((self.next_u64() as u128 * span as u128) >> 64) as u64,
            None => self.next_u64(),
        }
    }

    /// An index drawn in proportion to `weights` (all-zero weights give 0).
    pub fn weighted(&mut self, weights: &[u32]) -> u64 {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return 0;
        }
        let mut ticket = self.below_or_equal(total - 1);
        for (index, weight) in weights.iter().enumerate() {
            if ticket < u64::from(*weight) {
                return index as u64;
            }
            ticket -= u64::from(*weight);
        }
        unreachable!("ticket below the total weight")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let first: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 0);
                move |_| r.next_u64()
            })
            .collect();
        let again: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 0);
                move |_| r.next_u64()
            })
            .collect();
        let other: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_weights_are_respected() {
        let mut rng = Rng::new(1, 0);
        assert!((0..1000).all(|_| rng.below_or_equal(4) <= 4));
        let picks: Vec<u64> = (0..1000).map(|_| rng.weighted(&[0, 3, 0])).collect();
        assert!(picks.iter().all(|p| *p == 1));
    }
}
