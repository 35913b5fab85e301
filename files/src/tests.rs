use std::sync::Arc;

use super::*;

#[test]
fn the_real_file_system_meets_the_specification() {
    let dir = tempfile::tempdir().unwrap();
    conformance::check(&Real, dir.path());
}

/// A file system that refuses everything, to see which one a path is routed to.
struct Refusing;

impl FileSystem for Refusing {
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(io::Error::other("refused"))
    }
    fn write_synced(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("refused"))
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(io::Error::other("refused"))
    }
    fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
        Err(io::Error::other("refused"))
    }
    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(io::Error::other("refused"))
    }
    fn list(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
        Err(io::Error::other("refused"))
    }
    fn exists(&self, _: &Path) -> bool {
        false
    }
    fn try_lock(&self, _: &Path, _: bool) -> io::Result<Lock> {
        Err(io::Error::other("refused"))
    }
}

#[test]
fn paths_under_a_mount_go_to_it_until_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (inside, outside) = (dir.path().join("mounted"), dir.path().join("other"));
    let mounted = mount(&inside, Arc::new(Refusing));
    assert!(
        create_dir_all(&inside.join("x")).is_err(),
        "served by the mount"
    );
    create_dir_all(&outside).expect("served by the real file system");
    drop(mounted);
    create_dir_all(&inside.join("x")).expect("real again after unmounting");
}
