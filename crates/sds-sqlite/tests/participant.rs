//! Participant-level round trips on SQLite: a participant that is dropped and
//! reopened from its file is indistinguishable from one that never stopped.

use bytes::Bytes;
use sds::store::{ChangeSet, ChannelSnapshot, Store, StoreError};
use sds::{Config, Event, Participant, Transmit};
use sds_sqlite::{open_participant, SqliteStore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const T0: u64 = 1_700_000_000_000;
const CH: &str = "chat";

#[derive(Clone, Debug)]
enum Input {
    Send(String),
    Receive(Bytes),
    Timeout(u64),
}

fn config() -> Config {
    Config {
        seed: 42,
        ..Config::default()
    }
}

/// Bob's messages: each names Bob's previous ones in its causal history.
fn bob_messages(n: usize) -> Vec<Bytes> {
    let mut bob = Participant::new("bob", config()).unwrap();
    let mut out = Vec::new();
    for k in 0..n {
        bob.send(
            CH,
            &format!("b{k}"),
            format!("from bob {k}").into_bytes(),
            T0 + k as u64 * 100,
        )
        .unwrap();
        while let Some(t) = bob.poll_transmit() {
            out.push(t.bytes);
        }
        while bob.poll_event().is_some() {}
    }
    out
}

/// A script with sends, in-order and out-of-order receives, withheld
/// messages (missing dependencies and repair requests) delivered late, and
/// timeouts far enough apart for resends, syncs and SDS-R to fire.
fn script() -> Vec<(u64, Input)> {
    let bob = bob_messages(24);
    let withheld = [3usize, 4, 11, 17];
    let mut v = Vec::new();
    let mut now = T0 + 10_000;
    for (k, m) in bob.iter().enumerate() {
        now += 700;
        if k % 3 == 0 {
            v.push((now, Input::Send(format!("a{k}"))));
        }
        if !withheld.contains(&k) {
            v.push((now + 1, Input::Receive(m.clone())));
        }
        if k % 5 == 4 {
            v.push((now + 2, Input::Timeout(now + 2)));
        }
    }
    // Long enough for T_req (30-120 s), resends (30 s) and syncs.
    for step in 1..=8 {
        now += 20_000;
        v.push((now, Input::Timeout(now)));
        if step == 5 {
            for &k in &withheld[..2] {
                v.push((now + 1, Input::Receive(bob[k].clone())));
            }
        }
    }
    v
}

/// A transmit: the decoded message without its bloom filter, and a digest
/// of the bloom filter (compared only when `BLOOM` is set, see
/// `bloom_after_reopen_includes_buffered_messages`).
#[derive(Debug)]
struct Sent {
    reason: String,
    message: sds::wire::Message,
    bloom_digest: u64,
}

impl PartialEq for Sent {
    fn eq(&self, o: &Sent) -> bool {
        self.reason == o.reason
            && self.message == o.message
            && (!BLOOM.with(|b| b.get()) || self.bloom_digest == o.bloom_digest)
    }
}

thread_local! {
    static BLOOM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl From<Transmit> for Sent {
    fn from(t: Transmit) -> Sent {
        let mut message = sds::wire::decode(t.bytes, &Default::default())
            .expect("our own transmit decodes")
            .message;
        let bloom = message.bloom_filter.take().unwrap_or_default();
        let bloom_digest = bloom.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        Sent {
            reason: format!("{:?}", t.reason),
            message,
            bloom_digest,
        }
    }
}

#[derive(Debug, PartialEq)]
struct Outputs {
    events: Vec<Event>,
    transmits: Vec<Sent>,
    timeout: Option<u64>,
}

fn step(p: &mut Participant, now: u64, input: &Input) -> Outputs {
    match input {
        Input::Send(id) => p
            .send(CH, id, format!("content of {id}").into_bytes(), now)
            .unwrap(),
        Input::Receive(b) => {
            p.receive(b.clone(), None, now).unwrap();
        }
        Input::Timeout(t) => p.handle_timeout(*t),
    }
    let mut events = Vec::new();
    while let Some(e) = p.poll_event() {
        events.push(e);
    }
    let mut transmits = Vec::new();
    while let Some(t) = p.poll_transmit() {
        transmits.push(Sent::from(t));
    }
    Outputs {
        events,
        transmits,
        timeout: p.poll_timeout(),
    }
}

#[test]
fn reopened_participant_behaves_like_one_that_never_stopped() {
    twins(false);
}

/// Including the bloom filter: `Channel::restore` must rebuild it from
/// every id a live participant has inserted (log, buffered, met, evicted),
/// or messages sent after a reopen differ from those of a participant that
/// never stopped (this failed before the core restored buffered ids).
#[test]
fn bloom_after_reopen_includes_buffered_messages() {
    twins(true);
}

fn twins(compare_bloom: bool) {
    BLOOM.with(|b| b.set(compare_bloom));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let script = script();
    for restart_every in [1usize, 3, 7, 1000] {
        let _ = std::fs::remove_file(&path);
        let mut steady = Participant::new("alice", config()).unwrap();
        let mut alice = open_participant(&path, "alice", config()).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for (i, (now, input)) in script.iter().enumerate() {
            let want = step(&mut steady, *now, input);
            let got = step(&mut alice, *now, input);
            assert_eq!(
                got, want,
                "restart every {restart_every}, input {i} {input:?}"
            );
            for e in &want.events {
                kinds.insert(
                    format!("{e:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap()
                        .to_string(),
                );
            }
            if i % restart_every == restart_every - 1 {
                drop(alice);
                alice = open_participant(&path, "alice", config()).unwrap();
                assert_eq!(
                    alice.channel_state(CH),
                    steady.channel_state(CH),
                    "after input {i}"
                );
                assert_eq!(
                    alice.poll_timeout(),
                    steady.poll_timeout(),
                    "after input {i}"
                );
            }
        }
        let s = steady.channel_state(CH).unwrap();
        assert!(s.log.len() > 15, "{s:?}");
        // The script exercises what is persisted.
        for k in ["Delivered", "MissingDependencies", "RepairRequested"] {
            assert!(kinds.contains(k), "no {k} event in the script: {kinds:?}");
        }
    }
}

#[test]
fn state_mid_script_has_every_buffer_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let script = script();
    let mut alice = open_participant(&path, "alice", config()).unwrap();
    // Up to the first long timeout: outgoing, incoming and repair state are all non-empty.
    let cut = script
        .iter()
        .position(|(_, i)| matches!(i, Input::Timeout(t) if *t > T0 + 60_000))
        .unwrap();
    for (now, input) in &script[..=cut] {
        step(&mut alice, *now, input);
    }
    let before = alice.channel_state(CH).unwrap();
    assert!(!before.log.is_empty());
    assert!(!before.outgoing.is_empty());
    assert!(!before.incoming.is_empty());
    assert!(!before.repair_requests.is_empty(), "{before:?}");
    drop(alice);
    let snap: Vec<ChannelSnapshot> = SqliteStore::open(&path).unwrap().load().unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].log.len(), before.log.len());
    assert_eq!(snap[0].outgoing.len(), before.outgoing.len());
    assert_eq!(snap[0].incoming.len(), before.incoming.len());
    assert!(!snap[0].repair_out.is_empty());
    let alice = open_participant(&path, "alice", config()).unwrap();
    assert_eq!(alice.channel_state(CH).unwrap(), before);
}

