//! The golden vectors of both peers decode field by field and re-encode byte for byte.

mod vectors_common;

use bytes::Bytes;
use sds::wire::{
    decode, decode_as, decode_ref, encode, encoded_len, Dialect, HistoryEntry, Limits, Message,
    MessageKind,
};
use vectors_common::*;

fn json_entries(v: &serde_json::Value, nim: bool) -> Vec<HistoryEntry> {
    v.as_array()
        .expect("entry list")
        .iter()
        .map(|e| {
            let hint = e["retrieval_hint_hex"].as_str().map(unhex);
            let sender = e["sender_id"].as_str().map(str::to_owned);
            HistoryEntry {
                message_id: e["message_id"].as_str().expect("message_id").to_owned(),
                retrieval_hint: hint.filter(|h| !(nim && h.is_empty())).map(Bytes::from),
                sender_id: sender.filter(|s| !(nim && s.is_empty())),
            }
        })
        .collect()
}

/// Decodes with detection, checks the dialect, re-encodes and checks `encoded_len`.
fn decode_roundtrip(wire: &[u8], dialect: Dialect, what: &str) -> Message {
    let decoded = decode(Bytes::copy_from_slice(wire), &Limits::default())
        .unwrap_or_else(|e| panic!("{what}: decode failed: {e}"));
    assert_eq!(decoded.dialect, dialect, "{what}: detected dialect");
    let again = decode_as(Bytes::copy_from_slice(wire), dialect, &Limits::default())
        .unwrap_or_else(|e| panic!("{what}: decode_as failed: {e}"));
    assert_eq!(
        again, decoded.message,
        "{what}: decode_as differs from decode"
    );
    let input = Bytes::copy_from_slice(wire);
    let borrowed = decode_ref(&input, &Limits::default())
        .unwrap_or_else(|e| panic!("{what}: decode_ref failed: {e}"));
    assert_eq!(borrowed.dialect, dialect, "{what}: decode_ref dialect");
    assert_eq!(
        borrowed.message.to_message(),
        decoded.message,
        "{what}: decode_ref differs from decode"
    );
    assert_eq!(
        decoded.message.borrowed(),
        borrowed.message,
        "{what}: Message::borrowed differs from decode_ref"
    );
    assert_eq!(
        borrowed.message.kind(),
        decoded.message.kind(),
        "{what}: kind"
    );
    // Zero copy: every non-empty id is a view into the input.
    let range = input.as_ptr_range();
    let m = &borrowed.message;
    let entries = m.causal_history.iter().chain(&m.repair_request);
    let ids = [m.sender_id, m.message_id, m.channel_id].into_iter().chain(
        entries
            .flat_map(|e| [Some(e.message_id), e.sender_id])
            .flatten(),
    );
    for id in ids.filter(|s| !s.is_empty()) {
        assert!(
            range.contains(&id.as_ptr()),
            "{what}: id {id:?} was copied out of the input"
        );
    }
    let msg = decoded.message;
    let bytes = encode(&msg, dialect).unwrap_or_else(|e| panic!("{what}: encode failed: {e}"));
    assert_eq!(
        hex::encode(&bytes),
        hex::encode(wire),
        "{what}: re-encoding differs"
    );
    assert_eq!(
        encoded_len(&msg, dialect),
        wire.len(),
        "{what}: encoded_len"
    );
    msg
}

#[test]
fn nim_public_json_messages() {
    let msgs = public_messages("nim-sds/public.json");
    for (i, v) in msgs.iter().enumerate() {
        let what = format!("nim-sds/public.json message #{i}");
        let wire = unhex(v["wire_hex"].as_str().expect("wire_hex"));
        let msg = decode_roundtrip(&wire, Dialect::Nim, &what);
        assert_eq!(
            msg.message_id,
            v["message_id"].as_str().unwrap(),
            "{what}: message_id"
        );
        assert_eq!(
            msg.lamport_timestamp,
            v["lamport_timestamp"].as_u64(),
            "{what}: lamport"
        );
        assert!(msg.lamport_timestamp.is_some(), "{what}: lamport present");
        assert_eq!(
            msg.channel_id,
            v["channel_id"].as_str().unwrap(),
            "{what}: channel_id"
        );
        assert_eq!(
            msg.sender_id,
            v["sender_id"].as_str().unwrap(),
            "{what}: sender_id"
        );
        let content = unhex(v["content_hex"].as_str().unwrap());
        assert_eq!(
            msg.content.as_deref(),
            Some(&content[..]),
            "{what}: content"
        );
        let bloom = unhex(v["bloom_filter_hex"].as_str().unwrap());
        let expected_bloom = if bloom.is_empty() {
            None
        } else {
            Some(&bloom[..])
        };
        assert_eq!(
            msg.bloom_filter.as_deref(),
            expected_bloom,
            "{what}: bloom_filter"
        );
        assert_eq!(
            msg.causal_history,
            json_entries(&v["causal_history"], true),
            "{what}: history"
        );
        assert_eq!(
            msg.repair_request,
            json_entries(&v["repair_request"], true),
            "{what}: repair"
        );
        assert_eq!(msg.kind(), MessageKind::Content, "{what}: kind");
    }
}

