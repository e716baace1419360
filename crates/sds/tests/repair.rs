//! SDS-R scenarios in virtual time.
#![allow(clippy::needless_range_loop)] // participants are indexed across several vectors
mod common;
use common::*;
use proptest::prelude::*;
use sds::repair::timing::{in_response_group, RepairHash};
use sds::{Config, Event, TransmitReason};
use std::collections::HashSet;

fn repairs(net: &Net) -> Vec<(usize, String)> {
    let mut v = Vec::new();
    for (i, sent) in net.sent.iter().enumerate() {
        for (_, tx) in sent {
            if tx.reason == TransmitReason::Repair {
                v.push((i, tx.message_id.clone()));
            }
        }
    }
    v
}

/// Drops the first transmission (new and resends) of `id` for the given receivers.
fn drop_for(id: &'static str, receivers: &'static [usize]) -> DropFn {
    Box::new(move |_, to, tx| {
        tx.message_id == id
            && matches!(tx.reason, TransmitReason::New | TransmitReason::Resend)
            && receivers.contains(&to)
    })
}

#[test]
fn online_sender_repairs_with_one_rebroadcast() {
    let names = ["a", "b", "c", "d", "e"];
    let mut net = Net::new(&names, Config::default(), 3);
    net.drop = Some(drop_for("m1", &[1, 2, 3]));
    net.send(0, "ch", "m1", b"hello");
    net.run_for(1_000);
    net.send(4, "ch", "m2", b"world"); // e got m1; its history names it
    net.run_for(10 * 60_000);
    for i in 0..names.len() {
        assert_eq!(net.log(i, "ch"), vec!["m1", "m2"], "{}", names[i]);
    }
    // One re-broadcast, by the original sender (T_resp = 0).
    assert_eq!(repairs(&net), vec![(0, "m1".to_string())]);
    // Only one participant had to ask: the others saw its request first.
    let requests: usize = (0..5)
        .map(|i| net.count(i, |e| matches!(e, Event::RepairRequested { .. })))
        .sum();
    assert_eq!(requests, 1);
}

#[test]
fn offline_sender_one_other_participant_answers() {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut exactly_one = 0;
    for seed in 0..20 {
        let mut net = Net::new(&names, Config::default(), seed);
        net.drop = Some(drop_for("m1", &[5, 6, 7]));
        net.send(0, "ch", "m1", b"hello");
        net.run_for(1_000);
        net.online[0] = false; // the sender leaves
        net.send(1, "ch", "m2", b"world");
        net.run_for(15 * 60_000);
        for i in 1..names.len() {
            assert_eq!(
                net.log(i, "ch"),
                vec!["m1", "m2"],
                "seed {seed} {}",
                names[i]
            );
        }
        let r = repairs(&net);
        assert!(!r.is_empty() && r.len() <= 3, "seed {seed}: {r:?}");
        assert!(r.iter().all(|(i, id)| *i != 0 && id == "m1"));
        if r.len() == 1 {
            exactly_one += 1;
        }
    }
    assert!(
        exactly_one >= 16,
        "exactly one responder in {exactly_one}/20 runs"
    );
}

#[test]
fn response_groups_limit_who_answers() {
    let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut cfg = Config::default();
    cfg.repair.num_response_groups = 4;
    let mut net = Net::new(&refs, cfg, 9);
    net.drop = Some(drop_for("m1", &[11]));
    net.send(0, "ch", "m1", b"x");
    net.run_for(1_000);
    net.online[0] = false;
    net.send(1, "ch", "m2", b"y");
    // Run until the request has been seen by everyone, not long enough to answer.
    let mut asked_at = None;
    for _ in 0..400 {
        net.run_for(1_000);
        if net.count(11, |e| matches!(e, Event::RepairRequested { .. })) > 0 {
            asked_at = Some(net.now);
            break;
        }
    }
    assert!(asked_at.is_some(), "p11 asked for m1");
    net.run_for(500);
    let mut queued = HashSet::new();
    for i in 1..11 {
        let st = net.nodes[i].channel_state("ch").unwrap();
        let expected = in_response_group(RepairHash::Spec, &names[i], "p0", "m1", 4);
        let answered = repairs(&net).iter().any(|(j, _)| *j == i);
        assert_eq!(
            st.repair_responses.contains(&"m1".to_string()) || answered,
            expected,
            "{}",
            names[i]
        );
        if expected {
            queued.insert(i);
        }
    }
    assert!(!queued.is_empty() && queued.len() < 10, "{queued:?}");
    net.run_for(10 * 60_000);
    assert_eq!(net.log(11, "ch"), vec!["m1", "m2"]);
    assert!(repairs(&net).iter().all(|(j, _)| queued.contains(j)));
}

