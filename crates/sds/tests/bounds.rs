//! Bounded state: every buffer a peer can grow has a cap and an eviction rule.
mod common;
use common::*;
use sds::{Config, Event, Participant};

#[test]
fn log_is_capped_oldest_first() {
    let mut a = Participant::new(
        "a",
        Config {
            max_log: 3,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..10 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    assert_eq!(a.channel_state("c").unwrap().log, vec!["m7", "m8", "m9"]);
}

#[test]
fn full_outgoing_buffer_gives_up_the_oldest() {
    let mut a = Participant::new(
        "a",
        Config {
            max_outgoing: 2,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..3 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    assert_eq!(a.channel_state("c").unwrap().outgoing, vec!["m1", "m2"]);
    assert!(drain(&mut a).contains(&Event::NotAcknowledged {
        channel: "c".into(),
        message_id: "m0".into()
    }));
}

#[test]
fn full_incoming_buffer_drops_the_earliest_received() {
    let mut a = Participant::new(
        "a",
        Config {
            causal_history_len: 1,
            ..Config::default()
        },
    )
    .unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_incoming: 2,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..4 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    for (k, i) in [1usize, 2, 3].iter().enumerate() {
        b.receive(txs[*i].bytes.clone(), None, T0 + k as u64)
            .unwrap();
    }
    let mut incoming = b.channel_state("c").unwrap().incoming;
    incoming.sort();
    assert_eq!(incoming, vec!["m2", "m3"]);
    assert!(drain(&mut b).contains(&Event::BufferOverflow {
        channel: "c".into(),
        message_id: "m1".into()
    }));
    assert_eq!(b.stats().buffer_overflows, 1);
}

#[test]
fn garbage_is_rejected_without_touching_state() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    a.send("c", "m0", &b"x"[..], T0).unwrap();
    pass(&mut a, &mut b, T0);
    let before = b.channel_state("c").unwrap();
    for junk in [&b"\xff\xff\xff"[..], b"\x0a\x05ab", b"", b"\x52\x01"] {
        assert!(
            b.receive(bytes::Bytes::copy_from_slice(junk), None, T0)
                .is_err()
                || junk.is_empty()
        );
    }
    assert_eq!(b.channel_state("c").unwrap(), before);
}

#[test]
fn hostile_history_length_is_refused() {
    let mut b = Participant::new("b", Config::default()).unwrap();
    let m = sds::wire::Message {
        sender_id: "x".into(),
        message_id: "m".into(),
        channel_id: "c".into(),
        lamport_timestamp: Some(T0),
        causal_history: (0..5000)
            .map(|i| sds::wire::HistoryEntry {
                message_id: format!("h{i}"),
                ..Default::default()
            })
            .collect(),
        content: Some(bytes::Bytes::from_static(b"x")),
        ..Default::default()
    };
    let bytes = sds::wire::encode(&m, sds::Dialect::Spec).unwrap();
    assert!(matches!(
        b.receive(bytes, None, T0),
        Err(sds::ReceiveError::Decode(_))
    ));
    assert!(b.channel_state("c").is_none());
}

#[test]
fn repair_buffers_are_capped() {
    let mut cfg = Config {
        causal_history_len: 50,
        ..Config::default()
    };
    cfg.repair.max_outgoing_entries = 5;
    let mut a = Participant::new(
        "a",
        Config {
            causal_history_len: 50,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..40 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let last = transmits(&mut a).pop().unwrap();
    let mut b = Participant::new("b", cfg).unwrap();
    b.receive(last.bytes, None, T0 + 100).unwrap();
    assert_eq!(b.channel_state("c").unwrap().repair_requests.len(), 5);
}

/// The table of sender ids is capped (4 096 entries); senders beyond it are
/// still named correctly, in events and in what the log keeps.
#[test]
fn senders_beyond_the_sender_table_keep_their_ids() {
    use sds::wire::{encode, HistoryEntry, Message};
    let n = 4_200u64;
    let mut r = Participant::new(
        "r",
        Config {
            max_log: n as usize,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..n {
        let history = (i > 0)
            .then(|| HistoryEntry {
                message_id: format!("m{}", i - 1),
                retrieval_hint: None,
                sender_id: Some(format!("sender-{}", i - 1)),
            })
            .into_iter()
            .collect();
        let msg = Message {
            sender_id: format!("sender-{i}"),
            message_id: format!("m{i}"),
            channel_id: "c".into(),
            lamport_timestamp: Some(T0 + i),
            causal_history: history,
            bloom_filter: None,
            repair_request: vec![],
            content: Some(bytes::Bytes::from_static(b"x")),
        };
        r.receive(encode(&msg, sds::Dialect::Spec).unwrap(), None, T0 + i)
            .unwrap();
    }
    let senders: Vec<String> = drain(&mut r)
        .into_iter()
        .filter_map(|e| match e {
            Event::Delivered { sender_id, .. } => Some(sender_id),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("sender-{i}")).collect();
    assert_eq!(senders, expected);
    let kept: Vec<String> = r
        .delivered_after("c", None)
        .into_iter()
        .map(|d| d.sender_id)
        .collect();
    assert_eq!(kept, expected);
}
