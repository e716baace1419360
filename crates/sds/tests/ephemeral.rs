//! Ephemeral messages: no lamport, history or bloom; delivered at once through
//! their own event; never buffered, logged or resent.
mod common;
use common::*;
use sds::{wire, Config, Dialect, Event, Participant, Received, TransmitReason};

#[test]
fn ephemeral_round_trip() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    let mut b = Participant::new("b", Config::default()).unwrap();
    let id = a.send_ephemeral("c", &b"typing..."[..], T0).unwrap();
    // Same id rule as @waku/sds: hex sha256 of the payload.
    assert_eq!(
        id,
        "6860a5531303f8c7a25f63e734c1ef98d092edff7d2d4195093ce2c5f99bc9f0"
    );
    let tx = a.poll_transmit().unwrap();
    assert_eq!(tx.reason, TransmitReason::Ephemeral);
    let d = wire::decode(tx.bytes.clone(), &Default::default())
        .unwrap()
        .message;
    assert_eq!(d.kind(), wire::MessageKind::Ephemeral);
    assert!(
        d.lamport_timestamp.is_none() && d.causal_history.is_empty() && d.bloom_filter.is_none()
    );
    assert_eq!(b.receive(tx.bytes, None, T0).unwrap(), Received::Ephemeral);
    assert_eq!(
        drain(&mut b),
        vec![Event::Ephemeral {
            channel: "c".into(),
            message_id: id,
            sender_id: "a".into(),
            content: bytes::Bytes::from_static(b"typing..."),
        }]
    );
    let st = b.channel_state("c").unwrap();
    assert!(st.log.is_empty() && st.incoming.is_empty());
    let st = a.channel_state("c").unwrap();
    assert!(st.log.is_empty() && st.outgoing.is_empty());
    // Nothing to resend.
    assert!(a.poll_timeout().is_none_or(|t| {
        a.handle_timeout(t);
        transmits(&mut a).is_empty()
    }));
}

#[test]
fn ephemeral_cannot_be_sent_in_the_nim_dialect() {
    let mut a = Participant::new("a", Config::default()).unwrap();
    a.configure_channel("c", sds::ChannelConfig::new(Dialect::Nim), T0)
        .unwrap();
    assert!(matches!(
        a.send_ephemeral("c", &b"x"[..], T0),
        Err(sds::SendError::Encode(_))
    ));
    assert!(matches!(
        a.send_ephemeral("c", &b""[..], T0),
        Err(sds::SendError::EmptyContent)
    ));
}
