//! Change tracking for a [`Store`](crate::store::Store), and restoring a
//! channel from a snapshot.
//!
//! Every mutation of channel state marks the key it touched. After an
//! operation, [`Channel::changes`] turns the marked keys into rows: an upsert
//! with the current value if the key still exists, a delete otherwise. The
//! marks are cleared only when the store has committed them, so a failed write
//! is simply retried (with the then-current values) after the next operation.

use super::store::{Buffered, LogEntry, OutEntry, StoredMessage};
use super::{Channel, Ctx, Id};
use crate::bloom::{BloomEncoding, ItemHash};
use crate::config::ChannelConfig;
use crate::fastmap::HashSet;
use crate::repair::OutRepair;
use crate::store::{
    decode_message, ChannelChanges, ChannelMeta, ChannelSnapshot, IncomingRecord, LogRecord,
    OutgoingRecord, Remembered, RememberedRecord, RepairInRecord, RepairOutRecord, StoreError,
};
use bytes::Bytes;
use std::sync::Arc;

/// Which part of the state a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Log,
    Outgoing,
    Incoming,
    RepairOut,
    RepairIn,
    Evicted,
    Met,
    Unannounced,
    OwnNews,
}

/// Keys changed since the last successful write.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    keys: HashSet<(Kind, Id)>,
}

/// Marks a key as changed (a no-op when the channel is not persistent).
pub(crate) fn touch(dirty: &mut Option<Box<Dirty>>, kind: Kind, id: &str) {
    if let Some(d) = dirty {
        d.keys.insert((kind, Id::from(id)));
    }
}

/// What [`crate::store::encode_message`] gives for `m`, encoded from its
/// parts (building the owned wire entries first, twice, was about half of
/// building a change set).
fn stored_bytes(m: &StoredMessage) -> Bytes {
    // With a lamport timestamp the spec dialect cannot fail.
    m.encode("", crate::Dialect::Spec, None, &[])
        .unwrap_or_default()
}

fn to_stored(bytes: &Bytes) -> Result<StoredMessage, StoreError> {
    let m = decode_message(bytes)?;
    Ok(StoredMessage {
        id: Id::from(m.message_id.as_str()),
        sender_id: Id::from(m.sender_id.as_str()),
        lamport: m.lamport_timestamp.unwrap_or(0),
        causal_history: m
            .causal_history
            .into_iter()
            .map(super::Dep::from_entry)
            .collect(),
        content: m.content.unwrap_or_default(),
    })
}

impl Channel {
    fn meta(&self) -> ChannelMeta {
        ChannelMeta {
            dialect: self.cfg.dialect,
            sync: self.cfg.sync,
            lamport: self.lamport,
            next_seq: self.seq,
            last_broadcast: self.last_broadcast,
            sync_due: self.sync_due,
            rng_state: self.rng.state(),
        }
    }

