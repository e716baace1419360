//! Persistence: the [`Store`] trait, its records, and an in-memory store.
//!
//! # Contract
//!
//! A participant opened with a store ([`Participant::open`](crate::Participant::open))
//! loads every channel's state once with [`Store::load`], then, after every
//! protocol operation that changed something (`send`, `send_ephemeral`,
//! `receive`, `mark_dependencies_met`, `handle_timeout`, `configure_channel`,
//! `set_retrieval_hint`), hands the store one [`ChangeSet`] through
//! [`Store::apply`]. A change set holds, per channel, the rows that were
//! added or changed (upserts, with their full current value) and the keys that
//! were removed (deletes), and is proportional to what the operation changed,
//! never to the size of the state.
//!
//! - `apply` MUST be atomic (all of the change set or nothing) and durable
//!   when it returns `Ok`; upserts replace any existing row with the same key;
//!   deleting a missing row is not an error.
//! - If `apply` fails, nothing is lost: the participant keeps track of what is
//!   still unwritten and sends it again (with its latest value) on the next
//!   operation, and reports the failure with
//!   [`Event::PersistenceFailed`](crate::Event::PersistenceFailed). The
//!   protocol operation itself does not fail.
//! - `load` returns the state as last applied; its errors are returned by
//!   `Participant::open`.
//! - `drop_channel` removes everything of one channel; its errors are returned.
//!
//! What is persisted: the channel's settings and clock, the log (with each
//! message's content and causal history, not its bloom filter), the outgoing
//! buffer (attempts, deadlines, possible-ack senders), the incoming buffer
//! (with unmet and lost dependencies and the timeout), both SDS-R buffers, and
//! the ids remembered as evicted or met. The bloom filter is rebuilt from the
//! log (and the met ids) on load.
//!
//! # Delivery guarantee
//!
//! The change set of an operation is committed inside the call, before the
//! application sees the operation's events. So:
//!
//! - A message is never delivered twice by the participant: once its
//!   delivery is committed, a copy received later (even after a restart) is a
//!   duplicate for the log or for the evicted-id memory.
//! - If the application crashes after the commit but before it has processed
//!   a [`Event::Delivered`](crate::Event::Delivered), the message is in the
//!   log but the event is gone. To stay exactly-once, the application records
//!   the `seq` of the last delivery it processed (ideally in the same
//!   transaction as its own effects) and, after a restart, processes
//!   [`Participant::delivered_after`](crate::Participant::delivered_after)`(channel,
//!   Some(last_seq))` before anything else.
//! - If the write failed ([`Event::PersistenceFailed`](crate::Event::PersistenceFailed))
//!   and the process dies before a later write succeeds, the delivery was never
//!   committed: the message can be delivered again after the restart (with a
//!   new `seq`); an application that needs exactly-once also ignores ids it
//!   has already processed.

mod memory;

pub use memory::MemoryStore;

use crate::wire::{Dialect, HistoryEntry};
use bytes::Bytes;

/// A store failure, with a human-readable cause (naming the file for file-backed stores).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Persistence backend for a participant. See the [module docs](self) for the contract.
pub trait Store: Send {
    /// Every channel's persisted state.
    fn load(&mut self) -> Result<Vec<ChannelSnapshot>, StoreError>;
    /// Applies one change set atomically and durably.
    fn apply(&mut self, changes: &ChangeSet) -> Result<(), StoreError>;
    /// Removes everything of one channel.
    fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError>;
    /// Waits until work the store does in the background after `apply` has
    /// returned (e.g. moving applied change sets into their final place) is
    /// done, and returns its failure if it failed. Not needed for
    /// durability: an applied change set is durable when `apply` returns.
    /// The default does nothing.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A channel's settings and clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMeta {
    /// Sending dialect.
    pub dialect: Dialect,
    /// Sync setting (`None`: the dialect's default).
    pub sync: Option<bool>,
    /// Lamport timestamp.
    pub lamport: u64,
    /// Next delivery sequence number.
    pub next_seq: u64,
    /// When we last broadcast.
    pub last_broadcast: u64,
    /// When the next sync is due.
    pub sync_due: u64,
    /// State of the channel's random back-offs (so a restarted participant
    /// behaves as if it had never stopped).
    pub rng_state: u64,
}

/// A log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Message id (key).
    pub id: String,
    /// Delivery sequence number (order of delivery or sending).
    pub seq: u64,
    /// The message without bloom filter, in the spec encoding (see [`encode_message`]).
    pub message: Bytes,
    /// Its retrieval hint.
    pub hint: Option<Bytes>,
}

/// An entry of the unacknowledged outgoing buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Message id (key).
    pub id: String,
    /// Send order.
    pub seq: u64,
    /// The message without bloom filter (see [`encode_message`]).
    pub message: Bytes,
    /// Resends so far.
    pub attempts: u32,
    /// When it was last broadcast.
    pub last_sent: u64,
    /// When it is due for a resend (or to be given up).
    pub resend_at: u64,
    /// Distinct senders whose bloom filters contained it.
    pub ackers: Vec<String>,
}

/// An entry of the incoming buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingRecord {
    /// Message id (key).
    pub id: String,
    /// The message without bloom filter (see [`encode_message`]).
    pub message: Bytes,
    /// Transport retrieval hint it came with.
    pub hint: Option<Bytes>,
    /// Dependencies still unmet.
    pub unmet: Vec<String>,
    /// Dependencies declared lost.
    pub lost: Vec<String>,
    /// When its dependencies are declared lost.
    pub timeout_at: u64,
}

