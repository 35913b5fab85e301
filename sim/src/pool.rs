//! Worker processes: every run of the engine, in every mode, happens in one, so that a run
//! that panics, aborts its process or hangs is reported by seed and the rest goes on.
//!
//! The pool starts up to `jobs` workers (this same binary, `worker` subcommand; see
//! [`crate::worker`]) as jobs arrive and gives each one job at a time. The parent keeps its
//! own deadline per job: a run past the wall-time limit is a `hang` and its worker is killed
//! (so a stopped or wedged worker cannot stall a command); a worker that dies during a run
//! makes that run an `abort`, with the signal named and the output the worker wrote for that
//! run only. Either way the worker's scratch directories are removed and a new worker is
//! started for the next job. A worker that cannot be started, or dies outside any run, is a
//! fault of the environment.
//!
//! Ctrl-C and SIGTERM reach the parent only (workers run in their own process group): the
//! next wait returns [`Error::Interrupted`], and dropping the pool stops every worker and
//! removes its scratch.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::outcome::{environment, Detail, Error, Failure, FailureKind, Result, RunResult};
use crate::runner::{self, RunRequest};
use crate::trace::Event;
use crate::worker::{Job, Line, JOB_MARK};

/// Lines of a run's own stderr kept for an abort report.
const STDERR_LINES: usize = 12;

/// How often a wait looks at deadlines and at Ctrl-C.
const TICK: Duration = Duration::from_millis(20);

/// A job that ended, however it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job's number, as [`Pool::submit`] returned it.
    pub id: u64,
    /// What the run did; a hang or an abort has a failure of that kind and no trace hash.
    pub result: RunResult,
}

/// Worker processes for one scenario.
pub struct Pool {
    scenario: String,
    wall_limit: Duration,
    scratch: PathBuf,
    slots: Vec<Option<Slot>>,
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    next_id: u64,
    generation: u64,
}

struct Slot {
    generation: u64,
    child: Child,
    /// Job lines for the worker, written by a thread of its own (see [`feed`]).
    jobs: Sender<String>,
    /// The job running (first) and the one queued behind it, if any.
    queue: VecDeque<Running>,
    stderr: Arc<Mutex<Captured>>,
}

struct Running {
    id: u64,
    seed: u64,
    /// The job's line, to send again to a new worker if this one dies before starting it.
    text: String,
    /// When it started running (for a queued job: when it was queued).
    started: Instant,
    partial: Vec<Event>,
}

/// Jobs a worker holds at once: the one it runs and the next, so that it never waits for
/// the parent between two runs.
const DEPTH: usize = 2;

/// The stderr a worker wrote since its current job started.
#[derive(Default)]
struct Captured {
    job: Option<u64>,
    lines: Vec<String>,
}

enum Message {
    Line(u64, Line),
    Exited(u64),
}

impl Pool {
    /// A pool of at most `jobs` workers for `scenario`; a run may take `wall_limit` of wall
    /// time; workers keep their runs' scratch directories under `scratch`. Starts no process
    /// until the first job.
    pub fn new(scenario: &str, jobs: usize, wall_limit: Duration, scratch: PathBuf) -> Self {
        let (sender, receiver) = channel();
        Pool {
            scenario: scenario.to_owned(),
            wall_limit,
            scratch,
            slots: (0..jobs.max(1)).map(|_| None).collect(),
            sender,
            receiver,
            next_id: 0,
            generation: 0,
        }
    }

