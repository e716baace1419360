//! Persistence through the Store trait: round trip, identical behaviour after
//! a restart, fault injection, change sets proportional to the change.
mod common;
use common::*;
use sds::store::{MemoryStore, Store};
use sds::{Config, Event, Participant, Received, TransmitReason};

fn cfg() -> Config {
    Config {
        max_log: 50,
        ..Config::default()
    }
}

fn open(store: &MemoryStore) -> Participant {
    Participant::open("alice", cfg(), Box::new(store.clone())).unwrap()
}

/// Builds every kind of state at alice: log (with evictions), unacknowledged and
/// possibly-acknowledged messages, a buffered message with a missing
/// dependency, SDS-R requests to make and to answer, ids marked met.
fn build(alice: &mut Participant) -> Vec<bytes::Bytes> {
    let mut bob = Participant::new(
        "bob",
        Config {
            causal_history_len: 0,
            ..Config::default()
        },
    )
    .unwrap();
    let mut carol = Participant::new(
        "carol",
        Config {
            causal_history_len: 3,
            ..Config::default()
        },
    )
    .unwrap();
    let mut later = Vec::new();
    for i in 0..60 {
        alice
            .send("ch", &format!("a{i}"), &b"alice"[..], T0 + i)
            .unwrap();
    }
    let a_tx = transmits(alice);
    // bob got a59 and says so in its bloom: possibly acknowledged (1 sender).
    bob.receive(a_tx[59].bytes.clone(), None, T0 + 100).unwrap();
    bob.send("ch", "b0", &b"bob"[..], T0 + 101).unwrap();
    alice
        .receive(bob.poll_transmit().unwrap().bytes, None, T0 + 102)
        .unwrap();
    // carol's c0, c1: alice only gets c1 (buffered, c0 missing -> repair request).
    carol
        .receive(a_tx[58].bytes.clone(), None, T0 + 100)
        .unwrap();
    carol.send("ch", "c0", &b"carol"[..], T0 + 110).unwrap();
    carol.send("ch", "c1", &b"carol"[..], T0 + 111).unwrap();
    let c = transmits(&mut carol);
    alice
        .receive(
            c[1].bytes.clone(),
            Some(bytes::Bytes::from_static(b"hint-c1")),
            T0 + 112,
        )
        .unwrap();
    later.push(c[0].bytes.clone());
    // A repair request for alice's a57 (alice is the sender: T_resp = 0 would
    // fire at once, so ask for a message of bob's that alice has).
    alice
        .mark_dependencies_met("ch", ["x-from-store"], T0 + 113)
        .unwrap();
    later
}

#[test]
fn restarted_participant_behaves_as_if_it_never_stopped() {
    let store = MemoryStore::new();
    let mut alice = open(&store);
    let later = build(&mut alice);
    drain(&mut alice);
    let st = alice.channel_state("ch").unwrap();
    assert_eq!(st.log.len(), 50, "log capped");
    assert!(!st.outgoing.is_empty() && !st.incoming.is_empty() && !st.repair_requests.is_empty());

    let mut twin = Participant::open("alice", cfg(), Box::new(store.deep_copy())).unwrap();
    assert_eq!(twin.channel_state("ch"), alice.channel_state("ch"));

    // Same inputs to both: the missing message, then hours of timers.
    let feed = |p: &mut Participant| {
        let mut out: Vec<String> = Vec::new();
        let mut t = T0 + 200;
        out.push(format!("{:?}", p.receive(later[0].clone(), None, t)));
        while let Some(d) = p.poll_timeout().filter(|d| *d <= T0 + 3 * 3_600_000) {
            t = d.max(t);
            p.handle_timeout(t);
            for e in drain(p) {
                out.push(format!("{t} {e:?}"));
            }
            for x in transmits(p) {
                let digest: u64 = x.bytes.iter().fold(0xcbf29ce484222325, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
                });
                out.push(format!("{t} {:?} {} {digest:016x}", x.reason, x.message_id));
            }
        }
        out
    };
    let a = feed(&mut alice);
    let b = feed(&mut twin);
    assert!(a.len() > 20, "{} outputs", a.len());
    assert!(a.iter().any(|l| l.contains("Resend")), "resends happen");
    assert!(a
        .iter()
        .any(|l| l.contains("Delivered") && l.contains("\"c1\"")));
    if let Some(i) = (0..a.len().min(b.len())).find(|i| a[*i] != b[*i]) {
        panic!(
            "first difference at output {i}:\n  never stopped: {}\n  restarted:     {}",
            a[i], b[i]
        );
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(alice.channel_state("ch"), twin.channel_state("ch"));
}

