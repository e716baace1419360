//! Incoming buffer: causal-order release through the reverse index, marking
//! dependencies met, and the irretrievably-lost timeout.
mod common;
use common::*;
use sds::{Config, Event, Participant, Received};

/// a sends a chain m0 <- m1 <- ... ; returns the transmissions.
fn chain(n: usize) -> Vec<sds::Transmit> {
    let mut a = Participant::new(
        "a",
        Config {
            causal_history_len: 1,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..n {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i as u64)
            .unwrap();
    }
    transmits(&mut a)
}

#[test]
fn dependents_are_never_delivered_before_their_dependencies() {
    let txs = chain(4);
    let mut b = Participant::new("b", Config::default()).unwrap();
    // Receive m3, m2, m1 (each waits), then m0 releases all in causal order.
    for i in [3, 2, 1] {
        let r = b.receive(txs[i].bytes.clone(), None, T0 + 10).unwrap();
        assert!(matches!(r, Received::Buffered { .. }), "m{i}: {r:?}");
    }
    assert!(delivered_ids(&drain(&mut b)).is_empty());
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0 + 20).unwrap(),
        Received::Delivered
    );
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["m0", "m1", "m2", "m3"]);
    let st = b.channel_state("c").unwrap();
    assert!(st.incoming.is_empty());
    assert_eq!(st.log, vec!["m0", "m1", "m2", "m3"]);
}

#[test]
fn a_dependency_waiting_in_the_buffer_is_not_reported_missing() {
    let txs = chain(3);
    let mut b = Participant::new("b", Config::default()).unwrap();
    assert_eq!(
        b.receive(txs[1].bytes.clone(), None, T0).unwrap(),
        Received::Buffered { missing: 1 }
    );
    // m2 depends on m1, which is buffered (not missing).
    assert_eq!(
        b.receive(txs[2].bytes.clone(), None, T0).unwrap(),
        Received::Buffered { missing: 0 }
    );
    let missing: Vec<Vec<String>> = drain(&mut b)
        .into_iter()
        .filter_map(|e| match e {
            Event::MissingDependencies { missing, .. } => {
                Some(missing.into_iter().map(|m| m.message_id).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(missing, vec![vec!["m0".to_string()]]);
    // SDS-R requests only the truly missing one (nim-sds also requests m1).
    assert_eq!(b.channel_state("c").unwrap().repair_requests, vec!["m0"]);
}

#[test]
fn missing_event_carries_hints_and_sender() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    let mut c = Participant::new("c", Config::default()).unwrap();
    a.send("ch", "m0", &b"x"[..], T0).unwrap();
    let m0 = a.poll_transmit().unwrap();
    // c got m0 with a transport hint; b did not.
    c.receive(m0.bytes, Some(bytes::Bytes::from_static(b"\x11\x22")), T0)
        .unwrap();
    c.send("ch", "m1", &b"y"[..], T0 + 1).unwrap();
    let r = b
        .receive(c.poll_transmit().unwrap().bytes, None, T0 + 2)
        .unwrap();
    assert_eq!(r, Received::Buffered { missing: 1 });
    let (id, missing) = drain(&mut b)
        .into_iter()
        .find_map(|e| match e {
            Event::MissingDependencies {
                missing,
                message_id,
                ..
            } => Some((message_id, missing)),
            _ => None,
        })
        .unwrap();
    assert_eq!(id, "m1");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].message_id, "m0");
    assert_eq!(missing[0].retrieval_hint.as_deref(), Some(&b"\x11\x22"[..]));
    assert_eq!(missing[0].sender_id.as_deref(), Some("a"));
}

#[test]
fn mark_dependencies_met_releases_in_causal_order() {
    let txs = chain(3);
    let mut b = Participant::new("b", Config::default()).unwrap();
    b.receive(txs[2].bytes.clone(), None, T0).unwrap();
    b.receive(txs[1].bytes.clone(), None, T0).unwrap();
    drain(&mut b);
    b.mark_dependencies_met("c", ["m0"], T0 + 1).unwrap();
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["m1", "m2"]);
    assert!(
        b.channel_state("c").unwrap().repair_requests.is_empty(),
        "marking met cancels repair"
    );
    // A later message naming m0 is not held back.
    let mut a2 = chain(5);
    assert_eq!(
        b.receive(a2.remove(3).bytes, None, T0 + 2).unwrap(),
        Received::Delivered
    );
    assert!(b.mark_dependencies_met("nope", ["x"], T0).is_err());
}

