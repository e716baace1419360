//! Both bloom encodings against the golden vectors of nim-sds and `@waku/sds`.

mod vectors_common;
use vectors_common::{load, read_text};

use sds::bloom::{BloomEncoding, BloomFilter, BloomLimits, BloomParams, BloomView, ItemHash};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// `"[1, 2, 3]"` or `"1,2,3"` → numbers.
fn parse_list(s: &str) -> Vec<u64> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap())
        .collect()
}

fn encode(f: &BloomFilter) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode_into(&mut out);
    assert_eq!(out.len(), f.encoded_len());
    out
}

fn decode<'a>(enc: BloomEncoding, bytes: &'a [u8], params: &BloomParams) -> BloomView<'a> {
    BloomView::decode(enc, bytes, params, &BloomLimits::default())
        .unwrap_or_else(|e| panic!("decode failed: {e}"))
}

// ---------------------------------------------------------------------------
// nim-sds
// ---------------------------------------------------------------------------

#[test]
fn nim_bloom_vectors() {
    let vectors = load("nim-sds", "bloom");
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        let capacity = v["capacity"].as_u64().unwrap();
        let error_rate = v["error_rate"].as_f64().unwrap();
        let params = BloomParams::new(capacity, error_rate).unwrap();
        assert_eq!(u64::from(params.k), v["k"].as_u64().unwrap());
        assert_eq!(params.m_bits, v["m_bits"].as_u64().unwrap());

        let mut f = BloomFilter::new(BloomEncoding::Nim, params);
        let inserted = strings(&v["inserted"]);
        for id in &inserted {
            f.insert_id(id.as_bytes());
        }
        let bytes = encode(&f);
        assert_eq!(
            hex::encode(&bytes),
            v["serialized_hex"].as_str().unwrap(),
            "capacity {capacity}"
        );

        let probes = strings(&v["probe"]);
        let expected: Vec<bool> = v["probe_result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        assert_eq!(probes.len(), expected.len());

        // The receiving side: decode nim's bytes and use the carried parameters.
        let view = decode(BloomEncoding::Nim, &bytes, &BloomParams::default());
        assert_eq!(*view.params(), params);
        assert_eq!(view.set_bits(), f.set_bits());
        for id in &inserted {
            assert!(f.contains_id(id.as_bytes()));
            assert!(view.contains_id(id.as_bytes()));
        }
        for (id, want) in probes.iter().zip(&expected) {
            assert_eq!(f.contains_id(id.as_bytes()), *want, "probe {id}");
            assert_eq!(view.contains_id(id.as_bytes()), *want, "probe {id}");
        }
        let n = inserted.len() as f64;
        let est = f.estimated_items() as f64;
        assert!(
            (est - n).abs() <= 0.2 * n + 2.0,
            "estimate {est} for {n} items"
        );
    }
}

#[test]
fn nim_section1_bloom_field() {
    // vectors.txt section 1: capacity 10, p 0.01, containing msg-1 and msg-2.
    let text = read_text("nim-sds");
    let field_hex = text
        .lines()
        .find_map(|l| l.strip_prefix("bloom filter field bytes alone (27 bytes): "))
        .expect("section 1 bloom line")
        .trim();
    let positions = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("(field 6)   set bit positions (14): ")
        })
        .map(parse_list)
        .expect("section 1 positions line");

    let params = BloomParams::new(10, 0.01).unwrap();
    assert_eq!((params.k, params.m_bits, params.words()), (7, 100, 2));
    let mut f = BloomFilter::new(BloomEncoding::Nim, params);
    f.insert_id(b"msg-1");
    f.insert_id(b"msg-2");
    let bytes = encode(&f);
    assert_eq!(bytes.len(), 27);
    assert_eq!(hex::encode(&bytes), field_hex);
    assert_eq!(f.set_bits(), positions);
    assert_eq!(f.count_ones(), 14);

    let field = hex::decode(field_hex).unwrap();
    let view = decode(BloomEncoding::Nim, &field, &BloomParams::default());
    assert_eq!(view.set_bits(), positions);
    assert!(view.contains_id(b"msg-1") && view.contains_id(b"msg-2"));

    // The whole message of section 1 carries the same field.
    assert!(text.contains(field_hex));
}

