//! The workload of one run, drawn from the tape before anything starts, so that a restarted
//! node replays its remaining operations without drawing again.
//!
//! Sites: `setup/writers` (0..=3, +2 writers), `setup/datasets` (0..=1, +1),
//! `op/<writer>/<n>/kind` (0 skip, 1 append), `op/<writer>/<n>/batch` (0..=4, +1 items),
//! `op/<writer>/<n>/dataset`, `reader/reads` (0..=3), `reader/<n>/pause` (ms).
//! Every value shrinks towards 0: fewer writers, fewer operations, smaller batches.

/// Most operations a writer may have.
pub const MAX_OPS_PER_WRITER: usize = 6;
/// Largest batch.
pub const MAX_BATCH: u64 = 5;

/// One planned append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The dataset it appends to (index into [`Plan::datasets`]).
    pub dataset: usize,
    /// How many items it appends.
    pub batch: u64,
    /// The items' payload: 0 the simple `payload of <key>`, else an edge string
    /// ([`crate::values::string_of`]).
    pub payload: u64,
}

/// The whole workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Dataset names.
    pub datasets: Vec<String>,
    /// For each writer, its operations in order (skipped slots are absent).
    pub writers: Vec<Vec<Op>>,
    /// For each read round, the pause before it (ms) and the dataset it reads.
    pub reads: Vec<(u64, usize)>,
}

impl Plan {
    /// The payload of item `key` of an op whose payload draw was `payload`.
    pub fn payload(payload: u64, key: &str) -> String {
        crate::values::string_of(payload, || format!("payload of {key}"))
    }

    /// The key of item `index` of operation `op` of `writer`: unique in the run.
    pub fn key(writer: usize, op: usize, index: u64) -> String {
        format!("w{writer}-op{op}-i{index}")
    }

    /// The name of writer `index`'s node.
    pub fn writer_name(index: usize) -> String {
        format!("writer-{index}")
    }
}

/// Draws a plan through `draw(site, bound)`.
pub fn draw(mut draw: impl FnMut(String, u64) -> u64) -> Plan {
    let writers = 2 + draw("setup/writers".into(), 3) as usize;
    let dataset_count = 1 + draw("setup/datasets".into(), 1) as usize;
    let datasets = (0..dataset_count).map(|d| format!("dataset-{d}")).collect();
    let mut plan = Plan {
        datasets,
        writers: Vec::new(),
        reads: Vec::new(),
    };
    for writer in 0..writers {
        let mut ops = Vec::new();
        for slot in 0..MAX_OPS_PER_WRITER {
            if draw(format!("op/{writer}/{slot}/kind"), 1) == 0 {
                continue;
            }
            let batch = 1 + draw(format!("op/{writer}/{slot}/batch"), MAX_BATCH - 1);
            let dataset = draw(
                format!("op/{writer}/{slot}/dataset"),
                dataset_count as u64 - 1,
            ) as usize;
            let payload = draw(
                format!("op/{writer}/{slot}/payload"),
                crate::values::STRING_DRAW_BOUND,
            );
            ops.push(Op {
                dataset,
                batch,
                payload,
            });
        }
        plan.writers.push(ops);
    }
    for round in 0..draw("reader/reads".into(), 3) {
        let pause = draw(format!("reader/{round}/pause"), 20);
        let dataset = draw(format!("reader/{round}/dataset"), dataset_count as u64 - 1) as usize;
        plan.reads.push((pause, dataset));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short sweep of plans gives items every edge string as their payload.
    #[test]
    fn a_short_sweep_draws_every_edge_payload() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let mut rng = faultline_sim::rng::Rng::new(seed, 1);
            let plan = draw(|_, bound| rng.below_or_equal(bound));
            for op in plan.writers.iter().flatten() {
                let payload = serde_json::Value::String(Plan::payload(op.payload, "k"));
                seen.extend(crate::values::edge_kind(&payload));
            }
        }
        for (kind, _) in crate::values::EDGE_STRINGS {
            assert!(
                seen.contains(kind),
                "edge payload {kind} never drawn: {seen:?}"
            );
        }
    }

    #[test]
    fn all_zero_choices_give_the_smallest_workload() {
        let plan = draw(|_, _| 0);
        assert_eq!(plan.writers, vec![Vec::<Op>::new(), Vec::new()]);
        assert_eq!(plan.datasets, vec!["dataset-0".to_owned()]);
        assert!(plan.reads.is_empty());
    }

    #[test]
    fn largest_choices_give_the_largest_workload() {
        let plan = draw(|_, bound| bound);
        assert_eq!(plan.writers.len(), 5);
        assert!(plan
            .writers
            .iter()
            .all(|ops| ops.len() == MAX_OPS_PER_WRITER));
        assert!(plan
            .writers
            .iter()
            .flatten()
            .all(|op| op.batch == MAX_BATCH && op.dataset == 1));
        assert_eq!(plan.reads.len(), 3);
    }
}
