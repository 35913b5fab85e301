//! The command line tried as a hostile user would: runs that panic, abort, hang or fail
//! before their first failpoint (the planted `misbehave` scenario of the self-test binary),
//! huge numbers, unusable directories, full disks, Ctrl-C. Each test names the defect of
//! issue 9 it covers.
#![cfg(madsim)]

mod common;

use common::{json, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The self-test binary (the simulator plus `misbehave`), with reports, scratch and a short
/// wall-time limit of its own.
fn selftest(dirs: &Dirs) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultline-sim-selftest"));
    command
        .env("FAULTLINE_REPORTS", &dirs.reports)
        .env("FAULTLINE_REGRESSIONS", dirs.scratch.join("regressions"))
        .env("FAULTLINE_SCRATCH", &dirs.scratch)
        .env("FAULTLINE_RUN_WALL_SECONDS", "1")
        .env("FAULTLINE_SHRINK_SECONDS", "20");
    command
}

struct Dirs {
    _base: tempfile::TempDir,
    reports: PathBuf,
    scratch: PathBuf,
}

fn dirs() -> Dirs {
    let base = tempfile::tempdir().unwrap();
    let (reports, scratch) = (base.path().join("reports"), base.path().join("scratch"));
    std::fs::create_dir_all(&scratch).unwrap();
    Dirs {
        _base: base,
        reports,
        scratch,
    }
}

fn run(command: &mut Command, args: &[&str]) -> Output {
    command.args(args).output().expect("the binary runs")
}

/// Scratch directories runs left behind.
fn leftovers(scratch: &Path) -> Vec<String> {
    std::fs::read_dir(scratch)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("faultline-"))
                .collect()
        })
        .unwrap_or_default()
}

fn failure_files(reports: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| match e.path().is_dir() {
                    true => walk(&e.path()),
                    false => usize::from(e.file_name() == "failure.json"),
                })
                .sum()
        })
    }
    walk(reports)
}

#[test]
fn defect_1_a_base_run_that_fails_before_its_first_failpoint_is_a_failure() {
    let dirs = dirs();
    for (seed, signature) in [("5", "invariant:misbehave-ok"), ("1", "panic:panic")] {
        let range = format!("{seed}..{}", seed.parse::<u64>().unwrap() + 1);
        let args = [
            "run",
            "--scenario",
            "misbehave",
            "--crash-points",
            "all",
            "--seeds",
            &range,
            "--json",
        ];
        let output = run(&mut selftest(&dirs), &args);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let report = json(&output);
        let violations = report["violations"].as_array().unwrap();
        assert!(
            violations.iter().any(|v| v["signature"] == signature),
            "{report}"
        );
        assert!(
            violations.iter().all(|v| v["replay"].is_string()),
            "{report}"
        );
    }
    assert!(failure_files(&dirs.reports) >= 2);
}

