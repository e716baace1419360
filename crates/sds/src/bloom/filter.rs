//! The owned filter and the zero-copy view of a received one.

use std::fmt;

use super::proto::{self, Reader, Value};
use super::{BloomEncoding, BloomError, BloomLimits, BloomParams, ItemHash};

/// Logical byte `j` of the LSB-first bit string is wire byte `j ^ flip`:
/// big-endian words reverse the bytes inside each 8-byte word.
#[inline(always)]
fn flip(encoding: BloomEncoding) -> usize {
    match encoding {
        BloomEncoding::Spec => 7,
        BloomEncoding::Nim => 0,
    }
}

/// Word `w`'s bit `j` is bit position `64 w + j`, whatever the byte order.
#[inline(always)]
fn read_word(encoding: BloomEncoding, chunk: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(chunk);
    match encoding {
        BloomEncoding::Spec => u64::from_be_bytes(b),
        BloomEncoding::Nim => u64::from_le_bytes(b),
    }
}

/// Bits in wire order, of which the first `m` are meaningful (`8 · bits.len() ≥ m`).
#[derive(Clone, Copy)]
struct Bits<'a> {
    encoding: BloomEncoding,
    bits: &'a [u8],
    k: u32,
    m: u64,
}

impl Bits<'_> {
    #[inline(always)]
    fn contains(&self, item: &ItemHash) -> bool {
        if self.m == 0 {
            return false;
        }
        let flip = flip(self.encoding);
        item.indices(self.k, self.m).all(|idx| {
            self.bits
                .get(((idx >> 3) as usize) ^ flip)
                .is_some_and(|b| b & (1u8 << (idx & 7)) != 0)
        })
    }

    /// The words overlapping `0..m`, with the bits at `m` and beyond cleared.
    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        let used = self.m.div_ceil(64);
        let encoding = self.encoding;
        let m = self.m;
        self.bits
            .chunks_exact(8)
            .take(used as usize)
            .enumerate()
            .map(move |(w, chunk)| {
                let v = read_word(encoding, chunk);
                let end = m - 64 * w as u64;
                if end < 64 {
                    v & ((1u64 << end) - 1)
                } else {
                    v
                }
            })
    }

    fn count_ones(&self) -> u64 {
        self.words().map(|w| u64::from(w.count_ones())).sum()
    }

    fn set_bits(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for (w, mut v) in self.words().enumerate() {
            while v != 0 {
                out.push(64 * w as u64 + u64::from(v.trailing_zeros()));
                v &= v - 1;
            }
        }
        out
    }

    fn estimated_items(&self) -> u64 {
        estimate_items(self.count_ones(), self.m, self.k)
    }
}

/// `-(m / k) · ln(1 - X / m)` rounded to the nearest integer; 0 when `X = 0`,
/// `u64::MAX` when every bit is set.
fn estimate_items(x: u64, m: u64, k: u32) -> u64 {
    if x == 0 || m == 0 || k == 0 {
        return 0;
    }
    if x >= m {
        return u64::MAX;
    }
    let (x, m, k) = (x as f64, m as f64, f64::from(k));
    (-(m / k) * (-x / m).ln_1p()).round() as u64
}

/// An owned, mutable filter.
///
/// The bits are stored as bytes already in the encoding's wire order, so
/// [`Self::encode_into`] is a single copy.
#[derive(Clone, PartialEq)]
pub struct BloomFilter {
    encoding: BloomEncoding,
    params: BloomParams,
    /// `8 · params.words()` bytes in wire order.
    bytes: Vec<u8>,
}

impl BloomFilter {
    /// An empty filter.
    ///
    /// `params` should come from [`BloomParams::new`] (or pass
    /// [`BloomParams::validate`]): the filter allocates `8 · params.words()`
    /// bytes. A filter with `m = 0` holds nothing and contains nothing; one with
    /// `k = 0` contains everything.
    pub fn new(encoding: BloomEncoding, params: BloomParams) -> Self {
        let bytes = vec![0; params.words() * 8];
        BloomFilter {
            encoding,
            params,
            bytes,
        }
    }

