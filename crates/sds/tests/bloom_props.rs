//! Property tests: decoding never panics, inserted items are found, and
//! encode → decode → contains round-trips for both encodings.

use proptest::prelude::*;
use sds::bloom::{BloomEncoding, BloomFilter, BloomLimits, BloomParams, BloomView, ItemHash};

fn encoding() -> impl Strategy<Value = BloomEncoding> {
    prop_oneof![Just(BloomEncoding::Spec), Just(BloomEncoding::Nim)]
}

fn params() -> impl Strategy<Value = BloomParams> {
    (1u64..3_000, 1u32..500)
        .prop_map(|(cap, p)| BloomParams::new(cap, f64::from(p) / 1000.0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_arbitrary_bytes_never_panics(
        enc in encoding(),
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        m in 0u64..4_000,
        k in 0u32..80,
    ) {
        let receiver = BloomParams { capacity: 10, error_rate: 0.01, k, m_bits: m };
        if let Ok(v) = BloomView::decode(enc, &bytes, &receiver, &BloomLimits::default()) {
            let p = *v.params();
            prop_assert!(p.m_bits > 0 && p.k > 0 && p.m_bits <= 64 * (bytes.len() as u64 / 8));
            let _ = v.contains_id(b"probe");
            prop_assert!(v.count_ones() <= p.m_bits);
            prop_assert_eq!(v.set_bits().len() as u64, v.count_ones());
            let _ = v.estimated_items();
        }
    }

    #[test]
    fn decode_mutated_nim_never_panics(
        ids in prop::collection::vec("[0-9a-f]{1,64}", 0..20),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = BloomFilter::new(BloomEncoding::Nim, BloomParams::new(20, 0.05).unwrap());
        for id in &ids {
            f.insert_id(id.as_bytes());
        }
        let mut bytes = Vec::new();
        f.encode_into(&mut bytes);
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let end = cut.index(bytes.len() + 1);
        let bytes = &bytes[..end];
        if let Ok(v) = BloomView::decode(BloomEncoding::Nim, bytes, &BloomParams::default(), &BloomLimits::default()) {
            let _ = v.contains_id(b"x");
            let _ = v.set_bits();
        }
    }

    #[test]
    fn inserted_items_are_found(
        enc in encoding(),
        p in params(),
        ids in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 1..50),
    ) {
        let mut f = BloomFilter::new(enc, p);
        for id in &ids {
            f.insert_id(id);
            prop_assert!(f.contains_id(id));
        }
        for id in &ids {
            prop_assert!(f.contains(&ItemHash::new(enc, id)));
        }
        prop_assert!(f.count_ones() <= ids.len() as u64 * u64::from(p.k));
        prop_assert!(f.set_bits().iter().all(|&b| b < p.m_bits));
    }

    #[test]
    fn encode_decode_round_trip(
        enc in encoding(),
        p in params(),
        ids in prop::collection::vec("[0-9a-f]{64}", 0..60),
        probes in prop::collection::vec("[0-9a-f]{64}", 0..20),
    ) {
        let mut f = BloomFilter::new(enc, p);
        for id in &ids {
            f.insert_id(id.as_bytes());
        }
        let mut bytes = Vec::new();
        f.encode_into(&mut bytes);
        prop_assert_eq!(bytes.len(), f.encoded_len());
        // Spec filters are decoded with the receiver's (here: the same) parameters.
        let v = BloomView::decode(enc, &bytes, &p, &BloomLimits::default()).unwrap();
        prop_assert_eq!(v.params().k, p.k);
        prop_assert_eq!(v.params().m_bits, p.m_bits);
        prop_assert_eq!(v.params().capacity, p.capacity);
        prop_assert_eq!(v, f.as_view());
        for id in &ids {
            prop_assert!(v.contains_id(id.as_bytes()));
        }
        for id in &probes {
            prop_assert_eq!(v.contains_id(id.as_bytes()), f.contains_id(id.as_bytes()));
        }
        prop_assert_eq!(v.set_bits(), f.set_bits());
        prop_assert_eq!(v.estimated_items(), f.estimated_items());
    }

    #[test]
    fn indices_match_index(a in any::<u64>(), b in any::<u64>(), m in 1u64.., k in 0u32..40) {
        let h = ItemHash { a, b };
        let it: Vec<u64> = h.indices(k, m).collect();
        prop_assert_eq!(it.len(), k as usize);
        for (i, idx) in it.iter().enumerate() {
            prop_assert_eq!(*idx, h.index(i as u32, m));
            prop_assert!(*idx < m);
        }
    }
}
