//! The rolling per-channel filter (nim-sds.md §4.5 and §11.4).

use sds::bloom::{BloomEncoding, BloomParams, ItemHash, RollingBloom};

fn id(i: usize) -> String {
    format!("id{i}")
}

#[test]
fn nim_rollover_matches_nim_sds() {
    let mut r = RollingBloom::new(BloomEncoding::Nim, BloomParams::default());
    assert_eq!((r.min_items(), r.max_items()), (8_000, 12_000));
    for i in 0..=12_000 {
        r.insert_id(id(i).as_bytes());
        if i == 11_999 {
            // 12 000 held: no rollover yet.
            assert_eq!(r.len(), 12_000);
            assert_eq!(r.filter().params().m_bits, 150_000);
            assert!(r.contains_id(b"id0"));
        }
    }
    // §11.4: after id0 … id12000, ids id4001 … id12000 are kept in a filter sized for 12 000.
    assert_eq!(r.len(), 8_000);
    let p = r.filter().params();
    assert_eq!((p.capacity, p.k, p.m_bits), (12_000, 10, 180_000));
    assert_eq!(r.filter().encoded_len(), 22_520);
    assert!(!r.contains_id(b"id0"));
    assert!(!r.contains_id(b"id4000"));
    assert!(r.contains_id(b"id4001"));
    assert!(r.contains_id(b"id12000"));
    for i in 4001..=12_000 {
        assert!(r.contains_id(id(i).as_bytes()));
    }
    // Everything dropped is (almost all) gone: only false positives remain.
    let fp = (0..=4000)
        .filter(|&i| r.contains_id(id(i).as_bytes()))
        .count();
    assert!(fp < 20, "{fp} false positives among 4001 dropped ids");

    // The next rollover keeps the 12 000-item parameters.
    for i in 12_001..=16_000 {
        r.insert_id(id(i).as_bytes());
    }
    assert_eq!(r.len(), 12_000);
    r.insert_id(b"id16001");
    assert_eq!(r.len(), 8_000);
    assert_eq!(r.filter().params().m_bits, 180_000);
    assert!(r.contains_id(b"id16001") && r.contains_id(b"id8002") && !r.contains_id(b"id8001"));
}

#[test]
fn spec_rollover_keeps_parameters() {
    let mut r = RollingBloom::new(BloomEncoding::Spec, BloomParams::default());
    assert_eq!((r.min_items(), r.max_items()), (8_000, 10_000));
    for i in 0..10_000 {
        r.insert(&ItemHash::new(BloomEncoding::Spec, id(i).as_bytes()));
    }
    assert_eq!(r.len(), 10_000);
    r.insert_id(b"id10000");
    assert_eq!(r.len(), 8_000);
    assert_eq!(*r.filter().params(), BloomParams::default());
    assert_eq!(r.filter().encoded_len(), 18_752);
    assert!(!r.contains_id(b"id2000"));
    assert!(r.contains_id(b"id2001") && r.contains_id(b"id10000"));
    let est = r.filter().estimated_items();
    assert!((7_800..=8_200).contains(&est), "estimate {est}");
}

#[test]
fn small_capacities() {
    for enc in [BloomEncoding::Spec, BloomEncoding::Nim] {
        for cap in [1u64, 2, 3, 5, 10] {
            let mut r = RollingBloom::new(enc, BloomParams::new(cap, 0.01).unwrap());
            for i in 0..50 {
                r.insert_id(id(i).as_bytes());
                assert!(r.len() <= r.max_items());
                assert!(r.contains_id(id(i).as_bytes()) || r.min_items() == 0);
            }
        }
        let mut r = RollingBloom::new(enc, BloomParams::default());
        r.insert_id(b"x");
        r.clear();
        assert!(r.is_empty() && !r.contains_id(b"x"));
    }
}
