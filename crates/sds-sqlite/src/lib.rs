//! SQLite persistence for the [`sds`] participant.
//!
//! [`SqliteStore`] implements [`sds::store::Store`] on one database file
//! (bundled SQLite, WAL mode). Every change set of a protocol operation is
//! written in one transaction, as one row appended to a change journal that
//! is folded into the tables every 2 048 change sets (or 4 MiB); the cost of
//! an operation is proportional to the rows it changed, never to the size of
//! the state. See the [`sds::store`] module docs for the contract, and
//! `docs/persistence.md` for the schema, the failure policy and measurements.
//!
//! ```
//! use sds::store::{ChangeSet, ChannelChanges, ChannelMeta, Store};
//! use sds::Dialect;
//! use sds_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = SqliteStore::open(dir.path().join("sds.db")).unwrap();
//! let meta = ChannelMeta {
//!     dialect: Dialect::Spec,
//!     sync: None,
//!     lamport: 7,
//!     next_seq: 0,
//!     last_broadcast: 0,
//!     sync_due: 0,
//!     rng_state: 0,
//! };
//! let changes = ChangeSet {
//!     channels: vec![ChannelChanges {
//!         channel: "chat".into(),
//!         meta: Some(meta.clone()),
//!         ..Default::default()
//!     }],
//! };
//! store.apply(&changes).unwrap();
//! let loaded = store.load().unwrap();
//! assert_eq!(loaded[0].meta, Some(meta));
//! ```
#![deny(missing_docs)]

mod codec;
mod error;
mod journal;
mod participant;
pub mod schema;

pub use participant::{open_participant, open_participant_with, store_from_spec};

use bytes::Bytes;
use codec::{decode_ids, encode_ids, from_sql, to_sql};
use error::{plain, store_error};
use rusqlite::{params, Connection, OpenFlags, Transaction, TransactionBehavior};
use sds::store::{
    ChangeSet, ChannelChanges, ChannelMeta, ChannelSnapshot, IncomingRecord, LogRecord,
    OutgoingRecord, Remembered, RememberedRecord, RepairInRecord, RepairOutRecord, Store,
    StoreError,
};
use sds::wire::HistoryEntry;
use sds::Dialect;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When SQLite waits for the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// A committed change set survives a crash of the process; after a power
    /// loss or an OS crash the last commits may be rolled back (the database
    /// stays consistent). SQLite's recommended setting for WAL.
    #[default]
    Normal,
    /// Every commit is synced to the disk before `apply` returns: a committed
    /// change set also survives a power loss.
    Full,
}

/// How to open a [`SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Durability of each commit (default [`Synchronous::Normal`]).
    pub synchronous: Synchronous,
    /// How long a write waits for another connection's lock before failing
    /// with "busy" (default 5 000 ms; 0 fails at once).
    pub busy_timeout_ms: u32,
    /// Opens the file read-only (for inspection): it must exist and have the
    /// current schema; `apply` and `drop_channel` fail with a read-only error.
    pub read_only: bool,
    /// An upper bound on the database file's size; a write that would grow it
    /// further fails with a "full" error (default: no bound).
    pub max_size_bytes: Option<u64>,
    /// SQLite's page cache for this connection, in KiB (`PRAGMA cache_size`;
    /// default 16 MiB: the pages a journal fold touches stay in it). In
    /// version 1, where every commit touched several tables, SQLite's scans
    /// of a large cache after commits cost more than they saved (32 MiB: 10 %
    /// of the time of a persisted receive).
    pub cache_size_kib: u32,
    /// How much of the file SQLite reads through a memory map
    /// (`PRAGMA mmap_size`; default 0: off, it made no difference in `sds bench --store` and inflates RSS).
    pub mmap_size_bytes: u64,
    /// WAL size, in pages, at which a commit checkpoints it into the database
    /// (`PRAGMA wal_autocheckpoint`; default 16 384 pages, 64 MiB at 4 KiB
    /// pages: the WAL file grows to about that size and stays). Larger values
    /// write a page that changes often (the journal's last page) fewer times.
    pub wal_autocheckpoint_pages: u32,
    /// Change sets in the journal at which it is folded into the tables
    /// (default 2 048; it is also folded at 4 MiB). Smaller values fold
    /// more often (tests use it to land crashes inside folds).
    pub journal_fold_rows: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            synchronous: Synchronous::Normal,
            busy_timeout_ms: 5_000,
            read_only: false,
            max_size_bytes: None,
            cache_size_kib: 16 * 1024,
            mmap_size_bytes: 0,
            wal_autocheckpoint_pages: 16_384,
            journal_fold_rows: journal::FOLD_ROWS,
        }
    }
}

