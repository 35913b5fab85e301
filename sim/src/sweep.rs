//! Sweeps: many seeds across worker processes, so that a run that panics, aborts the
//! process or hangs never takes the sweep down.
//!
//! The parent starts `jobs` workers (this same binary, `worker` subcommand); worker `j`
//! runs seeds `first + j`, `first + j + jobs`, ... and prints one JSON line as each run
//! starts and ends. If a worker dies mid-run, the parent records that seed as an abort and
//! starts a new worker at the next seed of its stride. A worker whose run passes its
//! wall-time limit reports the hang and exits; the parent records it the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::env::Settings;
use crate::runner::{self, RunRequest};
use crate::scenario::{Failure, FailureKind, Scenario};
use crate::tape::Source;

/// Which seeds to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeds {
    /// `first..end` (end exclusive).
    Range {
        /// The first seed.
        first: u64,
        /// One past the last seed.
        end: u64,
    },
    /// From `first` until the wall-time budget is spent.
    Budget {
        /// The first seed.
        first: u64,
        /// Wall time to spend.
        budget: Duration,
    },
}

/// One line a worker prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum WorkerLine {
    /// A run is starting.
    Start {
        /// Its seed.
        seed: u64,
    },
    /// A run ended.
    Done {
        /// Its seed.
        seed: u64,
        /// Its failure, if any.
        failure: Option<Failure>,
    },
    /// A run passed its wall-time limit; the worker exits after this line.
    Hang {
        /// Its seed.
        seed: u64,
    },
}

/// Runs seeds as a worker, printing [`WorkerLine`]s on stdout.
pub fn worker(scenario: Arc<dyn Scenario>, settings: &Settings, first: u64, end: u64, stride: u64) {
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let started = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    watchdog(
        origin,
        current.clone(),
        started.clone(),
        settings.run_wall_limit,
    );
    let mut seed = first;
    while seed < end {
        emit(&WorkerLine::Start { seed });
        started.store(origin.elapsed().as_millis() as u64, Ordering::SeqCst);
        current.store(seed, Ordering::SeqCst);
        let request = RunRequest {
            seed,
            source: Source::Seed,
            limits: settings.limits,
            scratch: settings.scratch.clone(),
            disk: settings.disk,
        };
        let outcome = runner::run(scenario.clone(), request);
        current.store(u64::MAX, Ordering::SeqCst);
        emit(&WorkerLine::Done {
            seed,
            failure: outcome.failure,
        });
        seed = match seed.checked_add(stride) {
            Some(next) => next,
            None => break,
        };
    }
}

fn emit(line: &WorkerLine) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}",
        serde_json::to_string(line).expect("serialises")
    );
    let _ = stdout.flush();
}

/// Wall-clock guard of a worker (a real thread, outside any simulation). `started` is the
/// start of the current run in milliseconds since `origin`, the worker's own clock origin.
fn watchdog(origin: Instant, current: Arc<AtomicU64>, started: Arc<AtomicU64>, limit: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        let seed = current.load(Ordering::SeqCst);
        let now = origin.elapsed().as_millis() as u64;
        let running_for = now.saturating_sub(started.load(Ordering::SeqCst));
        if seed != u64::MAX && running_for > limit.as_millis() as u64 {
            emit(&WorkerLine::Hang { seed });
            std::process::exit(3);
        }
    });
}

/// What a sweep found.
#[derive(Debug, Clone, Default)]
pub struct SweepResult {
    /// Runs completed (failed or not).
    pub runs: u64,
    /// Every failed run, in the order seen.
    pub failures: Vec<(u64, Failure)>,
    /// Wall time of the sweep.
    pub elapsed: Duration,
}

enum Message {
    Line(usize, WorkerLine),
    Exited(usize, String),
}

struct Worker {
    child: Child,
    running: Option<u64>,
    next: u64,
    alive: bool,
}

/// Runs `seeds` of `scenario` on `jobs` worker processes, which keep their runs' scratch
/// directories under `scratch`. `on_failure` is called as soon as a failure arrives (to write
/// it out at once) and returns whether to stop the sweep at that seed: the seeds below it
/// still run to the end (so a stop is reported at the lowest seed that asks for one, however
/// the workers were scheduled), the seeds above it are abandoned. `on_progress` is called
/// after every run.
pub fn sweep(
    scenario: &str,
    seeds: Seeds,
    (jobs, scratch): (usize, &Path),
    mut on_failure: impl FnMut(u64, &Failure) -> bool,
    mut on_progress: impl FnMut(u64, usize, Duration),
) -> Result<SweepResult, String> {
    let started = Instant::now();
    let (first, mut end, deadline) = match seeds {
        Seeds::Range { first, end } => (first, end, None),
        Seeds::Budget { first, budget } => (first, u64::MAX, Some(started + budget)),
    };
    let stride = jobs as u64;
    let (sender, receiver) = channel();
    let mut workers = Vec::new();
    for index in 0..jobs {
        let start = first + index as u64;
        workers.push(spawn_worker(scenario, index, start, end, stride, &sender)?);
    }
    let mut result = SweepResult::default();
    while workers.iter().any(|w| w.alive) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop_all(&mut workers, scratch);
            break;
        }
        let Ok(message) = receiver.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let failure = handle(
            message,
            &mut workers,
            &mut result,
            (scenario, end, stride, &sender, scratch),
        )?;
        if let Some((seed, failure)) = failure {
            if on_failure(seed, &failure) {
                end = end.min(seed + 1);
            }
            result.failures.push((seed, failure));
        }
        retire_past(&mut workers, end, scratch);
        on_progress(result.runs, result.failures.len(), started.elapsed());
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

