//! Faultline as a CI gate: failures grouped and capped, fail-fast, regression files replayed
//! first and by `regress`, JUnit read back by an independent parser, the Markdown summary,
//! partitions joined by `merge`, and the small conveniences (`--seeds N`, `A..=B`,
//! `--version`, `-j`, `list --json`, hunt's exit code). The planted `canary` bug fails about
//! one seed in four.
#![cfg(madsim)]

mod common;

use common::{json, text};

use std::path::Path;
use std::process::Output;

fn sim(args: &[&str], dir: &Path) -> Output {
    common::binary()
        .args(args)
        .current_dir(dir)
        .env("FAULTLINE_REPORTS", dir.join("reports"))
        .env("FAULTLINE_REGRESSIONS", dir.join("regressions"))
        .env("FAULTLINE_SHRINK_SECONDS", "20")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run")
}

fn dirs_in(path: &Path) -> usize {
    std::fs::read_dir(path)
        .map(|d| d.filter(|e| e.as_ref().unwrap().path().is_dir()).count())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_failures_is_grouped_capped_and_indexed_and_fail_fast_stops_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--scenario",
        "canary",
        "--seeds",
        "400",
        "--max-reports",
        "2",
        "--no-regressions",
    ];
    let output = sim(&args, dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failures: usize = stdout
        .lines()
        .find_map(|l| {
            l.split(" runs, ")
                .nth(1)?
                .split(" failed")
                .next()?
                .parse()
                .ok()
        })
        .expect("a summary line");
    assert!(failures > 50, "{stdout}");
    // One section for the one signature, however many runs failed.
    assert!(stdout.lines().count() < 15, "{stdout}");
    assert_eq!(stdout.matches("reproduce: ").count(), 1, "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("FAIL seed").count(), 2, "{stderr}");
    let reports = dir.path().join("reports/canary");
    assert_eq!(dirs_in(&reports), 2);
    let index = std::fs::read_to_string(reports.join("index.jsonl")).unwrap();
    assert_eq!(index.lines().count(), failures);
    let first: serde_json::Value = serde_json::from_str(index.lines().next().unwrap()).unwrap();
    assert_eq!(first["signature"], "invariant:counter-exact");
    // The shrunk case's failure.json points at its shrunk tape.
    let shrunk_dir = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("shrunk.tape.json").exists())
        .expect("a shrunk case");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shrunk_dir.join("failure.json")).unwrap())
            .unwrap();
    assert!(
        record["replay"].as_str().unwrap().contains("--trace"),
        "{record}"
    );
    assert!(record["shrunk_tape"]
        .as_str()
        .unwrap()
        .ends_with("shrunk.tape.json"));

    // In a log (stderr is a pipe here): no carriage returns, ever; --quiet drops the lines
    // per failure and the shrink chatter, keeping the summary.
    assert!(!stderr.contains('\r'), "{stderr:?}");
    let quiet = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..100",
            "--quiet",
            "--no-regressions",
        ],
        dir.path(),
    );
    let chatter = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        !chatter.contains("FAIL seed") && !chatter.contains("shrinking"),
        "{chatter}"
    );
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("invariant:counter-exact: "));
    let bad = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "3",
            "--progress",
            "loud",
        ],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("expected auto"), "{}", text(&bad));

    let fast = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..400",
            "--fail-fast",
            "--no-regressions",
            "--json",
            // One worker: with two, a seed already running when the first failure lands
            // may fail too and be reported (how many depends on timing).
            "-j",
            "1",
        ],
        dir.path(),
    );
    let summary = json(&fast);
    assert_eq!(fast.status.code(), Some(1));
    assert_eq!(summary["stopped_early"], true, "{summary}");
    assert_eq!(summary["groups"][0]["count"], 1, "{summary}");
    assert!(summary["runs"].as_u64().unwrap() < 400, "{summary}");
}

