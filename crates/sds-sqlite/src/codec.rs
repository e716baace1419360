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
        put_varint(&mut out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// Decodes [`encode_ids`]'s output; `None` if the bytes are not such a list.
pub(crate) fn decode_ids(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = usize::try_from(get_varint(&mut bytes)?).ok()?;
        if len > bytes.len() {
            return None;
        }
        let (s, rest) = bytes.split_at(len);
        out.push(std::str::from_utf8(s).ok()?.to_string());
        bytes = rest;
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        if shift > 56 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
}

/// The ids of a stored message's causal history (in order), borrowed from
/// its bytes, or `None` if the bytes are not a message
/// (`sds::store::encode_message` writes the spec dialect, without limits).
pub(crate) fn history_ids(message: &bytes::Bytes) -> Option<Vec<&str>> {
    let m = sds::wire::decode_ref_as(message, sds::Dialect::Spec, &sds::wire::Limits::NONE).ok()?;
    Some(m.causal_history.iter().map(|e| e.message_id).collect())
}

/// A buffered message's unmet and lost dependencies as positions in its
/// causal history `history` (column `incoming.deps`, schema version 5): the
/// number of unmet ones, their positions, then the number of lost ones and
/// their positions (LEB128 varints). A few bytes instead of the ids
/// (~65 bytes each). `None` if both lists are empty or some id is not in
/// the history (the ids are then stored as they are).
pub(crate) fn encode_deps(
    history: &[impl AsRef<str>],
    unmet: &[String],
    lost: &[String],
) -> Option<Vec<u8>> {
    if unmet.is_empty() && lost.is_empty() {
        return None;
    }
    let index: Option<std::collections::HashMap<&str, usize>> = (history.len() > 32).then(|| {
        let mut m = std::collections::HashMap::with_capacity(history.len());
        for (i, h) in history.iter().enumerate() {
            m.entry(h.as_ref()).or_insert(i);
        }
        m
    });
    let position = |id: &String| match &index {
        Some(m) => m.get(id.as_str()).copied(),
        None => history.iter().position(|h| h.as_ref() == id),
    };
    let mut out = Vec::with_capacity(2 + unmet.len() + lost.len());
    for list in [unmet, lost] {
        put_varint(&mut out, list.len() as u64);
        for id in list {
            put_varint(&mut out, position(id)? as u64);
        }
    }
    Some(out)
}

/// Decodes [`encode_deps`]'s output against the same history: (unmet,
/// lost); `None` if the bytes are not such positions.
pub(crate) fn decode_deps(
    mut bytes: &[u8],
    history: &[impl AsRef<str>],
) -> Option<(Vec<String>, Vec<String>)> {
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = get_varint(&mut bytes)?;
        if n > history.len() as u64 * 2 + 2 {
            return None;
        }
        for _ in 0..n {
            let at = usize::try_from(get_varint(&mut bytes)?).ok()?;
            list.push(history.get(at)?.as_ref().to_owned());
        }
    }
    if !bytes.is_empty() {
        return None;
    }
    let [unmet, lost] = lists;
    Some((unmet, lost))
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
    fn deps_round_trip_as_positions() {
        let history: Vec<String> = ["a", "b", "c", "b"].map(String::from).to_vec();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // Any order, and a repeated id (it names the same string either way).
        for (unmet, lost) in [
            (s(&["c", "a"]), s(&[])),
            (s(&[]), s(&["b"])),
            (s(&["b", "c"]), s(&["a", "b"])),
        ] {
            let b = encode_deps(&history, &unmet, &lost).unwrap();
            assert!(b.len() <= 2 + unmet.len() + lost.len());
            assert_eq!(decode_deps(&b, &history), Some((unmet, lost)));
        }
        // A long history is indexed, with the same result.
        let long: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let b = encode_deps(&long, &s(&["m99", "m0"]), &s(&["m50"])).unwrap();
        assert_eq!(b, vec![2, 99, 0, 1, 50]);
        assert_eq!(
            decode_deps(&b, &long),
            Some((s(&["m99", "m0"]), s(&["m50"])))
        );
        // Not expressible: nothing to store, or an id outside the history.
        assert_eq!(encode_deps(&history, &[], &[]), None);
        assert_eq!(encode_deps(&history, &s(&["z"]), &[]), None);
        assert_eq!(encode_deps(&history, &s(&["a"]), &s(&["z"])), None);
    }

    #[test]
    fn bad_deps_are_rejected() {
        let history: Vec<String> = ["a", "b"].map(String::from).to_vec();
        assert_eq!(decode_deps(&[1, 2, 0], &history), None); // position out of range
        assert_eq!(decode_deps(&[1, 0], &history), None); // lost count missing
        assert_eq!(decode_deps(&[0, 0, 7], &history), None); // trailing bytes
        assert_eq!(decode_deps(&[0x80], &history), None); // truncated varint
        assert_eq!(decode_deps(&[100], &history), None); // count beyond reason
        assert_eq!(decode_deps(&[0, 0], &history), Some((vec![], vec![])));
    }

    #[test]
    fn u64_round_trips() {
        for v in [0, 1, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            assert_eq!(from_sql(to_sql(v)), v);
        }
    }
}
