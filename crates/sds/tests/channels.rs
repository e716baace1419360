//! Channels: created on first use, isolated, unknown channels from the wire
//! accepted or refused by configuration, and capped.
mod common;
use common::*;
use sds::{Config, Dialect, Participant, ReceiveError};

#[test]
fn channels_are_isolated() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    a.send("one", "m1", &b"x"[..], T0).unwrap();
    a.send("two", "m2", &b"y"[..], T0).unwrap();
    pass(&mut a, &mut b, T0);
    assert_eq!(b.channel_state("one").unwrap().log, vec!["m1"]);
    assert_eq!(b.channel_state("two").unwrap().log, vec!["m2"]);
    assert_eq!(b.channels().collect::<Vec<_>>(), vec!["one", "two"]);
}

#[test]
fn unknown_channels_can_be_refused() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            accept_unknown_channels: false,
            ..Config::default()
        },
    )
    .unwrap();
    a.send("x", "m1", &b"x"[..], T0).unwrap();
    let tx = a.poll_transmit().unwrap();
    assert_eq!(
        b.receive(tx.bytes.clone(), None, T0),
        Err(ReceiveError::UnknownChannel("x".into()))
    );
    b.configure_channel("x", sds::ChannelConfig::new(Dialect::Spec), T0)
        .unwrap();
    assert!(b.receive(tx.bytes, None, T0).is_ok());
}

#[test]
fn channel_count_is_capped() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            max_channels: 2,
            ..Config::default()
        },
    )
    .unwrap();
    for (i, ch) in ["c1", "c2", "c3"].iter().enumerate() {
        a.send(ch, &format!("m{i}"), &b"x"[..], T0).unwrap();
    }
    let txs = transmits(&mut a);
    assert!(b.receive(txs[0].bytes.clone(), None, T0).is_ok());
    assert!(b.receive(txs[1].bytes.clone(), None, T0).is_ok());
    assert_eq!(
        b.receive(txs[2].bytes.clone(), None, T0),
        Err(ReceiveError::TooManyChannels { max: 2 })
    );
    assert_eq!(
        b.send("c9", "z", &b"x"[..], T0),
        Err(sds::SendError::TooManyChannels { max: 2 })
    );
}

#[test]
fn nim_channel_sends_nim_dialect_and_both_dialects_are_received() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut n = Participant::new("n", Config::default()).unwrap();
    n.configure_channel("c", sds::ChannelConfig::new(Dialect::Nim), T0)
        .unwrap();
    n.send("c", "n1", &b"x"[..], T0).unwrap();
    let tx = n.poll_transmit().unwrap();
    let d = sds::wire::decode(tx.bytes.clone(), &Default::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Nim);
    assert!(a.receive(tx.bytes, None, T0).is_ok());
    a.send("c", "a1", &b"y"[..], T0 + 1).unwrap();
    let tx = a.poll_transmit().unwrap();
    assert_eq!(
        sds::wire::decode(tx.bytes.clone(), &Default::default())
            .unwrap()
            .dialect,
        Dialect::Spec
    );
    n.receive(tx.bytes, None, T0 + 2).unwrap();
    let ev = drain(&mut n);
    assert!(ev.contains(&sds::Event::Acknowledged {
        channel: "c".into(),
        message_id: "n1".into()
    }));
    assert_eq!(n.channel_state("c").unwrap().log, vec!["n1", "a1"]);
}
