//! String hashes used by the bloom filters and by SDS-R.
//!
//! - [`nim_string_hash`]: Nim 2.x `hash(string)` on 64-bit targets, which is
//!   Google FarmHash `Fingerprint64` (`farmhashna::Hash64`). nim-sds uses it for
//!   its bloom filter and for SDS-R.
//! - [`murmur3_x86_32`]: MurmurHash3 x86 32-bit, Nim's legacy string hash, which
//!   `@waku/sds` uses for its bloom filter.
//! - [`sha256_prefix_u64`]: the first 8 bytes of SHA-256 read big-endian, which
//!   `@waku/sds` uses for SDS-R.
//!
//! Each has a `_concat` variant that hashes `a ++ b` without building the
//! concatenation: the bloom filters hash `id ++ " b"` and SDS-R hashes
//! `participant_id ++ message_id`. None of these functions allocate.

use sha2::{Digest, Sha256};

/// A byte string read at arbitrary offsets: one slice, or two slices back to back.
///
/// Callers guarantee `i + N <= len()` for every read.
trait Bytes {
    fn len(&self) -> usize;
    fn byte(&self, i: usize) -> u8;
    fn read_u32(&self, i: usize) -> u32;
    fn read_u64(&self, i: usize) -> u64;
}

impl Bytes for &[u8] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    #[inline(always)]
    fn byte(&self, i: usize) -> u8 {
        self[i]
    }
    #[inline(always)]
    fn read_u32(&self, i: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self[i..i + 4]);
        u32::from_le_bytes(b)
    }
    #[inline(always)]
    fn read_u64(&self, i: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self[i..i + 8]);
        u64::from_le_bytes(b)
    }
}

/// Inputs up to this length are concatenated into a stack buffer and hashed as
/// one slice (far faster than reading across the seam); longer ones use [`Concat`].
const STACK_CONCAT: usize = 192;

/// Runs `f` on `head ++ tail` without allocating.
#[inline(always)]
fn with_concat<R>(
    head: &[u8],
    tail: &[u8],
    f: impl Fn(&[u8]) -> R,
    g: impl Fn(Concat<'_>) -> R,
) -> R {
    let n = head.len() + tail.len();
    if n <= STACK_CONCAT {
        let mut buf = [0u8; STACK_CONCAT];
        buf[..head.len()].copy_from_slice(head);
        buf[head.len()..n].copy_from_slice(tail);
        f(&buf[..n])
    } else {
        g(Concat { head, tail })
    }
}

/// `head ++ tail`, read without copying (except for reads straddling the seam).
#[derive(Clone, Copy)]
struct Concat<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl Concat<'_> {
    #[inline(always)]
    fn read_n<const N: usize>(&self, i: usize) -> [u8; N] {
        let mut b = [0u8; N];
        let h = self.head.len();
        if i + N <= h {
            b.copy_from_slice(&self.head[i..i + N]);
        } else if i >= h {
            b.copy_from_slice(&self.tail[i - h..i - h + N]);
        } else {
            let split = h - i;
            b[..split].copy_from_slice(&self.head[i..]);
            b[split..].copy_from_slice(&self.tail[..N - split]);
        }
        b
    }
}

impl Bytes for Concat<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
    #[inline(always)]
    fn byte(&self, i: usize) -> u8 {
        let h = self.head.len();
        if i < h {
            self.head[i]
        } else {
            self.tail[i - h]
        }
    }
    #[inline(always)]
    fn read_u32(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.read_n::<4>(i))
    }
    #[inline(always)]
    fn read_u64(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.read_n::<8>(i))
    }
}

// ---------------------------------------------------------------------------
// FarmHash Fingerprint64 (farmhashna::Hash64)
// ---------------------------------------------------------------------------

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

#[inline(always)]
fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

#[inline(always)]
fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

#[inline(always)]
fn hash_len_0_to_16<B: Bytes>(s: &B) -> u64 {
    let len = s.len();
    if len >= 8 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = s.read_u64(0).wrapping_add(K2);
        let b = s.read_u64(len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        hash_len16(c, d, mul)
    } else if len >= 4 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = u64::from(s.read_u32(0));
        hash_len16(
            (len as u64).wrapping_add(a << 3),
            u64::from(s.read_u32(len - 4)),
            mul,
        )
    } else if len > 0 {
        let a = u32::from(s.byte(0));
        let b = u32::from(s.byte(len >> 1));
        let c = u32::from(s.byte(len - 1));
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K0)).wrapping_mul(K2)
    } else {
        K2
    }
}

