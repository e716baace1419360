//! Acknowledgement review: causal history acknowledges; bloom filters possibly
//! acknowledge, counted per distinct remote sender, up to the threshold.
mod common;
use common::*;
use sds::{Config, Event, Participant};

fn quiet(history: usize) -> Config {
    Config {
        causal_history_len: history,
        ..Config::default()
    }
}

#[test]
fn causal_history_acknowledges() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    a.send("c", "m1", &b"x"[..], T0).unwrap();
    pass(&mut a, &mut b, T0 + 10);
    b.send("c", "b1", &b"y"[..], T0 + 20).unwrap();
    let ev = pass(&mut b, &mut a, T0 + 30);
    assert!(ev.contains(&Event::Acknowledged {
        channel: "c".into(),
        message_id: "m1".into()
    }));
    assert!(a.channel_state("c").unwrap().outgoing.is_empty());
    assert_eq!(a.stats().acknowledged, 1);
}

#[test]
fn bloom_hits_count_distinct_senders_up_to_threshold() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", quiet(0)).unwrap();
    let mut c = Participant::new("c", quiet(0)).unwrap();
    a.send("ch", "m1", &b"x"[..], T0).unwrap();
    let m1 = a.poll_transmit().unwrap();
    b.receive(m1.bytes.clone(), None, T0).unwrap();
    c.receive(m1.bytes, None, T0).unwrap();

    b.send("ch", "b1", &b"y"[..], T0 + 1).unwrap();
    let ev = pass(&mut b, &mut a, T0 + 2);
    // Reviewing acks comes before delivering the carrier message.
    assert_eq!(
        ev[0],
        Event::PossiblyAcknowledged {
            channel: "ch".into(),
            message_id: "m1".into(),
            count: 1
        }
    );
    assert!(matches!(&ev[1], Event::Delivered { message_id, .. } if message_id == "b1"));
    assert_eq!(ev.len(), 2);
    // The same sender again does not count twice.
    b.send("ch", "b2", &b"z"[..], T0 + 3).unwrap();
    let ev = pass(&mut b, &mut a, T0 + 4);
    assert!(!ev.iter().any(|e| matches!(
        e,
        Event::PossiblyAcknowledged { .. } | Event::Acknowledged { .. }
    )));
    assert_eq!(a.channel_state("ch").unwrap().outgoing, vec!["m1"]);
    // A second distinct sender reaches the threshold of 2.
    c.send("ch", "c1", &b"w"[..], T0 + 5).unwrap();
    let ev = pass(&mut c, &mut a, T0 + 6);
    assert!(ev.contains(&Event::Acknowledged {
        channel: "ch".into(),
        message_id: "m1".into()
    }));
    assert!(a.channel_state("ch").unwrap().outgoing.is_empty());
}

#[test]
fn threshold_is_configurable() {
    let mut a = Participant::new(
        "a",
        Config {
            possible_ack_threshold: 1,
            ..Config::default()
        },
    )
    .unwrap();
    let mut b = Participant::new("b", quiet(0)).unwrap();
    a.send("ch", "m1", &b"x"[..], T0).unwrap();
    pass(&mut a, &mut b, T0);
    b.send("ch", "b1", &b"y"[..], T0 + 1).unwrap();
    let ev = pass(&mut b, &mut a, T0 + 2);
    assert!(ev.contains(&Event::Acknowledged {
        channel: "ch".into(),
        message_id: "m1".into()
    }));
}

#[test]
fn unrelated_bloom_does_not_acknowledge() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", quiet(0)).unwrap();
    a.send("ch", "m1", &b"x"[..], T0).unwrap();
    let _lost = a.poll_transmit();
    for i in 0..50 {
        b.send("ch", &format!("b{i}"), &b"y"[..], T0 + i).unwrap();
    }
    let ev = pass(&mut b, &mut a, T0 + 100);
    assert!(!ev.iter().any(|e| matches!(
        e,
        Event::PossiblyAcknowledged { .. } | Event::Acknowledged { .. }
    )));
}

#[test]
fn own_messages_do_not_acknowledge_themselves() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("ch", "m1", &b"x"[..], T0).unwrap();
    a.send("ch", "m2", &b"x"[..], T0 + 1).unwrap();
    for tx in transmits(&mut a) {
        assert_eq!(
            a.receive(tx.bytes, None, T0 + 2).unwrap(),
            sds::Received::OwnMessage
        );
    }
    assert_eq!(a.channel_state("ch").unwrap().outgoing, vec!["m1", "m2"]);
}
