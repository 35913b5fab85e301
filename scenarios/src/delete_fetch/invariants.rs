//! The delete-vs-fetch invariants: pure functions over what the workload observed, each
//! saying what it checks and what it does not, each made to fail by a unit test below.

use std::collections::{BTreeMap, BTreeSet};

use faultline::sources::Revision;
use faultline_sim::InvariantDoc;

/// Every invariant of the family, as `cargo sim list` shows them.
pub const DOCS: &[InvariantDoc] = &[
    InvariantDoc { name: "open-succeeds", checks: "every handle opens the store, after any crash; does not check what it then reads" },
    InvariantDoc { name: "delete-wins", checks: "once the delete of a source's last scope completed, no mirror of it exists, even with a fetch in flight; does not check other handles' caches" },
    InvariantDoc { name: "siblings-kept", checks: "a delete never removes a mirror that a remaining scope still names; does not check the mirror's revision" },
    InvariantDoc { name: "caches-drain", checks: "after a delete, the deleting handle caches nothing of a source no scope names; after a final sync, no handle caches an unnamed source" },
    InvariantDoc { name: "bounded-concurrency", checks: "fetches in flight never exceed N, and exceed 1 when N > 1 and 2+ sources are synced; N < 1 is refused" },
    InvariantDoc { name: "isolation", checks: "a pass reports every source named throughout it, a failing or unreachable one never hides the others; does not check their results" },
    InvariantDoc { name: "mirror-atomic", checks: "every mirror read equals exactly one revision of its source; does not check it is the latest" },
    InvariantDoc { name: "fetch-stamp-honest", checks: "a failed fetch never moves a mirror's last-fetched time (unless another handle's pass may have fetched it)" },
    InvariantDoc { name: "liveness:sync-completes", checks: "each pass ends within its bound; after healing, every named source's mirror reaches the latest revision" },
    crate::store_clean::DOC,
];

/// delete-wins: every mirror's source is named by a scope.
pub fn delete_wins(named: &BTreeSet<String>, mirrored: &BTreeSet<String>) -> Result<(), String> {
    match mirrored.difference(named).next() {
        Some(source) => Err(format!("{source} has a mirror but no scope names it")),
        None => Ok(()),
    }
}

/// siblings-kept: every source that had a mirror before a delete and is still named after
/// it still has its mirror.
pub fn siblings_kept(
    before: &BTreeSet<String>,
    named_after: &BTreeSet<String>,
    mirrored_after: &BTreeSet<String>,
) -> Result<(), String> {
    let lost = before
        .iter()
        .find(|s| named_after.contains(*s) && !mirrored_after.contains(*s));
    match lost {
        Some(source) => Err(format!(
            "the delete removed the mirror of {source}, which a scope still names"
        )),
        None => Ok(()),
    }
}

/// caches-drain: a handle caches nothing of a source no scope names.
pub fn caches_drain(cached: &[String], named: &BTreeSet<String>) -> Result<(), String> {
    match cached.iter().find(|s| !named.contains(*s)) {
        Some(source) => Err(format!(
            "a cache still holds {source}, which no scope names"
        )),
        None => Ok(()),
    }
}

/// bounded-concurrency: at most `n` in flight, and more than one when it could be.
pub fn bounded_concurrency(most: usize, n: usize, synced: usize) -> Result<(), String> {
    if most > n {
        return Err(format!(
            "{most} fetches were in flight with a concurrency of {n}"
        ));
    }
    if n > 1 && synced > 1 && most < 2 {
        return Err(format!(
            "{synced} sources synced one at a time with a concurrency of {n}"
        ));
    }
    Ok(())
}

/// isolation: every source named both before and after a pass has a result in its report.
pub fn isolation(
    named_before: &BTreeSet<String>,
    named_after: &BTreeSet<String>,
    reported: &BTreeSet<String>,
) -> Result<(), String> {
    let missing = named_before
        .intersection(named_after)
        .find(|s| !reported.contains(*s));
    match missing {
        Some(source) => Err(format!(
            "the pass has no result for {source}, named throughout it"
        )),
        None => Ok(()),
    }
}

/// mirror-atomic: the mirror's entries are its revision's, exactly.
pub fn mirror_atomic(
    source: &str,
    revision: u64,
    entries: &Revision,
    expected: Option<&Revision>,
) -> Result<(), String> {
    match expected {
        Some(expected) if expected == entries => Ok(()),
        Some(_) => Err(format!(
            "the mirror of {source} says revision {revision} but holds other entries"
        )),
        None => Err(format!(
            "the mirror of {source} says revision {revision}, which the source never had"
        )),
    }
}

/// One pass of a sync as the workload saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The server that ran it.
    pub server: usize,
    /// Simulated start and (if it finished) end, in ns.
    pub window: (u64, Option<u64>),
    /// The sources it fetched successfully.
    pub fetched: BTreeSet<String>,
}

