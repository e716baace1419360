//! `Participant::receive_decoded` and `receive_prepared` process a message
//! decoded (and prepared) once by the caller exactly as `receive` processes
//! its bytes.
mod common;
use bytes::Bytes;
use common::*;
use sds::wire::{decode, decode_ref, Limits};
use sds::{Config, Event, Participant, Prepared, ReceiveError, Received, Transmit};

fn events(p: &mut Participant) -> Vec<Event> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn outputs(p: &mut Participant) -> (Vec<Event>, Vec<Transmit>) {
    (events(p), transmits(p))
}

#[test]
fn decoded_and_encoded_receipt_give_the_same_outputs() {
    let cfg = Config {
        seed: 7,
        ..Config::default()
    };
    let mut a = Participant::new("a", cfg.clone()).unwrap();
    let mut txs = Vec::new();
    for i in 0..12u64 {
        a.send("c", &format!("m{i}"), &b"hello"[..], T0 + i)
            .unwrap();
        txs.extend(transmits(&mut a));
    }
    a.send_ephemeral("c", &b"now"[..], T0 + 20).unwrap();
    txs.extend(transmits(&mut a));
    // Resends, then a sync message once the channel is quiet.
    while let Some(t) = a.poll_timeout() {
        if t > T0 + 3_600_000 {
            break;
        }
        a.handle_timeout(t);
        let out = transmits(&mut a);
        let sync = out.iter().any(|t| t.reason == sds::TransmitReason::Sync);
        txs.extend(out);
        if sync {
            break;
        }
    }
    assert!(
        txs.iter().any(|t| t.reason == sds::TransmitReason::Sync),
        "a sent no sync message"
    );
    // Out of order, with duplicates: buffering, cascades, duplicates.
    let mut order: Vec<usize> = (0..txs.len()).rev().collect();
    order.extend([0, 3, 5]);

    let mut by_bytes = Participant::new("b", cfg.clone()).unwrap();
    let mut by_decoded = Participant::new("b", cfg.clone()).unwrap();
    let mut by_prepared = Participant::new("b", cfg.clone()).unwrap();
    let mut delivered = 0;
    let mut seen: Vec<Received> = Vec::new();
    for (step, &i) in order.iter().enumerate() {
        let now = T0 + 100 + step as u64;
        let r1 = by_bytes.receive(txs[i].bytes.clone(), None, now);
        let d = decode(txs[i].bytes.clone(), &by_decoded.config().limits).unwrap();
        let r2 = by_decoded.receive_decoded(&d.message.borrowed(), d.dialect, None, now);
        let p = Prepared::new(d.message.borrowed(), d.dialect);
        let r3 = by_prepared.receive_prepared(&p, None, now);
        assert_eq!(r1, r2, "step {step}");
        assert_eq!(r1, r3, "step {step}");
        seen.push(r1.unwrap());
        let (o1, o2) = (outputs(&mut by_bytes), outputs(&mut by_decoded));
        assert_eq!(o1, outputs(&mut by_prepared), "step {step}");
        delivered +=
            o1.0.iter()
                .filter(|e| matches!(e, Event::Delivered { .. }))
                .count();
        assert_eq!(o1, o2, "step {step}");
    }
    assert_eq!(delivered, 12);
    // Every path of a receive was taken.
    let took = |f: fn(&Received) -> bool| seen.iter().any(f);
    assert!(took(|r| matches!(r, Received::Buffered { .. })), "{seen:?}");
    assert!(took(|r| matches!(r, Received::Delivered)), "{seen:?}");
    assert!(took(|r| matches!(r, Received::Duplicate)), "{seen:?}");
    assert!(took(|r| matches!(r, Received::Sync)), "{seen:?}");
    assert!(took(|r| matches!(r, Received::Ephemeral)), "{seen:?}");
    // Own messages are ignored on both paths.
    let own = decode(txs[0].bytes.clone(), &Limits::default()).unwrap();
    assert_eq!(
        a.receive_decoded(&own.message.borrowed(), own.dialect, None, T0 + 200),
        Ok(Received::OwnMessage)
    );
    assert_eq!(
        a.receive(txs[0].bytes.clone(), None, T0 + 200),
        Ok(Received::OwnMessage)
    );
    assert_eq!(
        a.receive_prepared(
            &Prepared::new(own.message.borrowed(), own.dialect),
            None,
            T0 + 200
        ),
        Ok(Received::OwnMessage)
    );
}

#[test]
fn decoded_receipt_reports_the_same_errors() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m0", &b"x"[..], T0).unwrap();
    let tx = transmits(&mut a).remove(0);
    let mut msg = decode(tx.bytes.clone(), &Limits::default()).unwrap();
    msg.message.message_id.clear();
    let bytes = Bytes::from(sds::wire::encode(&msg.message, msg.dialect).unwrap());
    let mut b = Participant::new("b", Config::default()).unwrap();
    let by_bytes = b.receive(bytes.clone(), None, T0).unwrap_err();
    let d = decode_ref(&bytes, &Limits::default()).unwrap();
    let by_decoded = b
        .receive_decoded(&d.message, d.dialect, None, T0)
        .unwrap_err();
    let by_prepared = b
        .receive_prepared(&Prepared::new(d.message.clone(), d.dialect), None, T0)
        .unwrap_err();
    assert!(matches!(by_bytes, ReceiveError::MissingMessageId));
    assert!(matches!(by_decoded, ReceiveError::MissingMessageId));
    assert!(matches!(by_prepared, ReceiveError::MissingMessageId));
}

