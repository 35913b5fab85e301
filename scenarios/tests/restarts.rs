//! A run ends only when its nodes are done, restarted ones included: a writer that had
//! finished its appends and then restarted (after a store crash or a power loss) checks
//! durable-ack on the store it reopened, and the run waits for that check instead of ending
//! under it.
#![cfg(madsim)]

mod common;

use std::collections::BTreeMap;

use faultline_sim::tape::Source;

#[test]
fn every_restarted_writer_is_done_before_the_checks() {
    let mut restarted_after_done = 0;
    for seed in 0..80 {
        let outcome = common::run("concurrent-writers", seed, Source::Seed);
        assert!(
            outcome.failure.is_none(),
            "seed {seed}: {:?}",
            outcome.failure
        );
        // Whether each writer is done, as the trace tells it.
        let mut done: BTreeMap<&str, bool> = BTreeMap::new();
        for event in &outcome.trace.events {
            let node = event.node.as_str();
            match event.kind.as_str() {
                "restart" if node.starts_with("writer-") => {
                    let was_done = done.insert(node, false) == Some(true);
                    restarted_after_done += usize::from(was_done);
                }
                "writer.done" => {
                    done.insert(node, true);
                }
                "checked" => {
                    for (writer, finished) in &done {
                        assert!(finished, "seed {seed}: {writer} was not done at the checks");
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        restarted_after_done > 0,
        "no seed restarted a writer that had finished: the test checks nothing"
    );
}
