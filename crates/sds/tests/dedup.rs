//! Deduplication against the log, the incoming buffer and recently evicted ids;
//! own messages are ignored.
mod common;
use common::*;
use sds::{Config, Participant, Received};

#[test]
fn duplicates_are_delivered_once() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    a.send("c", "m0", &b"x"[..], T0).unwrap();
    a.send("c", "m1", &b"y"[..], T0 + 1).unwrap();
    let txs = transmits(&mut a);
    // Buffered duplicate.
    assert!(matches!(
        b.receive(txs[1].bytes.clone(), None, T0).unwrap(),
        Received::Buffered { .. }
    ));
    assert_eq!(
        b.receive(txs[1].bytes.clone(), None, T0).unwrap(),
        Received::Duplicate
    );
    // Delivered duplicates.
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0).unwrap(),
        Received::Delivered
    );
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0).unwrap(),
        Received::Duplicate
    );
    assert_eq!(
        b.receive(txs[1].bytes.clone(), None, T0).unwrap(),
        Received::Duplicate
    );
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["m0", "m1"]);
    assert_eq!(b.stats().duplicates, 3);
}

#[test]
fn evicted_ids_are_still_duplicates() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..4 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    for t in &txs {
        assert_eq!(
            b.receive(t.bytes.clone(), None, T0).unwrap(),
            Received::Delivered
        );
    }
    assert_eq!(b.channel_state("c").unwrap().log, vec!["m2", "m3"]);
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0).unwrap(),
        Received::Duplicate
    );
    assert_eq!(delivered_ids(&drain(&mut b)).len(), 4);
}

#[test]
fn own_sender_id_is_ignored() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut a2 = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m0", &b"x"[..], T0).unwrap();
    assert_eq!(
        a2.receive(a.poll_transmit().unwrap().bytes, None, T0)
            .unwrap(),
        Received::OwnMessage
    );
    assert!(a2.channel_state("c").is_none());
}

#[test]
fn send_refuses_reused_ids() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m0", &b"x"[..], T0).unwrap();
    assert_eq!(
        a.send("c", "m0", &b"y"[..], T0),
        Err(sds::SendError::DuplicateMessageId("m0".into()))
    );
    assert_eq!(
        a.send("c", "m1", &b""[..], T0),
        Err(sds::SendError::EmptyContent)
    );
    assert_eq!(
        a.send("c", "", &b"x"[..], T0),
        Err(sds::SendError::EmptyMessageId)
    );
}
