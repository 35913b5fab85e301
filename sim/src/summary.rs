//! The result of a sweep as machines read it (`--json`, `merge`, JUnit, the Markdown
//! summary): a versioned record with the seeds covered as numbers and the failures grouped by
//! signature. Pure data: built by `run`, read back by `merge`; builds without the simulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;
use crate::outcome::FailureKind;

/// What `schema` always says.
pub const SCHEMA: &str = "faultline-summary";
/// The version of this record; bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;
/// Seeds listed per group in the text and Markdown summaries.
pub const SEEDS_SHOWN: usize = 5;

/// The seeds a sweep was asked for, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum SeedsAsked {
    /// `first..end` (end excluded).
    Range {
        /// The first seed.
        first: u64,
        /// One past the last seed.
        end: u64,
    },
    /// From `first` for `seconds` of wall time.
    Budget {
        /// The first seed.
        first: u64,
        /// The wall-time budget.
        seconds: f64,
    },
}

/// `--partition k/n`: this machine's share of the seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Which share, from 1.
    pub index: u64,
    /// Of how many.
    pub count: u64,
}

/// What shrinking one failure gave, with the saved shrunk tape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShrunkCase {
    /// The saved shrunk tape.
    pub tape: String,
    /// Non-zero choices before.
    pub original_choices: usize,
    /// Non-zero choices after.
    pub choices: usize,
    /// Candidate runs made.
    pub candidates: u32,
    /// Whether the result is proven 1-minimal.
    pub one_minimal: bool,
    /// Wall time spent.
    pub seconds: f64,
    /// The command that replays it.
    pub replay: String,
    /// The regression file it was added as, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<String>,
    /// Other signatures the shrunk run also broke (violations recorded after the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_broke: Vec<String>,
}

/// One failed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Its seed.
    pub seed: u64,
    /// The class of failure.
    pub kind: FailureKind,
    /// The invariant that broke (or `panic`, `hang`, `abort`).
    pub invariant: String,
    /// What was seen.
    pub message: String,
    /// `kind:invariant`.
    pub signature: String,
    /// The command that reproduces it (the shrunk tape's, once there is one).
    pub replay: String,
    /// Its report directory, for the first failures of a signature (`--max-reports`); the
    /// others are a line of the sweep's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_dir: Option<String>,
    /// The shrink of the first failure of its signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<ShrunkCase>,
}

/// Every failure of one signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `kind:invariant`.
    pub signature: String,
    /// The class of failure.
    pub kind: FailureKind,
    /// The invariant.
    pub invariant: String,
    /// How many runs failed so.
    pub count: u64,
    /// The lowest seeds that failed so (the first 100).
    pub seeds: Vec<u64>,
    /// The first failure's message.
    pub message: String,
    /// One command that reproduces it.
    pub replay: String,
    /// The first failure's shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<ShrunkCase>,
    /// Other signatures whose shrunk tapes make the same choices: likely one cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub likely_same_as: Vec<String>,
}

impl Group {
    /// Its first seeds for people: at most [`SEEDS_SHOWN`], then `...` if there are more.
    pub fn first_seeds(&self) -> String {
        let seeds: Vec<String> = self
            .seeds
            .iter()
            .take(SEEDS_SHOWN)
            .map(u64::to_string)
            .collect();
        let more = if self.count as usize > SEEDS_SHOWN {
            ", ..."
        } else {
            ""
        };
        format!("{}{more}", seeds.join(", "))
    }
}

/// One regression tape replayed before the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionResult {
    /// The tape file.
    pub tape: String,
    /// Its one-line story.
    pub story: String,
    /// `pass`, or the signature it still fails with.
    pub signature: String,
    /// What was seen, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RegressionResult {
    /// Whether the bug it records is still there.
    pub fn failed(&self) -> bool {
        self.signature != crate::outcome::PASS
    }
}

/// A hunt's pattern and whether it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuntResult {
    /// The pattern.
    pub pattern: String,
    /// Whether a failure matched it.
    pub found: bool,
}

/// One finished seed's trace hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHash {
    /// The seed.
    pub seed: u64,
    /// Its trace hash.
    pub hash: String,
}