#[test]
fn a_new_failure_becomes_a_regression_tape_that_gates_until_the_bug_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let found = sim(
        &["run", "--scenario", "canary", "--seeds", "0..40"],
        dir.path(),
    );
    assert_eq!(found.status.code(), Some(1), "{}", text(&found));
    let regressions = dir.path().join("regressions/canary");
    let tapes: Vec<_> = std::fs::read_dir(&regressions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tapes.len(), 1, "{}", text(&found));
    let tape: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tapes[0]).unwrap()).unwrap();
    assert!(
        tape["story"].as_str().unwrap().contains("counter-exact"),
        "{tape}"
    );

    // The next run replays it first and stops there.
    let next = sim(
        &["run", "--scenario", "canary", "--seeds", "0..40", "--json"],
        dir.path(),
    );
    assert_eq!(next.status.code(), Some(1));
    let summary = json(&next);
    assert_eq!(summary["runs"], 0, "{summary}");
    assert_eq!(
        summary["regressions"][0]["signature"],
        "invariant:counter-exact"
    );
    let regress = sim(&["regress"], dir.path());
    assert_eq!(regress.status.code(), Some(1), "{}", text(&regress));
    assert!(
        text(&regress).contains("1 still fail"),
        "{}",
        text(&regress)
    );

    // "Fixing the bug": the same seed without the tape's one interleaving passes, and so
    // regress passes. Strict replay of the edited tape is another matter (it no longer
    // matches its recorded outcome), as it should be.
    let mut fixed = tape.clone();
    fixed["entries"] = serde_json::json!([]);
    std::fs::write(&tapes[0], serde_json::to_string_pretty(&fixed).unwrap()).unwrap();
    let passing = sim(&["regress", "--json"], dir.path());
    assert_eq!(passing.status.code(), Some(0), "{}", text(&passing));
    assert_eq!(json(&passing)["regressions"][0]["signature"], "pass");

    let missing = sim(&["regress", "no-such-dir"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("no-such-dir does not exist"));
}

#[test]
fn junit_and_markdown_describe_the_failures_and_an_independent_parser_reads_the_junit() {
    let dir = tempfile::tempdir().unwrap();
    let output = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..60",
            "--junit",
            "out.xml",
            "--summary",
            "out.md",
            "--no-regressions",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let file = std::fs::File::open(dir.path().join("out.xml")).unwrap();
    let suites = junit_parser::from_reader(std::io::BufReader::new(file)).unwrap();
    assert_eq!(suites.suites.len(), 1);
    let suite = &suites.suites[0];
    assert_eq!(suite.name, "canary");
    assert_eq!(suite.failures, 1);
    let case = &suite.cases[0];
    assert_eq!(case.original_name, "counter-exact");
    let junit_parser::TestStatus::Failure(failure) = &case.status else {
        panic!("counter-exact did not fail: {case:?}");
    };
    assert!(failure.message.contains("runs failed"), "{failure:?}");
    assert!(
        failure.text.contains("reproduce: cargo sim replay --trace"),
        "{failure:?}"
    );
    assert!(failure.text.contains("seeds "), "{failure:?}");
    let markdown = std::fs::read_to_string(dir.path().join("out.md")).unwrap();
    assert!(markdown.contains("| canary | 0..60 | 60 |"), "{markdown}");
    assert!(markdown.contains("`invariant:counter-exact`"), "{markdown}");

    // A passing scenario's invariants are passing cases.
    let clean = sim(
        &[
            "run",
            "--scenario",
            "concurrent-writers",
            "--seeds",
            "0..4",
            "--junit",
            "clean.xml",
        ],
        dir.path(),
    );
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    let file = std::fs::File::open(dir.path().join("clean.xml")).unwrap();
    let suites = junit_parser::from_reader(std::io::BufReader::new(file)).unwrap();
    assert!(suites.suites[0].cases.len() >= 3, "{suites:?}");
    assert_eq!(suites.failures, 0);
}

