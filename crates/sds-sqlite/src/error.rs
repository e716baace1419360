//! Turning SQLite's errors into [`StoreError`]s a person can act on.

use rusqlite::ffi::ErrorCode;
use sds::store::StoreError;
use std::path::Path;

/// `sqlite store PATH: WHILE: CAUSE (SQLite's own message)`.
pub(crate) fn store_error(path: &Path, doing: &str, e: &rusqlite::Error) -> StoreError {
    StoreError(format!(
        "sqlite store {}: {doing}: {}",
        path.display(),
        cause(e)
    ))
}

/// A failure that is not an SQLite error code (a row we cannot read back, a
/// refused version, ...).
pub(crate) fn plain(path: &Path, doing: &str, cause: impl std::fmt::Display) -> StoreError {
    StoreError(format!("sqlite store {}: {doing}: {cause}", path.display()))
}

fn cause(e: &rusqlite::Error) -> String {
    let Some(code) = e.sqlite_error_code() else {
        // Errors raised by rusqlite itself while converting values: the row
        // does not hold what this schema writes.
        return format!("the database holds a value this store did not write ({e})");
    };
    let words = match code {
        ErrorCode::ReadOnly => {
            "the database is read-only (the file, its directory or its -wal/-shm \
             files are not writable, or the store was opened read-only)"
        }
        ErrorCode::DiskFull => {
            "the database or the disk is full (no space left, or the size limit \
             of the store was reached)"
        }
        ErrorCode::DatabaseBusy => {
            "the database is locked by another connection or process (busy), \
             and it stayed locked for the whole busy timeout"
        }
        ErrorCode::DatabaseLocked => {
            "the database is locked (a conflicting operation on the same connection)"
        }
        ErrorCode::DatabaseCorrupt => "the database file is corrupt (malformed database image)",
        ErrorCode::NotADatabase => {
            "the file is not an SQLite database (it is corrupt, encrypted, or another kind of file)"
        }
        ErrorCode::CannotOpen => {
            "the database file cannot be opened (the file or its directory does not \
             exist or is not accessible, or the path is a directory)"
        }
        ErrorCode::PermissionDenied => "permission denied",
        ErrorCode::SystemIoFailure => "disk I/O error while reading or writing the file",
        ErrorCode::OutOfMemory => "out of memory",
        ErrorCode::TooBig => "a value is larger than SQLite's size limit",
        ErrorCode::FileLockingProtocolFailed => "the file-locking protocol failed",
        _ => "SQLite reported an error",
    };
    format!("{words} ({e})")
}
