//! The change journal: one entry per applied change set, encoded compactly.
//!
//! `apply` appends the change set of an operation to the append file as one
//! record (`appendfile.rs`; in schema version 2 it was a row of the `journal`
//! table, which is still read): whatever tables the change set names, one
//! write. Every [`FOLD_ROWS`] records (or [`FOLD_BYTES`]), the journal is
//! folded into the main tables in one transaction, and emptied: the pages of the main tables that several
//! operations change (the channel row, the last pages of the log, index
//! pages) are then written once per batch instead of once per operation.
//! `load` reads the main tables and replays the journal on top (in order), so
//! it sees exactly what was last committed.
//!
//! Encoding (integers are LEB128 varints, strings and byte strings are a
//! varint length and the bytes, an optional value is a byte 0/1 then the
//! value, a list is a varint count then the items): a format byte
//! ([`FORMAT`]), then the channels, each with its name, optional meta,
//! and for each record kind in [`ChannelChanges`]' order its upserts then
//! its deletes. An outgoing upsert whose message is also the message of a log
//! upsert of the same change set (a message just sent) refers to it by index
//! instead of repeating it.

use bytes::Bytes;
use sds::store::{
    ChangeSet, ChannelChanges, ChannelMeta, ChannelSnapshot, IncomingRecord, LogRecord,
    MemoryStore, OutgoingRecord, Remembered, RememberedRecord, RepairInRecord, RepairOutRecord,
    Store,
};
use sds::wire::HistoryEntry;
use sds::Dialect;
use std::collections::{BTreeMap, HashMap};

/// The format byte of a journal row.
const FORMAT: u8 = 1;

/// Journal rows that trigger a fold.
pub(crate) const FOLD_ROWS: u32 = 8_192;

/// Journal bytes that trigger a fold.
pub(crate) const FOLD_BYTES: u64 = 16 << 20;

/// A change set of about this many bytes ([`approx_bytes`]) or more is
/// written into the tables at once (with a fold) instead of appended.
pub(crate) const DIRECT_BYTES: u64 = FOLD_BYTES / 4;

/// About the size of a change set's encoding: its messages, plus 64 bytes
/// a row for the rest (cheap: no encoding).
pub(crate) fn approx_bytes(cs: &ChangeSet) -> u64 {
    let mut n = 0usize;
    for c in &cs.channels {
        n += c.log_upserts.iter().map(|r| r.message.len()).sum::<usize>();
        n += c
            .outgoing_upserts
            .iter()
            .map(|r| r.message.len())
            .sum::<usize>();
        n += c
            .incoming_upserts
            .iter()
            .map(|r| r.message.len())
            .sum::<usize>();
        let rows = c.log_upserts.len()
            + c.log_deletes.len()
            + c.outgoing_upserts.len()
            + c.outgoing_deletes.len()
            + c.incoming_upserts.len()
            + c.incoming_deletes.len()
            + c.repair_out_upserts.len()
            + c.repair_out_deletes.len()
            + c.repair_in_upserts.len()
            + c.repair_in_deletes.len()
            + c.remembered_upserts.len()
            + c.remembered_deletes.len();
        n += rows * 64;
    }
    n as u64
}

struct W(Vec<u8>);

impl W {
    fn u64(&mut self, mut n: u64) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.bytes(b);
            }
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.u64(v);
            }
        }
    }
    fn ids(&mut self, ids: &[String]) {
        self.u64(ids.len() as u64);
        for id in ids {
            self.bytes(id.as_bytes());
        }
    }
}

/// A reader of a row; the byte strings it returns share `base`'s buffer.
struct R<'a>(&'a [u8], &'a Bytes);

impl R<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u64(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    }
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.len()?;
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
    fn blob(&mut self) -> Option<Bytes> {
        let base = self.1;
        self.bytes().map(|b| base.slice_ref(b))
    }
    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }
    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn opt_blob(&mut self) -> Option<Option<Bytes>> {
        Some(if self.flag()? {
            Some(self.blob()?)
        } else {
            None
        })
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        Some(if self.flag()? {
            Some(self.string()?)
        } else {
            None
        })
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        Some(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    /// A list: a count (bounded by the bytes left, so garbage cannot make us allocate much).
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(out)
    }
    fn ids(&mut self) -> Option<Vec<String>> {
        self.list(R::string)
    }
}