#[test]
fn no_repair_request_for_a_dependency_released_by_the_cascade() {
    // b receives m1 (dep m0) then m2 (dep m1): only m0 is requested; when m0
    // arrives, everything is delivered and nothing is left to request.
    let mut a = sds::Participant::new(
        "a",
        Config {
            causal_history_len: 1,
            ..Config::default()
        },
    )
    .unwrap();
    let mut b = sds::Participant::new("b", Config::default()).unwrap();
    for i in 0..3 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    b.receive(txs[1].bytes.clone(), None, T0).unwrap();
    b.receive(txs[2].bytes.clone(), None, T0).unwrap();
    assert_eq!(b.channel_state("c").unwrap().repair_requests, vec!["m0"]);
    b.receive(txs[0].bytes.clone(), None, T0 + 1).unwrap();
    assert!(b.channel_state("c").unwrap().repair_requests.is_empty());
    // Nothing carries a repair request afterwards.
    let mut t = T0 + 1;
    while let Some(d) = b.poll_timeout() {
        if d > T0 + 30 * 60_000 {
            break;
        }
        t = d.max(t);
        b.handle_timeout(t);
        assert!(transmits(&mut b)
            .iter()
            .all(|x| x.repair_request.is_empty()));
    }
}

#[test]
fn another_participants_request_holds_ours_back() {
    for seed in 0..5 {
        let names = ["a", "b", "c", "d"];
        let mut net = Net::new(&names, Config::default(), seed);
        net.drop = Some(drop_for("m1", &[1, 2]));
        net.send(0, "ch", "m1", b"x");
        net.run_for(500);
        net.online[0] = false; // the sender leaves; d is the only holder
        net.run_for(15 * 60_000); // d's syncs reveal m1 to b and c
        let asked = |i: usize| net.count(i, |e| matches!(e, Event::RepairRequested { .. }));
        assert_eq!(
            asked(1) + asked(2),
            1,
            "seed {seed}: b {} c {}",
            asked(1),
            asked(2)
        );
        assert_eq!(repairs(&net), vec![(3, "m1".to_string())], "seed {seed}");
        for i in 1..4 {
            assert_eq!(net.log(i, "ch"), vec!["m1"], "seed {seed} {}", names[i]);
        }
    }
}

#[test]
fn repeated_request_does_not_push_t_resp_back() {
    let mut cfg = Config::default();
    cfg.repair.t_max_ms = 120_000;
    let mut a = sds::Participant::new("a", cfg.clone()).unwrap();
    let mut h = sds::Participant::new("holder", cfg.clone()).unwrap();
    a.send("c", "m1", &b"x"[..], T0).unwrap();
    pass(&mut a, &mut h, T0);
    drain(&mut h);
    let request = |from: &str, at: u64| {
        let m = sds::wire::Message {
            sender_id: from.into(),
            message_id: format!("req-{at}"),
            channel_id: "c".into(),
            lamport_timestamp: Some(at),
            repair_request: vec![sds::wire::HistoryEntry {
                message_id: "m1".into(),
                retrieval_hint: None,
                sender_id: Some("a".into()),
            }],
            ..Default::default()
        };
        sds::wire::encode(&m, sds::Dialect::Spec).unwrap()
    };
    let offset = sds::repair::timing::t_resp_offset(RepairHash::Spec, "holder", "a", "m1", 120_000);
    assert!(
        offset > 20_000,
        "pick ids with a visible back-off (offset {offset})"
    );
    h.receive(request("x", T0 + 10_000), None, T0 + 10_000)
        .unwrap();
    h.receive(request("y", T0 + 20_000), None, T0 + 20_000)
        .unwrap();
    let mut fired = None;
    while let Some(d) = h.poll_timeout() {
        if d > T0 + 200_000 {
            break;
        }
        h.handle_timeout(d);
        if transmits(&mut h)
            .iter()
            .any(|t| t.reason == TransmitReason::Repair)
        {
            fired = Some(d);
            break;
        }
    }
    assert_eq!(fired, Some(T0 + 10_000 + offset));
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    /// With no resends and a transport that permanently drops some messages
    /// for some receivers, SDS-R alone brings everyone to the same log.
    #[test]
    fn sdsr_alone_converges(seed in any::<u64>(), n in 3usize..=8, k in 2usize..=12, p in 0.1f64..0.5) {
        let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let cfg = Config { max_resend_attempts: 0, bloom_capacity: 1_000, ..Config::default() };
        let mut net = Net::new(&refs, cfg, seed);
        let mut rng = TestRng(seed);
        let mut dropped: HashSet<(String, usize)> = HashSet::new();
        for m in 0..k {
            for r in 0..n {
                if rng.chance(p) {
                    dropped.insert((format!("m{m}"), r));
                }
            }
        }
        net.drop = Some(Box::new(move |_, to, tx| {
            matches!(tx.reason, TransmitReason::New | TransmitReason::Resend)
                && dropped.contains(&(tx.message_id.clone(), to))
        }));
        for m in 0..k {
            let sender = (rng.next_u64() % n as u64) as usize;
            net.send(sender, "ch", &format!("m{m}"), b"x");
            net.run_for(rng.range(100, 5_000));
        }
        net.run_for(60 * 60_000);
        let log0 = net.log(0, "ch");
        prop_assert_eq!(log0.len(), k);
        for i in 1..n {
            prop_assert_eq!(net.log(i, "ch"), log0.clone());
        }
    }
}
