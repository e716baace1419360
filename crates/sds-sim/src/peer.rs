//! The part of the engine that touches one participant only.
//!
//! The engine runs in time windows no longer than the smallest delay with
//! which one participant can affect another (the minimum link latency, and
//! the store node's round trip). Inside a window every participant's events
//! depend on nothing the others do in the same window, so each participant
//! processes its own events (in their global order, including the timers it
//! sets itself) on any thread, and records what came out: transmissions,
//! events and the timer it asked for. The engine then replays the window in
//! global event order on one thread and applies those records: the network's
//! random draws, the metrics and the invariant checks see exactly the order
//! of a purely sequential run, so the report is the same whatever the number
//! of threads.

use bytes::Bytes;
use sds::{Event, Participant, Transmit};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

/// Bytes on the simulated wire, decoded once by the engine (which decodes
/// every transmission for its byte accounting) and shared by all their
/// receivers: each hands the decoded message to
/// [`Participant::receive_prepared`], which processes it exactly as
/// `receive` would process the bytes (they were decoded with the
/// participants' limits).
#[derive(Debug)]
pub(crate) struct Packet {
    pub bytes: Bytes,
    /// `None` if the bytes do not decode: each receiver then gets the bytes
    /// themselves, and the core's error.
    pub decoded: Option<Decode>,
}

/// The borrowed view of a decoded message, with the hashes of its ids and
/// the stored form its receivers share (see [`sds::Prepared`]).
type View<'a> = sds::Prepared<'a>;

self_cell::self_cell!(
    /// The engine's decode of a broadcast (its content in a buffer of its
    /// own, see [`own_content`]) with the borrowed view of it that its
    /// receivers hand to [`Participant::receive_prepared`]: made once per
    /// broadcast, where each receiver used to build its own (a vector of
    /// history entries, and a new reference to the shared content and bloom
    /// filter taken and dropped again: atomic operations on lines the other
    /// thread's receivers touch too), with the hashes of its ids, which
    /// each receiver used to compute again, and with the form in which each
    /// receiver keeps the message, which each used to build for itself.
    pub(crate) struct Decode {
        owner: sds::wire::Decoded,
        #[covariant]
        dependent: View,
    }
    impl {Debug}
);

impl Decode {
    /// `d`, its content given a buffer of its own, with its view.
    pub fn of(d: sds::wire::Decoded) -> Decode {
        Decode::new(own_content(d), |d| {
            sds::Prepared::new(d.message.borrowed(), d.dialect)
        })
    }
}

impl Packet {
    /// Decodes `bytes` with `limits`.
    pub fn new(bytes: Bytes, limits: &sds::wire::Limits) -> Arc<Packet> {
        let decoded = sds::wire::decode(bytes.clone(), limits)
            .ok()
            .map(Decode::of);
        Arc::new(Packet { bytes, decoded })
    }
}

/// Gives a decoded message's content a buffer of its own. Every receiver
/// keeps a reference to it (see [`Participant::receive_prepared`]): one
/// copy per broadcast instead of one per receiver, where a slice of the
/// wire bytes would keep the whole packet, bloom filter included, alive.
fn own_content(mut d: sds::wire::Decoded) -> sds::wire::Decoded {
    if let Some(c) = d.message.content.as_mut() {
        *c = Bytes::copy_from_slice(c);
    }
    d
}

/// An event of one participant, run by [`Peer::run`] or [`Peer::step`].
#[derive(Debug)]
pub(crate) enum LocalEv {
    /// A broadcast reaches the participant.
    Arrival { pkt: Arc<Packet>, first_of: u32 },
    /// The participant's timer, as armed for core deadline `at` (Unix ms).
    Timer { at: u64 },
    /// The store node's answer to a query for message `m`.
    Reply { m: u32, pkt: Arc<Packet> },
    /// A send the engine drew (the participant is online).
    Send(Box<SendCall>),
}

/// A send's core call: on `channel`, message `m` with id `id`
/// (`message: Some((m, id))`) or an ephemeral one (`None`), with
/// `size` bytes of content made from `tag` ([`crate::sim::make_content`]).
#[derive(Debug)]
pub(crate) struct SendCall {
    pub channel: String,
    pub message: Option<(u32, String)>,
    pub size: usize,
    pub tag: u64,
}

/// What a local event did, for the engine's bookkeeping.
#[derive(Debug)]
pub(crate) enum Done {
    /// The participant was offline: the broadcast was not received.
    Offline { first_of: u32 },
    /// Received (`len` bytes); `error` if the core refused it.
    Received { len: u64, error: Option<String> },
    /// A timer fired, or was stale (replaced or disarmed) and did nothing.
    Timer,
    /// Message `m` (`None`: an ephemeral one) was sent; `error` if the core
    /// refused it.
    Sent {
        m: Option<u32>,
        error: Option<String>,
    },
    /// A store reply reached an offline participant.
    ReplyDropped { m: u32 },
    /// A store reply for `m` was received (`len` bytes).
    Reply {
        m: u32,
        len: u64,
        error: Option<String>,
    },
}