type Context<'a> = (&'a str, u64, u64, &'a Sender<Message>, &'a Path);

fn handle(
    message: Message,
    workers: &mut [Worker],
    result: &mut SweepResult,
    (scenario, end, stride, sender, scratch): Context<'_>,
) -> Result<Option<(u64, Failure)>, String> {
    let (Message::Line(index, _) | Message::Exited(index, _)) = &message;
    if !workers[*index].alive {
        // A worker this sweep retired: its last words and its exit are not news.
        return Ok(None);
    }
    match message {
        Message::Line(index, WorkerLine::Start { seed }) => {
            workers[index].running = Some(seed);
            workers[index].next = seed + stride;
            Ok(None)
        }
        Message::Line(index, WorkerLine::Done { seed, failure }) => {
            workers[index].running = None;
            result.runs += 1;
            Ok(failure.map(|f| (seed, f)))
        }
        Message::Line(index, WorkerLine::Hang { seed }) => {
            workers[index].running = None;
            result.runs += 1;
            let message =
                "the run passed its wall-time limit (FAULTLINE_RUN_WALL_SECONDS)".to_owned();
            Ok(Some((
                seed,
                Failure {
                    kind: FailureKind::Hang,
                    invariant: "hang".to_owned(),
                    message,
                },
            )))
        }
        Message::Exited(index, status) => {
            let _ = workers[index].child.wait();
            runner::remove_scratch_of(scratch, workers[index].child.id());
            workers[index].alive = false;
            let lost = workers[index].running.take();
            let next = workers[index].next;
            if next < end {
                workers[index] = spawn_worker(scenario, index, next, end, stride, sender)?;
            }
            Ok(lost.map(|seed| {
                result.runs += 1;
                let message = format!("the worker process died while running this seed: {status}");
                (
                    seed,
                    Failure {
                        kind: FailureKind::Abort,
                        invariant: "abort".to_owned(),
                        message,
                    },
                )
            }))
        }
    }
}

/// Kills every live worker and removes the scratch directories of the runs it was in.
fn stop_all(workers: &mut [Worker], scratch: &Path) {
    retire_past(workers, 0, scratch);
}

/// Kills every live worker whose current (or next) seed is `end` or more, and removes the
/// scratch directories of the runs it was in.
fn retire_past(workers: &mut [Worker], end: u64, scratch: &Path) {
    for worker in workers.iter_mut().filter(|w| w.alive) {
        if worker.running.unwrap_or(worker.next) < end {
            continue;
        }
        let _ = worker.child.kill();
        let _ = worker.child.wait();
        runner::remove_scratch_of(scratch, worker.child.id());
        worker.alive = false;
    }
}

fn spawn_worker(
    scenario: &str,
    index: usize,
    first: u64,
    end: u64,
    stride: u64,
    sender: &Sender<Message>,
) -> Result<Worker, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .args(["worker", "--scenario", scenario])
        .args([
            "--first",
            &first.to_string(),
            "--end",
            &end.to_string(),
            "--stride",
            &stride.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a worker process: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let lines = sender.clone();
    let tail = std::thread::spawn(move || last_lines(stderr, 8));
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(parsed) = serde_json::from_str::<WorkerLine>(&line) {
                let _ = lines.send(Message::Line(index, parsed));
            }
        }
        let status = tail
            .join()
            .unwrap_or_else(|_| "stderr reader failed".to_owned());
        let _ = lines.send(Message::Exited(index, status));
    });
    Ok(Worker {
        child,
        running: None,
        next: first,
        alive: true,
    })
}

/// Reads a worker's stderr to the end (its exit) and keeps the last lines for the report.
fn last_lines(stderr: impl Read, keep: usize) -> String {
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        tail.push(line);
        if tail.len() > keep {
            tail.remove(0);
        }
    }
    if tail.is_empty() {
        "exited without a message".to_owned()
    } else {
        tail.join(" | ")
    }
}
