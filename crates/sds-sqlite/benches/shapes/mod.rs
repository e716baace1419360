//! Synthetic change sets shaped like the participant's operations (shared by
//! the criterion bench and the `store_report` example).
#![allow(dead_code)]

use bytes::Bytes;
use sds::store::*;
use sds::Dialect;

/// A message id shaped like a real one (a hex hash): random insert positions.
pub fn id(i: u64) -> String {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}{:016x}", z ^ (z >> 31), i)
}

fn meta(i: u64) -> ChannelMeta {
    ChannelMeta {
        dialect: Dialect::Spec,
        sync: None,
        lamport: 1_700_000_000_000 + i,
        next_seq: i + 1,
        last_broadcast: 1_700_000_000_000 + i,
        sync_due: 1_700_000_030_000 + i,
        rng_state: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
}

/// ~300 bytes: an encoded message with a small causal history and content.
pub fn message(i: u64) -> Bytes {
    let content = format!("message {i} ").repeat(12);
    encode_message(
        "participant-a",
        &id(i),
        1_700_000_000_000 + i,
        &[
            sds::wire::HistoryEntry {
                message_id: id(i.wrapping_sub(1)),
                retrieval_hint: None,
                sender_id: None,
            },
            sds::wire::HistoryEntry {
                message_id: id(i.wrapping_sub(2)),
                retrieval_hint: None,
                sender_id: None,
            },
        ],
        &Bytes::from(content.into_bytes()),
    )
}

/// One received message delivered: log upsert, meta upsert, a remembered delete.
pub fn receive(channel: &str, i: u64) -> ChangeSet {
    ChangeSet {
        channels: vec![ChannelChanges {
            channel: channel.into(),
            meta: Some(meta(i)),
            log_upserts: vec![LogRecord {
                id: id(i),
                seq: i,
                message: message(i),
                hint: None,
            }],
            remembered_deletes: vec![(Remembered::Met, id(i))],
            ..Default::default()
        }],
    }
}

/// One message sent: log upsert, outgoing upsert, meta upsert.
pub fn send(channel: &str, i: u64) -> ChangeSet {
    let m = message(i);
    ChannelChanges {
        channel: channel.into(),
        meta: Some(meta(i)),
        log_upserts: vec![LogRecord {
            id: id(i),
            seq: i,
            message: m.clone(),
            hint: None,
        }],
        outgoing_upserts: vec![OutgoingRecord {
            id: id(i),
            seq: i,
            message: m,
            attempts: 0,
            last_sent: 1_700_000_000_000 + i,
            resend_at: 1_700_000_010_000 + i,
            ackers: Vec::new(),
        }],
        ..Default::default()
    }
    .into_set()
}

trait IntoSet {
    fn into_set(self) -> ChangeSet;
}

impl IntoSet for ChannelChanges {
    fn into_set(self) -> ChangeSet {
        ChangeSet {
            channels: vec![self],
        }
    }
}

/// Fills the log with `n` messages (1 000 per change set).
pub fn prefill(store: &mut dyn Store, channel: &str, n: u64) -> Result<(), StoreError> {
    let mut i = 0;
    while i < n {
        let end = (i + 1_000).min(n);
        let mut c = ChannelChanges {
            channel: channel.into(),
            meta: Some(meta(end)),
            ..Default::default()
        };
        for j in i..end {
            c.log_upserts.push(LogRecord {
                id: id(j),
                seq: j,
                message: message(j),
                hint: None,
            });
        }
        store.apply(&c.into_set())?;
        i = end;
    }
    Ok(())
}

/// The data bytes of a change set's rows (ids, messages, hints, integers at 8 bytes).
pub fn row_bytes(cs: &ChangeSet) -> usize {
    let mut n = 0;
    for c in &cs.channels {
        n += c.meta.as_ref().map_or(0, |_| c.channel.len() + 6 * 8);
        for r in &c.log_upserts {
            n += c.channel.len()
                + r.id.len()
                + 8
                + r.message.len()
                + r.hint.as_ref().map_or(0, |h| h.len());
        }
        for r in &c.outgoing_upserts {
            n += c.channel.len() + r.id.len() + 4 * 8 + r.message.len();
        }
        for (_, id) in &c.remembered_deletes {
            n += c.channel.len() + id.len() + 8;
        }
    }
    n
}
