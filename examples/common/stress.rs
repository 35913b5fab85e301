//! What the plain stress loops share (included by `#[path]`): their arguments, the
//! xorshift that draws their fault instants, and the sightings tally with the lines
//! `ci/stress-comparison` reads.

use std::time::{Duration, Instant};

/// Positional argument `index` (after the program's name) as a number, or `default`.
pub fn arg(index: usize, default: u64, name: &str) -> u64 {
    std::env::args()
        .nth(index + 1)
        .map_or(Ok(default), |a| a.parse())
        .unwrap_or_else(|_| panic!("{name}: a whole number"))
}

/// Whether positional argument `index` is the flag `1`.
pub fn flag(index: usize) -> bool {
    std::env::args().nth(index + 1).is_some_and(|a| a == "1")
}

/// A xorshift generator for fault instants (fixed start: a loop's draws are repeatable).
pub struct Instants(u64);

impl Default for Instants {
    fn default() -> Self {
        Instants(0x9E37_79B9_7F4A_7C15)
    }
}

impl Instants {
    /// An instant drawn uniformly below `bound`.
    pub fn below(&mut self, bound: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_nanos(self.0 % (bound.as_nanos() as u64).max(1))
    }
}

/// The violations a loop saw: the first is printed when it happens; with `count_all` the
/// loop goes on and [`Sightings::finish`] prints the share of iterations that broke it.
pub struct Sightings {
    started: Instant,
    count_all: bool,
    hits: u64,
    first: Option<u64>,
}

impl Sightings {
    /// Starts the clock.
    pub fn new(count_all: bool) -> Self {
        Sightings {
            started: Instant::now(),
            count_all,
            hits: 0,
            first: None,
        }
    }

    /// Notes iteration `iteration`'s violation, if any; whether the loop should stop.
    pub fn saw(&mut self, iteration: u64, violation: Option<String>) -> bool {
        let Some(violation) = violation else {
            return false;
        };
        self.hits += 1;
        if self.first.is_none() {
            println!(
                "first violation at iteration {iteration} after {:.2}s: {violation}",
                self.started.elapsed().as_secs_f64()
            );
            self.first = Some(iteration);
        }
        !self.count_all
    }

    /// Prints the tally after `iterations`, with `more` appended to it.
    pub fn finish(&self, iterations: u64, more: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        match self.first {
            Some(_) => println!(
                "{} of {iterations} iterations broke it ({:.3}%){more}, {seconds:.2}s",
                self.hits,
                100.0 * self.hits as f64 / iterations as f64
            ),
            None => println!("no violation in {iterations} iterations{more} ({seconds:.2}s)"),
        }
    }
}
