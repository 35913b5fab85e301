//! Tape sites the harness itself asks for, built and parsed here only.
//!
//! A failpoint hit draws its decision at `fp/<node>/<point>#<hit>`, and, depending on the
//! decision, a companion: `...#<hit>:ms` (how long a sleep lasts) or `...#<hit>:scope` (what
//! a crash takes down). A power loss draws, for each chunk of a file written since its last
//! sync, `power/<image><file>@<chunk>`. Workload sites (`op/2/3/batch`) belong to the
//! scenarios and are plain strings.

use std::fmt;

/// Which of a failpoint hit's entries a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The decision itself (continue, yield, sleep, error, crash).
    Decision,
    /// A sleep's length in milliseconds, minus one.
    SleepMs,
    /// A crash's scope.
    Scope,
}

impl Part {
    fn suffix(self) -> &'static str {
        match self {
            Part::Decision => "",
            Part::SleepMs => ":ms",
            Part::Scope => ":scope",
        }
    }

    fn parse(suffix: &str) -> Option<Part> {
        [Part::Decision, Part::SleepMs, Part::Scope]
            .into_iter()
            .find(|part| part.suffix() == suffix)
    }
}

/// The site of one entry of a failpoint hit: `fp/<node>/<point>#<hit>` and its companions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FailpointSite {
    /// The node that hit the point (`writer-1`).
    pub node: String,
    /// The failpoint's name (`engine.publish.before_commit`).
    pub point: String,
    /// The node's hit number of this point, from 1 (counted across its restarts).
    pub hit: u64,
    /// Which entry of the hit.
    pub part: Part,
}

impl FailpointSite {
    /// The decision site of hit `hit` of `point` on `node`.
    pub fn decision(node: &str, point: &str, hit: u64) -> Self {
        FailpointSite {
            node: node.to_owned(),
            point: point.to_owned(),
            hit,
            part: Part::Decision,
        }
    }

    /// This hit's `part` entry.
    pub fn with_part(&self, part: Part) -> Self {
        FailpointSite {
            part,
            ..self.clone()
        }
    }

    /// The same entry of hit `hit`.
    pub fn at_hit(&self, hit: u64) -> Self {
        FailpointSite {
            hit,
            ..self.clone()
        }
    }

    /// The same entry on node `node`.
    pub fn on_node(&self, node: &str) -> Self {
        FailpointSite {
            node: node.to_owned(),
            ..self.clone()
        }
    }

    /// Parses a failpoint site, or `None` if `site` is not one.
    pub fn parse(site: &str) -> Option<Self> {
        let (node, rest) = site.strip_prefix("fp/")?.split_once('/')?;
        let (point, hit_and_part) = rest.rsplit_once('#')?;
        let digits = hit_and_part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(hit_and_part.len());
        let hit = hit_and_part[..digits].parse().ok()?;
        let part = Part::parse(&hit_and_part[digits..])?;
        (!node.is_empty() && !point.is_empty()).then(|| FailpointSite {
            node: node.to_owned(),
            point: point.to_owned(),
            hit,
            part,
        })
    }

    /// Whether `site` is any failpoint site (of any node, point or part).
    pub fn is_failpoint(site: &str) -> bool {
        site.starts_with("fp/")
    }
}

impl fmt::Display for FailpointSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fp/{}/{}#{}{}",
            self.node,
            self.point,
            self.hit,
            self.part.suffix()
        )
    }
}

/// The site of one chunk a power loss may keep: `power/<image><file>@<chunk>` (`file`
/// relative to the store, starting with `/`).
pub fn power_chunk(image: u32, file: &str, chunk: usize) -> String {
    format!("power/{image}{file}@{chunk}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failpoint_sites_round_trip_with_every_part() {
        for text in [
            "fp/writer-1/engine.publish.before_commit#2",
            "fp/w/p#13:ms",
            "fp/migrator/engine.migrate.step#1:scope",
        ] {
            let site = FailpointSite::parse(text).unwrap();
            assert_eq!(site.to_string(), text);
        }
        let site = FailpointSite::parse("fp/w/p#3:ms").unwrap();
        assert_eq!((site.node.as_str(), site.point.as_str()), ("w", "p"));
        assert_eq!((site.hit, site.part), (3, Part::SleepMs));
        assert_eq!(site.at_hit(2).to_string(), "fp/w/p#2:ms");
        assert_eq!(
            site.on_node("v").with_part(Part::Decision).to_string(),
            "fp/v/p#3"
        );
    }

    #[test]
    fn other_sites_are_not_failpoint_sites() {
        for text in [
            "op/2/3/batch",
            "power/1/manifest.db@0",
            "fp/w/p",
            "fp/w/p#x",
            "fp/w/p#3:other",
            "fp//p#1",
        ] {
            assert_eq!(FailpointSite::parse(text), None, "{text}");
        }
        assert_eq!(
            power_chunk(2, "/tables/a.db-wal", 5),
            "power/2/tables/a.db-wal@5"
        );
    }
}
