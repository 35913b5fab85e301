//! The SQLite VFS glue: C entry points that serve files under a mount from memory and hand
//! every other file to SQLite's `unix` VFS.
//!
//! A handle on an in-memory file is a [`Handle`]: SQLite's `sqlite3_file` header followed by
//! a pointer to the handle's state. The VFS declares an `szOsFile` large enough for either
//! this or a `unix` file, so that `xOpen` can pass a path outside every mount straight to
//! the `unix` VFS, whose own method table then serves that file.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use libsqlite3_sys as ffi;

use super::locks::{self, level, ShmHeld};
use super::{registry, MemFile};

/// The name the VFS registers under.
pub const NAME: &CStr = c"faultline-mem";

/// Power-safe overwrite, as the unix VFS reports by default.
const DEVICE_CHARACTERISTICS: c_int = ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE;
const SECTOR_SIZE: c_int = 4096;
const MAX_PATH: c_int = 512;

struct Vfs(*mut ffi::sqlite3_vfs);
// SAFETY: the pointers are to SQLite's static `unix` VFS and to our leaked VFS, both
// immutable after registration; SQLite's own calls on them are thread-safe.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

fn unix() -> *mut ffi::sqlite3_vfs {
    static UNIX: OnceLock<Vfs> = OnceLock::new();
    UNIX.get_or_init(|| {
        // SAFETY: looking up a built-in VFS by name; initialises SQLite if needed.
        let found = unsafe { ffi::sqlite3_vfs_find(c"unix".as_ptr()) };
        assert!(!found.is_null(), "SQLite has no unix VFS");
        Vfs(found)
    })
    .0
}

/// Registers the VFS as SQLite's default, once per process.
pub fn register() {
    static REGISTERED: OnceLock<Vfs> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        let unix = unix();
        // SAFETY: `unix` is SQLite's static VFS; reading its fields is fine.
        let (unix_size, unix_version) = unsafe { ((*unix).szOsFile, (*unix).iVersion) };
        let size = unix_size.max(std::mem::size_of::<Handle>() as c_int);
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            iVersion: unix_version.min(2),
            szOsFile: size,
            mxPathname: MAX_PATH,
            pNext: ptr::null_mut(),
            zName: NAME.as_ptr(),
            pAppData: ptr::null_mut(),
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: Some(x_dl_open),
            xDlError: Some(x_dl_error),
            xDlSym: Some(x_dl_sym),
            xDlClose: Some(x_dl_close),
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: the VFS is leaked, so it outlives every connection.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 1) };
        assert_eq!(rc, ffi::SQLITE_OK, "register the in-memory VFS");
        Vfs(vfs)
    });
}

/// `sqlite3_file` for an in-memory file.
#[repr(C)]
struct Handle {
    base: ffi::sqlite3_file,
    state: *mut HandleState,
}

struct HandleState {
    id: u64,
    path: String,
    file: Arc<MemFile>,
    lock: i32,
    shm: ShmHeld,
    shm_mapped: bool,
    delete_on_close: bool,
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The path SQLite passed, if any and if it is valid UTF-8 under a mount.
///
/// # Safety
/// `name` is null or a NUL-terminated string.
unsafe fn mounted_path(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    let path = CStr::from_ptr(name).to_str().ok()?;
    registry().is_mounted(path).then(|| path.to_owned())
}

/// # Safety
/// `file` was opened by [`x_open`] as an in-memory file.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut HandleState {
    &mut *(*(file as *mut Handle)).state
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(path) = mounted_path(name) else {
        let unix = unix();
        return ((*unix).xOpen.expect("unix xOpen"))(unix, name, file, flags, out_flags);
    };
    let _ = vfs;
    let opened = open_file(&path, flags);
    let Ok(memory) = opened else {
        (*file).pMethods = ptr::null();
        return opened.err().unwrap_or(ffi::SQLITE_CANTOPEN);
    };
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let state = Box::new(HandleState {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        path,
        file: memory,
        lock: level::NONE,
        shm: ShmHeld::default(),
        shm_mapped: false,
        delete_on_close: flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0,
    });
    let handle = file as *mut Handle;
    (*handle).base.pMethods = &METHODS;
    (*handle).state = Box::into_raw(state);
    OPEN_HANDLES.fetch_add(1, Ordering::Relaxed);
    if !out_flags.is_null() {
        *out_flags = flags;
    }
    ffi::SQLITE_OK
}

