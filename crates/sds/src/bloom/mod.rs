//! Bloom filters of both dialects, bit-exact with the peers.
//!
//! Both peers use the same sizing formulas and Kirsch-Mitzenmacher double
//! hashing (`index_i = (hA + i * hB) mod m`, `hA = |H(id)| mod m`,
//! `hB = |H(id ++ " b")| mod m`) and differ in the hash `H` and the bytes:
//!
//! | | [`BloomEncoding::Spec`] (`@waku/sds`) | [`BloomEncoding::Nim`] (nim-sds) |
//! |---|---|---|
//! | `H` | murmur3_x86_32 (seed 0) as `i32` | FarmHash Fingerprint64 as `i64` |
//! | bytes | raw 64-bit words, big-endian, no header | nested protobuf, little-endian words + parameters |
//! | parameters | the receiver's own | carried in the message |

use crate::hash;

/// Which peer's hash and byte layout a filter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BloomEncoding {
    /// murmur3-32 hash, raw big-endian words (`@waku/sds`, spec dialect).
    #[default]
    Spec,
    /// Nim FarmHash-64, nested protobuf with little-endian words (nim-sds).
    Nim,
}

/// Sizing of a filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BloomParams {
    /// Number of items the filter is sized for.
    pub capacity: u64,
    /// Target false-positive rate.
    pub error_rate: f64,
    /// Number of hash functions.
    pub k: u32,
    /// Number of bits.
    pub m_bits: u64,
}

impl BloomParams {
    /// The parameters both peers derive from a capacity and an error rate:
    /// `bits_per_elem = ceil(-ln p / ln² 2)`, `k = round(ln 2 · bits_per_elem)`,
    /// `m = capacity · bits_per_elem`.
    pub fn new(capacity: u64, error_rate: f64) -> Result<Self, BloomError> {
        let _ = (capacity, error_rate);
        todo!("bloom params")
    }

    /// Number of 64-bit words both peers allocate: `1 + m / 64`.
    pub fn words(&self) -> usize {
        1 + (self.m_bits / 64) as usize
    }
}

impl Default for BloomParams {
    /// Capacity 10 000, error rate 0.001: k = 10, m = 150 000 bits (2 344 words, 18 752 bytes).
    fn default() -> Self {
        BloomParams { capacity: 10_000, error_rate: 0.001, k: 10, m_bits: 150_000 }
    }
}

/// The two base hashes of an id, computed once and reusable for any `m`:
/// `a = |H(id)|`, `b = |H(id ++ " b")|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemHash {
    /// `|H(id)|`.
    pub a: u64,
    /// `|H(id ++ " b")|`.
    pub b: u64,
}

impl ItemHash {
    /// Hashes an id with the given encoding's hash function.
    pub fn new(encoding: BloomEncoding, id: &[u8]) -> Self {
        let _ = (encoding, id, hash::nim_string_hash);
        todo!("item hash")
    }

    /// The `i`-th bit index for a filter of `m` bits (`m > 0`).
    #[inline]
    pub fn index(&self, i: u32, m: u64) -> u64 {
        ((self.a % m) + u64::from(i) * (self.b % m)) % m
    }
}

/// Bounds on filter parameters accepted from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BloomLimits {
    /// Largest `k` accepted.
    pub max_k: u32,
    /// Largest `m` accepted, in bits.
    pub max_m_bits: u64,
}

impl Default for BloomLimits {
    fn default() -> Self {
        BloomLimits { max_k: 64, max_m_bits: 8 * 1024 * 1024 }
    }
}

/// A hostile or malformed filter from the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BloomError {
    /// Placeholder until the implementation lands.
    #[error("not implemented")]
    Unimplemented,
}

/// An owned, mutable filter.
#[derive(Clone, Debug, PartialEq)]
pub struct BloomFilter {
    encoding: BloomEncoding,
    params: BloomParams,
    words: Vec<u64>,
}

impl BloomFilter {
    /// An empty filter.
    pub fn new(encoding: BloomEncoding, params: BloomParams) -> Self {
        let words = vec![0; params.words()];
        BloomFilter { encoding, params, words }
    }
    /// The encoding.
    pub fn encoding(&self) -> BloomEncoding {
        self.encoding
    }
    /// The parameters.
    pub fn params(&self) -> &BloomParams {
        &self.params
    }
    /// Inserts a pre-hashed item.
    pub fn insert(&mut self, item: &ItemHash) {
        let _ = item;
        todo!()
    }
    /// Looks up a pre-hashed item.
    pub fn contains(&self, item: &ItemHash) -> bool {
        let _ = item;
        todo!()
    }
    /// Appends the wire bytes (the bloom field's value) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let _ = (out, &self.words);
        todo!()
    }
    /// Length of [`Self::encode_into`]'s output.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }
}

/// A filter received on the wire, read in place (no copy of the bits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BloomView<'a> {
    encoding: BloomEncoding,
    params: BloomParams,
    bits: &'a [u8],
}

impl<'a> BloomView<'a> {
    /// Validates and wraps a bloom field from the wire. Spec filters carry no
    /// parameters: `receiver_params` (our own) are assumed. Nim filters carry
    /// theirs, which are checked against `limits`.
    pub fn decode(
        encoding: BloomEncoding,
        bytes: &'a [u8],
        receiver_params: &BloomParams,
        limits: &BloomLimits,
    ) -> Result<Self, BloomError> {
        let _ = (encoding, bytes, receiver_params, limits);
        Err(BloomError::Unimplemented)
    }
    /// The parameters (carried or assumed).
    pub fn params(&self) -> &BloomParams {
        &self.params
    }
    /// Looks up a pre-hashed item.
    pub fn contains(&self, item: &ItemHash) -> bool {
        let _ = (item, self.bits, self.encoding);
        todo!()
    }
}

/// A per-channel filter that rolls over when full (stub until the bloom branch lands).
#[derive(Clone, Debug)]
pub struct RollingBloom {
    filter: BloomFilter,
}

impl RollingBloom {
    /// An empty rolling filter.
    pub fn new(encoding: BloomEncoding, params: BloomParams) -> Self {
        RollingBloom { filter: BloomFilter::new(encoding, params) }
    }
    /// Inserts an item.
    pub fn insert(&mut self, item: &ItemHash) {
        self.filter.insert(item)
    }
    /// Looks up an item.
    pub fn contains(&self, item: &ItemHash) -> bool {
        self.filter.contains(item)
    }
    /// The current filter.
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }
}
