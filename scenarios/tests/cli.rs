//! The command line as users and gates use it: the printed reproduction line works, bad input
//! exits 2 with a message naming what is accepted, and nothing is overwritten.
#![cfg(madsim)]

mod common;

use common::{json, text};

use std::process::Output;

fn sim(args: &[&str], reports: &std::path::Path) -> Output {
    common::binary()
        .args(args)
        .env("FAULTLINE_REPORTS", reports)
        .env("FAULTLINE_REGRESSIONS", reports.join("regressions"))
        .env("FAULTLINE_SHRINK_SECONDS", "20")
        .output()
        .expect("run")
}

#[test]
fn the_printed_reproduction_line_replays_the_failure() {
    let reports = tempfile::tempdir().unwrap();
    let output = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..30",
            "--jobs",
            "1",
        ],
        reports.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let line = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("reproduce: "))
        .expect("a reproduction line");
    let args: Vec<&str> = line
        .strip_prefix("cargo sim ")
        .expect("a cargo sim command")
        .split(' ')
        .collect();
    let replay = sim(&args, reports.path());
    let replayed = text(&replay);
    assert_eq!(replay.status.code(), Some(1), "{replayed}");
    assert!(
        replayed.contains("FAIL invariant:counter-exact"),
        "{replayed}"
    );
    assert!(
        !replayed.contains("NOT reproduced") && !replayed.contains("diverged"),
        "{replayed}"
    );
}

#[test]
fn json_summary_has_the_fields_gates_read() {
    let reports = tempfile::tempdir().unwrap();
    let output = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..10",
            "--jobs",
            "2",
            "--json",
            "--no-shrink",
        ],
        reports.path(),
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(summary["scenario"], "canary");
    assert_eq!(summary["runs"], 10);
    assert!(summary["runs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(summary["violations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["invariant"] == "counter-exact"));
}

#[test]
fn bad_input_exits_2_and_says_what_is_accepted() {
    let reports = tempfile::tempdir().unwrap();
    let dir = reports.path();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--scenario", "nope", "--seeds", "0..3"],
            "accepted scenarios are concurrent-writers, schema-apply, delete-vs-fetch, broadcaster-disconnect, backfill, canary, net-canary",
        ),
        (
            &["run", "--scenario", "canary", "--seeds", "9..3"],
            "expected A..B",
        ),
        (
            &["run", "--scenario", "canary", "--budget", "soon"],
            "e.g. 500ms",
        ),
        (
            &["replay", "--scenario", "canary", "--seed", "x"],
            "expected a whole number",
        ),
    ];
    for (args, expected) in cases {
        let output = sim(args, dir);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(
            text(&output).contains(expected),
            "{args:?}: {}",
            text(&output)
        );
    }
    let output = common::binary()
        .args(["list"])
        .env("FAULTLINE_JOBS", "many")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "list does not read settings");
    let output = sim(&["run", "--scenario", "canary", "--seeds", "0..2"], dir);
    assert_eq!(output.status.code(), Some(1));
    let output = common::binary()
        .args(["run", "--scenario", "canary", "--seeds", "0..2"])
        .env("FAULTLINE_JOBS", "many")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("FAULTLINE_JOBS=\"many\" is not valid"),
        "{}",
        text(&output)
    );
}

#[test]
fn bad_trace_files_exit_2_and_are_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = common::run("canary", 1, faultline_sim::tape::Source::Seed)
        .tape
        .to_json();
    let cases = [
        (
            "truncated.json",
            recorded[..recorded.len() / 2].to_owned(),
            "truncated",
        ),
        (
            "newer.json",
            recorded.replace("\"version\": 3", "\"version\": 9"),
            "reads version 3 only",
        ),
        (
            "other.json",
            "{\"format\": \"something-else\"}".to_owned(),
            "not a tape file",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &contents).unwrap();
        for command in ["replay", "shrink"] {
            let output = sim(&[command, "--trace", path.to_str().unwrap()], dir.path());
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command} {name}: {}",
                text(&output)
            );
            assert!(
                text(&output).contains(expected),
                "{command} {name}: {}",
                text(&output)
            );
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            contents,
            "{name} was modified"
        );
    }
    let missing = sim(&["replay", "--trace", "/nonexistent/tape.json"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    for bad in ["none", "0"] {
        let output = sim(
            &["run", "--scenario", "canary", "--crash-points", bad],
            dir.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            text(&output).contains("expected `all` or a whole number"),
            "{}",
            text(&output)
        );
    }
    let output = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--crash-points",
            "3",
            "--crash-schedules",
            "99",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("expected a whole number from 0 to 64"));
}

