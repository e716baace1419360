//! Opening a participant on a database file, and stores named on a command line.

use crate::{Options, SqliteStore, Synchronous};
use sds::store::{Store, StoreError};
use sds::{Config, OpenError, Participant};
use std::path::Path;

/// Opens (or creates) the database at `path` with the default [`Options`]
/// and opens a participant on it: every channel is restored from the file,
/// and every operation's changes are written to it in one transaction.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("alice.db");
/// let mut alice = sds_sqlite::open_participant(&path, "alice", sds::Config::default()).unwrap();
/// alice.send("chat", "m1", &b"hello"[..], 1_700_000_000_000).unwrap();
/// drop(alice);
/// let alice = sds_sqlite::open_participant(&path, "alice", sds::Config::default()).unwrap();
/// assert_eq!(alice.channel_state("chat").unwrap().outgoing, vec!["m1".to_string()]);
/// ```
pub fn open_participant(
    path: impl AsRef<Path>,
    participant_id: impl Into<String>,
    config: Config,
) -> Result<Participant, OpenError> {
    open_participant_with(path, &Options::default(), participant_id, config)
}

/// [`open_participant`] with explicit [`Options`].
pub fn open_participant_with(
    path: impl AsRef<Path>,
    options: &Options,
    participant_id: impl Into<String>,
    config: Config,
) -> Result<Participant, OpenError> {
    let store = SqliteStore::open_with(path, options)?;
    Participant::open(participant_id, config, Box::new(store))
}

/// A store named on a command line (`--store SPEC`):
///
/// - `sqlite:PATH`: an SQLite file, synchronous NORMAL;
/// - `sqlite:PATH?sync=full` (or `?sync=normal`): with that durability.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let spec = format!("sqlite:{}?sync=full", dir.path().join("p.db").display());
/// let store = sds_sqlite::store_from_spec(&spec).unwrap();
/// let p = sds::Participant::open("p", sds::Config::default(), store).unwrap();
/// # drop(p);
/// assert!(sds_sqlite::store_from_spec("postgres:x").is_err());
/// ```
pub fn store_from_spec(spec: &str) -> Result<Box<dyn Store>, StoreError> {
    let Some(rest) = spec.strip_prefix("sqlite:") else {
        return Err(StoreError(format!(
            "unknown store {spec:?}: expected sqlite:PATH or sqlite:PATH?sync=full"
        )));
    };
    let mut options = Options::default();
    let path = if let Some(p) = rest.strip_suffix("?sync=full") {
        options.synchronous = Synchronous::Full;
        p
    } else if let Some(p) = rest.strip_suffix("?sync=normal") {
        p
    } else {
        rest
    };
    if path.is_empty() {
        return Err(StoreError(format!(
            "store {spec:?} names no file: expected sqlite:PATH"
        )));
    }
    Ok(Box::new(SqliteStore::open_with(path, &options)?))
}
