//! Errors of the bloom filters.

use std::fmt;

/// An `f64` carried in an error, compared bit for bit (so errors stay `Eq`).
#[derive(Clone, Copy, Debug)]
pub struct ErrorRateValue(pub f64);

impl PartialEq for ErrorRateValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for ErrorRateValue {}

impl fmt::Display for ErrorRateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Invalid filter parameters, or a hostile or malformed filter from the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BloomError {
    /// A filter must be sized for at least one item.
    #[error("bloom filter capacity must be at least 1 (got 0)")]
    ZeroCapacity,
    /// The target false-positive rate must lie strictly between 0 and 1.
    #[error("bloom filter error rate {error_rate} is not in (0, 1)")]
    InvalidErrorRate {
        /// The rejected rate.
        error_rate: ErrorRateValue,
    },
    /// `capacity · bits_per_elem` does not fit in memory.
    #[error(
        "bloom filter of capacity {capacity} at error rate {error_rate} needs {bits_per_elem} bits \
         per item: too many bits"
    )]
    TooLarge {
        /// The requested capacity.
        capacity: u64,
        /// The requested error rate.
        error_rate: ErrorRateValue,
        /// Bits per item the error rate requires.
        bits_per_elem: u64,
    },
    /// A spec (`@waku/sds`) filter shorter than the receiver's parameters require.
    #[error(
        "bloom filter is {actual} bytes, fewer than the {expected} bytes that m = {m_bits} bits \
         require"
    )]
    TooShort {
        /// Bytes required (`8 · words`).
        expected: u64,
        /// Bytes received.
        actual: usize,
        /// The receiver's `m`.
        m_bits: u64,
    },
    /// `m = 0`: no bit can be addressed.
    #[error("bloom filter has m = 0 bits")]
    ZeroBits,
    /// `m` is larger than the bits actually carried.
    #[error("bloom filter claims m = {m_bits} bits but carries only {available} bits")]
    BitsBeyondData {
        /// The claimed `m`.
        m_bits: u64,
        /// `64 · words` carried.
        available: u64,
    },
    /// `m` above [`BloomLimits::max_m_bits`](super::BloomLimits::max_m_bits).
    #[error("bloom filter m = {m_bits} bits exceeds the limit of {max} bits")]
    TooManyBits {
        /// The claimed `m`.
        m_bits: u64,
        /// The limit.
        max: u64,
    },
    /// `k = 0`: every lookup would succeed.
    #[error("bloom filter has k = 0 hash functions")]
    ZeroHashes,
    /// `k` above [`BloomLimits::max_k`](super::BloomLimits::max_k).
    #[error("bloom filter k = {k} hash functions exceeds the limit of {max}")]
    TooManyHashes {
        /// The claimed `k`.
        k: u64,
        /// The limit.
        max: u32,
    },
    /// A carried capacity of 0 or larger than `m` (a filter always has at least
    /// one bit per item).
    #[error("bloom filter capacity {capacity} is not in 1..={m_bits} (m = {m_bits})")]
    InvalidCapacity {
        /// The carried capacity.
        capacity: u64,
        /// The carried `m`.
        m_bits: u64,
    },
    /// A carried error rate (in millionths) outside `(0, 1)`.
    #[error("bloom filter error rate {ppm} / 1 000 000 is not in (0, 1)")]
    InvalidCarriedErrorRate {
        /// The carried value of field 3 (`error_rate · 10⁶`).
        ppm: u64,
    },
    /// A required field of the nim-sds nested protobuf is absent.
    #[error("nim bloom filter lacks field {field} ({name})")]
    MissingField {
        /// Field number.
        field: u32,
        /// Field name.
        name: &'static str,
    },
    /// A known field of the nim-sds nested protobuf has the wrong wire type.
    #[error("nim bloom filter field {field} has wire type {wire_type}, expected {expected}")]
    WrongWireType {
        /// Field number.
        field: u64,
        /// Wire type found.
        wire_type: u8,
        /// Wire type expected.
        expected: u8,
    },
    /// A protobuf tag with field number 0 or an unsupported wire type (groups, 6, 7).
    #[error("nim bloom filter has an invalid tag {tag:#x} at byte {offset}")]
    InvalidTag {
        /// The tag value.
        tag: u64,
        /// Byte offset of the tag.
        offset: usize,
    },
    /// The input ends inside a varint.
    #[error("nim bloom filter ends inside a varint at byte {offset}")]
    TruncatedVarint {
        /// Byte offset where the varint starts.
        offset: usize,
    },
    /// A varint longer than 10 bytes or above `u64::MAX`.
    #[error("nim bloom filter has a varint overflowing 64 bits at byte {offset}")]
    VarintOverflow {
        /// Byte offset where the varint starts.
        offset: usize,
    },
    /// A length-delimited or fixed-width field runs past the end of the input.
    #[error(
        "nim bloom filter field at byte {offset} needs {len} bytes but only {remaining} remain"
    )]
    Overrun {
        /// Byte offset of the field's payload.
        offset: usize,
        /// Bytes the field declares.
        len: u64,
        /// Bytes left in the input.
        remaining: usize,
    },
}
