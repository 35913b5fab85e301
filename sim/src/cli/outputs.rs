//! What `run`, `regress` and `merge` print and write alike: the grouped text summary, the
//! JUnit file, the Markdown summary (and `$GITHUB_STEP_SUMMARY`).

use std::io::Write;
use std::path::Path;

use super::args::ReportFiles;
use crate::outcome::{environment, Result};
use crate::summary::Summary;

/// Writes `--junit`, `--summary` and `--html` (each replaced if it exists: the user named
/// it), and appends the Markdown to `$GITHUB_STEP_SUMMARY` when CI sets it.
pub fn write(summaries: &[Summary], files: &ReportFiles, html: Option<&Path>) -> Result<()> {
    let (junit, markdown) = (files.junit.as_deref(), files.summary.as_deref());
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        environment(format!("cannot write the {what} {}: {e}", path.display()))
    };
    for path in [junit, markdown, html].into_iter().flatten() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| fail("directory of", parent, e))?;
        }
    }
    if let Some(path) = junit {
        std::fs::write(path, crate::junit::render(summaries))
            .map_err(|e| fail("JUnit file (--junit)", path, e))?;
    }
    if let Some(path) = html {
        let page = crate::html::index(summaries, &|dir: &str| {
            let page = Path::new(dir).join("report.html");
            page.exists().then(|| page.display().to_string())
        });
        std::fs::write(path, page).map_err(|e| fail("HTML index (--html)", path, e))?;
    }
    let text = crate::markdown::render(summaries);
    if let Some(path) = markdown {
        std::fs::write(path, &text).map_err(|e| fail("summary (--summary)", path, e))?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let path = Path::new(&path);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()))
            .map_err(|e| fail("job summary ($GITHUB_STEP_SUMMARY)", path, e))?;
    }
    Ok(())
}

/// The text summary: a line for the sweep, the regressions, then a section per signature
/// (count, first seeds, first message, shrink, one reproduce line).
pub fn print_text(summary: &Summary) {
    println!(
        "scenario {}: {} runs, {} failed in {} signatures, {:.0} runs/s over {:.1}s with {} jobs{}",
        summary.scenario,
        summary.runs,
        summary.failures,
        summary.distinct_signatures,
        summary.runs_per_sec,
        summary.seconds,
        summary.jobs,
        if summary.stopped_early {
            " (stopped early: --fail-fast or --max-failures)"
        } else {
            ""
        }
    );
    let failed: Vec<_> = summary.regressions.iter().filter(|r| r.failed()).collect();
    if !summary.regressions.is_empty() {
        println!(
            "regressions: {} replayed, {} still fail",
            summary.regressions.len(),
            failed.len()
        );
    }
    for r in failed {
        println!("  regression {}: {}", r.tape, r.signature);
        println!("    {}", r.story);
        println!(
            "    reproduce: {}",
            crate::report::replay_trace_command(Path::new(&r.tape))
        );
    }
    for group in &summary.groups {
        println!(
            "{}: {} runs (seeds {})",
            group.signature,
            group.count,
            group.first_seeds()
        );
        println!("  first: {}", group.message);
        if let Some(shrunk) = &group.shrunk {
            println!(
                "  shrunk {} -> {} choices ({})",
                shrunk.original_choices,
                shrunk.choices,
                if shrunk.one_minimal {
                    "1-minimal"
                } else {
                    "not proven 1-minimal"
                }
            );
            if let Some(path) = &shrunk.regression {
                println!("  added to the regressions: {path}");
            }
        }
        if !group.likely_same_as.is_empty() {
            println!(
                "  likely the same cause as {} (their shrunk tapes make the same choices)",
                group.likely_same_as.join(", ")
            );
        }
        println!("  reproduce: {}", group.replay);
    }
    if let Some(hunt) = &summary.hunt {
        let verdict = if hunt.found { "found" } else { "NOT found" };
        println!("hunt for /{}/: {verdict}", hunt.pattern);
    }
    if let Some(hashes) = &summary.trace_hashes {
        for entry in hashes {
            println!("  trace seed {} {}", entry.seed, entry.hash);
        }
    }
}