    /// The rows changed since the last successful write, if any.
    pub fn changes(&self) -> Option<ChannelChanges> {
        let dirty = self.dirty.as_ref()?;
        let meta = self.meta();
        let mut c = ChannelChanges {
            channel: super::owned(&self.id),
            meta: (self.last_meta.as_ref() != Some(&meta)).then_some(meta),
            ..ChannelChanges::default()
        };
        for (kind, id) in &dirty.keys {
            match kind {
                Kind::Log => match self.log.get(id) {
                    Some(e) => c.log_upserts.push(LogRecord {
                        id: super::owned(id),
                        seq: e.seq,
                        message: stored_bytes(&e.msg),
                        hint: e.hint.as_deref().cloned(),
                    }),
                    None => c.log_deletes.push(super::owned(id)),
                },
                Kind::Outgoing => match self.outgoing.get(id) {
                    Some((seq, o)) => c.outgoing_upserts.push(OutgoingRecord {
                        id: super::owned(id),
                        seq,
                        message: stored_bytes(&o.msg),
                        attempts: o.attempts,
                        last_sent: o.last_sent,
                        resend_at: self.outgoing.resend.get(id).unwrap_or(o.last_sent),
                        ackers: o.ackers.iter().map(|a| super::owned(a)).collect(),
                    }),
                    None => c.outgoing_deletes.push(super::owned(id)),
                },
                Kind::Incoming => match self.incoming.get(id) {
                    Some(b) => c.incoming_upserts.push(IncomingRecord {
                        id: super::owned(id),
                        message: stored_bytes(&b.msg),
                        hint: b.hint.clone(),
                        unmet: self
                            .incoming
                            .unmet(id)
                            .iter()
                            .map(|d| super::owned(d))
                            .collect(),
                        lost: b.lost.clone(),
                        timeout_at: self.incoming.timeout_of(id).unwrap_or(0),
                    }),
                    None => c.incoming_deletes.push(super::owned(id)),
                },
                Kind::RepairOut => match self.repair_out.get(id) {
                    Some((e, due, expires_at)) => c.repair_out_upserts.push(RepairOutRecord {
                        id: super::owned(id),
                        entry: e.entry.to_entry(),
                        attempts: e.attempts,
                        due,
                        expires_at,
                    }),
                    None => c.repair_out_deletes.push(super::owned(id)),
                },
                Kind::RepairIn => match self.repair_in.due.get(id) {
                    Some(t_resp) => c.repair_in_upserts.push(RepairInRecord {
                        id: super::owned(id),
                        t_resp,
                    }),
                    None => c.repair_in_deletes.push(super::owned(id)),
                },
                Kind::Evicted | Kind::Met | Kind::Unannounced | Kind::OwnNews => {
                    let (which, seq) = match kind {
                        Kind::Evicted => (Remembered::Evicted, self.evicted.seq(id)),
                        Kind::Met => (Remembered::Met, self.met.seq(id)),
                        Kind::Unannounced => (
                            Remembered::Unannounced,
                            self.unannounced_set.get(id).copied(),
                        ),
                        _ => (
                            Remembered::OwnNews,
                            self.own_news.contains_key(id).then_some(0),
                        ),
                    };
                    match seq {
                        Some(seq) => c.remembered_upserts.push(RememberedRecord {
                            kind: which,
                            id: super::owned(id),
                            seq,
                        }),
                        None => c.remembered_deletes.push((which, super::owned(id))),
                    }
                }
            }
        }
        (!c.is_empty()).then_some(c)
    }

    /// The store committed [`Self::changes`].
    pub fn committed(&mut self) {
        if let Some(d) = self.dirty.as_mut() {
            d.keys.clear();
            self.last_meta = Some(self.meta());
        }
    }