/// fetch-stamp-honest: a source that failed in a pass kept its stamp through the pass, unless
/// another pass that overlapped it fetched the source or never finished (a crash).
pub fn fetch_stamp_honest(
    source: &str,
    stamps: (Option<u64>, Option<u64>),
    pass: &Pass,
    passes: &[Pass],
) -> Result<(), String> {
    // Unchanged, or the mirror deleted meanwhile: the time did not advance.
    if stamps.1.is_none() || stamps.0 == stamps.1 {
        return Ok(());
    }
    let (start, end) = (pass.window.0, pass.window.1.unwrap_or(u64::MAX));
    let excused = passes.iter().any(|other| {
        let other_end = other.window.1.unwrap_or(u64::MAX);
        let overlaps = other.window.0 <= end && start <= other_end;
        other != pass && overlaps && (other.window.1.is_none() || other.fetched.contains(source))
    });
    match excused {
        true => Ok(()),
        false => Err(format!(
            "the fetch of {source} failed but its last-fetched time moved from {:?} to {:?}",
            stamps.0, stamps.1
        )),
    }
}

/// The sources of `scopes` (scope -> source).
pub fn named(scopes: &BTreeMap<String, String>) -> BTreeSet<String> {
    scopes.values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn delete_wins_fails_on_a_mirror_nobody_names() {
        assert!(delete_wins(&set(&["a"]), &set(&["a"])).is_ok());
        assert!(delete_wins(&set(&["a"]), &set(&["a", "b"]))
            .unwrap_err()
            .contains("b has a mirror"));
    }

    #[test]
    fn siblings_kept_fails_when_a_named_mirror_vanishes() {
        assert!(siblings_kept(&set(&["a", "b"]), &set(&["b"]), &set(&["b"])).is_ok());
        assert!(siblings_kept(&set(&["a", "b"]), &set(&["b"]), &set(&[])).is_err());
    }

    #[test]
    fn caches_drain_fails_on_an_unnamed_cached_source() {
        assert!(caches_drain(&["a".into()], &set(&["a"])).is_ok());
        assert!(caches_drain(&["a".into(), "z".into()], &set(&["a"])).is_err());
    }

    #[test]
    fn bounded_concurrency_fails_over_the_bound_and_on_a_serial_fallback() {
        assert!(bounded_concurrency(2, 2, 3).is_ok());
        assert!(bounded_concurrency(3, 2, 3).is_err());
        assert!(bounded_concurrency(1, 3, 2).is_err());
        assert!(bounded_concurrency(1, 1, 3).is_ok());
    }

    #[test]
    fn isolation_fails_when_a_source_named_throughout_has_no_result() {
        assert!(isolation(&set(&["a", "b"]), &set(&["a"]), &set(&["a"])).is_ok());
        assert!(isolation(&set(&["a", "b"]), &set(&["a", "b"]), &set(&["a"])).is_err());
    }

    #[test]
    fn mirror_atomic_fails_on_a_mix_and_on_an_unknown_revision() {
        let one: Revision = [("a".to_string(), b"1".to_vec())].into();
        let mix: Revision = [("a".to_string(), b"2".to_vec())].into();
        assert!(mirror_atomic("s", 1, &one, Some(&one)).is_ok());
        assert!(mirror_atomic("s", 1, &mix, Some(&one)).is_err());
        assert!(mirror_atomic("s", 9, &one, None).is_err());
    }

    #[test]
    fn fetch_stamp_honest_fails_unless_an_overlapping_pass_explains_the_move() {
        let pass = |server, window, fetched: &[&str]| Pass {
            server,
            window,
            fetched: set(fetched),
        };
        let failed = pass(0, (10, Some(20)), &[]);
        let alone = std::slice::from_ref(&failed);
        assert!(fetch_stamp_honest("s", (Some(1), Some(1)), &failed, alone).is_ok());
        assert!(fetch_stamp_honest("s", (Some(1), Some(2)), &failed, alone).is_err());
        assert!(fetch_stamp_honest("s", (Some(1), None), &failed, alone).is_ok());
        let other = pass(1, (15, Some(30)), &["s"]);
        assert!(
            fetch_stamp_honest("s", (Some(1), Some(2)), &failed, &[failed.clone(), other]).is_ok()
        );
        let crashed = pass(1, (5, None), &[]);
        assert!(
            fetch_stamp_honest("s", (None, Some(2)), &failed, &[failed.clone(), crashed]).is_ok()
        );
        let before = pass(1, (0, Some(5)), &["s"]);
        assert!(
            fetch_stamp_honest("s", (None, Some(2)), &failed, &[failed.clone(), before]).is_err()
        );
    }
}