#[test]
fn nim_section3_positions() {
    let text = read_text("nim-sds");
    let mut n = 0;
    for line in text.lines().filter(|l| l.trim_start().starts_with("id=\"")) {
        let id = line.split('"').nth(1).unwrap();
        let expected = parse_list(line.split("positions(m=100)=").nth(1).unwrap());
        let got: Vec<u64> = ItemHash::new(BloomEncoding::Nim, id.as_bytes())
            .indices(7, 100)
            .collect();
        assert_eq!(got, expected, "{id}");
        for (i, idx) in got.iter().enumerate() {
            assert_eq!(
                ItemHash::new(BloomEncoding::Nim, id.as_bytes()).index(i as u32, 100),
                *idx
            );
        }
        n += 1;
    }
    assert_eq!(n, 5);
    assert!(text.contains(
        "default filter(10000, 0.001): kHashes=10 mBits=150000 ints=2344 serialized=18768 bytes"
    ));
    let f = BloomFilter::new(BloomEncoding::Nim, BloomParams::default());
    assert_eq!(f.encoded_len(), 18768);
}

#[test]
fn nim_reference_indices_and_serialisation() {
    // nim-sds.md §11.2.
    let h = ItemHash::new(BloomEncoding::Nim, b"msg1");
    let mut small: Vec<u64> = h.indices(7, 1000).collect();
    small.sort_unstable();
    assert_eq!(small, [28, 225, 422, 619, 634, 816, 831]);
    let mut default: Vec<u64> = h.indices(10, 150_000).collect();
    default.sort_unstable();
    assert_eq!(
        default,
        [225, 1831, 3437, 5043, 72816, 74422, 76028, 77634, 79240, 148619]
    );

    // §11.3: the 141-byte serialisation: `0a 8001` + 16 little-endian words +
    // `10 64 18 904e 20 07 28 e807`. (The word bytes printed in nim-sds.md §11.3 are
    // garbled in transcription: read as little-endian words they give positions
    // {28, 185, 382, 715, 730, 1008, 1023}, two of them beyond m = 1000, contradicting
    // §11.2; the real nim `serialized_hex` vectors above pin the byte layout.)
    let mut f = BloomFilter::new(BloomEncoding::Nim, BloomParams::new(100, 0.01).unwrap());
    f.insert(&h);
    let bytes = encode(&f);
    assert_eq!(bytes.len(), 141);
    assert_eq!(hex::encode(&bytes[..3]), "0a8001");
    assert_eq!(hex::encode(&bytes[131..]), "106418904e200728e807");
    let mut le_positions = Vec::new();
    for (i, byte) in bytes[3..131].iter().enumerate() {
        for bit in 0..8 {
            if byte >> bit & 1 == 1 {
                le_positions.push(i as u64 * 8 + bit);
            }
        }
    }
    assert_eq!(le_positions, small);

    // Default filter: 18 768 bytes, `0a c09201` … `10 904e 18 e807 20 0a 28 f09309`.
    let mut f = BloomFilter::new(BloomEncoding::Nim, BloomParams::default());
    let empty = encode(&f);
    f.insert(&h);
    let one = encode(&f);
    for bytes in [empty, one] {
        assert_eq!(bytes.len(), 18768);
        assert_eq!(hex::encode(&bytes[..4]), "0ac09201");
        assert_eq!(
            hex::encode(&bytes[bytes.len() - 12..]),
            "10904e18e807200a28f09309"
        );
    }
}

// ---------------------------------------------------------------------------
// @waku/sds
// ---------------------------------------------------------------------------

#[test]
fn js_bloom_indices_vectors() {
    let vectors = load("js-sds", "bloom_indices");
    assert_eq!(vectors.len(), 213);
    for v in &vectors {
        let input = v["input"].as_str().unwrap();
        let m = v["m_bits"].as_u64().unwrap();
        let expected = u64s(&v["indices"]);
        let h = ItemHash::new(BloomEncoding::Spec, input.as_bytes());
        let got: Vec<u64> = h.indices(10, m).collect();
        assert_eq!(got, expected, "{input:?} m = {m}");
        for (i, idx) in expected.iter().enumerate() {
            assert_eq!(h.index(i as u32, m), *idx);
        }
    }
}

