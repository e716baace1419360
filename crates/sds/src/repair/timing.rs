//! T_req, T_resp and response groups, per dialect.
//!
//! All times are milliseconds. The functions return offsets from "now": the
//! caller adds its current time.
//!
//! The spec (LIP-109, SDS-R) writes
//!
//! ```text
//! T_req    = current_time + hash(participant_id, message_id) % (T_max - T_min) + T_min
//! distance = hash(participant_id) XOR hash(sender_id)
//! T_resp   = current_time + distance*hash(message_id) % T_max
//! in group ⇔ hash(participant_id, message_id) % num_response_groups
//!                == hash(sender_id, message_id) % num_response_groups
//! ```
//!
//! without defining `hash` or the two-argument form. Both peers read
//! `hash(a, b)` as the hash of the plain concatenation `a ++ b` (no separator)
//! and differ in everything else:
//!
//! | | [`RepairHash::Spec`] (`@waku/sds` 0.0.8) | [`RepairHash::Nim`] (nim-sds 0.3) |
//! |---|---|---|
//! | `H(s)` | first 8 bytes of `sha256(s)`, big-endian `u64` | Nim string hash (FarmHash Fingerprint64) as `i64`, then `abs` |
//! | `T_req` | `H(p‖m) mod (T_max − T_min) + T_min` | same, `abs` of the signed hash |
//! | `T_resp` | `((H(p) xor H(s)) · H(m)) mod T_max`, exact 128-bit product | `dist = abs(H(p) xor H(s))` (signed xor), `((dist mod T) · (abs(H(m)) mod T)) mod T` in wrapping `u64` |
//! | group | `H(p‖m) mod n == H(s‖m) mod n` | same, `abs` of the signed hashes |
//!
//! Details where the peers deviate from the spec's text, or from each other:
//!
//! - `abs` (Nim) is `unsigned_abs`: `i64::MIN` maps to 2⁶³ instead of raising
//!   Nim's `OverflowDefect` (probability 2⁻⁶⁴).
//! - Nim's `T_resp` reduces both factors mod `T_max` before multiplying in
//!   `u64`; that equals the spec's `distance·hash mod T_max` exactly while
//!   `T_max < 2³²` ms (49 days). Beyond, Nim's product wraps, and so does ours.
//! - `@waku/sds` uses BigInt: `T_req` with `T_max == T_min`, or `T_resp` with
//!   `T_max == 0`, throws a `RangeError` there. We return `T_min` and 0, as
//!   nim-sds does. With `T_max < T_min`, JavaScript's `%` keeps the dividend's
//!   sign, so `@waku/sds` computes `H mod (T_min − T_max) + T_min`, which we
//!   reproduce; nim-sds returns `T_min` for any `T_max ≤ T_min`.
//! - `@waku/sds` never puts a participant in the response group of a request
//!   without a sender id (empty `sender_id` → `false`, checked before `n`);
//!   nim-sds applies the formula (with `n ≤ 1`, `true`).
//! - The number of groups: the spec recommends `participants / 128 + 1`
//!   ([`response_groups_for`]); `@waku/sds`'s `updateResponseGroups` uses
//!   `max(1, participants / 128)` ([`waku_sds_response_groups_for`]); nim-sds
//!   takes it from configuration (default 1).

use crate::hash::{
    nim_string_hash, nim_string_hash_concat, sha256_prefix_u64, sha256_prefix_u64_concat,
};

/// Which peer's SDS-R hash and formulas to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RepairHash {
    /// nim-sds: Nim's string hash (FarmHash Fingerprint64), signed, with `abs`.
    Nim,
    /// `@waku/sds` (spec dialect): the first 8 bytes of SHA-256, big-endian.
    #[default]
    Spec,
}

/// `|H(a ++ b)|` for nim-sds, `H(a ++ b)` for `@waku/sds`.
fn h2(hash: RepairHash, a: &[u8], b: &[u8]) -> u64 {
    match hash {
        RepairHash::Nim => nim_string_hash_concat(a, b).unsigned_abs(),
        RepairHash::Spec => sha256_prefix_u64_concat(a, b),
    }
}

