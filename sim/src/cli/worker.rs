//! The internal `worker` verb: serves the jobs of a parent process (see [`crate::pool`] and
//! [`crate::worker`]) until its stdin closes.

use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::scenario::Scenario;
use crate::worker::{self, Job, Line, JOB_MARK};

pub(super) fn serve(scenario: Arc<dyn Scenario>) {
    worker::die_with_parent();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let job: Job = match serde_json::from_str(&line) {
            Ok(job) => job,
            Err(error) => {
                eprintln!("faultline worker: unreadable job ({error}): {line}");
                std::process::exit(70);
            }
        };
        eprintln!("{JOB_MARK}{}", job.id);
        emit(&worker::run_job(&scenario, job, emit));
    }
}

fn emit(line: &Line) {
    let mut stdout = std::io::stdout().lock();
    let text = serde_json::to_string(line).expect("a worker line serialises");
    if writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // The parent is gone: nobody is left to report to.
        std::process::exit(0);
    }
}
