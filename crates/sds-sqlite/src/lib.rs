//! SQLite persistence for the [`sds`] participant.
//!
//! [`SqliteStore`] implements [`sds::store::Store`] on a database file
//! (bundled SQLite, WAL mode) and two append files next to it
//! (`<db>-sds-journal`, `<db>-sds-journal-2`). Every change set of a protocol
//! operation is one checksummed record appended to the active file with one
//! write (durable against a crash of the process; with [`Synchronous::Full`]
//! also synced); every 8 192 change sets (or 16 MiB) a thread of the store
//! folds them into the tables in one transaction and empties the file, while
//! writes go on in the other file. The cost of an operation is
//! proportional to the rows it changed, never to the size of the state. One
//! process at a time opens a store for writing (a lock on the append file). See the [`sds::store`] module docs for the contract, and
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

mod appendfile;
mod codec;
mod error;
mod journal;
mod participant;
pub mod schema;

pub use participant::{open_participant, open_participant_with, store_from_spec};

use bytes::Bytes;
use codec::{decode_deps, decode_ids, encode_deps, encode_ids, from_sql, history_ids, to_sql};
use error::{plain, store_error};
use rusqlite::functions::FunctionFlags;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use sds::store::{
    ChangeSet, ChannelChanges, ChannelMeta, ChannelSnapshot, IncomingRecord, LogRecord,
    OutgoingRecord, Remembered, RememberedRecord, RepairInRecord, RepairOutRecord, Store,
    StoreError,
};
use sds::wire::HistoryEntry;
use sds::Dialect;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
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
    /// An upper bound on the database file's size; a fold that would grow it
    /// further fails with a "full" error, which a write reports (default: no
    /// bound). The append files are not counted: they hold at most two
    /// folds' worth of change sets.
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
    /// (`PRAGMA wal_autocheckpoint`; default 16 384 pages, 128 MiB at the
    /// 8 KiB pages of files created since schema version 4, 64 MiB at 4 KiB
    /// pages: the WAL file grows to about that size and stays). Larger values
    /// write a page that changes often fewer times.
    pub wal_autocheckpoint_pages: u32,
    /// Change sets in the append file at which it is folded into the tables
    /// (default 8 192; it is also folded at 16 MiB), handed over by the next
    /// write (see [`Options::background_fold`]). Smaller values fold more
    /// often (tests use it to land crashes inside folds, and 1 to fold at
    /// every write).
    pub journal_fold_rows: u32,
    /// Folds on a thread of the store's own (default true): when the append
    /// file is full, the write that finds it so hands its records to the
    /// thread and appends to a second file, and the fold runs while the
    /// caller goes on; a write waits only if the second file fills up before
    /// the fold is done. A fold that fails there is reported by the next
    /// write (or [`SqliteStore::flush`]), and retried by the write after it.
    /// False: the write that finds the file full folds it itself, before
    /// appending, and fails if the fold fails.
    pub background_fold: bool,
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
            background_fold: true,
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
    /// The connection, shared with the thread that folds in the background
    /// (the caller's side locks it only when no fold is in flight).
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Rows and bytes in the `journal` table (left by version 2; known after opening read-write).
    journal_rows: u64,
    journal_bytes: u64,
    fold_rows: u64,
    /// Whether folds run on a thread of their own ([`Options::background_fold`]).
    background: bool,
    /// The append files (`<db>-sds-journal`, locked, and `<db>-sds-journal-2`);
    /// `None` when read-only.
    append: Option<Append>,
    /// The file's salt for the keys of ids (`schema::id_key`; 0 when
    /// read-only, which computes no keys).
    salt: u64,
}

/// One of the two append files.
struct Slot {
    /// Shared with the folding thread, which empties the file after its fold.
    file: Arc<std::fs::File>,
    path: PathBuf,
    /// Bytes of the file (every one a complete record).
    len: u64,
}

/// The writer's side of the append files.
///
/// The writer appends to the active file. When that holds a fold's worth of
/// records, they become the backlog: a thread folds them into the tables
/// (one transaction, which records `journal_file.folded`) and then empties
/// the file, while the writer goes on appending to the other file. If that
/// one fills up before the fold is done, the writer waits for it: at most
/// two files' worth of records are ever pending.
struct Append {
    slots: [Slot; 2],
    /// The slot `apply` appends to; the backlog, if any, is in the other.
    active: usize,
    /// `fdatasync` after each record.
    sync: bool,
    /// The sequence number of the first record in the active file (`next`
    /// when it has none). Records are numbered across both files.
    first: u64,
    /// The sequence number of the next record.
    next: u64,
    /// The payload bytes of the active file's records. The records are read
    /// back from the file when folded (or loaded), not kept in memory:
    /// holding them, and allocating one buffer per record, cost more than the
    /// read (fresh pages of memory to zero after each fold).
    pending_bytes: u64,
    /// Records of the other file not folded yet.
    backlog: Option<Backlog>,
    /// The buffer the next record is encoded in (reused).
    buf: Vec<u8>,
}

/// The records `first..=last` of the file that is not active.
struct Backlog {
    first: u64,
    last: u64,
    /// The thread folding them; it returns whether it emptied the file.
    /// `None`: not being folded (found at open, or its fold failed), the next
    /// write folds them on its own thread first.
    fold: Option<std::thread::JoinHandle<Result<bool, StoreError>>>,
    /// The failure of the last background fold, not reported yet.
    error: Option<StoreError>,
}

impl Append {
    fn pending(&self) -> u64 {
        self.next - self.first
    }

    /// The sequence number of the last record in the tables, as far as this
    /// writer knows (a fold in flight may have committed more).
    fn folded(&self) -> u64 {
        self.backlog.as_ref().map_or(self.first, |b| b.first) - 1
    }

    /// The payloads of the records not folded yet (the backlog's, then the
    /// active file's), read back from the files.
    /// An error is the cause, in words.
    fn read_pending(&self) -> Result<Vec<Bytes>, String> {
        let mut records = Vec::new();
        if let Some(b) = &self.backlog {
            let path = &self.slots[1 - self.active].path;
            records = appendfile::read_range(path, b.first, b.last + 1 - b.first)
                .map_err(|e| appendfile::io_cause(path, &e))?;
        }
        let path = &self.slots[self.active].path;
        records.extend(
            appendfile::read_range(path, self.first, self.pending())
                .map_err(|e| appendfile::io_cause(path, &e))?,
        );
        Ok(records)
    }
}

/// A fold of one append file's records, run on its own thread.
struct FoldJob {
    conn: Arc<Mutex<Connection>>,
    db: PathBuf,
    file: Arc<std::fs::File>,
    file_path: PathBuf,
    first: u64,
    count: u64,
    salt: u64,
    sync: bool,
}

impl FoldJob {
    /// Reads the records back, folds them in one transaction (committed
    /// with `synchronous = FULL`), then empties the file; returns whether it
    /// could (if not, the records stay and are skipped when the file is read,
    /// their sequence numbers being `<= folded`).
    fn run(self) -> Result<bool, StoreError> {
        let doing = "cannot fold the append file into the tables (in the background)";
        let pending = appendfile::read_range(&self.file_path, self.first, self.count)
            .map_err(|e| plain(&self.db, doing, appendfile::io_cause(&self.file_path, &e)))?;
        let folded = self.first + self.count - 1;
        {
            let mut conn = lock(&self.conn);
            fold_tx(
                &mut conn,
                &self.db,
                &FoldInput {
                    table_rows: false,
                    pending: &pending,
                    folded,
                    except: None,
                    then: None,
                    salt: self.salt,
                    sync: self.sync,
                },
                doing,
            )?;
        }
        drop(pending);
        Ok(empty_file(&self.file))
    }
}

/// Empties an append file whose records are all folded; false if it could not.
fn empty_file(f: &std::fs::File) -> bool {
    f.set_len(0).is_ok() && std::io::Seek::seek(&mut &*f, std::io::SeekFrom::Start(0)).is_ok()
}

/// Locks the connection; a thread that panicked while holding it left no
/// transaction open (it is rolled back when dropped), so it is still usable.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for SqliteStore {
    /// Waits for a fold in flight, then folds the rest of the journal into
    /// the tables (best effort: what is not folded stays in the append files,
    /// and is replayed and folded later), so a file closed cleanly holds all
    /// its rows in the tables.
    fn drop(&mut self) {
        let _ = self.join_fold();
        if self.journal_rows > 0 || self.pending_rows() > 0 {
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

/// While a fold is in flight, the active append file takes up to this many
/// times [`Options::journal_fold_rows`] records (or [`journal::FOLD_BYTES`]
/// bytes) before a write waits for the fold.
const OVERRUN: u64 = 4;

/// Statements cached per connection (the ~45 a fold may use, the journal's, `drop_channel`'s, plus spares).
const STATEMENT_CACHE: usize = 64;

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
            conn: Arc::new(Mutex::new(conn)),
            path,
            journal_rows: 0,
            journal_bytes: 0,
            fold_rows: u64::from(options.journal_fold_rows.max(1)),
            background: options.background_fold,
            append: None,
            salt: 0,
        };
        store.setup(options)?;
        if !options.read_only {
            let (rows, bytes) = journal_size(&store.conn())
                .map_err(|e| store.sql("cannot read the journal", &e))?;
            store.journal_rows = rows;
            store.journal_bytes = bytes;
            store.append = Some(store.open_append(options)?);
        }
        Ok(store)
    }

    /// Opens, locks and reads the append files; cuts off torn tails and
    /// empties files that hold nothing to fold.
    fn open_append(&self, options: &Options) -> Result<Append, StoreError> {
        let paths = appendfile::paths_for(&self.path);
        let doing = "cannot open the append file";
        let io = |path: &Path, e: std::io::Error| {
            plain(&self.path, doing, appendfile::io_cause(path, &e))
        };
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| io(path, e))
        };
        let first = open(&paths[0])?;
        if !appendfile::try_lock(&first).map_err(|e| io(&paths[0], e))? {
            return Err(plain(
                &self.path,
                "cannot open the store for writing",
                format!(
                    "it is locked: another process (or another store in this process) has it \
                     open for writing (lock on {})",
                    paths[0].display()
                ),
            ));
        }
        let files = [first, open(&paths[1])?];
        // Under the lock: nobody folds between these reads.
        let folded = read_folded(&self.conn())
            .map_err(|e| self.sql("cannot read the journal file's position", &e))?;
        let bytes = [
            appendfile::read_all(&paths[0]).map_err(|e| io(&paths[0], e))?,
            appendfile::read_all(&paths[1]).map_err(|e| io(&paths[1], e))?,
        ];
        let contents = [
            appendfile::parse(&bytes[0], folded),
            appendfile::parse(&bytes[1], folded),
        ];
        let order = appendfile::order(&contents, folded);
        let mut slots = Vec::new();
        for (i, (file, path)) in files.into_iter().zip(paths).enumerate() {
            // Only complete records that follow `folded` stay (a stale file,
            // already folded, is emptied).
            let len = if order.contains(&i) {
                contents[i].valid_len
            } else {
                0
            };
            if len != bytes[i].len() as u64 {
                file.set_len(len).map_err(|e| io(&path, e))?;
            }
            let mut file = file;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len))
                .map_err(|e| io(&path, e))?;
            slots.push(Slot {
                file: Arc::new(file),
                path,
                len,
            });
        }
        let count = |i: usize| contents[i].records.len() as u64;
        let payload =
            |i: usize| -> u64 { contents[i].records.iter().map(|r| r.len() as u64).sum() };
        // The records of the first file of two are a backlog, folded by the next write.
        let (active, backlog) = match order[..] {
            [] => (0, None),
            [e] => (e, None),
            [e, o] => (
                o,
                Some(Backlog {
                    first: folded + 1,
                    last: folded + count(e),
                    fold: None,
                    error: None,
                }),
            ),
            _ => unreachable!("two files"),
        };
        let first = folded + 1 + backlog.as_ref().map_or(0, |b| b.last - folded);
        let pending_bytes = if order.contains(&active) {
            payload(active)
        } else {
            0
        };
        let next = first
            + if order.contains(&active) {
                count(active)
            } else {
                0
            };
        let slots: [Slot; 2] = slots
            .try_into()
            .unwrap_or_else(|_| unreachable!("two files"));
        Ok(Append {
            slots,
            active,
            sync: options.synchronous == Synchronous::Full,
            first,
            next,
            pending_bytes,
            backlog,
            buf: Vec::new(),
        })
    }

    /// The connection (a fold in flight holds it until it is done).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Records in the append files not folded yet.
    fn pending_rows(&self) -> u64 {
        self.append.as_ref().map_or(0, |a| a.next - a.folded() - 1)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        read_version(&self.conn()).map_err(|e| self.sql("cannot read the schema version", &e))
    }

    fn sql(&self, doing: &str, e: &rusqlite::Error) -> StoreError {
        store_error(&self.path, doing, e)
    }

    fn setup(&mut self, options: &Options) -> Result<(), StoreError> {
        let guard = self.conn();
        let conn: &Connection = &guard;
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
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(plain(
                &self.path,
                "cannot open the database for writing",
                "the database is read-only (the file or its directory is not writable); \
                 open it with Options::read_only for inspection",
            ));
        }
        if version == 0 {
            // A new file: 8 KiB pages. A fold writes thousands of rows of
            // 1-3 KB; every page is a WAL frame of its own (two writes, and a
            // copy at the checkpoint), and with 8 KiB pages a persisted
            // random-order receive of 100 000 messages ran ~10 % faster than
            // with 4 KiB (2 KiB: 30 % slower, 16 KiB: the same as 8). Only
            // effective before the first table exists; older files keep
            // their page size (4 KiB, or 1 KiB for version 1).
            conn.pragma_update(None, "page_size", 8192)
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
        drop(guard);
        if version < schema::LATEST {
            self.migrate()?;
        }
        if !options.read_only {
            let salt = self
                .conn()
                .query_row("SELECT salt FROM id_salt WHERE id = 0", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|v| v as u64);
            self.salt = salt.map_err(|e| self.sql("cannot read the salt of the id keys", &e))?;
        }
        Ok(())
    }

    /// Runs the pending migrations in one transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let doing = "cannot migrate the schema";
        // Version 4 draws the file's salt and computes the key of every id.
        let salt = schema::new_salt();
        let mut conn = self.conn();
        conn.create_scalar_function(
            "sds_id_salt",
            0,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            move |_| Ok(salt as i64),
        )
        .and_then(|()| {
            conn.create_scalar_function(
                "sds_id_key",
                1,
                FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
                move |ctx| Ok(schema::id_key(salt, ctx.get_raw(0).as_str()?)),
            )
        })
        .map_err(|e| store_error(&path, doing, &e))?;
        let tx = conn
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