/// A [`Store`] on an SQLite database file.
///
/// Opening creates the file if needed, switches it to WAL mode, and migrates
/// its schema to [`schema::LATEST`]; a file written by a newer build (a
/// higher schema version) is refused. Every error names the file and says
/// what went wrong in plain words.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Rows and bytes in the journal (known after opening read-write).
    journal_rows: u64,
    journal_bytes: u64,
    fold_rows: u64,
}

impl Drop for SqliteStore {
    /// Folds the journal into the tables (best effort: what is not folded
    /// stays in the journal, and is replayed and folded later), so a file
    /// closed cleanly holds all its rows in the tables.
    fn drop(&mut self) {
        if self.journal_rows > 0 {
            let _ = self.fold_journal();
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Statements cached per connection (the 14 of a fold, the journal's, plus spares).
const STATEMENT_CACHE: usize = 32;

impl SqliteStore {
    /// Opens (or creates) the store at `path` with the default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, &Options::default())
    }

    /// Opens (or creates) the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| store_error(&path, "cannot open the database", &e))?;
        let mut store = SqliteStore {
            conn,
            path,
            journal_rows: 0,
            journal_bytes: 0,
            fold_rows: u64::from(options.journal_fold_rows.max(1)),
        };
        store.setup(options)?;
        if !options.read_only {
            let (rows, bytes) =
                journal_size(&store.conn).map_err(|e| store.sql("cannot read the journal", &e))?;
            store.journal_rows = rows;
            store.journal_bytes = bytes;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        read_version(&self.conn).map_err(|e| self.sql("cannot read the schema version", &e))
    }

    fn sql(&self, doing: &str, e: &rusqlite::Error) -> StoreError {
        store_error(&self.path, doing, e)
    }

    fn setup(&mut self, options: &Options) -> Result<(), StoreError> {
        let conn = &self.conn;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.busy_timeout(Duration::from_millis(u64::from(options.busy_timeout_ms)))
            .map_err(|e| self.sql("cannot set the busy timeout", &e))?;
        conn.pragma_update(None, "cache_size", -i64::from(options.cache_size_kib))
            .map_err(|e| self.sql("cannot set the cache size", &e))?;
        let mmap = i64::try_from(options.mmap_size_bytes).unwrap_or(i64::MAX);
        // SQLite answers with the size it will use (capped at compile time): not an error.
        let _: Option<i64> = conn
            .pragma_update_and_check(None, "mmap_size", mmap, |r| r.get(0))
            .map_err(|e| self.sql("cannot set the memory map size", &e))
            .ok();
        // The first read of the file: a file that is not a database fails here.
        let (version, app_id, tables) =
            read_header(conn).map_err(|e| self.sql("cannot read the database header", &e))?;
        if version > schema::LATEST {
            return Err(plain(
                &self.path,
                "cannot open the database",
                format!(
                    "it has schema version {version}, written by a newer sds-sqlite; this \
                     build supports versions up to {} (upgrade sds-sqlite to open it)",
                    schema::LATEST
                ),
            ));
        }
        if app_id != 0 && app_id != schema::APPLICATION_ID {
            return Err(plain(
                &self.path,
                "cannot open the database",
                format!(
                    "it is an SQLite database of another application \
                     (application_id {app_id:#010x}), not an sds store"
                ),
            ));
        }
        if version == 0 && tables > 0 {
            return Err(plain(
                &self.path,
                "cannot open the database",
                "it is an SQLite database with tables but no sds schema version: not an sds store",
            ));
        }
        if options.read_only {
            if version < schema::LATEST {
                return Err(plain(
                    &self.path,
                    "cannot open the database read-only",
                    format!(
                        "it has schema version {version} and needs migrating to {}; \
                         open it once read-write",
                        schema::LATEST
                    ),
                ));
            }
            return Ok(());
        }
        if version == 0 {
            // A new file: 4 KiB pages. A commit appends one journal row of
            // 1-2 KB (journal.rs), which fits the journal's last page; with
            // 1 KiB pages it spilled to overflow pages, and each page is a
            // WAL frame of its own (two writes). Only effective before the
            // first table exists; version-1 files keep their 1 KiB pages.
            conn.pragma_update(None, "page_size", 4096)
                .map_err(|e| self.sql("cannot set the page size", &e))?;
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| self.sql("cannot switch the database to WAL mode", &e))?;
        // In-memory and some special files cannot use WAL; they keep their mode.
        let _ = mode;
        let sync = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| self.sql("cannot set the synchronous mode", &e))?;
        conn.pragma_update(None, "wal_autocheckpoint", options.wal_autocheckpoint_pages)
            .map_err(|e| self.sql("cannot set the checkpoint interval", &e))?;
        if let Some(bytes) = options.max_size_bytes {
            let page: i64 = conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(|e| self.sql("cannot read the page size", &e))?;
            let pages = bytes.div_ceil(page.max(512) as u64).max(1);
            conn.pragma_update(None, "max_page_count", pages.min(i64::MAX as u64) as i64)
                .map_err(|e| self.sql("cannot set the size limit", &e))?;
        }
        if version < schema::LATEST {
            self.migrate()?;
        }
        Ok(())
    }

    /// Runs the pending migrations in one transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let doing = "cannot migrate the schema";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_error(&path, doing, &e))?;
        // Read again under the write lock: another process may have migrated.
        let version = read_version(&tx).map_err(|e| store_error(&path, doing, &e))?;
        if version > schema::LATEST {
            return Err(plain(
                &path,
                doing,
                format!(
                    "another process upgraded it to schema version {version}, newer than \
                     this build supports ({})",
                    schema::LATEST
                ),
            ));
        }
        for (from, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(|e| {
                store_error(
                    &path,
                    &format!(
                        "cannot migrate the schema from version {from} to {}",
                        from + 1
                    ),
                    &e,
                )
            })?;
        }
        tx.pragma_update(None, "user_version", schema::LATEST)
            .and_then(|()| tx.pragma_update(None, "application_id", schema::APPLICATION_ID))
            .and_then(|()| tx.commit())
            .map_err(|e| store_error(&path, doing, &e))
    }
}

fn read_version(conn: &Connection) -> rusqlite::Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // user_version is a signed 32-bit header field; a negative one is "newer than anything".
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// (schema version, application id, number of tables).
fn read_header(conn: &Connection) -> rusqlite::Result<(u32, i32, i64)> {
    let version = read_version(conn)?;
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    Ok((version, app_id, tables))
}

fn dialect_to_sql(d: Dialect) -> i64 {
    match d {
        Dialect::Spec => 0,
        Dialect::Nim => 1,
    }
}

fn remembered_to_sql(k: Remembered) -> i64 {
    match k {
        Remembered::Evicted => 0,
        Remembered::Met => 1,
        Remembered::Unannounced => 2,
        Remembered::OwnNews => 3,
    }
}

fn write_channel(tx: &Transaction<'_>, ch: &ChannelChanges) -> rusqlite::Result<()> {
    let c = ch.channel.as_str();
    match &ch.meta {
        Some(m) => {
            tx.prepare_cached(
                "INSERT INTO channel (channel, dialect, sync, lamport, next_seq, last_broadcast, \
                 sync_due, rng_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (channel) \
                 DO UPDATE SET dialect = excluded.dialect, sync = excluded.sync, \
                 lamport = excluded.lamport, next_seq = excluded.next_seq, \
                 last_broadcast = excluded.last_broadcast, sync_due = excluded.sync_due, \
                 rng_state = excluded.rng_state",
            )?
            .execute(params![
                c,
                dialect_to_sql(m.dialect),
                m.sync,
                to_sql(m.lamport),
                to_sql(m.next_seq),
                to_sql(m.last_broadcast),
                to_sql(m.sync_due),
                to_sql(m.rng_state),
            ])?;
        }
        None => {
            // The channel exists from the first change set that names it.
            tx.prepare_cached("INSERT OR IGNORE INTO channel (channel) VALUES (?1)")?
                .execute([c])?;
        }
    }
    if !ch.log_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO log (channel, id, seq, message, hint) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (channel, id) DO UPDATE SET seq = excluded.seq, \
             message = excluded.message, hint = excluded.hint",
        )?;
        for r in &ch.log_upserts {
            st.execute(params![
                c,
                r.id,
                to_sql(r.seq),
                &r.message[..],
                r.hint.as_deref()
            ])?;
        }
    }
    if !ch.outgoing_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO outgoing (channel, id, seq, message, attempts, last_sent, resend_at, \
             ackers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (channel, id) DO UPDATE \
             SET seq = excluded.seq, message = excluded.message, attempts = excluded.attempts, \
             last_sent = excluded.last_sent, resend_at = excluded.resend_at, \
             ackers = excluded.ackers",
        )?;
        for r in &ch.outgoing_upserts {
            st.execute(params![
                c,
                r.id,
                to_sql(r.seq),
                &r.message[..],
                r.attempts,
                to_sql(r.last_sent),
                to_sql(r.resend_at),
                encode_ids(&r.ackers),
            ])?;
        }
    }
    if !ch.incoming_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO incoming (channel, id, message, hint, unmet, lost, timeout_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (channel, id) DO UPDATE SET \
             message = excluded.message, hint = excluded.hint, unmet = excluded.unmet, \
             lost = excluded.lost, timeout_at = excluded.timeout_at",
        )?;
        for r in &ch.incoming_upserts {
            st.execute(params![
                c,
                r.id,
                &r.message[..],
                r.hint.as_deref(),
                encode_ids(&r.unmet),
                encode_ids(&r.lost),
                to_sql(r.timeout_at),
            ])?;
        }
    }
    if !ch.repair_out_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO repair_out (channel, id, entry_id, entry_hint, entry_sender, attempts, \
             due, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (channel, id) \
             DO UPDATE SET entry_id = excluded.entry_id, entry_hint = excluded.entry_hint, \
             entry_sender = excluded.entry_sender, attempts = excluded.attempts, \
             due = excluded.due, expires_at = excluded.expires_at",
        )?;
        for r in &ch.repair_out_upserts {
            st.execute(params![
                c,
                r.id,
                r.entry.message_id,
                r.entry.retrieval_hint.as_deref(),
                r.entry.sender_id,
                r.attempts,
                r.due.map(to_sql),
                to_sql(r.expires_at),
            ])?;
        }
    }
    if !ch.repair_in_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO repair_in (channel, id, t_resp) VALUES (?1, ?2, ?3) \
             ON CONFLICT (channel, id) DO UPDATE SET t_resp = excluded.t_resp",
        )?;
        for r in &ch.repair_in_upserts {
            st.execute(params![c, r.id, to_sql(r.t_resp)])?;
        }
    }
    if !ch.remembered_upserts.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO remembered (channel, kind, id, seq) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (channel, kind, id) DO UPDATE SET seq = excluded.seq",
        )?;
        for r in &ch.remembered_upserts {
            st.execute(params![c, remembered_to_sql(r.kind), r.id, to_sql(r.seq)])?;
        }
    }
    // Deletes after upserts: a key both upserted and deleted in one change set is gone
    // (as in the in-memory reference store).
    delete_ids(
        tx,
        "DELETE FROM log WHERE channel = ?1 AND id = ?2",
        c,
        &ch.log_deletes,
    )?;
    delete_ids(
        tx,
        "DELETE FROM outgoing WHERE channel = ?1 AND id = ?2",
        c,
        &ch.outgoing_deletes,
    )?;
    delete_ids(
        tx,
        "DELETE FROM incoming WHERE channel = ?1 AND id = ?2",
        c,
        &ch.incoming_deletes,
    )?;
    delete_ids(
        tx,
        "DELETE FROM repair_out WHERE channel = ?1 AND id = ?2",
        c,
        &ch.repair_out_deletes,
    )?;
    delete_ids(
        tx,
        "DELETE FROM repair_in WHERE channel = ?1 AND id = ?2",
        c,
        &ch.repair_in_deletes,
    )?;
    if !ch.remembered_deletes.is_empty() {
        let mut st = tx.prepare_cached(
            "DELETE FROM remembered WHERE channel = ?1 AND kind = ?2 AND id = ?3",
        )?;
        for (k, id) in &ch.remembered_deletes {
            st.execute(params![c, remembered_to_sql(*k), id])?;
        }
    }
    Ok(())
}