/// The timer a participant asks for after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rearm {
    /// Nothing to schedule (same deadline as armed, none, or offline).
    Keep,
    /// Schedule a timer event at simulated `t` for core deadline `at`;
    /// `spin` if the core asked again for a deadline already handled now.
    Push { t: u64, at: u64, spin: bool },
}

/// A core event reduced, on the participant's thread, to what the engine
/// uses: ids parsed to message numbers there (by [`crate::sim::parse_msg`]),
/// and the event itself (its strings, its reference to the shared content)
/// dropped there, by the thread that made it, not in the serial replay.
#[derive(Debug)]
pub(crate) enum Obs {
    /// `m`: the message, or its id if it is not one of the simulation's;
    /// `chan`: the channel's number ([`crate::sim::parse_chan`]).
    Delivered {
        m: Result<u32, String>,
        chan: Option<u16>,
        lost: Vec<u32>,
    },
    Acknowledged(Result<u32, String>),
    NotAcknowledged(Option<u32>),
    /// The missing messages that are the simulation's.
    Missing(Vec<u32>),
    /// How many were declared lost, and those that are the simulation's.
    Lost {
        count: u64,
        ms: Vec<u32>,
    },
    Ephemeral,
}

impl Obs {
    /// `None` for an event the engine does not use.
    fn of(ev: Event, id_len: usize) -> Option<Obs> {
        let parse = |id: &str| crate::sim::parse_msg(id, id_len);
        let known = |id: String| parse(&id).ok_or(id);
        Some(match ev {
            Event::Delivered {
                message_id,
                lost_dependencies,
                channel,
                ..
            } => Obs::Delivered {
                m: known(message_id),
                chan: crate::sim::parse_chan(&channel),
                lost: lost_dependencies
                    .iter()
                    .filter_map(|id| parse(id))
                    .collect(),
            },
            Event::Acknowledged { message_id, .. } => Obs::Acknowledged(known(message_id)),
            Event::NotAcknowledged { message_id, .. } => Obs::NotAcknowledged(parse(&message_id)),
            Event::MissingDependencies { missing, .. } => Obs::Missing(
                missing
                    .iter()
                    .filter_map(|e| parse(&e.message_id))
                    .collect(),
            ),
            Event::IrretrievablyLost { missing, .. } => Obs::Lost {
                count: missing.len() as u64,
                ms: missing
                    .iter()
                    .filter_map(|e| parse(&e.message_id))
                    .collect(),
            },
            Event::Ephemeral { .. } => Obs::Ephemeral,
            _ => return None,
        })
    }
}

/// What one operation on a participant produced.
#[derive(Debug)]
pub(crate) struct Out {
    pub transmits: Vec<Transmit>,
    pub events: Vec<Obs>,
    pub rearm: Rearm,
}

/// One processed local event.
#[derive(Debug)]
pub(crate) struct Record {
    pub done: Done,
    /// The participant's outputs, if the core was called.
    pub out: Option<Out>,
}

/// An event due at `time`; `seq` orders events of the same time (the
/// order they were scheduled in). A `BinaryHeap` of them pops the earliest.
pub(crate) struct Timed<E> {
    pub time: u64,
    pub seq: u64,
    pub ev: E,
}

impl<E> PartialEq for Timed<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl<E> Eq for Timed<E> {}
impl<E> PartialOrd for Timed<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Timed<E> {
    // Reversed: the heap pops the earliest (time, seq).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}

type LocalItem = Timed<LocalEv>;

/// Sequence numbers of timers a participant sets inside a window: after every
/// event that existed when the window opened, in the order they were set
/// (the engine gives them global sequence numbers in the same order).
const NEW_SEQ_BASE: u64 = 1 << 62;

/// The engine's per-participant state.
pub(crate) struct Peer {
    /// Core deadline the pending timer event was armed for.
    pub armed: Option<u64>,
    /// (simulated ms, count) of timer firings at the same instant.
    pub fired: (u64, u32),
    heap: BinaryHeap<LocalItem>,
    records: VecDeque<Record>,
    new_seq: u64,
    /// Length of the simulation's message ids (see [`Obs`]).
    id_len: usize,
    /// The participant's index (its sends' contents depend on it).
    index: usize,
}

impl Peer {
    pub fn new(index: usize, id_len: usize) -> Peer {
        Peer {
            armed: None,
            fired: (u64::MAX, 0),
            heap: BinaryHeap::new(),
            records: VecDeque::new(),
            new_seq: NEW_SEQ_BASE,
            id_len,
            index,
        }
    }

    /// Hands the participant one of its events of the current window.
    pub fn give(&mut self, time: u64, seq: u64, ev: LocalEv) {
        self.heap.push(LocalItem { time, seq, ev });
    }

    pub fn has_work(&self) -> bool {
        !self.heap.is_empty()
    }

