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

/// Version 4: rows are found by small integer keys, and row payloads stay out
/// of the key b-trees.
///
/// In version 3 every per-id table was keyed by (channel TEXT, id TEXT): an
/// index entry held the channel name and the whole id (~80 bytes for a
/// 64-character id), and `repair_out`, `repair_in` and `remembered` kept
/// their rows inside a `WITHOUT ROWID` b-tree in key order. A fold writes
/// rows at random places of those b-trees (ids are hashes), so it dirtied
/// most of their pages. Now:
///
/// - `channel` has an integer `no` (its rowid), and a unique index on the name;
///   every other table refers to the channel by `ch`, that number;
/// - every per-id table is a rowid table (rows appended in the order they are
///   written) with the full `id` and `key`, a 64-bit hash of the id
///   ([`id_key`] with the file's random salt, kept in table `id_salt`;
///   registered as the SQL functions `sds_id_key` and `sds_id_salt` for
///   this migration); its index is on (ch, key) (`remembered`: ch, kind, key),
///   about 15 bytes an entry. The index is not unique: two ids may share a
///   key, so every lookup also compares `id`.
///
/// Channels named only by rows of other tables (not written by this store,
/// but possible in a hand-edited file) get a `channel` row without settings.
const V4: &str = "
CREATE TABLE id_salt (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    salt INTEGER NOT NULL
);
INSERT INTO id_salt (id, salt) VALUES (0, sds_id_salt());

CREATE TABLE channel_v4 (
    no             INTEGER PRIMARY KEY,
    channel        TEXT NOT NULL,
    dialect        INTEGER,
    sync           INTEGER,
    lamport        INTEGER,
    next_seq       INTEGER,
    last_broadcast INTEGER,
    sync_due       INTEGER,
    rng_state      INTEGER
);
INSERT INTO channel_v4 (channel, dialect, sync, lamport, next_seq, last_broadcast, sync_due,
                        rng_state)
    SELECT channel, dialect, sync, lamport, next_seq, last_broadcast, sync_due, rng_state
    FROM channel ORDER BY channel;
INSERT INTO channel_v4 (channel)
    SELECT channel FROM log UNION SELECT channel FROM outgoing
    UNION SELECT channel FROM incoming UNION SELECT channel FROM repair_out
    UNION SELECT channel FROM repair_in UNION SELECT channel FROM remembered
    EXCEPT SELECT channel FROM channel;
CREATE UNIQUE INDEX channel_name ON channel_v4 (channel);

CREATE TABLE log_v4 (
    ch      INTEGER NOT NULL,
    key     INTEGER NOT NULL,
    id      TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    message BLOB NOT NULL,
    hint    BLOB
);
INSERT INTO log_v4 (ch, key, id, seq, message, hint)
    SELECT c.no, sds_id_key(t.id), t.id, t.seq, t.message, t.hint
    FROM log t JOIN channel_v4 c ON c.channel = t.channel ORDER BY t.rowid;
DROP TABLE log;
ALTER TABLE log_v4 RENAME TO log;
CREATE INDEX log_key ON log (ch, key);

CREATE TABLE outgoing_v4 (
    ch        INTEGER NOT NULL,
    key       INTEGER NOT NULL,
    id        TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    message   BLOB NOT NULL,
    attempts  INTEGER NOT NULL,
    last_sent INTEGER NOT NULL,
    resend_at INTEGER NOT NULL,
    ackers    BLOB NOT NULL
);
INSERT INTO outgoing_v4 (ch, key, id, seq, message, attempts, last_sent, resend_at, ackers)
    SELECT c.no, sds_id_key(t.id), t.id, t.seq, t.message, t.attempts, t.last_sent,
           t.resend_at, t.ackers
    FROM outgoing t JOIN channel_v4 c ON c.channel = t.channel ORDER BY t.rowid;
DROP TABLE outgoing;
ALTER TABLE outgoing_v4 RENAME TO outgoing;
CREATE INDEX outgoing_key ON outgoing (ch, key);

