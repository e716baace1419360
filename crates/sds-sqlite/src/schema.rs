//! The schema and its migrations.
//!
//! The schema version is SQLite's `PRAGMA user_version` (0 for a new, empty
//! file). `MIGRATIONS[i]` upgrades a database from version `i` to `i + 1`;
//! [`LATEST`] is their number. A database whose version is above [`LATEST`]
//! was written by a newer build and is refused.
//!
//! To change the schema, append a migration (never edit a released one): for
//! example version 2 would be `MIGRATIONS[1]`, SQL that turns a version-1
//! database into a version-2 one. All pending migrations run in one
//! transaction when the store is opened, and the version is set in the same
//! transaction, so a crash during a migration leaves the old version intact.
//!
//! Integers are SQLite's signed 64-bit integers; the store writes `u64`
//! values bit for bit (`u64 as i64`) and reads them back the same way, so
//! every value round-trips (ordering by `seq` assumes sequence numbers below
//! 2^63).

/// `PRAGMA application_id` of an sds store ("SDS1").
pub(crate) const APPLICATION_ID: i32 = 0x5344_5331;

/// Version 1: one table per record kind, keyed by (channel, id).
const V1: &str = "
CREATE TABLE channel (
    channel        TEXT PRIMARY KEY NOT NULL,
    -- NULL in all of the following: the channel was named by a change set
    -- that carried no settings (the snapshot's meta is None).
    dialect        INTEGER,            -- 0 spec, 1 nim
    sync           INTEGER,            -- NULL: the dialect's default; 0 or 1
    lamport        INTEGER,
    next_seq       INTEGER,
    last_broadcast INTEGER,
    sync_due       INTEGER,
    rng_state      INTEGER
) WITHOUT ROWID;

CREATE TABLE log (
    channel TEXT NOT NULL,
    id      TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    message BLOB NOT NULL,             -- sds::store::encode_message
    hint    BLOB,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE outgoing (
    channel   TEXT NOT NULL,
    id        TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    message   BLOB NOT NULL,
    attempts  INTEGER NOT NULL,
    last_sent INTEGER NOT NULL,
    resend_at INTEGER NOT NULL,
    ackers    BLOB NOT NULL,           -- list of ids (see codec.rs)
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE incoming (
    channel    TEXT NOT NULL,
    id         TEXT NOT NULL,
    message    BLOB NOT NULL,
    hint       BLOB,
    unmet      BLOB NOT NULL,          -- list of ids
    lost       BLOB NOT NULL,          -- list of ids
    timeout_at INTEGER NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE repair_out (
    channel      TEXT NOT NULL,
    id           TEXT NOT NULL,
    entry_id     TEXT NOT NULL,
    entry_hint   BLOB,
    entry_sender TEXT,
    attempts     INTEGER NOT NULL,
    due          INTEGER,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE repair_in (
    channel TEXT NOT NULL,
    id      TEXT NOT NULL,
    t_resp  INTEGER NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE remembered (
    channel TEXT NOT NULL,
    kind    INTEGER NOT NULL,          -- 0 evicted, 1 met, 2 unannounced, 3 own news
    id      TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (channel, kind, id)
) WITHOUT ROWID;
";

/// Version 2: a change journal (`journal`), and the tables holding messages (log, outgoing, incoming) become
/// rowid tables with a unique index on (channel, id).
///
/// In version 1 they were WITHOUT ROWID tables keyed by (channel, id). Their
/// rows (an encoded message, ~1 KB) are larger than what such a table keeps
/// in a b-tree cell (about a quarter of a page), so every row spilled to
/// overflow pages, and a key search had to read those overflow pages to
/// compare keys. A rowid table stores the row in its own b-tree (appended at
/// the end, as rowids grow), and the index holds only the short key.
const V2: &str = "
CREATE TABLE log_v2 (
    channel TEXT NOT NULL,
    id      TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    message BLOB NOT NULL,
    hint    BLOB
);
INSERT INTO log_v2 (channel, id, seq, message, hint)
    SELECT channel, id, seq, message, hint FROM log ORDER BY channel, seq, id;
DROP TABLE log;
ALTER TABLE log_v2 RENAME TO log;
CREATE UNIQUE INDEX log_key ON log (channel, id);

CREATE TABLE outgoing_v2 (
    channel   TEXT NOT NULL,
    id        TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    message   BLOB NOT NULL,
    attempts  INTEGER NOT NULL,
    last_sent INTEGER NOT NULL,
    resend_at INTEGER NOT NULL,
    ackers    BLOB NOT NULL
);
INSERT INTO outgoing_v2 (channel, id, seq, message, attempts, last_sent, resend_at, ackers)
    SELECT channel, id, seq, message, attempts, last_sent, resend_at, ackers
    FROM outgoing ORDER BY channel, seq, id;
DROP TABLE outgoing;
ALTER TABLE outgoing_v2 RENAME TO outgoing;
CREATE UNIQUE INDEX outgoing_key ON outgoing (channel, id);

CREATE TABLE incoming_v2 (
    channel    TEXT NOT NULL,
    id         TEXT NOT NULL,
    message    BLOB NOT NULL,
    hint       BLOB,
    unmet      BLOB NOT NULL,
    lost       BLOB NOT NULL,
    timeout_at INTEGER NOT NULL
);
INSERT INTO incoming_v2 (channel, id, message, hint, unmet, lost, timeout_at)
    SELECT channel, id, message, hint, unmet, lost, timeout_at FROM incoming ORDER BY channel, id;
DROP TABLE incoming;
ALTER TABLE incoming_v2 RENAME TO incoming;
CREATE UNIQUE INDEX incoming_key ON incoming (channel, id);

-- One row per applied change set not yet folded into the tables above
-- (see journal.rs); replayed in order of n on top of them.
CREATE TABLE journal (
    n       INTEGER PRIMARY KEY,
    changes BLOB NOT NULL
);
";

/// Version 3: change sets are appended to a file next to the database
/// (`<db>-sds-journal`, see `appendfile.rs`) instead of the `journal` table;
/// `journal_file` holds the sequence number of the last record of that file
/// folded into the tables. The `journal` table stays (a version-2 file may
/// hold rows in it; they are older than any record of the file, replayed
/// before them, and folded with them).
const V3: &str = "
CREATE TABLE journal_file (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    folded INTEGER NOT NULL
);
INSERT INTO journal_file (id, folded) VALUES (0, 0);
";

/// The migrations, oldest first: `MIGRATIONS[i]` goes from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Every table holding rows of a channel (for `drop_channel`).
pub(crate) const CHANNEL_TABLES: &[&str] = &[
    "channel",
    "log",
    "outgoing",
    "incoming",
    "repair_out",
    "repair_in",
    "remembered",
];
