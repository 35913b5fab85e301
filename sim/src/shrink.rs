//! Shrinking a failing tape to a 1-minimal one.
//!
//! A candidate is the tape with some choices removed (a removed site replays as 0, the
//! simplest choice) or one value made simpler. It is kept only if its run fails with the
//! same signature, so shrinking never drifts to another bug; the kept tape is the run's own
//! record of what it asked for, so sites the smaller run no longer reaches drop out.
//!
//! Passes: remove chunks of choices (halving the chunk size down to one), then simplify each
//! value (to half, then one less). When a whole round changes nothing, the tape is
//! 1-minimal: removing any one choice or simplifying any one value loses the failure.
//! Proptest's shrinking works on values it generated itself; a tape is a record of an
//! external run, so this delta-debugging loop is written here.

use std::time::{Duration, Instant};

use crate::tape::{Entry, Tape};

/// The result of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing tape found.
    pub tape: Tape,
    /// Non-zero choices in the original tape.
    pub original_choices: usize,
    /// Non-zero choices in the shrunk tape.
    pub choices: usize,
    /// Candidate runs made.
    pub candidates: u32,
    /// Whether a full round found nothing to remove or simplify (1-minimal).
    pub one_minimal: bool,
    /// Wall time spent (outside any simulation).
    pub elapsed: Duration,
}

/// Runs a candidate tape leniently; returns its failure signature and the entries it used.
pub trait Oracle {
    /// Replays `tape` (missing sites are 0) and reports `(signature, consumed entries)`.
    fn check(&mut self, tape: &Tape) -> (String, Vec<Entry>);
}

impl<F: FnMut(&Tape) -> (String, Vec<Entry>)> Oracle for F {
    fn check(&mut self, tape: &Tape) -> (String, Vec<Entry>) {
        self(tape)
    }
}

struct Shrinker<'a, O> {
    oracle: &'a mut O,
    signature: &'a str,
    best: Tape,
    candidates: u32,
    deadline: Instant,
}

/// Shrinks `tape`, whose run fails with `signature`, within `budget` of wall time.
pub fn shrink(tape: &Tape, signature: &str, budget: Duration, oracle: &mut impl Oracle) -> Shrunk {
    let started = Instant::now();
    let original_choices = tape.choices().len();
    let mut best = tape.clone();
    best.entries = tape.choices();
    let mut shrinker = Shrinker {
        oracle,
        signature,
        best,
        candidates: 0,
        deadline: started + budget,
    };
    let mut one_minimal = false;
    while !shrinker.out_of_time() {
        let removed = shrinker.remove_chunks();
        let simplified = shrinker.simplify_values();
        if !removed && !simplified && !shrinker.out_of_time() {
            one_minimal = true;
            break;
        }
    }
    let mut tape = shrinker.best;
    let choices = tape.choices().len();
    // Replay once more to store the complete record (zeros included) for strict replay.
    let (_, entries) = shrinker.oracle.check(&tape);
    tape.entries = entries;
    Shrunk {
        tape,
        original_choices,
        choices,
        candidates: shrinker.candidates + 1,
        one_minimal,
        elapsed: started.elapsed(),
    }
}

impl<O: Oracle> Shrinker<'_, O> {
    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Tries `entries`; keeps them (as the run recorded them) if the failure stays.
    fn attempt(&mut self, entries: Vec<Entry>) -> bool {
        let mut candidate = self.best.clone();
        candidate.entries = entries;
        self.candidates += 1;
        let (signature, consumed) = self.oracle.check(&candidate);
        if signature != self.signature {
            return false;
        }
        self.best.entries = consumed.into_iter().filter(|e| e.value != 0).collect();
        true
    }

    fn remove_chunks(&mut self) -> bool {
        let mut changed = false;
        let mut size = (self.best.entries.len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < self.best.entries.len() && !self.out_of_time() {
                let mut entries = self.best.entries.clone();
                let end = (start + size).min(entries.len());
                entries.drain(start..end);
                if self.attempt(entries) {
                    changed = true;
                } else {
                    start += size;
                }
            }
            if size == 1 || self.out_of_time() {
                return changed;
            }
            size /= 2;
        }
    }

    fn simplify_values(&mut self) -> bool {
        let mut changed = false;
        let mut index = 0;
        while index < self.best.entries.len() && !self.out_of_time() {
            let value = self.best.entries[index].value;
            let simpler = [value / 2, value.saturating_sub(1)];
            for candidate_value in simpler.into_iter().filter(|v| *v < value) {
                let mut entries = self.best.entries.clone();
                entries[index].value = candidate_value;
                if self.attempt(entries) {
                    changed = true;
                    break;
                }
            }
            index += 1;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A toy oracle: fails ("bug") when site `a` is at least 3 and site `c` is non-zero.
    fn toy(tape: &Tape) -> (String, Vec<Entry>) {
        let get = |site: &str| {
            tape.entries
                .iter()
                .find(|e| e.site == site)
                .map_or(0, |e| e.value)
        };
        let signature = if get("a") >= 3 && get("c") != 0 {
            "invariant:bug"
        } else {
            "pass"
        };
        let consumed = ["a", "b", "c", "d"]
            .iter()
            .map(|s| Entry {
                site: s.to_string(),
                value: get(s),
            })
            .collect();
        (signature.to_owned(), consumed)
    }

    fn tape(values: [u64; 4]) -> Tape {
        let mut tape = Tape::new("toy", 0);
        tape.entries = ["a", "b", "c", "d"]
            .iter()
            .zip(values)
            .map(|(site, value)| Entry {
                site: site.to_string(),
                value,
            })
            .collect();
        tape
    }

    #[test]
    fn shrinks_to_the_minimal_failing_choices() {
        let shrunk = shrink(
            &tape([9, 7, 5, 8]),
            "invariant:bug",
            Duration::from_secs(10),
            &mut toy,
        );
        assert!(shrunk.one_minimal);
        assert_eq!(
            shrunk.tape.choices(),
            vec![
                Entry {
                    site: "a".into(),
                    value: 3
                },
                Entry {
                    site: "c".into(),
                    value: 1
                },
            ]
        );
        assert_eq!(shrunk.original_choices, 4);
        assert_eq!(shrunk.choices, 2);
    }

    proptest! {
        #[test]
        fn shrinking_keeps_the_signature_and_never_grows(a in 3u64..50, b in 0u64..50, c in 1u64..50, d in 0u64..50) {
            let original = tape([a, b, c, d]);
            let shrunk = shrink(&original, "invariant:bug", Duration::from_secs(10), &mut toy);
            prop_assert_eq!(toy(&shrunk.tape).0, "invariant:bug");
            prop_assert!(shrunk.choices <= original.choices().len());
            prop_assert!(shrunk.one_minimal);
            prop_assert_eq!(shrunk.choices, 2);
        }
    }
}
