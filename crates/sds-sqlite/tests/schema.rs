//! Schema versions and migrations.

mod common;

use rusqlite::Connection;
use sds::store::Store;
use sds_sqlite::{schema, Options, SqliteStore};

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn fresh_file_gets_version_1_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(schema::LATEST, 1);
    assert_eq!(s.schema_version().unwrap(), 1);
    drop(s);
    assert_eq!(user_version(&path), 1);
    let c = Connection::open(&path).unwrap();
    let mode: String = c
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let app: i64 = c
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(app, 0x5344_5331);
    let mut tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "channel",
            "incoming",
            "log",
            "outgoing",
            "remembered",
            "repair_in",
            "repair_out"
        ]
    );
}

#[test]
fn reopening_keeps_version_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    SqliteStore::open(&path)
        .unwrap()
        .apply(&common::log_rows("c", 0, 5, 10))
        .unwrap();
    for _ in 0..3 {
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 1);
        assert_eq!(s.load().unwrap()[0].log.len(), 5);
    }
}

#[test]
fn empty_sqlite_file_of_version_0_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v0.db");
    // An SQLite database with nothing in it (e.g. created by a tool).
    Connection::open(&path)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    assert_eq!(user_version(&path), 0);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 1);
    assert!(s.load().unwrap().is_empty());
}

#[test]
fn newer_version_is_refused_with_both_versions_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    SqliteStore::open(&path)
        .unwrap()
        .apply(&common::log_rows("c", 0, 2, 10))
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err().0;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("schema version 2"), "{err}");
    assert!(err.contains("up to 1"), "{err}");
    assert!(err.contains("newer"), "{err}");
    // Refused without touching the file.
    assert_eq!(user_version(&path), 2);
    // Read-only opening refuses it too.
    let ro = Options {
        read_only: true,
        ..Options::default()
    };
    assert!(SqliteStore::open_with(&path, &ro)
        .unwrap_err()
        .0
        .contains("schema version 2"));
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (name TEXT)")
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err().0;
    assert!(err.contains("not an sds store"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");

    let path = dir.path().join("other-app.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "application_id", 0x1234_5678)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err().0;
    assert!(err.contains("another application"), "{err}");
    assert!(err.contains("0x12345678"), "{err}");
}

#[test]
fn read_only_open_of_an_unmigrated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v0.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    let ro = Options {
        read_only: true,
        ..Options::default()
    };
    let err = SqliteStore::open_with(&path, &ro).unwrap_err().0;
    assert!(err.contains("schema version 0"), "{err}");
    assert!(err.contains("read-write"), "{err}");
}