fn kind_byte(k: Remembered) -> u8 {
    match k {
        Remembered::Evicted => 0,
        Remembered::Met => 1,
        Remembered::Unannounced => 2,
        Remembered::OwnNews => 3,
    }
}

fn kind_of(b: u8) -> Option<Remembered> {
    Some(match b {
        0 => Remembered::Evicted,
        1 => Remembered::Met,
        2 => Remembered::Unannounced,
        3 => Remembered::OwnNews,
        _ => return None,
    })
}

/// Encodes a change set as one journal row.
#[cfg(test)]
pub(crate) fn encode(cs: &ChangeSet) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, cs);
    out
}

/// Appends the encoding of a change set (one journal row) to `out`.
pub(crate) fn encode_into(out: &mut Vec<u8>, cs: &ChangeSet) {
    let mut w = W(std::mem::take(out));
    w.0.push(FORMAT);
    w.u64(cs.channels.len() as u64);
    for c in &cs.channels {
        w.bytes(c.channel.as_bytes());
        match &c.meta {
            None => w.0.push(0),
            Some(m) => {
                w.0.push(1);
                w.0.push(match m.dialect {
                    Dialect::Spec => 0,
                    Dialect::Nim => 1,
                });
                w.0.push(match m.sync {
                    None => 0,
                    Some(false) => 1,
                    Some(true) => 2,
                });
                for v in [
                    m.lamport,
                    m.next_seq,
                    m.last_broadcast,
                    m.sync_due,
                    m.rng_state,
                ] {
                    w.u64(v);
                }
            }
        }
        w.u64(c.log_upserts.len() as u64);
        for r in &c.log_upserts {
            w.bytes(r.id.as_bytes());
            w.u64(r.seq);
            w.bytes(&r.message);
            w.opt_bytes(r.hint.as_deref());
        }
        w.ids(&c.log_deletes);
        w.u64(c.outgoing_upserts.len() as u64);
        let by_id: Option<HashMap<&str, usize>> =
            (c.log_upserts.len() > 16 && !c.outgoing_upserts.is_empty()).then(|| {
                c.log_upserts
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.id.as_str(), i))
                    .collect()
            });
        for r in &c.outgoing_upserts {
            w.bytes(r.id.as_bytes());
            w.u64(r.seq);
            // A message just sent is in the log upserts too: written once.
            let in_log = match &by_id {
                Some(m) => m.get(r.id.as_str()).copied(),
                None => c.log_upserts.iter().position(|l| l.id == r.id),
            };
            match in_log.filter(|&i| c.log_upserts[i].message == r.message) {
                Some(i) => {
                    w.0.push(1);
                    w.u64(i as u64);
                }
                None => {
                    w.0.push(0);
                    w.bytes(&r.message);
                }
            }
            w.u64(u64::from(r.attempts));
            w.u64(r.last_sent);
            w.u64(r.resend_at);
            w.ids(&r.ackers);
        }
        w.ids(&c.outgoing_deletes);
        w.u64(c.incoming_upserts.len() as u64);
        for r in &c.incoming_upserts {
            w.bytes(r.id.as_bytes());
            w.bytes(&r.message);
            w.opt_bytes(r.hint.as_deref());
            w.ids(&r.unmet);
            w.ids(&r.lost);
            w.u64(r.timeout_at);
        }
        w.ids(&c.incoming_deletes);
        w.u64(c.repair_out_upserts.len() as u64);
        for r in &c.repair_out_upserts {
            w.bytes(r.id.as_bytes());
            w.bytes(r.entry.message_id.as_bytes());
            w.opt_bytes(r.entry.retrieval_hint.as_deref());
            w.opt_bytes(r.entry.sender_id.as_deref().map(str::as_bytes));
            w.u64(u64::from(r.attempts));
            w.opt_u64(r.due);
            w.u64(r.expires_at);
        }
        w.ids(&c.repair_out_deletes);
        w.u64(c.repair_in_upserts.len() as u64);
        for r in &c.repair_in_upserts {
            w.bytes(r.id.as_bytes());
            w.u64(r.t_resp);
        }
        w.ids(&c.repair_in_deletes);
        w.u64(c.remembered_upserts.len() as u64);
        for r in &c.remembered_upserts {
            w.0.push(kind_byte(r.kind));
            w.bytes(r.id.as_bytes());
            w.u64(r.seq);
        }
        w.u64(c.remembered_deletes.len() as u64);
        for (k, id) in &c.remembered_deletes {
            w.0.push(kind_byte(*k));
            w.bytes(id.as_bytes());
        }
    }
    *out = w.0;
}