#[test]
fn js_bloom_vectors() {
    let vectors = load("js-sds", "bloom");
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        let params = BloomParams::new(
            v["capacity"].as_u64().unwrap(),
            v["error_rate"].as_f64().unwrap(),
        )
        .unwrap();
        assert_eq!(params, BloomParams::default());
        let mut f = BloomFilter::new(BloomEncoding::Spec, params);
        for id in strings(&v["inserted"]) {
            f.insert_id(id.as_bytes());
        }
        let bytes = encode(&f);
        assert_eq!(bytes.len() as u64, v["serialized_len"].as_u64().unwrap());
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            v["serialized_sha256"].as_str().unwrap()
        );
        let set_bits = u64s(&v["set_bits"]);
        assert_eq!(f.set_bits(), set_bits);
        assert_eq!(f.count_ones(), set_bits.len() as u64);

        let view = decode(BloomEncoding::Spec, &bytes, &params);
        assert_eq!(view.set_bits(), set_bits);
        for id in strings(&v["inserted"]) {
            assert!(view.contains_id(id.as_bytes()));
        }
    }
}

/// The hashN table at the top of js-sds/vectors.txt: hA, hB and the indices.
#[test]
fn js_hashn_table() {
    let text = read_text("js-sds");
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with('"') && l.contains(" | 0x"))
    {
        let cols: Vec<&str> = line.trim().split(" | ").collect();
        let id = cols[0].trim_matches('"');
        let (ha, hb): (u64, u64) = (cols[3].parse().unwrap(), cols[4].parse().unwrap());
        let h = ItemHash::new(BloomEncoding::Spec, id.as_bytes());
        assert_eq!((h.a % 150_000, h.b % 150_000), (ha, hb), "{id}");
        let got: Vec<u64> = h.indices(10, 150_000).collect();
        assert_eq!(got, parse_list(cols[5]), "{id}");
        n += 1;
    }
    assert_eq!(n, 6);
}

/// Every message of js-sds/vectors.txt that carries a bloom: decode the 18 752-byte
/// field out of the wire hex, compare its set bits and sha256 with the listing, and
/// rebuild it from the inserted ids.
#[test]
fn js_message_blooms() {
    let text = read_text("js-sds");
    let all_ids: Vec<&str> = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect();
    let mut checked = 0;
    for block in text.split("VECTOR: ").skip(1) {
        let Some(wire_hex) = block.lines().find_map(|l| l.strip_prefix("hex: ")) else {
            continue;
        };
        let Some(field_line) = block
            .lines()
            .find(|l| l.contains(" field 12 len-delimited (18752 B)"))
        else {
            continue;
        };
        let wire = hex::decode(wire_hex.trim()).unwrap();
        let at: usize = field_line
            .trim()
            .trim_start_matches('@')
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // Tag 0x62 (field 12, LEN), then the length 18 752 as the varint c0 92 01.
        assert_eq!(&wire[at..at + 4], &[0x62, 0xc0, 0x92, 0x01]);
        let field = &wire[at + 4..at + 4 + 18752];

        let sha = block
            .lines()
            .find_map(|l| l.split("big-endian u64 words), sha256 ").nth(1))
            .unwrap()
            .trim();
        assert_eq!(hex::encode(Sha256::digest(field)), sha);

        let set_bits = block
            .lines()
            .find_map(|l| l.split("set bit indices (").nth(1))
            .map(|rest| parse_list(rest.split(": ").nth(1).unwrap()))
            .unwrap();
        let params = BloomParams::default();
        let view = decode(BloomEncoding::Spec, field, &params);
        assert_eq!(view.set_bits(), set_bits);

        let mut rebuilt = BloomFilter::new(BloomEncoding::Spec, params);
        for line in block
            .lines()
            .filter(|l| l.contains("hashN indices of inserted id "))
        {
            let prefix = line
                .split("inserted id ")
                .nth(1)
                .unwrap()
                .split('…')
                .next()
                .unwrap();
            let id = all_ids
                .iter()
                .find(|w| w.starts_with(prefix))
                .expect("full id in the file");
            let listed = parse_list(line.split(": ").nth(1).unwrap());
            let h = ItemHash::new(BloomEncoding::Spec, id.as_bytes());
            assert_eq!(h.indices(10, 150_000).collect::<Vec<_>>(), listed);
            assert!(view.contains(&h));
            rebuilt.insert(&h);
        }
        assert_eq!(encode(&rebuilt), field);
        checked += 1;
    }
    assert_eq!(checked, 4);
}
