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

/// Found by the 100-participant simulation: once an id has left both the
/// log and the evicted-id memory, a late copy (a repair rebroadcast) was
/// delivered a second time. A message older than everything in a full log is
/// now not delivered, and what waits for it is released.
#[test]
fn messages_older_than_a_full_log_are_not_delivered_again() {
    // Each message names only its predecessor, so none waits for m0.
    let one = Config {
        causal_history_len: 1,
        ..Config::default()
    };
    let mut a = Participant::new("a", one).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            max_evicted_ids: 1,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..5 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    for t in &txs {
        assert_eq!(
            b.receive(t.bytes.clone(), None, T0).unwrap(),
            Received::Delivered
        );
    }
    // m0 has left the log (m3, m4) and the evicted-id memory (m2 only).
    assert_eq!(b.channel_state("c").unwrap().log, vec!["m3", "m4"]);
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0).unwrap(),
        Received::TooOld
    );
    assert_eq!(delivered_ids(&drain(&mut b)).len(), 5);
    assert_eq!(b.stats().too_old, 1);
}

/// A message older than a full log releases what waits for it.
#[test]
fn a_too_old_message_releases_its_dependents() {
    let one = Config {
        causal_history_len: 1,
        ..Config::default()
    };
    let mut a = Participant::new("a", one).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            ..Config::default()
        },
    )
    .unwrap();
    let mut c = Participant::new("c", Config::default()).unwrap();
    a.send("ch", "old", &b"x"[..], T0).unwrap();
    c.send("ch", "n1", &b"x"[..], T0 + 10).unwrap();
    c.send("ch", "n2", &b"x"[..], T0 + 11).unwrap();
    // "child" is newer than n1 and n2 and names "old" in its causal history.
    a.send("ch", "child", &b"x"[..], T0 + 20).unwrap();
    let from_a = transmits(&mut a);
    for t in transmits(&mut c) {
        assert_eq!(
            b.receive(t.bytes, None, T0 + 20).unwrap(),
            Received::Delivered
        );
    }
    assert!(matches!(
        b.receive(from_a[1].bytes.clone(), None, T0 + 20).unwrap(),
        Received::Buffered { missing: 1 }
    ));
    // "old" sorts before the full log's head (n1): not delivered, and
    // "child" is released.
    assert_eq!(
        b.receive(from_a[0].bytes.clone(), None, T0 + 21).unwrap(),
        Received::TooOld
    );
    let delivered = delivered_ids(&drain(&mut b));
    assert_eq!(delivered, vec!["n1", "n2", "child"]);
    assert_eq!(b.channel_state("ch").unwrap().log, vec!["n2", "child"]);
}
