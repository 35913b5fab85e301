//! HTML reports for people: one self-contained page per shrunk failure (`report.html`: the
//! original and the shrunk run side by side as swimlanes per node over simulated time, with
//! workload operations, failpoint decisions, preemptions, crashes, restarts and the
//! violation; the tapes' choices; the full timelines) and an index per sweep. Inline CSS and
//! SVG only: nothing is fetched, so a page opens from a CI artifact as it is.

use std::fmt::Write;

use crate::summary::Summary;
use crate::tape::Tape;
use crate::trace::{Event, Trace};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
.runs{display:grid;grid-template-columns:1fr 1fr;gap:24px}\
.run{min-width:0}svg{border:1px solid #ddd;background:#fcfcfc;width:100%;height:auto}\
table{border-collapse:collapse;font:12px monospace}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}\
.violation{color:#b00;font-weight:bold}.legend span{margin-right:14px}\
pre{font:12px monospace;background:#f6f6f6;padding:8px;overflow-x:auto;max-height:420px}\
code{background:#f2f2f2;padding:1px 4px}";

/// What one marker on a swimlane is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Violation,
    Crash,
    Restart,
    Decision,
    Preempt,
    Operation,
}

impl Mark {
    fn of(event: &Event) -> Mark {
        match event.kind.as_str() {
            "violation" => Mark::Violation,
            "crash" => Mark::Crash,
            "restart" => Mark::Restart,
            "preempt" => Mark::Preempt,
            kind if kind == "fp" || kind.starts_with("net.") || kind.starts_with("fault") => {
                Mark::Decision
            }
            _ => Mark::Operation,
        }
    }

    fn color(self) -> &'static str {
        match self {
            Mark::Violation => "#c00",
            Mark::Crash => "#e0442a",
            Mark::Restart => "#2a9d3a",
            Mark::Decision => "#e08a00",
            Mark::Preempt => "#999",
            Mark::Operation => "#3a6fd0",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mark::Violation => "violation",
            Mark::Crash => "crash",
            Mark::Restart => "restart",
            Mark::Decision => "failpoint or fault decision",
            Mark::Preempt => "preemption",
            Mark::Operation => "workload operation",
        }
    }

    const ALL: [Mark; 6] = [
        Mark::Operation,
        Mark::Decision,
        Mark::Preempt,
        Mark::Crash,
        Mark::Restart,
        Mark::Violation,
    ];
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The swimlanes of one run: a lane per node (in order of first appearance), x the
/// simulated time, a marker per event with its details as a tooltip.
pub fn swimlanes(trace: &Trace) -> String {
    let mut nodes: Vec<&str> = Vec::new();
    for event in &trace.events {
        if !nodes.contains(&event.node.as_str()) {
            nodes.push(&event.node);
        }
    }
    let (left, width, lane) = (110.0, 640.0, 26.0);
    let end_ns = trace
        .events
        .iter()
        .map(|e| e.time_ns)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let height = 30.0 + lane * nodes.len() as f64;
    let x = |ns: u64| left + width * ns as f64 / end_ns;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {} {height}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">",
        left + width + 20.0
    );
    for (i, node) in nodes.iter().enumerate() {
        let y = 20.0 + lane * i as f64 + lane / 2.0;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\" class=\"lane\">{}</text>\
             <line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ccc\"/>",
            y + 4.0,
            escape(node),
            left + width
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"12\" font-size=\"10\" fill=\"#666\">0 ms</text>\
         <text x=\"{:.1}\" y=\"12\" font-size=\"10\" fill=\"#666\" text-anchor=\"end\">{:.3} ms</text>",
        left + width,
        end_ns / 1e6
    );
    for event in &trace.events {
        let lane_index = nodes.iter().position(|n| *n == event.node).unwrap_or(0);
        let y = 20.0 + lane * lane_index as f64 + lane / 2.0;
        let cx = x(event.time_ns);
        let mark = Mark::of(event);
        let title = format!(
            "{:.3}ms {} {}: {}",
            event.time_ns as f64 / 1e6,
            event.node,
            event.kind,
            event.detail
        );
        let _ = write!(
            svg,
            "<g class=\"ev {}\"><title>{}</title>",
            event.kind.replace('.', "-"),
            escape(&title)
        );
        match mark {
            Mark::Violation => {
                let _ = write!(
                    svg,
                    "<line x1=\"{cx:.1}\" y1=\"16\" x2=\"{cx:.1}\" y2=\"{height:.1}\" stroke=\"{}\" stroke-width=\"2\"/>\
                     <circle cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"{}\"/>",
                    mark.color(),
                    mark.color()
                );
            }
            Mark::Crash => {
                let _ = write!(
                    svg,
                    "<path d=\"M{:.1} {:.1}l10 10m0 -10l-10 10\" stroke=\"{}\" stroke-width=\"2.5\"/>",
                    cx - 5.0,
                    y - 5.0,
                    mark.color()
                );
            }
            Mark::Restart => {
                let _ = write!(
                    svg,
                    "<path d=\"M{:.1} {:.1}l10 6l-10 6z\" fill=\"{}\"/>",
                    cx - 4.0,
                    y - 6.0,
                    mark.color()
                );
            }
            Mark::Decision => {
                let _ = write!(
                    svg,
                    "<path d=\"M{cx:.1} {:.1}l5 6l-5 6l-5 -6z\" fill=\"{}\"/>",
                    y - 6.0,
                    mark.color()
                );
            }
            Mark::Preempt => {
                let _ = write!(
                    svg,
                    "<line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"/>",
                    y - 7.0,
                    y + 7.0,
                    mark.color()
                );
            }
            Mark::Operation => {
                let _ = write!(
                    svg,
                    "<circle cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{}\"/>",
                    mark.color()
                );
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn legend() -> String {
    let mut out = String::from("<p class=\"legend\">");
    for mark in Mark::ALL {
        let _ = write!(
            out,
            "<span><span style=\"color:{}\">&#9679;</span> {}</span>",
            mark.color(),
            mark.name()
        );
    }
    out.push_str("(hover a marker for its details)</p>");
    out
}

fn choices_table(tape: &Tape) -> String {
    let choices = tape.choices();
    if choices.is_empty() {
        return "<p>No decision away from the default: the plain seed fails.</p>".to_owned();
    }
    let mut out = String::from("<table><tr><th>site</th><th>value</th></tr>");
    for entry in choices {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&entry.site),
            entry.value
        );
    }
    out.push_str("</table>");
    out
}

fn run_column(heading: &str, tape: &Tape, trace: &Trace) -> String {
    format!(
        "<div class=\"run\"><h2>{}</h2><p>{} events, {} decisions away from the default</p>{}\
         <h3>Choices</h3>{}<h3>Timeline</h3><pre>{}</pre></div>",
        escape(heading),
        trace.events.len(),
        tape.choices().len(),
        swimlanes(trace),
        choices_table(tape),
        escape(&trace.timeline())
    )
}

/// The page of one failure: the shrunk run beside the original.
pub struct FailurePage<'a> {
    /// The scenario.
    pub scenario: &'a str,
    /// The seed.
    pub seed: u64,
    /// `kind:invariant`.
    pub signature: &'a str,
    /// What was seen.
    pub message: &'a str,
    /// The original run.
    pub original: (&'a Tape, &'a Trace),
    /// The shrunk run.
    pub shrunk: (&'a Tape, &'a Trace),
    /// The command that replays the shrunk run.
    pub replay: &'a str,
}

impl FailurePage<'_> {
    /// The self-contained HTML.
    pub fn render(&self) -> String {
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{scenario} seed {seed}: {signature}</title>\
             <style>{STYLE}</style></head><body>\
             <h1>{scenario}, seed {seed}: <span class=\"violation\">{signature}</span></h1>\
             <p class=\"violation\" id=\"message\">{message}</p>\
             <p>Reproduce: <code>{replay}</code></p>{legend}\
             <div class=\"runs\">{shrunk}{original}</div></body></html>",
            scenario = escape(self.scenario),
            seed = self.seed,
            signature = escape(self.signature),
            message = escape(self.message),
            replay = escape(self.replay),
            legend = legend(),
            shrunk = run_column("Shrunk run", self.shrunk.0, self.shrunk.1),
            original = run_column("Original run", self.original.0, self.original.1),
        )
    }
}