#[test]
fn drop_channel_removes_the_channel_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let mut alice = open_participant(&path, "alice", config()).unwrap();
    alice.send("one", "m1", &b"x"[..], T0).unwrap();
    alice.send("two", "m2", &b"y"[..], T0).unwrap();
    alice.drop_channel("one").unwrap();
    drop(alice);
    let alice = open_participant(&path, "alice", config()).unwrap();
    assert_eq!(alice.channels().collect::<Vec<_>>(), vec!["two"]);
    // While `alice` holds the writer's lock, a store can still read the file.
    let ro = sds_sqlite::Options {
        read_only: true,
        ..Default::default()
    };
    let snap = SqliteStore::open_with(&path, &ro).unwrap().load().unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].channel, "two");
}

/// An SQLite store that fails the next `n` writes on demand.
struct Flaky {
    inner: SqliteStore,
    fail: Arc<AtomicUsize>,
}

impl Store for Flaky {
    fn load(&mut self) -> Result<Vec<ChannelSnapshot>, StoreError> {
        self.inner.load()
    }
    fn apply(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError("injected failure".into()));
        }
        self.inner.apply(changes)
    }
    fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError> {
        self.inner.drop_channel(channel)
    }
}

#[test]
fn failed_writes_are_reported_and_caught_up_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flaky.db");
    let script = script();
    let fail = Arc::new(AtomicUsize::new(0));
    let open = |fail: &Arc<AtomicUsize>| {
        let store = Flaky {
            inner: SqliteStore::open(&path).unwrap(),
            fail: fail.clone(),
        };
        Participant::open("alice", config(), Box::new(store)).unwrap()
    };
    let mut steady = Participant::new("alice", config()).unwrap();
    let mut alice = open(&fail);
    let mut failures = 0;
    for (i, (now, input)) in script.iter().enumerate() {
        if i % 10 == 3 {
            fail.store(4, Ordering::SeqCst); // this input and the next 3 fail to write
        }
        let want = step(&mut steady, *now, input);
        let mut got = step(&mut alice, *now, input);
        let before = got.events.len();
        got.events
            .retain(|e| !matches!(e, Event::PersistenceFailed { .. }));
        failures += before - got.events.len();
        // The operation itself is unaffected by the failed write.
        assert_eq!(got, want, "input {i}");
        if i % 10 == 9 {
            // Six inputs after the last failure: everything is written.
            assert!(alice.store_is_healthy());
            drop(alice);
            alice = open(&fail);
            assert_eq!(
                alice.channel_state(CH),
                steady.channel_state(CH),
                "after input {i}"
            );
        }
    }
    assert!(failures > 10, "{failures}");
}
