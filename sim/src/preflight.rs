//! Checks of the environment before the first run: a directory the harness must write to
//! (scratch, reports) exists or can be made, takes a file, and has some free space. A
//! problem found here is a fault of the environment, reported before any run so that it is
//! never mistaken for a failure of the engine.

use std::path::Path;

use crate::outcome::{environment, Result};

/// The free space a directory the harness writes to must have, in KiB.
pub const REQUIRED_FREE_KIB: u64 = 16 * 1024;

/// Checks that `dir` (set by `variable`) exists or can be made, is writable and has at least
/// [`REQUIRED_FREE_KIB`] free.
pub fn check_dir(dir: &Path, variable: &str) -> Result<()> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|e| {
        environment(format!(
            "{variable}: cannot make the directory {shown}: {e} (set {variable} to a writable directory)"
        ))
    })?;
    if !dir.is_dir() {
        return Err(environment(format!(
            "{variable}: {shown} is not a directory (set {variable} to a writable directory)"
        )));
    }
    let probe = dir.join(format!(".faultline-probe-{}", std::process::id()));
    let written = std::fs::write(&probe, b"probe");
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        environment(format!(
            "{variable}: cannot write in {shown}: {e} (set {variable} to a writable directory)"
        ))
    })?;
    match free_kib(dir) {
        Some(free) if free < REQUIRED_FREE_KIB => Err(environment(format!(
            "{variable}: {shown} has only {free} KiB free, {REQUIRED_FREE_KIB} KiB are needed"
        ))),
        _ => Ok(()),
    }
}

/// The space free to an unprivileged writer on the filesystem holding `dir`, in KiB, when
/// the platform can tell.
pub fn free_kib(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs fills the zeroed struct it is given; `path` is NUL-terminated.
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
            return None;
        }
        Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64) / 1024)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_a_file_in_the_way_does_not() {
        let base = std::env::temp_dir().join(format!("faultline-preflight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        check_dir(&base.join("made/on/demand"), "FAULTLINE_REPORTS").unwrap();
        std::fs::write(base.join("file"), b"").unwrap();
        let error = check_dir(&base.join("file"), "FAULTLINE_SCRATCH").unwrap_err();
        assert!(format!("{error}").contains("FAULTLINE_SCRATCH"), "{error}");
        let error = check_dir(&base.join("file/below"), "FAULTLINE_REPORTS").unwrap_err();
        assert!(
            format!("{error}").contains("cannot make the directory"),
            "{error}"
        );
        assert!(free_kib(&base).unwrap() > 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
