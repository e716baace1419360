//! The string hashes against the golden vectors of both peers.

mod vectors_common;
use vectors_common::{load, read_text};

use sds::hash::{
    murmur3_x86_32, murmur3_x86_32_concat, nim_string_hash, nim_string_hash_concat,
    sha256_prefix_u64, sha256_prefix_u64_concat,
};

#[test]
fn nim_hash_vectors() {
    let vectors = load("nim-sds", "hash");
    assert_eq!(vectors.len(), 144);
    let mut lengths = std::collections::BTreeSet::new();
    for v in &vectors {
        let input = hex::decode(v["input_hex"].as_str().unwrap()).unwrap();
        let expected: i64 = v["hash_i64"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            nim_string_hash(&input),
            expected,
            "input {}",
            v["input_hex"]
        );
        // Every split of the input through the streaming variant agrees.
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(nim_string_hash_concat(a, b), expected);
        }
        lengths.insert(input.len());
    }
    // All FarmHash length classes are exercised: 0, 1-3, 4-7, 8-16, 17-32, 33-64, > 64.
    for (lo, hi) in [
        (0, 0),
        (1, 3),
        (4, 7),
        (8, 16),
        (17, 32),
        (33, 64),
        (65, usize::MAX),
    ] {
        assert!(
            lengths.range(lo..=hi).next().is_some(),
            "no vector of length {lo}..={hi}"
        );
    }
}

#[test]
fn nim_hash_reference_table() {
    // nim-sds.md §11.1 and the header of nim-sds/vectors.txt.
    let table: &[(&[u8], i64)] = &[
        (b"", -7286425919675154353),
        (b"a", -5528939962900187677),
        (b"bob", 997402615728716913),
        (b"hello", -5436999610281751320),
        (b"alice", -8321384245627934459),
        (b"msg1", -1191417451468722816),
        (b"msg1 b", 2240908806621825803),
        (b"test123", -4452733612927133661),
        (b"alicem1", -7787591295787428167),
        (b"abcdefgh", -78300442537744119),
        (b"participant1msg1", 6188478101724974346),
        (b"0123456789abcdef0", 7920484519069722889),
        (
            b"9f86d081884c7d659a2fea0aa0a5d1e5b0b6b4e5c3a1f0e2d3c4b5a697887766",
            3789272607202981521,
        ),
        ("αβγδε".as_bytes(), 9220517988141922749),
        (b"msg-1", 7995000676772511300),
        (b"msg-1 b", -6138618504618002191),
    ];
    for (input, expected) in table {
        assert_eq!(
            nim_string_hash(input),
            *expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(nim_string_hash(&[b'x'; 40]), -1443147843654566764);
    assert_eq!(nim_string_hash(&[b'y'; 100]), -1325251466552523261);
}

#[test]
fn nim_vectors_txt_hashes() {
    // Section 3: `id="…" hash=… hash(id&" b")=…`.
    let text = read_text("nim-sds");
    let mut n = 0;
    for line in text.lines().filter(|l| l.trim_start().starts_with("id=\"")) {
        let id = line.split('"').nth(1).unwrap();
        let field = |name: &str| -> i64 {
            let rest = &line[line.find(name).unwrap() + name.len()..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        assert_eq!(nim_string_hash(id.as_bytes()), field(" hash="), "{id}");
        assert_eq!(
            nim_string_hash_concat(id.as_bytes(), b" b"),
            field("hash(id&\" b\")=")
        );
        n += 1;
    }
    assert_eq!(n, 5);
}

/// The `hashN` table at the top of js-sds/vectors.txt: murmur3 of the id and of `id + " b"`.
#[test]
fn js_murmur3_table() {
    let text = read_text("js-sds");
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with('"') && l.contains(" | 0x"))
    {
        let cols: Vec<&str> = line.trim().split(" | ").collect();
        let id = cols[0].trim_matches('"');
        let hex_of = |c: &str| u32::from_str_radix(&c.split_whitespace().next().unwrap()[2..], 16);
        assert_eq!(
            murmur3_x86_32(id.as_bytes(), 0),
            hex_of(cols[1]).unwrap(),
            "{id}"
        );
        assert_eq!(
            murmur3_x86_32_concat(id.as_bytes(), b" b", 0),
            hex_of(cols[2]).unwrap()
        );
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn murmur3_reference_values() {
    // Published MurmurHash3_x86_32 values.
    assert_eq!(murmur3_x86_32(b"", 0), 0);
    assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
    assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81f1_6f39);
    assert_eq!(murmur3_x86_32(&[0, 0, 0, 0], 0), 0x2362_f9de);
    assert_eq!(murmur3_x86_32(b"aaaa", 0x9747_b28c), 0x5a97_808a);
    assert_eq!(murmur3_x86_32(b"abc", 0), 0xb3dd_93fa);
    assert_eq!(murmur3_x86_32(b"Hello, world!", 0x9747_b28c), 0x2488_4cba);
    assert_eq!(
        murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
        0x2fa8_26cd
    );
}

#[test]
fn sha256_prefix() {
    // sha256("") = e3b0c442 98fc1c14 ...
    assert_eq!(sha256_prefix_u64(b""), 0xe3b0_c442_98fc_1c14);
    // sha256("abc") = ba7816bf 8f01cfea ...
    assert_eq!(sha256_prefix_u64(b"abc"), 0xba78_16bf_8f01_cfea);
    assert_eq!(sha256_prefix_u64_concat(b"a", b"bc"), 0xba78_16bf_8f01_cfea);
}