fn delete_ids(
    tx: &Transaction<'_>,
    sql: &str,
    channel: &str,
    ids: &[String],
) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut st = tx.prepare_cached(sql)?;
    for id in ids {
        st.execute(params![channel, id])?;
    }
    Ok(())
}

/// Folds the journal into the tables (inside the caller's transaction) and empties it.
fn fold(tx: &Transaction<'_>) -> Result<(), LoadError> {
    let mut sets = Vec::new();
    {
        let mut st = tx.prepare_cached("SELECT n, changes FROM journal ORDER BY n")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(0)?;
            let bytes = r.get_ref(1)?.as_blob()?;
            sets.push(journal::decode(bytes).ok_or_else(|| bad_journal(n))?);
        }
    }
    // One write per changed row (its last value), in key order: see journal::coalesce.
    for ch in journal::coalesce(sets) {
        write_channel(tx, &ch)?;
    }
    tx.prepare_cached("DELETE FROM journal")?.execute([])?;
    Ok(())
}

/// Removes a channel's changes from the journal (inside the caller's
/// transaction): rows naming it are rewritten without it, or deleted. Only
/// ever shrinks the file, so it works on a full database.
fn drop_from_journal(tx: &Transaction<'_>, channel: &str) -> Result<(), LoadError> {
    let mut edits = Vec::new();
    {
        let mut st = tx.prepare_cached("SELECT n, changes FROM journal ORDER BY n")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(0)?;
            let mut cs = journal::decode(r.get_ref(1)?.as_blob()?).ok_or_else(|| bad_journal(n))?;
            let before = cs.channels.len();
            cs.channels.retain(|c| c.channel != channel);
            if cs.channels.len() != before {
                edits.push((n, cs));
            }
        }
    }
    for (n, cs) in edits {
        if cs.channels.is_empty() {
            tx.prepare_cached("DELETE FROM journal WHERE n = ?1")?
                .execute([n])?;
        } else {
            tx.prepare_cached("UPDATE journal SET changes = ?2 WHERE n = ?1")?
                .execute(params![n, journal::encode(&cs)])?;
        }
    }
    Ok(())
}

