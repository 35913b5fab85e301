//! The workload of one broadcaster-disconnect run, drawn from the tape before anything
//! starts, so that a restarted worker carries on with its remaining changes without drawing
//! again.
//!
//! Sites: `setup/workers` (0..=2, +2 workers), `setup/on-disconnect` (0: a worker that loses
//! its subscription reconnects; 1: it exits and its supervisor starts a fresh one),
//! `op/<worker>/<slot>/kind` (0 skip, 1 a change), `.../dataset` (0..=2) and `.../pause` (ms
//! before the change, 0..=150). Every value shrinks towards 0: two workers, reconnecting,
//! fewer changes, no pauses.

/// Most changes a worker may make.
pub const MAX_OPS: usize = 6;
/// Datasets per run: `ds-0` .. `ds-2`.
pub const DATASETS: u64 = 3;
/// Longest pause before a change.
pub const MAX_PAUSE_MS: u64 = 150;

/// The whole workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Whether a worker that loses its subscription exits (and is restarted) rather than
    /// reconnecting.
    pub exit_on_disconnect: bool,
    /// For each worker, its changes: the pause (ms) before each and the dataset it appends to.
    pub workers: Vec<Vec<(u64, u64)>>,
}

impl Plan {
    /// Worker `index`'s node name (and its subscriber name).
    pub fn worker_name(index: usize) -> String {
        format!("worker-{index}")
    }

    /// Dataset `number`'s name.
    pub fn dataset_name(number: u64) -> String {
        format!("ds-{number}")
    }

    /// The broadcaster's host name.
    pub const BROADCASTER: &'static str = "broadcaster";
}

/// Draws a plan through `draw(site, bound)`.
pub fn draw(mut draw: impl FnMut(String, u64) -> u64) -> Plan {
    let workers = 2 + draw("setup/workers".into(), 2) as usize;
    let exit_on_disconnect = draw("setup/on-disconnect".into(), 1) == 1;
    let workers = (0..workers)
        .map(|worker| {
            (0..MAX_OPS)
                .filter_map(|slot| {
                    let site = |part: &str| format!("op/{worker}/{slot}/{part}");
                    if draw(site("kind"), 1) == 0 {
                        return None;
                    }
                    let dataset = draw(site("dataset"), DATASETS - 1);
                    Some((draw(site("pause"), MAX_PAUSE_MS), dataset))
                })
                .collect()
        })
        .collect();
    Plan {
        exit_on_disconnect,
        workers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_choices_give_the_smallest_workload() {
        let plan = draw(|_, _| 0);
        assert!(!plan.exit_on_disconnect);
        assert_eq!(plan.workers, vec![Vec::new(), Vec::new()]);
    }
}
