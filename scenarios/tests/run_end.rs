//! A run leaves nothing behind in the process: every SQLite connection its nodes opened is
//! closed when it ends, even a node still running when the scenario returned. (madsim drops
//! no pending task when its runtime goes; a long sweep used to pile up such connections.)
//! One test in its own file: the count of open in-memory files is process-wide.
#![cfg(madsim)]

mod common;

use faultline_sim::memdisk::MemDisk;
use faultline_sim::tape::Source;

#[test]
fn every_connection_a_run_opened_is_closed_when_it_ends() {
    // Seed 48 of concurrent-writers ends with two restarted writers still re-reading, which
    // leaked three connections before runs ended their nodes.
    for (name, seeds) in [("concurrent-writers", 40..60), ("schema-apply", 0..20)] {
        for seed in seeds {
            common::run(name, seed, Source::Seed);
            let open = MemDisk::open_handles();
            assert_eq!(
                open, 0,
                "{name} seed {seed} left {open} in-memory files open"
            );
        }
    }
}
