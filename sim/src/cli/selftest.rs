//! `cargo sim test`: every test suite, the plain build and the simulator build.

use std::process::Command;

use crate::outcome::{environment, Exit, Result};

const SIM_FLAGS: [&str; 4] = [
    "--target-dir",
    "target/sim",
    "--config",
    "build.rustflags=['--cfg','madsim']",
];

pub(super) fn test() -> Result<Exit> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let suites: [(&str, Vec<&str>); 3] = [
        ("plain build", vec!["test", "--workspace"]),
        (
            "plain build with failpoints",
            vec!["test", "-p", "faultline", "--features", "failpoints"],
        ),
        (
            "simulator build",
            [vec!["test", "--release", "--workspace"], SIM_FLAGS.to_vec()].concat(),
        ),
    ];
    for (name, args) in suites {
        eprintln!("== {name}: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(&args)
            .status()
            .map_err(|e| environment(format!("cannot run cargo: {e}")))?;
        if !status.success() {
            eprintln!("== {name}: FAILED ({status})");
            return Ok(Exit::Failed);
        }
    }
    eprintln!("== every suite passed");
    Ok(Exit::Pass)
}
