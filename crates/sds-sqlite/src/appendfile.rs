//! The append files `<db>-sds-journal` and `<db>-sds-journal-2`: change sets
//! not yet folded into the SQLite tables. The writer appends to one while
//! the other's records are folded on the store's thread (`lib.rs`,
//! `Append`); records are numbered across both, so [`order`] finds which
//! file's records come first.
//!
//! `apply` writes each change set as one record with one `write(2)` at the
//! end of the file (and, with [`crate::Synchronous::Full`], an `fdatasync`),
//! instead of an SQLite transaction: SQLite's cost of a commit (file locks,
//! two writes per WAL frame, the journal's last page, its parent and the
//! database header, checkpoints) was most of the time of a persisted
//! operation. Every so many records the store folds them into the tables in
//! one SQLite transaction that also records the sequence number of the last
//! folded record (table `journal_file`), commits it durably, and then empties
//! the file.
//!
//! A record is a 16-byte header and the payload (a change set encoded by
//! `journal::encode`): the payload's length (u32, little endian), a CRC-32 of
//! the length, sequence number and payload (u32 LE), and the record's
//! sequence number (u64 LE; the first record after a fold that left
//! `folded = n` has `n + 1`). Reading stops at the first record that is
//! incomplete, fails its checksum or does not continue the sequence: that is
//! the torn tail of a write interrupted by a crash (or, after a power loss,
//! data the OS had not written yet), and nothing after it was ever reported
//! committed... with one exception handled by the sequence numbers: a crash
//! between a fold's commit and the truncation leaves records that are already
//! in the tables (`seq <= folded`); they are skipped.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes before a record's payload.
pub(crate) const HEADER: usize = 16;

/// The append file of the database at `db` (the first of the two: the
/// writer's lock is on it).
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-sds-journal");
    PathBuf::from(p)
}

/// The two append files of the database at `db`: `<db>-sds-journal` and
/// `<db>-sds-journal-2`. The writer appends to one while the other's records
/// are folded into the tables in the background.
pub(crate) fn paths_for(db: &Path) -> [PathBuf; 2] {
    let first = path_for(db);
    let mut second = first.as_os_str().to_owned();
    second.push("-2");
    [first, PathBuf::from(second)]
}

/// CRC-32 (the IEEE polynomial, reflected), continued over several slices
/// (`crc32fast`: a table-driven byte loop was 6 % of a persisted send).
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for part in parts {
        h.update(part);
    }
    h.finalize()
}

/// One record: header and payload.
#[cfg(test)]
pub(crate) fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0; HEADER];
    out.extend_from_slice(payload);
    seal(&mut out, seq);
    out
}

/// Turns `record` (a [`HEADER`]-byte placeholder followed by the payload)
/// into the record of sequence number `seq`, in place: `apply` encodes each
/// change set into one reused buffer, with no allocation or copy per record.
pub(crate) fn seal(record: &mut [u8], seq: u64) {
    let len = u32::try_from(record.len() - HEADER).expect("a change set below 4 GiB");
    let (len_b, seq_b) = (len.to_le_bytes(), seq.to_le_bytes());
    let crc = crc32(&[&len_b, &seq_b, &record[HEADER..]]);
    record[0..4].copy_from_slice(&len_b);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    record[8..16].copy_from_slice(&seq_b);
}

/// What a file holds after the fold that recorded `folded`.
pub(crate) struct Contents {
    /// Where the payloads of the records with `seq > folded` are in the
    /// parsed bytes, in order (the first has sequence number `first`, the
    /// others follow it without a gap).
    pub records: Vec<std::ops::Range<usize>>,
    /// The sequence number of the first record with `seq > folded`.
    pub first: Option<u64>,
    /// Bytes of the file up to the end of the last readable record; what
    /// follows is a torn or stale tail.
    pub valid_len: u64,
}