CREATE TABLE incoming_v4 (
    ch         INTEGER NOT NULL,
    key        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    message    BLOB NOT NULL,
    hint       BLOB,
    unmet      BLOB NOT NULL,
    lost       BLOB NOT NULL,
    timeout_at INTEGER NOT NULL
);
INSERT INTO incoming_v4 (ch, key, id, message, hint, unmet, lost, timeout_at)
    SELECT c.no, sds_id_key(t.id), t.id, t.message, t.hint, t.unmet, t.lost, t.timeout_at
    FROM incoming t JOIN channel_v4 c ON c.channel = t.channel ORDER BY t.rowid;
DROP TABLE incoming;
ALTER TABLE incoming_v4 RENAME TO incoming;
CREATE INDEX incoming_key ON incoming (ch, key);

CREATE TABLE repair_out_v4 (
    ch           INTEGER NOT NULL,
    key          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    entry_id     TEXT NOT NULL,
    entry_hint   BLOB,
    entry_sender TEXT,
    attempts     INTEGER NOT NULL,
    due          INTEGER,
    expires_at   INTEGER NOT NULL
);
INSERT INTO repair_out_v4 (ch, key, id, entry_id, entry_hint, entry_sender, attempts, due,
                           expires_at)
    SELECT c.no, sds_id_key(t.id), t.id, t.entry_id, t.entry_hint, t.entry_sender, t.attempts,
           t.due, t.expires_at
    FROM repair_out t JOIN channel_v4 c ON c.channel = t.channel ORDER BY t.channel, t.id;
DROP TABLE repair_out;
ALTER TABLE repair_out_v4 RENAME TO repair_out;
CREATE INDEX repair_out_key ON repair_out (ch, key);

CREATE TABLE repair_in_v4 (
    ch     INTEGER NOT NULL,
    key    INTEGER NOT NULL,
    id     TEXT NOT NULL,
    t_resp INTEGER NOT NULL
);
INSERT INTO repair_in_v4 (ch, key, id, t_resp)
    SELECT c.no, sds_id_key(t.id), t.id, t.t_resp
    FROM repair_in t JOIN channel_v4 c ON c.channel = t.channel ORDER BY t.channel, t.id;
DROP TABLE repair_in;
ALTER TABLE repair_in_v4 RENAME TO repair_in;
CREATE INDEX repair_in_key ON repair_in (ch, key);

CREATE TABLE remembered_v4 (
    ch   INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    key  INTEGER NOT NULL,
    id   TEXT NOT NULL,
    seq  INTEGER NOT NULL
);
INSERT INTO remembered_v4 (ch, kind, key, id, seq)
    SELECT c.no, t.kind, sds_id_key(t.id), t.id, t.seq
    FROM remembered t JOIN channel_v4 c ON c.channel = t.channel
    ORDER BY t.channel, t.kind, t.id;
DROP TABLE remembered;
ALTER TABLE remembered_v4 RENAME TO remembered;
CREATE INDEX remembered_key ON remembered (ch, kind, key);

DROP TABLE channel;
ALTER TABLE channel_v4 RENAME TO channel;
";

/// Version 5: smaller rows in the tables a receive in random order fills
/// and empties (with 100 000 messages buffered at once, a fold rewrote their
/// pages: 16 KB written per message received, most of it these bytes).
///
/// - `incoming` has a column `deps`: when not NULL, the message's unmet
///   and lost dependencies as positions in its message's causal history
///   (`codec::encode_deps`: a few bytes instead of ~65 per id), and
///   `unmet` and `lost` are empty; when NULL (rows of version 4, no
///   dependencies, or one that is not in the causal history), `unmet` and
///   `lost` hold the ids.
/// - `repair_out.entry_id` is NULL when it is the row's `id` (always, for
///   entries the participant writes), instead of a second copy of the id.
const V5: &str = "
ALTER TABLE incoming ADD COLUMN deps BLOB;

CREATE TABLE repair_out_v5 (
    ch           INTEGER NOT NULL,
    key          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    entry_id     TEXT,               -- NULL: the same as id
    entry_hint   BLOB,
    entry_sender TEXT,
    attempts     INTEGER NOT NULL,
    due          INTEGER,
    expires_at   INTEGER NOT NULL
);
INSERT INTO repair_out_v5 (ch, key, id, entry_id, entry_hint, entry_sender, attempts, due,
                           expires_at)
    SELECT ch, key, id, CASE WHEN entry_id = id THEN NULL ELSE entry_id END, entry_hint,
           entry_sender, attempts, due, expires_at
    FROM repair_out ORDER BY rowid;