#[test]
fn partitions_cover_the_range_once_and_merge_joins_them_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let whole = json(&sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "10..=69",
            "--json",
            "--no-shrink",
            "--no-regressions",
        ],
        dir.path(),
    ));
    let mut files = Vec::new();
    for k in 1..=3 {
        let part = sim(
            &[
                "run",
                "--scenario",
                "canary",
                "--seeds",
                "10..70",
                "--partition",
                &format!("{k}/3"),
                "--json",
                "--no-shrink",
                "--no-regressions",
            ],
            dir.path(),
        );
        let name = format!("part-{k}.json");
        std::fs::write(dir.path().join(&name), &part.stdout).unwrap();
        files.push(name);
    }
    let mut args = vec!["merge", "--json", "--junit", "merged.xml"];
    args.extend(files.iter().map(String::as_str));
    let merged = sim(&args, dir.path());
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let merged = json(&merged);
    assert_eq!(merged["runs"], 60);
    assert_eq!(merged["runs"], whole["runs"]);
    assert_eq!(
        merged["seeds"],
        serde_json::json!({"mode": "range", "first": 10, "end": 70})
    );
    let seeds = |summary: &serde_json::Value| -> Vec<u64> {
        summary["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["seed"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seeds(&merged), seeds(&whole));
    assert_eq!(merged["groups"][0]["count"], whole["groups"][0]["count"]);
    assert!(dir.path().join("merged.xml").exists());

    let bad = sim(&["merge", "part-1.json", "missing.json"], dir.path());
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("missing.json is not a file"),
        "{}",
        text(&bad)
    );
    std::fs::write(dir.path().join("junk.json"), "{\"runs\": 3}\n").unwrap();
    let junk = sim(&["merge", "junk.json"], dir.path());
    assert_eq!(junk.status.code(), Some(2));
    assert!(
        text(&junk).contains("not a Faultline summary"),
        "{}",
        text(&junk)
    );
}

#[test]
fn small_conveniences_work_and_hunt_exits_0_when_it_finds_its_prey() {
    let dir = tempfile::tempdir().unwrap();
    let version = sim(&["--version"], dir.path());
    assert_eq!(version.status.code(), Some(0));
    assert!(
        text(&version).starts_with("cargo sim "),
        "{}",
        text(&version)
    );
    let short = json(&sim(
        &[
            "run",
            "--scenario",
            "concurrent-writers",
            "--seeds",
            "3",
            "-j",
            "1",
            "--json",
        ],
        dir.path(),
    ));
    assert_eq!(
        short["seeds"],
        serde_json::json!({"mode": "range", "first": 0, "end": 3})
    );
    assert_eq!(short["jobs"], 1);
    assert_eq!(short["schema"], "faultline-summary");
    assert_eq!(short["schema_version"], 1);
    let lines = sim(
        &[
            "run",
            "--scenario",
            "canary",
            "--seeds",
            "0..12",
            "--json-lines",
            "--no-shrink",
            "--no-regressions",
        ],
        dir.path(),
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&lines.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        13,
        "a line per seed, then the summary: {lines:?}"
    );
    let mut seeds: Vec<u64> = lines[..12]
        .iter()
        .map(|l| l["seed"].as_u64().unwrap())
        .collect();
    seeds.sort();
    assert_eq!(seeds, (0..12).collect::<Vec<_>>());
    assert!(lines[..12]
        .iter()
        .any(|l| l["outcome"] == "invariant:counter-exact"));
    assert_eq!(lines[12]["schema"], "faultline-summary");
    let list = json(&sim(&["list", "--json"], dir.path()));
    let names: Vec<&str> = list["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"delete-vs-fetch"), "{names:?}");
    assert!(!list["failpoints"].as_array().unwrap().is_empty());

    let hunt = |signature: &str| {
        sim(
            &[
                "hunt",
                "--scenario",
                "canary",
                "--seeds",
                "0..30",
                "--signature",
                signature,
                "--no-shrink",
                "--no-regressions",
            ],
            dir.path(),
        )
    };
    assert_eq!(hunt("counter-exact").status.code(), Some(0));
    assert_eq!(hunt("no-such-invariant").status.code(), Some(1));

    let hint = common::binary()
        .args(["run", "--scenario", "concurrent-writers", "--seeds", "1"])
        .current_dir(dir.path())
        .env("FAULTLINE_REPORTS", dir.path().join("reports"))
        .env("MADSIM_TEST_SEED", "7")
        .output()
        .unwrap();
    assert!(
        text(&hint).contains("MADSIM_TEST_SEED is set but cargo sim does not read it"),
        "{}",
        text(&hint)
    );
}
