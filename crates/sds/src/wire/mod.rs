//! SDS messages on the wire, in both dialects.
//!
//! Two protobuf layouts exist in the wild (see `DESIGN.md`):
//!
//! | field              | [`Dialect::Spec`] (LIP-109, `@waku/sds`) | [`Dialect::Nim`] (nim-sds 0.3) |
//! |--------------------|------------------------------------------|--------------------------------|
//! | sender_id          | 1                                        | 7                              |
//! | message_id         | 2                                        | 1                              |
//! | channel_id         | 3                                        | 4 (required)                   |
//! | lamport_timestamp  | 10                                       | 2 (required)                   |
//! | causal_history     | 11                                       | 3                              |
//! | bloom_filter       | 12 (raw big-endian words)                | 6 (nested protobuf)            |
//! | repair_request     | 13                                       | 13                             |
//! | content            | 20                                       | 5 (required)                   |
//!
//! # Decoding
//!
//! Decoding is strict and total: every input either decodes or yields a
//! [`DecodeError`] with the offset of the problem; it never panics and never
//! allocates more than the input justifies (history entries are pushed one by
//! one, each backed by at least two input bytes and bounded by [`Limits`]).
//! Content, retrieval hints and the bloom filter are [`Bytes::slice`]s of the
//! input; ids are validated UTF-8 and copied into `String`s ([`decode`]) or
//! borrowed from the input ([`decode_ref`], which allocates nothing else
//! than the two entry lists; the participant uses it).
//!
//! Rules common to both dialects:
//! - unknown fields with a valid wire type (VARINT, I64, LEN, I32) are skipped;
//! - groups (wire types 3 and 4) and wire types 6 and 7 are errors, wherever they occur;
//! - a known field with the wrong wire type is an error (nim-sds silently
//!   skips such a field; we reject it);
//! - a singular field that occurs more than once: the last occurrence wins;
//! - field number 0 (and numbers above 2²⁹ − 1) are errors.
//!
//! Spec dialect: every field is optional. A present `lamport_timestamp`,
//! `bloom_filter`, `content`, `retrieval_hint` or entry `sender_id` is `Some`,
//! even when empty or zero; absent strings are empty.
//!
//! Nim dialect (the rules of nim-sds 0.3):
//! - `message_id` (1), `lamport_timestamp` (2), `channel_id` (4) and `content`
//!   (5) are required (present, possibly empty); an entry's `message_id` (1) is required;
//! - an empty or absent `bloom_filter` (6) decodes to `None` (nim-sds writes an
//!   empty field when it has no filter);
//! - an empty `retrieval_hint` or entry `sender_id` decodes to `None`;
//! - an empty `content` decodes to `Some(empty)` (the message is a sync message).
//!
//! # Dialect detection
//!
//! [`decode`] scans the top-level fields (skipping their values) up to the
//! first occurrence of field 2. If that field is a VARINT the message is nim
//! (nim-sds always writes `lamport_timestamp` as field 2, a varint); otherwise
//! (field 2 is LEN, which is the spec's `message_id`, or field 2 is absent, or
//! the scan hits malformed framing first) it is decoded as spec, and any
//! framing error is then reported by the spec decoder.
//!
//! # Encoding
//!
//! Both dialects are emitted exactly like the peers (`@waku/sds` 0.0.8's
//! protons codec and nim-sds 0.3's minprotobuf writer), so re-encoding a
//! decoded vector reproduces it byte for byte:
//! - spec: fields in number order 1, 2, 3, 10, 11…, 12, 13…, 20; empty strings
//!   are omitted; `Option` fields are written when `Some`, even if empty; an
//!   entry omits an empty `message_id` and writes `retrieval_hint` / `sender_id` when `Some`;
//! - nim: 1, 2, 3…, 4, 5 (an absent content is written empty), 6 (an absent
//!   bloom is written empty), 7 only if the sender is non-empty, 13…; an entry
//!   always writes 1, and 2 and 3 only if non-empty. A message without a lamport
//!   timestamp cannot be written ([`EncodeError::EphemeralInNim`]).

use bytes::Bytes;