/// The result of one sweep (or of several merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The scenario.
    pub scenario: String,
    /// Its invariants, by name (a JUnit case each).
    pub invariants: Vec<String>,
    /// The seeds asked for.
    pub seeds: SeedsAsked,
    /// This machine's share, when partitioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// The search strategy.
    pub strategy: String,
    /// Worker processes.
    pub jobs: usize,
    /// Runs finished.
    pub runs: u64,
    /// Every seed from the first asked for up to this one finished.
    pub done_below: u64,
    /// Whether Ctrl-C or SIGTERM stopped the sweep.
    pub interrupted: bool,
    /// Whether `--fail-fast` or `--max-failures` stopped it.
    pub stopped_early: bool,
    /// Wall time.
    pub seconds: f64,
    /// Runs per second.
    pub runs_per_sec: f64,
    /// Failed runs.
    pub failures: u64,
    /// Distinct signatures.
    pub distinct_signatures: usize,
    /// The failures, one group per signature, the most frequent first.
    pub groups: Vec<Group>,
    /// Every failed run (one line each).
    pub violations: Vec<Violation>,
    /// The regression tapes replayed first.
    pub regressions: Vec<RegressionResult>,
    /// What the sweep reached.
    pub coverage: Coverage,
    /// What the scenario declares and the sweep never reached.
    pub coverage_gaps: Vec<String>,
    /// A hunt's pattern and verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hunt: Option<HuntResult>,
    /// Each finished seed's trace hash (`--trace-hashes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hashes: Option<Vec<TraceHash>>,
}

impl Summary {
    /// A summary with no runs yet (a `regress` of a scenario's tapes starts from one).
    pub fn empty(scenario: &str, invariants: Vec<String>, strategy: &str) -> Summary {
        Summary {
            schema: SCHEMA.to_owned(),
            schema_version: SCHEMA_VERSION,
            scenario: scenario.to_owned(),
            invariants,
            seeds: SeedsAsked::Range { first: 0, end: 0 },
            partition: None,
            strategy: strategy.to_owned(),
            jobs: 0,
            runs: 0,
            done_below: 0,
            interrupted: false,
            stopped_early: false,
            seconds: 0.0,
            runs_per_sec: 0.0,
            failures: 0,
            distinct_signatures: 0,
            groups: Vec::new(),
            violations: Vec::new(),
            regressions: Vec::new(),
            coverage: Coverage::default(),
            coverage_gaps: Vec::new(),
            hunt: None,
            trace_hashes: None,
        }
    }

    /// Whether anything failed: a violation or a regression tape.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || self.regressions.iter().any(RegressionResult::failed)
    }

    /// Parses a summary written by `--json`, checking its schema.
    pub fn parse(text: &str) -> Result<Summary, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if value.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            return Err(format!(
                "not a Faultline summary (its \"schema\" is not \"{SCHEMA}\"; write one with \
                 `cargo sim run ... --json`)"
            ));
        }
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            other => {
                return Err(format!(
                    "summary schema_version {other:?}, this build reads {SCHEMA_VERSION}"
                ))
            }
        }
        serde_json::from_value(value).map_err(|e| format!("a field is wrong: {e}"))
    }
}