#[test]
fn crash_points_count_boundaries_and_other_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--scenario",
        "delete-vs-fetch",
        "--crash-points",
        "4",
        "--crash-schedules",
        "2",
        "--seeds",
        "0..1",
        "--no-regressions",
        "--json",
    ];
    let output = sim(&args, dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert_eq!(report["crash_points"], 4, "{report}");
    assert_eq!(report["boundary_crash_points"], 4, "{report}");
    assert_eq!(report["schedule_runs"], 8, "{report}");
    // 4 points with 4 faults each, 4 boundaries, 8 rescheduled: the rest is second level.
    assert!(report["runs"].as_u64().unwrap() >= 28, "{report}");
}

/// The violations of one `--json` summary, as seeds in reported order.
fn violation_seeds(output: &Output) -> Vec<u64> {
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    summary["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["seed"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_hunt_reports_the_lowest_matching_seed_however_the_workers_race() {
    let reports = tempfile::tempdir().unwrap();
    let range = "11..40";
    let every = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            range,
            "--jobs",
            "1",
            "--json",
            "--no-shrink",
        ],
        reports.path(),
    );
    let lowest = *violation_seeds(&every)
        .iter()
        .min()
        .expect("the canary fails");
    // Four workers start at 11, 12, 13 and 14: several reach a failing seed on their second
    // run, so the first failure to arrive is a race.
    for _ in 0..3 {
        let hunt = sim(
            &[
                "hunt",
                "--scenario",
                "canary",
                "--seeds",
                range,
                "--jobs",
                "4",
                "--signature",
                "counter-exact",
                "--json",
                "--no-shrink",
            ],
            reports.path(),
        );
        assert_eq!(
            violation_seeds(&hunt).first(),
            Some(&lowest),
            "{}",
            text(&hunt)
        );
    }
}

#[test]
fn a_bad_strategy_exits_2_naming_the_strategies_accepted() {
    let reports = tempfile::tempdir().unwrap();
    for bad in ["dfs", "pct:4", "pct:0"] {
        let output = sim(
            &[
                "run",
                "--scenario",
                "canary",
                "--seeds",
                "0..1",
                "--strategy",
                bad,
            ],
            reports.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", text(&output));
        assert!(
            text(&output).contains("random, pct, pct:D"),
            "{}",
            text(&output)
        );
    }
    let output = common::binary()
        .args(["run", "--scenario", "canary", "--seeds", "0..1"])
        .env("FAULTLINE_REPORTS", reports.path())
        .env("FAULTLINE_STRATEGY", "bfs")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("FAULTLINE_STRATEGY"),
        "{}",
        text(&output)
    );
}

/// The coverage gate: a sweep too short to reach what the family declares fails and names
/// each gap; a long enough one passes; a failing sweep's JSON carries the coverage.
#[test]
fn require_coverage_fails_a_sweep_that_never_reached_a_declared_case() {
    let reports = tempfile::tempdir().unwrap();
    let args = |seeds: &'static str| {
        [
            "run",
            "--scenario",
            "schema-apply",
            "--seeds",
            seeds,
            "--require-coverage",
            "--no-shrink",
        ]
    };
    let short = sim(&args("0..1"), reports.path());
    assert_eq!(short.status.code(), Some(1), "{}", text(&short));
    assert!(text(&short).contains("NOT reached: "), "{}", text(&short));
    assert!(text(&short).contains("coverage gate"), "{}", text(&short));
    let long = sim(&args("0..300"), reports.path());
    assert_eq!(long.status.code(), Some(0), "{}", text(&long));
    assert!(
        text(&long).contains("sometimes migration-refused: "),
        "{}",
        text(&long)
    );
    let json = sim(
        &[
            "run",
            "--scenario",
            "schema-apply",
            "--seeds",
            "0..20",
            "--json",
            "--strategy",
            "swarm",
        ],
        reports.path(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(summary["strategy"], "swarm");
    assert_eq!(summary["coverage"]["runs"], 20);
    assert!(
        summary["coverage"]["decisions"]["engine.migrate.before_step"]["continue"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
}
