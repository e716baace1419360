//! The local log is ordered by (lamport timestamp, message id bytewise).
mod common;
use common::*;
use sds::{wire, Config, Participant};

fn msg(sender: &str, id: &str, lamport: u64) -> Vec<u8> {
    wire::encode(
        &wire::Message {
            sender_id: sender.into(),
            message_id: id.into(),
            channel_id: "c".into(),
            lamport_timestamp: Some(lamport),
            content: Some(bytes::Bytes::from_static(b"x")),
            ..Default::default()
        },
        wire::Dialect::Spec,
    )
    .unwrap()
}

#[test]
fn log_sorted_by_lamport_then_id_bytewise() {
    let mut b = Participant::new("b", Config::default()).unwrap();
    // Equal timestamps: bytewise id order ("B" < "Z" < "_" < "a"), not locale order.
    for (id, t) in [
        ("a", 5),
        ("_", 5),
        ("Z", 5),
        ("B", 5),
        ("late", 1),
        ("z9", 9),
    ] {
        b.receive(msg("x", id, T0 + t), None, T0).unwrap();
    }
    assert_eq!(
        b.channel_state("c").unwrap().log,
        vec!["late", "B", "Z", "_", "a", "z9"]
    );
}

#[test]
fn late_message_is_inserted_in_order_and_delivered() {
    let mut b = Participant::new("b", Config::default()).unwrap();
    b.receive(msg("x", "m2", T0 + 2), None, T0).unwrap();
    b.receive(msg("y", "m1", T0 + 1), None, T0).unwrap();
    assert_eq!(b.channel_state("c").unwrap().log, vec!["m1", "m2"]);
    assert_eq!(delivered_ids(&drain(&mut b)), vec!["m2", "m1"]);
}

#[test]
fn causal_history_is_the_newest_entries_oldest_first() {
    let cfg = Config {
        causal_history_len: 3,
        ..Config::default()
    };
    let mut a = Participant::new("a", cfg).unwrap();
    for i in 0..5 {
        a.send("c", &format!("m{i}"), &b"x"[..], T0 + i).unwrap();
    }
    let last = transmits(&mut a).pop().unwrap();
    let d = wire::decode(last.bytes, &Default::default())
        .unwrap()
        .message;
    let ids: Vec<&str> = d
        .causal_history
        .iter()
        .map(|e| e.message_id.as_str())
        .collect();
    assert_eq!(ids, vec!["m1", "m2", "m3"]);
    assert!(d
        .causal_history
        .iter()
        .all(|e| e.sender_id.as_deref() == Some("a")));
}