/// (rows, bytes) in the journal.
fn journal_size(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(changes)), 0) FROM journal",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
}

fn bad_journal(n: i64) -> LoadError {
    LoadError::Bad(format!(
        "the database is corrupt: table journal, row {n}: not a change set"
    ))
}

/// Every journal row, oldest first.
fn read_journal(tx: &Transaction<'_>) -> Result<Vec<ChangeSet>, LoadError> {
    let mut out = Vec::new();
    let mut st = tx.prepare("SELECT n, changes FROM journal ORDER BY n")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(0)?;
        let bytes = r.get_ref(1)?.as_blob()?;
        out.push(journal::decode(bytes).ok_or_else(|| bad_journal(n))?);
    }
    Ok(out)
}

impl SqliteStore {
    /// Folds the journal into the tables in one transaction.
    fn fold_journal(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let doing = "cannot fold the journal into the tables";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_error(&path, doing, &e))?;
        match fold(&tx) {
            Ok(()) => {}
            Err(LoadError::Sql(e)) => return Err(store_error(&path, doing, &e)),
            Err(LoadError::Bad(s)) => return Err(plain(&path, doing, s)),
        }
        tx.commit().map_err(|e| store_error(&path, doing, &e))?;
        self.journal_rows = 0;
        self.journal_bytes = 0;
        Ok(())
    }
}