/// The index of sweeps: a table per scenario, a row per signature with its count, first
/// seeds, reproduce line and a link to its failure page (`link` turns a report directory
/// into the href of its `report.html`, or `None` when it has none).
pub fn index(summaries: &[Summary], link: &dyn Fn(&str) -> Option<String>) -> String {
    let mut body = String::new();
    for s in summaries {
        let _ = write!(
            body,
            "<h2>{}</h2><p>{} runs, {} failed in {} signatures, strategy {}, {:.1}s</p>",
            escape(&s.scenario),
            s.runs,
            s.failures,
            s.distinct_signatures,
            escape(&s.strategy),
            s.seconds
        );
        let failing: Vec<_> = s.regressions.iter().filter(|r| r.failed()).collect();
        for r in failing {
            let _ = write!(
                body,
                "<p class=\"violation\">regression {} still fails: {}</p>",
                escape(&r.tape),
                escape(&r.signature)
            );
        }
        if s.groups.is_empty() {
            body.push_str("<p>No failures.</p>");
            continue;
        }
        body.push_str(
            "<table><tr><th>signature</th><th>runs</th><th>first seeds</th><th>first message</th><th>report</th><th>reproduce</th></tr>",
        );
        for g in &s.groups {
            let page = s
                .violations
                .iter()
                .find(|v| v.signature == g.signature && v.shrunk.is_some())
                .and_then(|v| v.report_dir.as_deref())
                .and_then(link);
            let _ = write!(
                body,
                "<tr><td class=\"violation\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                escape(&g.signature),
                g.count,
                g.first_seeds(),
                escape(&g.message),
                page.map_or_else(
                    || "-".to_owned(),
                    |href| format!("<a href=\"{}\">shrunk run</a>", escape(&href))
                ),
                escape(&g.replay)
            );
        }
        body.push_str("</table>");
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Faultline sweep</title>\
         <style>{STYLE}</style></head><body><h1>Faultline sweep</h1>{body}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_page_escapes_its_text_and_draws_every_node_and_the_violation() {
        let mut trace = Trace::default();
        for (t, node, kind) in [
            (0, "supervisor", "plan"),
            (1_000_000, "writer-<1>", "fp"),
            (2_000_000, "writer-<1>", "crash"),
            (3_000_000, "supervisor", "violation"),
        ] {
            trace.push(Event {
                time_ns: t,
                node: node.to_owned(),
                kind: kind.to_owned(),
                detail: "a & b".to_owned(),
            });
        }
        let tape = Tape::new("s", 3);
        let page = FailurePage {
            scenario: "s",
            seed: 3,
            signature: "invariant:x",
            message: "<lost>",
            original: (&tape, &trace),
            shrunk: (&tape, &trace),
            replay: "cargo sim replay --trace t --timeline",
        }
        .render();
        assert!(page.contains("writer-&lt;1&gt;") && !page.contains("writer-<1>"));
        assert!(page.contains("&lt;lost&gt;") && page.contains("a &amp; b"));
        assert_eq!(page.matches("class=\"ev violation\"").count(), 2);
        assert!(
            !page.contains("http://") || page.matches("http://").count() == 2,
            "only the SVG namespace"
        );
    }
}