    /// The encoding.
    pub fn encoding(&self) -> BloomEncoding {
        self.encoding
    }

    /// The parameters.
    pub fn params(&self) -> &BloomParams {
        &self.params
    }

    #[inline(always)]
    fn bits(&self) -> Bits<'_> {
        Bits {
            encoding: self.encoding,
            bits: &self.bytes,
            k: self.params.k,
            m: self.params.m_bits,
        }
    }

    /// Inserts a pre-hashed item (hashed with this filter's encoding).
    #[inline]
    pub fn insert(&mut self, item: &ItemHash) {
        let flip = flip(self.encoding);
        for idx in item.indices(self.params.k, self.params.m_bits) {
            if let Some(b) = self.bytes.get_mut(((idx >> 3) as usize) ^ flip) {
                *b |= 1u8 << (idx & 7);
            }
        }
    }

    /// Hashes `id` with this filter's encoding and inserts it.
    #[inline]
    pub fn insert_id(&mut self, id: &[u8]) {
        self.insert(&ItemHash::new(self.encoding, id));
    }

    /// Looks up a pre-hashed item (hashed with this filter's encoding).
    #[inline]
    pub fn contains(&self, item: &ItemHash) -> bool {
        self.bits().contains(item)
    }

    /// Hashes `id` with this filter's encoding and looks it up.
    #[inline]
    pub fn contains_id(&self, id: &[u8]) -> bool {
        self.contains(&ItemHash::new(self.encoding, id))
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.bytes.fill(0);
    }

    /// Appends the wire bytes (the bloom field's value) to `out`.
    ///
    /// - Spec: the `words` 64-bit words, each big-endian, no header.
    /// - Nim: a nested protobuf `{1: words little-endian, 2: capacity,
    ///   3: ⌊error_rate · 10⁶⌋, 4: k, 5: m}`, all five fields in this order.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self.encoding {
            BloomEncoding::Spec => out.extend_from_slice(&self.bytes),
            BloomEncoding::Nim => {
                out.reserve(self.encoded_len());
                out.push(0x0a);
                proto::put_varint(out, self.bytes.len() as u64);
                out.extend_from_slice(&self.bytes);
                out.push(0x10);
                proto::put_varint(out, self.params.capacity);
                out.push(0x18);
                proto::put_varint(out, error_rate_ppm(self.params.error_rate));
                out.push(0x20);
                proto::put_varint(out, u64::from(self.params.k));
                out.push(0x28);
                proto::put_varint(out, self.params.m_bits);
            }
        }
    }

    /// Length of [`Self::encode_into`]'s output.
    pub fn encoded_len(&self) -> usize {
        match self.encoding {
            BloomEncoding::Spec => self.bytes.len(),
            BloomEncoding::Nim => {
                let n = self.bytes.len();
                5 + proto::varint_len(n as u64)
                    + n
                    + proto::varint_len(self.params.capacity)
                    + proto::varint_len(error_rate_ppm(self.params.error_rate))
                    + proto::varint_len(u64::from(self.params.k))
                    + proto::varint_len(self.params.m_bits)
            }
        }
    }

    /// This filter as a [`BloomView`], as if it had been received.
    pub fn as_view(&self) -> BloomView<'_> {
        BloomView {
            encoding: self.encoding,
            params: self.params,
            bits: &self.bytes,
        }
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u64 {
        self.bits().count_ones()
    }

    /// Positions of the set bits, ascending.
    pub fn set_bits(&self) -> Vec<u64> {
        self.bits().set_bits()
    }

    /// Estimated number of distinct items inserted: with `X` set bits,
    /// `n ≈ -(m / k) · ln(1 - X / m)` (Swamidass and Baldi), rounded to the
    /// nearest integer. 0 for an empty filter, `u64::MAX` when every bit is set.
    pub fn estimated_items(&self) -> u64 {
        self.bits().estimated_items()
    }
}

