//! SQLite as a scenario's own code uses it under the simulator. The simulator registers its
//! in-memory VFS as SQLite's default when a run mounts its disk ([`crate::memdisk`]), so a
//! connection opened on a path under `World::store_dir` is simulated with no
//! call of its own; what is left to a scenario is seeding SQLite's PRNG once per run.

/// Seeds SQLite's process-wide PRNG (`SQLITE_TESTCTRL_PRNG_SEED`) from the run's seed, so
/// that anything SQLite randomises (WAL salts, temporary names, `random()`) is the same in a
/// replay. Call it first thing in a scenario's `run`, with `World::seed`. The same folding of the seed as the engine's
/// `faultline::sql::seed_prng`.
pub fn seed_prng(seed: u64) {
    const SQLITE_TESTCTRL_PRNG_SEED: std::os::raw::c_int = 28;
    let folded = (seed ^ (seed >> 32)) as std::os::raw::c_int;
    // SAFETY: PRNG_SEED takes an int and a null database pointer; it only touches the PRNG.
    unsafe {
        libsqlite3_sys::sqlite3_test_control(
            SQLITE_TESTCTRL_PRNG_SEED,
            folded,
            std::ptr::null_mut::<libsqlite3_sys::sqlite3>(),
        );
    }
}
