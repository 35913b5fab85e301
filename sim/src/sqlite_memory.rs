//! SQLite's memory in the simulator process: size-class free lists in front of `malloc`.
//!
//! A simulated run opens twenty-odd connections, each allocating its schema, statements and
//! page cache in thousands of small pieces, and frees them all when the run ends. Under
//! glibc most of these went through its slow paths (`_int_malloc`, `malloc_consolidate`):
//! about a tenth of a run's CPU. Here every SQLite allocation is rounded up to one of a few
//! power-of-two sizes and a freed block goes onto its size's free list for the next
//! request of that size, so that steady state never reaches `malloc` at all. The lists are
//! per thread (no lock); a thread's lists outlive it as spares for the next thread. Memory
//! is never handed back: the process keeps its peak, a few megabytes per run in flight.
//!
//! Installed through `SQLITE_CONFIG_MALLOC`, which SQLite accepts only before it
//! initialises; SQL semantics are untouched (SQLite sees a `malloc` that rounds up, which
//! `xRoundup` and `xSize` tell it). Addresses never reach a trace.

use std::cell::RefCell;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::Mutex;

use libsqlite3_sys as ffi;

/// Bytes in front of every block: its size class, padded to keep 16-byte alignment.
const HEADER: usize = 16;
/// The smallest block (header included): 64 bytes.
const MIN_SHIFT: u32 = 6;
/// Size classes 64 B .. 64 KiB; larger blocks go straight to `malloc` and back to `free`.
const CLASSES: usize = 11;
/// The class tag of a block too large for any class.
const LARGE: usize = usize::MAX;

/// Installs the allocator; returns SQLite's result code (`SQLITE_MISUSE` once SQLite has
/// initialised, and then SQLite keeps its default allocator).
pub fn install() -> c_int {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: ptr::null_mut(),
    };
    // SAFETY: SQLite copies the methods struct; the functions are valid for the process.
    unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) }
}