impl fmt::Debug for BloomFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BloomFilter")
            .field("encoding", &self.encoding)
            .field("params", &self.params)
            .field("count_ones", &self.count_ones())
            .finish()
    }
}

/// Field 3 of the nim-sds encoding: `uint64(error_rate · 1e6)`, truncated
/// (saturating; NaN gives 0).
fn error_rate_ppm(error_rate: f64) -> u64 {
    (error_rate * 1_000_000.0) as u64
}

/// A filter received on the wire, read in place (no copy of the bits).
#[derive(Clone, Copy, PartialEq)]
pub struct BloomView<'a> {
    encoding: BloomEncoding,
    params: BloomParams,
    /// Whole words in wire order, covering at least `m` bits.
    bits: &'a [u8],
}

impl<'a> BloomView<'a> {
    /// Validates and wraps a bloom field from the wire. Spec filters carry no
    /// parameters: `receiver_params` (our own) are assumed. Nim filters carry
    /// theirs, which are checked against `limits`.
    ///
    /// - Spec: `bytes` must hold at least `8 · receiver_params.words()` bytes;
    ///   extra bytes are ignored (as `@waku/sds` does). `receiver_params` must
    ///   have `m > 0` and `k > 0`.
    /// - Nim: the nested protobuf must carry all five fields (unknown fields are
    ///   skipped; a repeated field keeps its last value); `words = len / 8`
    ///   (trailing bytes ignored) and the carried parameters must satisfy
    ///   `0 < m ≤ min(64 · words, limits.max_m_bits)`, `0 < k ≤ limits.max_k`,
    ///   `1 ≤ capacity ≤ m` and `0 < error_rate < 1`.
    ///
    /// Never panics, and never allocates.
    pub fn decode(
        encoding: BloomEncoding,
        bytes: &'a [u8],
        receiver_params: &BloomParams,
        limits: &BloomLimits,
    ) -> Result<Self, BloomError> {
        match encoding {
            BloomEncoding::Spec => Self::decode_spec(bytes, receiver_params),
            BloomEncoding::Nim => Self::decode_nim(bytes, limits),
        }
    }

    fn decode_spec(bytes: &'a [u8], params: &BloomParams) -> Result<Self, BloomError> {
        if params.m_bits == 0 {
            return Err(BloomError::ZeroBits);
        }
        if params.k == 0 {
            return Err(BloomError::ZeroHashes);
        }
        let expected = (params.m_bits / 64 + 1) * 8;
        match usize::try_from(expected) {
            Ok(n) if n <= bytes.len() => Ok(BloomView {
                encoding: BloomEncoding::Spec,
                params: *params,
                bits: &bytes[..n],
            }),
            _ => Err(BloomError::TooShort {
                expected,
                actual: bytes.len(),
                m_bits: params.m_bits,
            }),
        }
    }

