//! Safety, then liveness: the two phases of a run a scenario's supervisor waits through
//! (faults on for [`FAULT_PHASE`], then everything heals and the nodes must finish within
//! [`LIVENESS_BOUND`]), and the [`Backoff`] a node retrying a failure pauses with. Shared by
//! every scenario family, the engine's and a user's own.

use std::time::Duration;

use crate::world::World;

/// Simulated time with faults on before everything heals.
pub const FAULT_PHASE: Duration = Duration::from_secs(2);
/// Simulated time, after healing, within which every node must finish.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(20);

/// Safety, then liveness: waits through the fault phase ([`FAULT_PHASE`]) for `done`; if the
/// nodes are not done by then, heals everything and waits up to [`LIVENESS_BOUND`]. Always
/// leaves the world healed. Returns whether the nodes finished (a recorded failure also
/// ends the wait); on `false` the scenario records its liveness failure
/// ([`World::fail_liveness`]).
pub async fn faults_then_heal(world: &World, done: impl Fn() -> bool) -> bool {
    faults_then_heal_within(world, (FAULT_PHASE, LIVENESS_BOUND), done).await
}

/// [`faults_then_heal`] with a fault phase and a liveness bound of the scenario's own.
pub async fn faults_then_heal_within(
    world: &World,
    (fault_phase, liveness_bound): (Duration, Duration),
    done: impl Fn() -> bool,
) -> bool {
    let finished = wait_until(world, &done, fault_phase).await || {
        world.heal();
        wait_until(world, &done, liveness_bound).await
    };
    if !world.is_healed() {
        world.heal();
    }
    finished
}

async fn wait_until(world: &World, done: &impl Fn() -> bool, bound: Duration) -> bool {
    let poll = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while !done() && !world.has_failed() {
        if waited >= bound {
            return false;
        }
        tokio::time::sleep(poll).await;
        waited += poll;
    }
    true
}

/// The longest pause a [`Backoff`] makes.
const BACKOFF_CAP: Duration = Duration::from_millis(500);

/// Pauses between attempts at something that keeps failing: `first`, then twice the last
/// pause, up to half a second. A node retrying a failure that does not go away (a store a
/// planted bug has wedged) makes about fifty attempts in the fault phase and the liveness
/// bound together instead of eleven thousand, each a SQLite transaction and an event: a shrinker's candidate that ends in
/// that liveness failure costs a few runs' time, not a hundred.
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A backoff whose first pause is `first`.
    pub fn new(first: Duration) -> Self {
        Backoff { next: first }
    }

    /// Sleeps (in simulated time) for the next pause.
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }

    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        let pauses: Vec<u128> = (0..10).map(|_| backoff.next_pause().as_millis()).collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64, 128, 256, 500, 500]);
    }

    #[test]
    fn a_retry_that_never_succeeds_makes_tens_of_attempts_within_the_liveness_bound() {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        let mut waited = Duration::ZERO;
        let mut attempts = 0;
        while waited < FAULT_PHASE + LIVENESS_BOUND {
            waited += backoff.next_pause();
            attempts += 1;
        }
        assert!((40..=60).contains(&attempts), "{attempts} attempts");
    }
}