fn check_text_vector(v: &TextVector, dialect: Dialect) -> Message {
    let what = format!("{dialect:?} text vector {:?}", v.name);
    if let Some(n) = v.declared_len {
        assert_eq!(v.wire.len(), n, "{what}: declared length");
    }
    let msg = decode_roundtrip(&v.wire, dialect, &what);
    if let Some(kind) = v.kind {
        assert_eq!(msg.kind(), kind, "{what}: kind");
    }
    let id = v.message_id.as_deref().expect("vector has a message id");
    assert_eq!(msg.message_id, id, "{what}: message_id");
    assert_eq!(
        Some(msg.sender_id.as_str()),
        v.sender_id.as_deref(),
        "{what}: sender_id"
    );
    assert_eq!(
        Some(msg.channel_id.as_str()),
        v.channel_id.as_deref(),
        "{what}: channel_id"
    );
    assert_eq!(Some(msg.lamport_timestamp), v.lamport, "{what}: lamport");
    assert_eq!(
        Some(msg.causal_history.len()),
        v.history_count,
        "{what}: history count"
    );
    assert_eq!(msg.causal_history, v.causal_history, "{what}: history");
    assert_eq!(
        Some(msg.repair_request.len()),
        v.repair_count,
        "{what}: repair count"
    );
    assert_eq!(msg.repair_request, v.repair_request, "{what}: repair");
    let content = v.content.clone().expect("vector shows content");
    assert_eq!(
        msg.content.as_deref().map(<[u8]>::to_vec),
        content,
        "{what}: content"
    );
    let bloom_len = v.bloom_len.expect("vector shows the bloom");
    assert_eq!(
        msg.bloom_filter.as_ref().map(Bytes::len),
        bloom_len,
        "{what}: bloom length"
    );
    msg
}

#[test]
fn nim_vectors_txt() {
    let vectors = parse_nim_text(&read_vector_file("nim-sds/vectors.txt"));
    assert_eq!(
        vectors.len(),
        6,
        "expected 6 wire vectors in nim-sds/vectors.txt"
    );
    for v in &vectors {
        check_text_vector(v, Dialect::Nim);
    }
    // S1 msg-3's bloom field is the 27 bytes printed above it.
    let s1 = vectors
        .iter()
        .find(|v| v.name == "S1 msg-3")
        .expect("S1 msg-3");
    let msg = decode(Bytes::from(s1.wire.clone()), &Limits::default())
        .unwrap()
        .message;
    assert_eq!(
        hex::encode(msg.bloom_filter.unwrap()),
        "0a1001000101014080404142440800000000100a18904e20072864"
    );
}

#[test]
fn nim_reference_encodings() {
    // nim-sds.md §11.6: every field.
    let wire = unhex(concat!(
        "0a026d32",
        "1080e2cfaa06",
        "1a0f0a026d311202aabb1a05616c696365",
        "1a040a026d30",
        "22026368",
        "2a03010203",
        "3200",
        "3a03626f62",
        "6a0b0a026d781a056361726f6c"
    ));
    let msg = decode_roundtrip(&wire, Dialect::Nim, "§11.6 full message");
    let expected = Message {
        sender_id: "bob".into(),
        message_id: "m2".into(),
        channel_id: "ch".into(),
        lamport_timestamp: Some(1_700_000_000),
        causal_history: vec![
            HistoryEntry {
                message_id: "m1".into(),
                retrieval_hint: Some(Bytes::from_static(&[0xaa, 0xbb])),
                sender_id: Some("alice".into()),
            },
            HistoryEntry {
                message_id: "m0".into(),
                retrieval_hint: None,
                sender_id: None,
            },
        ],
        bloom_filter: None,
        repair_request: vec![HistoryEntry {
            message_id: "mx".into(),
            retrieval_hint: None,
            sender_id: Some("carol".into()),
        }],
        content: Some(Bytes::from_static(&[1, 2, 3])),
    };
    assert_eq!(msg, expected);

    // The all-empty message.
    let msg = decode_roundtrip(
        &unhex("0a0010002200 2a00 3200".replace(' ', "").as_str()),
        Dialect::Nim,
        "all-empty",
    );
    assert_eq!(
        msg,
        Message {
            lamport_timestamp: Some(0),
            content: Some(Bytes::new()),
            ..Message::default()
        }
    );
    assert_eq!(msg.kind(), MessageKind::Sync);

    // Lamport -1 (crashes nim-sds): the full u64 range is accepted.
    let msg = decode_roundtrip(
        &unhex("0a016e10ffffffffffffffffff012201632a003200"),
        Dialect::Nim,
        "lamport -1",
    );
    assert_eq!(msg.lamport_timestamp, Some(u64::MAX));
    assert_eq!(msg.message_id, "n");
    assert_eq!(msg.channel_id, "c");
}

