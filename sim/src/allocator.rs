//! glibc's allocator, told to keep the memory a simulated run frees.
//!
//! Every run lives on a fresh OS thread (see [`crate::runner`]), allocates a few megabytes in
//! small pieces (SQLite's page caches, schemas and statements; the simulated disk's files)
//! and frees them when it ends. With glibc's defaults that memory goes back to the system
//! and the next run faults it in again. Keeping it measured about 1.05 times the runs per
//! second on one core (see `docs/performance.md`). Nothing here reaches a trace: allocation
//! addresses are never recorded.

/// Keeps freed memory: no trimming below 1 GiB, no `mmap` per allocation below 32 MiB, and
/// 64 MiB of slack each time the heap grows. Does nothing on platforms without glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any run starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