/// An entry of the outgoing repair-request buffer (SDS-R).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairOutRecord {
    /// Missing message id (key).
    pub id: String,
    /// The entry to request (with hint and original sender).
    pub entry: HistoryEntry,
    /// Times requested.
    pub attempts: u32,
    /// When it is next eligible (T_req), if it still is.
    pub due: Option<u64>,
    /// When it is given up.
    pub expires_at: u64,
}

/// An entry of the incoming repair-request buffer (SDS-R).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairInRecord {
    /// Requested message id (key).
    pub id: String,
    /// When we re-broadcast it (T_resp).
    pub t_resp: u64,
}

/// Which memory an id belongs to (ids the protocol remembers besides the log and buffers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Remembered {
    /// Evicted from the log (still a duplicate and a met dependency).
    Evicted,
    /// Marked met, or declared lost.
    Met,
    /// Delivered, not yet named in any causal history we saw (`seq`: delivery order).
    Unannounced,
    /// One of our own messages nobody has shown to have yet.
    OwnNews,
}

/// An id remembered as evicted or met; `seq` orders the FIFO memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RememberedRecord {
    /// Which memory.
    pub kind: Remembered,
    /// The id (key, with `kind`).
    pub id: String,
    /// Insertion order.
    pub seq: u64,
}

/// Everything persisted of one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// Channel id.
    pub channel: String,
    /// Settings and clock (`None` only for a store that lost it; the channel is then skipped).
    pub meta: Option<ChannelMeta>,
    /// The log.
    pub log: Vec<LogRecord>,
    /// Unacknowledged outgoing messages.
    pub outgoing: Vec<OutgoingRecord>,
    /// Buffered incoming messages.
    pub incoming: Vec<IncomingRecord>,
    /// SDS-R requests to make.
    pub repair_out: Vec<RepairOutRecord>,
    /// SDS-R requests to answer.
    pub repair_in: Vec<RepairInRecord>,
    /// Remembered ids.
    pub remembered: Vec<RememberedRecord>,
}

/// The changes of one channel in one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelChanges {
    /// Channel id.
    pub channel: String,
    /// New settings and clock, if they changed.
    pub meta: Option<ChannelMeta>,
    /// Log rows added or changed.
    pub log_upserts: Vec<LogRecord>,
    /// Log rows removed.
    pub log_deletes: Vec<String>,
    /// Outgoing rows added or changed.
    pub outgoing_upserts: Vec<OutgoingRecord>,
    /// Outgoing rows removed.
    pub outgoing_deletes: Vec<String>,
    /// Incoming rows added or changed.
    pub incoming_upserts: Vec<IncomingRecord>,
    /// Incoming rows removed.
    pub incoming_deletes: Vec<String>,
    /// Repair-request rows added or changed.
    pub repair_out_upserts: Vec<RepairOutRecord>,
    /// Repair-request rows removed.
    pub repair_out_deletes: Vec<String>,
    /// Repair-response rows added or changed.
    pub repair_in_upserts: Vec<RepairInRecord>,
    /// Repair-response rows removed.
    pub repair_in_deletes: Vec<String>,
    /// Remembered ids added.
    pub remembered_upserts: Vec<RememberedRecord>,
    /// Remembered ids removed.
    pub remembered_deletes: Vec<(Remembered, String)>,
}

impl ChannelChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.meta.is_none()
            && self.log_upserts.is_empty()
            && self.log_deletes.is_empty()
            && self.outgoing_upserts.is_empty()
            && self.outgoing_deletes.is_empty()
            && self.incoming_upserts.is_empty()
            && self.incoming_deletes.is_empty()
            && self.repair_out_upserts.is_empty()
            && self.repair_out_deletes.is_empty()
            && self.repair_in_upserts.is_empty()
            && self.repair_in_deletes.is_empty()
            && self.remembered_upserts.is_empty()
            && self.remembered_deletes.is_empty()
    }

    /// Number of rows written or deleted.
    pub fn rows(&self) -> usize {
        usize::from(self.meta.is_some())
            + self.log_upserts.len()
            + self.log_deletes.len()
            + self.outgoing_upserts.len()
            + self.outgoing_deletes.len()
            + self.incoming_upserts.len()
            + self.incoming_deletes.len()
            + self.repair_out_upserts.len()
            + self.repair_out_deletes.len()
            + self.repair_in_upserts.len()
            + self.repair_in_deletes.len()
            + self.remembered_upserts.len()
            + self.remembered_deletes.len()
    }
}

/// The changes of one operation, per channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Changed channels.
    pub channels: Vec<ChannelChanges>,
}

impl ChangeSet {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.channels.iter().all(ChannelChanges::is_empty)
    }
}

/// The storage encoding of a message: the spec wire dialect without bloom
/// filter and channel id (sender, id, lamport timestamp, causal history,
/// content). Decode with [`decode_message`].
pub fn encode_message(
    sender_id: &str,
    message_id: &str,
    lamport: u64,
    causal_history: &[HistoryEntry],
    content: &Bytes,
) -> Bytes {
    let m = crate::wire::Message {
        sender_id: sender_id.to_string(),
        message_id: message_id.to_string(),
        channel_id: String::new(),
        lamport_timestamp: Some(lamport),
        causal_history: causal_history.to_vec(),
        bloom_filter: None,
        repair_request: Vec::new(),
        content: Some(content.clone()),
    };
    // A message with a lamport timestamp always encodes in the spec dialect.
    Bytes::from(crate::wire::encode(&m, Dialect::Spec).unwrap_or_default())
}

/// Decodes [`encode_message`]'s output.
pub fn decode_message(bytes: &Bytes) -> Result<crate::wire::Message, StoreError> {
    crate::wire::decode_as(bytes.clone(), Dialect::Spec, &crate::wire::Limits::NONE)
        .map_err(|e| StoreError(format!("stored message does not decode: {e}")))
}
