//! What a run ends in, and what a command ends in: failures and their classes, the outcome
//! of one run (in full, and as a worker process reports it), typed errors and the process
//! exit codes they carry. Imports nothing but tape and trace types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tape::Tape;
use crate::trace::{Event, Trace};

/// The class of a failure; each has its own meaning for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// A named safety invariant broke.
    Invariant,
    /// The run stopped making progress (a bound on time or steps, or a deadlock).
    Liveness,
    /// The engine or the scenario panicked.
    Panic,
    /// The run exceeded its wall-time limit and its worker process was stopped.
    Hang,
    /// The worker process died while running this seed (abort, signal).
    Abort,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FailureKind::Invariant => "invariant",
            FailureKind::Liveness => "liveness",
            FailureKind::Panic => "panic",
            FailureKind::Hang => "hang",
            FailureKind::Abort => "abort",
        };
        f.write_str(name)
    }
}

/// One failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// The invariant (or liveness bound) that broke; `panic`, `hang` or `abort` otherwise.
    pub invariant: String,
    /// What was seen.
    pub message: String,
}

impl Failure {
    /// The signature shrinking preserves: kind and invariant, not the message.
    pub fn signature(&self) -> String {
        format!("{}:{}", self.kind, self.invariant)
    }

    /// What a hunt's pattern is matched against: `<kind>:<invariant>: <message>`.
    pub fn hunt_text(&self) -> String {
        format!("{}: {}", self.signature(), self.message)
    }

    /// Whether rerunning the seed reproduces the failure in a run (a hang or an abort is a
    /// property of a worker process, and is saved by seed only).
    pub fn rerunnable(&self) -> bool {
        !matches!(self.kind, FailureKind::Hang | FailureKind::Abort)
    }
}

/// The signature of a run that did not fail.
pub const PASS: &str = "pass";

/// The signature of an optional failure.
pub fn signature_of(failure: Option<&Failure>) -> String {
    failure.map_or_else(|| PASS.to_owned(), Failure::signature)
}

/// What one run did, in full (a run in this process).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Every choice made, ready to save and replay (with its expected outcome).
    pub tape: Tape,
    /// The events.
    pub trace: Trace,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// Where a replay first diverged from its tape, if it did.
    pub divergence: Option<String>,
    /// How often each failpoint was hit (coverage).
    pub hits: std::collections::BTreeMap<String, u64>,
    /// The failpoint sites drawn on a restarted node before it reported itself ready (its
    /// recovery), in the order drawn.
    pub start_up_sites: Vec<String>,
    /// The simulated time the run lasted, in nanoseconds.
    pub simulated_ns: u64,
    /// What the run reached.
    pub coverage: crate::coverage::Coverage,
}

impl RunOutcome {
    /// `pass`, or the failure's signature.
    pub fn signature(&self) -> String {
        signature_of(self.failure.as_ref())
    }
}

/// How much of a run a worker process sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// The failure, the trace hash and counts (a sweep).
    Summary,
    /// Also the tape (shrinking, crash-point enumeration).
    Tape,
    /// Also the trace, streamed event by event as the run goes, so that a run that hangs or
    /// kills its process still leaves its timeline up to that point (replay).
    Full,
}

/// One run as a worker process reports it, or as the parent saw it end (a hang, an abort).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// The trace hash; `None` when the run never finished (a hang or an abort).
    pub trace_hash: Option<String>,
    /// Events in the trace.
    pub events: usize,
    /// Whether a crash happened in the run.
    pub crashed: bool,
    /// Where a replay first diverged from its tape, if it did.
    pub divergence: Option<String>,
    /// The tape, at [`Detail::Tape`] and above.
    pub tape: Option<Tape>,
    /// The trace at [`Detail::Full`]; for a run that never finished, the events it streamed.
    pub trace: Option<Trace>,
    /// See [`RunOutcome::start_up_sites`].
    pub start_up_sites: Vec<String>,
    /// See [`RunOutcome::simulated_ns`] (0 for a run that never finished).
    #[serde(default)]
    pub simulated_ns: u64,
    /// See [`RunOutcome::coverage`] (empty for a run that never finished).
    #[serde(default)]
    pub coverage: crate::coverage::Coverage,
}

impl RunResult {
    /// The parts of `outcome` that `detail` asks for.
    pub fn of(outcome: RunOutcome, detail: Detail) -> Self {
        let hash = outcome.tape.expected.as_ref().map(|e| e.trace_hash.clone());
        RunResult {
            seed: outcome.seed,
            trace_hash: Some(hash.unwrap_or_else(|| outcome.trace.hash())),
            events: outcome.trace.events.len(),
            crashed: outcome.trace.events.iter().any(|e| e.kind == "crash"),
            failure: outcome.failure,
            divergence: outcome.divergence,
            tape: (detail != Detail::Summary).then_some(outcome.tape),
            trace: (detail == Detail::Full).then_some(outcome.trace),
            start_up_sites: outcome.start_up_sites,
            simulated_ns: outcome.simulated_ns,
            coverage: outcome.coverage,
        }
    }

    /// A run that never finished: `failure` says how it ended, `partial` is what it streamed.
    pub fn unfinished(seed: u64, failure: Failure, partial: Vec<Event>) -> Self {
        RunResult {
            seed,
            failure: Some(failure),
            trace_hash: None,
            events: partial.len(),
            crashed: partial.iter().any(|e| e.kind == "crash"),
            divergence: None,
            tape: None,
            trace: Some(Trace { events: partial }),
            start_up_sites: Vec::new(),
            simulated_ns: 0,
            coverage: crate::coverage::Coverage::default(),
        }
    }

    /// `pass`, or the failure's signature.
    pub fn signature(&self) -> String {
        signature_of(self.failure.as_ref())
    }

    /// Whether the run finished in its worker (it was not a hang or an abort).
    pub fn finished(&self) -> bool {
        self.trace_hash.is_some()
    }
}

/// The process exit status of a command: each class of ending has its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: nothing broke.
    Pass = 0,
    /// 1: a run failed (or a replay diverged or did not reproduce its recorded outcome).
    Failed = 1,
    /// 2: bad input: an unknown scenario, a malformed option, an unreadable or corrupt tape,
    /// a bad environment variable.
    BadInput = 2,
    /// 3: a fault of the environment, not of the engine: a scratch or reports directory that
    /// cannot be used, a full disk under the harness's own files, a worker process that
    /// cannot be started or dies outside any run.
    Environment = 3,
    /// 130: stopped by Ctrl-C or SIGTERM (what was found so far is saved and summarised).
    Interrupted = 130,
}

impl Exit {
    /// The code the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why a command could not do its work. Never a failure of the engine: those are
/// [`Failure`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input was wrong; the message names what was wrong and what is accepted.
    BadInput(String),
    /// The environment failed the harness (a directory, a disk, a process).
    Environment(String),
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl Error {
    /// The exit status this error ends the command with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::BadInput(_) => Exit::BadInput,
            Error::Environment(_) => Exit::Environment,
            Error::Interrupted => Exit::Interrupted,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput(message) => write!(f, "error: {message}"),
            Error::Environment(message) => write!(f, "environment fault: {message}"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A result whose error is a typed [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bad-input error.
pub fn bad_input(message: impl Into<String>) -> Error {
    Error::BadInput(message.into())
}

/// An environment error.
pub fn environment(message: impl Into<String>) -> Error {
    Error::Environment(message.into())
}
