//! JUnit XML of sweep summaries (`--junit FILE`), for CI systems that show test results: a
//! suite per scenario, a case per invariant (failed when any run broke it) and per regression
//! tape, plus a case per failure class that is no invariant (a panic, a hang). A failure
//! carries its message, the seeds that broke it and the line that reproduces it.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::summary::{Group, Summary};

/// The XML for `summaries` (one suite each).
pub fn render(summaries: &[Summary]) -> String {
    let mut report = Report::new("faultline");
    for summary in summaries {
        report.add_test_suite(suite(summary));
    }
    report
        .to_string()
        .expect("a JUnit report always serialises")
}

fn suite(summary: &Summary) -> TestSuite {
    let mut suite = TestSuite::new(summary.scenario.as_str());
    let seconds = Duration::from_secs_f64(summary.seconds.max(0.0));
    suite.set_time(seconds);
    for regression in &summary.regressions {
        let status = if regression.failed() {
            failed(
                &format!("still fails: {}", regression.signature),
                &format!(
                    "{}\n{}\nreproduce: {}",
                    regression.story,
                    regression.message.as_deref().unwrap_or(""),
                    crate::report::replay_trace_command(std::path::Path::new(&regression.tape))
                ),
            )
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("regression {}", regression.tape), status);
        case.set_classname(format!("{}.regressions", summary.scenario));
        suite.add_test_case(case);
    }
    let mut named: Vec<&str> = summary.invariants.iter().map(String::as_str).collect();
    for group in &summary.groups {
        if !named.contains(&group.invariant.as_str()) {
            named.push(group.invariant.as_str());
        }
    }
    for invariant in named {
        let groups: Vec<&Group> = summary
            .groups
            .iter()
            .filter(|g| g.invariant == invariant)
            .collect();
        let status = match groups.as_slice() {
            [] => TestCaseStatus::success(),
            groups => {
                let runs: u64 = groups.iter().map(|g| g.count).sum();
                let detail: Vec<String> = groups.iter().map(|g| describe(g)).collect();
                failed(
                    &format!("{runs} runs failed: {}", groups[0].message),
                    &detail.join("\n\n"),
                )
            }
        };
        let mut case = TestCase::new(invariant, status);
        case.set_classname(summary.scenario.as_str());
        suite.add_test_case(case);
    }
    suite
}

fn describe(group: &Group) -> String {
    format!(
        "{} ({} runs; seeds {})\n{}\nreproduce: {}",
        group.signature,
        group.count,
        group.first_seeds(),
        group.message,
        group.replay
    )
}

fn failed(message: &str, description: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message);
    status.set_description(description);
    status
}
