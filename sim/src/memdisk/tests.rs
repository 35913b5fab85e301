//! The simulated disk against real SQLite: WAL mode across handles, lock contention, crash
//! images, unmounting.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use faultline_files::Lock;

use super::MemDisk;
use crate::crash::Disk;

/// A fresh mounted directory with a `store/` directory in it (in memory).
fn scratch(name: &str) -> (PathBuf, MemDisk) {
    let dir = std::env::temp_dir().join(format!("faultline-memdisk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = MemDisk::mount(&dir);
    faultline_files::create_dir_all(&dir.join("store")).unwrap();
    (dir, disk)
}

fn open(path: &std::path::Path) -> Connection {
    let connection = Connection::open(path).unwrap();
    connection.busy_timeout(Duration::ZERO).unwrap();
    connection
}

fn count(connection: &Connection) -> i64 {
    connection
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn wal_database_is_shared_between_handles_and_never_touches_the_real_directory() {
    let (dir, disk) = scratch("wal");
    let db = dir.join("store/data.db");
    let writer = open(&db);
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    writer
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let reader = open(&db);
    assert_eq!(count(&reader), 2);
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM t;")
        .unwrap();
    writer.execute_batch("INSERT INTO t VALUES (3)").unwrap();
    assert_eq!(count(&reader), 2, "a read transaction keeps its snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader), 3);
    let files: Vec<_> = MemDisk::files_under(&dir)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        files,
        vec![dir.join("store/data.db"), dir.join("store/data.db-wal")]
    );
    let real: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(real.is_empty(), "nothing on the real file system: {real:?}");
    drop((writer, reader, disk));
    assert!(
        MemDisk::files_under(&dir).is_empty(),
        "unmounting forgets the files"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_second_writer_gets_busy_until_the_first_commits() {
    let (dir, _disk) = scratch("busy");
    let db = dir.join("store/data.db");
    let first = open(&db);
    first
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x);")
        .unwrap();
    let second = open(&db);
    first.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = second.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(refused.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    first
        .execute_batch("INSERT INTO t VALUES (1); COMMIT")
        .unwrap();
    second
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT")
        .unwrap();
    assert_eq!(count(&first), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn crash_image_keeps_committed_wal_frames_and_drops_the_open_transaction() {
    let (dir, disk) = scratch("image");
    let live = dir.join("store");
    faultline_files::create_dir_all(&live.join("pending")).unwrap();
    faultline_files::write_synced(&live.join("pending/sidecar.json"), b"{}").unwrap();
    let Ok(Lock::Taken(_owner)) = faultline_files::try_lock(&live.join("owner.lock"), true) else {
        panic!("lock");
    };
    let connection = open(&live.join("data.db"));
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);
             BEGIN; INSERT INTO t VALUES (2);",
        )
        .unwrap();
    let image = dir.join("image-1");
    disk.capture(&live, &image).unwrap();
    connection.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&connection), 2);
    assert_eq!(
        faultline_files::read(&image.join("pending/sidecar.json")).unwrap(),
        b"{}"
    );
    assert!(
        matches!(
            faultline_files::try_lock(&image.join("owner.lock"), false),
            Ok(Lock::Taken(_))
        ),
        "an image keeps the lock file but not its lock: its holder died in the crash"
    );
    let reopened = open(&image.join("data.db"));
    assert_eq!(count(&reopened), 1, "only what committed before the crash");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn files_outside_every_mount_stay_real() {
    let dir =
        std::env::temp_dir().join(format!("faultline-memdisk-outside-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _disk = MemDisk::mount(&dir.join("elsewhere"));
    let db = dir.join("real.db");
    let connection = open(&db);
    connection.execute_batch("CREATE TABLE t(x)").unwrap();
    assert!(db.is_file());
    assert!(MemDisk::files_under(&dir).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn opening_in_a_missing_directory_fails_as_on_a_real_disk() {
    let (dir, _disk) = scratch("missing");
    let refused = Connection::open(dir.join("no-such-dir/data.db")).unwrap_err();
    assert_eq!(refused.sqlite_error_code(), Some(ErrorCode::CannotOpen));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plain_files_on_the_simulated_disk_meet_the_file_seam_specification() {
    let (dir, _disk) = scratch("conformance");
    faultline_files::conformance::check(&super::plain::PlainFiles, &dir.join("store"));
    let real: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(real.is_empty(), "nothing on the real file system: {real:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_power_loss_keeps_synced_commits_and_loses_unsynced_ones() {
    let (dir, disk) = scratch("power");
    let live = dir.join("store");
    let synced = open(&live.join("full.db"));
    synced
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE t(x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
    let unsynced = open(&live.join("normal.db"));
    unsynced
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t(x);
             PRAGMA synchronous = NORMAL; INSERT INTO t VALUES (1);",
        )
        .unwrap();
    faultline_files::write_synced(&live.join("sidecar.json"), b"{}").unwrap();
    let Ok(Lock::Taken(_owner)) = faultline_files::try_lock(&live.join("owner.lock"), true) else {
        panic!("lock");
    };
    let image = dir.join("image-1");
    let mut asked = Vec::new();
    let mut lose_everything = |file: &str, chunk: usize| {
        asked.push(format!("{file}@{chunk}"));
        false
    };
    disk.capture_after_power_loss(&live, &image, &mut lose_everything)
        .unwrap();
    assert!(
        asked.iter().any(|a| a.starts_with("/normal.db-wal@")),
        "the unsynced WAL commit is a choice: {asked:?}"
    );
    assert!(
        !asked.iter().any(|a| a.starts_with("/full.db")),
        "nothing of full.db is unsynced: {asked:?}"
    );
    assert_eq!(
        count(&open(&image.join("full.db"))),
        1,
        "a synced commit survives"
    );
    assert_eq!(
        count(&open(&image.join("normal.db"))),
        0,
        "a WAL commit under synchronous=NORMAL is not synced and is lost"
    );
    assert!(faultline_files::exists(&image.join("sidecar.json")));
    assert!(
        !faultline_files::exists(&image.join("owner.lock")),
        "a file never synced is gone"
    );
    let kept = dir.join("image-2");
    disk.capture_after_power_loss(&live, &kept, &mut |_, _| true)
        .unwrap();
    assert_eq!(
        count(&open(&kept.join("normal.db"))),
        1,
        "a power loss that happens to keep every unsynced chunk keeps the unsynced commit"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
