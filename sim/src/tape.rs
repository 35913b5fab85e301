//! The choice tape: every decision of a run, labelled by the site that asked for it.
//!
//! A site is a stable label such as `op/2/3/batch` or
//! `fp/writer-2/engine.publish.before_commit#4` (node, failpoint name and the node's hit
//! number), never a bare position,
//! so a tape still means something after other entries are removed. Value 0 is always the
//! simplest choice (no operation, no fault, the smallest size): a site the tape does not
//! mention is 0 when shrinking, and a divergence when replaying strictly.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::site::FailpointSite;
use crate::strategy::{StrategyKind, PREEMPT_CRASH, PREEMPT_POINT};

fn is_random(strategy: &StrategyKind) -> bool {
    *strategy == StrategyKind::Random
}

/// The `format` field of every tape file.
pub const TAPE_FORMAT: &str = "faultline-tape";
/// The tape format version this build reads and writes.
///
/// Version 2: failpoint sites name the node (`fp/<node>/<point>#<hit>`, hits counted per
/// node); a version 1 tape's failpoint entries would match nothing.
/// Version 3: statements cost simulated time (`io_cost`, see [`crate::iotime`]), so every
/// run's timing, and with it its interleavings, differs from version 2's.
pub const TAPE_VERSION: u32 = 3;

/// One decision: the site that asked and the value it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The site's label.
    pub site: String,
    /// The value chosen (0 is the simplest).
    pub value: u64,
}

/// What a saved tape is expected to produce when replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The failure signature (`invariant:no-lost-write`), or `pass`.
    pub signature: String,
    /// The trace hash of the run that produced the tape.
    pub trace_hash: String,
}

/// A saved run: scenario, seed and every decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tape {
    /// Always [`TAPE_FORMAT`].
    pub format: String,
    /// The format version ([`TAPE_VERSION`]).
    pub version: u32,
    /// The scenario that ran.
    pub scenario: String,
    /// The run's seed (also seeds the simulator's scheduler).
    pub seed: u64,
    /// The I/O cost model the run charged ([`crate::iotime::IoCost`]'s text); a replay uses
    /// it.
    pub io_cost: String,
    /// The search strategy the run was recorded with ([`crate::strategy`]); absent means
    /// `random`.
    #[serde(default, skip_serializing_if = "is_random")]
    pub strategy: StrategyKind,
    /// The decisions, in the order they were made.
    pub entries: Vec<Entry>,
    /// What replaying it gives, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// A regression tape's one-line story: what broke and how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
}

impl Tape {
    /// An empty tape for `scenario` and `seed`.
    pub fn new(scenario: &str, seed: u64) -> Self {
        Tape {
            format: TAPE_FORMAT.to_owned(),
            version: TAPE_VERSION,
            scenario: scenario.to_owned(),
            seed,
            io_cost: crate::iotime::IoCost::default().to_string(),
            strategy: StrategyKind::Random,
            entries: Vec::new(),
            expected: None,
            story: None,
        }
    }

    /// The cost model the tape ran under (the default if its text does not parse, which
    /// [`Tape::parse`] refuses).
    pub fn io_cost(&self) -> crate::iotime::IoCost {
        crate::iotime::IoCost::parse(&self.io_cost).unwrap_or_default()
    }

    /// Entries whose value is not the default 0: the tape's size for shrinking.
    pub fn choices(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.value != 0)
            .cloned()
            .collect()
    }

    /// Serialises the tape as pretty JSON (one entry per line).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a tape always serialises")
    }

    /// Parses a tape file, checking its format and version.
    pub fn parse(text: &str) -> Result<Tape, String> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("not a tape file (invalid or truncated JSON: {e})"))?;
        let format = value.get("format").and_then(|f| f.as_str());
        if format != Some(TAPE_FORMAT) {
            return Err(format!(
                "not a tape file: format is {format:?}, expected \"{TAPE_FORMAT}\""
            ));
        }
        match value.get("version") {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(TAPE_VERSION)) => {}
            Some(serde_json::Value::Number(n)) => {
                return Err(format!(
                    "tape format version {n} is not supported: this build reads version {TAPE_VERSION} only"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "malformed tape: \"version\" is {other}, expected the number {TAPE_VERSION}"
                ))
            }
            None => {
                return Err(format!(
                    "malformed tape: no \"version\" field, expected the number {TAPE_VERSION}"
                ))
            }
        }
        let tape: Tape =
            serde_json::from_value(value).map_err(|e| format!("malformed tape: {e}"))?;
        if let Err(error) = crate::iotime::IoCost::parse(&tape.io_cost) {
            return Err(format!("malformed tape: \"io_cost\": {error}"));
        }
        let mut seen = BTreeSet::new();
        if let Some(entry) = tape.entries.iter().find(|e| !seen.insert(e.site.as_str())) {
            return Err(format!(
                "corrupt tape: site {} is listed more than once (a run asks for each site once)",
                entry.site
            ));
        }
        Ok(tape)
    }
}