    /// Jobs submitted and not yet ended.
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().map(|s| s.queue.len()).sum()
    }

    /// Whether a job can be submitted without waiting.
    pub fn has_room(&self) -> bool {
        self.running() < self.slots.len() * DEPTH
    }

    /// Starts `request` on a free worker (starting one if needed); returns the job's number.
    pub fn submit(&mut self, request: RunRequest, detail: Detail) -> Result<u64> {
        let queued = |depth: usize| {
            move |s: &Option<Slot>| s.as_ref().is_some_and(|s| s.queue.len() == depth)
        };
        let index = self
            .slots
            .iter()
            .position(queued(0))
            .or_else(|| self.slots.iter().position(Option::is_none))
            .or_else(|| (1..DEPTH).find_map(|d| self.slots.iter().position(queued(d))))
            .expect("submit only when the pool has room");
        if self.slots[index].is_none() {
            self.slots[index] = Some(self.spawn()?);
        }
        let id = self.next_id;
        self.next_id += 1;
        let seed = request.seed;
        let job = Job {
            id,
            request,
            detail,
        };
        let text = serde_json::to_string(&job).expect("a job serialises");
        let slot = self.slots[index].as_mut().expect("started");
        // A worker that died between jobs is noticed by the wait (its pipe closes).
        let _ = slot.jobs.send(text.clone());
        slot.queue.push_back(Running {
            id,
            seed,
            text,
            started: Instant::now(),
            partial: Vec::new(),
        });
        Ok(id)
    }

    /// Waits for the next job to end. Call only while [`Pool::running`] is above 0.
    pub fn wait(&mut self) -> Result<Finished> {
        assert!(self.running() > 0, "harness bug: waiting on an idle pool");
        loop {
            if interrupted() {
                return Err(Error::Interrupted);
            }
            if let Some(finished) = self.expire_hung()? {
                return Ok(finished);
            }
            match self.receiver.recv_timeout(TICK) {
                Ok(Message::Line(generation, line)) => {
                    if let Some(finished) = self.on_line(generation, line)? {
                        return Ok(finished);
                    }
                }
                Ok(Message::Exited(generation)) => {
                    if let Some(finished) = self.on_exit(generation)? {
                        return Ok(finished);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the pool holds a sender"),
            }
        }
    }

    /// Runs one request and waits for it.
    pub fn run_one(&mut self, request: RunRequest, detail: Detail) -> Result<RunResult> {
        Ok(self.run_all(vec![request], detail)?.remove(0))
    }

    /// Runs every request, as many at once as there are workers; results in request order.
    pub fn run_all(&mut self, requests: Vec<RunRequest>, detail: Detail) -> Result<Vec<RunResult>> {
        let count = requests.len();
        let mut pending = requests.into_iter().enumerate();
        let mut order = std::collections::BTreeMap::new();
        let mut results: Vec<Option<RunResult>> = (0..count).map(|_| None).collect();
        loop {
            while self.has_room() {
                let Some((position, request)) = pending.next() else {
                    break;
                };
                order.insert(self.submit(request, detail)?, position);
            }
            if self.running() == 0 {
                break;
            }
            let finished = self.wait()?;
            if let Some(position) = order.remove(&finished.id) {
                results[position] = Some(finished.result);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every job ends"))
            .collect())
    }

    /// Stops the workers whose running seed `keep` rejects (their jobs are abandoned).
    pub fn abandon(&mut self, keep: impl Fn(u64) -> bool) {
        for index in 0..self.slots.len() {
            let abandon = self.slots[index]
                .as_ref()
                .and_then(|s| s.queue.front())
                .is_some_and(|running| !keep(running.seed));
            if abandon {
                self.stop(index);
            }
        }
    }

    fn spawn(&mut self) -> Result<Slot> {
        let exe = std::env::current_exe()
            .map_err(|e| environment(format!("cannot find this program to start a worker: {e}")))?;
        let mut command = Command::new(exe);
        command
            .args(["worker", "--scenario", &self.scenario])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| environment(format!("cannot start a worker process: {e}")))?;
        self.generation += 1;
        let generation = self.generation;
        let stdin = child.stdin.take().expect("piped");
        let (jobs, lines) = channel();
        std::thread::spawn(move || feed(stdin, lines));
        let stdout = child.stdout.take().expect("piped");
        let stderr_pipe = child.stderr.take().expect("piped");
        let stderr = Arc::new(Mutex::new(Captured::default()));
        let capture = stderr.clone();
        let tail = std::thread::spawn(move || capture_stderr(stderr_pipe, &capture));
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Ok(line) = serde_json::from_str::<Line>(&text) {
                    let _ = sender.send(Message::Line(generation, line));
                }
            }
            let _ = tail.join();
            let _ = sender.send(Message::Exited(generation));
        });
        Ok(Slot {
            generation,
            child,
            jobs,
            queue: VecDeque::new(),
            stderr,
        })
    }

    fn slot_of(&self, generation: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.generation == generation))
    }

    fn on_line(&mut self, generation: u64, line: Line) -> Result<Option<Finished>> {
        let Some(index) = self.slot_of(generation) else {
            return Ok(None);
        };
        let slot = self.slots[index].as_mut().expect("found");
        match line {
            Line::Event { id, event } => {
                if let Some(running) = slot.queue.front_mut().filter(|r| r.id == id) {
                    running.partial.push(event);
                }
                Ok(None)
            }
            Line::Done { id, result } => {
                if slot.queue.front().is_none_or(|r| r.id != id) {
                    return Ok(None);
                }
                slot.queue.pop_front();
                if let Some(next) = slot.queue.front_mut() {
                    next.started = Instant::now();
                }
                Ok(Some(Finished {
                    id,
                    result: *result,
                }))
            }
            Line::Environment { message, .. } => Err(environment(message)),
        }
    }

    fn on_exit(&mut self, generation: u64) -> Result<Option<Finished>> {
        let Some(index) = self.slot_of(generation) else {
            return Ok(None);
        };
        let mut slot = self.slots[index].take().expect("found");
        let status = slot.child.wait();
        runner::remove_scratch_of(&self.scratch, slot.child.id());
        let captured = std::mem::take(&mut *slot.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        let status = status.map_or_else(|e| format!("unknown status ({e})"), describe_status);
        let Some(running) = slot.queue.pop_front() else {
            return Err(environment(format!(
                "a worker process died outside any run ({status}){}",
                said(&captured.lines)
            )));
        };
        if captured.job != Some(running.id) {
            return Err(environment(format!(
                "a worker process died before it started its run ({status}){}",
                said(&captured.lines)
            )));
        }
        self.resend(index, std::mem::take(&mut slot.queue))?;
        let failure = Failure {
            kind: FailureKind::Abort,
            invariant: "abort".to_owned(),
            message: format!(
                "the worker process died while running this seed: {status}{}",
                said(&captured.lines)
            ),
        };
        Ok(Some(Finished {
            id: running.id,
            result: RunResult::unfinished(running.seed, failure, running.partial),
        }))
    }

    fn expire_hung(&mut self) -> Result<Option<Finished>> {
        let limit = self.wall_limit;
        let Some(index) = self.slots.iter().position(|s| {
            s.as_ref()
                .and_then(|s| s.queue.front())
                .is_some_and(|r| r.started.elapsed() > limit)
        }) else {
            return Ok(None);
        };
        let mut queue = self.stop(index);
        let Some(running) = queue.pop_front() else {
            return Ok(None);
        };
        self.resend(index, queue)?;
        let failure = Failure {
            kind: FailureKind::Hang,
            invariant: "hang".to_owned(),
            message: format!(
                "the run passed its wall-time limit of {}s (FAULTLINE_RUN_WALL_SECONDS); its \
                 worker process was stopped",
                limit.as_secs()
            ),
        };
        Ok(Some(Finished {
            id: running.id,
            result: RunResult::unfinished(running.seed, failure, running.partial),
        }))
    }

    /// Kills the worker in slot `index`, removes its scratch and returns its jobs.
    fn stop(&mut self, index: usize) -> VecDeque<Running> {
        let Some(mut slot) = self.slots[index].take() else {
            return VecDeque::new();
        };
        let _ = slot.child.kill();
        let _ = slot.child.wait();
        runner::remove_scratch_of(&self.scratch, slot.child.id());
        std::mem::take(&mut slot.queue)
    }

    /// Gives `jobs`, which a stopped or dead worker never started, to a new worker in slot
    /// `index`.
    fn resend(&mut self, index: usize, jobs: VecDeque<Running>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut slot = self.spawn()?;
        for mut job in jobs {
            let _ = slot.jobs.send(job.text.clone());
            job.started = Instant::now();
            slot.queue.push_back(job);
        }
        self.slots[index] = Some(slot);
        Ok(())
    }
}

