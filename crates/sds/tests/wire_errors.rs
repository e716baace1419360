//! Every decoding error kind, at the right offset.

mod vectors_common;

use bytes::Bytes;
use sds::wire::{
    decode, decode_as, encode, DecodeError, DecodeErrorKind as K, Dialect, Limits, Message, Site,
};
use vectors_common::unhex;

fn field(number: u32, name: &'static str) -> Site {
    Site::Field { number, name }
}

const MSG: Site = Site::Tag { within: "message" };

fn err(bytes: &[u8]) -> DecodeError {
    err_with(bytes, &Limits::default())
}

fn err_with(bytes: &[u8], limits: &Limits) -> DecodeError {
    match decode(Bytes::copy_from_slice(bytes), limits) {
        Ok(d) => panic!("{} decoded unexpectedly: {d:?}", hex::encode(bytes)),
        Err(e) => e,
    }
}

fn err_as(bytes: &[u8], dialect: Dialect) -> DecodeError {
    match decode_as(Bytes::copy_from_slice(bytes), dialect, &Limits::default()) {
        Ok(m) => panic!("{} decoded unexpectedly: {m:?}", hex::encode(bytes)),
        Err(e) => e,
    }
}

fn at(offset: usize, kind: K) -> DecodeError {
    DecodeError { offset, kind }
}

/// The nim minimal vector: id "m", lamport 1, channel "c", content 00, bloom empty.
fn nim_minimal() -> Vec<u8> {
    unhex("0a016d10012201632a01003200")
}

#[test]
fn truncated_varints() {
    assert_eq!(
        err(&[0x50]),
        at(
            1,
            K::TruncatedVarint {
                site: field(10, "lamport_timestamp")
            }
        )
    );
    assert_eq!(
        err(&[0x50, 0x80, 0x80]),
        at(
            1,
            K::TruncatedVarint {
                site: field(10, "lamport_timestamp")
            }
        )
    );
    // A truncated tag.
    assert_eq!(
        err(&[0x0a, 0x00, 0x80]),
        at(2, K::TruncatedVarint { site: MSG })
    );
    // A truncated length prefix.
    assert_eq!(
        err(&[0x0a, 0x00, 0x1a]),
        at(
            3,
            K::TruncatedVarint {
                site: field(3, "channel_id")
            }
        )
    );
    // The nim lamport cut short.
    assert_eq!(
        err(&[0x0a, 0x01, 0x6d, 0x10, 0xff]),
        at(
            4,
            K::TruncatedVarint {
                site: field(2, "lamport_timestamp")
            }
        )
    );
}