#[test]
fn defect_2_crash_points_survive_an_abort_and_a_hang_in_a_run() {
    let dirs = dirs();
    let started = Instant::now();
    let args = [
        "run",
        "--scenario",
        "misbehave",
        "--crash-points",
        "all",
        "--seeds",
        "2..4",
        "--json",
    ];
    let output = run(&mut selftest(&dirs), &args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = json(&output);
    let signatures: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["signature"].as_str().unwrap())
        .collect();
    assert!(signatures.contains(&"abort:abort"), "{report}");
    assert!(signatures.contains(&"hang:hang"), "{report}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(leftovers(&dirs.scratch), Vec::<String>::new());
}

#[test]
fn defect_2_a_sweep_reports_every_misbehaving_seed_and_goes_on() {
    let dirs = dirs();
    let args = [
        "run",
        "--scenario",
        "misbehave",
        "--seeds",
        "0..16",
        "--jobs",
        "2",
        "--json",
    ];
    let output = run(&mut selftest(&dirs), &args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let summary = json(&output);
    assert_eq!(summary["runs"], 16, "{summary}");
    let kinds: std::collections::BTreeSet<String> = summary["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["signature"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "panic:panic",
        "abort:abort",
        "hang:hang",
        "liveness:deadlock",
        "invariant:misbehave-ok",
    ] {
        assert!(kinds.contains(kind), "{kind} missing: {summary}");
    }
    // The shrinks of the panic and the invariant ran in workers too, and reached 1-minimal.
    let shrunk = summary["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["shrunk"].is_object())
        .count();
    assert!(shrunk >= 2, "{summary}");
    assert_eq!(leftovers(&dirs.scratch), Vec::<String>::new());
}

#[test]
fn defect_3_seed_ranges_near_the_top_run_exactly_the_range() {
    let dirs = dirs();
    let top = u64::MAX;
    for jobs in ["1", "3"] {
        let range = format!("{}..{top}", top - 2);
        let args = [
            "run",
            "--scenario",
            "canary",
            "--seeds",
            &range,
            "--jobs",
            jobs,
            "--json",
            "--no-shrink",
        ];
        let output = run(&mut selftest(&dirs), &args);
        let summary = json(&output);
        assert_eq!(summary["runs"], 2, "--jobs {jobs}: {summary}");
        assert_eq!(summary["done_below"], top, "{summary}");
    }
}

#[test]
fn defect_4_replay_and_shrink_of_a_hang_or_an_abort_end_with_a_verdict() {
    let dirs = dirs();
    let started = Instant::now();
    let hang = run(
        &mut selftest(&dirs),
        &["replay", "--scenario", "misbehave", "--seed", "3"],
    );
    assert_eq!(hang.status.code(), Some(1), "{}", text(&hang));
    assert!(text(&hang).contains("FAIL hang:hang"), "{}", text(&hang));
    let abort = run(
        &mut selftest(&dirs),
        &[
            "replay",
            "--scenario",
            "misbehave",
            "--seed",
            "2",
            "--timeline",
        ],
    );
    assert_eq!(abort.status.code(), Some(1), "{}", text(&abort));
    assert!(text(&abort).contains("SIGABRT"), "{}", text(&abort));
    assert!(text(&abort).contains("did not finish"), "{}", text(&abort));
    let tape = dirs.scratch.join("hang.tape.json");
    let mut recorded = faultline_sim::tape::Tape::new("misbehave", 11);
    recorded.entries.clear();
    std::fs::write(&tape, recorded.to_json()).unwrap();
    let shrink = run(
        &mut selftest(&dirs),
        &["shrink", "--trace", tape.to_str().unwrap()],
    );
    assert_eq!(shrink.status.code(), Some(1), "{}", text(&shrink));
    assert!(
        text(&shrink).contains("cannot shrink a hang"),
        "{}",
        text(&shrink)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(leftovers(&dirs.scratch), Vec::<String>::new());
}

#[test]
fn defect_5_and_6_unusable_directories_are_environment_faults_before_any_run() {
    let dirs = dirs();
    let file = dirs.scratch.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let below_a_file = file.join("below");
    for (variable, verb) in [
        (
            "FAULTLINE_SCRATCH",
            vec!["run", "--scenario", "canary", "--seeds", "0..5"],
        ),
        (
            "FAULTLINE_REPORTS",
            vec!["run", "--scenario", "canary", "--seeds", "0..5"],
        ),
        (
            "FAULTLINE_REPORTS",
            vec![
                "hunt",
                "--scenario",
                "canary",
                "--seeds",
                "0..5",
                "--signature",
                "x",
            ],
        ),
        (
            "FAULTLINE_REPORTS",
            vec!["run", "--scenario", "canary", "--crash-points", "all"],
        ),
        (
            "FAULTLINE_SCRATCH",
            vec!["replay", "--scenario", "canary", "--seed", "1"],
        ),
    ] {
        let output = run(selftest(&dirs).env(variable, &below_a_file), &verb);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{variable} {verb:?}: {}",
            text(&output)
        );
        assert!(text(&output).contains(variable), "{}", text(&output));
        assert!(!text(&output).contains("FAIL"), "{}", text(&output));
    }
    let tape = dirs.scratch.join("canary.tape.json");
    let failing = (0..40)
        .map(|seed| common::run("canary", seed, faultline_sim::tape::Source::Seed))
        .find(|outcome| outcome.failure.is_some())
        .expect("the canary fails");
    std::fs::write(&tape, failing.tape.to_json()).unwrap();
    let output = run(
        selftest(&dirs).env("FAULTLINE_REPORTS", &below_a_file),
        &["shrink", "--trace", tape.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        !text(&output).contains("choices in"),
        "shrink refused to start: {}",
        text(&output)
    );
    assert_eq!(failure_files(&dirs.reports), 0);
}

/// A tmpfs of `kib` KiB mounted for one test (the harness's CI runs as root).
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(kib: u64) -> TinyDisk {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test mounts a small tmpfs and needs root"
        );
        TinyDisk(dir)
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn defect_5_a_full_scratch_disk_is_an_environment_fault_not_an_engine_failure() {
    let dirs = dirs();
    let small = TinyDisk::mount(8 * 1024);
    let args = [
        "run",
        "--scenario",
        "concurrent-writers",
        "--seeds",
        "0..20",
        "--jobs",
        "2",
    ];
    let output = run(
        selftest(&dirs)
            .env("FAULTLINE_SCRATCH", &small.0)
            .env("FAULTLINE_DISK", "files"),
        &args,
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("KiB free"), "{}", text(&output));
    assert_eq!(failure_files(&dirs.reports), 0);
    // A run that fails on a nearly full disk is blamed on the disk; one that passes is not.
    let full = TinyDisk::mount(3 * 1024);
    let request = |seed| faultline_sim::runner::RunRequest {
        seed,
        source: faultline_sim::tape::Source::Seed,
        limits: faultline_sim::limits::Limits::default(),
        scratch: full.0.clone(),
        disk: faultline_sim::crash::DiskKind::Files,
        io_cost: faultline_sim::iotime::IoCost::default(),
        strategy: Default::default(),
    };
    let misbehave = std::sync::Arc::new(faultline_scenarios::misbehave::Misbehave);
    let failed = faultline_sim::runner::run(misbehave.clone(), request(5));
    assert!(
        matches!(failed, Err(faultline_sim::outcome::Error::Environment(_))),
        "{failed:?}"
    );
    let passed = faultline_sim::runner::run(misbehave, request(0)).expect("a passing run");
    assert!(passed.failure.is_none());
}

#[test]
fn defect_7_huge_numbers_are_refused_naming_the_setting() {
    let dirs = dirs();
    let huge = "18446744073709551615";
    for (variable, value) in [
        ("FAULTLINE_SHRINK_SECONDS", huge),
        ("FAULTLINE_RUN_WALL_SECONDS", huge),
        ("FAULTLINE_TIME_LIMIT_SECONDS", huge),
        ("FAULTLINE_JOBS", "100000"),
    ] {
        let output = run(
            selftest(&dirs).env(variable, value),
            &["run", "--scenario", "canary", "--seeds", "0..2"],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}: {}",
            text(&output)
        );
        assert!(text(&output).contains(variable), "{}", text(&output));
    }
    for budget in [huge, "3381903080180084463m"] {
        let output = run(
            &mut selftest(&dirs),
            &["run", "--scenario", "canary", "--budget", budget],
        );
        assert_eq!(output.status.code(), Some(2), "{budget}: {}", text(&output));
        assert!(text(&output).contains("--budget"), "{}", text(&output));
    }
}

#[test]
fn defect_8_ctrl_c_stops_the_workers_removes_their_scratch_and_summarises() {
    let dirs = dirs();
    let child = selftest(&dirs)
        .args([
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..100000000",
            "--jobs",
            "2",
            "--no-shrink",
        ])
        .env("FAULTLINE_DISK", "files")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: sends SIGINT to a child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        text(&output).contains("interrupted: every seed below"),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("continue with --seeds"),
        "{}",
        text(&output)
    );
    assert_eq!(leftovers(&dirs.scratch), Vec::<String>::new());
}

#[test]
fn defect_9_an_abort_report_holds_its_own_output_and_names_the_signal() {
    let dirs = dirs();
    let args = [
        "run",
        "--scenario",
        "misbehave",
        "--seeds",
        "1..3",
        "--jobs",
        "1",
        "--json",
        "--no-shrink",
    ];
    let output = run(&mut selftest(&dirs), &args);
    let summary = json(&output);
    let abort = summary["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["seed"] == 2)
        .unwrap_or_else(|| panic!("seed 2 aborts: {summary}"));
    let message = abort["message"].as_str().unwrap();
    assert!(message.contains("SIGABRT"), "{message}");
    assert!(message.contains("seed 2 is about to abort"), "{message}");
    assert!(
        !message.contains("planted panic"),
        "seed 1's output leaked: {message}"
    );
}

#[test]
fn defect_11_smaller_checks() {
    let dirs = dirs();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "run",
                "--scenario",
                "canary",
                "--crash-points",
                "all",
                "--jobs",
                "0",
            ],
            "--jobs",
        ),
        (&["bench", "--seeds", "0"], "--seeds"),
        (
            &["run", "--scenario", "canary", "--seeds", "-1..4"],
            "--seeds \"-1..4\"",
        ),
        (
            &["replay", "--scenario", "canary", "--seed", "-3"],
            "--seed",
        ),
    ];
    for (args, expected) in cases {
        let output = run(&mut selftest(&dirs), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(
            text(&output).contains(expected),
            "{args:?}: {}",
            text(&output)
        );
    }
    let recorded = common::run("canary", 1, faultline_sim::tape::Source::Seed).tape;
    let mut twice = recorded.clone();
    twice.entries.push(recorded.entries[0].clone());
    let path = dirs.scratch.join("twice.tape.json");
    std::fs::write(&path, twice.to_json()).unwrap();
    let output = run(
        &mut selftest(&dirs),
        &["replay", "--trace", path.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains(&format!(
        "site {} is listed more than once",
        recorded.entries[0].site
    )));
    // hunt --crash-points honours --signature.
    for (signature, found) in [("misbehave-ok", true), ("no-such-invariant", false)] {
        let args = [
            "hunt",
            "--scenario",
            "misbehave",
            "--crash-points",
            "all",
            "--seeds",
            "4..6",
            "--signature",
            signature,
            "--json",
        ];
        let report = json(&run(&mut selftest(&dirs), &args));
        assert_eq!(report["found"], found, "{signature}: {report}");
    }
}

#[test]
fn defect_12_trace_hashes_agree_across_jobs_and_with_replays() {
    let dirs = dirs();
    let hashes = |jobs: &str| {
        let args = [
            "run",
            "--scenario",
            "concurrent-writers",
            "--seeds",
            "0..12",
            "--jobs",
            jobs,
            "--json",
            "--trace-hashes",
            "--no-shrink",
        ];
        json(&run(&mut selftest(&dirs), &args))["trace_hashes"].clone()
    };
    let one = hashes("1");
    assert_eq!(one.as_array().unwrap().len(), 12, "{one}");
    assert_eq!(one, hashes("2"));
    let replay = json(&run(
        &mut selftest(&dirs),
        &[
            "replay",
            "--scenario",
            "concurrent-writers",
            "--seed",
            "7",
            "--json",
        ],
    ));
    assert_eq!(replay["trace_hash"], one[7]["hash"]);
}
