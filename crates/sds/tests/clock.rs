//! Lamport clock: initialised to now (ms); send: max(now, t + 1); delivery raises it.
mod common;
use common::*;
use sds::{wire, Config, Participant};

fn lamport_of(tx: &sds::Transmit) -> u64 {
    wire::decode(tx.bytes.clone(), &Default::default())
        .unwrap()
        .message
        .lamport_timestamp
        .unwrap()
}

#[test]
fn initialised_to_now_and_sent_as_max_of_now_and_t_plus_1() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m1", &b"x"[..], T0).unwrap();
    // The channel's clock starts at now (T0): a send in the same millisecond
    // is stamped t + 1, the next one t + 2.
    assert_eq!(lamport_of(&a.poll_transmit().unwrap()), T0 + 1);
    a.send("c", "m2", &b"x"[..], T0).unwrap();
    assert_eq!(lamport_of(&a.poll_transmit().unwrap()), T0 + 2);
    // Later: now wins.
    a.send("c", "m3", &b"x"[..], T0 + 5_000).unwrap();
    assert_eq!(lamport_of(&a.poll_transmit().unwrap()), T0 + 5_000);
    assert_eq!(a.channel_state("c").unwrap().lamport_timestamp, T0 + 5_000);
}

#[test]
fn clock_going_backwards_still_increments() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m1", &b"x"[..], T0 + 10_000).unwrap();
    a.send("c", "m2", &b"x"[..], T0).unwrap();
    let t: Vec<u64> = transmits(&mut a).iter().map(lamport_of).collect();
    assert_eq!(t, vec![T0 + 10_001, T0 + 10_002]);
}

#[test]
fn delivery_raises_clock_to_message_timestamp() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    // a's clock is far ahead (skewed).
    a.send("c", "m1", &b"x"[..], T0 + 3_600_000).unwrap();
    pass(&mut a, &mut b, T0);
    assert_eq!(
        b.channel_state("c").unwrap().lamport_timestamp,
        T0 + 3_600_001
    );
    b.send("c", "m2", &b"y"[..], T0 + 1).unwrap();
    assert_eq!(lamport_of(&b.poll_transmit().unwrap()), T0 + 3_600_002);
}

#[test]
fn buffered_message_does_not_raise_clock_until_delivered() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    a.send("c", "m1", &b"x"[..], T0 + 1_000_000).unwrap();
    let m1 = a.poll_transmit().unwrap();
    a.send("c", "m2", &b"x"[..], T0 + 2_000_000).unwrap();
    let m2 = a.poll_transmit().unwrap();
    b.receive(m2.bytes, None, T0).unwrap();
    assert!(b.channel_state("c").unwrap().lamport_timestamp < T0 + 1_000_000);
    b.receive(m1.bytes, None, T0).unwrap();
    assert_eq!(
        b.channel_state("c").unwrap().lamport_timestamp,
        T0 + 2_000_000
    );
}
