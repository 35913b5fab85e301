//! `cargo test` under the simulator (`--cfg madsim`): 200 seeds of the inventory scenario
//! pass; with the planted bug the check panics with the failing seed and its replay line.
#![cfg(madsim)]

use inventory::scenario::InventoryScenario;

#[cfg(not(feature = "planted-bug"))]
#[test]
fn two_hundred_seeds_pass() {
    let checked = faultline_sim::check(InventoryScenario, 0..200);
    assert_eq!(checked.runs, 200);
}

#[cfg(feature = "planted-bug")]
#[test]
#[should_panic(expected = "reproduce: cargo sim replay --scenario inventory --seed ")]
fn the_planted_lost_update_is_found() {
    faultline_sim::check(InventoryScenario, 0..200);
}
