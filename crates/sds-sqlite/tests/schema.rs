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
fn fresh_file_gets_version_6_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(schema::LATEST, 6);
    assert_eq!(s.schema_version().unwrap(), 6);
    drop(s);
    assert_eq!(user_version(&path), 6);
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
            "id_salt",
            "incoming",
            "journal",
            "journal_file",
            "log",
            "message",
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
        assert_eq!(s.schema_version().unwrap(), 6);
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
    assert_eq!(s.schema_version().unwrap(), 6);
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
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err().0;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("schema version 7"), "{err}");
    assert!(err.contains("up to 6"), "{err}");
    assert!(err.contains("newer"), "{err}");
    // Refused without touching the file.
    assert_eq!(user_version(&path), 7);
    // Read-only opening refuses it too.
    let ro = Options {
        read_only: true,
        ..Options::default()
    };
    assert!(SqliteStore::open_with(&path, &ro)
        .unwrap_err()
        .0
        .contains("schema version 7"));
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

/// The version-1 schema, as released (a fixture: databases written by older builds).
const V1_SQL: &str = "
CREATE TABLE channel (channel TEXT PRIMARY KEY NOT NULL, dialect INTEGER, sync INTEGER,
    lamport INTEGER, next_seq INTEGER, last_broadcast INTEGER, sync_due INTEGER,
    rng_state INTEGER) WITHOUT ROWID;
CREATE TABLE log (channel TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    message BLOB NOT NULL, hint BLOB, PRIMARY KEY (channel, id)) WITHOUT ROWID;
CREATE TABLE outgoing (channel TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    message BLOB NOT NULL, attempts INTEGER NOT NULL, last_sent INTEGER NOT NULL,
    resend_at INTEGER NOT NULL, ackers BLOB NOT NULL, PRIMARY KEY (channel, id)) WITHOUT ROWID;
CREATE TABLE incoming (channel TEXT NOT NULL, id TEXT NOT NULL, message BLOB NOT NULL,
    hint BLOB, unmet BLOB NOT NULL, lost BLOB NOT NULL, timeout_at INTEGER NOT NULL,
    PRIMARY KEY (channel, id)) WITHOUT ROWID;
CREATE TABLE repair_out (channel TEXT NOT NULL, id TEXT NOT NULL, entry_id TEXT NOT NULL,
    entry_hint BLOB, entry_sender TEXT, attempts INTEGER NOT NULL, due INTEGER,
    expires_at INTEGER NOT NULL, PRIMARY KEY (channel, id)) WITHOUT ROWID;
CREATE TABLE repair_in (channel TEXT NOT NULL, id TEXT NOT NULL, t_resp INTEGER NOT NULL,
    PRIMARY KEY (channel, id)) WITHOUT ROWID;
CREATE TABLE remembered (channel TEXT NOT NULL, kind INTEGER NOT NULL, id TEXT NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (channel, kind, id)) WITHOUT ROWID;
PRAGMA user_version = 1;
PRAGMA application_id = 1396986673; -- 0x53445331
";

#[test]
fn version_1_file_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "page_size", 1024).unwrap();
    c.execute_batch(V1_SQL).unwrap();
    c.execute_batch(
        "INSERT INTO channel VALUES ('chat', 0, NULL, 7, 3, 5, 6, 8);
         INSERT INTO log VALUES ('chat', 'b', 2, x'0102', NULL), ('chat', 'a', 1, x'03', x'04');
         INSERT INTO outgoing VALUES ('chat', 'a', 1, x'03', 2, 10, 20, x'03626f62');
         INSERT INTO incoming VALUES ('chat', 'i', x'05', NULL, x'0178', x'', 30);
         INSERT INTO repair_out VALUES ('chat', 'r', 'r', NULL, 'carol', 1, NULL, 40);
         INSERT INTO repair_in VALUES ('chat', 'q', 50);
         INSERT INTO remembered VALUES ('chat', 1, 'x', 9);",
    )
    .unwrap();
    drop(c);
    assert_eq!(user_version(&path), 1);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 6);
    let snaps = s.load().unwrap();
    assert_eq!(snaps.len(), 1);
    let ch = &snaps[0];
    assert_eq!(ch.meta.as_ref().unwrap().lamport, 7);
    let log: Vec<(&str, u64)> = ch.log.iter().map(|r| (r.id.as_str(), r.seq)).collect();
    assert_eq!(log, [("a", 1), ("b", 2)]);
    assert_eq!(ch.log[0].hint.as_deref(), Some(&[4u8][..]));
    assert_eq!(ch.outgoing[0].ackers, ["bob"]);
    assert_eq!(ch.outgoing[0].attempts, 2);
    assert_eq!(ch.incoming[0].unmet, ["x"]);
    assert_eq!(ch.repair_out[0].entry.sender_id.as_deref(), Some("carol"));
    assert_eq!(ch.repair_in[0].t_resp, 50);
    assert_eq!(ch.remembered[0].seq, 9);
    // And it takes new change sets like a fresh file.
    s.apply(&common::log_rows("chat", 10, 3, 10)).unwrap();
    drop(s);
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.load().unwrap()[0].log.len(), 5);
}
