//! Every failure we can provoke gives an error naming the file and the cause
//! in plain words, and never a panic or a half-applied change set.

mod common;

use bytes::Bytes;
use common::{log_rows, normalize};
use rusqlite::{Connection, TransactionBehavior};
use sds::store::*;
use sds_sqlite::{Options, SqliteStore};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn assert_names(err: &StoreError, path: &Path, words: &str) {
    let msg = &err.0;
    eprintln!("{msg}");
    assert!(
        msg.contains(&path.display().to_string()),
        "no path in: {msg}"
    );
    assert!(msg.contains(words), "expected {words:?} in: {msg}");
}

#[test]
fn missing_directory_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("s.db");
    let err = SqliteStore::open(&path).unwrap_err();
    assert_names(&err, &path, "cannot be opened");
    // A directory is not a database file either.
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert_names(&err, dir.path(), "cannot be opened");
}

#[test]
fn garbage_file_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i * 31 + 7) as u8).collect();
    std::fs::write(&path, junk).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert_names(&err, &path, "not an SQLite database");
    // The file was not touched.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10_000);
}

#[test]
fn corrupt_pages_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    {
        let mut s = SqliteStore::open(&path).unwrap();
        for i in 0..20 {
            s.apply(&log_rows("c", i * 50, 50, 300)).unwrap();
        }
    } // closing the last connection checkpoints the WAL into the file
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 8 * 4096, "{len}");
    // Keep page 1 (header and schema), overwrite everything after it.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    let junk: Vec<u8> = (0..len - 4096).map(|i| (i * 131 + 17) as u8).collect();
    f.write_all(&junk).unwrap();
    drop(f);
    let err = match SqliteStore::open(&path) {
        Err(e) => e,
        Ok(mut s) => s.load().unwrap_err(),
    };
    assert_names(&err, &path, "the database file is corrupt");
}

#[test]
fn read_only_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    SqliteStore::open(&path)
        .unwrap()
        .apply(&log_rows("c", 0, 3, 10))
        .unwrap();
    let ro = Options {
        read_only: true,
        ..Options::default()
    };
    let mut s = SqliteStore::open_with(&path, &ro).unwrap();
    assert_eq!(s.load().unwrap()[0].log.len(), 3); // reading works
    let err = s.apply(&log_rows("c", 3, 1, 10)).unwrap_err();
    assert_names(&err, &path, "read-only");
    assert!(err.0.contains("cannot apply a change set"), "{err}");
    let err = s.drop_channel("c").unwrap_err();
    assert_names(&err, &path, "read-only");
    assert!(err.0.contains("cannot drop channel \"c\""), "{err}");
    assert_eq!(s.load().unwrap()[0].log.len(), 3);
    // Read-only opening never creates a file.
    let missing = dir.path().join("missing.db");
    let err = SqliteStore::open_with(&missing, &ro).unwrap_err();
    assert_names(&err, &missing, "cannot be opened");
    assert!(!missing.exists());
}

/// With file permissions (only meaningful when we are not root: root writes anyway).
#[test]
fn read_only_file_refuses_writes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perm.db");
    SqliteStore::open(&path)
        .unwrap()
        .apply(&log_rows("c", 0, 3, 10))
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("running with privileges that ignore file modes; skipped");
        return;
    }
    let err = match SqliteStore::open(&path) {
        Err(e) => e,
        Ok(mut s) => s.apply(&log_rows("c", 3, 1, 10)).unwrap_err(),
    };
    assert_names(&err, &path, "read-only");
}

#[test]
fn locked_database_is_reported_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    // Change sets are appended to the append file and folded into the
    // database every `journal_fold_rows`: with 1, every write after the
    // first folds (and needs the database's write lock) first, on the
    // caller's thread (see `busy_background_fold_is_reported_and_retried`
    // for folds on the store's thread).
    let opts = Options {
        busy_timeout_ms: 0,
        journal_fold_rows: 1,
        background_fold: false,
        ..Options::default()
    };
    let mut s = SqliteStore::open_with(&path, &opts).unwrap();
    s.apply(&log_rows("c", 0, 3, 10)).unwrap();

    let mut other = Connection::open(&path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .unwrap();
    tx.execute("DELETE FROM log", []).unwrap();

    let err = s.apply(&log_rows("c", 3, 1, 10)).unwrap_err();
    assert_names(
        &err,
        &path,
        "locked by another connection or process (busy)",
    );
    let err = s.drop_channel("c").unwrap_err();
    assert_names(&err, &path, "busy");
    // Readers are not blocked in WAL mode and see the last committed state.
    assert_eq!(s.load().unwrap()[0].log.len(), 3);
    // A second store on the same file (here in the same process) is refused
    // at once: `s` holds the writer's lock on the append file.
    let err = SqliteStore::open_with(&path, &opts).unwrap_err();
    assert_names(&err, &path, "locked: another process");
    assert!(err.0.contains("busy.db-sds-journal"), "{err}");

    tx.rollback().unwrap();
    // Once the lock is gone, the same store writes again.
    s.apply(&log_rows("c", 3, 1, 10)).unwrap();
    assert_eq!(s.load().unwrap()[0].log.len(), 4);
}

#[test]
fn a_new_file_locked_during_migration_is_reported_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new-busy.db");
    let mut other = Connection::open(&path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .unwrap();
    let opts = Options {
        busy_timeout_ms: 0,
        ..Options::default()
    };
    let err = SqliteStore::open_with(&path, &opts).unwrap_err();
    assert_names(&err, &path, "busy");
    tx.rollback().unwrap();
    SqliteStore::open_with(&path, &opts).unwrap();
}