/// Where the delivered content of `id` lives (the event's bytes).
fn delivered_content(events: &[Event], id: &str) -> Bytes {
    events
        .iter()
        .find_map(|e| match e {
            Event::Delivered {
                message_id,
                content,
                ..
            } if message_id == id => Some(content.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} not delivered: {events:?}"))
}

fn inside(part: &Bytes, whole: &Bytes) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// `receive` keeps a copy of the content (never a slice of the wire bytes,
/// which would keep the bloom filter alive); `receive_decoded` keeps the
/// `Bytes` it is given, delivered at once or after buffering, so that
/// participants given the same one share it.
#[test]
fn receive_copies_the_content_and_receive_decoded_shares_it() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m0", &b"first"[..], T0).unwrap();
    a.send("c", "m1", &b"second"[..], T0 + 1).unwrap();
    let txs = transmits(&mut a);
    assert_eq!(txs.len(), 2);

    let mut b = Participant::new("b", Config::default()).unwrap();
    for t in txs.iter().rev() {
        b.receive(t.bytes.clone(), None, T0 + 10).unwrap();
    }
    let ev = events(&mut b);
    for (t, id, text) in [(&txs[0], "m0", "first"), (&txs[1], "m1", "second")] {
        let c = delivered_content(&ev, id);
        assert_eq!(&c[..], text.as_bytes());
        assert!(
            !inside(&c, &t.bytes),
            "{id}: content is a slice of the wire bytes"
        );
    }

    let mut c = Participant::new("c", Config::default()).unwrap();
    let mut given = Vec::new();
    for t in txs.iter().rev() {
        let mut d = decode(t.bytes.clone(), &c.config().limits).unwrap();
        let own = Bytes::copy_from_slice(d.message.content.as_deref().unwrap());
        d.message.content = Some(own.clone());
        given.push(own);
        c.receive_decoded(&d.message.borrowed(), d.dialect, None, T0 + 10)
            .unwrap();
    }
    let ev = events(&mut c);
    // m1 was given first (and buffered), m0 second.
    for (own, id) in given.iter().zip(["m1", "m0"]) {
        let got = delivered_content(&ev, id);
        assert_eq!(got.as_ptr(), own.as_ptr(), "{id}: content was copied");
        assert_eq!(got, *own);
    }
}

/// Several senders whose causal histories name each other: the sender ids
/// of history entries (looked up by hash on the prepared path, by text
/// otherwise) end up in the repair requests, so the three paths must give
/// the same requests as well as the same events.
#[test]
fn histories_from_several_senders_give_the_same_repairs_on_every_path() {
    let names = ["s0", "s1", "s2"];
    let mut senders: Vec<Participant> = names
        .iter()
        .map(|n| Participant::new(*n, Config::default()).unwrap())
        .collect();
    let mut txs: Vec<Transmit> = Vec::new();
    for round in 0..6u64 {
        for i in 0..senders.len() {
            let now = T0 + round * 10 + i as u64;
            senders[i]
                .send("c", &format!("{}-{round}", names[i]), &b"x"[..], now)
                .unwrap();
            let out = transmits(&mut senders[i]);
            // Everyone else gets it at once, so the next histories name
            // messages of every sender.
            for t in &out {
                for (j, other) in senders.iter_mut().enumerate() {
                    if j != i {
                        other.receive(t.bytes.clone(), None, now).unwrap();
                    }
                }
            }
            txs.extend(out);
        }
    }
    for s in &mut senders {
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
    }
    // The first message never arrives: whatever names it waits, and asks for it.
    let order: Vec<usize> = (1..txs.len()).rev().collect();
    let mut paths: Vec<Participant> = (0..3)
        .map(|_| Participant::new("r", Config::default()).unwrap())
        .collect();
    let mut asked = 0;
    for (step, &i) in order.iter().enumerate() {
        let now = T0 + 1_000 + step as u64;
        let d = decode(txs[i].bytes.clone(), &Limits::default()).unwrap();
        let r = [
            paths[0].receive(txs[i].bytes.clone(), None, now),
            paths[1].receive_decoded(&d.message.borrowed(), d.dialect, None, now),
            paths[2].receive_prepared(&Prepared::new(d.message.borrowed(), d.dialect), None, now),
        ];
        assert_eq!(r[0], r[1], "step {step}");
        assert_eq!(r[0], r[2], "step {step}");
        let o: Vec<_> = paths.iter_mut().map(outputs).collect();
        assert_eq!(o[0], o[1], "step {step}");
        assert_eq!(o[0], o[2], "step {step}");
    }
    // Past T_max: every path asks for the lost message, naming its sender.
    let later = T0 + 200_000;
    for p in &mut paths {
        p.handle_timeout(later);
    }
    let o: Vec<_> = paths.iter_mut().map(outputs).collect();
    assert_eq!(o[0], o[1]);
    assert_eq!(o[0], o[2]);
    for t in &o[0].1 {
        let m = decode(t.bytes.clone(), &Limits::default()).unwrap().message;
        for e in &m.repair_request {
            assert_eq!(e.sender_id.as_deref(), Some("s0"), "{e:?}");
            asked += 1;
        }
    }
    assert!(asked > 0, "no repair request was sent: {:?}", o[0].1);
}
