//! The worker process's protocol and work (`faultline-sim worker --scenario NAME`, started
//! by [`crate::pool`], served by the command line's `worker` verb): one [`Job`] per line of
//! stdin, answered on stdout with one JSON [`Line`] per line.
//!
//! Before each job it writes [`JOB_MARK`] and the job's id on stderr, so that the parent can
//! tell which run any later output (a panic message, an abort's last words) belongs to. A
//! worker dies with its parent (Linux), and ends when its stdin closes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::outcome::{Detail, Error, RunResult};
use crate::runner::{self, RunRequest};
use crate::scenario::Scenario;
use crate::trace::Event;

/// What the parent asks a worker to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The parent's number for the job.
    pub id: u64,
    /// The run.
    pub request: RunRequest,
    /// How much of the run to send back.
    pub detail: Detail,
}

/// One line a worker writes on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "lowercase")]
pub enum Line {
    /// An event of a [`Detail::Full`] job, as it is recorded.
    Event {
        /// The job.
        id: u64,
        /// The event.
        event: Event,
    },
    /// A job's run ended.
    Done {
        /// The job.
        id: u64,
        /// What it did.
        result: Box<RunResult>,
    },
    /// A job could not run because of the environment (its scratch directory, a full disk).
    Environment {
        /// The job.
        id: u64,
        /// What went wrong.
        message: String,
    },
}

/// The stderr line that starts a job's output: the mark, then the job's id.
pub const JOB_MARK: &str = "\u{1e}faultline-job ";

/// Runs `job`; `emit` gets each event of a [`Detail::Full`] job as it is recorded. Returns
/// the job's last line.
pub fn run_job(scenario: &Arc<dyn Scenario>, job: Job, emit: fn(&Line)) -> Line {
    let id = job.id;
    let observer = (job.detail == Detail::Full).then(|| {
        Box::new(move |event: &Event| {
            emit(&Line::Event {
                id,
                event: event.clone(),
            })
        }) as crate::world::Observer
    });
    match runner::run_observed(scenario.clone(), job.request, observer) {
        Ok(outcome) => Line::Done {
            id,
            result: Box::new(RunResult::of(outcome, job.detail)),
        },
        Err(Error::Environment(message) | Error::BadInput(message)) => {
            Line::Environment { id, message }
        }
        Err(Error::Interrupted) => Line::Environment {
            id,
            message: "the worker was interrupted".to_owned(),
        },
    }
}

/// Asks the kernel to kill this worker when its parent dies, so no worker outlives a
/// killed sweep.
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}
