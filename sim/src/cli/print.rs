//! What the verbs print that more than one prints: failure lines, shrink results, progress.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::outcome::Failure;
use crate::session::ShrunkCase;
use crate::sweep::Progress;

/// The line printed the moment a run fails.
pub fn fail_line(what: &str, failure: &Failure) {
    eprintln!("FAIL {what}: {}: {}", failure.signature(), failure.message);
}

/// What shrinking gave, in two lines.
pub fn shrunk(case: &ShrunkCase) {
    eprintln!(
        "  shrunk {} -> {} choices in {:.1}s ({} runs, {})\n  replay: {}",
        case.original_choices,
        case.choices,
        case.seconds,
        case.candidates,
        minimality(case),
        case.replay
    );
}

/// `1-minimal`, or why not proven.
pub fn minimality(case: &ShrunkCase) -> &'static str {
    if case.one_minimal {
        "1-minimal"
    } else {
        "stopped early (time bound or interrupt), not proven 1-minimal"
    }
}

/// A progress line on a terminal, at most four times a second; nothing when stderr is not a
/// terminal (a CI log).
pub struct ProgressLine {
    last: Option<Instant>,
    shown: bool,
    terminal: bool,
}

impl ProgressLine {
    /// A progress line for stderr.
    pub fn new() -> Self {
        ProgressLine {
            last: None,
            shown: false,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Shows `progress` if it is time to.
    pub fn show(&mut self, progress: Progress) {
        let due = self
            .last
            .is_none_or(|last| last.elapsed() >= Duration::from_millis(250));
        if !self.terminal || !due {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let rate = progress.runs as f64 / progress.elapsed.as_secs_f64().max(1e-9);
        let of = progress.total.map_or_else(String::new, |t| format!("/{t}"));
        eprint!(
            "\r  {}{of} runs  {} violations  {rate:.0} runs/s   ",
            progress.runs, progress.failures
        );
        let _ = std::io::stderr().flush();
    }

    /// Ends the line before other output.
    pub fn clear(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}
