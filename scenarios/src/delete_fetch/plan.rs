//! The workload of one delete-vs-fetch run, drawn from the tape before anything starts, so
//! that a restarted server replays its remaining operations without drawing again.
//!
//! Sites: `setup/sources` (0..=2, +1 sources), `setup/black-hole` (1: one more source host
//! that accepts connections and never answers, named by its own scope), `setup/servers`
//! (0..=1, +1 servers),
//! `source/<i>/later` (0..=2 revisions committed during the run) and
//! `source/<i>/later/<k>/at` (ms), `op/<server>/<slot>/kind` (0 skip, 1 create a scope,
//! 2 delete one, 3 sync every source), `.../scope` (0..=3), `.../source`, `.../n` (the
//! sync's concurrency: 0..=4, where 0 must be refused), `.../pause` (ms before the op).
//! Every value shrinks towards 0: fewer sources, servers and operations, no pauses.

/// Most operations a server may have.
pub const MAX_OPS: usize = 6;
/// Scope names per run: `scope-0` .. `scope-3`.
pub const SCOPES: u64 = 4;
/// Largest sync concurrency drawn.
pub const MAX_CONCURRENCY: u64 = 4;

/// One planned operation of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create `scope` naming source `source`.
    Create {
        /// The scope's number.
        scope: u64,
        /// The source's number.
        source: usize,
    },
    /// Delete `scope`.
    Delete {
        /// The scope's number.
        scope: u64,
    },
    /// Sync every source with this concurrency (0 must be refused).
    Sync {
        /// Fetches at once.
        concurrency: usize,
    },
}

/// The whole workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// For each source, the times (ms) of the revisions committed after the first.
    pub later_revisions: Vec<Vec<u64>>,
    /// For each server, its operations with the pause (ms) before each.
    pub servers: Vec<Vec<(u64, Op)>>,
    /// Whether a black-hole source (accepts, never answers) is named by a scope.
    pub black_hole: bool,
}

impl Plan {
    /// Source `index`'s name (and its host's).
    pub fn source_name(index: usize) -> String {
        format!("source-{index}")
    }

    /// Server `index`'s node name.
    pub fn server_name(index: usize) -> String {
        format!("server-{index}")
    }

    /// The black-hole source's name (and its host's and scope's).
    pub const BLACK_HOLE: &'static str = "black-hole";

    /// Scope `number`'s name.
    pub fn scope_name(number: u64) -> String {
        format!("scope-{number}")
    }
}

/// Draws a plan through `draw(site, bound)`.
pub fn draw(mut draw: impl FnMut(String, u64) -> u64) -> Plan {
    let sources = 1 + draw("setup/sources".into(), 2) as usize;
    let black_hole = draw("setup/black-hole".into(), 1) == 1;
    let servers = 1 + draw("setup/servers".into(), 1) as usize;
    let later_revisions = (0..sources)
        .map(|i| {
            let count = draw(format!("source/{i}/later"), 2);
            (0..count)
                .map(|k| draw(format!("source/{i}/later/{k}/at"), 400))
                .collect()
        })
        .collect();
    let servers = (0..servers)
        .map(|server| {
            (0..MAX_OPS)
                .filter_map(|slot| {
                    let site = |part: &str| format!("op/{server}/{slot}/{part}");
                    let op = match draw(site("kind"), 3) {
                        0 => return None,
                        1 => Op::Create {
                            scope: draw(site("scope"), SCOPES - 1),
                            source: draw(site("source"), sources as u64 - 1) as usize,
                        },
                        2 => Op::Delete {
                            scope: draw(site("scope"), SCOPES - 1),
                        },
                        _ => Op::Sync {
                            concurrency: draw(site("n"), MAX_CONCURRENCY) as usize,
                        },
                    };
                    Some((draw(site("pause"), 60), op))
                })
                .collect()
        })
        .collect();
    Plan {
        later_revisions,
        servers,
        black_hole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_choices_give_the_smallest_workload() {
        let plan = draw(|_, _| 0);
        assert_eq!(plan.later_revisions, vec![Vec::<u64>::new()]);
        assert_eq!(plan.servers, vec![Vec::new()]);
    }
}