/// `journal_file.folded`.
fn read_folded(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT folded FROM journal_file WHERE id = 0", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(from_sql)
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

/// The `no` of a channel (its row exists).
fn channel_no(tx: &Transaction<'_>, channel: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT no FROM channel WHERE channel = ?1")?
        .query_row([channel], |r| r.get(0))
}

/// Writes rows of one table: `update` (parameters ?1 ch, ?2 key, ?3 id, then
/// the columns) changes the row of that id if there is one, else `insert`
/// (the same parameters) adds it. Ids sharing a key are told apart by `id`.
struct Upsert<'t> {
    update: rusqlite::CachedStatement<'t>,
    insert: rusqlite::CachedStatement<'t>,
}

impl<'t> Upsert<'t> {
    fn new(tx: &'t Transaction<'_>, update: &str, insert: &str) -> rusqlite::Result<Self> {
        Ok(Upsert {
            update: tx.prepare_cached(update)?,
            insert: tx.prepare_cached(insert)?,
        })
    }

    fn run(&mut self, params: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<()> {
        if self.update.execute(params)? == 0 {
            self.insert.execute(params)?;
        }
        Ok(())
    }
}

/// The rows with their ids' keys, in key order: the statements then visit
/// the `(ch, key)` indexes' pages in order (each once per fold) instead of
/// jumping around them.
fn by_key<T>(rows: &[T], id: impl Fn(&T) -> &str, salt: u64) -> Vec<(i64, &T)> {
    let mut v: Vec<(i64, &T)> = rows
        .iter()
        .map(|r| (schema::id_key(salt, id(r)), r))
        .collect();
    v.sort_unstable_by_key(|(k, _)| *k);
    v
}

fn write_channel<'a, 't>(
    tx: &'t Transaction<'_>,
    ch: &'a ChannelChanges,
    salt: u64,
) -> rusqlite::Result<()> {
    let name = ch.channel.as_str();
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
                name,
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
                .execute([name])?;
        }
    }
    let c = channel_no(tx, name)?;
    // The `message` rows these writes share, free and delete.
    let mut msgs = Messages::default();
    // Tables that may hold rows of the channel: the others are not searched.
    for (t, upserts) in [
        ch.log_upserts.len(),
        ch.outgoing_upserts.len(),
        ch.incoming_upserts.len(),
    ]
    .into_iter()
    .enumerate()
    {
        msgs.present[t] = upserts > 0
            || tx
                .prepare_cached(&format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE ch = ?1)",
                    schema::MESSAGE_TABLES[t]
                ))?
                .query_row([c], |r| r.get(0))?;
    }
    msgs.remember = [
        !ch.outgoing_upserts.is_empty() || !ch.incoming_upserts.is_empty(),
        !ch.incoming_upserts.is_empty(),
        false,
    ];
    // The deletes of the tables holding messages come first: a message
    // delivered from `incoming` to `log` then finds its `message` row among
    // the deleted rows' (no lookup in the other tables). An id both
    // upserted and deleted in one table is deleted (the upsert is skipped):
    // the same as upserts then deletes, as in the in-memory reference store.
    for (table, ids) in [
        (LOG, &ch.log_deletes),
        (OUTGOING, &ch.outgoing_deletes),
        (INCOMING, &ch.incoming_deletes),
    ] {
        if ids.is_empty() {
            continue;
        }
        let mut st = tx.prepare_cached(&format!(
            "DELETE FROM {} WHERE ch = ?1 AND key = ?2 AND id = ?3 RETURNING msg",
            schema::MESSAGE_TABLES[table]
        ))?;
        for (k, id) in by_key(ids, |id| id, salt) {
            let mut rows = st.query(params![c, k, id])?;
            while let Some(r) = rows.next()? {
                msgs.deleted(k, id, r.get(0)?);
            }
        }
    }
    let deleted = |ids: &'a [String], upserts: usize| -> Option<HashSet<&'a str>> {
        (upserts > 0 && !ids.is_empty()).then(|| ids.iter().map(String::as_str).collect())
    };
    let log_deleted = deleted(&ch.log_deletes, ch.log_upserts.len());
    let outgoing_deleted = deleted(&ch.outgoing_deletes, ch.outgoing_upserts.len());
    let incoming_deleted = deleted(&ch.incoming_deletes, ch.incoming_upserts.len());
    let kept = |set: &Option<HashSet<&str>>, id: &str| set.as_ref().is_none_or(|s| !s.contains(id));
    if !ch.log_upserts.is_empty() {
        let mut update = tx.prepare_cached(
            "UPDATE log SET seq = ?4, msg = ?5, hint = ?6 WHERE ch = ?1 AND key = ?2 AND id = ?3",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO log (ch, key, id, seq, msg, hint) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (k, r) in by_key(&ch.log_upserts, |r| &r.id, salt) {
            if !kept(&log_deleted, &r.id) {
                continue;
            }
            let (cur, m) = msgs.row_for(tx, LOG, (c, k, &r.id), &r.message)?;
            let p = params![c, k, r.id, to_sql(r.seq), m, r.hint.as_deref()];
            if cur.is_some() {
                update.execute(p)?;
            } else {
                insert.execute(p)?;
            }
            msgs.replaced(k, &r.id, cur, m);
        }
    }
    if !ch.outgoing_upserts.is_empty() {
        let mut update = tx.prepare_cached(
            "UPDATE outgoing SET seq = ?4, msg = ?5, attempts = ?6, last_sent = ?7, \
             resend_at = ?8, ackers = ?9 WHERE ch = ?1 AND key = ?2 AND id = ?3",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO outgoing (ch, key, id, seq, msg, attempts, last_sent, resend_at, \
             ackers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (k, r) in by_key(&ch.outgoing_upserts, |r| &r.id, salt) {
            if !kept(&outgoing_deleted, &r.id) {
                continue;
            }
            let (cur, m) = msgs.row_for(tx, OUTGOING, (c, k, &r.id), &r.message)?;
            let p = params![
                c,
                k,
                r.id,
                to_sql(r.seq),
                m,
                r.attempts,
                to_sql(r.last_sent),
                to_sql(r.resend_at),
                encode_ids(&r.ackers),
            ];
            if cur.is_some() {
                update.execute(p)?;
            } else {
                insert.execute(p)?;
            }
            msgs.replaced(k, &r.id, cur, m);
        }
    }
    if !ch.incoming_upserts.is_empty() {
        let mut update = tx.prepare_cached(
            "UPDATE incoming SET msg = ?4, hint = ?5, unmet = ?6, lost = ?7, \
             timeout_at = ?8, deps = ?9 WHERE ch = ?1 AND key = ?2 AND id = ?3",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO incoming (ch, key, id, msg, hint, unmet, lost, timeout_at, deps) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (k, r) in by_key(&ch.incoming_upserts, |r| &r.id, salt) {
            if !kept(&incoming_deleted, &r.id) {
                continue;
            }
            // Positions in the causal history when they say it all (version 5).
            let deps = (!r.unmet.is_empty() || !r.lost.is_empty())
                .then(|| history_ids(&r.message))
                .flatten()
                .and_then(|h| encode_deps(&h, &r.unmet, &r.lost));
            let (unmet, lost) = match deps {
                Some(_) => (Vec::new(), Vec::new()),
                None => (encode_ids(&r.unmet), encode_ids(&r.lost)),
            };
            let (cur, m) = msgs.row_for(tx, INCOMING, (c, k, &r.id), &r.message)?;
            let p = params![
                c,
                k,
                r.id,
                m,
                r.hint.as_deref(),
                unmet,
                lost,
                to_sql(r.timeout_at),
                deps,
            ];
            if cur.is_some() {
                update.execute(p)?;
            } else {
                insert.execute(p)?;
            }
            msgs.replaced(k, &r.id, cur, m);
        }
    }
    if !ch.repair_out_upserts.is_empty() {
        let mut st = Upsert::new(
            tx,
            "UPDATE repair_out SET entry_id = ?4, entry_hint = ?5, entry_sender = ?6, \
             attempts = ?7, due = ?8, expires_at = ?9 WHERE ch = ?1 AND key = ?2 AND id = ?3",
            "INSERT INTO repair_out (ch, key, id, entry_id, entry_hint, entry_sender, attempts, \
             due, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (k, r) in by_key(&ch.repair_out_upserts, |r| &r.id, salt) {
            st.run(params![
                c,
                k,
                r.id,
                (r.entry.message_id != r.id).then_some(&r.entry.message_id),
                r.entry.retrieval_hint.as_deref(),
                r.entry.sender_id,
                r.attempts,
                r.due.map(to_sql),
                to_sql(r.expires_at),
            ])?;
        }
    }
    if !ch.repair_in_upserts.is_empty() {
        let mut st = Upsert::new(
            tx,
            "UPDATE repair_in SET t_resp = ?4 WHERE ch = ?1 AND key = ?2 AND id = ?3",
            "INSERT INTO repair_in (ch, key, id, t_resp) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (k, r) in by_key(&ch.repair_in_upserts, |r| &r.id, salt) {
            st.run(params![c, k, r.id, to_sql(r.t_resp)])?;
        }
    }
    if !ch.remembered_upserts.is_empty() {
        let mut st = Upsert::new(
            tx,
            "UPDATE remembered SET seq = ?5 WHERE ch = ?1 AND key = ?2 AND id = ?3 AND kind = ?4",
            "INSERT INTO remembered (ch, key, id, kind, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (k, r) in by_key(&ch.remembered_upserts, |r| &r.id, salt) {
            st.run(params![
                c,
                k,
                r.id,
                remembered_to_sql(r.kind),
                to_sql(r.seq)
            ])?;
        }
    }
    for (table, ids) in [
        ("repair_out", &ch.repair_out_deletes),
        ("repair_in", &ch.repair_in_deletes),
    ] {
        if ids.is_empty() {
            continue;
        }
        let mut st = tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE ch = ?1 AND key = ?2 AND id = ?3"
        ))?;
        for (k, id) in by_key(ids, |id| id, salt) {
            st.execute(params![c, k, id])?;
        }
    }
    if !ch.remembered_deletes.is_empty() {
        let mut st = tx.prepare_cached(
            "DELETE FROM remembered WHERE ch = ?1 AND kind = ?2 AND key = ?3 AND id = ?4",
        )?;
        for (k, (kind, id)) in by_key(&ch.remembered_deletes, |(_, id)| id, salt) {
            st.execute(params![c, remembered_to_sql(*kind), k, id])?;
        }
    }
    msgs.delete(tx, c)
}

/// Indexes into `schema::MESSAGE_TABLES`.
const LOG: usize = 0;
const OUTGOING: usize = 1;
const INCOMING: usize = 2;

/// The two tables of `schema::MESSAGE_TABLES` other than `table`.
fn other_tables(table: usize) -> (usize, usize) {
    match table {
        LOG => (OUTGOING, INCOMING),
        OUTGOING => (LOG, INCOMING),
        _ => (LOG, OUTGOING),
    }
}

/// The statement in `slot`, prepared (from the statement cache) on first use.
fn prepared<'s, 't>(
    slot: &'s mut Option<rusqlite::CachedStatement<'t>>,
    tx: &'t Transaction<'_>,
    sql: impl FnOnce() -> String,
) -> rusqlite::Result<&'s mut rusqlite::CachedStatement<'t>> {
    if slot.is_none() {
        *slot = Some(tx.prepare_cached(&sql())?);
    }
    Ok(slot.as_mut().expect("prepared above"))
}

/// The `message` rows of one channel's writes: those to share, and those
/// that a row stopped referring to (replaced or deleted), deleted at the
/// end if no row of the id refers to them any more.
#[derive(Default)]
struct Messages<'a, 't> {
    /// (key, id, msg) of rows deleted or replaced.
    rows: Vec<(i64, &'a str, i64)>,
    /// The `msg` of the rows deleted (before the upserts), by id.
    freed: HashMap<&'a str, Vec<i64>>,
    /// Freed ones an upsert refers to again.
    reused: HashSet<i64>,
    /// The `message` rows (and their bytes) that upserted rows refer to, by
    /// id; kept only for upserts of a table followed by upserts of another.
    known: HashMap<&'a str, Vec<(i64, &'a [u8])>>,
    /// Per table of `schema::MESSAGE_TABLES`: whether it may hold rows of
    /// the channel (it did before the writes, or is upserted).
    present: [bool; 3],
    /// Per table: whether its upserts are remembered in `known` (a later
    /// table has upserts).
    remember: [bool; 3],
    /// Statements, per table: the row's `msg`; the lookup of the id in
    /// every present table.
    row_st: [Option<rusqlite::CachedStatement<'t>>; 3],
    lookup_st: [Option<rusqlite::CachedStatement<'t>>; 3],
    holds_st: Option<rusqlite::CachedStatement<'t>>,
    insert_st: Option<rusqlite::CachedStatement<'t>>,
}

impl<'a, 't> Messages<'a, 't> {
    /// The `msg` of the row of `table` for (ch, key, id), if there is one.
    fn row_msg(
        &mut self,
        tx: &'t Transaction<'_>,
        table: usize,
        (c, k, id): (i64, i64, &str),
    ) -> rusqlite::Result<Option<i64>> {
        if !self.present[table] {
            return Ok(None);
        }
        prepared(&mut self.row_st[table], tx, || {
            format!(
                "SELECT msg FROM {} WHERE ch = ?1 AND key = ?2 AND id = ?3",
                schema::MESSAGE_TABLES[table]
            )
        })?
        .query_row(params![c, k, id], |r| r.get(0))
        .optional()
    }

    /// Whether `message` row `m` holds `bytes`.
    fn holds(&mut self, tx: &'t Transaction<'_>, m: i64, bytes: &[u8]) -> rusqlite::Result<bool> {
        Ok(prepared(&mut self.holds_st, tx, || {
            "SELECT message = ?2 FROM message WHERE rowid = ?1".into()
        })?
        .query_row(params![m, bytes], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
    }

    /// For an upsert of `table`'s row of (ch, key, id) with message
    /// `bytes`: the row's current `msg` (None: no row yet), and the
    /// `message` row to refer to, the first that holds these bytes of: one
    /// an earlier upsert of this channel's writes refers to (a sent
    /// message: `log`, then `outgoing`; compared in memory), the current
    /// one, one of a row of the id deleted by these writes (a message
    /// delivered from `incoming` to `log`), one that the id's row in
    /// another of the three tables refers to; else a new one. The bytes are
    /// written once per message.
    fn row_for(
        &mut self,
        tx: &'t Transaction<'_>,
        table: usize,
        (c, k, id): (i64, i64, &'a str),
        bytes: &'a [u8],
    ) -> rusqlite::Result<(Option<i64>, i64)> {
        let known = if self.known.is_empty() {
            None
        } else {
            self.known
                .get(id)
                .and_then(|v| v.iter().find(|(_, b)| *b == bytes))
                .map(|&(m, _)| m)
        };
        let freed = !self.freed.is_empty() && self.freed.contains_key(id);
        let mut others = [None; 2];
        let (a, b) = other_tables(table);
        let cur = if known.is_some() || freed {
            self.row_msg(tx, table, (c, k, id))?
        } else {
            // One statement for the lookups in the tables that may hold the id.
            let present = self.present;
            let mut cur = None;
            if present.iter().any(|&p| p) {
                let st = prepared(&mut self.lookup_st[table], tx, || {
                    let parts: Vec<String> = [(0, table), (1, a), (2, b)]
                        .into_iter()
                        .filter(|&(_, t)| present[t])
                        .map(|(tag, t)| {
                            format!(
                                "SELECT {tag}, msg FROM {} WHERE ch = ?1 AND key = ?2 AND id = ?3",
                                schema::MESSAGE_TABLES[t]
                            )
                        })
                        .collect();
                    parts.join(" UNION ALL ")
                })?;
                let mut rows = st.query(params![c, k, id])?;
                while let Some(r) = rows.next()? {
                    match r.get::<_, i64>(0)? {
                        0 => cur = Some(r.get(1)?),
                        1 => others[0] = Some(r.get(1)?),
                        _ => others[1] = Some(r.get(1)?),
                    }
                }
            }
            cur
        };
        let found = 'found: {
            if let Some(m) = known {
                break 'found Some(m);
            }
            if let Some(m) = cur {
                if self.holds(tx, m, bytes)? {
                    break 'found Some(m);
                }
            }
            if freed {
                let candidates = self.freed.get(id).cloned().unwrap_or_default();
                for m in candidates {
                    if Some(m) != cur && self.holds(tx, m, bytes)? {
                        self.reused.insert(m);
                        break 'found Some(m);
                    }
                }
                // Not among them: the other tables' rows.
                others = [
                    self.row_msg(tx, a, (c, k, id))?,
                    self.row_msg(tx, b, (c, k, id))?,
                ];
            }
            for m in others.into_iter().flatten() {
                if Some(m) != cur && self.holds(tx, m, bytes)? {
                    break 'found Some(m);
                }
            }
            None
        };
        let m = match found {
            Some(m) => m,
            None => {
                prepared(&mut self.insert_st, tx, || {
                    "INSERT INTO message (message) VALUES (?1)".into()
                })?
                .execute([bytes])?;
                tx.last_insert_rowid()
            }
        };
        if known.is_none() && self.remember[table] {
            self.known.entry(id).or_default().push((m, bytes));
        }
        Ok((cur, m))
    }

    /// The row of (key, id) referred to `old` and now to `new`.
    fn replaced(&mut self, k: i64, id: &'a str, old: Option<i64>, new: i64) {
        if let Some(old) = old {
            if old != new {
                self.rows.push((k, id, old));
            }
        }
    }

    /// The row of (key, id), referring to `m`, was deleted.
    fn deleted(&mut self, k: i64, id: &'a str, m: i64) {
        self.rows.push((k, id, m));
        self.freed.entry(id).or_default().push(m);
    }

    /// Deletes the `message` rows no row refers to any more.
    fn delete(mut self, tx: &Transaction<'_>, c: i64) -> rusqlite::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        self.rows.sort_unstable_by_key(|&(_, _, m)| m);
        self.rows.dedup_by_key(|&mut (_, _, m)| m);
        let mut used = tx.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM log WHERE ch = ?1 AND key = ?2 AND id = ?3 AND msg = ?4) \
             OR EXISTS (SELECT 1 FROM outgoing WHERE ch = ?1 AND key = ?2 AND id = ?3 AND msg = ?4) \
             OR EXISTS (SELECT 1 FROM incoming WHERE ch = ?1 AND key = ?2 AND id = ?3 AND msg = ?4)",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM message WHERE rowid = ?1")?;
        for (k, id, m) in self.rows {
            if self.reused.contains(&m) {
                continue;
            }
            if !used.query_row(params![c, k, id, m], |r| r.get::<_, bool>(0))? {
                delete.execute([m])?;
            }
        }
        Ok(())
    }
}

/// Folds the `journal` table's rows (if `table_rows`), then the append
/// file's pending records, into the tables (inside the caller's transaction)
/// without the changes of channel `except`; empties the table and records
/// `folded`.
fn fold(
    tx: &Transaction<'_>,
    table_rows: bool,
    pending: &[Bytes],
    folded: u64,
    except: Option<&str>,
    salt: u64,
) -> Result<(), LoadError> {
    let mut sets = Vec::new();
    if table_rows {
        let mut st = tx.prepare_cached("SELECT n, changes FROM journal ORDER BY n")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(0)?;
            let bytes = Bytes::copy_from_slice(r.get_ref(1)?.as_blob()?);
            sets.push(journal::decode(&bytes).ok_or_else(|| bad_journal(n))?);
        }
    }
    // Records already in the tables are not applied twice (a fold whose
    // commit succeeded but which was reported as failed, and is retried).
    let in_tables = if pending.is_empty() {
        0
    } else {
        read_folded(tx)?
    };
    for (i, row) in pending.iter().enumerate() {
        let seq = folded - pending.len() as u64 + 1 + i as u64;
        if seq <= in_tables {
            continue;
        }
        sets.push(journal::decode(row).ok_or_else(|| bad_record(seq))?);
    }
    if let Some(channel) = except {
        for cs in &mut sets {
            cs.channels.retain(|c| c.channel != channel);
        }
    }
    // One write per changed row (its last value), in key order: see journal::coalesce.
    for ch in journal::coalesce(sets) {
        write_channel(tx, &ch, salt)?;
    }
    if table_rows {
        tx.prepare_cached("DELETE FROM journal")?.execute([])?;
    }
    if !pending.is_empty() {
        tx.prepare_cached("UPDATE journal_file SET folded = ?1 WHERE id = 0")?
            .execute([to_sql(folded)])?;
    }
    Ok(())
}

fn bad_record(seq: u64) -> LoadError {
    LoadError::Bad(bad_record_cause(seq))
}

fn bad_record_cause(seq: u64) -> String {
    format!("the append file is corrupt: record {seq} has a valid checksum but is not a change set")
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
        let bytes = Bytes::copy_from_slice(r.get_ref(1)?.as_blob()?);
        out.push(journal::decode(&bytes).ok_or_else(|| bad_journal(n))?);
    }
    Ok(out)
}

/// What [`fold_tx`] writes.
struct FoldInput<'a> {
    /// Whether the `journal` table (version 2) has rows to fold first.
    table_rows: bool,
    /// The append files' records not folded yet, in order; the last is
    /// number `folded`.
    pending: &'a [Bytes],
    folded: u64,
    /// A channel whose changes are left out and whose rows are deleted.
    except: Option<&'a str>,
    /// A change set written after the fold (a large one: see `apply`).
    then: Option<&'a ChangeSet>,
    salt: u64,
    /// `Synchronous::Full`: the setting to restore after the fold's commit.
    sync: bool,
}

