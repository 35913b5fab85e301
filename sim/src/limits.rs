//! Bounds on one run: nothing runs unbounded.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Simulated time before the run is stopped as a liveness failure.
    /// Default 600 s; `FAULTLINE_TIME_LIMIT_SECONDS`.
    pub time_limit: Duration,
    /// Failpoint decisions and events before the run is stopped as a liveness failure.
    /// Default 200,000; `FAULTLINE_MAX_STEPS`.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_limit: Duration::from_secs(600),
            max_steps: 200_000,
        }
    }
}
