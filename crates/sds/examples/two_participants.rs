//! Two participants, one lost message, delivery after resend.
//!
//! Run with `cargo run -p sds --example two_participants`.
//!
//! The core is sans-IO: this example plays the network and the clock. After
//! every input it drains the outputs (`poll_transmit`, `poll_event`) and
//! fires timers at `poll_timeout`.

use sds::{Config, Event, Participant, TransmitReason};

fn main() {
    let t0: u64 = 1_700_000_000_000; // Unix ms; the caller owns the clock
    let mut alice = Participant::new("alice", Config::default()).expect("valid config");
    let mut bob = Participant::new("bob", Config::default()).expect("valid config");

    // Alice sends m1; the network loses it.
    alice
        .send("chat", "m1", &b"hello bob"[..], t0)
        .expect("send");
    let lost = alice.poll_transmit().expect("bytes to broadcast");
    println!(
        "t=+0s     alice broadcasts {} ({} bytes) ... lost",
        lost.message_id,
        lost.bytes.len()
    );

    // Time passes: run alice's timers until she resends m1.
    let (now, resent) = loop {
        let now = alice.poll_timeout().expect("a pending deadline");
        alice.handle_timeout(now);
        if let Some(tx) = alice.poll_transmit() {
            if tx.reason == TransmitReason::Resend {
                break (now, tx);
            }
        }
    };
    println!(
        "t=+{}s    alice resends {}",
        (now - t0) / 1000,
        resent.message_id
    );

    // This time it arrives: bob delivers it.
    bob.receive(resent.bytes, None, now + 80)
        .expect("valid message");
    while let Some(ev) = bob.poll_event() {
        if let Event::Delivered {
            message_id,
            sender_id,
            content,
            ..
        } = ev
        {
            println!(
                "t=+{}s    bob delivers {message_id} from {sender_id}: {:?}",
                (now - t0) / 1000,
                String::from_utf8_lossy(&content)
            );
        }
    }

    // Bob answers; his causal history acknowledges m1 at alice.
    bob.send("chat", "b1", &b"hi alice"[..], now + 1_000)
        .expect("send");
    let reply = bob.poll_transmit().expect("bytes to broadcast");
    alice
        .receive(reply.bytes, None, now + 1_100)
        .expect("valid message");
    while let Some(ev) = alice.poll_event() {
        match ev {
            Event::Acknowledged { message_id, .. } => {
                println!("          alice: {message_id} acknowledged")
            }
            Event::Delivered { message_id, .. } => {
                println!("          alice delivers {message_id}")
            }
            _ => {}
        }
    }
    assert!(alice
        .channel_state("chat")
        .expect("channel")
        .outgoing
        .is_empty());
}
