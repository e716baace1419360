//! Deduplication against the log, the incoming buffer and recently evicted ids;
//! own messages are ignored.
mod common;
use common::*;
use sds::{Config, Event, Participant, Received};

/// `b` (log of 2 entries, `evicted` remembered evicted ids) has received and
/// delivered `a`'s messages m0..m{n-1}, each naming `history` predecessors.
fn small_log_after(n: u64, history: usize, evicted: usize) -> (Participant, Vec<sds::Transmit>) {
    let mut a = Participant::new(
        "a",
        Config {
            causal_history_len: history,
            ..Config::default()
        },
    )
    .unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            max_evicted_ids: evicted,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..n {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    for t in &txs {
        assert_eq!(
            b.receive(t.bytes.clone(), None, T0).unwrap(),
            Received::Delivered
        );
    }
    (b, txs)
}

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
    let (mut b, txs) = small_log_after(4, Config::default().causal_history_len, 10_000);
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
/// delivered a second time. A message at or before the newest forgotten id
/// is now not delivered.
#[test]
fn messages_whose_id_was_forgotten_are_not_delivered_again() {
    // Each message names only its predecessor, so none waits for m0.
    let (mut b, txs) = small_log_after(5, 1, 1);
    // m0 has left the log (m3, m4) and the evicted-id memory (m2 only).
    assert_eq!(b.channel_state("c").unwrap().log, vec!["m3", "m4"]);
    assert_eq!(
        b.receive(txs[0].bytes.clone(), None, T0).unwrap(),
        Received::TooOld
    );
    assert_eq!(delivered_ids(&drain(&mut b)).len(), 5);
    assert_eq!(b.stats().too_old, 1);
}

/// A message older than a full log whose ids are all remembered is still
/// delivered (it may never have been): only forgotten ids are ambiguous.
#[test]
fn an_old_message_never_seen_is_delivered() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut c = Participant::new("c", Config::default()).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            ..Config::default()
        },
    )
    .unwrap();
    a.send("ch", "old", &b"x"[..], T0).unwrap();
    for i in 0..3 {
        c.send("ch", &format!("n{i}"), &b"x"[..], T0 + 10 + i)
            .unwrap();
    }
    for t in transmits(&mut c) {
        assert_eq!(
            b.receive(t.bytes, None, T0 + 20).unwrap(),
            Received::Delivered
        );
    }
    let old = transmits(&mut a).remove(0);
    assert_eq!(
        b.receive(old.bytes.clone(), None, T0 + 21).unwrap(),
        Received::Delivered
    );
    // Remembered as evicted at once: a second copy is a duplicate.
    assert_eq!(
        b.receive(old.bytes, None, T0 + 22).unwrap(),
        Received::Duplicate
    );
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["n0", "n1", "n2", "old"]);
}

/// A message not delivered as too old releases what waits for it, with it
/// listed as a lost dependency.
#[test]
fn a_too_old_message_releases_its_dependents_as_lost() {
    let one = Config {
        causal_history_len: 1,
        ..Config::default()
    };
    let mut a = Participant::new("a", one).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_log: 2,
            max_evicted_ids: 0,
            ..Config::default()
        },
    )
    .unwrap();
    let mut c = Participant::new("c", Config::default()).unwrap();
    a.send("ch", "old", &b"x"[..], T0).unwrap();
    for i in 1..=3 {
        c.send("ch", &format!("n{i}"), &b"x"[..], T0 + 10 + i)
            .unwrap();
    }
    // "child" is newer than the n's and names "old" in its causal history.
    a.send("ch", "child", &b"x"[..], T0 + 20).unwrap();
    let from_a = transmits(&mut a);
    for t in transmits(&mut c) {
        assert_eq!(
            b.receive(t.bytes, None, T0 + 20).unwrap(),
            Received::Delivered
        );
    }
    // n1 was evicted and, with no evicted-id memory, forgotten.
    assert!(matches!(
        b.receive(from_a[1].bytes.clone(), None, T0 + 20).unwrap(),
        Received::Buffered { missing: 1 }
    ));
    assert_eq!(
        b.receive(from_a[0].bytes.clone(), None, T0 + 21).unwrap(),
        Received::TooOld
    );
    let events = drain(&mut b);
    let lost: Vec<Vec<String>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered {
                message_id,
                lost_dependencies,
                ..
            } if message_id == "child" => Some(lost_dependencies.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(lost, vec![vec!["old".to_string()]]);
    assert_eq!(delivered_ids(&events), vec!["n1", "n2", "n3", "child"]);
    assert_eq!(b.channel_state("ch").unwrap().log, vec!["n3", "child"]);
}

/// After a restart the evicted ids come back without their log-order keys;
/// forgetting one of them must not move the forgotten watermark over ids
/// that are still remembered (that would drop never-seen messages as too
/// old).
#[test]
fn a_restart_does_not_advance_the_forgotten_watermark() {
    use sds::store::MemoryStore;
    let one = Config {
        causal_history_len: 1,
        ..Config::default()
    };
    let small = Config {
        max_log: 2,
        max_evicted_ids: 2,
        ..Config::default()
    };
    let mut a = Participant::new("a", one.clone()).unwrap();
    let mut c = Participant::new("c", one).unwrap();
    for i in 0..5 {
        a.send("ch", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let txs = transmits(&mut a);
    // "x" sorts between m1 and m2: (T0 + 1, "x").
    c.send("ch", "x", &b"x"[..], T0 + 1).unwrap();
    let x = transmits(&mut c).remove(0);

    let store = MemoryStore::new();
    let mut b = Participant::open("b", small.clone(), Box::new(store.clone())).unwrap();
    for t in &txs[..4] {
        assert_eq!(
            b.receive(t.bytes.clone(), None, T0).unwrap(),
            Received::Delivered
        );
    }
    drop(b);
    // Log m2, m3; evicted m0, m1 (restored without their keys).
    let mut b = Participant::open("b", small, Box::new(store)).unwrap();
    assert_eq!(b.channel_state("ch").unwrap().log, vec!["m2", "m3"]);
    // m4 evicts m2, and the evicted-id memory forgets m0 (a restored id).
    assert_eq!(
        b.receive(txs[4].bytes.clone(), None, T0).unwrap(),
        Received::Delivered
    );
    // Nothing at or after m0's unknown key is known to be forgotten: "x" was
    // never seen and is delivered.
    assert_eq!(b.receive(x.bytes, None, T0).unwrap(), Received::Delivered);
}
