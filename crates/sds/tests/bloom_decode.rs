//! Hostile and malformed bloom fields: typed errors, never a panic.

use sds::bloom::{BloomEncoding, BloomError, BloomFilter, BloomLimits, BloomParams, BloomView};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A nim-sds nested bloom with the given fields (`None` = omitted).
fn nim(
    words: Option<&[u8]>,
    capacity: Option<u64>,
    ppm: Option<u64>,
    k: Option<u64>,
    m: Option<u64>,
) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(w) = words {
        out.push(0x0a);
        varint(&mut out, w.len() as u64);
        out.extend_from_slice(w);
    }
    for (tag, v) in [(0x10, capacity), (0x18, ppm), (0x20, k), (0x28, m)] {
        if let Some(v) = v {
            out.push(tag);
            varint(&mut out, v);
        }
    }
    out
}

fn decode_nim(bytes: &[u8]) -> Result<BloomView<'_>, BloomError> {
    BloomView::decode(
        BloomEncoding::Nim,
        bytes,
        &BloomParams::default(),
        &BloomLimits::default(),
    )
}

const W2: [u8; 16] = [0; 16];

#[test]
fn nim_valid_minimal() {
    let b = nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(100));
    let v = decode_nim(&b).unwrap();
    assert_eq!(
        v.params(),
        &BloomParams {
            capacity: 10,
            error_rate: 0.01,
            k: 7,
            m_bits: 100
        }
    );
    assert!(!v.contains_id(b"x"));
    assert_eq!(v.count_ones(), 0);
    assert_eq!(v.estimated_items(), 0);
    // m may use every carried bit.
    assert!(decode_nim(&nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(128))).is_ok());
}

#[test]
fn nim_missing_fields() {
    let full = [Some(10u64), Some(10_000), Some(7), Some(100)];
    assert_eq!(
        decode_nim(&nim(None, full[0], full[1], full[2], full[3])),
        Err(BloomError::MissingField {
            field: 1,
            name: "bit array"
        })
    );
    for missing in 0..4 {
        let mut f = full;
        f[missing] = None;
        let err = decode_nim(&nim(Some(&W2), f[0], f[1], f[2], f[3])).unwrap_err();
        assert!(
            matches!(err, BloomError::MissingField { field, .. } if field == missing as u32 + 2),
            "{err}"
        );
    }
    assert!(matches!(
        decode_nim(&[]),
        Err(BloomError::MissingField { field: 1, .. })
    ));
}

