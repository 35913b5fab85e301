//! `cargo sim test`: every test suite, the plain build and the simulator build.

use std::process::Command;

use crate::outcome::{environment, Exit, Result};

const SIM_FLAGS: [&str; 4] = [
    "--target-dir",
    "target/sim",
    "--config",
    "build.rustflags=['--cfg','madsim']",
];

/// The workspace this binary was built from: the suites run there whatever the current
/// directory (`cargo sim test` from a subdirectory builds into the same target directories).
fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("faultline-sim sits in the workspace")
        .to_path_buf()
}

pub(super) fn test(filter: Option<&str>) -> Result<Exit> {
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
    for (name, mut args) in suites {
        if let Some(filter) = filter {
            args.push(filter);
        }
        eprintln!("== {name}: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(&args)
            .current_dir(workspace())
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
