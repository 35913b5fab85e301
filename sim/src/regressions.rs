//! Regression files, as proptest keeps them: a checked-in directory of shrunk tapes, one
//! subdirectory per scenario (`regressions/<scenario>/*.tape.json`), each tape carrying a
//! one-line story. `run` replays a scenario's tapes before its sweep and stops on one that
//! still fails; a new shrunk failure is added there; `regress` replays a directory expecting
//! every tape to pass. Loading and saving only: the replays are the session's.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::outcome::{bad_input, environment, Result};
use crate::tape::Tape;

/// The regression directory when neither `--regressions` nor `FAULTLINE_REGRESSIONS` says.
pub const DEFAULT_DIR: &str = "regressions";

/// One scenario's subdirectory of `root`.
pub fn scenario_dir(root: &Path, scenario: &str) -> PathBuf {
    root.join(scenario)
}

/// Every `*.tape.json` under `path` (a directory, searched recursively, or one tape file),
/// parsed and sorted by path. A missing path is an empty list; a tape that does not parse is
/// bad input naming the file.
pub fn load(path: &Path) -> Result<Vec<(PathBuf, Tape)>> {
    let mut files = Vec::new();
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if path.is_dir() {
        collect(path, &mut files).map_err(|e| {
            environment(format!(
                "cannot read the regression directory {}: {e}",
                path.display()
            ))
        })?;
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = fs::read_to_string(&file).map_err(|e| {
                environment(format!(
                    "cannot read regression tape {}: {e}",
                    file.display()
                ))
            })?;
            let tape = Tape::parse(&text)
                .map_err(|e| bad_input(format!("regression tape {}: {e}", file.display())))?;
            Ok((file, tape))
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.to_string_lossy().ends_with(".tape.json") {
            files.push(path);
        }
    }
    Ok(())
}

/// The one-line story of a tape: its own, or what its expected outcome says.
pub fn story(tape: &Tape) -> String {
    tape.story.clone().unwrap_or_else(|| match &tape.expected {
        Some(expected) => format!("seed {} once failed with {}", tape.seed, expected.signature),
        None => format!("seed {}", tape.seed),
    })
}

/// Adds `tape` with `story` to `root/<scenario>/`, named after its signature and choices;
/// returns the new file, or `None` when a tape making the same choices is there already.
/// Never overwrites.
pub fn save(root: &Path, tape: &Tape, signature: &str, story: &str) -> Result<Option<PathBuf>> {
    let dir = scenario_dir(root, &tape.scenario);
    let fail = |e: io::Error| {
        environment(format!(
            "cannot add a regression tape under {} (--regressions or FAULTLINE_REGRESSIONS): {e}",
            dir.display()
        ))
    };
    fs::create_dir_all(&dir).map_err(fail)?;
    let choices = tape.choices();
    if load(&dir)?
        .iter()
        .any(|(_, old)| old.seed == tape.seed && old.choices() == choices)
    {
        return Ok(None);
    }
    let slug: String = signature
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut saved = tape.clone();
    saved.story = Some(story.to_owned());
    for attempt in 1u32.. {
        let name = match attempt {
            1 => format!("{slug}-seed-{}.tape.json", tape.seed),
            n => format!("{slug}-seed-{}-{n}.tape.json", tape.seed),
        };
        let path = dir.join(name);
        match crate::report::write_new(&path, &saved.to_json()) {
            Ok(()) => return Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    unreachable!("some attempt number is free")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::Entry;

    #[test]
    fn saved_tapes_load_back_with_their_story_and_a_repeat_is_not_added() {
        let root = std::env::temp_dir().join(format!("faultline-regress-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mut tape = Tape::new("concurrent-writers", 7);
        tape.entries.push(Entry {
            site: "fp/a".to_owned(),
            value: 2,
        });
        let path = save(&root, &tape, "invariant:no-lost-write", "lost a write")
            .unwrap()
            .expect("added");
        assert!(path.ends_with("concurrent-writers/invariant-no-lost-write-seed-7.tape.json"));
        assert_eq!(
            save(&root, &tape, "invariant:no-lost-write", "again").unwrap(),
            None
        );
        let loaded = load(&root).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(story(&loaded[0].1), "lost a write");
        assert!(load(&root.join("missing")).unwrap().is_empty());
        fs::write(root.join("concurrent-writers/bad.tape.json"), "{").unwrap();
        let error = load(&root).unwrap_err().to_string();
        assert!(error.contains("bad.tape.json"), "{error}");
        fs::remove_dir_all(&root).unwrap();
    }
}