#[test]
fn truncated_js_vector_names_the_field() {
    let text = vectors_common::read_vector_file("js-sds/vectors.txt");
    let v = &vectors_common::parse_js_text(&text)[0];
    // Field 10's tag is at byte 87; cut right after it.
    let e = err(&v.wire[..88]);
    assert_eq!(
        e,
        at(
            88,
            K::TruncatedVarint {
                site: field(10, "lamport_timestamp")
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "truncated varint in field 10 (lamport_timestamp) at byte 88"
    );
    // Cut inside the bloom: its length overruns.
    let e = err(&v.wire[..1000]);
    assert_eq!(
        e,
        at(
            95,
            K::LengthOverrun {
                site: field(12, "bloom_filter"),
                len: 18752,
                available: 902
            }
        )
    );
}

#[test]
fn overlong_varints() {
    let mut too_long = vec![0x50];
    too_long.extend([0xff; 10]);
    too_long.push(0x01);
    assert_eq!(
        err(&too_long),
        at(
            1,
            K::VarintTooLong {
                site: field(10, "lamport_timestamp")
            }
        )
    );

    let mut overflow = vec![0x50];
    overflow.extend([0xff; 9]);
    overflow.push(0x02);
    assert_eq!(
        err(&overflow),
        at(
            1,
            K::VarintOverflow {
                site: field(10, "lamport_timestamp")
            }
        )
    );

    // u64::MAX itself is fine.
    let mut max = vec![0x50];
    max.extend([0xff; 9]);
    max.push(0x01);
    let msg = decode(Bytes::from(max), &Limits::default())
        .unwrap()
        .message;
    assert_eq!(msg.lamport_timestamp, Some(u64::MAX));
}

#[test]
fn length_overruns() {
    assert_eq!(
        err(&[0x0a, 0x05, b'a']),
        at(
            1,
            K::LengthOverrun {
                site: field(1, "sender_id"),
                len: 5,
                available: 1
            }
        )
    );
    // A length that does not fit in usize arithmetic.
    let mut huge = vec![0xa2, 0x01];
    huge.extend([0xff; 9]);
    huge.push(0x01);
    assert_eq!(
        err(&huge),
        at(
            2,
            K::LengthOverrun {
                site: field(20, "content"),
                len: u64::MAX,
                available: 0
            }
        )
    );
    // A nested entry's field may not run past the entry, even if the message has more bytes.
    assert_eq!(
        err(&unhex("5a020a03616263")),
        at(
            3,
            K::LengthOverrun {
                site: field(1, "causal_history.message_id"),
                len: 3,
                available: 0
            }
        )
    );
    // Unknown fixed-width fields.
    assert_eq!(
        err(&[0x0a, 0x00, 0x79, 1, 2, 3]),
        at(
            3,
            K::TruncatedFixed {
                site: field(15, "unknown"),
                width: 8,
                available: 3
            }
        )
    );
    assert_eq!(
        err(&[0x7d, 1]),
        at(
            1,
            K::TruncatedFixed {
                site: field(15, "unknown"),
                width: 4,
                available: 1
            }
        )
    );
}

#[test]
fn wrong_wire_types() {
    assert_eq!(
        err(&[0x52, 0x00]),
        at(
            0,
            K::WrongWireType {
                site: field(10, "lamport_timestamp"),
                expected: 0,
                found: 2
            }
        )
    );
    assert_eq!(
        err(&[0x0a, 0x00, 0x18, 0x01]),
        at(
            2,
            K::WrongWireType {
                site: field(3, "channel_id"),
                expected: 2,
                found: 0
            }
        )
    );
    // nim: channel as a varint.
    let e = err(&unhex("0a016d10012001"));
    assert_eq!(
        e,
        at(
            5,
            K::WrongWireType {
                site: field(4, "channel_id"),
                expected: 2,
                found: 0
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "wrong wire type 0 (VARINT) for field 4 (channel_id), expected 2 (LEN) at byte 5"
    );
    // Inside an entry.
    assert_eq!(
        err(&unhex("5a0210015a00")),
        at(
            2,
            K::WrongWireType {
                site: field(2, "causal_history.retrieval_hint"),
                expected: 2,
                found: 0
            }
        )
    );
}

#[test]
fn groups_and_invalid_wire_types() {
    assert_eq!(
        err(&[0x0b]),
        at(
            0,
            K::Group {
                site: field(1, "sender_id"),
                wire_type: 3
            }
        )
    );
    assert_eq!(
        err(&[0x0c]),
        at(
            0,
            K::Group {
                site: field(1, "sender_id"),
                wire_type: 4
            }
        )
    );
    // An unknown field that is a group (field 100, wire type 3).
    assert_eq!(
        err(&[0x0a, 0x00, 0xa3, 0x06]),
        at(
            2,
            K::Group {
                site: field(100, "unknown"),
                wire_type: 3
            }
        )
    );
    assert_eq!(
        err(&[0x0e]),
        at(
            0,
            K::InvalidWireType {
                site: field(1, "sender_id"),
                wire_type: 6
            }
        )
    );
    assert_eq!(
        err(&[0x0a, 0x00, 0x7f]),
        at(
            2,
            K::InvalidWireType {
                site: field(15, "unknown"),
                wire_type: 7
            }
        )
    );
    // In an entry.
    assert_eq!(
        err(&unhex("6a020b00")),
        at(
            2,
            K::Group {
                site: field(1, "repair_request.message_id"),
                wire_type: 3
            }
        )
    );
}

#[test]
fn invalid_field_numbers() {
    assert_eq!(
        err(&[0x02, 0x00]),
        at(
            0,
            K::InvalidFieldNumber {
                number: 0,
                within: "message"
            }
        )
    );
    // Field 2^29 (tag value 2^32).
    assert_eq!(
        err(&[0x80, 0x80, 0x80, 0x80, 0x10]),
        at(
            0,
            K::InvalidFieldNumber {
                number: 1 << 29,
                within: "message"
            }
        )
    );
    assert_eq!(
        err(&unhex("5a020000")),
        at(
            2,
            K::InvalidFieldNumber {
                number: 0,
                within: "causal_history entry"
            }
        )
    );
}

#[test]
fn missing_required_nim_fields() {
    let ok = nim_minimal();
    assert!(decode(Bytes::from(ok.clone()), &Limits::default()).is_ok());
    // Without content (field 5).
    let no_content = unhex("0a016d100122016332 00".replace(' ', "").as_str());
    assert_eq!(
        err(&no_content),
        at(
            no_content.len(),
            K::MissingField {
                site: field(5, "content")
            }
        )
    );
    // Without the id.
    let no_id = unhex("10012201632a01003200");
    assert_eq!(
        err(&no_id),
        at(
            no_id.len(),
            K::MissingField {
                site: field(1, "message_id")
            }
        )
    );
    // Without the channel.
    let no_channel = unhex("0a016d10012a01003200");
    let e = err(&no_channel);
    assert_eq!(
        e,
        at(
            no_channel.len(),
            K::MissingField {
                site: field(4, "channel_id")
            }
        )
    );
    assert_eq!(
        e.to_string(),
        "missing required field 4 (channel_id) at byte 10"
    );
    // Without the lamport timestamp the message is not recognisably nim; decode_as says why.
    let no_lamport = unhex("0a016d2201632a01003200");
    assert_eq!(
        err_as(&no_lamport, Dialect::Nim),
        at(
            no_lamport.len(),
            K::MissingField {
                site: field(2, "lamport_timestamp")
            }
        )
    );
    // A nim history entry without its id (only an empty sender).
    let no_entry_id = unhex("0a016d10011a021a002201632a01003200");
    assert_eq!(
        err(&no_entry_id),
        at(
            5,
            K::MissingField {
                site: field(1, "causal_history.message_id")
            }
        )
    );
    // A spec entry may lack its id.
    let spec = decode(Bytes::from(unhex("5a021a00")), &Limits::default()).unwrap();
    assert_eq!(spec.dialect, Dialect::Spec);
    assert_eq!(
        spec.message.causal_history[0].sender_id.as_deref(),
        Some("")
    );
    // Legacy nim causal history (bare id strings) is rejected, as nim-sds does.
    let legacy = unhex("0a016d10011a026d312201632a003200");
    assert!(decode(Bytes::from(legacy), &Limits::default()).is_err());
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        err(&unhex("120261ff")),
        at(
            3,
            K::InvalidUtf8 {
                site: field(2, "message_id")
            }
        )
    );
    assert_eq!(
        err(&unhex("0a02ff61")),
        at(
            2,
            K::InvalidUtf8 {
                site: field(1, "sender_id")
            }
        )
    );
    assert_eq!(
        err(&unhex("1a03c3a8c3")),
        at(
            4,
            K::InvalidUtf8 {
                site: field(3, "channel_id")
            }
        )
    );
    assert_eq!(
        err(&unhex("5a050a036162ff")),
        at(
            6,
            K::InvalidUtf8 {
                site: field(1, "causal_history.message_id")
            }
        )
    );
    assert_eq!(
        err(&unhex("6a041a0261fe")),
        at(
            5,
            K::InvalidUtf8 {
                site: field(3, "repair_request.sender_id")
            }
        )
    );
    // nim: the sender (field 7).
    assert_eq!(
        err(&unhex("0a016d10012201632a0032003a01ff")),
        at(
            14,
            K::InvalidUtf8 {
                site: field(7, "sender_id")
            }
        )
    );
    // Content and hints are bytes, not strings.
    let ok = decode(
        Bytes::from(unhex("a20102fffe5a041202fffe")),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(ok.message.content.as_deref(), Some(&[0xff, 0xfe][..]));
}

#[test]
fn limits() {
    let small = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        l
    };
    // Message size: checked before anything else.
    let l = small(|l| l.max_message_bytes = 12);
    let msg = nim_minimal();
    assert_eq!(
        err_with(&msg, &l),
        at(0, K::MessageTooLarge { len: 13, max: 12 })
    );
    assert!(decode(Bytes::from(msg[..12].to_vec()), &l).is_err_and(|e| e.offset != 0));
    let l13 = small(|l| l.max_message_bytes = 13);
    assert!(decode(Bytes::from(msg.clone()), &l13).is_ok());

    // History count: the entry over the limit is reported at its tag.
    let l = small(|l| l.max_causal_history = 2);
    let three = unhex("5a005a005a00");
    assert_eq!(
        err_with(&three, &l),
        at(4, K::TooManyHistoryEntries { max: 2 })
    );
    assert!(decode(Bytes::from(three[..4].to_vec()), &l).is_ok());

    let l = small(|l| l.max_repair_request = 0);
    assert_eq!(
        err_with(&unhex("0a00 6a00".replace(' ', "").as_str()), &l),
        at(2, K::TooManyRepairEntries { max: 0 })
    );

    // Id length, for every id field.
    let l = small(|l| l.max_id_len = 3);
    assert_eq!(
        err_with(&unhex("0a0161 1204 61626364".replace(' ', "").as_str()), &l),
        at(
            3,
            K::IdTooLong {
                site: field(2, "message_id"),
                len: 4,
                max: 3
            }
        )
    );
    assert!(decode(Bytes::from(unhex("1203616263")), &l).is_ok());
    assert_eq!(
        err_with(&unhex("5a060a0461626364"), &l),
        at(
            2,
            K::IdTooLong {
                site: field(1, "causal_history.message_id"),
                len: 4,
                max: 3
            }
        )
    );
    assert_eq!(
        err_with(&unhex("6a061a0461626364"), &l),
        at(
            2,
            K::IdTooLong {
                site: field(3, "repair_request.sender_id"),
                len: 4,
                max: 3
            }
        )
    );
    assert_eq!(
        err_with(&unhex("0a016d1001220461626364"), &l),
        at(
            5,
            K::IdTooLong {
                site: field(4, "channel_id"),
                len: 4,
                max: 3
            }
        )
    );

    // Hint length.
    let l = small(|l| l.max_hint_len = 2);
    assert_eq!(
        err_with(
            &unhex(
                "5a07 0a0161 1202 0102 5a05 12 03 010203"
                    .replace(' ', "")
                    .as_str()
            ),
            &l
        ),
        at(
            11,
            K::HintTooLong {
                site: field(2, "causal_history.retrieval_hint"),
                len: 3,
                max: 2
            }
        )
    );

    // Bloom length, in both dialects.
    let l = small(|l| l.max_bloom_bytes = 2);
    assert_eq!(
        err_with(&unhex("6203010203"), &l),
        at(
            0,
            K::BloomTooLarge {
                site: field(12, "bloom_filter"),
                len: 3,
                max: 2
            }
        )
    );
    assert_eq!(
        err_with(&unhex("0a016d10012201632a003203010203"), &l),
        at(
            10,
            K::BloomTooLarge {
                site: field(6, "bloom_filter"),
                len: 3,
                max: 2
            }
        )
    );
}

#[test]
fn unknown_fields_are_skipped_and_last_occurrence_wins() {
    // Unknown varint, I64, LEN and I32 fields around a spec message id, given twice.
    let bytes = unhex(concat!(
        "7801",               // field 15 varint
        "1202",               // field 2 len 2
        "6162",               // "ab"
        "790102030405060708", // field 15 I64
        "7a03000000",         // field 15 LEN 3
        "7d01020304",         // field 15 I32
        "120163",             // field 2 "c" (wins)
        "5005",               // lamport 5
        "5007",               // lamport 7 (wins)
    ));
    let d = decode(Bytes::from(bytes), &Limits::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Spec);
    assert_eq!(d.message.message_id, "c");
    assert_eq!(d.message.lamport_timestamp, Some(7));

    // nim: spec-only field numbers (10, 12, 20) are unknown and skipped.
    let bytes = unhex(
        "0a016d1001220163 2a00 3200 5001 6200 a20100"
            .replace(' ', "")
            .as_str(),
    );
    let d = decode(Bytes::from(bytes), &Limits::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Nim);
    assert_eq!(d.message.lamport_timestamp, Some(1));
}

#[test]
fn detection_edge_cases() {
    // The empty input is a spec message with every field absent (an ephemeral one).
    let d = decode(Bytes::new(), &Limits::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Spec);
    assert_eq!(d.message, Message::default());
    // A spec message without a message id (field 2 absent) is spec.
    let d = decode(Bytes::from(unhex("0a01615001")), &Limits::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Spec);
    // A spec-decoded nim message fails loudly, and the reverse.
    let nim = nim_minimal();
    assert!(matches!(
        err_as(&nim, Dialect::Spec).kind,
        K::WrongWireType { .. }
    ));
    let spec = unhex("0a0161120162");
    assert!(matches!(
        err_as(&spec, Dialect::Nim).kind,
        K::WrongWireType { .. }
    ));
}

#[test]
fn ephemeral_cannot_be_nim() {
    let msg = Message {
        message_id: "e".into(),
        ..Message::default()
    };
    assert_eq!(
        encode(&msg, Dialect::Nim),
        Err(sds::wire::EncodeError::EphemeralInNim)
    );
    let mut out = vec![1, 2, 3];
    assert!(sds::wire::encode_into(&msg, Dialect::Nim, &mut out).is_err());
    assert_eq!(out, [1, 2, 3], "nothing appended on error");
    assert_eq!(sds::wire::encoded_len(&msg, Dialect::Nim), 0);
}