/// The class that holds `bytes` of payload, or `None` if it is too large.
fn class_of(bytes: usize) -> Option<usize> {
    let total = (bytes + HEADER).max(1 << MIN_SHIFT);
    let class = (total.next_power_of_two().trailing_zeros() - MIN_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

/// Payload bytes a block of `class` holds.
fn capacity(class: usize) -> usize {
    (1usize << (class as u32 + MIN_SHIFT)) - HEADER
}

/// Free lists, one per size class: the head of each (0 when empty); a free block's first
/// word links to the next.
#[derive(Default)]
struct Lists([usize; CLASSES]);

/// Each thread frees onto and allocates from its own lists, with no lock. A run lives on
/// one thread, so its blocks come back to that thread; when the thread ends, its lists go
/// to [`SPARE`] for the next thread to take whole.
struct Local(RefCell<Lists>);

impl Drop for Local {
    fn drop(&mut self) {
        let lists = std::mem::take(&mut *self.0.borrow_mut());
        let mut spare = spare();
        for (class, head) in lists.0.into_iter().enumerate() {
            if head != 0 {
                spare[class].push(head);
            }
        }
    }
}

thread_local! {
    static LOCAL: Local = const { Local(RefCell::new(Lists([0; CLASSES]))) };
}

/// Whole free lists left by threads that ended (or freed while their thread ended), by class.
static SPARE: Mutex<[Vec<usize>; CLASSES]> = Mutex::new([const { Vec::new() }; CLASSES]);

fn spare() -> std::sync::MutexGuard<'static, [Vec<usize>; CLASSES]> {
    SPARE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a block of `class`: from this thread's list, else a spare list, else `malloc`.
fn take(class: usize) -> *mut u8 {
    let local = LOCAL.try_with(|local| {
        let mut lists = local.0.borrow_mut();
        if lists.0[class] == 0 {
            lists.0[class] = spare()[class].pop().unwrap_or(0);
        }
        let head = lists.0[class];
        if head != 0 {
            // SAFETY: a listed block is ours and free; its first word is the next link.
            lists.0[class] = unsafe { *(head as *const usize) };
        }
        head
    });
    match local {
        Ok(head) if head != 0 => head as *mut u8,
        // SAFETY: plain malloc of the class size; null is handled by the caller.
        _ => unsafe { libc::malloc(1 << (class as u32 + MIN_SHIFT)) as *mut u8 },
    }
}

/// Puts a block (header address) on this thread's list for its class (a spare list of
/// one block once the thread's lists are gone).
fn give(block: *mut u8, class: usize) {
    let pushed = LOCAL.try_with(|local| {
        let mut lists = local.0.borrow_mut();
        // SAFETY: the block is at least 64 bytes and no longer used by SQLite.
        unsafe { *(block as *mut usize) = lists.0[class] };
        lists.0[class] = block as usize;
    });
    if pushed.is_err() {
        // SAFETY: as above; a list of one block.
        unsafe { *(block as *mut usize) = 0 };
        spare()[class].push(block as usize);
    }
}

unsafe extern "C" fn x_malloc(bytes: c_int) -> *mut c_void {
    let bytes = bytes.max(0) as usize;
    let (block, tag) = match class_of(bytes) {
        Some(class) => (take(class), class),
        None => (libc::malloc(bytes + HEADER) as *mut u8, LARGE),
    };
    if block.is_null() {
        return ptr::null_mut();
    }
    *(block as *mut usize) = tag;
    *(block.add(8) as *mut usize) = bytes;
    block.add(HEADER) as *mut c_void
}

unsafe extern "C" fn x_free(payload: *mut c_void) {
    if payload.is_null() {
        return;
    }
    let block = (payload as *mut u8).sub(HEADER);
    match *(block as *const usize) {
        LARGE => libc::free(block as *mut c_void),
        class => give(block, class),
    }
}

unsafe extern "C" fn x_size(payload: *mut c_void) -> c_int {
    if payload.is_null() {
        return 0;
    }
    let block = (payload as *mut u8).sub(HEADER);
    match *(block as *const usize) {
        LARGE => *(block.add(8) as *const usize) as c_int,
        class => capacity(class) as c_int,
    }
}

unsafe extern "C" fn x_realloc(payload: *mut c_void, bytes: c_int) -> *mut c_void {
    let old = x_size(payload) as usize;
    if bytes.max(0) as usize <= old && *((payload as *mut u8).sub(HEADER) as *const usize) != LARGE
    {
        return payload;
    }
    let moved = x_malloc(bytes);
    if !moved.is_null() {
        ptr::copy_nonoverlapping(
            payload as *const u8,
            moved as *mut u8,
            old.min(bytes as usize),
        );
        x_free(payload);
    }
    moved
}

unsafe extern "C" fn x_roundup(bytes: c_int) -> c_int {
    match class_of(bytes.max(0) as usize) {
        Some(class) => capacity(class) as c_int,
        None => bytes,
    }
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_fits_its_class_and_classes_grow_by_powers_of_two() {
        for bytes in [0, 1, 47, 48, 49, 100, 4096, 4097, 65_520] {
            let class = class_of(bytes).expect("small enough for a class");
            assert!(capacity(class) >= bytes, "{bytes} in class {class}");
            assert!(
                class == 0 || capacity(class - 1) < bytes,
                "{bytes} not in the smallest class"
            );
        }
        assert_eq!(class_of(65_521), None);
    }

    #[test]
    fn freed_blocks_are_reused_and_keep_their_contents_apart() {
        // SAFETY: the methods are called as SQLite would, on blocks they returned.
        unsafe {
            let a = x_malloc(100) as *mut u8;
            let b = x_malloc(100) as *mut u8;
            assert_ne!(a, b);
            a.write_bytes(0xaa, 100);
            b.write_bytes(0xbb, 100);
            assert_eq!(*a.add(99), 0xaa);
            assert!(x_size(a as *mut c_void) >= 100);
            let grown = x_realloc(a as *mut c_void, 5000) as *mut u8;
            assert_eq!(*grown.add(99), 0xaa);
            assert!(x_size(grown as *mut c_void) >= 5000);
            let big = x_malloc(1 << 20);
            assert_eq!(x_size(big), 1 << 20);
            x_free(big);
            x_free(grown as *mut c_void);
            x_free(b as *mut c_void);
            assert_eq!(
                x_malloc(90) as *mut u8,
                b,
                "the last block freed in a class is reused first"
            );
        }
    }
}