/// A load failure: SQLite's, or a row this store cannot have written.
enum LoadError {
    Sql(rusqlite::Error),
    Bad(String),
}

impl From<rusqlite::Error> for LoadError {
    fn from(e: rusqlite::Error) -> Self {
        LoadError::Sql(e)
    }
}

impl From<rusqlite::types::FromSqlError> for LoadError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        LoadError::Sql(e.into())
    }
}

fn bad(table: &str, channel: &str, id: &str, what: &str) -> LoadError {
    LoadError::Bad(format!(
        "the database is corrupt: table {table}, channel {channel:?}, id {id:?}: {what}"
    ))
}

fn ids_column(
    table: &str,
    channel: &str,
    id: &str,
    col: &str,
    b: &[u8],
) -> Result<Vec<String>, LoadError> {
    decode_ids(b).ok_or_else(|| {
        bad(
            table,
            channel,
            id,
            &format!("column {col} is not a list of ids"),
        )
    })
}

fn u32_column(table: &str, channel: &str, id: &str, col: &str, v: i64) -> Result<u32, LoadError> {
    u32::try_from(v).map_err(|_| {
        bad(
            table,
            channel,
            id,
            &format!("column {col} is out of range ({v})"),
        )
    })
}

fn read_snapshots(tx: &Transaction<'_>) -> Result<Vec<ChannelSnapshot>, LoadError> {
    let mut chans: BTreeMap<String, ChannelSnapshot> = BTreeMap::new();
    fn entry(m: &mut BTreeMap<String, ChannelSnapshot>, c: String) -> &mut ChannelSnapshot {
        m.entry(c.clone()).or_insert_with(|| ChannelSnapshot {
            channel: c,
            ..Default::default()
        })
    }

    {
        let mut st = tx.prepare(
            "SELECT channel, dialect, sync, lamport, next_seq, last_broadcast, sync_due, \
             rng_state FROM channel ORDER BY channel",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let c: String = r.get(0)?;
            let dialect: Option<i64> = r.get(1)?;
            let meta = match dialect {
                None => None,
                Some(d) => {
                    let dialect = match d {
                        0 => Dialect::Spec,
                        1 => Dialect::Nim,
                        _ => return Err(bad("channel", &c, "", &format!("unknown dialect {d}"))),
                    };
                    let int = |i: usize| -> Result<u64, LoadError> {
                        let v: Option<i64> = r.get(i)?;
                        v.map(from_sql)
                            .ok_or_else(|| bad("channel", &c, "", "settings are partly missing"))
                    };
                    Some(ChannelMeta {
                        dialect,
                        sync: r.get(2)?,
                        lamport: int(3)?,
                        next_seq: int(4)?,
                        last_broadcast: int(5)?,
                        sync_due: int(6)?,
                        rng_state: int(7)?,
                    })
                }
            };
            entry(&mut chans, c).meta = meta;
        }
    }
    {
        let mut st = tx
            .prepare("SELECT channel, id, seq, message, hint FROM log ORDER BY channel, seq, id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let rec = LogRecord {
                id: r.get(1)?,
                seq: from_sql(r.get(2)?),
                message: Bytes::from(r.get::<_, Vec<u8>>(3)?),
                hint: r.get::<_, Option<Vec<u8>>>(4)?.map(Bytes::from),
            };
            entry(&mut chans, r.get(0)?).log.push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT channel, id, seq, message, attempts, last_sent, resend_at, ackers \
             FROM outgoing ORDER BY channel, seq, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let c: String = r.get(0)?;
            let id: String = r.get(1)?;
            let ackers = ids_column("outgoing", &c, &id, "ackers", &r.get::<_, Vec<u8>>(7)?)?;
            let attempts = u32_column("outgoing", &c, &id, "attempts", r.get(4)?)?;
            let rec = OutgoingRecord {
                seq: from_sql(r.get(2)?),
                message: Bytes::from(r.get::<_, Vec<u8>>(3)?),
                attempts,
                last_sent: from_sql(r.get(5)?),
                resend_at: from_sql(r.get(6)?),
                ackers,
                id,
            };
            entry(&mut chans, c).outgoing.push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT channel, id, message, hint, unmet, lost, timeout_at \
             FROM incoming ORDER BY channel, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let c: String = r.get(0)?;
            let id: String = r.get(1)?;
            let unmet = ids_column("incoming", &c, &id, "unmet", &r.get::<_, Vec<u8>>(4)?)?;
            let lost = ids_column("incoming", &c, &id, "lost", &r.get::<_, Vec<u8>>(5)?)?;
            let rec = IncomingRecord {
                message: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                hint: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                unmet,
                lost,
                timeout_at: from_sql(r.get(6)?),
                id,
            };
            entry(&mut chans, c).incoming.push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT channel, id, entry_id, entry_hint, entry_sender, attempts, due, expires_at \
             FROM repair_out ORDER BY channel, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let c: String = r.get(0)?;
            let id: String = r.get(1)?;
            let attempts = u32_column("repair_out", &c, &id, "attempts", r.get(5)?)?;
            let rec = RepairOutRecord {
                entry: HistoryEntry {
                    message_id: r.get(2)?,
                    retrieval_hint: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                    sender_id: r.get(4)?,
                },
                attempts,
                due: r.get::<_, Option<i64>>(6)?.map(from_sql),
                expires_at: from_sql(r.get(7)?),
                id,
            };
            entry(&mut chans, c).repair_out.push(rec);
        }
    }
    {
        let mut st =
            tx.prepare("SELECT channel, id, t_resp FROM repair_in ORDER BY channel, id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let rec = RepairInRecord {
                id: r.get(1)?,
                t_resp: from_sql(r.get(2)?),
            };
            entry(&mut chans, r.get(0)?).repair_in.push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT channel, kind, id, seq FROM remembered ORDER BY channel, kind, seq, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let c: String = r.get(0)?;
            let id: String = r.get(2)?;
            let kind = match r.get::<_, i64>(1)? {
                0 => Remembered::Evicted,
                1 => Remembered::Met,
                2 => Remembered::Unannounced,
                3 => Remembered::OwnNews,
                k => return Err(bad("remembered", &c, &id, &format!("unknown kind {k}"))),
            };
            let rec = RememberedRecord {
                kind,
                id,
                seq: from_sql(r.get(3)?),
            };
            entry(&mut chans, c).remembered.push(rec);
        }
    }
    Ok(chans.into_values().collect())
}

