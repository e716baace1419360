//! Column encodings that SQLite has no type for.

/// A `u64` stored bit for bit in SQLite's signed 64-bit integer.
pub(crate) fn to_sql(v: u64) -> i64 {
    v as i64
}

/// The inverse of [`to_sql`].
pub(crate) fn from_sql(v: i64) -> u64 {
    v as u64
}

/// A list of ids as one BLOB: for each id, its length as a LEB128 varint,
/// then its UTF-8 bytes. The empty list is the empty BLOB.
pub(crate) fn encode_ids(ids: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.iter().map(|s| s.len() + 2).sum());
    for id in ids {
        let mut n = id.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// Decodes [`encode_ids`]'s output; `None` if the bytes are not such a list.
pub(crate) fn decode_ids(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut len: u64 = 0;
        let mut shift = 0u32;
        loop {
            let (&b, rest) = bytes.split_first()?;
            bytes = rest;
            if shift > 56 {
                return None;
            }
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let len = usize::try_from(len).ok()?;
        if len > bytes.len() {
            return None;
        }
        let (s, rest) = bytes.split_at(len);
        out.push(std::str::from_utf8(s).ok()?.to_string());
        bytes = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec![String::new()],
            vec!["a".into(), "".into(), "ünï\ncode".into()],
            vec!["x".repeat(300), "y".repeat(20_000)],
        ];
        for ids in cases {
            assert_eq!(decode_ids(&encode_ids(&ids)), Some(ids));
        }
    }

    #[test]
    fn bad_id_lists_are_rejected() {
        assert_eq!(decode_ids(&[5, b'a']), None); // too short
        assert_eq!(decode_ids(&[0x80]), None); // truncated varint
        assert_eq!(decode_ids(&[1, 0xff]), None); // not UTF-8
        assert_eq!(decode_ids(&[0xff; 12]), None); // varint too long
    }

    #[test]
    fn u64_round_trips() {
        for v in [0, 1, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            assert_eq!(from_sql(to_sql(v)), v);
        }
    }
}
