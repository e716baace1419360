//! Shared helpers: a deterministic change-set generator and snapshot normalisation.
#![allow(dead_code)]

use bytes::Bytes;
use sds::store::*;
use sds::wire::HistoryEntry;
use sds::Dialect;

/// A small deterministic generator (xorshift64*).
pub struct Gen(u64);

impl Gen {
    pub fn kind(&mut self) -> Remembered {
        [
            Remembered::Evicted,
            Remembered::Met,
            Remembered::Unannounced,
            Remembered::OwnNews,
        ][self.below(4) as usize]
    }
    pub fn new(seed: u64) -> Gen {
        Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn u64_any(&mut self) -> u64 {
        match self.below(5) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 63,
            _ => self.next(),
        }
    }
    pub fn bytes(&mut self, max: usize) -> Bytes {
        let n = self.below(max as u64 + 1) as usize;
        Bytes::from((0..n).map(|_| self.next() as u8).collect::<Vec<u8>>())
    }
    pub fn hint(&mut self) -> Option<Bytes> {
        match self.below(3) {
            0 => None,
            1 => Some(Bytes::new()),
            _ => Some(self.bytes(40)),
        }
    }
    /// An id from a small pool, so upserts replace and deletes hit.
    pub fn id(&mut self) -> String {
        const POOL: &[&str] = &["m0", "m1", "m2", "m3", "ünï", "", "a\nb", "x'y\"z"];
        let i = self.below(POOL.len() as u64 + 24) as usize;
        match POOL.get(i) {
            Some(s) => s.to_string(),
            None => format!("id-{i}"),
        }
    }
    pub fn ids(&mut self, max: u64) -> Vec<String> {
        (0..self.below(max + 1)).map(|_| self.id()).collect()
    }
    fn vec<T>(&mut self, max: u64, f: impl Fn(&mut Gen) -> T) -> Vec<T> {
        if self.chance(40) {
            return Vec::new();
        }
        (0..1 + self.below(max)).map(|_| f(self)).collect()
    }

    pub fn meta(&mut self) -> ChannelMeta {
        ChannelMeta {
            dialect: if self.chance(50) {
                Dialect::Spec
            } else {
                Dialect::Nim
            },
            sync: match self.below(3) {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            },
            lamport: self.u64_any(),
            next_seq: self.u64_any(),
            last_broadcast: self.u64_any(),
            sync_due: self.u64_any(),
            rng_state: self.u64_any(),
        }
    }

    /// The changes of one channel.
    pub fn channel_changes(&mut self, channel: &str) -> ChannelChanges {
        ChannelChanges {
            channel: channel.to_string(),
            meta: if self.chance(60) {
                Some(self.meta())
            } else {
                None
            },
            log_upserts: self.vec(4, |g| LogRecord {
                id: g.id(),
                seq: g.below(1 << 40),
                message: g.bytes(400),
                hint: g.hint(),
            }),
            log_deletes: self.vec(3, Gen::id),
            outgoing_upserts: self.vec(3, |g| OutgoingRecord {
                id: g.id(),
                seq: g.below(1 << 40),
                message: g.bytes(400),
                attempts: g.next() as u32,
                last_sent: g.u64_any(),
                resend_at: g.u64_any(),
                ackers: g.ids(3),
            }),
            outgoing_deletes: self.vec(3, Gen::id),
            incoming_upserts: self.vec(3, |g| IncomingRecord {
                id: g.id(),
                message: g.bytes(400),
                hint: g.hint(),
                unmet: g.ids(3),
                lost: g.ids(2),
                timeout_at: g.u64_any(),
            }),
            incoming_deletes: self.vec(3, Gen::id),
            repair_out_upserts: self.vec(3, |g| RepairOutRecord {
                id: g.id(),
                entry: HistoryEntry {
                    message_id: g.id(),
                    retrieval_hint: g.hint(),
                    sender_id: if g.chance(50) { Some(g.id()) } else { None },
                },
                attempts: g.next() as u32,
                due: if g.chance(50) {
                    Some(g.u64_any())
                } else {
                    None
                },
                expires_at: g.u64_any(),
            }),
            repair_out_deletes: self.vec(3, Gen::id),
            repair_in_upserts: self.vec(3, |g| RepairInRecord {
                id: g.id(),
                t_resp: g.u64_any(),
            }),
            repair_in_deletes: self.vec(3, Gen::id),
            remembered_upserts: self.vec(3, |g| RememberedRecord {
                kind: g.kind(),
                id: g.id(),
                seq: g.below(1 << 40),
            }),
            remembered_deletes: self.vec(3, |g| {
                let k = g.kind();
                (k, g.id())
            }),
        }
    }

    /// A change set over 1-3 of a few channels.
    pub fn change_set(&mut self) -> ChangeSet {
        const CHANNELS: &[&str] = &["chat", "ünï-channel", "", "c'3"];
        let n = 1 + self.below(3);
        ChangeSet {
            channels: (0..n)
                .map(|_| {
                    let c = CHANNELS[self.below(CHANNELS.len() as u64) as usize];
                    self.channel_changes(c)
                })
                .collect(),
        }
    }
}

/// Snapshots with every list sorted by its key, so stores with different
/// (documented) orders compare equal when they hold the same rows.
pub fn normalize(mut snaps: Vec<ChannelSnapshot>) -> Vec<ChannelSnapshot> {
    snaps.sort_by(|a, b| a.channel.cmp(&b.channel));
    for s in &mut snaps {
        s.log.sort_by(|a, b| a.id.cmp(&b.id));
        s.outgoing.sort_by(|a, b| a.id.cmp(&b.id));
        s.incoming.sort_by(|a, b| a.id.cmp(&b.id));
        s.repair_out.sort_by(|a, b| a.id.cmp(&b.id));
        s.repair_in.sort_by(|a, b| a.id.cmp(&b.id));
        s.remembered
            .sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    }
    snaps
}

/// A meta for hand-written change sets.
pub fn meta(lamport: u64) -> ChannelMeta {
    ChannelMeta {
        dialect: Dialect::Spec,
        sync: None,
        lamport,
        next_seq: 0,
        last_broadcast: 0,
        sync_due: 0,
        rng_state: 0,
    }
}

/// A change set of one channel with `n` log rows of `size` bytes, ids from `first`.
pub fn log_rows(channel: &str, first: u64, n: u64, size: usize) -> ChangeSet {
    ChangeSet {
        channels: vec![ChannelChanges {
            channel: channel.into(),
            meta: Some(meta(first + n)),
            log_upserts: (first..first + n)
                .map(|i| LogRecord {
                    id: format!("m{i}"),
                    seq: i,
                    message: Bytes::from(vec![(i % 251) as u8; size]),
                    hint: None,
                })
                .collect(),
            ..Default::default()
        }],
    }
}
