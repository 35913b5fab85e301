//! Faultline's simulator: seeded runs of a scenario under madsim, the choice tape, traces,
//! crash images, shrinking, replay, sweeps and the command line. It knows nothing about
//! the engine: scenarios (in `faultline-scenarios`) join the two.
//!
//! Everything that needs madsim's simulated runtime is compiled only with `--cfg madsim`
//! (what `cargo sim` does); the rest (tape, trace, shrinker, reports) builds everywhere.
#![deny(missing_docs)]

pub mod allocator;
#[cfg(madsim)]
pub mod bench;
pub mod cli;
#[cfg(madsim)]
mod cli_crash_points;
mod cli_list;
#[cfg(madsim)]
mod cli_replay;
#[cfg(madsim)]
mod cli_run;
mod cli_test;
pub mod crash;
#[cfg(madsim)]
pub mod crash_points;
pub mod env;
pub mod faults;
pub mod limits;
pub mod memdisk;
pub mod report;
pub mod rng;
#[cfg(madsim)]
pub mod runner;
pub mod scenario;
pub mod shrink;
mod sqlite_memory;
#[cfg(madsim)]
pub mod sweep;
pub mod tape;
pub mod trace;
#[cfg(madsim)]
pub mod world;

pub use scenario::{Failure, FailureKind, InvariantDoc, NodeGroup, Scenario};