/// The wire layout of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// LIP-109 field numbers, proto3 semantics; what `@waku/sds` 0.0.8 speaks.
    #[default]
    Spec,
    /// nim-sds 0.3 field numbers and emission rules.
    Nim,
}

/// What a message is, as the spec defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Has a lamport timestamp and non-empty content.
    Content,
    /// Has a lamport timestamp and no (or empty) content.
    Sync,
    /// Has no lamport timestamp.
    Ephemeral,
}

/// One entry of a causal history or of a repair request.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct HistoryEntry {
    /// Id of the referenced message.
    pub message_id: String,
    /// Application-specific hint to retrieve the message (e.g. a Waku message hash).
    pub retrieval_hint: Option<Bytes>,
    /// Participant id of the referenced message's original sender (SDS-R).
    pub sender_id: Option<String>,
}

/// A decoded (or to-be-encoded) SDS message, dialect-independent.
///
/// Byte fields are [`Bytes`] slices of the input buffer: decoding never copies content.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Participant id of the sender (empty if absent).
    pub sender_id: String,
    /// Globally unique id of the message (empty if absent).
    pub message_id: String,
    /// Channel the message belongs to (empty if absent).
    pub channel_id: String,
    /// Lamport timestamp; `None` for ephemeral messages.
    pub lamport_timestamp: Option<u64>,
    /// Preceding message ids the sender saw, oldest first.
    pub causal_history: Vec<HistoryEntry>,
    /// The sender's bloom filter, in the encoding of the message's dialect.
    pub bloom_filter: Option<Bytes>,
    /// SDS-R: entries the sender asks to be repaired.
    pub repair_request: Vec<HistoryEntry>,
    /// Application content; `None` or empty for sync messages.
    pub content: Option<Bytes>,
}

impl Message {
    /// Classifies the message as the spec does: no lamport timestamp means
    /// ephemeral; otherwise absent or empty content means sync; otherwise content.
    pub fn kind(&self) -> MessageKind {
        kind_of(self.lamport_timestamp, self.content.as_ref())
    }

    /// The borrowed form, as [`decode_ref`] would have produced it from the
    /// encoded message: ids borrow from `self`, byte fields are cheap
    /// clones. Allocates the two entry lists.
    pub fn borrowed(&self) -> MessageRef<'_> {
        MessageRef {
            sender_id: &self.sender_id,
            message_id: &self.message_id,
            channel_id: &self.channel_id,
            lamport_timestamp: self.lamport_timestamp,
            causal_history: self
                .causal_history
                .iter()
                .map(HistoryEntry::borrowed)
                .collect(),
            bloom_filter: self.bloom_filter.clone(),
            repair_request: self
                .repair_request
                .iter()
                .map(HistoryEntry::borrowed)
                .collect(),
            content: self.content.clone(),
        }
    }
}

impl HistoryEntry {
    /// The borrowed form (see [`Message::borrowed`]).
    pub fn borrowed(&self) -> HistoryEntryRef<'_> {
        HistoryEntryRef {
            message_id: &self.message_id,
            retrieval_hint: self.retrieval_hint.clone(),
            sender_id: self.sender_id.as_deref(),
        }
    }
}

fn kind_of(lamport: Option<u64>, content: Option<&Bytes>) -> MessageKind {
    match (lamport, content) {
        (None, _) => MessageKind::Ephemeral,
        (Some(_), Some(c)) if !c.is_empty() => MessageKind::Content,
        (Some(_), _) => MessageKind::Sync,
    }
}

/// A [`HistoryEntry`] whose ids borrow from the decoded buffer
/// (see [`decode_ref`]).
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct HistoryEntryRef<'a> {
    /// Id of the referenced message.
    pub message_id: &'a str,
    /// Application-specific hint to retrieve the message (a slice of the input).
    pub retrieval_hint: Option<Bytes>,
    /// Participant id of the referenced message's original sender (SDS-R).
    pub sender_id: Option<&'a str>,
}

impl HistoryEntryRef<'_> {
    /// The owned form.
    pub fn to_entry(&self) -> HistoryEntry {
        HistoryEntry {
            message_id: self.message_id.to_owned(),
            retrieval_hint: self.retrieval_hint.clone(),
            sender_id: self.sender_id.map(str::to_owned),
        }
    }
}