#[test]
fn lost_dependencies_are_reported_then_dependents_delivered_in_order() {
    let txs = chain(4);
    let cfg = Config {
        buffer_timeout_ms: 60_000,
        ..Config::default()
    };
    let mut b = Participant::new("b", cfg).unwrap();
    // m0 never arrives; m2 arrives before m1.
    b.receive(txs[2].bytes.clone(), None, T0).unwrap();
    b.receive(txs[3].bytes.clone(), None, T0 + 1).unwrap();
    b.receive(txs[1].bytes.clone(), None, T0 + 2).unwrap();
    drain(&mut b);
    let mut t = b.poll_timeout().unwrap();
    while t < T0 + 60_000 {
        b.handle_timeout(t);
        assert!(
            delivered_ids(&drain(&mut b)).is_empty(),
            "nothing before the timeout"
        );
        transmits(&mut b);
        t = b.poll_timeout().unwrap();
    }
    // The first timeout is m2's (received first): its root missing dep is m0.
    b.handle_timeout(T0 + 60_000);
    let ev = drain(&mut b);
    let lost: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::IrretrievablyLost { .. }))
        .collect();
    assert_eq!(lost.len(), 1);
    match lost[0] {
        Event::IrretrievablyLost { missing, .. } => {
            assert_eq!(
                missing
                    .iter()
                    .map(|e| e.message_id.as_str())
                    .collect::<Vec<_>>(),
                vec!["m0"]
            )
        }
        _ => unreachable!(),
    }
    let delivered: Vec<(String, Vec<String>)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Delivered {
                message_id,
                lost_dependencies,
                ..
            } => Some((message_id.clone(), lost_dependencies.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        vec![
            ("m1".into(), vec!["m0".into()]),
            ("m2".into(), vec![]),
            ("m3".into(), vec![])
        ]
    );
    assert!(b.channel_state("c").unwrap().incoming.is_empty());
    assert_eq!(b.stats().lost, 1);
}

/// A message naming itself in its causal history is not held back by it, and
/// one naming a missing message twice is released by that message's arrival
/// (the entries are kept, but waited for once).
#[test]
fn self_references_and_repeated_entries_are_waited_for_once() {
    let entry = |id: &str| sds::wire::HistoryEntry {
        message_id: id.into(),
        retrieval_hint: None,
        sender_id: Some("x".into()),
    };
    let msg = |id: &str, history: Vec<sds::wire::HistoryEntry>| {
        sds::wire::encode(
            &sds::wire::Message {
                sender_id: "x".into(),
                message_id: id.into(),
                channel_id: "c".into(),
                lamport_timestamp: Some(T0),
                causal_history: history,
                content: Some(bytes::Bytes::from_static(b"x")),
                ..Default::default()
            },
            sds::Dialect::Spec,
        )
        .unwrap()
    };
    let mut b = Participant::new("b", Config::default()).unwrap();
    let r = b
        .receive(msg("self", vec![entry("self")]), None, T0)
        .unwrap();
    assert_eq!(r, Received::Delivered);
    let r = b
        .receive(msg("twice", vec![entry("m0"), entry("m0")]), None, T0)
        .unwrap();
    assert_eq!(r, Received::Buffered { missing: 1 });
    let r = b.receive(msg("m0", vec![]), None, T0 + 1).unwrap();
    assert_eq!(r, Received::Delivered);
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["self", "m0", "twice"]);
}

/// A delay configured as `u64::MAX` means "never": no deadline saturates
/// into the past. (`now + delay` wrapped around in release builds, so the
/// buffered messages below expired at once, and panicked in debug builds.)
#[test]
fn delays_of_u64_max_never_fire() {
    let never = Config {
        causal_history_len: 1,
        buffer_timeout_ms: u64::MAX,
        resend_interval_ms: u64::MAX,
        possibly_acked_resend_interval_ms: u64::MAX,
        sync_interval_ms: u64::MAX,
        sync_backoff_ms: u64::MAX,
        repair: sds::RepairConfig {
            t_min_ms: u64::MAX,
            t_max_ms: u64::MAX,
            retry_interval_ms: u64::MAX,
            min_request_gap_ms: u64::MAX,
            recent_copy_window_ms: u64::MAX,
            ..sds::RepairConfig::default()
        },
        ..Config::default()
    };
    let txs = chain(3);
    let mut b = Participant::new("b", never).unwrap();
    // m0 lost: m1 and m2 wait for it.
    for i in [2, 1] {
        let r = b.receive(txs[i].bytes.clone(), None, T0).unwrap();
        assert!(matches!(r, Received::Buffered { .. }), "m{i}: {r:?}");
    }
    b.send("c", "own", &b"y"[..], T0).unwrap();
    drain(&mut b);
    let sent = transmits(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].reason, sds::TransmitReason::New);
    // Centuries later, nothing has fired.
    let later = T0 + 10_000 * 365 * 86_400_000;
    assert!(
        b.poll_timeout().is_none_or(|t| t > later),
        "{:?}",
        b.poll_timeout()
    );
    b.handle_timeout(later);
    let events = drain(&mut b);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::IrretrievablyLost { .. })),
        "{events:?}"
    );
    assert!(transmits(&mut b).is_empty());
    let st = b.channel_state("c").unwrap();
    assert_eq!(st.incoming.len(), 2);
    // The dependency still releases them.
    b.receive(txs[0].bytes.clone(), None, later).unwrap();
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["m0", "m1", "m2"]);
}