#[test]
fn nim_hostile_parameters() {
    let cases: Vec<(Vec<u8>, BloomError)> = vec![
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(0)),
            BloomError::ZeroBits,
        ),
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(129)),
            BloomError::BitsBeyondData {
                m_bits: 129,
                available: 128,
            },
        ),
        (
            // nim-sds §11.7: m = 10⁶ with one word crashed nim with an IndexDefect.
            nim(
                Some(&[0; 8]),
                Some(10),
                Some(10_000),
                Some(7),
                Some(1_000_000),
            ),
            BloomError::BitsBeyondData {
                m_bits: 1_000_000,
                available: 64,
            },
        ),
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(u64::MAX)),
            BloomError::TooManyBits {
                m_bits: u64::MAX,
                max: 8 * 1024 * 1024,
            },
        ),
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(0), Some(100)),
            BloomError::ZeroHashes,
        ),
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(65), Some(100)),
            BloomError::TooManyHashes { k: 65, max: 64 },
        ),
        (
            nim(Some(&W2), Some(10), Some(10_000), Some(u64::MAX), Some(100)),
            BloomError::TooManyHashes {
                k: u64::MAX,
                max: 64,
            },
        ),
        (
            nim(Some(&W2), Some(0), Some(10_000), Some(7), Some(100)),
            BloomError::InvalidCapacity {
                capacity: 0,
                m_bits: 100,
            },
        ),
        (
            nim(Some(&W2), Some(101), Some(10_000), Some(7), Some(100)),
            BloomError::InvalidCapacity {
                capacity: 101,
                m_bits: 100,
            },
        ),
        (
            nim(Some(&W2), Some(10), Some(0), Some(7), Some(100)),
            BloomError::InvalidCarriedErrorRate { ppm: 0 },
        ),
        (
            nim(Some(&W2), Some(10), Some(1_000_000), Some(7), Some(100)),
            BloomError::InvalidCarriedErrorRate { ppm: 1_000_000 },
        ),
        (
            nim(Some(&[]), Some(10), Some(10_000), Some(7), Some(1)),
            BloomError::BitsBeyondData {
                m_bits: 1,
                available: 0,
            },
        ),
    ];
    for (bytes, expected) in cases {
        let got = decode_nim(&bytes);
        assert_eq!(got, Err(expected.clone()), "{expected}");
        // Every error has a message naming the problem.
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn nim_custom_limits() {
    let b = nim(Some(&[0; 64]), Some(10), Some(10_000), Some(7), Some(500));
    let tight = BloomLimits {
        max_k: 6,
        max_m_bits: 400,
    };
    let err = BloomView::decode(BloomEncoding::Nim, &b, &BloomParams::default(), &tight);
    assert_eq!(
        err,
        Err(BloomError::TooManyBits {
            m_bits: 500,
            max: 400
        })
    );
    let tight = BloomLimits {
        max_k: 6,
        max_m_bits: 500,
    };
    let err = BloomView::decode(BloomEncoding::Nim, &b, &BloomParams::default(), &tight);
    assert_eq!(err, Err(BloomError::TooManyHashes { k: 7, max: 6 }));
}

#[test]
fn nim_trailing_bytes_in_words_are_ignored() {
    // 17 bytes: 2 whole words, the 17th byte is ignored (as nim's `len div 8`).
    let mut w = [0u8; 17];
    w[16] = 0xff;
    let b = nim(Some(&w), Some(10), Some(10_000), Some(7), Some(128));
    let v = decode_nim(&b).unwrap();
    assert_eq!(v.count_ones(), 0);
}

#[test]
fn nim_bits_beyond_m_are_ignored_by_counts() {
    let b = nim(
        Some(&[0xff; 16]),
        Some(10),
        Some(10_000),
        Some(7),
        Some(100),
    );
    let v = decode_nim(&b).unwrap();
    assert_eq!(v.count_ones(), 100);
    assert_eq!(v.set_bits(), (0..100).collect::<Vec<_>>());
    assert_eq!(v.estimated_items(), u64::MAX);
    assert!(v.contains_id(b"anything"));
}

#[test]
fn nim_malformed_protobuf() {
    let good = nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(100));
    // Truncated anywhere: an error, never a panic (the cut at the end of a field
    // only drops later fields).
    for cut in 0..good.len() {
        assert!(decode_nim(&good[..cut]).is_err(), "cut at {cut}");
    }
    // Truncated varint.
    assert_eq!(
        decode_nim(&[0x10, 0x80]),
        Err(BloomError::TruncatedVarint { offset: 1 })
    );
    assert_eq!(
        decode_nim(&[0x80]),
        Err(BloomError::TruncatedVarint { offset: 0 })
    );
    // Varint overflow.
    let mut over = vec![0x10];
    over.extend_from_slice(&[0xff; 9]);
    over.push(0x02);
    assert_eq!(
        decode_nim(&over),
        Err(BloomError::VarintOverflow { offset: 1 })
    );
    // Length overrun, including a length near u64::MAX.
    assert_eq!(
        decode_nim(&[0x0a, 0x05, 1, 2]),
        Err(BloomError::Overrun {
            offset: 2,
            len: 5,
            remaining: 2
        })
    );
    let mut huge = vec![0x0a];
    varint(&mut huge, u64::MAX);
    assert!(matches!(
        decode_nim(&huge),
        Err(BloomError::Overrun { len: u64::MAX, .. })
    ));
    // Wrong wire types for known fields.
    assert_eq!(
        decode_nim(&[0x08, 0x01]),
        Err(BloomError::WrongWireType {
            field: 1,
            wire_type: 0,
            expected: 2
        })
    );
    assert_eq!(
        decode_nim(&[0x12, 0x00]),
        Err(BloomError::WrongWireType {
            field: 2,
            wire_type: 2,
            expected: 0
        })
    );
    assert_eq!(
        decode_nim(&[0x2d, 0, 0, 0, 0]),
        Err(BloomError::WrongWireType {
            field: 5,
            wire_type: 5,
            expected: 0
        })
    );
    // Field number 0, groups and wire types 6/7.
    for tag in [0x00u8, 0x02, 0x0b, 0x0c, 0x0e, 0x0f] {
        assert!(
            matches!(decode_nim(&[tag, 0]), Err(BloomError::InvalidTag { .. })),
            "{tag:#x}"
        );
    }
    // Fixed-width overrun.
    assert!(matches!(
        decode_nim(&[0x31, 1, 2]),
        Err(BloomError::Overrun { len: 8, .. })
    ));
}