/// A decoded [`Message`] whose ids borrow from the input buffer: decoding
/// into it allocates only the two entry lists (see [`decode_ref`]).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MessageRef<'a> {
    /// Participant id of the sender (empty if absent).
    pub sender_id: &'a str,
    /// Globally unique id of the message (empty if absent).
    pub message_id: &'a str,
    /// Channel the message belongs to (empty if absent).
    pub channel_id: &'a str,
    /// Lamport timestamp; `None` for ephemeral messages.
    pub lamport_timestamp: Option<u64>,
    /// Preceding message ids the sender saw, oldest first.
    pub causal_history: Vec<HistoryEntryRef<'a>>,
    /// The sender's bloom filter, in the encoding of the message's dialect.
    pub bloom_filter: Option<Bytes>,
    /// SDS-R: entries the sender asks to be repaired.
    pub repair_request: Vec<HistoryEntryRef<'a>>,
    /// Application content; `None` or empty for sync messages.
    pub content: Option<Bytes>,
}

impl MessageRef<'_> {
    /// Classifies the message like [`Message::kind`].
    pub fn kind(&self) -> MessageKind {
        kind_of(self.lamport_timestamp, self.content.as_ref())
    }

    /// The owned form.
    pub fn to_message(&self) -> Message {
        Message {
            sender_id: self.sender_id.to_owned(),
            message_id: self.message_id.to_owned(),
            channel_id: self.channel_id.to_owned(),
            lamport_timestamp: self.lamport_timestamp,
            causal_history: self.causal_history.iter().map(|e| e.to_entry()).collect(),
            bloom_filter: self.bloom_filter.clone(),
            repair_request: self.repair_request.iter().map(|e| e.to_entry()).collect(),
            content: self.content.clone(),
        }
    }
}

/// Upper bounds enforced while decoding. Everything above them is an error,
/// so a hostile peer cannot make the decoder allocate without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a whole encoded message, in bytes.
    pub max_message_bytes: usize,
    /// Maximum number of causal-history entries.
    pub max_causal_history: usize,
    /// Maximum number of repair-request entries.
    pub max_repair_request: usize,
    /// Maximum length of a message, sender or channel id, in bytes.
    pub max_id_len: usize,
    /// Maximum length of a retrieval hint, in bytes.
    pub max_hint_len: usize,
    /// Maximum length of the bloom-filter field, in bytes.
    pub max_bloom_bytes: usize,
}

impl Limits {
    /// No limit at all: for bytes this process wrote itself (a store's
    /// copies of messages), never for bytes from the network.
    pub const NONE: Limits = Limits {
        max_message_bytes: usize::MAX,
        max_causal_history: usize::MAX,
        max_repair_request: usize::MAX,
        max_id_len: usize::MAX,
        max_hint_len: usize::MAX,
        max_bloom_bytes: usize::MAX,
    };
}

impl Default for Limits {
    /// Generous enough for everything both peers send by default
    /// (`@waku/sds`: 200 history entries and an 18 752-byte bloom; nim-sds:
    /// up to 22 520-byte blooms, 1 MiB content).
    fn default() -> Self {
        Limits {
            max_message_bytes: 2 * 1024 * 1024,
            max_causal_history: 1024,
            max_repair_request: 64,
            max_id_len: 1024,
            max_hint_len: 1024,
            max_bloom_bytes: 256 * 1024,
        }
    }
}

/// A decoded message with the dialect it was written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The detected dialect.
    pub dialect: Dialect,
    /// The message.
    pub message: Message,
}

/// A message decoded by [`decode_ref`], with the dialect it was written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRef<'a> {
    /// The detected dialect.
    pub dialect: Dialect,
    /// The message.
    pub message: MessageRef<'a>,
}

mod codec;
mod error;

pub use codec::{decode, decode_as, decode_ref, decode_ref_as, encode, encode_into, encoded_len};
pub(crate) use codec::{encode_parts_into, EntryParts, MessageParts};
pub use error::{DecodeError, DecodeErrorKind, EncodeError, Site};
