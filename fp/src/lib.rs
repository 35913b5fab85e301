//! Failpoints shared by the engine and the simulator.
//!
//! The engine marks every place where a crash, a delay or an I/O error changes what can
//! happen with [`fp!`]. What a hit does depends on where it runs:
//!
//! * inside a simulation (a [`Simulation`] is installed on this thread with [`install`]),
//!   the simulation decides each hit ([`Decision`]) and records it;
//! * outside a simulation the hit goes through fail-rs, so `FAILPOINTS=name=return(msg)` and
//!   `fail::cfg` work in ordinary tests; a configured `return` becomes an injected error;
//! * without the `enabled` feature the macro expands to `Ok(())` and nothing is linked in.
//!
//! Every point compiled in is registered at link time in [`DECLARED`], so the full list can
//! be printed and checked for duplicates without a hand-kept list.
#![deny(missing_docs)]

use std::fmt;

#[cfg(feature = "enabled")]
mod enabled;
#[cfg(feature = "enabled")]
pub use enabled::*;

/// Whether failpoints are compiled into this build.
pub const ENABLED: bool = cfg!(feature = "enabled");

/// An error injected at a failpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The failpoint's name.
    pub point: &'static str,
    /// The message the fault carried.
    pub message: String,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault at {}: {}", self.point, self.message)
    }
}

impl std::error::Error for Injected {}

/// Marks a failpoint. Evaluates to a future of `Result<(), Injected>`; await it.
///
/// ```ignore
/// fp!("engine.publish.before_commit").await?;
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! fp {
    ($name:literal) => {{
        #[$crate::linkme::distributed_slice($crate::DECLARED)]
        #[linkme(crate = $crate::linkme)]
        static DECLARED_POINT: $crate::Declared = $crate::Declared {
            name: $name,
            file: file!(),
            line: line!(),
        };
        $crate::hit($name)
    }};
}

/// Marks a failpoint. Compiled out: evaluates to a ready `Ok(())`.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! fp {
    ($name:literal) => {
        ::core::future::ready(::core::result::Result::<(), $crate::Injected>::Ok(()))
    };
}

/// Records a named event in the running simulation's trace (for example a lock retry).
/// Does nothing outside a simulation or without the `enabled` feature.
#[cfg(not(feature = "enabled"))]
#[inline(always)]
pub fn note(_name: &'static str, _detail: &dyn fmt::Display) {}

/// Pays the simulated time of the work done since the last settle. Compiled out: ready.
#[cfg(not(feature = "enabled"))]
#[inline(always)]
pub fn settle() -> core::future::Ready<()> {
    core::future::ready(())
}
