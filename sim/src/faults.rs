//! The fault model: how a scenario wants failpoint hits decided while faults are on.
//!
//! Each hit draws one index from the tape at site `fp/<node>/<point>#<hit>` ([`site`]; hits
//! are counted per node and point, so removing another node's operations while shrinking
//! does not renumber this node's hits); the index orders the
//! decisions from simplest to most drastic, so shrinking a value walks a fault back towards
//! "continue": 0 continue, 1 yield, 2 sleep, 3 injected error, 4 crash.

use std::time::Duration;

use faultline_fp::Decision;

/// The tape site of a failpoint hit: `fp/<node>/<point>#<hit>`, `hit` counted from 1 per
/// node and point (across the node's restarts).
pub fn site(node: &str, point: &str, hit: u64) -> String {
    format!("fp/{node}/{point}#{hit}")
}

/// The node a failpoint's tape site names (`writer-1` for
/// `fp/writer-1/engine.publish.before_commit#2`), or `None` if the site is not a failpoint's.
pub fn site_node(site: &str) -> Option<&str> {
    let (node, _) = site.strip_prefix("fp/")?.split_once('/')?;
    Some(node)
}

/// The failpoint a tape site names (`engine.publish.before_commit` for
/// `fp/writer-1/engine.publish.before_commit#2` and for its `:ms` and `:scope` entries), or
/// `None` if the site is not a failpoint's.
pub fn site_point(site: &str) -> Option<&str> {
    let rest = site.strip_prefix("fp/")?;
    let (_, point_and_hit) = rest.split_once('/')?;
    point_and_hit.split('#').next()
}

/// Where a crash lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashScope {
    /// The node that hit the point dies; the others keep running on the same files.
    Node,
    /// Every node dies at once; the store's files are imaged at that instant and every node
    /// restarts on the image (a machine crash without power loss).
    Store,
    /// A power loss: like [`CrashScope::Store`], but the image keeps only what was synced
    /// before the crash; every write since a file's last sync is lost.
    Power,
}

impl CrashScope {
    /// The scope for a tape value (0 node, 1 store, 2 power).
    pub fn from_index(index: u64) -> Self {
        match index {
            0 => CrashScope::Node,
            1 => CrashScope::Store,
            _ => CrashScope::Power,
        }
    }
}

/// How failpoint hits are decided while faults are on. Every field's default is the value
/// shown by [`FaultModel::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultModel {
    /// Relative weights of continue, yield, sleep, error and crash. Default `[80, 10, 6, 3, 1]`.
    pub weights: [u32; 5],
    /// Longest injected sleep. Default 20 ms.
    pub max_sleep: Duration,
    /// Most crashes per run; further crash draws become "continue". Default 2.
    pub max_crashes: u32,
    /// Relative weights of node crashes, store crashes and power losses. Default `[1, 1, 0]`.
    pub crash_scope_weights: [u32; 3],
    /// Simulated time between a crash and the restart. Default 5 ms.
    pub restart_delay: Duration,
}

impl Default for FaultModel {
    fn default() -> Self {
        FaultModel {
            weights: [80, 10, 6, 3, 1],
            max_sleep: Duration::from_millis(20),
            max_crashes: 2,
            crash_scope_weights: [1, 1, 0],
            restart_delay: Duration::from_millis(5),
        }
    }
}

/// The decision for a drawn index (`sleep_ms` is used for index 2).
pub fn decision(index: u64, sleep_ms: u64) -> Decision {
    match index {
        0 => Decision::Continue,
        1 => Decision::Yield,
        2 => Decision::Sleep(Duration::from_millis(sleep_ms)),
        3 => Decision::Error("injected I/O error".to_owned()),
        _ => Decision::Crash,
    }
}

/// A short rendering of a decision for the trace.
pub fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Continue => "continue".to_owned(),
        Decision::Yield => "yield".to_owned(),
        Decision::Sleep(duration) => format!("sleep {}ms", duration.as_millis()),
        Decision::Error(message) => format!("error ({message})"),
        Decision::Crash => "crash".to_owned(),
    }
}
