//! What the verbs print that more than one prints: failure lines, shrink results, progress.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::outcome::Failure;
use crate::session::ShrunkCase;
use crate::sweep::Progress;

/// The line printed the moment a run fails.
pub fn fail_line(what: &str, failure: &Failure) {
    eprintln!("{}", fail_text(what, failure));
}

/// The text of [`fail_line`].
pub fn fail_text(what: &str, failure: &Failure) -> String {
    format!("FAIL {what}: {}: {}", failure.signature(), failure.message)
}

/// What shrinking gave, in two lines.
pub fn shrunk(case: &ShrunkCase) {
    eprintln!("{}", shrunk_text(case));
}

/// The text of [`shrunk`].
pub fn shrunk_text(case: &ShrunkCase) -> String {
    format!(
        "  shrunk {} -> {} choices in {:.1}s ({} runs, {})\n  replay: {}",
        case.original_choices,
        case.choices,
        case.seconds,
        case.candidates,
        minimality(case),
        case.replay
    )
}

/// `1-minimal`, or why not proven.
pub fn minimality(case: &ShrunkCase) -> &'static str {
    if case.one_minimal {
        "1-minimal"
    } else {
        "stopped early (time bound or interrupt), not proven 1-minimal"
    }
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on a terminal, a plain line every [`LOG_EVERY`] in a log; none with `--quiet`.
    Auto,
    /// As `auto`, even with `--quiet`.
    Always,
    /// None.
    Never,
}

impl ProgressMode {
    /// Parses `--progress`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(ProgressMode::Auto),
            "always" => Ok(ProgressMode::Always),
            "never" => Ok(ProgressMode::Never),
            other => Err(format!(
                "--progress {other:?}: expected auto (a bar on a terminal, a line every 10s in a \
                 log), always (the same, even with --quiet) or never"
            )),
        }
    }
}

/// How often a log gets a progress line.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A sweep's progress on stderr: an indicatif bar on a terminal (done/total, percentage,
/// elapsed, ETA, runs per second, failures), a plain line every [`LOG_EVERY`] in a log (one
/// line each, never carriage returns), or nothing.
pub struct ProgressView {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    last: Option<Instant>,
    quiet: bool,
}

impl ProgressView {
    /// A view for a sweep of `total` seeds (or a budget of `budget`).
    pub fn new(
        mode: ProgressMode,
        quiet: bool,
        total: Option<u64>,
        budget: Option<Duration>,
    ) -> Self {
        let shown = match mode {
            ProgressMode::Auto => !quiet,
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        };
        let terminal = std::io::stderr().is_terminal();
        let bar = (shown && terminal).then(|| {
            let length = total.or(budget.map(|b| b.as_secs().max(1)));
            let bar = indicatif::ProgressBar::with_draw_target(
                length,
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            );
            let template = match total {
                Some(_) => {
                    "{elapsed_precise} [{bar:30}] {pos}/{len} runs ({percent}%) eta {eta} {msg}"
                }
                None => "{elapsed_precise} [{bar:30}] {percent}% of the budget, {msg}",
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        ProgressView {
            lines: shown && !terminal,
            bar,
            last: None,
            quiet,
        }
    }

    /// Shows `progress` (a bar redraws at most four times a second; a log gets a line every
    /// [`LOG_EVERY`]).
    pub fn show(&mut self, progress: &Progress<'_>) {
        let rate = progress.runs as f64 / progress.elapsed.as_secs_f64().max(1e-9);
        if let Some(bar) = &self.bar {
            match progress.total {
                Some(_) => bar.set_position(progress.runs),
                None => bar.set_position(progress.elapsed.as_secs()),
            }
            bar.set_message(format!(
                "{} runs, {rate:.0} runs/s, {} failed",
                progress.runs, progress.failures
            ));
            return;
        }
        let due = self.last.is_none_or(|last| last.elapsed() >= LOG_EVERY);
        if !self.lines || !due {
            return;
        }
        if self.last.is_none() {
            self.last = Some(Instant::now());
            return;
        }
        self.last = Some(Instant::now());
        let elapsed = progress.elapsed.as_secs_f64();
        let share = match progress.total {
            Some(total) => {
                let eta = (total.saturating_sub(progress.runs)) as f64 / rate.max(1e-9);
                format!(
                    "{}/{total} runs ({:.0}%), eta {eta:.0}s",
                    progress.runs,
                    100.0 * progress.runs as f64 / total.max(1) as f64
                )
            }
            None => format!("{} runs", progress.runs),
        };
        eprintln!(
            "progress: {share}, {} failed, {rate:.0} runs/s, {elapsed:.0}s elapsed",
            progress.failures
        );
    }

    /// Prints `line` on stderr above the bar (unless quiet).
    pub fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar before the summary.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
