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
pub mod coverage;
pub mod crash;
pub mod crash_points;
pub mod env;
pub mod faults;
pub mod html;
pub mod iotime;
pub mod junit;
pub mod limits;
pub mod markdown;
pub mod memdisk;
pub mod net;
pub mod outcome;
#[cfg(madsim)]
pub mod pool;
pub mod preflight;
pub mod regressions;
pub mod report;
pub mod rng;
#[cfg(madsim)]
pub mod runner;
pub mod scenario;
#[cfg(madsim)]
pub mod session;
pub mod shrink;
pub mod site;
mod sqlite_memory;
pub mod strategy;
pub mod summary;
#[cfg(madsim)]
pub mod sweep;
pub mod tape;
pub mod trace;
#[cfg(madsim)]
pub mod worker;
#[cfg(madsim)]
pub mod world;

pub use outcome::{Exit, Failure, FailureKind};
pub use scenario::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};