DROP TABLE repair_out;
ALTER TABLE repair_out_v5 RENAME TO repair_out;
CREATE INDEX repair_out_key ON repair_out (ch, key);
";

/// Version 6: one stored copy of each message.
///
/// In version 5 `log`, `outgoing` and `incoming` each held the whole encoded
/// message (~1 KB). A message received out of order was written as an
/// `incoming` row, and when delivered that row was deleted (at a random
/// place of the table: rows are appended in arrival order and deleted in
/// delivery order, so a fold dirtied most of its pages) and the same bytes
/// written again as a `log` row; a sent message was stored twice (`log` and
/// `outgoing`). Now the bytes are in table `message`, a rowid table appended
/// in write order and written once, and the three tables hold small rows
/// with `msg`, the rowid of their message. Rows of one id (in any of the
/// three tables) with the same bytes share one `message` row; a `message`
/// row is deleted by the fold that removes the last row referring to it.
/// Migrated rows share a copy where the bytes are equal.
const V6: &str = "
CREATE TABLE message (
    message BLOB NOT NULL              -- sds::store::encode_message
);

-- Every log row's message, with the log row's rowid.
INSERT INTO message (rowid, message) SELECT rowid, message FROM log ORDER BY rowid;

-- Outgoing rows: the log row's copy when the bytes are equal, else a new row.
CREATE TEMP TABLE v6_outgoing (r INTEGER PRIMARY KEY, msg INTEGER, fresh INTEGER NOT NULL);
INSERT INTO v6_outgoing (r, msg, fresh)
    SELECT o.rowid, l.rowid, l.rowid IS NULL
    FROM outgoing o LEFT JOIN log l
        ON l.ch = o.ch AND l.key = o.key AND l.id = o.id AND l.message = o.message
    ORDER BY o.rowid;
UPDATE v6_outgoing SET msg = (SELECT coalesce(max(rowid), 0) FROM message) + r WHERE fresh;
INSERT INTO message (rowid, message)
    SELECT v.msg, o.message FROM v6_outgoing v JOIN outgoing o ON o.rowid = v.r
    WHERE v.fresh ORDER BY v.msg;

-- Incoming rows: the log's or outgoing's copy when the bytes are equal.
CREATE TEMP TABLE v6_incoming (r INTEGER PRIMARY KEY, msg INTEGER, fresh INTEGER NOT NULL);
INSERT INTO v6_incoming (r, msg, fresh)
    SELECT r, msg, msg IS NULL FROM (
        SELECT i.rowid AS r, coalesce(
            (SELECT l.rowid FROM log l
             WHERE l.ch = i.ch AND l.key = i.key AND l.id = i.id AND l.message = i.message),
            (SELECT v.msg FROM outgoing o JOIN v6_outgoing v ON v.r = o.rowid
             WHERE o.ch = i.ch AND o.key = i.key AND o.id = i.id AND o.message = i.message)
        ) AS msg
        FROM incoming i
    ) ORDER BY r;
UPDATE v6_incoming SET msg = (SELECT coalesce(max(rowid), 0) FROM message) + r WHERE fresh;
INSERT INTO message (rowid, message)
    SELECT v.msg, i.message FROM v6_incoming v JOIN incoming i ON i.rowid = v.r
    WHERE v.fresh ORDER BY v.msg;

CREATE TABLE log_v6 (
    ch   INTEGER NOT NULL,
    key  INTEGER NOT NULL,
    id   TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    msg  INTEGER NOT NULL,             -- message.rowid
    hint BLOB
);
INSERT INTO log_v6 (rowid, ch, key, id, seq, msg, hint)
    SELECT rowid, ch, key, id, seq, rowid, hint FROM log ORDER BY rowid;
DROP TABLE log;
ALTER TABLE log_v6 RENAME TO log;
CREATE INDEX log_key ON log (ch, key);

