//! Property tests: decoding is total (never panics) and encoding round-trips.

mod vectors_common;

use bytes::Bytes;
use proptest::prelude::*;
use sds::wire::{
    decode, decode_as, encode, encode_into, encoded_len, Dialect, HistoryEntry, Limits, Message,
};
use std::sync::OnceLock;

/// Every message vector of both peers, as raw bytes.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out = Vec::new();
        for file in ["nim-sds/public.json", "js-sds/public.json"] {
            for v in vectors_common::public_messages(file) {
                out.push(vectors_common::unhex(v["wire_hex"].as_str().unwrap()));
            }
        }
        let nim = vectors_common::read_vector_file("nim-sds/vectors.txt");
        out.extend(
            vectors_common::parse_nim_text(&nim)
                .into_iter()
                .map(|v| v.wire),
        );
        let js = vectors_common::read_vector_file("js-sds/vectors.txt");
        out.extend(
            vectors_common::parse_js_text(&js)
                .into_iter()
                .map(|v| v.wire),
        );
        out
    })
}

/// Decodes in every way; whatever decodes must survive encode → decode unchanged.
fn exercise(bytes: &[u8]) {
    let input = Bytes::copy_from_slice(bytes);
    let limits = Limits::default();
    let _ = decode_as(input.clone(), Dialect::Spec, &limits);
    let _ = decode_as(input.clone(), Dialect::Nim, &limits);
    let tight = Limits {
        max_message_bytes: 4096,
        max_causal_history: 2,
        max_repair_request: 1,
        max_id_len: 8,
        max_hint_len: 4,
        max_bloom_bytes: 16,
    };
    let _ = decode(input.clone(), &tight);
    if let Ok(d) = decode(input, &limits) {
        let again = encode(&d.message, d.dialect).expect("a decoded message re-encodes");
        assert_eq!(again.len(), encoded_len(&d.message, d.dialect));
        let back = decode(Bytes::from(again), &limits).expect("re-encoding decodes");
        assert_eq!(back, d, "decode ∘ encode is not a fixpoint");
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    /// Replaces a byte with a varint-continuation byte (0x80 | low bits).
    Continue(usize),
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, bit) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b ^= 1 << (bit % 8);
                }
            }
            Mutation::Set(i, v) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b = v;
                }
            }
            Mutation::Insert(i, v) => {
                let at = i % (bytes.len() + 1);
                bytes.insert(at, v);
            }
            Mutation::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Continue(i) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b |= 0x80;
                }
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Most mutations hit the first 400 bytes (where the structure is); the
    // index wraps around the message length.
    let idx = prop_oneof![3 => 0usize..400, 1 => any::<usize>()];
    prop_oneof![
        (idx.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (idx.clone(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (idx.clone(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        idx.clone().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        idx.prop_map(Mutation::Continue),
    ]
}

fn entry() -> impl Strategy<Value = HistoryEntry> {
    (
        ".{0,12}",
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of(".{0,6}"),
    )
        .prop_map(|(message_id, hint, sender_id)| HistoryEntry {
            message_id,
            retrieval_hint: hint.map(Bytes::from),
            sender_id,
        })
}

fn message() -> impl Strategy<Value = Message> {
    let bytes = |max| proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max));
    (
        ".{0,10}",
        ".{0,16}",
        ".{0,10}",
        proptest::option::of(prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()]),
        proptest::collection::vec(entry(), 0..5),
        bytes(300),
        proptest::collection::vec(entry(), 0..3),
        bytes(200),
    )
        .prop_map(
            |(sender_id, message_id, channel_id, lamport, history, bloom, repair, content)| {
                Message {
                    sender_id,
                    message_id,
                    channel_id,
                    lamport_timestamp: lamport,
                    causal_history: history,
                    bloom_filter: bloom.map(Bytes::from),
                    repair_request: repair,
                    content: content.map(Bytes::from),
                }
            },
        )
}

/// What a message looks like after a trip through the nim dialect.
fn nim_normal_form(msg: &Message) -> Message {
    let entry = |e: &HistoryEntry| HistoryEntry {
        message_id: e.message_id.clone(),
        retrieval_hint: e.retrieval_hint.clone().filter(|h| !h.is_empty()),
        sender_id: e.sender_id.clone().filter(|s| !s.is_empty()),
    };
    Message {
        content: Some(msg.content.clone().unwrap_or_default()),
        bloom_filter: msg.bloom_filter.clone().filter(|b| !b.is_empty()),
        causal_history: msg.causal_history.iter().map(entry).collect(),
        repair_request: msg.repair_request.iter().map(entry).collect(),
        ..msg.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn protobuf_shaped_bytes_never_panic(
        fields in proptest::collection::vec(
            (1u32..25, 0u8..8, proptest::collection::vec(any::<u8>(), 0..12)),
            0..12,
        )
    ) {
        // Plausible tags followed by junk: reaches deeper than uniform bytes.
        let mut bytes = Vec::new();
        for (number, wire_type, tail) in fields {
            let tag = (u64::from(number) << 3) | u64::from(wire_type);
            let mut t = tag;
            while t >= 0x80 { bytes.push((t as u8) | 0x80); t >>= 7; }
            bytes.push(t as u8);
            if wire_type == 2 { bytes.push(tail.len() as u8); }
            bytes.extend(tail);
        }
        exercise(&bytes);
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let v = which.get(corpus()).clone();
        exercise(&mutate(v, &muts));
    }

    #[test]
    fn spec_round_trip(msg in message(), prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
        let bytes = encode(&msg, Dialect::Spec).unwrap();
        prop_assert_eq!(bytes.len(), encoded_len(&msg, Dialect::Spec));
        let mut out = prefix.clone();
        encode_into(&msg, Dialect::Spec, &mut out).unwrap();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&out[prefix.len()..], &bytes[..]);
        let d = decode(Bytes::from(bytes), &Limits::default()).unwrap();
        prop_assert_eq!(d.dialect, Dialect::Spec);
        prop_assert_eq!(d.message, msg);
    }

    #[test]
    fn nim_round_trip(msg in message()) {
        match msg.lamport_timestamp {
            None => prop_assert!(encode(&msg, Dialect::Nim).is_err()),
            Some(_) => {
                let bytes = encode(&msg, Dialect::Nim).unwrap();
                prop_assert_eq!(bytes.len(), encoded_len(&msg, Dialect::Nim));
                let d = decode(Bytes::from(bytes), &Limits::default()).unwrap();
                prop_assert_eq!(d.dialect, Dialect::Nim);
                prop_assert_eq!(d.message, nim_normal_form(&msg));
            }
        }
    }
}

#[test]
fn corpus_is_complete() {
    // 12 nim + 8 js public vectors, 6 nim + 5 js text vectors.
    assert_eq!(corpus().len(), 31);
    for v in corpus() {
        exercise(v);
    }
}

#[test]
fn every_truncation_of_every_vector_is_handled() {
    // A prefix of a valid message either fails with an error or, when the cut
    // falls on a field boundary, is itself a valid message; it never panics.
    for v in corpus() {
        for cut in 0..v.len().min(600) {
            exercise(&v[..cut]);
        }
        for cut in v.len().saturating_sub(300)..v.len() {
            exercise(&v[..cut]);
        }
    }
}