/// Where a run's choices come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Drawn from the seed, and recorded.
    Seed,
    /// Taken from a tape; a site it lacks is a divergence.
    Replay(Tape),
    /// Taken from a tape; a site it lacks gets 0 (used while shrinking).
    Lenient(Tape),
}

impl Source {
    /// The cost model a run from this source charges: a replay's tape's, else `fresh`.
    pub fn io_cost(&self, fresh: crate::iotime::IoCost) -> crate::iotime::IoCost {
        match self {
            Source::Seed => fresh,
            Source::Replay(tape) | Source::Lenient(tape) => tape.io_cost(),
        }
    }

    /// The strategy a run from this source is recorded with: a replay's tape's, else `fresh`.
    pub fn strategy(&self, fresh: StrategyKind) -> StrategyKind {
        match self {
            Source::Seed => fresh,
            Source::Replay(tape) | Source::Lenient(tape) => tape.strategy,
        }
    }
}

/// Hands out choices for a run and records them.
#[derive(Debug)]
pub struct Chooser {
    rng: Option<Rng>,
    tape: BTreeMap<String, u64>,
    strict: bool,
    asked: BTreeSet<String>,
    consumed: Vec<Entry>,
    divergence: Option<String>,
    preempts: bool,
}

impl Chooser {
    /// A chooser for `seed` drawing from `source`; a fresh run decides statement boundaries
    /// when `strategy` preempts.
    pub fn new(seed: u64, source: &Source, strategy: StrategyKind) -> Self {
        let (rng, tape, strict) = match source {
            Source::Seed => (Some(Rng::new(seed, 1)), BTreeMap::new(), false),
            Source::Replay(tape) => (None, index(tape), true),
            Source::Lenient(tape) => (None, index(tape), false),
        };
        let preempts = match source {
            Source::Seed => strategy.preempts(),
            Source::Replay(_) | Source::Lenient(_) => tape.keys().any(|site| is_preemption(site)),
        };
        Chooser {
            rng,
            tape,
            strict,
            asked: BTreeSet::new(),
            consumed: Vec::new(),
            divergence: None,
            preempts,
        }
    }

    /// Whether statement boundaries are decided in this run: a fresh run's strategy
    /// preempts, or the tape holds a preemption.
    pub fn preempts(&self) -> bool {
        self.preempts
    }

    /// The value of a statement boundary (a preemption site, [`PREEMPT_POINT`]): `fresh`'s
    /// when recording, the tape's when replaying. Sparse: only a value other than 0 is
    /// recorded, and a site the tape lacks is 0 even in strict replay (a run has thousands
    /// of boundaries and preempts few).
    pub fn preemption(&mut self, site: String, fresh: impl FnOnce() -> u64) -> u64 {
        let value = match self.rng {
            Some(_) => fresh().min(PREEMPT_CRASH),
            None if self.tape.contains_key(&site) => self.recorded_value(&site, PREEMPT_CRASH),
            None => return 0,
        };
        if value != 0 || self.rng.is_none() {
            self.record(site, value);
        }
        value
    }

    /// A value in `0..=bound` for `site`.
    pub fn draw(&mut self, site: String, bound: u64) -> u64 {
        let value = match self.rng.as_mut() {
            Some(rng) => rng.below_or_equal(bound),
            None => self.recorded_value(&site, bound),
        };
        self.record(site, value)
    }

    /// An index into `weights` for `site`, drawn in proportion to the weights when
    /// recording. `weights[0]` should be the simplest choice.
    pub fn draw_weighted(&mut self, site: String, weights: &[u32]) -> u64 {
        let bound = weights.len().saturating_sub(1) as u64;
        let value = match self.rng.as_mut() {
            Some(rng) => rng.weighted(weights),
            None => self.recorded_value(&site, bound),
        };
        self.record(site, value)
    }

    /// Replaces the value last recorded (for a choice the run could not honour, such as a
    /// crash over the budget), so the tape holds what actually happened.
    pub fn amend_last(&mut self, value: u64) {
        if let Some(last) = self.consumed.last_mut() {
            last.value = value;
        }
    }

    fn recorded_value(&mut self, site: &str, bound: u64) -> u64 {
        match self.tape.get(site) {
            Some(value) if *value <= bound => *value,
            Some(value) => {
                self.diverge(format!(
                    "tape entry {site} = {value} is out of range 0..={bound}"
                ));
                bound
            }
            None => {
                if self.strict {
                    self.diverge(format!(
                        "the run asked for {site}, which the tape has no entry for"
                    ));
                }
                0
            }
        }
    }

    fn record(&mut self, site: String, value: u64) -> u64 {
        assert!(
            self.asked.insert(site.clone()),
            "harness bug: site {site} was asked for twice in one run"
        );
        self.consumed.push(Entry { site, value });
        value
    }