#[inline(always)]
fn hash_len_17_to_32<B: Bytes>(s: &B) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = s.read_u64(0).wrapping_mul(K1);
    let b = s.read_u64(8);
    let c = s.read_u64(len - 8).wrapping_mul(mul);
    let d = s.read_u64(len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

#[inline(always)]
fn hash_len_33_to_64<B: Bytes>(s: &B) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = s.read_u64(0).wrapping_mul(K2);
    let b = s.read_u64(8);
    let c = s.read_u64(len - 8).wrapping_mul(mul);
    let d = s.read_u64(len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len16(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = s.read_u64(16).wrapping_mul(mul);
    let f = s.read_u64(24);
    let g = y.wrapping_add(s.read_u64(len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(s.read_u64(len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// The 32-byte mixing step: returns `(first, second)`.
#[inline(always)]
fn weak_hash_len32_with_seeds<B: Bytes>(s: &B, at: usize, a: u64, b: u64) -> (u64, u64) {
    let w = s.read_u64(at);
    let x = s.read_u64(at + 8);
    let y = s.read_u64(at + 16);
    let z = s.read_u64(at + 24);
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

fn hash_len_over_64<B: Bytes>(s: &B) -> u64 {
    const SEED: u64 = 81;
    let len = s.len();
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(s.read_u64(0));

    let end = ((len - 1) / 64) * 64;
    let last64 = end + ((len - 1) & 63) - 63;
    let mut p = 0usize;
    loop {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(s.read_u64(p + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(s.read_u64(p + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(s.read_u64(p + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, p, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(
            s,
            p + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(s.read_u64(p + 16)),
        );
        std::mem::swap(&mut z, &mut x);
        p += 64;
        if p == end {
            break;
        }
    }

    let mul = K1.wrapping_add((z & 0xff) << 1);
    let p = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(s.read_u64(p + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(s.read_u64(p + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(s.read_u64(p + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, p, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(
        s,
        p + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(s.read_u64(p + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len16(
        hash_len16(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

#[inline(always)]
fn farmhash64<B: Bytes>(s: &B) -> u64 {
    let len = s.len();
    if len <= 16 {
        hash_len_0_to_16(s)
    } else if len <= 32 {
        hash_len_17_to_32(s)
    } else if len <= 64 {
        hash_len_33_to_64(s)
    } else {
        hash_len_over_64(s)
    }
}

/// FarmHash `Fingerprint64` (`farmhashna::Hash64`) of `bytes`.
pub fn farmhash_fingerprint64(bytes: &[u8]) -> u64 {
    farmhash64(&bytes)
}

/// Nim 2.x `hash(string)` on 64-bit targets: FarmHash Fingerprint64 of the
/// bytes, reinterpreted as a signed 64-bit integer.
///
/// This is what nim-sds (built natively with Nim ≥ 2.0, without
/// `-d:nimStringHash2`) uses for its bloom filter and SDS-R timings.
pub fn nim_string_hash(bytes: &[u8]) -> i64 {
    farmhash64(&bytes) as i64
}

/// [`nim_string_hash`] of `head ++ tail`, without building the concatenation.
pub fn nim_string_hash_concat(head: &[u8], tail: &[u8]) -> i64 {
    with_concat(head, tail, |s| farmhash64(&s), |c| farmhash64(&c)) as i64
}

// ---------------------------------------------------------------------------
// MurmurHash3 x86_32
// ---------------------------------------------------------------------------

const M_C1: u32 = 0xcc9e_2d51;
const M_C2: u32 = 0x1b87_3593;

#[inline(always)]
fn murmur_mix_k(k: u32) -> u32 {
    k.wrapping_mul(M_C1).rotate_left(15).wrapping_mul(M_C2)
}

#[inline(always)]
fn murmur_block(h: u32, k: u32) -> u32 {
    (h ^ murmur_mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Streaming MurmurHash3 x86_32: `finish` does not consume the state, so a
/// prefix's hash and an extension's hash share the work on the prefix.
#[derive(Clone, Copy)]
struct Murmur3 {
    h: u32,
    carry: [u8; 4],
    carried: usize,
    total: usize,
}

impl Murmur3 {
    #[inline(always)]
    fn new(seed: u32) -> Self {
        Murmur3 {
            h: seed,
            carry: [0; 4],
            carried: 0,
            total: 0,
        }
    }

    #[inline(always)]
    fn update(&mut self, mut p: &[u8]) {
        self.total = self.total.wrapping_add(p.len());
        if self.carried > 0 {
            let take = (4 - self.carried).min(p.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&p[..take]);
            self.carried += take;
            p = &p[take..];
            if self.carried < 4 {
                return;
            }
            self.h = murmur_block(self.h, u32::from_le_bytes(self.carry));
        }
        let chunks = p.chunks_exact(4);
        let rem = chunks.remainder();
        for c in chunks {
            self.h = murmur_block(self.h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        self.carry[..rem.len()].copy_from_slice(rem);
        self.carried = rem.len();
    }

    #[inline(always)]
    fn finish(&self) -> u32 {
        let mut h = self.h;
        if self.carried > 0 {
            let mut k = 0u32;
            for (i, b) in self.carry[..self.carried].iter().enumerate() {
                k ^= u32::from(*b) << (8 * i);
            }
            h ^= murmur_mix_k(k);
        }
        // The length is mixed in modulo 2^32, as in the reference implementation.
        h ^= self.total as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        h
    }
}

/// MurmurHash3 x86 32-bit of `bytes` with `seed`.
///
/// `@waku/sds` hashes ids with seed 0 (Nim's legacy string hash compiled to
/// JavaScript). It feeds UTF-16 code units rather than UTF-8 bytes, which only
/// agree for ASCII ids; SDS ids are hex.
pub fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    let mut st = Murmur3::new(seed);
    st.update(bytes);
    st.finish()
}

/// [`murmur3_x86_32`] of `head ++ tail`, without building the concatenation.
pub fn murmur3_x86_32_concat(head: &[u8], tail: &[u8], seed: u32) -> u32 {
    let mut st = Murmur3::new(seed);
    st.update(head);
    st.update(tail);
    st.finish()
}

/// `(murmur3_x86_32(head), murmur3_x86_32(head ++ tail))` in one pass over `head`:
/// both hashes share the state after `head`'s full 4-byte blocks.
#[inline]
pub fn murmur3_x86_32_and_extended(head: &[u8], tail: &[u8], seed: u32) -> (u32, u32) {
    let mut st = Murmur3::new(seed);
    st.update(head);
    let short = st.finish();
    st.update(tail);
    (short, st.finish())
}

// ---------------------------------------------------------------------------
// SHA-256 prefix
// ---------------------------------------------------------------------------

fn sha256_prefix(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The first 8 bytes of SHA-256 of `bytes`, read as a big-endian `u64`
/// (`@waku/sds`'s SDS-R hash).
pub fn sha256_prefix_u64(bytes: &[u8]) -> u64 {
    sha256_prefix(&Sha256::digest(bytes))
}

/// [`sha256_prefix_u64`] of `head ++ tail`, without building the concatenation.
pub fn sha256_prefix_u64_concat(head: &[u8], tail: &[u8]) -> u64 {
    let mut h = Sha256::new();
    h.update(head);
    h.update(tail);
    sha256_prefix(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(nim_string_hash(b""), -7286425919675154353);
        assert_eq!(nim_string_hash(b"msg-1"), 7995000676772511300);
        assert_eq!(nim_string_hash(b"msg-1 b"), -6138618504618002191);
        assert_eq!(
            nim_string_hash_concat(b"msg-1", b" b"),
            -6138618504618002191
        );
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248bfa47);
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32_concat(b"hello", b" b", 0), 0x38a003fa);
    }

    #[test]
    fn concat_matches_every_split() {
        let data: Vec<u8> = (0..(STACK_CONCAT as u32 + 80))
            .map(|i| (i * 37 + 11) as u8)
            .collect();
        for len in 0..data.len() {
            let whole = &data[..len];
            let f = nim_string_hash(whole);
            let m = murmur3_x86_32(whole, 7);
            let s = sha256_prefix_u64(whole);
            for split in 0..=len {
                let (a, b) = whole.split_at(split);
                assert_eq!(nim_string_hash_concat(a, b), f, "len {len} split {split}");
                assert_eq!(murmur3_x86_32_concat(a, b, 7), m, "len {len} split {split}");
                let (short, long) = murmur3_x86_32_and_extended(a, b, 7);
                assert_eq!((short, long), (murmur3_x86_32(a, 7), m));
                assert_eq!(sha256_prefix_u64_concat(a, b), s);
            }
        }
    }
}
