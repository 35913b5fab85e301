//! What a run writes for people: the failure record, tapes, timelines, the summary, and the
//! one line that reproduces a failure. Files go to a fresh directory per failure; nothing
//! already there is overwritten.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::outcome::{environment, Error, Failure, Result};
use crate::tape::Tape;
use crate::trace::Trace;

/// Where one scenario's reports go; every write error is a fault of the environment.
#[derive(Debug, Clone)]
pub struct Reports {
    /// `FAULTLINE_REPORTS`.
    pub dir: PathBuf,
    /// The scenario.
    pub scenario: String,
}

impl Reports {
    /// Writes `failure.json` for `seed` into a fresh directory `<label>` at once; returns the
    /// directory.
    pub fn save_failure(&self, label: &str, seed: u64, failure: &Failure) -> Result<PathBuf> {
        fresh_case_dir(&self.dir, &self.scenario, label)
            .and_then(|dir| write_failure(&dir, &self.scenario, seed, failure).map(|()| dir))
            .map_err(|e| self.error(e))
    }

    /// A fresh directory `<label>` for one case.
    pub fn fresh_dir(&self, label: &str) -> Result<PathBuf> {
        fresh_case_dir(&self.dir, &self.scenario, label).map_err(|e| self.error(e))
    }

    /// Writes a tape and its timeline into `dir`; returns the tape's path.
    pub fn save_run(&self, dir: &Path, name: &str, tape: &Tape, trace: &Trace) -> Result<PathBuf> {
        write_run(dir, name, tape, trace).map_err(|e| self.error(e))
    }

    /// Appends one failure to the scenario's `index.jsonl` (every failure of a sweep is a
    /// line there, with its report directory when it has one), synced before returning.
    pub fn append_index(&self, line: &IndexLine) -> Result<()> {
        use std::io::Write;
        let write = || -> io::Result<()> {
            let parent = self.dir.join(&self.scenario);
            fs::create_dir_all(&parent)?;
            let mut file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(parent.join("index.jsonl"))?;
            let text = serde_json::to_string(line).expect("serialises");
            file.write_all(format!("{text}\n").as_bytes())?;
            file.sync_data()
        };
        write().map_err(|e| self.error(e))
    }

    /// Rewrites `dir`'s `failure.json` once its shrunk tape exists, so that the record points
    /// at the tape (and its replay line) rather than at the seed. Atomic: a new file renamed
    /// over the old one.
    pub fn note_shrunk(
        &self,
        dir: &Path,
        seed: u64,
        failure: &Failure,
        shrunk: &crate::summary::ShrunkCase,
    ) -> Result<()> {
        let record = FailureRecord {
            scenario: &self.scenario,
            seed,
            failure,
            signature: failure.signature(),
            replay: shrunk.replay.clone(),
            replay_seed: Some(replay_seed_command(&self.scenario, seed)),
            shrunk_tape: Some(shrunk.tape.clone()),
        };
        let temporary = dir.join("failure.json.new");
        let _ = fs::remove_file(&temporary);
        write_new(
            &temporary,
            &serde_json::to_string_pretty(&record).expect("serialises"),
        )
        .and_then(|()| fs::rename(&temporary, dir.join("failure.json")))
        .map_err(|e| self.error(e))
    }

    /// Writes a failure's HTML page into `dir`.
    pub fn save_page(&self, dir: &Path, page: &crate::html::FailurePage<'_>) -> Result<()> {
        write_page(dir, page).map_err(|e| self.error(e))
    }

    /// Writes the sweep's HTML index, `index.html` beside the failure directories, replacing
    /// the previous sweep's (every failure stays in `index.jsonl`); returns its path.
    pub fn save_index(&self, summaries: &[crate::summary::Summary]) -> Result<PathBuf> {
        let parent = self.dir.join(&self.scenario);
        let page = crate::html::index(summaries, &|dir: &str| {
            let dir = Path::new(dir);
            let page = dir.join("report.html");
            page.exists().then(|| {
                dir.strip_prefix(&parent)
                    .map_or_else(|_| page.clone(), |relative| relative.join("report.html"))
                    .display()
                    .to_string()
            })
        });
        let write = || -> io::Result<PathBuf> {
            fs::create_dir_all(&parent)?;
            let temporary = parent.join("index.html.new");
            let _ = fs::remove_file(&temporary);
            write_new(&temporary, &page)?;
            let path = parent.join("index.html");
            fs::rename(&temporary, &path)?;
            Ok(path)
        };
        write().map_err(|e| self.error(e))
    }