impl Drop for Pool {
    /// Stops every worker and removes its scratch: nothing outlives the command.
    fn drop(&mut self) {
        for index in 0..self.slots.len() {
            self.stop(index);
        }
    }
}

/// Writes job lines to a worker's stdin until the pool drops the sender or the worker is
/// gone. SIGPIPE is blocked on this thread only: a write to a worker that just died fails
/// with an error here instead of killing the parent (whose stdout keeps the default, so
/// that `| head` ends it quietly).
fn feed(mut stdin: ChildStdin, lines: Receiver<String>) {
    #[cfg(unix)]
    // SAFETY: changes this thread's signal mask only, with a set built here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    for line in lines {
        if writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
    }
}

fn said(lines: &[String]) -> String {
    if lines.is_empty() {
        "; it wrote nothing for this run".to_owned()
    } else {
        format!("; its output for this run: {}", lines.join(" | "))
    }
}

/// Reads a worker's stderr to its end, keeping the last lines written since the latest job
/// mark.
fn capture_stderr(stderr: impl Read, captured: &Mutex<Captured>) {
    for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
        let mut captured = captured.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = line.strip_prefix(JOB_MARK) {
            captured.job = id.trim().parse().ok();
            captured.lines.clear();
            continue;
        }
        captured.lines.push(line);
        if captured.lines.len() > STDERR_LINES {
            captured.lines.remove(0);
        }
    }
}

/// `killed by signal 6 (SIGABRT)`, or `exited with code 3`.
pub fn describe_status(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("killed by signal {signal} ({})", signal_name(signal));
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("ended: {status}"),
    }
}

/// The name of a Unix signal number.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => "another signal",
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Makes Ctrl-C and SIGTERM set [`interrupted`] instead of killing the process; a second
/// one ends the process at once (exit 130).
pub fn catch_interrupts() {
    #[cfg(unix)]
    {
        extern "C" fn on_signal(_: libc::c_int) {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(130) };
            }
        }
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installs a handler that only touches an atomic (and _exit).
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
    }
}