impl Store for SqliteStore {
    /// Every channel, by channel id; the log and the outgoing buffer in `seq`
    /// order, remembered ids by kind then `seq`, everything else by id.
    fn load(&mut self) -> Result<Vec<ChannelSnapshot>, StoreError> {
        let doing = "cannot load the state";
        let path = self.path.clone();
        // One read transaction: every table is read from the same snapshot.
        let tx = self
            .conn
            .transaction()
            .map_err(|e| store_error(&path, doing, &e))?;
        let out = match read_snapshots(&tx).and_then(|s| Ok((s, read_journal(&tx)?))) {
            Ok((s, sets)) if sets.is_empty() => s,
            Ok((s, sets)) => journal::replay(s, &sets),
            Err(LoadError::Sql(e)) => return Err(store_error(&path, doing, &e)),
            Err(LoadError::Bad(s)) => return Err(plain(&path, doing, s)),
        };
        tx.finish().map_err(|e| store_error(&path, doing, &e))?;
        Ok(out)
    }

    fn apply(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.channels.is_empty() {
            return Ok(());
        }
        // One journal row, one transaction: see journal.rs.
        let row = journal::encode(changes);
        let res = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("INSERT INTO journal (changes) VALUES (?1)")?
                .execute([&row[..]])?;
            tx.commit()
        })();
        res.map_err(|e| self.sql("cannot apply a change set", &e))?;
        self.journal_rows += 1;
        self.journal_bytes += row.len() as u64;
        if self.journal_rows >= self.fold_rows || self.journal_bytes >= journal::FOLD_BYTES {
            // The change set is committed; a fold that fails (e.g. disk full)
            // leaves the journal as it was, and is tried again after the next
            // change set.
            let _ = self.fold_journal();
        }
        Ok(())
    }

    fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError> {
        let res = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            drop_from_journal(&tx, channel)?;
            for table in schema::CHANNEL_TABLES {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE channel = ?1"))?
                    .execute([channel])?;
            }
            tx.commit()?;
            Ok(())
        })();
        let doing = format!("cannot drop channel {channel:?}");
        match res {
            Ok(()) => {
                // Rows were rewritten or removed: count again.
                let (rows, bytes) = journal_size(&self.conn).map_err(|e| self.sql(&doing, &e))?;
                self.journal_rows = rows;
                self.journal_bytes = bytes;
                Ok(())
            }
            Err(LoadError::Sql(e)) => Err(self.sql(&doing, &e)),
            Err(LoadError::Bad(s)) => Err(plain(&self.path, &doing, s)),
        }
    }
}