/// Decodes [`encode_into`]'s output; `None` if the bytes are not such a row.
/// The messages of the result share `bytes`' buffer (no copy).
pub(crate) fn decode(bytes: &Bytes) -> Option<ChangeSet> {
    let mut r = R(bytes, bytes);
    if r.byte()? != FORMAT {
        return None;
    }
    let channels = r.list(channel)?;
    r.0.is_empty().then_some(ChangeSet { channels })
}

fn channel(r: &mut R<'_>) -> Option<ChannelChanges> {
    let channel = r.string()?;
    let meta = if r.flag()? {
        let dialect = match r.byte()? {
            0 => Dialect::Spec,
            1 => Dialect::Nim,
            _ => return None,
        };
        let sync = match r.byte()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return None,
        };
        Some(ChannelMeta {
            dialect,
            sync,
            lamport: r.u64()?,
            next_seq: r.u64()?,
            last_broadcast: r.u64()?,
            sync_due: r.u64()?,
            rng_state: r.u64()?,
        })
    } else {
        None
    };
    let log_upserts = r.list(|r| {
        Some(LogRecord {
            id: r.string()?,
            seq: r.u64()?,
            message: r.blob()?,
            hint: r.opt_blob()?,
        })
    })?;
    let log_deletes = r.ids()?;
    let outgoing_upserts = r.list(|r| {
        Some(OutgoingRecord {
            id: r.string()?,
            seq: r.u64()?,
            message: if r.flag()? {
                let i = usize::try_from(r.u64()?).ok()?;
                log_upserts.get(i)?.message.clone()
            } else {
                r.blob()?
            },
            attempts: r.u32()?,
            last_sent: r.u64()?,
            resend_at: r.u64()?,
            ackers: r.ids()?,
        })
    })?;
    Some(ChannelChanges {
        channel,
        meta,
        log_upserts,
        log_deletes,
        outgoing_upserts,
        outgoing_deletes: r.ids()?,
        incoming_upserts: r.list(|r| {
            Some(IncomingRecord {
                id: r.string()?,
                message: r.blob()?,
                hint: r.opt_blob()?,
                unmet: r.ids()?,
                lost: r.ids()?,
                timeout_at: r.u64()?,
            })
        })?,
        incoming_deletes: r.ids()?,
        repair_out_upserts: r.list(|r| {
            Some(RepairOutRecord {
                id: r.string()?,
                entry: HistoryEntry {
                    message_id: r.string()?,
                    retrieval_hint: r.opt_blob()?,
                    sender_id: r.opt_string()?,
                },
                attempts: r.u32()?,
                due: r.opt_u64()?,
                expires_at: r.u64()?,
            })
        })?,
        repair_out_deletes: r.ids()?,
        repair_in_upserts: r.list(|r| {
            Some(RepairInRecord {
                id: r.string()?,
                t_resp: r.u64()?,
            })
        })?,
        repair_in_deletes: r.ids()?,
        remembered_upserts: r.list(|r| {
            Some(RememberedRecord {
                kind: kind_of(r.byte()?)?,
                id: r.string()?,
                seq: r.u64()?,
            })
        })?,
        remembered_deletes: r.list(|r| Some((kind_of(r.byte()?)?, r.string()?)))?,
    })
}