/// Finds or creates the file at `path` as SQLite's open flags ask.
fn open_file(path: &str, flags: c_int) -> Result<Arc<MemFile>, c_int> {
    let mut registry = registry();
    if let Some(file) = registry.files.get(path) {
        if flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0 {
            return Err(ffi::SQLITE_CANTOPEN);
        }
        return Ok(file.clone());
    }
    if flags & ffi::SQLITE_OPEN_CREATE == 0 || !registry.parent_exists(path) {
        return Err(ffi::SQLITE_CANTOPEN);
    }
    let file = Arc::new(MemFile::default());
    registry.files.insert(path.to_owned(), file.clone());
    Ok(file)
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let Some(path) = mounted_path(name) else {
        let unix = unix();
        return ((*unix).xDelete.expect("unix xDelete"))(unix, name, sync_dir);
    };
    let _ = vfs;
    match registry().files.remove(&path) {
        Some(_) => ffi::SQLITE_OK,
        None => ffi::SQLITE_IOERR_DELETE_NOENT,
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let Some(path) = mounted_path(name) else {
        let unix = unix();
        return ((*unix).xAccess.expect("unix xAccess"))(unix, name, flags, out);
    };
    let _ = vfs;
    *out = c_int::from(registry().files.contains_key(&path));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    size: c_int,
    out: *mut c_char,
) -> c_int {
    let Some(path) = mounted_path(name) else {
        let unix = unix();
        return ((*unix).xFullPathname.expect("unix xFullPathname"))(unix, name, size, out);
    };
    let _ = vfs;
    let bytes = path.as_bytes();
    if bytes.len() + 1 > size as usize {
        return ffi::SQLITE_CANTOPEN;
    }
    ptr::copy_nonoverlapping(bytes.as_ptr(), out as *mut u8, bytes.len());
    *out.add(bytes.len()) = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_dl_open(_: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let unix = unix();
    ((*unix).xDlOpen.expect("unix xDlOpen"))(unix, name)
}

unsafe extern "C" fn x_dl_error(_: *mut ffi::sqlite3_vfs, size: c_int, out: *mut c_char) {
    let unix = unix();
    ((*unix).xDlError.expect("unix xDlError"))(unix, size, out)
}

unsafe extern "C" fn x_dl_sym(
    _: *mut ffi::sqlite3_vfs,
    library: *mut c_void,
    symbol: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    let unix = unix();
    ((*unix).xDlSym.expect("unix xDlSym"))(unix, library, symbol)
}

unsafe extern "C" fn x_dl_close(_: *mut ffi::sqlite3_vfs, library: *mut c_void) {
    let unix = unix();
    ((*unix).xDlClose.expect("unix xDlClose"))(unix, library)
}

unsafe extern "C" fn x_randomness(
    _: *mut ffi::sqlite3_vfs,
    size: c_int,
    out: *mut c_char,
) -> c_int {
    let unix = unix();
    ((*unix).xRandomness.expect("unix xRandomness"))(unix, size, out)
}

unsafe extern "C" fn x_sleep(_: *mut ffi::sqlite3_vfs, microseconds: c_int) -> c_int {
    let unix = unix();
    ((*unix).xSleep.expect("unix xSleep"))(unix, microseconds)
}

unsafe extern "C" fn x_current_time(_: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let unix = unix();
    ((*unix).xCurrentTime.expect("unix xCurrentTime"))(unix, out)
}

unsafe extern "C" fn x_get_last_error(
    _: *mut ffi::sqlite3_vfs,
    size: c_int,
    out: *mut c_char,
) -> c_int {
    let unix = unix();
    ((*unix).xGetLastError.expect("unix xGetLastError"))(unix, size, out)
}

unsafe extern "C" fn x_current_time_int64(
    _: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let unix = unix();
    match (*unix).xCurrentTimeInt64 {
        Some(current) => current(unix, out),
        None => ffi::SQLITE_ERROR,
    }
}

/// In-memory file handles SQLite holds open in this process (see [`open_handles`]).
static OPEN_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// How many in-memory files SQLite has open in this process: 0 once every run's connections
/// are closed, whatever the runs did.
pub fn open_handles() -> usize {
    OPEN_HANDLES.load(Ordering::Relaxed)
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    OPEN_HANDLES.fetch_sub(1, Ordering::Relaxed);
    let handle = file as *mut Handle;
    let state = Box::from_raw((*handle).state);
    (*handle).state = ptr::null_mut();
    {
        let mut shared = state.file.state();
        shared.lock.unlock(state.id, state.lock, level::NONE);
        let mut held = state.shm;
        shared.shm.locks.unlock(&mut held, 0xff);
        if state.shm_mapped {
            release_shm(&mut shared.shm);
        }
    }
    if state.delete_on_close {
        let mut registry = registry();
        if registry
            .files
            .get(&state.path)
            .is_some_and(|f| Arc::ptr_eq(f, &state.file))
        {
            registry.files.remove(&state.path);
        }
    }
    ffi::SQLITE_OK
}

fn release_shm(shm: &mut super::Shm) {
    shm.users -= 1;
    if shm.users == 0 {
        shm.regions.clear();
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let state = state(file);
    let shared = state.file.state();
    let out = std::slice::from_raw_parts_mut(buffer as *mut u8, amount as usize);
    crate::iotime::read(out.len());
    let bytes = shared.content.bytes();
    let start = (offset as usize).min(bytes.len());
    let available = (bytes.len() - start).min(out.len());
    out[..available].copy_from_slice(&bytes[start..start + available]);
    if available < out.len() {
        out[available..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let state = state(file);
    let mut shared = state.file.state();
    let data = std::slice::from_raw_parts(buffer as *const u8, amount as usize);
    crate::iotime::write(data.len());
    shared.content.write(offset as usize, data);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    state(file).file.state().content.resize(size as usize);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, _: c_int) -> c_int {
    state(file).file.state().content.sync();
    crate::iotime::sync();
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    *size = state(file).file.state().content.len() as ffi::sqlite3_int64;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, wanted: c_int) -> c_int {
    let state = state(file);
    let (now, result) = state.file.state().lock.lock(state.id, state.lock, wanted);
    state.lock = now;
    match result {
        Ok(()) => ffi::SQLITE_OK,
        Err(locks::Busy) => ffi::SQLITE_BUSY,
    }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, wanted: c_int) -> c_int {
    let state = state(file);
    state.lock = state.file.state().lock.unlock(state.id, state.lock, wanted);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    *out = c_int::from(state(file).file.state().lock.reserved());
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(_: *mut ffi::sqlite3_file, _: c_int, _: *mut c_void) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_: *mut ffi::sqlite3_file) -> c_int {
    SECTOR_SIZE
}

unsafe extern "C" fn x_device_characteristics(_: *mut ffi::sqlite3_file) -> c_int {
    DEVICE_CHARACTERISTICS
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let state = state(file);
    let mut shared = state.file.state();
    if !state.shm_mapped {
        state.shm_mapped = true;
        shared.shm.users += 1;
    }
    let region = region as usize;
    let regions = &mut shared.shm.regions;
    if regions.len() <= region {
        if extend == 0 {
            *out = ptr::null_mut();
            return ffi::SQLITE_OK;
        }
        regions.resize_with(region + 1, || vec![0u8; size as usize].into_boxed_slice());
    }
    *out = regions[region].as_mut_ptr() as *mut c_void;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    count: c_int,
    flags: c_int,
) -> c_int {
    let state = state(file);
    let mask = (((1u32 << count) - 1) << offset) as u8;
    let mut shared = state.file.state();
    let locks = &mut shared.shm.locks;
    let result = if flags & ffi::SQLITE_SHM_UNLOCK != 0 {
        locks.unlock(&mut state.shm, mask);
        Ok(())
    } else if flags & ffi::SQLITE_SHM_SHARED != 0 {
        locks.lock_shared(state.id, &mut state.shm, mask)
    } else {
        locks.lock_exclusive(state.id, &mut state.shm, mask)
    };
    match result {
        Ok(()) => ffi::SQLITE_OK,
        Err(locks::Busy) => ffi::SQLITE_BUSY,
    }
}

unsafe extern "C" fn x_shm_barrier(_: *mut ffi::sqlite3_file) {
    std::sync::atomic::fence(Ordering::SeqCst);
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, _delete: c_int) -> c_int {
    let state = state(file);
    let mut shared = state.file.state();
    shared.shm.locks.unlock(&mut state.shm, 0xff);
    if state.shm_mapped {
        state.shm_mapped = false;
        release_shm(&mut shared.shm);
    }
    ffi::SQLITE_OK
}