    fn diverge(&mut self, message: String) {
        if self.divergence.is_none() {
            self.divergence = Some(message);
        }
    }

    /// The decisions made so far, in order.
    pub fn consumed(&self) -> &[Entry] {
        &self.consumed
    }

    /// Ends the run: returns the decisions and the first divergence, counting (in strict
    /// replay) a tape entry no site asked for.
    pub fn finish(mut self) -> (Vec<Entry>, Option<String>) {
        if self.strict {
            let unasked = self
                .tape
                .keys()
                .find(|site| !self.asked.contains(*site))
                .cloned();
            if let Some(site) = unasked {
                self.diverge(format!("tape entry {site} was never asked for by the run"));
            }
        }
        (self.consumed, self.divergence)
    }
}

impl crate::faults::Draws for Chooser {
    fn below_or_equal(&mut self, site: String, bound: u64) -> u64 {
        self.draw(site, bound)
    }
    fn weighted(&mut self, site: String, weights: &[u32]) -> u64 {
        self.draw_weighted(site, weights)
    }
    fn amend_last(&mut self, value: u64) {
        Chooser::amend_last(self, value);
    }
}

/// Whether `site` is a statement boundary's (`fp/<node>/sched.preempt#<n>`).
pub fn is_preemption(site: &str) -> bool {
    FailpointSite::parse(site).is_some_and(|s| s.point == PREEMPT_POINT)
}

fn index(tape: &Tape) -> BTreeMap<String, u64> {
    tape.entries
        .iter()
        .map(|e| (e.site.clone(), e.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(seed: u64) -> Tape {
        let mut chooser = Chooser::new(seed, &Source::Seed, StrategyKind::Random);
        for i in 0..20 {
            chooser.draw(format!("op/{i}"), 9);
        }
        let mut tape = Tape::new("demo", seed);
        tape.entries = chooser.finish().0;
        tape
    }

    #[test]
    fn replaying_a_recorded_tape_gives_the_same_choices_without_divergence() {
        let tape = recorded(3);
        let mut chooser = Chooser::new(3, &Source::Replay(tape.clone()), StrategyKind::Random);
        let values: Vec<u64> = (0..20)
            .map(|i| chooser.draw(format!("op/{i}"), 9))
            .collect();
        let (entries, divergence) = chooser.finish();
        assert_eq!(divergence, None);
        assert_eq!(entries, tape.entries);
        assert_eq!(
            values,
            tape.entries.iter().map(|e| e.value).collect::<Vec<_>>()
        );
    }

    #[test]
    fn strict_replay_names_the_first_missing_site_and_unasked_entries() {
        let tape = recorded(3);
        let mut chooser = Chooser::new(3, &Source::Replay(tape.clone()), StrategyKind::Random);
        chooser.draw("op/new".to_owned(), 9);
        let (_, divergence) = chooser.finish();
        assert_eq!(
            divergence.as_deref(),
            Some("the run asked for op/new, which the tape has no entry for")
        );
        let mut chooser = Chooser::new(3, &Source::Replay(tape), StrategyKind::Random);
        chooser.draw("op/0".to_owned(), 9);
        let (_, divergence) = chooser.finish();
        assert!(divergence.unwrap().contains("op/1 was never asked for"));
    }

    #[test]
    fn lenient_replay_defaults_missing_sites_to_zero() {
        let mut chooser = Chooser::new(
            3,
            &Source::Lenient(Tape::new("demo", 3)),
            StrategyKind::Random,
        );
        assert_eq!(chooser.draw("op/0".to_owned(), 9), 0);
        assert_eq!(chooser.finish().1, None);
    }

    #[test]
    fn parse_rejects_other_formats_versions_and_truncation() {
        let text = recorded(1).to_json();
        assert_eq!(Tape::parse(&text).unwrap(), recorded(1));
        assert!(Tape::parse(&text[..text.len() / 2])
            .unwrap_err()
            .contains("truncated"));
        let older = text.replace("\"version\": 3", "\"version\": 2");
        assert!(Tape::parse(&older)
            .unwrap_err()
            .contains("reads version 3 only"));
        let costless = text.replace("\"io_cost\": \"", "\"io_cost\": \"free,");
        assert!(Tape::parse(&costless).unwrap_err().contains("\"io_cost\""));
        assert!(Tape::parse("{\"format\":\"x\"}")
            .unwrap_err()
            .contains("not a tape file"));
        let quoted = text.replace("\"version\": 3", "\"version\": \"3\"");
        assert!(Tape::parse(&quoted)
            .unwrap_err()
            .contains("\"version\" is \"3\", expected the number 3"));
    }

    #[test]
    fn parse_rejects_a_site_listed_twice_naming_it() {
        let mut tape = recorded(1);
        tape.entries.push(tape.entries[3].clone());
        let error = Tape::parse(&tape.to_json()).unwrap_err();
        assert!(
            error.contains("site op/3 is listed more than once"),
            "{error}"
        );
    }
}
