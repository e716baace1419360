//! SDS-R timing and response groups against every `repair` vector of both peers.

mod vectors_common;
use vectors_common::load;

use sds::repair::timing::{
    in_response_group, response_groups_for, t_req_offset, t_resp_offset,
    waku_sds_response_groups_for, RepairHash,
};

fn check(peer: &str, hash: RepairHash) {
    let vectors = load(peer, "repair");
    assert_eq!(vectors.len(), 40, "{peer}");
    for v in &vectors {
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let n = |k: &str| v[k].as_u64().unwrap();
        let (p, snd, m) = (s("participant_id"), s("sender_id"), s("message_id"));
        let (t_min, t_max) = (n("t_min_ms"), n("t_max_ms"));
        let groups = u32::try_from(n("num_response_groups")).unwrap();
        let ctx = format!("{peer}: p={p} s={snd} m={m} tmin={t_min} tmax={t_max} n={groups}");

        let t_req = t_req_offset(hash, &p, &m, t_min, t_max);
        assert_eq!(t_req, n("t_req_offset_ms"), "T_req {ctx}");
        assert!((t_min..t_max).contains(&t_req));

        let t_resp = t_resp_offset(hash, &p, &snd, &m, t_max);
        assert_eq!(t_resp, n("t_resp_offset_ms"), "T_resp {ctx}");
        assert!(t_resp < t_max);
        if p == snd {
            assert_eq!(t_resp, 0);
        }

        let in_group = in_response_group(hash, &p, &snd, &m, groups);
        assert_eq!(
            in_group,
            v["in_response_group"].as_bool().unwrap(),
            "group {ctx}"
        );
        // The sender is always in its own group.
        assert!(in_response_group(hash, &snd, &snd, &m, groups));
    }
}

#[test]
fn nim_repair_vectors() {
    check("nim-sds", RepairHash::Nim);
}

#[test]
fn js_repair_vectors() {
    check("js-sds", RepairHash::Spec);
}

#[test]
fn nim_reference_table() {
    // nim-sds.md §11.5 (T_min 30 s, T_max 300 s).
    let nim = RepairHash::Nim;
    for (p, m, want) in [
        ("alice", "m1", 198_167),
        ("bob", "m1", 105_515),
        ("carol", "msg-xyz", 173_912),
        ("participant1", "msg1", 44_346),
    ] {
        assert_eq!(t_req_offset(nim, p, m, 30_000, 300_000), want, "{p} {m}");
    }
    for (p, s, m, want) in [
        ("bob", "alice", "m1", 47_732),
        ("carol", "alice", "m1", 8_988),
        ("alice", "alice", "m1", 0),
        ("other-node", "sender1", "msg1", 188_160),
    ] {
        assert_eq!(t_resp_offset(nim, p, s, m, 300_000), want, "{p} {s} {m}");
    }
    assert!(in_response_group(nim, "bob", "alice", "probe-0", 10));
    assert!(in_response_group(nim, "carol", "alice", "probe-0", 10));
    assert!(!in_response_group(nim, "bob", "alice", "probe-1", 10));
    assert!(in_response_group(nim, "carol", "alice", "probe-1", 10));
}

#[test]
fn degenerate_ranges() {
    for hash in [RepairHash::Nim, RepairHash::Spec] {
        // T_max == T_min: T_min (nim-sds; @waku/sds throws).
        assert_eq!(t_req_offset(hash, "a", "m", 5_000, 5_000), 5_000);
        assert_eq!(t_req_offset(hash, "a", "m", 0, 0), 0);
        // T_max == 0: respond at once (nim-sds; @waku/sds throws).
        assert_eq!(t_resp_offset(hash, "a", "b", "m", 0), 0);
        // T_max == 1: always 0.
        assert_eq!(t_resp_offset(hash, "a", "b", "m", 1), 0);
        assert_eq!(t_req_offset(hash, "a", "m", 0, 1), 0);
        // Huge values never overflow or panic.
        let _ = t_req_offset(hash, "a", "m", 0, u64::MAX);
        let _ = t_req_offset(hash, "a", "m", u64::MAX, 0);
        assert!(t_resp_offset(hash, "a", "b", "m", u64::MAX) < u64::MAX);
        assert!(in_response_group(hash, "a", "b", "m", 0));
        assert!(in_response_group(hash, "a", "b", "m", 1));
    }
    // T_max < T_min: nim-sds returns T_min, @waku/sds computes H mod (T_min - T_max) + T_min.
    assert_eq!(
        t_req_offset(RepairHash::Nim, "a", "m", 60_000, 30_000),
        60_000
    );
    let spec = t_req_offset(RepairHash::Spec, "a", "m", 60_000, 30_000);
    assert!((60_000..90_000).contains(&spec));
    assert_eq!(
        spec,
        t_req_offset(RepairHash::Spec, "a", "m", 60_000, 90_000)
    );
    // @waku/sds: no sender id, no response.
    assert!(!in_response_group(RepairHash::Spec, "a", "", "m", 1));
    assert!(in_response_group(RepairHash::Nim, "a", "", "m", 1));
}

#[test]
fn group_counts() {
    assert_eq!(response_groups_for(0), 1);
    assert_eq!(response_groups_for(127), 1);
    assert_eq!(response_groups_for(128), 2);
    assert_eq!(response_groups_for(1000), 8);
    assert_eq!(response_groups_for(u64::MAX), u32::MAX);
    assert_eq!(waku_sds_response_groups_for(0), 1);
    assert_eq!(waku_sds_response_groups_for(255), 1);
    assert_eq!(waku_sds_response_groups_for(256), 2);
}
