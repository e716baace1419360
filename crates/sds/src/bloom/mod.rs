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
//!
//! Bit `i` lives in bit `i % 64` (LSB = bit 0) of 64-bit word `i / 64` in both
//! dialects. [`BloomFilter`] keeps its bits as bytes already in wire order, so
//! serialising is a copy; [`BloomView`] reads a received field in place.
//!
//! [`RollingBloom`] is the per-channel filter that forgets old ids.

mod error;
mod filter;
mod params;
mod proto;
mod rolling;

pub use error::{BloomError, ErrorRateValue};
pub use filter::{BloomFilter, BloomView};
pub use params::{BloomLimits, BloomParams};
pub use rolling::RollingBloom;

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

/// The suffix both peers append to an id for the second base hash.
const SECOND_HASH_SUFFIX: &[u8] = b" b";

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
    ///
    /// - [`BloomEncoding::Spec`]: `|murmur3_x86_32(id, 0) as i32|`. JavaScript's
    ///   `Math.abs` maps `i32::MIN` to 2³¹, as `unsigned_abs` does.
    /// - [`BloomEncoding::Nim`]: `|nim_string_hash(id)|` via `unsigned_abs`, so
    ///   `i64::MIN` gives 2⁶³ (Nim's wrapping `abs` would leave it negative and
    ///   index out of range, with probability 2⁻⁶⁴ per id).
    ///
    /// Ids are hashed as bytes; `@waku/sds` hashes UTF-16 code units, which
    /// agrees for ASCII ids (SDS ids are hex).
    #[inline]
    pub fn new(encoding: BloomEncoding, id: &[u8]) -> Self {
        match encoding {
            BloomEncoding::Spec => {
                let (a, b) = hash::murmur3_x86_32_and_extended(id, SECOND_HASH_SUFFIX, 0);
                ItemHash {
                    a: u64::from((a as i32).unsigned_abs()),
                    b: u64::from((b as i32).unsigned_abs()),
                }
            }
            BloomEncoding::Nim => ItemHash {
                a: hash::nim_string_hash(id).unsigned_abs(),
                b: hash::nim_string_hash_concat(id, SECOND_HASH_SUFFIX).unsigned_abs(),
            },
        }
    }

    /// The `i`-th bit index for a filter of `m` bits: `(a mod m + i · (b mod m)) mod m`,
    /// computed without overflow for any `m`. Returns 0 when `m = 0`.
    #[inline]
    pub fn index(&self, i: u32, m: u64) -> u64 {
        if m == 0 {
            return 0;
        }
        let m128 = u128::from(m);
        let sum = u128::from(self.a % m) + u128::from(i) * u128::from(self.b % m);
        (sum % m128) as u64
    }

    /// The `k` bit indices for a filter of `m` bits, in order `i = 0..k`
    /// (duplicates possible). Empty when `m = 0`.
    #[inline]
    pub fn indices(&self, k: u32, m: u64) -> Indices {
        if m == 0 {
            return Indices {
                next: 0,
                step: 0,
                m: 0,
                remaining: 0,
            };
        }
        Indices {
            next: self.a % m,
            step: self.b % m,
            m,
            remaining: k,
        }
    }
}

/// Iterator over an item's bit indices, from [`ItemHash::indices`].
///
/// Steps by addition and one conditional subtraction instead of a division per index.
#[derive(Clone, Debug)]
pub struct Indices {
    next: u64,
    step: u64,
    m: u64,
    remaining: u32,
}

impl Iterator for Indices {
    type Item = u64;

    #[inline(always)]
    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let cur = self.next;
        // cur, step < m, so the true sum is < 2m: one subtraction reduces it,
        // also when the u64 addition overflows (m > 2^63).
        let (sum, overflow) = cur.overflowing_add(self.step);
        self.next = if overflow || sum >= self.m {
            sum.wrapping_sub(self.m)
        } else {
            sum
        };
        Some(cur)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Indices {}