#[test]
fn js_public_json_messages() {
    let msgs = public_messages("js-sds/public.json");
    for (i, v) in msgs.iter().enumerate() {
        let what = format!("js-sds/public.json message #{i}");
        let wire = unhex(v["wire_hex"].as_str().expect("wire_hex"));
        let msg = decode_roundtrip(&wire, Dialect::Spec, &what);
        let kind = match v["message_kind"].as_str().unwrap() {
            "content" => MessageKind::Content,
            "sync" => MessageKind::Sync,
            "ephemeral" => MessageKind::Ephemeral,
            other => panic!("{what}: unknown message_kind {other}"),
        };
        assert_eq!(msg.kind(), kind, "{what}: kind");
        assert_eq!(
            msg.message_id,
            v["message_id"].as_str().unwrap(),
            "{what}: message_id"
        );
        assert_eq!(
            msg.sender_id,
            v["sender_id"].as_str().unwrap(),
            "{what}: sender_id"
        );
        assert_eq!(
            msg.channel_id,
            v["channel_id"].as_str().unwrap(),
            "{what}: channel_id"
        );
        let lamport = v["lamport_timestamp"]
            .as_str()
            .map(|s| s.parse::<u64>().unwrap());
        assert_eq!(msg.lamport_timestamp, lamport, "{what}: lamport");
        assert_eq!(
            msg.causal_history,
            json_entries(&v["causal_history"], false),
            "{what}: history"
        );
        assert_eq!(
            msg.repair_request,
            json_entries(&v["repair_request"], false),
            "{what}: repair"
        );
        let content = v["content_hex"].as_str().map(unhex);
        assert_eq!(
            msg.content.as_deref().map(<[u8]>::to_vec),
            content,
            "{what}: content"
        );
        let bloom_len = v["bloom_filter_len"].as_u64().map(|n| n as usize);
        assert_eq!(
            msg.bloom_filter.as_ref().map(Bytes::len),
            bloom_len,
            "{what}: bloom length"
        );
    }
}

#[test]
fn js_vectors_txt() {
    let vectors = parse_js_text(&read_vector_file("js-sds/vectors.txt"));
    assert_eq!(
        vectors.len(),
        5,
        "expected 5 wire vectors in js-sds/vectors.txt"
    );
    for v in &vectors {
        let msg = check_text_vector(v, Dialect::Spec);
        // The bloom is passed through untouched: same bytes as in the wire.
        if let Some(bloom) = &msg.bloom_filter {
            let at = v.wire.windows(bloom.len()).position(|w| w == &bloom[..]);
            assert!(at.is_some(), "bloom bytes are a slice of the wire");
        }
    }
}

#[test]
fn decoded_byte_fields_share_the_input() {
    let v = &parse_js_text(&read_vector_file("js-sds/vectors.txt"))[1];
    let input = Bytes::from(v.wire.clone());
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    let msg = decode(input.clone(), &Limits::default()).unwrap().message;
    let bloom = msg.bloom_filter.unwrap();
    assert!(
        range.contains(&(bloom.as_ptr() as usize)),
        "bloom is not a slice of the input"
    );
    let content = msg.content.unwrap();
    assert!(
        range.contains(&(content.as_ptr() as usize)),
        "content is not a slice of the input"
    );
    let hint = msg.causal_history[0].retrieval_hint.clone().unwrap();
    assert!(
        range.contains(&(hint.as_ptr() as usize)),
        "hint is not a slice of the input"
    );
}

#[test]
fn cross_dialect_transcoding() {
    // A js message re-encoded in the nim dialect decodes back to the same fields
    // (all its entries carry non-empty hints or none, and non-empty senders).
    for v in public_messages("js-sds/public.json") {
        let wire = unhex(v["wire_hex"].as_str().unwrap());
        let msg = decode(Bytes::from(wire), &Limits::default())
            .unwrap()
            .message;
        if msg.lamport_timestamp.is_none() {
            assert!(
                encode(&msg, Dialect::Nim).is_err(),
                "ephemeral cannot be nim"
            );
            continue;
        }
        let nim = encode(&msg, Dialect::Nim).unwrap();
        let back = decode(Bytes::from(nim), &Limits::default()).unwrap();
        assert_eq!(back.dialect, Dialect::Nim);
        let mut expected = msg.clone();
        if expected.content.is_none() {
            expected.content = Some(Bytes::new());
        }
        assert_eq!(back.message, expected);
    }
}