    fn error(&self, error: io::Error) -> Error {
        environment(format!(
            "cannot write a report under {} (FAULTLINE_REPORTS): {error}",
            self.dir.display()
        ))
    }
}

/// The command that replays a seed.
pub fn replay_seed_command(scenario: &str, seed: u64) -> String {
    format!("cargo sim replay --scenario {scenario} --seed {seed} --timeline")
}

/// The command that replays a saved tape.
pub fn replay_trace_command(path: &Path) -> String {
    format!("cargo sim replay --trace {} --timeline", path.display())
}

/// A new directory for one failure: `<reports>/<scenario>/seed-<seed>`, with `-2`, `-3`...
/// appended if that exists already.
fn fresh_case_dir(reports: &Path, scenario: &str, label: &str) -> io::Result<PathBuf> {
    let parent = reports.join(scenario);
    fs::create_dir_all(&parent)?;
    for attempt in 1u32.. {
        let name = if attempt == 1 {
            label.to_owned()
        } else {
            format!("{label}-{attempt}")
        };
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    unreachable!("some attempt number is free")
}

/// A failed run as recorded on disk (`failure.json`).
#[derive(Debug, Clone, Serialize)]
pub struct FailureRecord<'a> {
    /// The scenario.
    pub scenario: &'a str,
    /// The seed.
    pub seed: u64,
    /// What failed.
    pub failure: &'a Failure,
    /// The signature shrinking preserves.
    pub signature: String,
    /// The command that reproduces it: the shrunk tape's once there is one, else the seed's.
    pub replay: String,
    /// The command that replays it from the seed, once `replay` names the shrunk tape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_seed: Option<String>,
    /// The shrunk tape, once it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrunk_tape: Option<String>,
}

/// One line of a scenario's `index.jsonl`: a failure, whether or not it got a directory.
#[derive(Debug, Clone, Serialize)]
pub struct IndexLine<'a> {
    /// The seed.
    pub seed: u64,
    /// `kind:invariant`.
    pub signature: String,
    /// What was seen.
    pub message: &'a str,
    /// Its report directory, if it got one (`--max-reports`).
    pub report_dir: Option<String>,
    /// The command that replays it.
    pub replay: String,
}

/// Writes `failure.json` into `dir` at once (before any shrinking), so that the failing
/// seed is on disk even if the process dies next.
fn write_failure(dir: &Path, scenario: &str, seed: u64, failure: &Failure) -> io::Result<()> {
    let record = FailureRecord {
        scenario,
        seed,
        failure,
        signature: failure.signature(),
        replay: replay_seed_command(scenario, seed),
        replay_seed: None,
        shrunk_tape: None,
    };
    write_new(
        &dir.join("failure.json"),
        &serde_json::to_string_pretty(&record).expect("serialises"),
    )
}

/// The header of a timeline: what ran, how it ended, and what the columns are.
pub fn timeline_header(tape: &Tape, trace: &Trace) -> String {
    let outcome = match &tape.expected {
        Some(expected) => format!("{} (trace {})", expected.signature, expected.trace_hash),
        None => format!("trace {}", trace.hash()),
    };
    format!(
        "# faultline timeline: scenario {}, seed {}, strategy {}, {} events, {} decisions away from the default\n\
         # outcome: {outcome}\n\
         # columns: event number, simulated time, node, event kind, details\n",
        tape.scenario,
        tape.seed,
        tape.strategy,
        trace.events.len(),
        tape.choices().len()
    )
}

/// Writes a failure's HTML page (`report.html`) into `dir`.
pub fn write_page(dir: &Path, page: &crate::html::FailurePage<'_>) -> io::Result<()> {
    write_new(&dir.join("report.html"), &page.render())
}

/// Writes a tape as `<name>.tape.json` and its timeline as `<name>.timeline.txt`.
fn write_run(dir: &Path, name: &str, tape: &Tape, trace: &Trace) -> io::Result<PathBuf> {
    let tape_path = dir.join(format!("{name}.tape.json"));
    write_new(&tape_path, &tape.to_json())?;
    let timeline = format!("{}{}", timeline_header(tape, trace), trace.timeline());
    write_new(&dir.join(format!("{name}.timeline.txt")), &timeline)?;
    Ok(tape_path)
}

/// Writes a file that must not exist yet (never overwrites).
pub fn write_new(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
