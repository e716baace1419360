//! Protobuf encoding and decoding of both dialects.

use super::{Decoded, Dialect, Limits, Message};
use super::{DecodeError, DecodeErrorKind, EncodeError};
use bytes::Bytes;

/// Decodes one message, detecting its dialect.
pub fn decode(bytes: Bytes, limits: &Limits) -> Result<Decoded, DecodeError> {
    let _ = (bytes, limits);
    Err(DecodeError { offset: 0, kind: DecodeErrorKind::Unimplemented })
}

/// Decodes one message in the given dialect.
pub fn decode_as(bytes: Bytes, dialect: Dialect, limits: &Limits) -> Result<Message, DecodeError> {
    let _ = (bytes, dialect, limits);
    Err(DecodeError { offset: 0, kind: DecodeErrorKind::Unimplemented })
}

/// Encodes a message in the given dialect.
pub fn encode(msg: &Message, dialect: Dialect) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(encoded_len(msg, dialect));
    encode_into(msg, dialect, &mut out)?;
    Ok(out)
}

/// Appends the encoding of a message to `out`.
pub fn encode_into(msg: &Message, dialect: Dialect, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let _ = (msg, dialect, out);
    todo!("wire codec")
}

/// The exact number of bytes [`encode`] produces.
pub fn encoded_len(msg: &Message, dialect: Dialect) -> usize {
    let _ = (msg, dialect);
    0
}
