//! Memory allocation in the simulator process: glibc's allocator told to keep the memory a
//! simulated run frees, SQLite's allocation statistics turned off, and SQLite's own memory
//! served from size-class free lists ([`crate::sqlite_memory`]).
//!
//! Every run lives on a fresh OS thread (see [`crate::runner`]), allocates a few megabytes in
//! small pieces (SQLite's page caches, schemas and statements; the simulated disk's files)
//! and frees them when it ends. With glibc's defaults that memory goes back to the system
//! and the next run faults it in again. Keeping it measured about 1.05 times the runs per
//! second on one core (see `docs/performance.md`). SQLite's statistics (`MEMSTATUS`) take a
//! process-wide mutex on every allocation, for counters nothing here reads: off, another 1.05
//! times (also the compile-time default since `.cargo/config.toml` builds SQLite with
//! `SQLITE_DEFAULT_MEMSTATUS=0`; kept for a SQLite built without it). Nothing here reaches a
//! trace: allocation addresses are never recorded.

use std::os::raw::c_int;

/// Applies the three settings; called once at the start of the command line, before any SQLite
/// connection is opened.
pub fn tune() {
    keep_freed_memory();
    sqlite_without_statistics();
    crate::sqlite_memory::install();
}

/// Keeps freed memory: no trimming below 1 GiB, no `mmap` per allocation below 32 MiB, and
/// 64 MiB of slack each time the heap grows. Does nothing on platforms without glibc.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any run starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Turns SQLite's memory statistics off. SQLite accepts this only before it initialises;
/// later (a connection already opened) it refuses and the statistics stay on, which is
/// slower and otherwise the same.
fn sqlite_without_statistics() {
    // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; sqlite3_config refuses (SQLITE_MISUSE)
    // rather than misbehaves once SQLite is initialised.
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
    }
}