#[test]
fn reopened_state_matches_and_delivered_messages_stay_delivered() {
    let store = MemoryStore::new();
    let mut alice = open(&store);
    let mut bob = Participant::new("bob", Config::default()).unwrap();
    bob.send("ch", "b1", &b"x"[..], T0).unwrap();
    let b1 = bob.poll_transmit().unwrap().bytes;
    assert_eq!(
        alice.receive(b1.clone(), None, T0).unwrap(),
        Received::Delivered
    );
    let before = alice.channel_state("ch");
    drop(alice);
    let mut again = open(&store);
    assert_eq!(again.channel_state("ch"), before);
    assert_eq!(
        again.receive(b1, None, T0 + 1).unwrap(),
        Received::Duplicate
    );
    assert!(delivered_ids(&drain(&mut again)).is_empty());
}

#[test]
fn failed_writes_are_retried_and_nothing_is_lost() {
    let store = MemoryStore::new();
    let mut alice = open(&store);
    store.fail_next_writes(3);
    for i in 0..3 {
        alice
            .send("ch", &format!("m{i}"), &b"x"[..], T0 + i)
            .unwrap();
    }
    let failures = drain(&mut alice)
        .into_iter()
        .filter(|e| matches!(e, Event::PersistenceFailed { .. }))
        .count();
    assert_eq!(failures, 3);
    assert!(!alice.store_is_healthy());
    // Nothing of it reached the store yet.
    assert!(
        Participant::open("alice", cfg(), Box::new(store.deep_copy()))
            .unwrap()
            .channel_state("ch")
            .is_none()
    );
    // The next operation writes everything.
    alice.send("ch", "m3", &b"x"[..], T0 + 3).unwrap();
    assert!(alice.store_is_healthy());
    let again = open(&store);
    assert_eq!(again.channel_state("ch"), alice.channel_state("ch"));
    assert_eq!(
        again.channel_state("ch").unwrap().outgoing,
        vec!["m0", "m1", "m2", "m3"]
    );
}

#[test]
fn change_sets_are_proportional_to_the_change() {
    let store = MemoryStore::new();
    let mut alice = Participant::open("alice", Config::default(), Box::new(store.clone())).unwrap();
    let mut bob = Participant::new("bob", Config::default()).unwrap();
    let mut per_receive = Vec::new();
    for i in 0..1_000u64 {
        bob.send("ch", &format!("b{i}"), &b"x"[..], T0 + i).unwrap();
        let tx = bob.poll_transmit().unwrap();
        let before = store.rows_written();
        alice.receive(tx.bytes, None, T0 + i).unwrap();
        per_receive.push(store.rows_written() - before);
    }
    // A delivered message: its log row, the channel row and its "to be
    // announced" row (plus one such row pushed out once that memory is full);
    // never a rewrite of the log.
    assert!(
        per_receive[10..].iter().all(|r| *r <= 5),
        "{:?}",
        &per_receive[990..]
    );
    assert_eq!(per_receive[100], per_receive[999]);
    drain(&mut alice);
    let _ = TransmitReason::New;
}

#[test]
fn drop_channel_removes_persisted_state() {
    let store = MemoryStore::new();
    let mut alice = open(&store);
    alice.send("ch", "m0", &b"x"[..], T0).unwrap();
    alice.drop_channel("ch").unwrap();
    assert!(alice.channel_state("ch").is_none());
    let mut s = store.clone();
    assert!(s.load().unwrap().is_empty());
}
