//! What a [`Participant`](crate::Participant) tells its caller.

use crate::wire::HistoryEntry;
use bytes::Bytes;

/// Why bytes are to be broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransmitReason {
    /// A new content message.
    New,
    /// A content message sent again because it was not acknowledged.
    Resend,
    /// A periodic sync message (no content).
    Sync,
    /// SDS-R: a message re-broadcast in answer to a repair request.
    Repair,
    /// An ephemeral message.
    Ephemeral,
}

impl TransmitReason {
    /// Lowercase name (`new`, `resend`, `sync`, `repair`, `ephemeral`).
    pub fn as_str(&self) -> &'static str {
        match self {
            TransmitReason::New => "new",
            TransmitReason::Resend => "resend",
            TransmitReason::Sync => "sync",
            TransmitReason::Repair => "repair",
            TransmitReason::Ephemeral => "ephemeral",
        }
    }
}

/// Bytes the caller must broadcast on the channel's transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Channel id.
    pub channel: String,
    /// Id of the message carried (for a repair, the original message's id).
    pub message_id: String,
    /// Why.
    pub reason: TransmitReason,
    /// The encoded message.
    pub bytes: Bytes,
    /// SDS-R repair-request ids this message carries.
    pub repair_request: Vec<String>,
}

/// Something the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A content message is delivered: all its dependencies are in the log
    /// (or were marked met, or declared lost). Delivered in causal order.
    Delivered {
        /// Channel id.
        channel: String,
        /// Message id.
        message_id: String,
        /// Sender's participant id.
        sender_id: String,
        /// Lamport timestamp.
        lamport_timestamp: u64,
        /// Content.
        content: Bytes,
        /// Retrieval hint given with the message when it was received.
        retrieval_hint: Option<Bytes>,
        /// Direct dependencies that were declared irretrievably lost.
        lost_dependencies: Vec<String>,
    },
    /// An ephemeral message arrived (no ordering, no reliability).
    Ephemeral {
        /// Channel id.
        channel: String,
        /// Message id.
        message_id: String,
        /// Sender's participant id.
        sender_id: String,
        /// Content.
        content: Bytes,
    },
    /// One of our messages is acknowledged (a causal history named it, or
    /// enough distinct bloom filters contained it). It leaves the outgoing buffer.
    Acknowledged {
        /// Channel id.
        channel: String,
        /// Message id.
        message_id: String,
    },
    /// One of our messages was found in the bloom filter of `count` distinct
    /// remote senders (below the acknowledgement threshold).
    PossiblyAcknowledged {
        /// Channel id.
        channel: String,
        /// Message id.
        message_id: String,
        /// Distinct senders whose bloom filters contained it.
        count: u32,
    },
    /// One of our messages was given up after its last resend (or evicted from
    /// a full outgoing buffer) without an acknowledgement.
    NotAcknowledged {
        /// Channel id.
        channel: String,
        /// Message id.
        message_id: String,
    },
    /// A received message (content or sync) names dependencies we do not have.
    MissingDependencies {
        /// Channel id.
        channel: String,
        /// The message that depends on them.
        message_id: String,
        /// Missing entries, with the sender's retrieval hints.
        missing: Vec<HistoryEntry>,
    },
    /// Dependencies given up after the buffer timeout; the messages waiting
    /// for them are delivered next, listing them.
    IrretrievablyLost {
        /// Channel id.
        channel: String,
        /// The lost entries.
        missing: Vec<HistoryEntry>,
    },
    /// A buffered message was dropped because the incoming buffer was full.
    BufferOverflow {
        /// Channel id.
        channel: String,
        /// The dropped message.
        message_id: String,
    },
    /// SDS-R: we asked the group to repair these messages.
    RepairRequested {
        /// Channel id.
        channel: String,
        /// Requested ids.
        message_ids: Vec<String>,
    },
    /// SDS-R: another participant asked for repairs.
    RepairRequestReceived {
        /// Channel id.
        channel: String,
        /// Who asked.
        from: String,
        /// Requested ids.
        message_ids: Vec<String>,
    },
    /// Writing the state to the store failed. Nothing is lost: the unwritten
    /// changes are retried (with their latest values) after the next operation.
    PersistenceFailed {
        /// The store's error.
        error: String,
    },
    /// SDS-R: we re-broadcast a message in answer to a repair request.
    RepairResponseSent {
        /// Channel id.
        channel: String,
        /// The re-broadcast message.
        message_id: String,
    },
}
