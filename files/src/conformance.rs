//! One behaviour specification for every [`FileSystem`]: the real one and the simulator's
//! in-memory one must both pass it, so that the engine's crash-safety arguments hold on
//! either. Each check panics with what differed.

use std::io::ErrorKind;
use std::path::Path;

use crate::{FileSystem, Lock};

/// Runs every check in `dir` (an empty directory served by `fs`).
pub fn check(fs: &dyn FileSystem, dir: &Path) {
    directories_and_listing(fs, dir);
    write_rename_read_remove(fs, dir);
    locks(fs, dir);
}

fn directories_and_listing(fs: &dyn FileSystem, dir: &Path) {
    let sub = dir.join("a/b");
    fs.create_dir_all(&sub).expect("create_dir_all");
    fs.create_dir_all(&sub)
        .expect("create_dir_all of an existing directory");
    assert!(fs.exists(&sub), "a created directory exists");
    assert_eq!(
        fs.list(&dir.join("missing")).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "listing a missing directory"
    );
    fs.write_synced(&sub.join("z"), b"1").expect("write z");
    fs.write_synced(&sub.join("y"), b"2").expect("write y");
    fs.create_dir_all(&sub.join("x")).expect("create x");
    let listed = fs.list(&sub).expect("list");
    assert_eq!(
        listed,
        vec![sub.join("x"), sub.join("y"), sub.join("z")],
        "entries directly inside, sorted"
    );
    assert_eq!(fs.list(&dir.join("a")).expect("list a"), vec![sub.clone()]);
    assert!(
        fs.write_synced(&dir.join("no/such/dir/f"), b"").is_err(),
        "writing into a missing directory fails"
    );
}

fn write_rename_read_remove(fs: &dyn FileSystem, dir: &Path) {
    let (temporary, target) = (dir.join("f.tmp"), dir.join("f"));
    fs.write_synced(&temporary, b"first").expect("write");
    fs.write_synced(&temporary, b"2nd")
        .expect("rewrite truncates");
    assert_eq!(fs.read(&temporary).expect("read"), b"2nd");
    fs.write_synced(&target, b"old").expect("write target");
    fs.rename(&temporary, &target).expect("rename replaces");
    assert!(
        !fs.exists(&temporary),
        "a renamed file is gone from its old name"
    );
    assert_eq!(fs.read(&target).expect("read target"), b"2nd");
    fs.remove_file(&target).expect("remove");
    assert!(!fs.exists(&target));
    assert_eq!(
        fs.remove_file(&target).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "removing a missing file"
    );
    assert_eq!(
        fs.read(&target).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "reading a missing file"
    );
}

fn locks(fs: &dyn FileSystem, dir: &Path) {
    let path = dir.join("owner.lock");
    assert!(matches!(fs.try_lock(&path, false), Ok(Lock::Missing)));
    let Ok(Lock::Taken(held)) = fs.try_lock(&path, true) else {
        panic!("a new lock file can be locked");
    };
    assert!(fs.exists(&path), "try_lock with create makes the file");
    assert!(held.is_named_by(&path));
    assert!(
        matches!(fs.try_lock(&path, true), Ok(Lock::Busy)),
        "a held lock excludes every other holder, even in the same process"
    );
    fs.remove_file(&path).expect("remove a locked file");
    assert!(
        !held.is_named_by(&path),
        "the path no longer names the locked file"
    );
    let Ok(Lock::Taken(second)) = fs.try_lock(&path, true) else {
        panic!("a new file at the same path is a new lock");
    };
    assert!(second.is_named_by(&path) && !held.is_named_by(&path));
    drop(second);
    drop(held);
    let Ok(Lock::Taken(_again)) = fs.try_lock(&path, false) else {
        panic!("dropping the guard releases the lock");
    };
}