/// Parses a file's bytes: records with `seq <= folded` are skipped (already
/// in the tables), the first record after them may have any sequence number
/// above `folded` (which of the two files comes first is decided by
/// [`order`]), and every later one must continue the sequence.
pub(crate) fn parse(mut bytes: &[u8], folded: u64) -> Contents {
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut valid_len = 0u64;
    let mut first = None;
    let mut expected = 0;
    while bytes.len() >= HEADER {
        let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        let seq_b: [u8; 8] = bytes[8..16].try_into().unwrap();
        let seq = u64::from_le_bytes(seq_b);
        if bytes.len() - HEADER < len {
            break;
        }
        let payload = &bytes[HEADER..HEADER + len];
        if crc32(&[&bytes[0..4], &seq_b, payload]) != crc {
            break;
        }
        if seq > folded {
            if first.is_none() {
                first = Some(seq);
                expected = seq;
            }
            if seq != expected {
                break;
            }
            expected += 1;
            records.push(at + HEADER..at + HEADER + len);
        }
        at += HEADER + len;
        valid_len += (HEADER + len) as u64;
        bytes = &bytes[HEADER + len..];
    }
    Contents {
        records,
        first,
        valid_len,
    }
}

/// Which of the two files hold the records after `folded`, in sequence
/// order: the one whose first record is `folded + 1`, then the other if its
/// first record continues the sequence. A file whose records do not follow
/// (after a gap: data the OS had not written when the power went) holds
/// nothing readable, so what is read is always a prefix of what was written.
pub(crate) fn order(files: &[Contents; 2], folded: u64) -> Vec<usize> {
    let Some(e) = (0..2).find(|&i| files[i].first == Some(folded + 1)) else {
        return Vec::new();
    };
    let next = folded + 1 + files[e].records.len() as u64;
    if files[1 - e].first == Some(next) {
        vec![e, 1 - e]
    } else {
        vec![e]
    }
}

/// The payloads of the records after `folded` in the two append files of
/// the database at `db`, in sequence order, as slices of the files' bytes
/// (a missing file has none). For readers without the writer's lock.
pub(crate) fn read_payloads(db: &Path, folded: u64) -> io::Result<Vec<bytes::Bytes>> {
    let [p0, p1] = paths_for(db);
    let bytes = [
        bytes::Bytes::from(read_all(&p0)?),
        bytes::Bytes::from(read_all(&p1)?),
    ];
    let files = [parse(&bytes[0], folded), parse(&bytes[1], folded)];
    let mut out = Vec::new();
    for i in order(&files, folded) {
        out.extend(files[i].records.iter().map(|r| bytes[i].slice(r.clone())));
    }
    Ok(out)
}

/// The payloads of the `count` records from sequence number `first` on in
/// one append file, as slices of one buffer; an error if fewer are there.
pub(crate) fn read_range(path: &Path, first: u64, count: u64) -> io::Result<Vec<bytes::Bytes>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let bytes = bytes::Bytes::from(read_all(path)?);
    let contents = parse(&bytes, first - 1);
    let found = if contents.first == Some(first) {
        (contents.records.len() as u64).min(count)
    } else {
        0
    };
    if found < count {
        return Err(io::Error::other(format!(
            "{} of the {count} records written since the last fold are missing or corrupt \
             (was the file changed by another program?)",
            count - found
        )));
    }
    Ok(contents
        .records
        .into_iter()
        .take(count as usize)
        .map(|r| bytes.slice(r))
        .collect())
}

/// Reads the whole file (an absent file is empty).
pub(crate) fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut v = Vec::new();
            f.read_to_end(&mut v)?;
            Ok(v)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Takes the exclusive lock of a writer on the open append file, without