#[test]
fn nim_unknown_fields_and_repeats() {
    let mut b = vec![
        0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0x3d, 0, 0, 0, 0, 0x42, 0x01, 0xaa, 0x48, 0x05,
    ];
    // A first, wrong bit array (1 word) overridden by the real one (last wins).
    b.extend(nim(Some(&[0xff; 8]), Some(1), Some(1), Some(1), Some(1)));
    b.extend(nim(Some(&W2), Some(10), Some(10_000), Some(7), Some(100)));
    let v = decode_nim(&b).unwrap();
    assert_eq!(v.params().m_bits, 100);
    assert_eq!(v.count_ones(), 0);
}

#[test]
fn spec_lengths() {
    let params = BloomParams::default();
    let limits = BloomLimits::default();
    let ok = vec![0u8; 18_752];
    assert!(BloomView::decode(BloomEncoding::Spec, &ok, &params, &limits).is_ok());
    let mut longer = ok.clone();
    longer.extend_from_slice(&[0xff; 9]);
    let v = BloomView::decode(BloomEncoding::Spec, &longer, &params, &limits).unwrap();
    assert_eq!(v.count_ones(), 0, "extra bytes are ignored");
    for len in [0usize, 1, 8, 18_744, 18_751] {
        assert_eq!(
            BloomView::decode(BloomEncoding::Spec, &ok[..len], &params, &limits),
            Err(BloomError::TooShort {
                expected: 18_752,
                actual: len,
                m_bits: 150_000
            })
        );
    }
}

#[test]
fn spec_invalid_receiver_params() {
    let bytes = [0u8; 64];
    let limits = BloomLimits::default();
    let zero_m = BloomParams {
        m_bits: 0,
        ..BloomParams::default()
    };
    assert_eq!(
        BloomView::decode(BloomEncoding::Spec, &bytes, &zero_m, &limits),
        Err(BloomError::ZeroBits)
    );
    let zero_k = BloomParams {
        k: 0,
        m_bits: 64,
        ..BloomParams::default()
    };
    assert_eq!(
        BloomView::decode(BloomEncoding::Spec, &bytes, &zero_k, &limits),
        Err(BloomError::ZeroHashes)
    );
    let huge = BloomParams {
        m_bits: u64::MAX,
        ..BloomParams::default()
    };
    assert!(matches!(
        BloomView::decode(BloomEncoding::Spec, &bytes, &huge, &limits),
        Err(BloomError::TooShort { .. })
    ));
}

#[test]
fn degenerate_local_filters_do_not_panic() {
    for enc in [BloomEncoding::Spec, BloomEncoding::Nim] {
        let mut f = BloomFilter::new(
            enc,
            BloomParams {
                m_bits: 0,
                ..BloomParams::default()
            },
        );
        f.insert_id(b"a");
        assert!(!f.contains_id(b"a"));
        assert_eq!(f.count_ones(), 0);
        let mut f = BloomFilter::new(
            enc,
            BloomParams {
                k: 0,
                m_bits: 64,
                ..BloomParams::default()
            },
        );
        f.insert_id(b"a");
        assert_eq!(f.count_ones(), 0);
        assert_eq!(f.estimated_items(), 0);
    }
}

#[test]
fn params_validate() {
    let limits = BloomLimits::default();
    assert_eq!(BloomParams::default().validate(&limits), Ok(()));
    let p = BloomParams {
        k: 0,
        ..BloomParams::default()
    };
    assert_eq!(p.validate(&limits), Err(BloomError::ZeroHashes));
    let p = BloomParams {
        error_rate: 1.0,
        ..BloomParams::default()
    };
    assert!(matches!(
        p.validate(&limits),
        Err(BloomError::InvalidErrorRate { .. })
    ));
    let msg = BloomParams::new(5, 1.5).unwrap_err().to_string();
    assert!(msg.contains("1.5"), "{msg}");
}
