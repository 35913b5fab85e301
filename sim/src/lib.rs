//! Faultline's simulator: seeded runs of a scenario under madsim, the choice tape, traces,
//! crash images, shrinking, replay, sweeps and the command line. It knows nothing about
//! the engine: scenarios (in `faultline-scenarios`) join the two.
//!
//! Everything that needs madsim's simulated runtime is compiled only with `--cfg madsim`
//! (what `cargo sim` does); the rest (tape, trace, shrinker, reports) builds everywhere.
//!
//! Using it on a crate of one's own (`docs/own-crate.md`, `examples/own-crate/`): implement
//! [`Scenario`] (its `run` gets a `world::World`: nodes, draws, events, failures), mark
//! failpoints with `faultline_fp::fp!`, keep files under `World::store_dir` (SQLite through
//! the simulated VFS, plain files through `faultline_files`), wait through
//! `phases::faults_then_heal`, seed SQLite with [`sqlite::seed_prng`]; test with `check`
//! (all of these under `--cfg madsim`) and ship a binary calling [`cli::main`].
#![deny(missing_docs)]

pub mod allocator;
#[cfg(madsim)]
pub mod bench;
#[cfg(madsim)]
pub mod check;
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
pub mod phases;
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
pub mod sqlite;
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

#[cfg(madsim)]
pub use check::{check, Check, CheckError, Checked, SeedFailure};
pub use outcome::{Exit, Failure, FailureKind};
pub use scenario::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};