CREATE TABLE outgoing_v6 (
    ch        INTEGER NOT NULL,
    key       INTEGER NOT NULL,
    id        TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    msg       INTEGER NOT NULL,
    attempts  INTEGER NOT NULL,
    last_sent INTEGER NOT NULL,
    resend_at INTEGER NOT NULL,
    ackers    BLOB NOT NULL
);
INSERT INTO outgoing_v6 (rowid, ch, key, id, seq, msg, attempts, last_sent, resend_at, ackers)
    SELECT o.rowid, o.ch, o.key, o.id, o.seq, v.msg, o.attempts, o.last_sent, o.resend_at,
           o.ackers
    FROM outgoing o JOIN v6_outgoing v ON v.r = o.rowid ORDER BY o.rowid;
DROP TABLE outgoing;
ALTER TABLE outgoing_v6 RENAME TO outgoing;
CREATE INDEX outgoing_key ON outgoing (ch, key);

CREATE TABLE incoming_v6 (
    ch         INTEGER NOT NULL,
    key        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    msg        INTEGER NOT NULL,
    hint       BLOB,
    unmet      BLOB NOT NULL,
    lost       BLOB NOT NULL,
    timeout_at INTEGER NOT NULL,
    deps       BLOB
);
INSERT INTO incoming_v6 (rowid, ch, key, id, msg, hint, unmet, lost, timeout_at, deps)
    SELECT i.rowid, i.ch, i.key, i.id, v.msg, i.hint, i.unmet, i.lost, i.timeout_at, i.deps
    FROM incoming i JOIN v6_incoming v ON v.r = i.rowid ORDER BY i.rowid;
DROP TABLE incoming;
ALTER TABLE incoming_v6 RENAME TO incoming;
CREATE INDEX incoming_key ON incoming (ch, key);

DROP TABLE temp.v6_outgoing;
DROP TABLE temp.v6_incoming;
";

/// The migrations, oldest first: `MIGRATIONS[i]` goes from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// The tables with rows per (channel, id), their column `ch` the channel's `no`
/// (for `drop_channel`, which deletes the `message` rows of the first three
/// first; the `channel` row itself is deleted last).
pub(crate) const ID_TABLES: &[&str] = &[
    "log",
    "outgoing",
    "incoming",
    "repair_out",
    "repair_in",
    "remembered",
];

/// The tables whose rows refer to a `message` row by `msg` (version 6).
pub(crate) const MESSAGE_TABLES: [&str; 3] = ["log", "outgoing", "incoming"];

/// The `key` of an id (version 4): the first 8 bytes of
/// SHA-256(salt as 8 little-endian bytes ‖ the id's UTF-8 bytes), read
/// big-endian as a signed SQLite integer. `salt` is the file's own random
/// number (table `id_salt`): ids come from remote peers, and with a fixed
/// function one could pick many ids with the same key, making every lookup
/// of them scan all of them. Part of the file format: it must never change.
pub(crate) fn id_key(salt: u64, id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(salt.to_le_bytes());
    h.update(id.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    let k = u64::from_be_bytes(first);
    #[cfg(test)]
    if let Some(bits) = test_key_bits() {
        return (k & ((1u64 << bits) - 1)) as i64;
    }
    k as i64
}

/// A random salt for a new file's keys (from the standard library's
/// randomly keyed hasher: no extra dependency).
pub(crate) fn new_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5344_5331);
    h.finish()
}

#[cfg(test)]
thread_local! {
    /// Tests: keys of only this many bits (so that many ids share a key).
    static KEY_BITS: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
pub(crate) fn test_key_bits() -> Option<u32> {
    KEY_BITS.with(std::cell::Cell::get)
}

/// Tests: makes [`id_key`] keep only `bits` bits on this thread (`None`: all).
#[cfg(test)]
pub(crate) fn set_test_key_bits(bits: Option<u32>) {
    KEY_BITS.with(|k| k.set(bits));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key function is part of the file format: known values (computed
    /// independently of this code).
    #[test]
    fn id_keys_are_stable() {
        assert_eq!(id_key(0, ""), -5_812_615_543_772_869_766);
        assert_eq!(id_key(0, "m1"), -5_953_570_079_023_608_560);
        assert_eq!(
            id_key(0x0123_4567_89ab_cdef, "m1"),
            -3_606_147_938_768_824_931
        );
        assert_eq!(
            id_key(
                0,
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ),
            794_404_223_131_673_729
        );
        assert_ne!(id_key(0, "ab"), id_key(0, "ba"));
        // Two files draw different salts.
        assert_ne!(new_salt(), new_salt());
    }
}