    fn decode_nim(bytes: &'a [u8], limits: &BloomLimits) -> Result<Self, BloomError> {
        let mut words: Option<&'a [u8]> = None;
        let mut scalars: [Option<u64>; 4] = [None; 4];
        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Len(b)) => words = Some(b),
                (2..=5, Value::Varint(v)) => scalars[(field - 2) as usize] = Some(v),
                (1, other) => {
                    return Err(BloomError::WrongWireType {
                        field,
                        wire_type: other.wire_type(),
                        expected: proto::WT_LEN,
                    })
                }
                (2..=5, other) => {
                    return Err(BloomError::WrongWireType {
                        field,
                        wire_type: other.wire_type(),
                        expected: proto::WT_VARINT,
                    })
                }
                _ => {}
            }
        }
        const NAMES: [&str; 4] = ["capacity", "error rate", "k", "m"];
        let words = words.ok_or(BloomError::MissingField {
            field: 1,
            name: "bit array",
        })?;
        let mut vals = [0u64; 4];
        for (i, v) in scalars.iter().enumerate() {
            vals[i] = v.ok_or(BloomError::MissingField {
                field: i as u32 + 2,
                name: NAMES[i],
            })?;
        }
        let [capacity, ppm, k, m_bits] = vals;

        let n_words = words.len() / 8;
        let available = (n_words as u64).saturating_mul(64);
        if m_bits == 0 {
            return Err(BloomError::ZeroBits);
        }
        if m_bits > limits.max_m_bits {
            return Err(BloomError::TooManyBits {
                m_bits,
                max: limits.max_m_bits,
            });
        }
        if m_bits > available {
            return Err(BloomError::BitsBeyondData { m_bits, available });
        }
        if k == 0 {
            return Err(BloomError::ZeroHashes);
        }
        if k > u64::from(limits.max_k) {
            return Err(BloomError::TooManyHashes {
                k,
                max: limits.max_k,
            });
        }
        if capacity == 0 || capacity > m_bits {
            return Err(BloomError::InvalidCapacity { capacity, m_bits });
        }
        if ppm == 0 || ppm >= 1_000_000 {
            return Err(BloomError::InvalidCarriedErrorRate { ppm });
        }
        let params = BloomParams {
            capacity,
            error_rate: ppm as f64 / 1_000_000.0,
            k: k as u32,
            m_bits,
        };
        Ok(BloomView {
            encoding: BloomEncoding::Nim,
            params,
            bits: &words[..n_words * 8],
        })
    }

    /// The encoding.
    pub fn encoding(&self) -> BloomEncoding {
        self.encoding
    }

    /// The parameters (carried or assumed).
    pub fn params(&self) -> &BloomParams {
        &self.params
    }

    #[inline(always)]
    fn view_bits(&self) -> Bits<'a> {
        Bits {
            encoding: self.encoding,
            bits: self.bits,
            k: self.params.k,
            m: self.params.m_bits,
        }
    }

    /// Looks up a pre-hashed item (hashed with this view's encoding).
    #[inline]
    pub fn contains(&self, item: &ItemHash) -> bool {
        self.view_bits().contains(item)
    }

    /// Hashes `id` with this view's encoding and looks it up.
    #[inline]
    pub fn contains_id(&self, id: &[u8]) -> bool {
        self.contains(&ItemHash::new(self.encoding, id))
    }

    /// Number of set bits below `m` (bits beyond `m` in the last word are ignored).
    pub fn count_ones(&self) -> u64 {
        self.view_bits().count_ones()
    }

    /// Positions of the set bits below `m`, ascending.
    pub fn set_bits(&self) -> Vec<u64> {
        self.view_bits().set_bits()
    }

    /// Estimated number of distinct items in the filter, as
    /// [`BloomFilter::estimated_items`].
    pub fn estimated_items(&self) -> u64 {
        self.view_bits().estimated_items()
    }
}

impl fmt::Debug for BloomView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BloomView")
            .field("encoding", &self.encoding)
            .field("params", &self.params)
            .field("bytes", &self.bits.len())
            .field("count_ones", &self.count_ones())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_edges() {
        assert_eq!(estimate_items(0, 100, 7), 0);
        assert_eq!(estimate_items(100, 100, 7), u64::MAX);
        assert_eq!(estimate_items(7, 100, 7), 1);
    }

    #[test]
    fn nim_141_bytes() {
        // nim-sds.md §11.3.
        let mut f = BloomFilter::new(BloomEncoding::Nim, BloomParams::new(100, 0.01).unwrap());
        f.insert_id(b"msg1");
        let mut out = Vec::new();
        f.encode_into(&mut out);
        assert_eq!(out.len(), 141);
        assert_eq!(out.len(), f.encoded_len());
        assert_eq!(f.set_bits(), vec![28, 225, 422, 619, 634, 816, 831]);
    }
}