/// Groups `violations` (in seed order) by signature, the most frequent first (ties by
/// signature); `same_choices` maps a signature to its shrunk tape's non-zero choices, for
/// telling which signatures are likely one cause.
pub fn group(violations: &[Violation], same_choices: &BTreeMap<String, String>) -> Vec<Group> {
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for v in violations {
        let group = groups.entry(&v.signature).or_insert_with(|| Group {
            signature: v.signature.clone(),
            kind: v.kind,
            invariant: v.invariant.clone(),
            count: 0,
            seeds: Vec::new(),
            message: v.message.clone(),
            replay: v.replay.clone(),
            shrunk: None,
            likely_same_as: Vec::new(),
        });
        group.count += 1;
        if group.seeds.len() < 100 {
            group.seeds.push(v.seed);
        }
        if group.shrunk.is_none() && v.shrunk.is_some() {
            group.shrunk = v.shrunk.clone();
            group.replay = v.replay.clone();
        }
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    for group in &mut groups {
        let Some(mine) = same_choices.get(&group.signature) else {
            continue;
        };
        group.likely_same_as = same_choices
            .iter()
            .filter(|(sig, choices)| **sig != group.signature && *choices == mine)
            .map(|(sig, _)| sig.clone())
            .collect();
    }
    // A minimal run of one signature that also breaks another: likely one cause, both ways.
    let links: Vec<(String, String)> = groups
        .iter()
        .filter_map(|g| Some((g, g.shrunk.as_ref()?)))
        .flat_map(|(g, shrunk)| {
            shrunk
                .also_broke
                .iter()
                .map(move |other| (g.signature.clone(), other.clone()))
        })
        .collect();
    for (one, other) in links {
        for (from, to) in [(&one, &other), (&other, &one)] {
            if let Some(group) = groups.iter_mut().find(|g| &g.signature == from) {
                if !group.likely_same_as.contains(to) && from != to {
                    group.likely_same_as.push(to.clone());
                }
            }
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.signature.cmp(&b.signature)));
    groups
}

/// Combines the summaries of one scenario's partitions (or of successive runs) into one:
/// runs, failures and coverage summed, groups rebuilt, seeds spanning all of them.
pub fn merge(parts: &[Summary]) -> Result<Summary, String> {
    let Some(first) = parts.first() else {
        return Err("no summaries to merge".to_owned());
    };
    if let Some(other) = parts.iter().find(|p| p.scenario != first.scenario) {
        return Err(format!(
            "the summaries are of different scenarios ({} and {}): merge one scenario's at a time",
            first.scenario, other.scenario
        ));
    }
    let mut merged = first.clone();
    merged.partition = None;
    for part in &parts[1..] {
        merged.runs += part.runs;
        merged.failures += part.failures;
        merged.seconds = merged.seconds.max(part.seconds);
        merged.interrupted |= part.interrupted;
        merged.stopped_early |= part.stopped_early;
        merged.jobs += part.jobs;
        merged.violations.extend(part.violations.iter().cloned());
        for r in &part.regressions {
            if !merged.regressions.iter().any(|m| m.tape == r.tape) {
                merged.regressions.push(r.clone());
            }
        }
        merged.coverage.add(&part.coverage);
        merged.seeds = span(merged.seeds, part.seeds);
        merged.done_below = merged.done_below.min(part.done_below);
        if let (Some(mine), Some(theirs)) = (&mut merged.trace_hashes, &part.trace_hashes) {
            mine.extend(theirs.iter().cloned());
        }
        if let (Some(mine), Some(theirs)) = (&mut merged.hunt, &part.hunt) {
            mine.found |= theirs.found;
        }
    }
    merged.coverage_gaps.retain(|gap| {
        parts
            .iter()
            .all(|p| p.coverage_gaps.iter().any(|g| g == gap))
    });
    merged.violations.sort_by_key(|v| v.seed);
    if let Some(hashes) = &mut merged.trace_hashes {
        hashes.sort_by_key(|h| h.seed);
    }
    let choices = BTreeMap::new();
    let likely: BTreeMap<String, Vec<String>> = parts
        .iter()
        .flat_map(|p| p.groups.iter())
        .map(|g| (g.signature.clone(), g.likely_same_as.clone()))
        .collect();
    merged.groups = group(&merged.violations, &choices);
    for g in &mut merged.groups {
        g.likely_same_as = likely.get(&g.signature).cloned().unwrap_or_default();
    }
    merged.distinct_signatures = merged.groups.len();
    merged.runs_per_sec = merged.runs as f64 / merged.seconds.max(1e-9);
    Ok(merged)
}

fn span(a: SeedsAsked, b: SeedsAsked) -> SeedsAsked {
    match (a, b) {
        (SeedsAsked::Range { first: f1, end: e1 }, SeedsAsked::Range { first: f2, end: e2 }) => {
            SeedsAsked::Range {
                first: f1.min(f2),
                end: e1.max(e2),
            }
        }
        (SeedsAsked::Budget { first, seconds }, SeedsAsked::Budget { seconds: s2, .. }) => {
            SeedsAsked::Budget {
                first,
                seconds: seconds.max(s2),
            }
        }
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(seed: u64, invariant: &str) -> Violation {
        Violation {
            seed,
            kind: FailureKind::Invariant,
            invariant: invariant.to_owned(),
            message: format!("broke at {seed}"),
            signature: format!("invariant:{invariant}"),
            replay: format!("replay {seed}"),
            report_dir: None,
            shrunk: None,
        }
    }

    #[test]
    fn groups_count_and_order_by_frequency_and_spot_one_cause() {
        let violations = vec![
            violation(1, "b"),
            violation(2, "a"),
            violation(3, "a"),
            violation(4, "c"),
        ];
        let choices = BTreeMap::from([
            ("invariant:a".to_owned(), "x=1".to_owned()),
            ("invariant:c".to_owned(), "x=1".to_owned()),
            ("invariant:b".to_owned(), "y=2".to_owned()),
        ]);
        let groups = group(&violations, &choices);
        let names: Vec<(&str, u64)> = groups
            .iter()
            .map(|g| (g.signature.as_str(), g.count))
            .collect();
        assert_eq!(
            names,
            [("invariant:a", 2), ("invariant:b", 1), ("invariant:c", 1)]
        );
        assert_eq!(groups[0].seeds, [2, 3]);
        assert_eq!(groups[0].likely_same_as, ["invariant:c"]);
        assert!(groups[1].likely_same_as.is_empty());

        // b's minimal run also broke d: both point at each other.
        let mut violations = vec![violation(1, "b"), violation(2, "d")];
        violations[0].shrunk = Some(ShrunkCase {
            tape: "t".to_owned(),
            original_choices: 3,
            choices: 1,
            candidates: 4,
            one_minimal: true,
            seconds: 0.1,
            replay: "r".to_owned(),
            regression: None,
            also_broke: vec!["invariant:d".to_owned()],
        });
        let groups = group(&violations, &BTreeMap::new());
        assert_eq!(groups[0].likely_same_as, ["invariant:d"]);
        assert_eq!(groups[1].likely_same_as, ["invariant:b"]);
    }
}
