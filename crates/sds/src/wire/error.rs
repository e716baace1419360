//! Errors of the wire codec.

/// A decoding failure, with the byte offset where it was detected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct DecodeError {
    /// Offset in the outermost input buffer.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

/// What went wrong while decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Placeholder until the codec lands.
    #[error("not implemented")]
    Unimplemented,
}

/// An encoding failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The nim dialect requires a lamport timestamp, so it cannot carry ephemeral messages.
    #[error("the nim dialect cannot encode an ephemeral message (lamport timestamp is required)")]
    EphemeralInNim,
}