#[test]
fn full_database_is_reported_and_the_change_set_is_not_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    // Folding after every change set: the database fills up in a fold,
    // which the next write runs before appending its change set.
    let opts = Options {
        max_size_bytes: Some(256 * 1024),
        journal_fold_rows: 1,
        ..Options::default()
    };
    let mut s = SqliteStore::open_with(&path, &opts).unwrap();
    let mut mem = MemoryStore::new();
    let mut err = None;
    for i in 0..200 {
        // Several rows per change set: a failure can happen in the middle.
        let cs = log_rows("c", i * 8, 8, 700);
        match s.apply(&cs) {
            Ok(()) => mem.apply(&cs).unwrap(),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("256 KiB must fill up");
    assert_names(&err, &path, "full");
    // Everything committed before is there, nothing of the failed change set.
    assert_eq!(normalize(s.load().unwrap()), normalize(mem.load().unwrap()));
    // Deleting still works (frees pages), and then writing works again.
    s.drop_channel("c").unwrap();
    s.apply(&log_rows("c", 0, 8, 700)).unwrap();
    drop(s);
    // Without the limit the file takes more again.
    let mut s = SqliteStore::open(&path).unwrap();
    s.apply(&log_rows("c", 8, 400, 700)).unwrap();
    assert_eq!(s.load().unwrap()[0].log.len(), 408);
}

#[test]
fn corrupt_row_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.db");
    let cs = ChangeSet {
        channels: vec![ChannelChanges {
            channel: "c".into(),
            meta: Some(common::meta(1)),
            outgoing_upserts: vec![OutgoingRecord {
                id: "m".into(),
                seq: 0,
                message: Bytes::from_static(b"x"),
                attempts: 0,
                last_sent: 0,
                resend_at: 0,
                ackers: vec!["p".into()],
            }],
            ..Default::default()
        }],
    };
    SqliteStore::open(&path).unwrap().apply(&cs).unwrap();
    let edits = [
        (
            "UPDATE outgoing SET ackers = x'05ff'",
            "column ackers is not a list of ids",
        ),
        (
            "UPDATE outgoing SET attempts = -1",
            "column attempts is out of range",
        ),
        ("UPDATE channel SET dialect = 7", "unknown dialect 7"),
        (
            "UPDATE channel SET lamport = NULL",
            "settings are partly missing",
        ),
        (
            "UPDATE outgoing SET seq = 'text'",
            "a value this store did not write",
        ),
    ];
    for (sql, words) in edits {
        let copy = dir.path().join("copy.db");
        let _ = std::fs::remove_file(&copy);
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("VACUUM INTO '{}'", copy.display()))
            .unwrap();
        Connection::open(&copy).unwrap().execute_batch(sql).unwrap();
        let err = SqliteStore::open(&copy).unwrap().load().unwrap_err();
        assert_names(&err, &copy, words);
    }
}

/// A fold that fails on the store's thread (another connection holds the
/// database's write lock) is reported by a later write, which writes
/// nothing, or by `flush`; everything acknowledged stays loadable, the
/// writes after it retry the fold, and once the lock is gone nothing is
/// lost.
#[test]
fn busy_background_fold_is_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bg-busy.db");
    let opts = Options {
        busy_timeout_ms: 0,
        journal_fold_rows: 2,
        ..Options::default()
    };
    let mut s = SqliteStore::open_with(&path, &opts).unwrap();
    let mut mem = MemoryStore::new();
    let mut next = 0;
    let mut write = |s: &mut SqliteStore, mem: &mut MemoryStore| {
        let cs = log_rows("c", next, 2, 10);
        let res = s.apply(&cs);
        if res.is_ok() {
            mem.apply(&cs).unwrap();
            next += 2;
        }
        res
    };
    for _ in 0..2 {
        write(&mut s, &mut mem).unwrap();
    }
    let mut other = Connection::open(&path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .unwrap();
    tx.execute("DELETE FROM log", []).unwrap();

    // The first file is full: this write hands it to the folder and is
    // appended to the second file.
    write(&mut s, &mut mem).unwrap();
    // `flush` waits for the fold and reports its failure.
    let err = s.flush().unwrap_err();
    assert_names(&err, &path, "busy");
    assert!(err.0.contains("in the background"), "{err}");
    // The next write retries the fold on its own thread, fails, and writes nothing.
    let err = write(&mut s, &mut mem).unwrap_err();
    assert_names(&err, &path, "busy");
    assert_eq!(normalize(s.load().unwrap()), normalize(mem.load().unwrap()));

    // Without `flush`: after a successful retry, fill the second file
    // again while the lock is held; a write reports the failure (the
    // one that finds the fold ended, at the latest the one that waits).
    tx.rollback().unwrap();
    write(&mut s, &mut mem).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .unwrap();
    tx.execute("DELETE FROM log", []).unwrap();
    // (While a fold is in flight the active file takes up to 4 times
    // `journal_fold_rows` records: 8 here.)
    let mut reported = None;
    for _ in 0..12 {
        if let Err(e) = write(&mut s, &mut mem) {
            reported = Some(e);
            break;
        }
    }
    let err = reported.expect("the failed fold is reported");
    assert_names(&err, &path, "busy");
    assert_eq!(normalize(s.load().unwrap()), normalize(mem.load().unwrap()));

    // Once the lock is gone, writing works again and nothing was lost.
    tx.rollback().unwrap();
    for _ in 0..5 {
        write(&mut s, &mut mem).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(normalize(s.load().unwrap()), normalize(mem.load().unwrap()));
    drop(s);
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, next as i64);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(normalize(s.load().unwrap()), normalize(mem.load().unwrap()));
}
