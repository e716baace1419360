//! String hashes used by the bloom filters and by SDS-R.

/// Nim 2.x `hash(string)` on 64-bit targets: FarmHash Fingerprint64 of the
/// bytes, reinterpreted as a signed 64-bit integer.
pub fn nim_string_hash(bytes: &[u8]) -> i64 {
    let _ = bytes;
    todo!("farmhash")
}
