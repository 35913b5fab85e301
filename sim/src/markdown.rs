//! The Markdown summary of sweeps (`--summary FILE`, and appended to `$GITHUB_STEP_SUMMARY`
//! when CI sets it): one table row per scenario, then a section per failure signature with
//! its count, first seeds and the line that reproduces it.

use std::fmt::Write;

use crate::summary::Summary;

/// The Markdown for `summaries`.
pub fn render(summaries: &[Summary]) -> String {
    let mut out = String::from("## Faultline\n\n");
    out.push_str(
        "| scenario | seeds | runs | failed runs | signatures | regressions | verdict |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let seeds = match s.seeds {
            crate::summary::SeedsAsked::Range { first, end } => format!("{first}..{end}"),
            crate::summary::SeedsAsked::Budget { first, seconds } => {
                format!("{first}.. for {seconds:.0}s")
            }
        };
        let regressions_failed = s.regressions.iter().filter(|r| r.failed()).count();
        let verdict = if s.failed() {
            "**FAILED**"
        } else if s.interrupted {
            "interrupted"
        } else {
            "passed"
        };
        let _ = writeln!(
            out,
            "| {} | {seeds} | {} | {} | {} | {} of {} fail | {verdict} |",
            s.scenario,
            s.runs,
            s.failures,
            s.distinct_signatures,
            regressions_failed,
            s.regressions.len()
        );
    }
    for s in summaries {
        for r in s.regressions.iter().filter(|r| r.failed()) {
            let _ = writeln!(
                out,
                "\n### {}: regression `{}` still fails\n\n{}: {}\n\n```\n{}\n```",
                s.scenario,
                r.tape,
                r.signature,
                r.message.as_deref().unwrap_or(""),
                crate::report::replay_trace_command(std::path::Path::new(&r.tape))
            );
        }
        for g in &s.groups {
            let _ = writeln!(
                out,
                "\n### {}: `{}` in {} runs\n\n{}\n\nseeds {}",
                s.scenario,
                g.signature,
                g.count,
                g.message,
                g.first_seeds()
            );
            if let Some(shrunk) = &g.shrunk {
                let _ = writeln!(
                    out,
                    "\nshrunk {} -> {} choices ({})",
                    shrunk.original_choices,
                    shrunk.choices,
                    if shrunk.one_minimal {
                        "1-minimal"
                    } else {
                        "not proven 1-minimal"
                    }
                );
            }
            if !g.likely_same_as.is_empty() {
                let _ = writeln!(
                    out,
                    "\nlikely the same cause as {}",
                    g.likely_same_as.join(", ")
                );
            }
            let _ = writeln!(out, "\n```\n{}\n```", g.replay);
        }
        if !s.coverage_gaps.is_empty() {
            let _ = writeln!(out, "\n### {}: never reached\n", s.scenario);
            for gap in &s.coverage_gaps {
                let _ = writeln!(out, "- {gap}");
            }
        }
    }
    out
}
