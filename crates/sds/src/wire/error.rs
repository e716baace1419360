//! Errors of the wire codec.
//!
//! # Offsets
//!
//! Every [`DecodeError`] carries a byte offset into the outermost input
//! buffer (also for problems inside a nested history entry):
//!
//! - framing problems (a truncated or over-long varint, a length that runs
//!   past the end of its enclosing message, a truncated fixed-width value)
//!   point at the first byte of the varint, length prefix or value concerned;
//! - problems with a field as a whole (wrong wire type, group, invalid wire
//!   type, invalid field number, a limit exceeded, too many entries) point at
//!   the first byte of the field's tag;
//! - invalid UTF-8 points at the first offending byte of the string;
//! - a missing required field points at the end of the message (top level) or
//!   at the tag of the history entry that lacks it;
//! - a message larger than [`Limits::max_message_bytes`](super::Limits) is
//!   reported at offset 0, before anything is read.

use std::fmt;

/// A decoding failure, with the byte offset where it was detected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct DecodeError {
    /// Offset in the outermost input buffer.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

/// Where in a message a problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// The tag (field number and wire type) of a field, read before the field is known.
    Tag {
        /// What the tag belongs to: `"message"`, `"causal_history entry"` or
        /// `"repair_request entry"`.
        within: &'static str,
    },
    /// A field whose number is known.
    Field {
        /// The protobuf field number (dialect-specific).
        number: u32,
        /// The field's name in [`Message`](super::Message) or
        /// [`HistoryEntry`](super::HistoryEntry) terms, e.g. `"lamport_timestamp"` or
        /// `"causal_history.retrieval_hint"`; `"unknown"` for fields the codec skips.
        name: &'static str,
    },
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Tag { within } => write!(f, "a field tag of the {within}"),
            Site::Field { number, name } => write!(f, "field {number} ({name})"),
        }
    }
}

/// The protobuf name of a wire type.
fn wire_type_name(wire_type: u8) -> &'static str {
    match wire_type {
        0 => "VARINT",
        1 => "I64",
        2 => "LEN",
        3 => "SGROUP",
        4 => "EGROUP",
        5 => "I32",
        _ => "invalid",
    }
}

/// What went wrong while decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a varint.
    #[error("truncated varint in {site}")]
    TruncatedVarint {
        /// The tag or field the varint belongs to.
        site: Site,
    },
    /// A varint has more than 10 bytes.
    #[error("varint longer than 10 bytes in {site}")]
    VarintTooLong {
        /// The tag or field the varint belongs to.
        site: Site,
    },
    /// A 10-byte varint encodes a value above `u64::MAX`.
    #[error("varint overflows 64 bits in {site}")]
    VarintOverflow {
        /// The tag or field the varint belongs to.
        site: Site,
    },
    /// A length-delimited value claims more bytes than its enclosing message has left.
    #[error("length {len} of {site} overruns the message (bytes left: {available})")]
    LengthOverrun {
        /// The field whose length is wrong.
        site: Site,
        /// The declared length.
        len: u64,
        /// Bytes left in the enclosing message after the length prefix.
        available: usize,
    },
    /// A fixed-width (I32 / I64) value of an unknown field is cut short.
    #[error("truncated {width}-byte fixed value in {site} ({available} bytes left)")]
    TruncatedFixed {
        /// The field.
        site: Site,
        /// 4 or 8.
        width: usize,
        /// Bytes left in the enclosing message.
        available: usize,
    },
    /// A tag's field number is 0 or above 2²⁹ − 1.
    #[error("invalid field number {number} in {within}")]
    InvalidFieldNumber {
        /// The field number read from the tag.
        number: u64,
        /// `"message"`, `"causal_history entry"` or `"repair_request entry"`.
        within: &'static str,
    },
    /// A tag uses wire type 6 or 7, which do not exist.
    #[error("invalid wire type {wire_type} in {site}")]
    InvalidWireType {
        /// The field.
        site: Site,
        /// The wire type (6 or 7).
        wire_type: u8,
    },
    /// A tag uses wire type 3 or 4 (deprecated groups), which SDS never uses.
    #[error("group (wire type {wire_type}) in {site}: groups are not supported")]
    Group {
        /// The field.
        site: Site,
        /// The wire type (3 or 4).
        wire_type: u8,
    },
    /// A known field is encoded with a wire type other than its own.
    #[error(
        "wrong wire type {found} ({}) for {site}, expected {expected} ({})",
        wire_type_name(*found),
        wire_type_name(*expected)
    )]
    WrongWireType {
        /// The field.
        site: Site,
        /// The wire type the field must have.
        expected: u8,
        /// The wire type found.
        found: u8,
    },
    /// A field the dialect requires is absent (nim dialect only).
    #[error("missing required {site}")]
    MissingField {
        /// The missing field.
        site: Site,
    },
    /// An id field (message, sender or channel id, in the message or an entry) is not UTF-8.
    #[error("invalid UTF-8 in {site}")]
    InvalidUtf8 {
        /// The field.
        site: Site,
    },
    /// The whole message is larger than [`Limits::max_message_bytes`](super::Limits).
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More causal-history entries than [`Limits::max_causal_history`](super::Limits).
    #[error("more than {max} causal_history entries")]
    TooManyHistoryEntries {
        /// The limit.
        max: usize,
    },
    /// More repair-request entries than [`Limits::max_repair_request`](super::Limits).
    #[error("more than {max} repair_request entries")]
    TooManyRepairEntries {
        /// The limit.
        max: usize,
    },
    /// An id is longer than [`Limits::max_id_len`](super::Limits).
    #[error("{site} is {len} bytes long, above the limit of {max}")]
    IdTooLong {
        /// The field.
        site: Site,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A retrieval hint is longer than [`Limits::max_hint_len`](super::Limits).
    #[error("{site} is {len} bytes long, above the limit of {max}")]
    HintTooLong {
        /// The field.
        site: Site,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bloom-filter field is longer than [`Limits::max_bloom_bytes`](super::Limits).
    #[error("{site} is {len} bytes long, above the limit of {max}")]
    BloomTooLarge {
        /// The field.
        site: Site,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// An encoding failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The nim dialect requires a lamport timestamp, so it cannot carry ephemeral messages.
    #[error("the nim dialect cannot encode an ephemeral message (lamport timestamp is required)")]
    EphemeralInNim,
}