/// Folds the journal (the table's rows, then the append files' records)
/// into the tables in one transaction, without the changes of channel
/// `except` whose rows it deletes, then writes `then`. Committed with
/// `synchronous = FULL` when there are records: the caller removes them
/// from the append files next.
fn fold_tx(
    conn: &mut Connection,
    path: &Path,
    input: &FoldInput<'_>,
    doing: &str,
) -> Result<(), StoreError> {
    let synced = !input.pending.is_empty();
    if synced {
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| store_error(path, doing, &e))?;
    }
    let res = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        fold(
            &tx,
            input.table_rows,
            input.pending,
            input.folded,
            input.except,
            input.salt,
        )?;
        for ch in input.then.map_or(&[][..], |cs| &cs.channels[..]) {
            write_channel(&tx, ch, input.salt)?;
        }
        if let Some(channel) = input.except {
            let no: Option<i64> = tx
                .prepare_cached("SELECT no FROM channel WHERE channel = ?1")?
                .query_row([channel], |r| r.get(0))
                .optional()?;
            if let Some(no) = no {
                // A message is referred to only by rows of its own channel.
                tx.prepare_cached(
                    "DELETE FROM message WHERE rowid IN (SELECT msg FROM log WHERE ch = ?1 \
                     UNION SELECT msg FROM outgoing WHERE ch = ?1 \
                     UNION SELECT msg FROM incoming WHERE ch = ?1)",
                )?
                .execute([no])?;
                for table in schema::ID_TABLES {
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE ch = ?1"))?
                        .execute([no])?;
                }
                tx.prepare_cached("DELETE FROM channel WHERE no = ?1")?
                    .execute([no])?;
            }
        }
        tx.commit()?;
        Ok(())
    })();
    if synced {
        let sync = if input.sync { "FULL" } else { "NORMAL" };
        let _ = conn.pragma_update(None, "synchronous", sync);
    }
    match res {
        Ok(()) => Ok(()),
        Err(LoadError::Sql(e)) => Err(store_error(path, doing, &e)),
        Err(LoadError::Bad(s)) => Err(plain(path, doing, s)),
    }
}