/// The last write of each key of one channel's tables, over several change sets.
#[derive(Default)]
struct Net {
    meta: Option<ChannelMeta>,
    log: BTreeMap<String, Option<LogRecord>>,
    outgoing: BTreeMap<String, Option<OutgoingRecord>>,
    incoming: BTreeMap<String, Option<IncomingRecord>>,
    repair_out: BTreeMap<String, Option<RepairOutRecord>>,
    repair_in: BTreeMap<String, Option<RepairInRecord>>,
    remembered: BTreeMap<(Remembered, String), Option<RememberedRecord>>,
}

/// Records one change set's writes of one table, upserts then deletes (the
/// order in which they are applied): each key keeps its last write.
fn merge<K: Ord, V>(
    net: &mut BTreeMap<K, Option<V>>,
    upserts: Vec<V>,
    key: impl Fn(&V) -> K,
    deletes: Vec<K>,
) {
    for v in upserts {
        net.insert(key(&v), Some(v));
    }
    for k in deletes {
        net.insert(k, None);
    }
}

/// Puts a key's last write (`Some`: upsert, `None`: delete) into the upserts or the deletes.
fn split<K, V>(map: BTreeMap<K, Option<V>>, deletes: &mut Vec<K>) -> Vec<V> {
    let mut upserts = Vec::new();
    for (k, v) in map {
        match v {
            Some(v) => upserts.push(v),
            None => deletes.push(k),
        }
    }
    upserts
}

/// The net effect of change sets applied in order (each one's upserts, then
/// its deletes), as one change per channel: every row changed by the sets
/// appears once, with its last value, or as a delete if its last write was
/// one; the channel's settings are the last ones written. A key is never
/// both upserted and deleted in the result, and keys come in key order, so
/// writing the result into the tables leaves them as writing the sets one by
/// one would, with one statement per row instead of one per write (a
/// buffered message's SDS-R entries, for example, are usually upserted and
/// deleted within one fold), and index pages are visited in key order.
pub(crate) fn coalesce(sets: Vec<ChangeSet>) -> Vec<ChannelChanges> {
    let mut nets: BTreeMap<String, Net> = BTreeMap::new();
    for cs in sets {
        for c in cs.channels {
            let net = nets.entry(c.channel).or_default();
            if c.meta.is_some() {
                net.meta = c.meta;
            }
            merge(&mut net.log, c.log_upserts, |r| r.id.clone(), c.log_deletes);
            merge(
                &mut net.outgoing,
                c.outgoing_upserts,
                |r| r.id.clone(),
                c.outgoing_deletes,
            );
            merge(
                &mut net.incoming,
                c.incoming_upserts,
                |r| r.id.clone(),
                c.incoming_deletes,
            );
            merge(
                &mut net.repair_out,
                c.repair_out_upserts,
                |r| r.id.clone(),
                c.repair_out_deletes,
            );
            merge(
                &mut net.repair_in,
                c.repair_in_upserts,
                |r| r.id.clone(),
                c.repair_in_deletes,
            );
            merge(
                &mut net.remembered,
                c.remembered_upserts,
                |r| (r.kind, r.id.clone()),
                c.remembered_deletes,
            );
        }
    }
    nets.into_iter()
        .map(|(channel, net)| {
            let mut c = ChannelChanges {
                channel,
                meta: net.meta,
                ..Default::default()
            };
            c.log_upserts = split(net.log, &mut c.log_deletes);
            c.outgoing_upserts = split(net.outgoing, &mut c.outgoing_deletes);
            c.incoming_upserts = split(net.incoming, &mut c.incoming_deletes);
            c.repair_out_upserts = split(net.repair_out, &mut c.repair_out_deletes);
            c.repair_in_upserts = split(net.repair_in, &mut c.repair_in_deletes);
            c.remembered_upserts = split(net.remembered, &mut c.remembered_deletes);
            c
        })
        .collect()
}