    /// Processes the events given for this window in order, and the timers
    /// set meanwhile that fall before `bound` (simulated ms).
    pub fn run(&mut self, part: &mut Participant, online: bool, epoch: u64, bound: u64) {
        while let Some(item) = self.heap.pop() {
            let rec = self.step(part, online, epoch, item.time, item.ev);
            if let Some(Out {
                rearm: Rearm::Push { t, at, .. },
                ..
            }) = rec.out
            {
                if t < bound {
                    self.new_seq += 1;
                    self.heap.push(LocalItem {
                        time: t,
                        seq: self.new_seq,
                        ev: LocalEv::Timer { at },
                    });
                }
            }
            self.records.push_back(rec);
        }
        self.new_seq = NEW_SEQ_BASE;
    }

    /// The next record of the window, in processing order.
    pub fn take(&mut self) -> Option<Record> {
        self.records.pop_front()
    }

    /// Processes one event at simulated time `now`.
    pub fn step(
        &mut self,
        part: &mut Participant,
        online: bool,
        epoch: u64,
        now: u64,
        ev: LocalEv,
    ) -> Record {
        match ev {
            LocalEv::Arrival { pkt, first_of } => self.receive_online(
                part,
                online.then_some(pkt),
                epoch,
                now,
                Done::Offline { first_of },
                |len, error| Done::Received { len, error },
            ),
            LocalEv::Timer { at } => {
                if !(online && self.armed == Some(at)) {
                    return Record {
                        done: Done::Timer,
                        out: None,
                    };
                }
                self.armed = None;
                self.fired = if self.fired.0 == now {
                    (now, self.fired.1 + 1)
                } else {
                    (now, 1)
                };
                part.handle_timeout(epoch + now);
                let out = self.collect(part, online, epoch, now);
                Record {
                    done: Done::Timer,
                    out: Some(out),
                }
            }
            LocalEv::Send(send) => {
                let SendCall {
                    channel,
                    message,
                    size,
                    tag,
                } = *send;
                let content = crate::sim::make_content(size, tag, self.index);
                let (m, result) = match message {
                    Some((m, id)) => (Some(m), part.send(&channel, &id, content, epoch + now)),
                    None => (
                        None,
                        part.send_ephemeral(&channel, content, epoch + now)
                            .map(drop),
                    ),
                };
                let out = self.collect(part, online, epoch, now);
                Record {
                    done: Done::Sent {
                        m,
                        error: result.err().map(|e| e.to_string()),
                    },
                    out: Some(out),
                }
            }
            LocalEv::Reply { m, pkt } => self.receive_online(
                part,
                online.then_some(pkt),
                epoch,
                now,
                Done::ReplyDropped { m },
                |len, error| Done::Reply { m, len, error },
            ),
        }
    }

    /// Receives `pkt` (`None`: the participant is offline, and the record
    /// is `offline`); `done` makes the record from the size and the error.
    fn receive_online(
        &mut self,
        part: &mut Participant,
        pkt: Option<Arc<Packet>>,
        epoch: u64,
        now: u64,
        offline: Done,
        done: impl FnOnce(u64, Option<String>) -> Done,
    ) -> Record {
        let Some(pkt) = pkt else {
            return Record {
                done: offline,
                out: None,
            };
        };
        let (len, error, out) = self.receive(part, &pkt, epoch, now);
        Record {
            done: done(len, error),
            out: Some(out),
        }
    }

    fn receive(
        &mut self,
        part: &mut Participant,
        pkt: &Packet,
        epoch: u64,
        now: u64,
    ) -> (u64, Option<String>, Out) {
        let len = pkt.bytes.len() as u64;
        let result = match &pkt.decoded {
            Some(d) => part.receive_prepared(d.borrow_dependent(), None, epoch + now),
            None => part.receive(pkt.bytes.clone(), None, epoch + now),
        };
        let error = result.err().map(|e| e.to_string());
        (len, error, self.collect(part, true, epoch, now))
    }

    /// Drains the participant's transmissions and events, and works out the
    /// timer it needs next.
    pub fn collect(&mut self, part: &mut Participant, online: bool, epoch: u64, now: u64) -> Out {
        let mut transmits = Vec::new();
        while let Some(tx) = part.poll_transmit() {
            transmits.push(tx);
        }
        let mut events = Vec::new();
        while let Some(ev) = part.poll_event() {
            events.extend(Obs::of(ev, self.id_len));
        }
        let rearm = self.rearm(part, online, epoch, now);
        Out {
            transmits,
            events,
            rearm,
        }
    }

    /// Works out the timer the participant needs next.
    pub fn rearm(&mut self, part: &Participant, online: bool, epoch: u64, now: u64) -> Rearm {
        if !online {
            return Rearm::Keep;
        }
        match part.poll_timeout() {
            Some(at) if self.armed == Some(at) => Rearm::Keep,
            Some(at) => {
                self.armed = Some(at);
                let mut t = at.saturating_sub(epoch).max(now);
                let spin = t == now && self.fired.0 == now && self.fired.1 > 100;
                if spin {
                    // The core keeps asking for a timeout at a time that has
                    // already been handled: step time forward.
                    t += 1;
                }
                Rearm::Push { t, at, spin }
            }
            None => {
                self.armed = None;
                Rearm::Keep
            }
        }
    }
}
