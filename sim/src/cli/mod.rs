//! The command line: `run`, `hunt`, `replay`, `shrink`, `list`, `test`, `bench` (and the
//! internal `worker`). The only module that names the verb files; a verb never imports
//! another. Exit codes are [`Exit`]'s: 0 pass, 1 a run failed, 2 bad input, 3 a fault of
//! the environment, 130 interrupted.

mod args;
#[cfg(madsim)]
mod bench;
#[cfg(madsim)]
mod crash_points;
mod list;
mod merge;
mod outputs;
#[cfg(madsim)]
mod print;
#[cfg(madsim)]
mod regress;
#[cfg(madsim)]
mod replay;
#[cfg(madsim)]
mod run;
mod selftest;
#[cfg(madsim)]
mod worker;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::outcome::{Exit, Result};
use crate::scenario::Scenario;

pub use args::{parse_budget, parse_crash_points, parse_seed, parse_seed_range};

#[derive(Parser, Debug)]
#[command(
    name = "cargo sim",
    version,
    about = "Faultline: deterministic simulation and fault injection",
    after_help = "Exit codes: 0 nothing broke (hunt: it found what it hunted), 1 a run failed \
                  (hunt: nothing matched), 2 bad input, 3 a fault of the environment (not of \
                  the engine), 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sweep seeds of a scenario; shrink and save every distinct failure.
    Run(args::RunArgs),
    /// Run seeds until a failure whose signature or message matches a pattern, then shrink
    /// and save it: a flaky race turned into a deterministic reproduction. Exits 0 when it
    /// found one, 1 when none matched within the seeds or budget.
    Hunt(args::HuntArgs),
    /// Replay one run from a seed or a saved tape.
    Replay(args::ReplayArgs),
    /// Replay regression tapes expecting each to pass: exit 0 once every bug they record is
    /// fixed, 1 while one still fails.
    Regress(args::RegressArgs),
    /// Join the `run --json` results of a sweep's partitions into one summary, JUnit file and
    /// Markdown summary.
    Merge(args::MergeArgs),
    /// Shrink a saved failing tape to a 1-minimal one.
    Shrink(args::ShrinkArgs),
    /// List scenarios, their invariants, every failpoint and the environment variables.
    List(args::ListArgs),
    /// Run every test suite: the plain build and the simulator build (optionally only the
    /// tests matching FILTER).
    Test(args::TestArgs),
    /// Print performance figures: runs per second per scenario, cost of a failpoint hit.
    Bench(args::BenchArgs),
    /// Internal: serve runs for the parent process on stdin and stdout.
    #[command(hide = true)]
    Worker(args::WorkerArgs),
}

/// Runs the command line against `scenarios`; returns the process exit code.
pub fn main(scenarios: Vec<Arc<dyn Scenario>>) -> ExitCode {
    crate::allocator::tune();
    quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let exit = if error.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Pass
            };
            return ExitCode::from(exit.code());
        }
    };
    if !matches!(
        cli.command,
        Command::Worker(_) | Command::List(_) | Command::Test(_) | Command::Merge(_)
    ) {
        #[cfg(madsim)]
        crate::pool::catch_interrupts();
        for key in crate::env::unknown_variables() {
            eprintln!("warning: unknown environment variable {key} (known: see `cargo sim list`)");
        }
        for (key, instead) in crate::env::foreign_variables() {
            eprintln!("note: {key} is set but cargo sim does not read it: use {instead}");
        }
    }
    let exit = match dispatch(cli.command, &scenarios) {
        Ok(exit) => exit,
        Err(error) => {
            eprintln!("{error}");
            error.exit()
        }
    };
    ExitCode::from(exit.code())
}

/// Lets a closed pipe end the program quietly, as it does other command-line tools
/// (`cargo sim list | head`), rather than with a panic on the next print. Every report and
/// tape is written to its file before the summary is printed, so nothing is lost.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn dispatch(command: Command, scenarios: &[Arc<dyn Scenario>]) -> Result<Exit> {
    match command {
        Command::List(args) => Ok(list::list(scenarios, args.json)),
        Command::Merge(args) => merge::merge(args),
        #[cfg(madsim)]
        Command::Regress(args) => regress::regress(args, scenarios),
        Command::Test(args) => selftest::test(args.filter.as_deref()),
        #[cfg(madsim)]
        Command::Run(args) if args.crash_points.is_some() => {
            crash_points::run(args, None, scenarios)
        }
        #[cfg(madsim)]
        Command::Run(args) => run::run(args, None, scenarios),
        #[cfg(madsim)]
        Command::Hunt(hunt) if hunt.run.crash_points.is_some() => {
            let pattern = args::pattern(&hunt.signature)?;
            crash_points::run(hunt.run, Some(pattern), scenarios)
        }
        #[cfg(madsim)]
        Command::Hunt(hunt) => run::hunt(hunt, scenarios),
        #[cfg(madsim)]
        Command::Replay(args) => replay::replay(args, scenarios),
        #[cfg(madsim)]
        Command::Shrink(args) => replay::shrink(args, scenarios),
        #[cfg(madsim)]
        Command::Worker(args) => {
            worker::serve(args::find(scenarios, &args.scenario)?);
            Ok(Exit::Pass)
        }
        #[cfg(madsim)]
        Command::Bench(args) => bench::bench(args, scenarios),
        #[cfg(not(madsim))]
        _ => Err(crate::outcome::bad_input(
            "this binary was built without the simulator: run it through `cargo sim`, \
             which builds with --cfg madsim",
        )),
    }
}