    /// Rebuilds a channel from its snapshot; the bloom filter is rebuilt from
    /// the log and the met ids.
    pub fn restore(ctx: &mut Ctx<'_>, snap: &ChannelSnapshot) -> Result<Channel, StoreError> {
        let meta = snap
            .meta
            .as_ref()
            .ok_or_else(|| StoreError(format!("channel {:?} has no settings row", snap.channel)))?;
        let cfg = ChannelConfig {
            dialect: meta.dialect,
            sync: meta.sync,
        };
        let mut ch = Channel::new(ctx, Id::from(snap.channel.as_str()), cfg, meta.lamport);
        ch.lamport = meta.lamport;
        ch.last_broadcast = meta.last_broadcast;
        ch.sync_due = meta.sync_due;
        ch.rng = crate::rng::Rng::new(meta.rng_state);

        // The bloom filter is rebuilt from everything it held: evicted ids
        // (oldest first), the log, buffered messages and met ids.
        let mut remembered = snap.remembered.clone();
        remembered.sort_by_key(|r| r.seq);
        for r in remembered.iter().filter(|r| r.kind == Remembered::Evicted) {
            ch.bloom_insert(&r.id);
            ch.evicted
                .insert_with_seq(Id::from(r.id.as_str()), r.seq, ctx.cfg.max_evicted_ids);
        }
        let mut log = snap.log.clone();
        log.sort_by_key(|r| r.seq);
        for r in &log {
            let msg = Arc::new(to_stored(&r.message)?);
            ch.bloom_insert(&msg.id);
            let entry = LogEntry {
                msg,
                hint: r.hint.clone().map(Box::new),
                last_seen: 0,
                seq: r.seq,
            };
            // Rows beyond the cap (a smaller cap than when written) are dropped.
            let _ = ch.log.insert(entry, ctx.cfg.max_log);
        }
        let n = ctx.cfg.causal_history_len;
        for r in log.iter().rev().take(n).rev() {
            if ch.log.contains(&r.id) {
                ch.recent.push_back((r.seq, Id::from(r.id.as_str())));
            }
        }
        ch.seq = meta.next_seq.max(log.last().map_or(0, |r| r.seq + 1));
        for r in &snap.incoming {
            ch.bloom_insert(&r.id);
        }
        for r in remembered.iter().filter(|r| r.kind == Remembered::Met) {
            ch.bloom_insert(&r.id);
            ch.met
                .insert_with_seq(Id::from(r.id.as_str()), r.seq, ctx.cfg.max_marked_met);
        }
        for r in &remembered {
            let id = Id::from(r.id.as_str());
            match r.kind {
                Remembered::Unannounced => {
                    ch.unannounced_set.insert(id.clone(), r.seq);
                    ch.unannounced.push_back((r.seq, id));
                }
                Remembered::OwnNews => {
                    let hashes = [
                        ItemHash::new(BloomEncoding::Spec, id.as_bytes()),
                        ItemHash::new(BloomEncoding::Nim, id.as_bytes()),
                    ];
                    ch.own_news.insert(id, hashes);
                }
                Remembered::Evicted | Remembered::Met => {}
            }
        }

        for r in &snap.outgoing {
            let msg = Arc::new(to_stored(&r.message)?);
            let hashes = [
                ItemHash::new(BloomEncoding::Spec, msg.id.as_bytes()),
                ItemHash::new(BloomEncoding::Nim, msg.id.as_bytes()),
            ];
            let ackers = r.ackers.iter().map(|a| Id::from(a.as_str())).collect();
            let entry = OutEntry {
                msg,
                attempts: r.attempts,
                hashes,
                ackers,
                last_sent: r.last_sent,
            };
            ch.outgoing.insert_with_seq(r.seq, entry, r.resend_at);
        }
        // In deadline order: the buffer's deadline queue then only appends
        // (a store returns them in any order).
        let mut incoming: Vec<_> = snap.incoming.iter().collect();
        incoming.sort_unstable_by(|a, b| (a.timeout_at, &a.id).cmp(&(b.timeout_at, &b.id)));
        for r in incoming {
            let b = Buffered {
                msg: Arc::new(to_stored(&r.message)?),
                hint: r.hint.clone(),
                lost: r.lost.clone(),
            };
            let unmet: Vec<Id> = r.unmet.iter().map(|d| Id::from(d.as_str())).collect();
            ch.incoming.insert(b, &unmet, r.timeout_at);
        }
        for r in &snap.repair_out {
            let e = OutRepair {
                entry: super::Dep::from_entry(r.entry.clone()),
                attempts: r.attempts,
            };
            ch.repair_out
                .restore(Id::from(r.id.as_str()), e, r.due, r.expires_at);
        }
        for r in &snap.repair_in {
            ch.repair_in.due.set(Id::from(r.id.as_str()), r.t_resp);
        }
        // What was loaded is what the store holds.
        ch.committed();
        Ok(ch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Dep;
    use arcstr::ArcStr;

    /// `stored_bytes` encodes from the parts exactly what `encode_message`
    /// encodes from owned wire entries (the stores compare these bytes).
    #[test]
    fn stored_bytes_are_encode_message_s() {
        let dep = |id: &str, hint: Option<&[u8]>, sender: Option<&str>| Dep {
            id: ArcStr::from(id),
            hint: hint.map(|h| Box::new(Bytes::copy_from_slice(h))),
            sender: sender.map(ArcStr::from),
        };
        let histories = [
            vec![],
            vec![dep("a", None, None)],
            vec![
                dep("0123456789abcdef", Some(b"hint"), Some("peer-1")),
                dep("", Some(b""), Some("")),
                dep("x", None, Some("s")),
            ],
        ];
        for (i, h) in histories.into_iter().enumerate() {
            for (sender, content, lamport) in [
                ("s", &b"content"[..], 1u64 << 40),
                ("", &b""[..], 0),
                ("peer", &[0u8; 300][..], 127),
            ] {
                let m = StoredMessage {
                    id: Id::from(format!("m{i}").as_str()),
                    sender_id: Id::from(sender),
                    lamport,
                    causal_history: h.clone().into_boxed_slice(),
                    content: Bytes::copy_from_slice(content),
                };
                let entries: Vec<_> = m.causal_history.iter().map(Dep::to_entry).collect();
                let expected = crate::store::encode_message(
                    &m.sender_id,
                    &m.id,
                    m.lamport,
                    &entries,
                    &m.content,
                );
                assert_eq!(stored_bytes(&m), expected, "history {i}, sender {sender:?}");
            }
        }
    }
}