/// Replays journal change sets (oldest first) on snapshots read from the main
/// tables, with the semantics of a fold (upserts, then deletes, per change
/// set), and returns them in the order `load` documents.
pub(crate) fn replay(snaps: Vec<ChannelSnapshot>, sets: &[ChangeSet]) -> Vec<ChannelSnapshot> {
    // The in-memory store is the reference implementation of `apply`.
    let mut store = MemoryStore::from_snapshots(snaps);
    for cs in sets {
        // A MemoryStore without injected failures does not fail.
        let _ = store.apply(cs);
    }
    let mut snaps = store.load().unwrap_or_default();
    for s in &mut snaps {
        s.log.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        s.outgoing
            .sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        s.remembered
            .sort_by(|a, b| (a.kind, a.seq, &a.id).cmp(&(b.kind, b.seq, &b.id)));
    }
    snaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChangeSet {
        let msg = Bytes::from_static(b"\x01message bytes");
        let other = Bytes::from_static(b"another message");
        ChangeSet {
            channels: vec![
                ChannelChanges {
                    channel: "chat".into(),
                    meta: Some(ChannelMeta {
                        dialect: Dialect::Nim,
                        sync: Some(true),
                        lamport: u64::MAX,
                        next_seq: 3,
                        last_broadcast: 1 << 40,
                        sync_due: 0,
                        rng_state: 0x9E37_79B9_7F4A_7C15,
                    }),
                    log_upserts: vec![
                        LogRecord {
                            id: "m1".into(),
                            seq: 1,
                            message: msg.clone(),
                            hint: None,
                        },
                        LogRecord {
                            id: "m2".into(),
                            seq: 2,
                            message: other.clone(),
                            hint: Some(Bytes::from_static(b"hint")),
                        },
                    ],
                    log_deletes: vec!["old".into()],
                    outgoing_upserts: vec![
                        OutgoingRecord {
                            id: "m1".into(),
                            seq: 1,
                            message: msg.clone(),
                            attempts: 2,
                            last_sent: 5,
                            resend_at: 6,
                            ackers: vec!["bob".into(), "".into()],
                        },
                        // Same id as a log upsert, different message: stored in full.
                        OutgoingRecord {
                            id: "m2".into(),
                            seq: 2,
                            message: msg,
                            attempts: u32::MAX,
                            last_sent: 0,
                            resend_at: 0,
                            ackers: vec![],
                        },
                        OutgoingRecord {
                            id: "m3".into(),
                            seq: 9,
                            message: other,
                            attempts: 0,
                            last_sent: 1,
                            resend_at: 2,
                            ackers: vec![],
                        },
                    ],
                    outgoing_deletes: vec!["o1".into(), "o2".into()],
                    incoming_upserts: vec![IncomingRecord {
                        id: "i1".into(),
                        message: Bytes::from_static(b"in"),
                        hint: Some(Bytes::new()),
                        unmet: vec!["a".into(), "ü".into()],
                        lost: vec!["b".into()],
                        timeout_at: 77,
                    }],
                    incoming_deletes: vec!["i0".into()],
                    repair_out_upserts: vec![RepairOutRecord {
                        id: "r1".into(),
                        entry: HistoryEntry {
                            message_id: "r1".into(),
                            retrieval_hint: Some(Bytes::from_static(b"h")),
                            sender_id: Some("carol".into()),
                        },
                        attempts: 1,
                        due: Some(10),
                        expires_at: 20,
                    }],
                    repair_out_deletes: vec!["r0".into()],
                    repair_in_upserts: vec![RepairInRecord {
                        id: "q1".into(),
                        t_resp: 30,
                    }],
                    repair_in_deletes: vec!["q0".into()],
                    remembered_upserts: vec![RememberedRecord {
                        kind: Remembered::OwnNews,
                        id: "m1".into(),
                        seq: 4,
                    }],
                    remembered_deletes: vec![(Remembered::Met, "x".into())],
                },
                ChannelChanges {
                    channel: "other".into(),
                    ..Default::default()
                },
            ],
        }
    }

    fn dec(b: &[u8]) -> Option<ChangeSet> {
        decode(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn change_sets_round_trip() {
        let cs = sample();
        assert_eq!(dec(&encode(&cs)), Some(cs.clone()));
        let empty = ChangeSet::default();
        assert_eq!(dec(&encode(&empty)), Some(empty));
        // Appended after what the buffer holds.
        let mut buf = b"header".to_vec();
        encode_into(&mut buf, &cs);
        assert_eq!(dec(&buf[6..]), Some(cs));
    }

    #[test]
    fn a_sent_message_is_written_once() {
        let cs = sample();
        let mut unshared = cs.clone();
        unshared.channels[0].log_upserts.clear();
        let len = |c: &ChangeSet| encode(c).len();
        let msg = cs.channels[0].log_upserts[0].message.len();
        let other = cs.channels[0].log_upserts[1].message.len();
        // Without the log upserts, both outgoing messages equal to one are stored in full.
        assert!(len(&cs) > len(&unshared) - msg - other);
        assert_eq!(dec(&encode(&unshared)), Some(unshared));
    }

    /// Writing the coalesced changes equals writing the sets one by one
    /// (checked with the in-memory reference store), for random upserts and
    /// deletes over a few keys, including a key upserted and deleted in one set.
    #[test]
    fn coalesced_sets_have_the_same_effect() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for round in 0..50 {
            let mut sets = Vec::new();
            for i in 0..(1 + next(30)) {
                let mut channels = Vec::new();
                for ch in ["a", "b"] {
                    if next(3) == 0 {
                        continue;
                    }
                    let mut c = ChannelChanges {
                        channel: ch.into(),
                        ..Default::default()
                    };
                    if next(2) == 0 {
                        c.meta = Some(ChannelMeta {
                            dialect: Dialect::Spec,
                            sync: None,
                            lamport: i,
                            next_seq: round,
                            last_broadcast: 0,
                            sync_due: 0,
                            rng_state: next(1000),
                        });
                    }
                    for _ in 0..next(4) {
                        let id = format!("k{}", next(6));
                        c.log_upserts.push(LogRecord {
                            id: id.clone(),
                            seq: next(100),
                            message: Bytes::from(format!("m{}", next(100))),
                            hint: None,
                        });
                        c.incoming_upserts.push(IncomingRecord {
                            id,
                            message: Bytes::from(format!("i{}", next(100))),
                            hint: None,
                            unmet: vec![format!("u{}", next(5))],
                            lost: vec![],
                            timeout_at: next(100),
                        });
                        c.repair_in_upserts.push(RepairInRecord {
                            id: format!("k{}", next(6)),
                            t_resp: next(100),
                        });
                        c.remembered_upserts.push(RememberedRecord {
                            kind: kind_of(next(4) as u8).unwrap(),
                            id: format!("k{}", next(6)),
                            seq: next(100),
                        });
                    }
                    for _ in 0..next(3) {
                        c.log_deletes.push(format!("k{}", next(6)));
                        c.incoming_deletes.push(format!("k{}", next(6)));
                        c.repair_in_deletes.push(format!("k{}", next(6)));
                        c.remembered_deletes
                            .push((kind_of(next(4) as u8).unwrap(), format!("k{}", next(6))));
                    }
                    channels.push(c);
                }
                sets.push(ChangeSet { channels });
            }
            let mut one_by_one = MemoryStore::default();
            for cs in &sets {
                one_by_one.apply(cs).unwrap();
            }
            let mut coalesced = MemoryStore::default();
            let net = coalesce(sets);
            for c in &net {
                for id in &c.log_deletes {
                    assert!(c.log_upserts.iter().all(|r| &r.id != id));
                }
            }
            coalesced.apply(&ChangeSet { channels: net }).unwrap();
            assert_eq!(
                replay(coalesced.load().unwrap(), &[]),
                replay(one_by_one.load().unwrap(), &[]),
                "round {round}"
            );
        }
    }

    #[test]
    fn garbage_is_rejected() {
        let row = encode(&sample());
        for cut in 0..row.len() {
            assert_eq!(dec(&row[..cut]), None, "cut at {cut}");
        }
        let mut extra = row.clone();
        extra.push(0);
        assert_eq!(dec(&extra), None);
        let mut format = row;
        format[0] = 2;
        assert_eq!(dec(&format), None);
    }
}
