//! The workload of one backfill run, drawn from the tape before anything starts, so that a
//! restarted node carries on without drawing again.
//!
//! Sites: `setup/rows` (extra rows to backfill in steps of [`ROWS_STEP`], 0..=10, over a base
//! of [`BASE_ROWS`]), `setup/orphans` (0..=8 rows of a txid never published), `setup/batch`
//! (batch size [`MIN_BATCH`] plus 0..=15), `setup/yield` (ms between batches, 0..=2),
//! `setup/cancel` (0: never; k: cancel the first attempt k x 5 ms after it starts, 1..=20),
//! `setup/progress` (0: progress written at most once a second, the default; 1: every 10 ms),
//! `setup/writers` (0..=1, +1 writer), `op/<writer>/<slot>/kind` (0 skip, 1 an append of
//! new rows) and `.../pause` (ms before it, 0..=60). Every value shrinks towards 0: the
//! fewest rows, no orphans, the smallest batch, no yield, no cancel, one writer, no appends.

/// Rows every run backfills at least.
pub const BASE_ROWS: u64 = 600;
/// Rows `setup/rows` adds per step.
pub const ROWS_STEP: u64 = 60;
/// Rows per append in the setup (so the chain has 12 to 24 links).
pub const SETUP_APPEND: u64 = 50;
/// The smallest batch size drawn.
pub const MIN_BATCH: i64 = 5;
/// Most appends a writer may make.
pub const MAX_OPS: usize = 6;
/// Rows per writer append.
pub const WRITER_ROWS: u64 = 3;
/// Longest pause before a writer's append.
pub const MAX_PAUSE_MS: u64 = 60;
/// Step of the cancel time.
pub const CANCEL_STEP_MS: u64 = 5;
/// The dataset every run backfills.
pub const DATASET: &str = "items";

/// The whole workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Rows the setup writes (all of them to backfill).
    pub rows: u64,
    /// Rows of a txid no version publishes (never eligible).
    pub orphans: u64,
    /// The backfill's batch size.
    pub batch: i64,
    /// The backfill's yield between batches, in ms.
    pub yield_ms: i64,
    /// When the first attempt is canceled, in ms after it starts.
    pub cancel_after_ms: Option<u64>,
    /// Least time between two progress writes, in ms.
    pub progress_every_ms: u64,
    /// For each writer, its appends: the pause (ms) before each.
    pub writers: Vec<Vec<u64>>,
}

impl Plan {
    /// Writer `index`'s node name.
    pub fn writer_name(index: usize) -> String {
        format!("writer-{index}")
    }
}

/// Draws a plan through `draw(site, bound)`.
pub fn draw(mut draw: impl FnMut(String, u64) -> u64) -> Plan {
    let rows = BASE_ROWS + ROWS_STEP * draw("setup/rows".into(), 10);
    let orphans = draw("setup/orphans".into(), 8);
    let batch = MIN_BATCH + draw("setup/batch".into(), 15) as i64;
    let yield_ms = draw("setup/yield".into(), 2) as i64;
    let cancel = draw("setup/cancel".into(), 20);
    let progress_every_ms = match draw("setup/progress".into(), 1) {
        0 => 1000,
        _ => 10,
    };
    let writers = 1 + draw("setup/writers".into(), 1) as usize;
    let writers = (0..writers)
        .map(|writer| {
            (0..MAX_OPS)
                .filter_map(|slot| {
                    let site = |part: &str| format!("op/{writer}/{slot}/{part}");
                    (draw(site("kind"), 1) == 1).then(|| draw(site("pause"), MAX_PAUSE_MS))
                })
                .collect()
        })
        .collect();
    Plan {
        rows,
        orphans,
        batch,
        yield_ms,
        cancel_after_ms: (cancel > 0).then_some(cancel * CANCEL_STEP_MS),
        progress_every_ms,
        writers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_choices_give_the_smallest_workload() {
        let plan = draw(|_, _| 0);
        assert_eq!(plan.rows, BASE_ROWS);
        assert_eq!((plan.orphans, plan.batch, plan.yield_ms), (0, MIN_BATCH, 0));
        assert_eq!(plan.cancel_after_ms, None);
        assert_eq!(plan.writers, vec![Vec::<u64>::new()]);
    }
}