/// Offset of the repair request time `T_req` from now, in `[T_min, T_max)`:
/// `H(participant_id ‖ message_id) mod (T_max − T_min) + T_min`.
///
/// `participant_id` is our own id; `message_id` the missing message's. When
/// `T_max == T_min` both return `T_min`; for `T_max < T_min` see the module docs.
pub fn t_req_offset(
    hash: RepairHash,
    participant_id: impl AsRef<[u8]>,
    message_id: impl AsRef<[u8]>,
    t_min: u64,
    t_max: u64,
) -> u64 {
    let (p, m) = (participant_id.as_ref(), message_id.as_ref());
    match hash {
        RepairHash::Nim => {
            if t_max <= t_min {
                t_min
            } else {
                t_min + h2(hash, p, m) % (t_max - t_min)
            }
        }
        RepairHash::Spec => {
            // BigInt `%` by a negative range keeps the dividend's sign.
            let range = t_max.abs_diff(t_min);
            if range == 0 {
                t_min
            } else {
                t_min.saturating_add(h2(hash, p, m) % range)
            }
        }
    }
}

/// Offset of the repair response time `T_resp` from now, in `[0, T_max)`.
///
/// `participant_id` is our own id, `sender_id` the original sender of the
/// requested message. The original sender (distance 0) answers at once
/// (offset 0). `T_max == 0` gives 0.
pub fn t_resp_offset(
    hash: RepairHash,
    participant_id: impl AsRef<[u8]>,
    sender_id: impl AsRef<[u8]>,
    message_id: impl AsRef<[u8]>,
    t_max: u64,
) -> u64 {
    let (p, s, m) = (
        participant_id.as_ref(),
        sender_id.as_ref(),
        message_id.as_ref(),
    );
    if t_max == 0 {
        return 0;
    }
    match hash {
        RepairHash::Nim => {
            let dist = (nim_string_hash(p) ^ nim_string_hash(s)).unsigned_abs();
            if dist == 0 {
                return 0;
            }
            let mh = nim_string_hash(m).unsigned_abs();
            ((dist % t_max).wrapping_mul(mh % t_max)) % t_max
        }
        RepairHash::Spec => {
            let dist = sha256_prefix_u64(p) ^ sha256_prefix_u64(s);
            let product = u128::from(dist) * u128::from(sha256_prefix_u64(m));
            (product % u128::from(t_max)) as u64
        }
    }
}

/// Whether `participant_id` is in the response group of `message_id` sent by
/// `sender_id`: `H(participant_id ‖ message_id) mod n == H(sender_id ‖ message_id) mod n`.
///
/// With `num_groups ≤ 1` everyone is. [`RepairHash::Spec`] (`@waku/sds`)
/// returns `false` for an empty `sender_id`.
pub fn in_response_group(
    hash: RepairHash,
    participant_id: impl AsRef<[u8]>,
    sender_id: impl AsRef<[u8]>,
    message_id: impl AsRef<[u8]>,
    num_groups: u32,
) -> bool {
    let (p, s, m) = (
        participant_id.as_ref(),
        sender_id.as_ref(),
        message_id.as_ref(),
    );
    if hash == RepairHash::Spec && s.is_empty() {
        return false;
    }
    if num_groups <= 1 {
        return true;
    }
    let n = u64::from(num_groups);
    h2(hash, p, m) % n == h2(hash, s, m) % n
}

/// The spec's recommended number of response groups for an expected number of
/// participants: one per 128, `n / 128 + 1`.
pub fn response_groups_for(expected_participants: u64) -> u32 {
    u32::try_from(expected_participants / 128 + 1).unwrap_or(u32::MAX)
}

/// `@waku/sds`'s `updateResponseGroups`: `max(1, n / 128)` (one fewer than the
/// spec's rule from 128 participants on).
pub fn waku_sds_response_groups_for(expected_participants: u64) -> u32 {
    u32::try_from((expected_participants / 128).max(1)).unwrap_or(u32::MAX)
}