impl SqliteStore {
    /// Waits for the fold in flight, if any. If it failed, its records stay
    /// the backlog (folded by the next write) and its error is kept for the
    /// next write to report.
    fn join_fold(&mut self) -> Result<(), ()> {
        let Some(a) = &mut self.append else {
            return Ok(());
        };
        let Some(b) = &mut a.backlog else {
            return Ok(());
        };
        let Some(handle) = b.fold.take() else {
            return Ok(());
        };
        let res = handle.join().unwrap_or_else(|_| {
            Err(plain(
                &self.path,
                "cannot fold the append file into the tables (in the background)",
                "the folding thread panicked",
            ))
        });
        match res {
            Ok(emptied) => {
                let slot = &mut a.slots[1 - a.active];
                if emptied {
                    slot.len = 0;
                }
                a.backlog = None;
                Ok(())
            }
            Err(e) => {
                b.error = Some(e);
                Err(())
            }
        }
    }

    /// Waits for the fold in flight and reports its failure, if it failed
    /// and that was not reported yet (the records are kept: the next write
    /// folds them). [`Drop`] waits too; tests use this to wait for the
    /// folding thread without sleeping.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let _ = self.join_fold();
        match self.append.as_mut().and_then(|a| a.backlog.as_mut()) {
            Some(b) => b.error.take().map_or(Ok(()), Err),
            None => Ok(()),
        }
    }

    /// Hands the active file's records to a new folding thread and makes
    /// the other file (empty, or holding only folded records) the active
    /// one. There must be no backlog.
    fn hand_off(&mut self) -> Result<(), StoreError> {
        let doing = "cannot apply a change set (handing the append file to the folder)";
        let a = self.append.as_mut().expect("read-write");
        debug_assert!(a.backlog.is_none());
        let other = 1 - a.active;
        let slot = &a.slots[other];
        std::io::Seek::seek(&mut &*slot.file, std::io::SeekFrom::Start(slot.len))
            .map_err(|e| plain(&self.path, doing, appendfile::io_cause(&slot.path, &e)))?;
        let active = &a.slots[a.active];
        let job = FoldJob {
            conn: Arc::clone(&self.conn),
            db: self.path.clone(),
            file: Arc::clone(&active.file),
            file_path: active.path.clone(),
            first: a.first,
            count: a.pending(),
            salt: self.salt,
            sync: a.sync,
        };
        // Tests' short keys are set per thread: the folder uses the caller's.
        #[cfg(test)]
        let bits = schema::test_key_bits();
        let handle = std::thread::Builder::new()
            .name("sds-sqlite-fold".into())
            .spawn(move || {
                #[cfg(test)]
                schema::set_test_key_bits(bits);
                job.run()
            })
            .map_err(|e| plain(&self.path, doing, format!("cannot start a thread ({e})")))?;
        a.backlog = Some(Backlog {
            first: a.first,
            last: a.next - 1,
            fold: Some(handle),
            error: None,
        });
        a.active = other;
        a.first = a.next;
        a.pending_bytes = 0;
        Ok(())
    }

    /// Folds the journal (the table's rows, then the append files' records)
    /// into the tables in one transaction on the caller's thread, after
    /// waiting for a fold in flight, without the changes of channel `except`
    /// whose rows it deletes; then empties the append files.
    ///
    /// `then`, if given, is a change set written after the fold in the same
    /// transaction (a large one: see `apply`).
    fn fold_journal_except(
        &mut self,
        except: Option<&str>,
        then: Option<&ChangeSet>,
        doing: &str,
    ) -> Result<(), StoreError> {
        // Its failure does not matter: its records are folded here.
        let _ = self.join_fold();
        let path = self.path.clone();
        let (pending, folded, sync) = match &self.append {
            Some(a) => (
                a.read_pending().map_err(|e| plain(&path, doing, e))?,
                a.next - 1,
                a.sync,
            ),
            None => (Vec::new(), 0, false),
        };
        let input = FoldInput {
            table_rows: self.journal_rows > 0,
            pending: &pending,
            folded,
            except,
            then,
            salt: self.salt,
            sync,
        };
        fold_tx(&mut self.conn(), &path, &input, doing)?;
        drop(pending);
        self.journal_rows = 0;
        self.journal_bytes = 0;
        if let Some(a) = &mut self.append {
            // Folded records left behind by a failure here are skipped when
            // the files are read (their sequence numbers are <= folded).
            for slot in &mut a.slots {
                if slot.len > 0 && empty_file(&slot.file) {
                    slot.len = 0;
                }
            }
            let active = &a.slots[a.active];
            let _ = std::io::Seek::seek(&mut &*active.file, std::io::SeekFrom::Start(active.len));
            a.backlog = None;
            a.first = a.next;
            a.pending_bytes = 0;
        }
        Ok(())
    }

    /// Folds the journal into the tables in one transaction.
    fn fold_journal(&mut self) -> Result<(), StoreError> {
        self.fold_journal_except(None, None, "cannot fold the journal into the tables")
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

/// Column `col` of a row joined with its `message` row (`msg_col`: the
/// row's `msg`): the message's bytes; a missing `message` row is corruption.
fn stored_message(
    r: &rusqlite::Row<'_>,
    (col, msg_col): (usize, usize),
    table: &str,
    id: &str,
) -> Result<Bytes, LoadError> {
    match r.get::<_, Option<Vec<u8>>>(col)? {
        Some(b) => Ok(Bytes::from(b)),
        None => {
            let m: i64 = r.get(msg_col)?;
            Err(LoadError::Bad(format!(
                "the database is corrupt: table {table}, id {id:?}: its message (row {m} of \
                 table message) is missing"
            )))
        }
    }
}

fn read_snapshots(tx: &Transaction<'_>) -> Result<Vec<ChannelSnapshot>, LoadError> {
    let mut chans: BTreeMap<String, ChannelSnapshot> = BTreeMap::new();
    // Channel numbers (`ch`) to names.
    let mut names: HashMap<i64, String> = HashMap::new();
    fn entry<'m>(
        m: &'m mut BTreeMap<String, ChannelSnapshot>,
        names: &HashMap<i64, String>,
        table: &str,
        ch: i64,
        id: &str,
    ) -> Result<&'m mut ChannelSnapshot, LoadError> {
        let c = names.get(&ch).ok_or_else(|| {
            LoadError::Bad(format!(
                "the database is corrupt: table {table}, id {id:?}: unknown channel number {ch}"
            ))
        })?;
        Ok(m.get_mut(c).expect("every channel row has a snapshot"))
    }

    {
        let mut st = tx.prepare(
            "SELECT channel, dialect, sync, lamport, next_seq, last_broadcast, sync_due, \
             rng_state, no FROM channel ORDER BY channel",
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
            names.insert(r.get(8)?, c.clone());
            chans.insert(
                c.clone(),
                ChannelSnapshot {
                    channel: c,
                    meta,
                    ..Default::default()
                },
            );
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT l.ch, l.id, l.seq, m.message, l.hint, l.msg FROM log l \
                 LEFT JOIN message m ON m.rowid = l.msg ORDER BY l.ch, l.seq, l.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(1)?;
            let message = stored_message(r, (3, 5), "log", &id)?;
            let snap = entry(&mut chans, &names, "log", r.get(0)?, &id)?;
            let rec = LogRecord {
                id,
                seq: from_sql(r.get(2)?),
                message,
                hint: r.get::<_, Option<Vec<u8>>>(4)?.map(Bytes::from),
            };
            snap.log.push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT o.ch, o.id, o.seq, m.message, o.attempts, o.last_sent, o.resend_at, \
             o.ackers, o.msg FROM outgoing o LEFT JOIN message m ON m.rowid = o.msg \
             ORDER BY o.ch, o.seq, o.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let ch: i64 = r.get(0)?;
            let c = names.get(&ch).map_or("?", String::as_str);
            let id: String = r.get(1)?;
            let ackers = ids_column("outgoing", c, &id, "ackers", &r.get::<_, Vec<u8>>(7)?)?;
            let attempts = u32_column("outgoing", c, &id, "attempts", r.get(4)?)?;
            let rec = OutgoingRecord {
                seq: from_sql(r.get(2)?),
                message: stored_message(r, (3, 8), "outgoing", &id)?,
                attempts,
                last_sent: from_sql(r.get(5)?),
                resend_at: from_sql(r.get(6)?),
                ackers,
                id,
            };
            entry(&mut chans, &names, "outgoing", ch, &rec.id)?
                .outgoing
                .push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT i.ch, i.id, m.message, i.hint, i.unmet, i.lost, i.timeout_at, i.deps, \
             i.msg FROM incoming i LEFT JOIN message m ON m.rowid = i.msg ORDER BY i.ch, i.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let ch: i64 = r.get(0)?;
            let c = names.get(&ch).map_or("?", String::as_str);
            let id: String = r.get(1)?;
            let message = stored_message(r, (2, 8), "incoming", &id)?;
            let mut unmet = ids_column("incoming", c, &id, "unmet", &r.get::<_, Vec<u8>>(4)?)?;
            let mut lost = ids_column("incoming", c, &id, "lost", &r.get::<_, Vec<u8>>(5)?)?;
            if let Some(deps) = r.get::<_, Option<Vec<u8>>>(7)? {
                let bad_deps = || {
                    bad(
                        "incoming",
                        c,
                        &id,
                        "column deps is not a list of positions in its message's causal history",
                    )
                };
                let history = history_ids(&message).ok_or_else(bad_deps)?;
                let (u, l) = decode_deps(&deps, &history).ok_or_else(bad_deps)?;
                if !unmet.is_empty() || !lost.is_empty() {
                    return Err(bad(
                        "incoming",
                        c,
                        &id,
                        "both column deps and columns unmet, lost hold dependencies",
                    ));
                }
                (unmet, lost) = (u, l);
            }
            let rec = IncomingRecord {
                message,
                hint: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                unmet,
                lost,
                timeout_at: from_sql(r.get(6)?),
                id,
            };
            entry(&mut chans, &names, "incoming", ch, &rec.id)?
                .incoming
                .push(rec);
        }
    }
    {
        let mut st = tx.prepare(
            "SELECT ch, id, entry_id, entry_hint, entry_sender, attempts, due, expires_at \
             FROM repair_out ORDER BY ch, id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let ch: i64 = r.get(0)?;
            let c = names.get(&ch).map_or("?", String::as_str);
            let id: String = r.get(1)?;
            let attempts = u32_column("repair_out", c, &id, "attempts", r.get(5)?)?;
            let rec = RepairOutRecord {
                entry: HistoryEntry {
                    message_id: r.get::<_, Option<String>>(2)?.unwrap_or_else(|| id.clone()),
                    retrieval_hint: r.get::<_, Option<Vec<u8>>>(3)?.map(Bytes::from),
                    sender_id: r.get(4)?,
                },
                attempts,
                due: r.get::<_, Option<i64>>(6)?.map(from_sql),
                expires_at: from_sql(r.get(7)?),
                id,
            };
            entry(&mut chans, &names, "repair_out", ch, &rec.id)?
                .repair_out
                .push(rec);
        }
    }
    {
        let mut st = tx.prepare("SELECT ch, id, t_resp FROM repair_in ORDER BY ch, id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(1)?;
            let snap = entry(&mut chans, &names, "repair_in", r.get(0)?, &id)?;
            snap.repair_in.push(RepairInRecord {
                id,
                t_resp: from_sql(r.get(2)?),
            });
        }
    }
    {
        let mut st =
            tx.prepare("SELECT ch, kind, id, seq FROM remembered ORDER BY ch, kind, seq, id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let ch: i64 = r.get(0)?;
            let c = names.get(&ch).map_or("?", String::as_str);
            let id: String = r.get(2)?;
            let kind = match r.get::<_, i64>(1)? {
                0 => Remembered::Evicted,
                1 => Remembered::Met,
                2 => Remembered::Unannounced,
                3 => Remembered::OwnNews,
                k => return Err(bad("remembered", c, &id, &format!("unknown kind {k}"))),
            };
            let rec = RememberedRecord {
                kind,
                id,
                seq: from_sql(r.get(3)?),
            };
            entry(&mut chans, &names, "remembered", ch, &rec.id)?
                .remembered
                .push(rec);
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
        // The tables and the append files are read when no fold is in flight.
        let _ = self.join_fold();
        let mut conn = self.conn();
        // One read transaction: every table is read from the same snapshot.
        // A reader without the writer's lock reads the append file after
        // its snapshot of the tables, and again if a fold committed meanwhile
        // (the records it folded may be gone from the file).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let tx = conn
                .transaction()
                .map_err(|e| store_error(&path, doing, &e))?;
            let read =
                read_snapshots(&tx).and_then(|s| Ok((s, read_journal(&tx)?, read_folded(&tx)?)));
            let (snaps, mut sets, folded) = match read {
                Ok(r) => r,
                Err(LoadError::Sql(e)) => return Err(store_error(&path, doing, &e)),
                Err(LoadError::Bad(s)) => return Err(plain(&path, doing, s)),
            };
            tx.finish().map_err(|e| store_error(&path, doing, &e))?;
            let records = match &self.append {
                Some(a) => a.read_pending().map_err(|e| plain(&path, doing, e))?,
                None => {
                    let records = appendfile::read_payloads(&path, folded).map_err(|e| {
                        let file = appendfile::path_for(&path);
                        plain(&path, doing, appendfile::io_cause(&file, &e))
                    })?;
                    let now = read_folded(&conn).map_err(|e| store_error(&path, doing, &e))?;
                    if now != folded && attempts < 100 {
                        continue;
                    }
                    records
                }
            };
            for (i, row) in records.iter().enumerate() {
                let seq = folded + 1 + i as u64;
                match journal::decode(row) {
                    Some(cs) => sets.push(cs),
                    None => return Err(plain(&path, doing, bad_record_cause(seq))),
                }
            }
            return Ok(if sets.is_empty() {
                snaps
            } else {
                journal::replay(snaps, &sets)
            });
        }
    }

    fn apply(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.channels.is_empty() {
            return Ok(());
        }
        let doing = "cannot apply a change set";
        let Some(a) = &self.append else {
            return Err(plain(&self.path, doing, "the store was opened read-only"));
        };
        // A large change set (a cascade delivering thousands of buffered
        // messages) goes straight into the tables, with the journal folded
        // first in the same transaction: through the append file it would be
        // encoded, written, read back, decoded and coalesced, only to fill
        // the journal and be folded by the next write. If the transaction
        // fails, nothing of the change set is written.
        if journal::approx_bytes(changes) >= journal::DIRECT_BYTES {
            return self.fold_journal_except(None, Some(changes), doing);
        }
        let over = |s: &Self, a: &Append, times: u64| {
            s.journal_rows + a.pending() >= times * s.fold_rows
                || s.journal_bytes + a.pending_bytes >= times * journal::FOLD_BYTES
        };
        let full = |s: &Self, a: &Append| over(s, a, 1);
        if !self.background || self.journal_rows > 0 {
            // A full journal is folded first; if that fails (disk full,
            // busy), the change set is refused and nothing of it is written.
            if full(self, a) {
                self.fold_journal_except(
                    None,
                    None,
                    "cannot apply a change set (folding the journal into the tables first)",
                )?;
            }
        } else {
            // A fold that ended is reaped (one check of a flag otherwise).
            if a.backlog
                .as_ref()
                .and_then(|b| b.fold.as_ref())
                .is_some_and(|h| h.is_finished())
            {
                let _ = self.join_fold();
            }
            let a = self.append.as_mut().expect("read-write");
            if let Some(b) = &mut a.backlog {
                // A failed background fold: reported once, by this write
                // (which writes nothing, as when a fold before it fails);
                // the next write folds the records itself.
                if let Some(e) = b.error.take() {
                    return Err(e);
                }
                if b.fold.is_none() {
                    self.fold_journal_except(
                        None,
                        None,
                        "cannot apply a change set (folding the journal into the tables first)",
                    )?;
                }
            }
            let a = self.append.as_ref().expect("read-write");
            // While a fold runs, the active file takes more records (the next
            // fold folds them in one larger, cheaper-per-row batch), up to
            // `OVERRUN` times the threshold; then the write waits for it.
            let waits = a.backlog.is_none() || over(self, a, OVERRUN);
            if full(self, a) && waits {
                // Back-pressure: the other file's fold must be done first.
                if self.join_fold().is_err() {
                    let a = self.append.as_mut().expect("read-write");
                    if let Some(e) = a.backlog.as_mut().and_then(|b| b.error.take()) {
                        return Err(e);
                    }
                }
                if self.hand_off().is_err() {
                    // No thread (or the other file cannot be positioned):
                    // folded here instead.
                    self.fold_journal_except(
                        None,
                        None,
                        "cannot apply a change set (folding the journal into the tables first)",
                    )?;
                }
            }
        }
        // One record appended to the append file, one write: see appendfile.rs.
        let path = &self.path;
        let a = self.append.as_mut().expect("read-write");
        let mut record = std::mem::take(&mut a.buf);
        record.clear();
        record.resize(appendfile::HEADER, 0);
        journal::encode_into(&mut record, changes);
        appendfile::seal(&mut record, a.next);
        let slot = &mut a.slots[a.active];
        let res = appendfile::append(&slot.file, &mut slot.len, &record, a.sync);
        let payload = (record.len() - appendfile::HEADER) as u64;
        // A very large change set does not keep its buffer.
        if record.capacity() <= 1 << 20 {
            a.buf = record;
        }
        res.map_err(|e| plain(path, doing, appendfile::io_cause(&slot.path, &e)))?;
        a.pending_bytes += payload;
        a.next += 1;
        Ok(())
    }

    /// Folds the journal without the channel's changes and deletes its rows,
    /// in one transaction; then empties the append file.
    fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError> {
        let doing = format!("cannot drop channel {channel:?}");
        if self.append.is_none() {
            return Err(plain(&self.path, &doing, "the store was opened read-only"));
        }
        self.fold_journal_except(Some(channel), None, &doing)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        SqliteStore::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sds::store::MemoryStore;

    fn log_set(channel: &str, first: u64, n: u64) -> ChangeSet {
        ChangeSet {
            channels: vec![ChannelChanges {
                channel: channel.into(),
                log_upserts: (first..first + n)
                    .map(|i| LogRecord {
                        id: format!("m{i}"),
                        seq: i,
                        message: Bytes::from(vec![i as u8; 40]),
                        hint: None,
                    })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    /// Snapshots with the log in id order (as `MemoryStore` returns it).
    fn by_id(mut snaps: Vec<ChannelSnapshot>) -> Vec<ChannelSnapshot> {
        for s in &mut snaps {
            s.log.sort_by(|a, b| a.id.cmp(&b.id));
        }
        snaps
    }

    /// Writes a change set as rows folded into the tables of versions 1 to
    /// 3, and applies it to the reference store.
    fn write_folded_v3(tx: &Transaction<'_>, set: &ChangeSet, mem: &mut MemoryStore) {
        for ch in journal::coalesce(vec![set.clone()]) {
            write_v3(tx, &ch);
        }
        mem.apply(set).unwrap();
    }

    /// Writes a change set as a row of version 2's `journal` table (not yet
    /// folded), and applies it to the reference store.
    fn write_journal_row(tx: &Transaction<'_>, set: &ChangeSet, mem: &mut MemoryStore) {
        tx.execute(
            "INSERT INTO journal (changes) VALUES (?1)",
            [journal::encode(set)],
        )
        .unwrap();
        mem.apply(set).unwrap();
    }

    /// Writes rows with the layout of versions 1 to 3 (keyed by channel and id).
    fn write_v3(tx: &Transaction<'_>, ch: &ChannelChanges) {
        let c = ch.channel.as_str();
        match &ch.meta {
            Some(m) => tx.execute(
                "INSERT OR REPLACE INTO channel (channel, dialect, sync, lamport, next_seq, \
                 last_broadcast, sync_due, rng_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c,
                    dialect_to_sql(m.dialect),
                    m.sync,
                    to_sql(m.lamport),
                    to_sql(m.next_seq),
                    to_sql(m.last_broadcast),
                    to_sql(m.sync_due),
                    to_sql(m.rng_state),
                ],
            ),
            None => tx.execute("INSERT OR IGNORE INTO channel (channel) VALUES (?1)", [c]),
        }
        .unwrap();
        for r in &ch.log_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO log (channel, id, seq, message, hint) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c, r.id, to_sql(r.seq), &r.message[..], r.hint.as_deref()],
            )
            .unwrap();
        }
        for r in &ch.outgoing_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO outgoing (channel, id, seq, message, attempts, \
                 last_sent, resend_at, ackers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c,
                    r.id,
                    to_sql(r.seq),
                    &r.message[..],
                    r.attempts,
                    to_sql(r.last_sent),
                    to_sql(r.resend_at),
                    encode_ids(&r.ackers)
                ],
            )
            .unwrap();
        }
        for r in &ch.incoming_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO incoming (channel, id, message, hint, unmet, lost, \
                 timeout_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    c,
                    r.id,
                    &r.message[..],
                    r.hint.as_deref(),
                    encode_ids(&r.unmet),
                    encode_ids(&r.lost),
                    to_sql(r.timeout_at)
                ],
            )
            .unwrap();
        }
        for r in &ch.repair_out_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO repair_out (channel, id, entry_id, entry_hint, \
                 entry_sender, attempts, due, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c,
                    r.id,
                    r.entry.message_id,
                    r.entry.retrieval_hint.as_deref(),
                    r.entry.sender_id,
                    r.attempts,
                    r.due.map(to_sql),
                    to_sql(r.expires_at)
                ],
            )
            .unwrap();
        }
        for r in &ch.repair_in_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO repair_in (channel, id, t_resp) VALUES (?1, ?2, ?3)",
                params![c, r.id, to_sql(r.t_resp)],
            )
            .unwrap();
        }
        for r in &ch.remembered_upserts {
            tx.execute(
                "INSERT OR REPLACE INTO remembered (channel, kind, id, seq) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![c, remembered_to_sql(r.kind), r.id, to_sql(r.seq)],
            )
            .unwrap();
        }
    }

    /// Rows of every table over `channels`, with ids `k0`.. `k{n-1}`.
    fn all_tables(channels: &[&str], n: u64, round: u64) -> ChangeSet {
        let ids = |p: &'static str| (0..n).map(move |i| format!("{p}{i}"));
        ChangeSet {
            channels: channels
                .iter()
                .map(|&ch| ChannelChanges {
                    channel: ch.into(),
                    meta: (ch != "bare").then(|| ChannelMeta {
                        dialect: Dialect::Nim,
                        sync: Some(round % 2 == 0),
                        lamport: 7 + round,
                        next_seq: n,
                        last_broadcast: 3,
                        sync_due: 4,
                        rng_state: u64::MAX - round,
                    }),
                    log_upserts: ids("k")
                        .enumerate()
                        .map(|(i, id)| LogRecord {
                            id,
                            seq: i as u64,
                            message: Bytes::from(format!("log {ch} {i} {round}")),
                            hint: (i % 2 == 0).then(|| Bytes::from_static(b"h")),
                        })
                        .collect(),
                    outgoing_upserts: ids("k")
                        .enumerate()
                        .map(|(i, id)| OutgoingRecord {
                            id,
                            seq: i as u64,
                            message: Bytes::from(format!("out {ch} {i} {round}")),
                            attempts: i as u32 + round as u32,
                            last_sent: 5,
                            resend_at: 6,
                            ackers: vec!["bob".into(), format!("a{round}")],
                        })
                        .collect(),
                    incoming_upserts: ids("i")
                        .map(|id| IncomingRecord {
                            message: Bytes::from(format!("in {ch} {id} {round}")),
                            hint: None,
                            unmet: vec![format!("u{round}")],
                            lost: vec![],
                            timeout_at: 9 + round,
                            id,
                        })
                        .collect(),
                    repair_out_upserts: ids("r")
                        .map(|id| RepairOutRecord {
                            entry: HistoryEntry {
                                message_id: id.clone(),
                                retrieval_hint: None,
                                sender_id: Some("carol".into()),
                            },
                            attempts: round as u32,
                            due: (round % 2 == 1).then_some(10),
                            expires_at: 20 + round,
                            id,
                        })
                        .collect(),
                    repair_in_upserts: ids("q")
                        .map(|id| RepairInRecord {
                            id,
                            t_resp: 30 + round,
                        })
                        .collect(),
                    remembered_upserts: ids("k")
                        .flat_map(|id| {
                            [Remembered::Met, Remembered::Unannounced].map(|kind| {
                                RememberedRecord {
                                    kind,
                                    id: id.clone(),
                                    seq: 4 + round,
                                }
                            })
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    /// A database at schema `version` with the store's application id, as
    /// an older build left it (WAL mode, no rows).
    /// The salt of the files [`file_at_version`] makes (from version 4 on).
    const OLD_FILE_SALT: u64 = 0x5eed;

    fn file_at_version(path: &std::path::Path, version: usize) -> Connection {
        let c = Connection::open(path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        // The functions the version-4 migration uses (see SqliteStore::migrate).
        c.create_scalar_function("sds_id_salt", 0, FunctionFlags::SQLITE_UTF8, |_| {
            Ok(OLD_FILE_SALT as i64)
        })
        .unwrap();
        c.create_scalar_function("sds_id_key", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
            Ok(schema::id_key(OLD_FILE_SALT, ctx.get_raw(0).as_str()?))
        })
        .unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for sql in &schema::MIGRATIONS[..version] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", version as i64)
            .unwrap();
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        tx.commit().unwrap();
        c
    }

    /// A version-3 file with rows in every table, in two channels and in
    /// one named without settings, unfolded records in the append file and
    /// leftover rows in the journal table, is migrated to version 4 with
    /// all of them; it can be written and folded afterwards.
    #[test]
    fn version_3_file_is_migrated_to_version_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let mut mem = MemoryStore::new();
        {
            let c = file_at_version(&path, 3);
            let tx = c.unchecked_transaction().unwrap();
            let folded = all_tables(&["chat", "bare", "ops"], 5, 0);
            write_folded_v3(&tx, &folded, &mut mem);
            let cs = all_tables(&["chat"], 2, 1);
            write_journal_row(&tx, &cs, &mut mem);
            tx.commit().unwrap();
        }
        // Two unfolded records in the append file (sequence numbers 1 and 2).
        let mut file = Vec::new();
        for (seq, cs) in [
            (1, all_tables(&["ops"], 3, 2)),
            (2, all_tables(&["new"], 2, 3)),
        ] {
            file.extend(appendfile::frame(seq, &journal::encode(&cs)));
            mem.apply(&cs).unwrap();
        }
        std::fs::write(appendfile::path_for(&path), &file).unwrap();
        let expected = journal::replay(mem.load().unwrap(), &[]);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::LATEST);
        assert_eq!(s.load().unwrap(), expected);
        drop(s); // folds
        let c = Connection::open(&path).unwrap();
        // The SQL function exists only while migrating; the keys are checked in Rust.
        assert!(c
            .query_row("SELECT sds_id_key('a')", [], |r| r.get::<_, i64>(0))
            .is_err());
        let mut st = c.prepare("SELECT id, key FROM log").unwrap();
        let rows: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!rows.is_empty());
        let salt: i64 = c
            .query_row("SELECT salt FROM id_salt WHERE id = 0", [], |r| r.get(0))
            .unwrap();
        for (id, key) in rows {
            assert_eq!(key, schema::id_key(salt as u64, &id), "{id}");
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), expected);
        // Still writable: every table changes, a channel is dropped.
        let cs = all_tables(&["chat", "bare"], 4, 4);
        s.apply(&cs).unwrap();
        mem.apply(&cs).unwrap();
        s.drop_channel("ops").unwrap();
        mem.drop_channel("ops").unwrap();
        let expected = journal::replay(mem.load().unwrap(), &[]);
        assert_eq!(s.load().unwrap(), expected);
        drop(s);
        assert_eq!(SqliteStore::open(&path).unwrap().load().unwrap(), expected);
    }

    /// A version-4 file's buffered messages and repair entries are migrated
    /// to version 5 and load as written: dependency lists stay lists until
    /// the row is rewritten, then become positions in the causal history
    /// when they can (not for bytes that are not a message); an entry id
    /// equal to the row's id is no longer stored twice.
    #[test]
    fn version_4_file_is_migrated_to_version_5() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        let history: Vec<HistoryEntry> = ["m1", "m2", "m0"]
            .map(|id| HistoryEntry {
                message_id: id.into(),
                retrieval_hint: None,
                sender_id: Some("bob".into()),
            })
            .to_vec();
        let message = sds::store::encode_message("bob", "m3", 3, &history, &Bytes::from("hi"));
        let incoming = vec![
            IncomingRecord {
                id: "m3".into(),
                message,
                hint: None,
                unmet: vec!["m0".into(), "m2".into()],
                lost: vec!["m1".into()],
                timeout_at: 9,
            },
            IncomingRecord {
                id: "x".into(),
                message: Bytes::from("not a message"),
                hint: Some(Bytes::from("h")),
                unmet: vec!["y".into()],
                lost: vec![],
                timeout_at: 10,
            },
        ];
        let repair_out = vec![
            RepairOutRecord {
                id: "m1".into(),
                entry: history[0].clone(),
                attempts: 1,
                due: Some(5),
                expires_at: 6,
            },
            RepairOutRecord {
                id: "r2".into(),
                entry: HistoryEntry {
                    message_id: "other".into(),
                    retrieval_hint: Some(Bytes::from("hint")),
                    sender_id: None,
                },
                attempts: 2,
                due: None,
                expires_at: 7,
            },
        ];
        {
            let c = file_at_version(&path, 4);
            c.execute(
                "INSERT INTO channel (no, channel, dialect, lamport, next_seq, last_broadcast, \
                 sync_due, rng_state) VALUES (1, 'chat', 0, 1, 2, 3, 4, 5)",
                [],
            )
            .unwrap();
            let key = |id: &str| schema::id_key(OLD_FILE_SALT, id);
            for r in &incoming {
                c.execute(
                    "INSERT INTO incoming (ch, key, id, message, hint, unmet, lost, timeout_at) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        key(&r.id),
                        r.id,
                        &r.message[..],
                        r.hint.as_deref(),
                        encode_ids(&r.unmet),
                        encode_ids(&r.lost),
                        to_sql(r.timeout_at)
                    ],
                )
                .unwrap();
            }
            for r in &repair_out {
                c.execute(
                    "INSERT INTO repair_out (ch, key, id, entry_id, entry_hint, entry_sender, \
                     attempts, due, expires_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        key(&r.id),
                        r.id,
                        r.entry.message_id,
                        r.entry.retrieval_hint.as_deref(),
                        r.entry.sender_id,
                        r.attempts,
                        r.due.map(to_sql),
                        to_sql(r.expires_at)
                    ],
                )
                .unwrap();
            }
        }
        let raw = |sql: &str| -> Vec<(String, Option<Vec<u8>>, i64)> {
            let c = Connection::open(&path).unwrap();
            let mut st = c.prepare(sql).unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows
        };
        let loaded = |s: &mut SqliteStore| {
            let snaps = s.load().unwrap();
            assert_eq!(snaps.len(), 1);
            (snaps[0].incoming.clone(), snaps[0].repair_out.clone())
        };
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::LATEST);
        assert_eq!(loaded(&mut s), (incoming.clone(), repair_out.clone()));
        drop(s);
        assert_eq!(
            raw("SELECT id, CAST(entry_id AS BLOB), 0 FROM repair_out ORDER BY id"),
            vec![
                ("m1".into(), None, 0),
                ("r2".into(), Some(b"other".to_vec()), 0)
            ]
        );
        let in_rows = "SELECT id, deps, length(unmet) + length(lost) FROM incoming ORDER BY id";
        assert_eq!(
            raw(in_rows),
            vec![("m3".into(), None, 3 * 3), ("x".into(), None, 2)]
        );
        // Rewritten rows: positions where the history has the ids.
        let mut s = SqliteStore::open(&path).unwrap();
        s.apply(&ChangeSet {
            channels: vec![ChannelChanges {
                channel: "chat".into(),
                incoming_upserts: incoming.clone(),
                ..Default::default()
            }],
        })
        .unwrap();
        drop(s); // folds
        assert_eq!(
            raw(in_rows),
            vec![
                ("m3".into(), Some(vec![2, 2, 1, 1, 0]), 0),
                ("x".into(), None, 2)
            ]
        );
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(loaded(&mut s), (incoming, repair_out));
        drop(s);
        // Positions that do not fit the message are a corrupt row.
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE incoming SET deps = X'0109' WHERE id = 'm3'", [])
            .unwrap();
        let err = SqliteStore::open(&path).unwrap().load().unwrap_err();
        assert!(err.0.contains("column deps"), "{err}");
    }

    /// A change set of more than `DIRECT_BYTES` is written into the tables
    /// with the pending records in one transaction, not appended: the
    /// append file is empty afterwards, the tables hold both, and the state
    /// is the reference store's (also after reopening). A small one after it
    /// is appended as usual.
    #[test]
    fn large_change_set_is_written_into_the_tables_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.db");
        let append_len = || {
            std::fs::metadata(appendfile::path_for(&path))
                .unwrap()
                .len()
        };
        let mut s = SqliteStore::open(&path).unwrap();
        let mut mem = MemoryStore::new();
        let small = log_set("c", 0, 3);
        s.apply(&small).unwrap();
        mem.apply(&small).unwrap();
        assert!(append_len() > 0);
        // Replaces one row of the small set, adds others, deletes another.
        let mut big = log_set("c", 2, 80);
        for r in &mut big.channels[0].log_upserts {
            r.message = Bytes::from(vec![7u8; 64 << 10]);
        }
        big.channels[0].log_deletes.push("m0".into());
        assert!(journal::approx_bytes(&big) >= journal::DIRECT_BYTES);
        assert!(journal::approx_bytes(&small) < journal::DIRECT_BYTES);
        s.apply(&big).unwrap();
        mem.apply(&big).unwrap();
        assert_eq!(append_len(), 0);
        let rows: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 81);
        let expected = journal::replay(mem.load().unwrap(), &[]);
        assert_eq!(s.load().unwrap(), expected);
        let after = log_set("c", 100, 1);
        s.apply(&after).unwrap();
        mem.apply(&after).unwrap();
        assert!(append_len() > 0);
        let expected = journal::replay(mem.load().unwrap(), &[]);
        assert_eq!(s.load().unwrap(), expected);
        drop(s);
        assert_eq!(SqliteStore::open(&path).unwrap().load().unwrap(), expected);
    }

    /// A deterministic generator for the randomized tests: `next(n)` is in `0..n`.
    fn xorshift(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    /// A store on `name` in `dir` that folds its journal every 3 change sets.
    fn folding_store(dir: &Path, name: &str) -> (PathBuf, SqliteStore) {
        let path = dir.join(name);
        let options = Options {
            journal_fold_rows: 3,
            ..Options::default()
        };
        let s = SqliteStore::open_with(&path, &options).unwrap();
        (path, s)
    }

    /// Ids whose keys collide are still told apart: with keys of 2 bits (so
    /// most ids share a key with others), random upserts and deletes of every
    /// table give what the in-memory reference store gives, folded after
    /// every few change sets.
    #[test]
    fn ids_sharing_a_key_are_told_apart() {
        schema::set_test_key_bits(Some(2));
        assert_eq!(schema::id_key(7, "k0") >> 2, 0);
        let dir = tempfile::tempdir().unwrap();
        let (path, mut s) = folding_store(dir.path(), "collide.db");
        let mut mem = MemoryStore::new();
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for round in 0..60 {
            let mut cs = all_tables(&["a", "b"], 1 + next(12), round);
            for c in &mut cs.channels {
                for _ in 0..next(6) {
                    let id = format!("k{}", next(12));
                    c.log_deletes.push(id.clone());
                    c.outgoing_deletes.push(format!("k{}", next(12)));
                    c.incoming_deletes.push(format!("i{}", next(12)));
                    c.repair_out_deletes.push(format!("r{}", next(12)));
                    c.repair_in_deletes.push(format!("q{}", next(12)));
                    c.remembered_deletes.push((Remembered::Met, id));
                }
                // Upserts of only some ids, so that the others keep older rows.
                let keep = next(4) as usize;
                c.log_upserts.retain(|r| r.id.len() % 4 != keep);
                c.incoming_upserts.truncate(next(12) as usize);
            }
            s.apply(&cs).unwrap();
            mem.apply(&cs).unwrap();
            let expected = journal::replay(mem.load().unwrap(), &[]);
            assert_eq!(s.load().unwrap(), expected, "round {round}");
        }
        drop(s);
        let expected = journal::replay(mem.load().unwrap(), &[]);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), expected);
        // Several ids per key in the tables.
        let per_key: i64 = s
            .conn()
            .query_row(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM log GROUP BY ch, key)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(per_key >= 2, "{per_key}");
        s.drop_channel("a").unwrap();
        mem.drop_channel("a").unwrap();
        assert_eq!(s.load().unwrap(), journal::replay(mem.load().unwrap(), &[]));
        schema::set_test_key_bits(None);
    }

    /// `message` rows: one per distinct (channel, id, bytes) of the rows of
    /// `log`, `outgoing` and `incoming` in `snaps` (shared, and none left over).
    fn assert_one_copy_per_message(conn: &Connection, snaps: &[ChannelSnapshot]) {
        let mut distinct = std::collections::HashSet::new();
        for s in snaps {
            let msgs = (s.log.iter().map(|r| (&r.id, &r.message)))
                .chain(s.outgoing.iter().map(|r| (&r.id, &r.message)))
                .chain(s.incoming.iter().map(|r| (&r.id, &r.message)));
            for (id, m) in msgs {
                distinct.insert((s.channel.clone(), id.clone(), m.clone()));
            }
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM message", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows as usize, distinct.len());
    }

    /// Messages of one id in several tables with equal or different bytes:
    /// random upserts and deletes of `log`, `outgoing` and `incoming` (ids
    /// sharing keys, folds every few change sets, a channel dropped) give
    /// the reference store's state, with one `message` row per distinct
    /// message and none left behind; also when a change set is written
    /// into the tables as it is (a large one, not coalesced: an id may be
    /// upserted and deleted in one table).
    #[test]
    fn messages_are_stored_once_and_deleted_with_their_last_row() {
        schema::set_test_key_bits(Some(2));
        let dir = tempfile::tempdir().unwrap();
        let (path, mut s) = folding_store(dir.path(), "shared.db");
        let mut mem = MemoryStore::new();
        let mut next = xorshift(0x1234_5678_9ABC_DEF1);
        for round in 0..80 {
            let mut channels = Vec::new();
            for ch in ["a", "b"] {
                let mut c = ChannelChanges {
                    channel: ch.into(),
                    ..Default::default()
                };
                // Bytes: one of two versions per id, so most upserts of an
                // id in another table share a copy, some do not.
                let bytes = |id: &str, v: u64| Bytes::from(format!("{ch} {id} v{v}"));
                for _ in 0..next(6) {
                    let id = format!("m{}", next(10));
                    match next(6) {
                        0 | 1 => c.log_upserts.push(LogRecord {
                            seq: next(100),
                            message: bytes(&id, next(2)),
                            hint: None,
                            id,
                        }),
                        2 => c.outgoing_upserts.push(OutgoingRecord {
                            seq: next(100),
                            message: bytes(&id, next(2)),
                            attempts: round as u32,
                            last_sent: 1,
                            resend_at: 2,
                            ackers: vec![],
                            id,
                        }),
                        3 => c.incoming_upserts.push(IncomingRecord {
                            message: bytes(&id, next(2)),
                            hint: None,
                            unmet: vec!["u".into()],
                            lost: vec![],
                            timeout_at: round,
                            id,
                        }),
                        4 => c.log_deletes.push(id),
                        _ => {
                            c.incoming_deletes.push(id.clone());
                            c.outgoing_deletes.push(id);
                        }
                    }
                }
                // One change set never upserts an id twice in one table.
                let mut seen = std::collections::HashSet::new();
                c.log_upserts.retain(|r| seen.insert(r.id.clone()));
                seen.clear();
                c.outgoing_upserts.retain(|r| seen.insert(r.id.clone()));
                seen.clear();
                c.incoming_upserts.retain(|r| seen.insert(r.id.clone()));
                channels.push(c);
            }
            let cs = ChangeSet { channels };
            if round % 5 == 4 {
                // As a large change set is written: not coalesced, after a fold.
                s.fold_journal_except(None, Some(&cs), "direct").unwrap();
            } else {
                s.apply(&cs).unwrap();
            }
            mem.apply(&cs).unwrap();
            let expected = journal::replay(mem.load().unwrap(), &[]);
            assert_eq!(s.load().unwrap(), expected, "round {round}");
            if s.pending_rows() == 0 {
                assert_one_copy_per_message(&s.conn(), &expected);
            }
        }
        drop(s);
        let expected = journal::replay(mem.load().unwrap(), &[]);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), expected);
        assert_one_copy_per_message(&s.conn(), &expected);
        s.drop_channel("a").unwrap();
        mem.drop_channel("a").unwrap();
        let expected = journal::replay(mem.load().unwrap(), &[]);
        assert_eq!(s.load().unwrap(), expected);
        assert_one_copy_per_message(&s.conn(), &expected);
        schema::set_test_key_bits(None);
    }

    /// Writes a coalesced change set as rows of version 5 (every row with
    /// its own copy of its message; dependencies as ids).
    fn write_v5(tx: &Transaction<'_>, ch: &ChannelChanges) {
        let key = |id: &str| schema::id_key(OLD_FILE_SALT, id);
        match &ch.meta {
            Some(m) => tx.execute(
                "INSERT INTO channel (channel, dialect, sync, lamport, next_seq, \
                 last_broadcast, sync_due, rng_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ch.channel,
                    dialect_to_sql(m.dialect),
                    m.sync,
                    to_sql(m.lamport),
                    to_sql(m.next_seq),
                    to_sql(m.last_broadcast),
                    to_sql(m.sync_due),
                    to_sql(m.rng_state),
                ],
            ),
            None => tx.execute("INSERT INTO channel (channel) VALUES (?1)", [&ch.channel]),
        }
        .unwrap();
        let c = tx.last_insert_rowid();
        for r in &ch.log_upserts {
            tx.execute(
                "INSERT INTO log (ch, key, id, seq, message, hint) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    c,
                    key(&r.id),
                    r.id,
                    to_sql(r.seq),
                    &r.message[..],
                    r.hint.as_deref()
                ],
            )
            .unwrap();
        }
        for r in &ch.outgoing_upserts {
            tx.execute(
                "INSERT INTO outgoing (ch, key, id, seq, message, attempts, last_sent, \
                 resend_at, ackers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    c,
                    key(&r.id),
                    r.id,
                    to_sql(r.seq),
                    &r.message[..],
                    r.attempts,
                    to_sql(r.last_sent),
                    to_sql(r.resend_at),
                    encode_ids(&r.ackers)
                ],
            )
            .unwrap();
        }
        for r in &ch.incoming_upserts {
            tx.execute(
                "INSERT INTO incoming (ch, key, id, message, hint, unmet, lost, timeout_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c,
                    key(&r.id),
                    r.id,
                    &r.message[..],
                    r.hint.as_deref(),
                    encode_ids(&r.unmet),
                    encode_ids(&r.lost),
                    to_sql(r.timeout_at)
                ],
            )
            .unwrap();
        }
        for r in &ch.repair_out_upserts {
            tx.execute(
                "INSERT INTO repair_out (ch, key, id, entry_id, entry_hint, entry_sender, \
                 attempts, due, expires_at) VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c,
                    key(&r.id),
                    r.id,
                    r.entry.retrieval_hint.as_deref(),
                    r.entry.sender_id,
                    r.attempts,
                    r.due.map(to_sql),
                    to_sql(r.expires_at)
                ],
            )
            .unwrap();
        }
        for r in &ch.repair_in_upserts {
            tx.execute(
                "INSERT INTO repair_in (ch, key, id, t_resp) VALUES (?1, ?2, ?3, ?4)",
                params![c, key(&r.id), r.id, to_sql(r.t_resp)],
            )
            .unwrap();
        }
        for r in &ch.remembered_upserts {
            tx.execute(
                "INSERT INTO remembered (ch, kind, key, id, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    c,
                    remembered_to_sql(r.kind),
                    key(&r.id),
                    r.id,
                    to_sql(r.seq)
                ],
            )
            .unwrap();
        }
    }

    /// A version-5 file with rows of every kind in three channels (one
    /// without settings), where some messages are stored in two or three
    /// tables with equal bytes (a sent message in `log` and `outgoing`, a
    /// buffered one also in `log`) and others with different bytes, opens
    /// as version 6 with the same loaded state, one `message` row per
    /// distinct message, and takes new change sets like a fresh file.
    #[test]
    fn version_5_file_is_migrated_to_one_copy_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        let mut mem = MemoryStore::new();
        let mut cs = all_tables(&["a", "b", "bare"], 4, 1);
        for c in &mut cs.channels {
            // k0: log and outgoing share bytes; k1: all three tables do;
            // k2, k3: log and outgoing differ; i0..i3 only in incoming.
            let log0 = c.log_upserts[0].message.clone();
            c.outgoing_upserts[0].message = log0;
            let log1 = c.log_upserts[1].message.clone();
            c.outgoing_upserts[1].message = log1.clone();
            let mut shared = c.incoming_upserts[0].clone();
            shared.id = "k1".into();
            shared.message = log1;
            c.incoming_upserts.push(shared);
            // An incoming message whose bytes only outgoing also holds.
            let mut out_only = c.incoming_upserts[1].clone();
            out_only.id = "k2".into();
            out_only.message = c.outgoing_upserts[2].message.clone();
            c.incoming_upserts.push(out_only);
        }
        {
            let conn = file_at_version(&path, 5);
            let tx = conn.unchecked_transaction().unwrap();
            for ch in journal::coalesce(vec![cs.clone()]) {
                write_v5(&tx, &ch);
            }
            tx.commit().unwrap();
            mem.apply(&cs).unwrap();
        }
        let expected = journal::replay(mem.load().unwrap(), &[]);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 6);
        assert_eq!(s.load().unwrap(), expected);
        assert_one_copy_per_message(&s.conn(), &expected);
        // Per channel with settings: 4 log + 2 outgoing (k2, k3) + 4 incoming (i0..i3).
        let rows: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM message", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3 * 10);
        // New change sets: deliveries, deletes, a dropped channel.
        let mut next = all_tables(&["a"], 2, 2);
        next.channels[0].incoming_deletes = vec!["k1".into(), "i0".into()];
        next.channels[0].outgoing_deletes = vec!["k0".into(), "k2".into()];
        s.apply(&next).unwrap();
        mem.apply(&next).unwrap();
        s.drop_channel("b").unwrap();
        mem.drop_channel("b").unwrap();
        drop(s);
        let expected = journal::replay(mem.load().unwrap(), &[]);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), expected);
        assert_one_copy_per_message(&s.conn(), &expected);
    }

    /// Records written since the last fold that vanish from the append file
    /// (another program cut it) are an error naming how many are missing,
    /// not a silent loss.
    #[test]
    fn vanished_pending_records_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.db");
        let mut s = SqliteStore::open(&path).unwrap();
        for k in 0..3 {
            s.apply(&log_set("chat", k, 1)).unwrap();
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(appendfile::path_for(&path))
            .unwrap()
            .set_len(0)
            .unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(
            e.contains(
                "3 of the 3 records written since the last fold are missing or corrupt \
                 (was the file changed by another program?)"
            ),
            "{e}"
        );
        drop(s); // its fold fails the same way, and is best effort
    }

    /// A version-2 file (the journal as a table) with rows in the tables and
    /// in the journal table is migrated to the latest version with all of them.
    #[test]
    fn version_2_file_with_journal_rows_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let mut mem = MemoryStore::new();
        {
            let c = file_at_version(&path, 2);
            let tx = c.unchecked_transaction().unwrap();
            // Folded rows in the tables, unfolded change sets in the journal.
            let folded = log_set("chat", 0, 3);
            write_folded_v3(&tx, &folded, &mut mem);
            for k in 0..4 {
                let cs = log_set("chat", 3 + k * 2, 2);
                write_journal_row(&tx, &cs, &mut mem);
            }
            tx.commit().unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), schema::LATEST);
        assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
        // New change sets go to the append file, after the journal's rows.
        let cs = log_set("chat", 11, 2);
        s.apply(&cs).unwrap();
        mem.apply(&cs).unwrap();
        assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
        assert!(appendfile::path_for(&path).metadata().unwrap().len() > 0);
        drop(s); // folds both
        let c = Connection::open(&path).unwrap();
        let rows: i64 = c
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        assert_eq!(read_folded(&c).unwrap(), 1);
        assert_eq!(appendfile::path_for(&path).metadata().unwrap().len(), 0);
        assert_eq!(
            by_id(SqliteStore::open(&path).unwrap().load().unwrap()),
            by_id(mem.load().unwrap())
        );
    }

    /// After a crash: a torn last record is cut off, records already folded
    /// (a crash between a fold's commit and the truncation) are skipped, and
    /// the store goes on appending after what is valid.
    #[test]
    fn torn_and_stale_records_are_ignored_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let mut mem = MemoryStore::new();
        let mut s = SqliteStore::open(&live).unwrap();
        for k in 0..3 {
            let cs = log_set("c", k, 1);
            s.apply(&cs).unwrap();
            mem.apply(&cs).unwrap();
        }
        // A kill: the files as they are now (dropping the store would fold).
        let path = dir.path().join("t.db");
        let jpath = appendfile::path_for(&path);
        for suffix in ["", "-wal", "-sds-journal", "-sds-journal-2"] {
            let from = format!("{}{suffix}", live.display());
            if std::path::Path::new(&from).exists() {
                std::fs::copy(&from, format!("{}{suffix}", path.display())).unwrap();
            }
        }
        drop(s);
        let before = std::fs::read(&jpath).unwrap();
        let mut torn = before.clone();
        torn.extend_from_slice(&appendfile::frame(4, &journal::encode(&log_set("c", 9, 1)))[..20]);
        std::fs::write(&jpath, &torn).unwrap();
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
        let cs = log_set("c", 3, 1);
        s.apply(&cs).unwrap();
        mem.apply(&cs).unwrap();
        let kept = std::fs::read(&jpath).unwrap();
        assert_eq!(&kept[..before.len()], &before[..]);
        drop(s); // folds: the records are in the tables now
                 // A stale file (already folded) is not replayed again.
        std::fs::write(&jpath, &kept).unwrap();
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
        assert_eq!(jpath.metadata().unwrap().len(), 0);
        let cs = log_set("c", 4, 1);
        s.apply(&cs).unwrap();
        mem.apply(&cs).unwrap();
        drop(s);
        assert_eq!(
            by_id(SqliteStore::open(&path).unwrap().load().unwrap()),
            by_id(mem.load().unwrap())
        );
    }

    /// After a crash while a fold was in flight both append files hold
    /// records: they are loaded in sequence order (whichever file they are
    /// in), records the tables already hold (`seq <= folded`) are skipped,
    /// a torn tail is cut off, a file that does not continue the sequence
    /// is ignored, and the store goes on from there.
    #[test]
    fn records_in_both_append_files_are_loaded_in_sequence_order() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |seq, cs: &ChangeSet| appendfile::frame(seq, &journal::encode(cs));
        for gap in [false, true] {
            let path = dir.path().join(format!("two-{gap}.db"));
            let mut mem = MemoryStore::new();
            {
                // Change sets 1 and 2 in the tables (closing folds them).
                let mut s = SqliteStore::open(&path).unwrap();
                for k in 0..2 {
                    let cs = log_set("c", k, 1);
                    s.apply(&cs).unwrap();
                    mem.apply(&cs).unwrap();
                }
            }
            assert_eq!(read_folded(&Connection::open(&path).unwrap()).unwrap(), 2);
            // The second file: records 1 and 2 again, with other contents
            // (left by a truncation that failed; they must not be applied),
            // then 3..=5, the records the folder was folding.
            let ghost = log_set("ghost", 0, 1);
            let mut second = rec(1, &ghost);
            second.extend(rec(2, &ghost));
            for seq in 3..=5 {
                let cs = log_set("c", seq * 10, 2);
                second.extend(rec(seq, &cs));
                mem.apply(&cs).unwrap();
            }
            // The first file: 6..=7 (or 7 only: a gap), written meanwhile,
            // then a torn record.
            let mut first = Vec::new();
            let mut skipped = MemoryStore::new();
            for seq in 6..=7 {
                let cs = log_set("c", seq * 10, 2);
                if gap && seq == 6 {
                    continue;
                }
                first.extend(rec(seq, &cs));
                if gap {
                    skipped.apply(&cs).unwrap();
                } else {
                    mem.apply(&cs).unwrap();
                }
            }
            first.extend(&rec(8, &log_set("c", 99, 1))[..20]);
            let [p0, p1] = appendfile::paths_for(&path);
            std::fs::write(&p0, &first).unwrap();
            std::fs::write(&p1, &second).unwrap();
            let options = Options {
                journal_fold_rows: 2,
                ..Options::default()
            };
            let mut s = SqliteStore::open_with(&path, &options).unwrap();
            assert_eq!(
                by_id(s.load().unwrap()),
                by_id(mem.load().unwrap()),
                "gap {gap}"
            );
            if gap {
                assert_eq!(p0.metadata().unwrap().len(), 0);
            } else {
                assert_eq!(p0.metadata().unwrap().len(), first.len() as u64 - 20);
            }
            // Writing goes on: the backlog is folded first, then in the background.
            for k in 0..7 {
                let cs = log_set("c", 100 + k, 1);
                s.apply(&cs).unwrap();
                mem.apply(&cs).unwrap();
            }
            assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
            drop(s);
            assert_eq!(p0.metadata().unwrap().len(), 0);
            assert_eq!(p1.metadata().unwrap().len(), 0);
            let mut s = SqliteStore::open(&path).unwrap();
            assert_eq!(by_id(s.load().unwrap()), by_id(mem.load().unwrap()));
        }
    }

    /// Random change sets of every table, with folds every 2-5 change sets
    /// running on the store's thread while more are applied (loaded only
    /// now and then, so that folds overlap writes), large change sets
    /// written directly, channels dropped, the store closed and reopened:
    /// always what the in-memory reference store has.
    #[test]
    fn background_folds_overlapping_writes_match_the_reference_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bg.db");
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let mut mem = MemoryStore::new();
        let open = |rows| {
            let options = Options {
                journal_fold_rows: rows,
                ..Options::default()
            };
            SqliteStore::open_with(&path, &options).unwrap()
        };
        let mut s = open(3);
        for round in 0..600u64 {
            let mut cs = all_tables(&["a", "b", "c"], 1 + next(8), round);
            for c in &mut cs.channels {
                for _ in 0..next(5) {
                    c.log_deletes.push(format!("k{}", next(10)));
                    c.outgoing_deletes.push(format!("k{}", next(10)));
                    c.incoming_deletes.push(format!("i{}", next(10)));
                    c.repair_out_deletes.push(format!("r{}", next(10)));
                    c.repair_in_deletes.push(format!("q{}", next(10)));
                }
                let keep = next(4) as usize;
                c.log_upserts.retain(|r| r.id.len() % 4 != keep);
                c.incoming_upserts.truncate(next(10) as usize);
            }
            if next(3) == 0 {
                cs.channels.truncate(1);
            }
            match next(100) {
                0..=1 => {
                    // As a large change set is written: after waiting for
                    // the fold in flight, with the pending records.
                    s.fold_journal_except(None, Some(&cs), "direct").unwrap();
                }
                2 => {
                    s.apply(&cs).unwrap();
                    let ch = ["a", "b", "c"][next(3) as usize];
                    s.drop_channel(ch).unwrap();
                    mem.apply(&cs).unwrap();
                    mem.drop_channel(ch).unwrap();
                    continue;
                }
                3 => {
                    s.apply(&cs).unwrap();
                    drop(s);
                    s = open(2 + next(4) as u32);
                }
                4..=6 => {
                    s.apply(&cs).unwrap();
                    s.flush().unwrap();
                }
                _ => s.apply(&cs).unwrap(),
            }
            mem.apply(&cs).unwrap();
            if round % 37 == 36 {
                let expected = journal::replay(mem.load().unwrap(), &[]);
                assert_eq!(s.load().unwrap(), expected, "round {round}");
            }
        }
        let expected = journal::replay(mem.load().unwrap(), &[]);
        assert_eq!(s.load().unwrap(), expected);
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), expected);
        assert_one_copy_per_message(&s.conn(), &expected);
    }
}