/// waiting: `Ok(false)` when another open file (another process, or another
/// store in this one) holds it. Released when the file is closed.
#[cfg(unix)]
pub(crate) fn try_lock(f: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere there is no lock: only one process may open a store for writing.
#[cfg(not(unix))]
pub(crate) fn try_lock(_f: &File) -> io::Result<bool> {
    Ok(true)
}

/// Appends `bytes` in one write at the file's position (its end, `len`); on
/// failure, cuts off what was written of it (so a later record does not
/// follow garbage) and returns the error.
pub(crate) fn append(mut f: &File, len: &mut u64, bytes: &[u8], sync: bool) -> io::Result<()> {
    let res = f
        .write_all(bytes)
        .and_then(|()| if sync { f.sync_data() } else { Ok(()) });
    match res {
        Ok(()) => {
            *len += bytes.len() as u64;
            Ok(())
        }
        Err(e) => {
            let _ = f.set_len(*len);
            Err(e)
        }
    }
}

/// Words for an I/O error on the append file.
pub(crate) fn io_cause(path: &Path, e: &io::Error) -> String {
    let words = match e.kind() {
        io::ErrorKind::StorageFull => "the disk is full",
        io::ErrorKind::PermissionDenied => {
            "permission denied (the file or its directory is read-only)"
        }
        io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only",
        io::ErrorKind::NotFound => "the file or its directory does not exist",
        _ => "I/O error",
    };
    format!("{words}: {} ({e})", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn records_are_read_back_until_the_first_bad_one() {
        let mut file = Vec::new();
        for seq in 1..=4u64 {
            file.extend(frame(seq, &vec![seq as u8; seq as usize * 10]));
        }
        let all = parse(&file, 0);
        assert_eq!(all.records.len(), 4);
        assert_eq!(all.valid_len, file.len() as u64);
        // Already folded records are skipped.
        let c = parse(&file, 2);
        let payloads: Vec<&[u8]> = c.records.iter().map(|r| &file[r.clone()]).collect();
        assert_eq!(payloads, vec![&[3u8; 30][..], &[4u8; 40][..]]);
        // A torn tail: every cut point keeps exactly the complete records.
        for cut in 0..file.len() {
            let c = parse(&file[..cut], 0);
            let complete = (1..=4usize)
                .take_while(|&k| (1..=k).map(|s| HEADER + s * 10).sum::<usize>() <= cut)
                .count();
            assert_eq!(c.records.len(), complete, "cut at {cut}");
        }
        // A flipped bit stops reading at that record.
        let mut bad = file.clone();
        let second = HEADER + 10;
        bad[second + HEADER + 3] ^= 1;
        assert_eq!(parse(&bad, 0).records.len(), 1);
        // A gap in the sequence stops reading too.
        let mut gap = frame(1, b"a");
        gap.extend(frame(3, b"c"));
        assert_eq!(parse(&gap, 0).records.len(), 1);
    }

    /// Of two files, the one starting right after `folded` comes first, the
    /// other only if it continues the sequence; a stale prefix (records
    /// folded already, left by a failed truncation) is skipped.
    #[test]
    fn two_files_are_read_in_sequence_order() {
        let file = |seqs: std::ops::RangeInclusive<u64>| {
            let mut f = Vec::new();
            for s in seqs {
                f.extend(frame(s, &[s as u8]));
            }
            f
        };
        let firsts = |a: &[u8], b: &[u8], folded| {
            let files = [parse(a, folded), parse(b, folded)];
            order(&files, folded)
                .into_iter()
                .map(|i| files[i].first.unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(firsts(&file(4..=6), &file(1..=3), 0), vec![1, 4]);
        assert_eq!(firsts(&file(4..=6), &file(1..=3), 3), vec![4]);
        assert_eq!(firsts(&file(4..=6), &file(1..=3), 6), Vec::<u64>::new());
        // A gap (the end of the first file lost): only the first is read.
        assert_eq!(firsts(&file(1..=3), &file(5..=6), 0), vec![1]);
        assert_eq!(firsts(&file(2..=3), &file(5..=6), 0), Vec::<u64>::new());
        // Stale records before new ones in one file.
        let mut stale = file(1..=2);
        stale.extend(file(6..=7));
        assert_eq!(firsts(&stale, &file(3..=5), 2), vec![3, 6]);
        let c = parse(&stale, 2);
        assert_eq!((c.first, c.records.len()), (Some(6), 2));
    }
}
