//! `cargo sim ARGS`: builds the simulator binary with `--cfg madsim` in `target/sim` under the
//! workspace root (whatever the current directory), shows cargo's `Compiling` lines when
//! something is built (and nothing when the binary is fresh), then replaces itself with the
//! binary, so that exit codes and signals are the binary's own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the launcher sits in the workspace")
        .to_path_buf();
    let target = root.join("target").join("sim");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = match Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "faultline-scenarios",
            "--bin",
            "faultline-sim",
        ])
        .arg("--target-dir")
        .arg(&target)
        .args(["--config", "build.rustflags=['--cfg','madsim']"])
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("cargo sim: cannot run cargo to build the simulator: {error}");
            return ExitCode::from(3);
        }
    };
    let mut held = Vec::new();
    let mut building = false;
    let stderr = std::io::stderr();
    for line in BufReader::new(build.stderr.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        let quiet =
            line.trim_start().starts_with("Finished") || line.trim_start().starts_with("Blocking");
        if !building && !quiet {
            building = true;
            let _ = writeln!(
                stderr.lock(),
                "cargo sim: building the simulator (target/sim)..."
            );
            for earlier in held.drain(..) {
                let _ = writeln!(stderr.lock(), "{earlier}");
            }
        }
        match building {
            true => {
                let _ = writeln!(stderr.lock(), "{line}");
            }
            false => held.push(line),
        }
    }
    let status = match build.wait() {
        Ok(status) => status,
        Err(error) => {
            eprintln!("cargo sim: the simulator's build did not finish: {error}");
            return ExitCode::from(3);
        }
    };
    if !status.success() {
        eprintln!("cargo sim: the simulator does not build ({status})");
        return ExitCode::from(101);
    }
    run(&target.join("release").join("faultline-sim"))
}

#[cfg(unix)]
fn run(binary: &PathBuf) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let error = Command::new(binary)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("cargo sim: cannot start {}: {error}", binary.display());
    ExitCode::from(3)
}

#[cfg(not(unix))]
fn run(binary: &PathBuf) -> ExitCode {
    match Command::new(binary)
        .args(std::env::args_os().skip(1))
        .status()
    {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1) as u8),
        Err(error) => {
            eprintln!("cargo sim: cannot start {}: {error}", binary.display());
            ExitCode::from(3)
        }
    }
}
