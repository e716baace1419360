//! Resend: unacknowledged messages are re-broadcast after the resend period,
//! possibly-acknowledged ones after a longer one, up to a maximum; then a
//! distinct "not acknowledged" event.
mod common;
use common::*;
use sds::{Config, Event, Participant, TransmitReason};

fn drive(p: &mut Participant, until: u64) -> Vec<(u64, sds::Transmit)> {
    let mut out = Vec::new();
    while let Some(t) = p.poll_timeout() {
        if t > until {
            break;
        }
        p.handle_timeout(t);
        out.extend(transmits(p).into_iter().map(|x| (t, x)));
    }
    out
}

#[test]
fn resends_then_gives_up_with_not_acknowledged() {
    let cfg = Config {
        resend_interval_ms: 10_000,
        max_resend_attempts: 3,
        ..Config::default()
    };
    let mut a = Participant::new("a", cfg).unwrap();
    a.send("c", "m1", &b"x"[..], T0).unwrap();
    let new = a.poll_transmit().unwrap();
    assert_eq!(new.reason, TransmitReason::New);
    let sent = drive(&mut a, T0 + 120_000);
    let resends: Vec<u64> = sent
        .iter()
        .filter(|(_, t)| t.reason == TransmitReason::Resend)
        .map(|(at, t)| {
            assert_eq!(t.message_id, "m1");
            at - T0
        })
        .collect();
    assert_eq!(resends, vec![10_000, 20_000, 30_000]);
    let ev = drain(&mut a);
    let not_acked: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::NotAcknowledged { .. }))
        .collect();
    assert_eq!(
        not_acked,
        vec![&Event::NotAcknowledged {
            channel: "c".into(),
            message_id: "m1".into()
        }]
    );
    assert!(!ev.iter().any(|e| matches!(e, Event::Acknowledged { .. })));
    assert!(a.channel_state("c").unwrap().outgoing.is_empty());
    assert_eq!(a.stats().not_acknowledged, 1);
}

#[test]
fn resent_bytes_keep_id_lamport_history_and_content() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.send("c", "m0", &b"zero"[..], T0).unwrap();
    a.send("c", "m1", &b"one"[..], T0 + 1).unwrap();
    let orig = transmits(&mut a).pop().unwrap();
    let re = drive(&mut a, T0 + 31_000)
        .into_iter()
        .find(|(_, t)| t.message_id == "m1")
        .unwrap()
        .1;
    assert_eq!(re.reason, TransmitReason::Resend);
    let d0 = sds::wire::decode(orig.bytes, &Default::default())
        .unwrap()
        .message;
    let d1 = sds::wire::decode(re.bytes, &Default::default())
        .unwrap()
        .message;
    assert_eq!(
        (
            d0.message_id,
            d0.lamport_timestamp,
            d0.causal_history,
            d0.content
        ),
        (
            d1.message_id,
            d1.lamport_timestamp,
            d1.causal_history,
            d1.content
        )
    );
}

#[test]
fn possibly_acknowledged_messages_wait_longer() {
    let cfg = Config {
        resend_interval_ms: 10_000,
        possibly_acked_resend_interval_ms: 50_000,
        ..Config::default()
    };
    let mut a = Participant::new("a", cfg).unwrap();
    let mut b = Participant::new(
        "b",
        Config {
            causal_history_len: 0,
            ..Config::default()
        },
    )
    .unwrap();
    a.send("c", "m1", &b"x"[..], T0).unwrap();
    a.send("c", "m2", &b"x"[..], T0).unwrap();
    let txs = transmits(&mut a);
    b.receive(txs[0].bytes.clone(), None, T0).unwrap(); // b gets m1 only
    b.send("c", "b1", &b"y"[..], T0 + 1_000).unwrap();
    let ev = pass(&mut b, &mut a, T0 + 1_000);
    assert!(ev.iter().any(|e| matches!(e, Event::PossiblyAcknowledged { message_id, count: 1, .. } if message_id == "m1")));
    let sent = drive(&mut a, T0 + 60_000);
    let first = |id: &str| {
        sent.iter()
            .find(|(_, t)| t.message_id == id && t.reason == TransmitReason::Resend)
            .map(|(at, _)| at - T0)
    };
    assert_eq!(first("m2"), Some(10_000));
    assert_eq!(first("m1"), Some(50_000));
}
