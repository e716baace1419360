//! The discrete-event engine: participants, event queue, network, store node,
//! workload, churn, metrics and invariants.

use crate::calendar::Calendar;
use crate::checker::{Checker, Violation, ViolationKind};
use crate::fasthash::FastMap;
use crate::network::{LinkOutcome, Network};
use crate::peer::{Done, LocalEv, Obs, Out, Packet, Peer, Rearm, Record, Timed};
use crate::report::{
    quantile_with_infinite, Acks, Bucket, Consistency, Delivery, Detection, Furps, Invariants,
    NetStats, Percentiles, ReasonBytes, Report, Sample, Settings, StoreStats, WireBytes,
};
use crate::rng::{mix64, SimRng};
use crate::scenario::{ms, parse_ranges, Arrival, LossModel, Membership, Scenario, ScenarioError};
use crate::workers::Workers;
use bytes::Bytes;
use sds::{Participant, Transmit, TransmitReason};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// A hook called when a participant goes offline or comes back (churn).
///
/// Participants come back with their in-memory state; a persistence layer can
/// use this hook to replace the participant with one restored from its store.
pub trait ChurnHook {
    /// Participant `index` went offline at `now_ms` (simulated ms).
    fn went_offline(&mut self, index: usize, participant: &Participant, now_ms: u64) {
        let _ = (index, participant, now_ms);
    }
    /// Participant `index` comes back at `now_ms`; the hook may replace it.
    fn came_online(&mut self, index: usize, participant: &mut Participant, now_ms: u64) {
        let _ = (index, participant, now_ms);
    }
}

/// Why a simulation could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The core refused the configuration.
    #[error("the sds core rejected the configuration: {0}")]
    Config(String),
}

const NONE: u32 = u32::MAX;
const MAX_ANOMALIES: usize = 30;

#[derive(Debug)]
enum Ev {
    Arrival {
        to: u32,
        pkt: Arc<Packet>,
        first_of: u32,
    },
    Timer {
        p: u32,
        at: u64,
    },
    Send {
        p: u32,
    },
    /// The core call of a send, run by participant `p`'s peer in the
    /// window that follows the `Send` (same time and sequence number), so
    /// that the call runs in parallel with the other participants' work.
    Sending {
        p: u32,
        send: Box<crate::peer::SendCall>,
    },
    Churn {
        p: u32,
        online: bool,
    },
    StoreQuery {
        p: u32,
        m: u32,
    },
    /// The store's answer: the message, or `None` if it had none.
    StoreReply {
        p: u32,
        m: u32,
        pkt: Option<Arc<Packet>>,
    },
    Sample,
    /// In a window's replay: the next recorded event of participant `p`.
    Done {
        p: u32,
    },
}

impl Ev {
    /// Events that do not belong to one participant's window work: they run
    /// alone, between windows.
    fn is_global(&self) -> bool {
        matches!(self, Ev::Send { .. } | Ev::Churn { .. } | Ev::Sample)
    }
}

type Item = Timed<Ev>;

/// A window's events for the replay, popped in (time, seq) order: those
/// taken from the queue arrive in that order already and wait in a FIFO;
/// the few set during the replay itself (a participant's own timers, store
/// queries) wait in a heap.
#[derive(Default)]
struct Window {
    in_order: VecDeque<Item>,
    set_later: BinaryHeap<Item>,
}

impl Window {
    /// Appends an event later than every one appended before.
    fn push_in_order(&mut self, item: Item) {
        debug_assert!(self
            .in_order
            .back()
            .is_none_or(|b| (b.time, b.seq) < (item.time, item.seq)));
        self.in_order.push_back(item);
    }

    /// Adds an event set during the replay.
    fn push(&mut self, item: Item) {
        self.set_later.push(item);
    }

    fn pop(&mut self) -> Option<Item> {
        let later_first = match (self.in_order.front(), self.set_later.peek()) {
            (Some(a), Some(b)) => (b.time, b.seq) < (a.time, a.seq),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if later_first {
            self.set_later.pop()
        } else {
            self.in_order.pop_front()
        }
    }
}

struct MsgInfo {
    sender: u32,
    channel: u16,
    sent_at: u64,
    lamport: u64,
    deps: Box<[u32]>,
    acked_at: Option<u64>,
    not_acked: bool,
    /// Transmissions whose causal history named this message.
    named: u32,
    /// The store node dropped it after its retention period.
    store_dropped: bool,
}

struct Miss {
    due: u64,
    detected: Option<u64>,
    by_event: bool,
}

#[derive(Default, Clone, Copy)]
struct FieldBytes {
    content: u64,
    bloom: u64,
    history: u64,
    repair: u64,
}

fn reason_index(r: TransmitReason) -> usize {
    match r {
        TransmitReason::New => 0,
        TransmitReason::Resend => 1,
        TransmitReason::Sync => 2,
        TransmitReason::Repair => 3,
        TransmitReason::Ephemeral => 4,
    }
}
const REASONS: [&str; 5] = ["new", "resend", "sync", "repair", "ephemeral"];

/// One simulation run. Build it with [`Simulation::new`], run it with
/// [`Simulation::run`] (or [`Simulation::run_with_progress`]).
pub struct Simulation {
    sc: Scenario,
    limits: sds::wire::Limits,
    epoch: u64,
    now: u64,
    end: u64,
    /// Participant and store events.
    queue: Calendar<Ev>,
    /// Sends, churn and samples (they end a window).
    globals: BinaryHeap<Item>,
    /// The current window's events, replayed in global order.
    window: Window,
    /// Whether a window is being replayed, and its end (simulated ms):
    /// events pushed meanwhile before the end belong to it.
    in_window: bool,
    bound_time: u64,
    /// Longest window: the smallest delay between one participant's action
    /// and its effect on another (ms).
    lookahead: u64,
    /// Helper threads for the windows' participant work (`None`: all on
    /// the calling thread).
    pool: Option<Workers>,
    seq: u64,
    events: u64,
    /// Boxed: a worker's range of participants moves as a vector of pointers.
    #[allow(clippy::vec_box)]
    parts: Vec<Box<Participant>>,
    names: Vec<String>,
    online: Vec<bool>,
    offline_depth: Vec<u32>,
    peers: Vec<Peer>,
    chan_names: Vec<String>,
    chan_index: FastMap<String, u16>,
    chan_members: Vec<Vec<u32>>,
    member_chans: Vec<Vec<u16>>,
    net: Network,
    wl_rng: SimRng,
    workload_end: u64,
    msgs: Vec<MsgInfo>,
    checker: Checker,
    hook: Option<Box<dyn ChurnHook>>,
    // store
    store_on: bool,
    store_latency: u64,
    store_delay: u64,
    store: FastMap<u32, (Arc<Packet>, u64)>,
    /// What the store recorded, in recording order (for its retention).
    store_order: VecDeque<(u64, u32)>,
    store_retention: Option<u64>,
    pending_queries: HashSet<u64>,
    store_stats: StoreStats,
    // metrics
    latencies: Vec<u32>,
    delivered_pairs: u64,
    expected_pairs: u64,
    misses: FastMap<u64, Miss>,
    offline_misses: Vec<Vec<u32>>,
    timeline: Vec<Sample>,
    by_reason: [ReasonBytes; 5],
    fields: FieldBytes,
    part_bytes: Vec<u64>,
    received_bytes: u64,
    store_reply_bytes: u64,
    net_stats: NetStats,
    sends_skipped: u64,
    ephemeral_sent: u64,
    ephemeral_expected: u64,
    ephemeral_received: u64,
    lost_declared: u64,
    last_send: u64,
    // consistency: per participant, per membership slot: (sum of hashes, count)
    fps: Vec<Vec<(u64, u32)>>,
    multisets: Vec<FastMap<(u64, u32), u32>>,
    inconsistent: usize,
    was_consistent: bool,
    transitions: Vec<(u64, bool)>,
    anomalies: Vec<String>,
    anomaly_count: u64,
    timer_spins: u64,
}

/// Hex id of message `m`: 16 hex digits of the index, then filler derived
/// from the seed, up to `len` characters. Ids of one run have the same
/// length, so their string order is their index order.
pub fn message_id(m: u32, len: usize, seed: u64) -> String {
    let mut s = format!("{:016x}", m);
    let mut h = mix64(seed ^ u64::from(m).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    while s.len() < len {
        h = mix64(h);
        s.push_str(&format!("{h:016x}"));
    }
    s.truncate(len);
    s
}

/// The value of up to 16 lowercase or uppercase hex digits (the index prefix
/// of a message id; `u64::from_str_radix` was a sixth of the sequential
/// replay's instructions, called for every delivery and history entry).
/// The number of a message from its id ([`message_id`] of it, `id_len`
/// characters), if it is one (whether it was sent is for the engine to check).
pub(crate) fn parse_msg(id: &str, id_len: usize) -> Option<u32> {
    if id.len() != id_len {
        return None;
    }
    // Indices are u32: the first eight of the 16 digits are zeros.
    let digits = id.as_bytes().get(..16)?;
    if digits[..8] != *b"00000000" {
        return None;
    }
    parse_hex16(&digits[8..]).map(|v| v as u32)
}

/// The name of channel `c`.
fn chan_name(c: usize) -> String {
    format!("channel-{c}")
}

/// The number of a channel from its name ([`chan_name`] of it).
pub(crate) fn parse_chan(name: &str) -> Option<u16> {
    let digits = name.strip_prefix("channel-")?;
    // One spelling per number: digits only, no leading zero.
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    let spelled = !digits.is_empty() && !leading_zero && digits.bytes().all(|b| b.is_ascii_digit());
    if !spelled {
        return None;
    }
    digits.parse().ok()
}

fn parse_hex16(digits: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

fn content_fp(m: u32) -> u64 {
    mix64(u64::from(m) ^ 0x005e_ed0f_c0ff_ee00) | 1
}

fn pair_key(p: u32, m: u32) -> u64 {
    (u64::from(p) << 32) | u64::from(m)
}

impl Simulation {
    /// Prepares a run of `scenario` (validated here too).
    pub fn new(scenario: &Scenario) -> Result<Simulation, SimError> {
        scenario.validate()?;
        let sc = scenario.clone();
        let n = sc.participants;
        let cfg = sc.sds.to_config(n, sc.seed);
        let limits = cfg.limits.clone();
        let epoch = sc.epoch_ms;
        let width = (n - 1).to_string().len().max(3);
        let names: Vec<String> = (0..n).map(|i| format!("peer-{i:0width$}")).collect();

        // Channels and membership.
        let cc = &sc.channels;
        let chan_names: Vec<String> = (0..cc.count).map(chan_name).collect();
        let mut member_chans: Vec<Vec<u16>> = vec![Vec::new(); n];
        match cc.membership {
            Membership::All => {
                for m in member_chans.iter_mut() {
                    *m = (0..cc.count as u16).collect();
                }
            }
            Membership::Subset => {
                let mut rng = SimRng::stream(sc.seed, 0x6368_616e);
                // Round-robin first so that every channel gets two members,
                // then random distinct channels.
                let mut next = 0usize;
                for (i, m) in member_chans.iter_mut().enumerate() {
                    if i < 2 * cc.count {
                        m.push((next % cc.count) as u16);
                        next += 1;
                    }
                    while m.len() < cc.per_participant {
                        let c = rng.below(cc.count as u64) as u16;
                        if !m.contains(&c) {
                            m.push(c);
                        }
                    }
                    m.sort_unstable();
                }
            }
        }
        let mut chan_members: Vec<Vec<u32>> = vec![Vec::new(); cc.count];
        for (p, cs) in member_chans.iter().enumerate() {
            for &c in cs {
                chan_members[c as usize].push(p as u32);
            }
        }
        let mut chan_index = FastMap::default();
        for (i, c) in chan_names.iter().enumerate() {
            chan_index.insert(c.clone(), i as u16);
        }

        let mut parts = Vec::with_capacity(n);
        let ccfg = sc.sds.channel_config();
        for (i, name) in names.iter().enumerate() {
            let mut p = Participant::new(name.clone(), cfg.clone())
                .map_err(|e| SimError::Config(e.to_string()))?;
            for &c in &member_chans[i] {
                p.configure_channel(&chan_names[c as usize], ccfg.clone(), epoch)
                    .map_err(|e| SimError::Config(e.to_string()))?;
            }
            parts.push(Box::new(p));
        }
        let net = Network::new(&sc)?;
        let lookahead = if sc.store.enabled {
            sc.network.latency_min_ms.min(2 * sc.store.latency_ms)
        } else {
            sc.network.latency_min_ms
        };
        let multisets: Vec<FastMap<(u64, u32), u32>> = chan_members
            .iter()
            .map(|ms| {
                let mut m = FastMap::default();
                if !ms.is_empty() {
                    m.insert((0, 0), ms.len() as u32);
                }
                m
            })
            .collect();
        let fps = member_chans.iter().map(|c| vec![(0, 0); c.len()]).collect();
        let mut sim = Simulation {
            limits,
            epoch,
            now: 0,
            end: sc.end_ms(),
            queue: Calendar::new(),
            globals: BinaryHeap::new(),
            window: Window::default(),
            in_window: false,
            bound_time: 0,
            lookahead,
            pool: None,
            seq: 0,
            events: 0,
            parts,
            names,
            online: vec![true; n],
            offline_depth: vec![0; n],
            peers: (0..n).map(|p| Peer::new(p, sc.message_id_len)).collect(),
            chan_names,
            chan_index,
            chan_members,
            member_chans,
            net,
            wl_rng: SimRng::stream(sc.seed, 0x776f_726b),
            workload_end: sc.workload_end_ms(),
            msgs: Vec::new(),
            checker: Checker::new(n),
            hook: None,
            store_on: sc.store.enabled,
            store_latency: sc.store.latency_ms,
            store_delay: sc.store.query_delay_ms,
            store: FastMap::default(),
            store_order: VecDeque::new(),
            store_retention: sc.store.retention_s.map(|s| s.saturating_mul(1000)),
            pending_queries: HashSet::new(),
            store_stats: StoreStats::default(),
            latencies: Vec::new(),
            delivered_pairs: 0,
            expected_pairs: 0,
            misses: FastMap::default(),
            offline_misses: vec![Vec::new(); n],
            timeline: Vec::new(),
            by_reason: [ReasonBytes::default(); 5],
            fields: FieldBytes::default(),
            part_bytes: vec![0; n],
            received_bytes: 0,
            store_reply_bytes: 0,
            net_stats: NetStats::default(),
            sends_skipped: 0,
            ephemeral_sent: 0,
            ephemeral_expected: 0,
            ephemeral_received: 0,
            lost_declared: 0,
            last_send: 0,
            fps,
            multisets,
            inconsistent: 0,
            was_consistent: true,
            transitions: vec![(0, true)],
            anomalies: Vec::new(),
            anomaly_count: 0,
            timer_spins: 0,
            sc,
        };
        sim.schedule_initial()?;
        Ok(sim)
    }

    /// Installs a churn hook.
    pub fn set_churn_hook(&mut self, hook: Box<dyn ChurnHook>) {
        self.hook = Some(hook);
    }

    /// The participants (e.g. to inspect their state after a run).
    pub fn participants(&self) -> impl ExactSizeIterator<Item = &Participant> + '_ {
        self.parts.iter().map(|p| &**p)
    }

    /// Index of a participant by id.
    pub fn participant_index(&self, id: &str) -> Option<usize> {
        self.names.iter().position(|n| n == id)
    }

    /// Name of a channel by index.
    pub fn channel_name(&self, c: usize) -> &str {
        &self.chan_names[c]
    }

    /// Simulated end (ms).
    pub fn end_ms(&self) -> u64 {
        self.end
    }

    fn push(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        let seq = self.seq;
        if ev.is_global() {
            self.globals.push(Item { time, seq, ev });
        } else if self.in_window && time < self.bound_time {
            // Set while replaying a window, due inside it: a participant's
            // own timer (already run by its peer; replay its record here)
            // or a store query. Nothing else can be this close.
            let ev = match ev {
                Ev::Timer { p, .. } => Ev::Done { p },
                Ev::StoreQuery { .. } => ev,
                other => unreachable!("event due inside its window: {other:?}"),
            };
            self.window.push(Item { time, seq, ev });
        } else {
            self.queue.push(time, seq, ev);
        }
    }

    /// Uses `threads` threads for the participants' work (default 1: all on
    /// the calling thread; `sds sim` passes the machine's cores): the
    /// calling one and `threads - 1` helpers, each running a fixed range of
    /// participants. The report does not depend on it. If a helper thread
    /// cannot be started, the run stays on the calling thread.
    pub fn set_threads(&mut self, threads: usize) {
        // The old helpers stop (and are joined) before new ones start.
        self.pool = None;
        self.pool = if threads <= 1 {
            None
        } else {
            Workers::new(threads.min(self.parts.len())).ok()
        };
    }

    fn anomaly(&mut self, text: String) {
        self.anomaly_count += 1;
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies
                .push(format!("t={:.3}s {text}", self.now as f64 / 1000.0));
        }
    }

    fn schedule_initial(&mut self) -> Result<(), ScenarioError> {
        let n = self.sc.participants;
        for p in 0..n {
            let rearm = self.peers[p].rearm(&self.parts[p], self.online[p], self.epoch, self.now);
            self.apply_out(
                p,
                Out {
                    transmits: Vec::new(),
                    events: Vec::new(),
                    rearm,
                },
            );
        }
        // Workload.
        let senders = ((self.sc.workload.sender_share * n as f64).round() as usize).min(n);
        let start = ms(self.sc.workload.start_s);
        let interval = self.sc.workload.interval_s * 1000.0;
        for p in 0..senders {
            let first = match self.sc.workload.arrival {
                Arrival::Poisson => self.wl_rng.exp(interval),
                Arrival::Fixed => self.wl_rng.next_f64() * interval,
            };
            let t = start + first.round() as u64;
            if t < self.workload_end {
                self.push(t, Ev::Send { p: p as u32 });
            }
        }
        // Churn.
        let mut rng = SimRng::stream(self.sc.seed, 0x6368_7572);
        let ch = self.sc.churn.clone();
        if ch.fraction > 0.0 {
            let (cs, ce) = (ms(ch.start_s), self.sc.churn_end_ms());
            for p in 0..n {
                if !rng.chance(ch.fraction) {
                    continue;
                }
                let mut t = cs as f64 + rng.exp(ch.mean_online_s * 1000.0);
                while (t as u64) < ce {
                    let off = t as u64;
                    let back = ((t + rng.exp(ch.mean_offline_s * 1000.0)) as u64).min(ce);
                    if back > off {
                        self.push(
                            off,
                            Ev::Churn {
                                p: p as u32,
                                online: false,
                            },
                        );
                        self.push(
                            back,
                            Ev::Churn {
                                p: p as u32,
                                online: true,
                            },
                        );
                    }
                    t = back as f64 + rng.exp(ch.mean_online_s * 1000.0);
                }
            }
        }
        for (i, o) in ch.offline.iter().enumerate() {
            let who = parse_ranges(
                &o.participants,
                n,
                &format!("churn.offline[{i}].participants"),
            )?;
            let (a, b) = (ms(o.start_s), ms(o.end_s));
            if b > a {
                for p in who {
                    self.push(
                        a,
                        Ev::Churn {
                            p: p as u32,
                            online: false,
                        },
                    );
                    self.push(
                        b,
                        Ev::Churn {
                            p: p as u32,
                            online: true,
                        },
                    );
                }
            }
        }
        self.push(0, Ev::Sample);
        Ok(())
    }

    // ------------------------------------------------------------ timers

    /// Runs participant `p`'s outputs through the network, the metrics and
    /// the timer queue (right after an operation on it).
    fn drain(&mut self, p: usize) {
        let out = self.peers[p].collect(&mut self.parts[p], self.online[p], self.epoch, self.now);
        self.apply_out(p, out);
    }

    fn apply_out(&mut self, p: usize, out: Out) {
        for tx in out.transmits {
            self.broadcast(p, tx);
        }
        for ev in out.events {
            self.on_event(p, ev);
        }
        if let Rearm::Push { t, at, spin } = out.rearm {
            if spin {
                self.timer_spins += 1;
                if self.timer_spins == 1 {
                    let name = self.names[p].clone();
                    self.anomaly(format!(
                        "{name}: poll_timeout stays at or before now after handle_timeout (timer spin); stepping 1 ms"
                    ));
                }
            }
            self.push(t, Ev::Timer { p: p as u32, at });
        }
    }

    /// Applies a participant's record of a window event (in replay order).
    fn apply_record(&mut self, p: usize, rec: Record) {
        match rec.done {
            Done::Offline { first_of } => {
                self.net_stats.dropped_offline += 1;
                if first_of != NONE {
                    self.record_miss(p, first_of, self.now);
                }
            }
            Done::Received { len, error } => {
                self.received_bytes += len;
                if let Some(e) = error {
                    let name = self.names[p].clone();
                    self.anomaly(format!("{name}: receive failed: {e}"));
                }
            }
            Done::Timer => {}
            Done::Sent { m, error: Some(e) } => {
                let name = self.names[p].clone();
                match m {
                    Some(m) => self.anomaly(format!("{name}: send of #{m} failed: {e}")),
                    None => self.anomaly(format!("{name}: send_ephemeral failed: {e}")),
                }
            }
            Done::Sent { error: None, .. } => {}
            Done::ReplyDropped { m } => {
                self.pending_queries.remove(&pair_key(p as u32, m));
                self.store_stats.replies_dropped += 1;
            }
            Done::Reply { m, len, error } => {
                self.pending_queries.remove(&pair_key(p as u32, m));
                self.store_stats.hits += 1;
                self.store_reply_bytes += len;
                if let Some(e) = error {
                    let name = self.names[p].clone();
                    self.anomaly(format!("{name}: receive of a store reply failed: {e}"));
                }
            }
        }
        if let Some(out) = rec.out {
            self.apply_out(p, out);
        }
    }

    // ---------------------------------------------------------- messages

    fn parse_id(&self, id: &str) -> Option<u32> {
        parse_msg(id, self.sc.message_id_len).filter(|&m| self.sent(m))
    }

    /// Whether message `m` was sent (an id parsed on a participant's thread
    /// is checked here).
    fn sent(&self, m: u32) -> bool {
        (m as usize) < self.msgs.len()
    }

    fn slot(&self, p: usize, c: u16) -> Option<usize> {
        self.member_chans[p].iter().position(|&x| x == c)
    }

    fn ms_change(&mut self, c: usize, key: (u64, u32), add: bool) {
        let set = &mut self.multisets[c];
        let before = set.len() > 1;
        if add {
            *set.entry(key).or_insert(0) += 1;
        } else if let Some(v) = set.get_mut(&key) {
            *v -= 1;
            if *v == 0 {
                set.remove(&key);
            }
        }
        let after = set.len() > 1;
        if before && !after {
            self.inconsistent -= 1;
        } else if !before && after {
            self.inconsistent += 1;
        }
    }

    /// `p`'s log gained `m` (channel `c`).
    fn log_gained(&mut self, p: usize, c: u16, m: u32) {
        let Some(slot) = self.slot(p, c) else {
            let name = self.names[p].clone();
            self.anomaly(format!(
                "{name} got message #{m} of a channel it is not a member of"
            ));
            return;
        };
        let old = self.fps[p][slot];
        let new = (old.0.wrapping_add(content_fp(m)), old.1 + 1);
        self.fps[p][slot] = new;
        if self.online[p] {
            self.ms_change(c as usize, old, false);
            self.ms_change(c as usize, new, true);
        }
    }

    fn set_online(&mut self, p: usize, online: bool) {
        for slot in 0..self.member_chans[p].len() {
            let c = self.member_chans[p][slot] as usize;
            let key = self.fps[p][slot];
            self.ms_change(c, key, online);
        }
        self.online[p] = online;
    }

    fn record_miss(&mut self, r: usize, m: u32, due: u64) {
        if self.checker.has(r, m) {
            return;
        }
        let key = pair_key(r as u32, m);
        if self.misses.contains_key(&key) {
            return;
        }
        self.misses.insert(
            key,
            Miss {
                due,
                detected: None,
                by_event: false,
            },
        );
        if !self.online[r] {
            self.offline_misses[r].push(m);
        }
    }

    fn detected(&mut self, r: usize, m: u32, by_event: bool) {
        if let Some(miss) = self.misses.get_mut(&pair_key(r as u32, m)) {
            if miss.detected.is_none() {
                miss.detected = Some(self.now);
                miss.by_event = by_event;
            }
        }
    }

    /// Byte sizes of the fields of a transmitted message, as encoded.
    /// (`msg` is lent out field by field and left as it was.)
    fn field_bytes(&self, msg: &mut sds::wire::Message, dialect: sds::Dialect) -> FieldBytes {
        use sds::wire::{encoded_len, Message};
        let base = encoded_len(&Message::default(), dialect);
        // The encoded length of one field: moved into an empty message and back.
        fn one<T>(
            msg: &mut Message,
            d: sds::Dialect,
            base: usize,
            f: fn(&mut Message) -> &mut T,
        ) -> u64 {
            let mut m = Message::default();
            std::mem::swap(f(&mut m), f(msg));
            let n = encoded_len(&m, d).saturating_sub(base) as u64;
            std::mem::swap(f(&mut m), f(msg));
            n
        }
        FieldBytes {
            content: one(msg, dialect, base, |m| &mut m.content),
            bloom: one(msg, dialect, base, |m| &mut m.bloom_filter),
            history: one(msg, dialect, base, |m| &mut m.causal_history),
            repair: one(msg, dialect, base, |m| &mut m.repair_request),
        }
    }

    fn broadcast(&mut self, p: usize, tx: Transmit) {
        let Some(&c) = self.chan_index.get(&tx.channel) else {
            let name = self.names[p].clone();
            self.anomaly(format!(
                "{name} transmitted on unknown channel {:?}",
                tx.channel
            ));
            return;
        };
        let len = tx.bytes.len() as u64;
        let ri = reason_index(tx.reason);
        self.by_reason[ri].count += 1;
        self.by_reason[ri].bytes += len;
        self.part_bytes[p] += len;
        let m = self.parse_id(&tx.message_id);
        let mut first_of = NONE;
        let to_store = self.store_on
            && matches!(
                tx.reason,
                TransmitReason::New | TransmitReason::Resend | TransmitReason::Repair
            );
        // What the store records: the bytes broadcast, or (`keep_bloom =
        // false`) the message re-encoded without its bloom filter.
        let mut stored = None;
        // Decode once per transmission, for byte accounting and causal
        // history, and for the receivers (see `Packet`).
        let mut shared_decoded = None;
        match sds::wire::decode(tx.bytes.clone(), &self.limits) {
            Ok(mut d) => {
                for e in &d.message.causal_history {
                    if let Some(x) = self.parse_id(&e.message_id) {
                        self.msgs[x as usize].named += 1;
                    }
                }
                if tx.reason == TransmitReason::New {
                    if let Some(m) = m {
                        let deps: Box<[u32]> = d
                            .message
                            .causal_history
                            .iter()
                            .filter_map(|e| self.parse_id(&e.message_id))
                            .collect();
                        let info = &mut self.msgs[m as usize];
                        info.lamport = d.message.lamport_timestamp.unwrap_or(0);
                        info.deps = deps;
                        first_of = m;
                    }
                }
                // Only a message the store does not hold yet is re-encoded.
                let lean = to_store
                    && !self.sc.store.keep_bloom
                    && m.is_some_and(|m| !self.store.contains_key(&m));
                if lean {
                    if let Some(bloom) = d.message.bloom_filter.take() {
                        if let Ok(b) = sds::wire::encode(&d.message, d.dialect) {
                            // Decoded from its own bytes: the broadcast's
                            // decode would keep the broadcast's bytes alive
                            // through its bloom filter's slice.
                            stored = Some(Packet::new(Bytes::from(b), &self.limits));
                        }
                        d.message.bloom_filter = Some(bloom);
                    }
                }
                let f = self.field_bytes(&mut d.message, d.dialect);
                self.fields.content += f.content;
                self.fields.bloom += f.bloom;
                self.fields.history += f.history;
                self.fields.repair += f.repair;
                shared_decoded = Some(crate::peer::Decode::of(d));
            }
            Err(e) => {
                let name = self.names[p].clone();
                self.anomaly(format!(
                    "{name}: transmitted bytes ({:?}, {}) do not decode: {e}",
                    tx.reason, tx.message_id
                ));
            }
        }
        let pkt = Arc::new(Packet {
            bytes: tx.bytes,
            decoded: shared_decoded,
        });
        if tx.reason == TransmitReason::New && m.is_none() {
            let name = self.names[p].clone();
            self.anomaly(format!(
                "{name}: new transmission with unknown id {}",
                tx.message_id
            ));
        }
        if tx.reason == TransmitReason::Ephemeral {
            self.ephemeral_expected += self.chan_members[c as usize].len() as u64 - 1;
        }
        if to_store {
            if let Some(m) = m {
                let at = self.now + self.store_latency;
                if let Entry::Vacant(v) = self.store.entry(m) {
                    v.insert((stored.unwrap_or_else(|| pkt.clone()), at));
                    if let Some(keep) = self.store_retention {
                        self.store_order.push_back((at, m));
                        self.expire_store(keep);
                    }
                }
            }
        }
        let members = std::mem::take(&mut self.chan_members[c as usize]);
        for &r in &members {
            let r = r as usize;
            if r == p {
                continue;
            }
            self.net_stats.packets += 1;
            match self.net.transmit(p, r, self.now) {
                LinkOutcome::Arrives(l, dup) => {
                    self.push(
                        self.now + l,
                        Ev::Arrival {
                            to: r as u32,
                            pkt: pkt.clone(),
                            first_of,
                        },
                    );
                    if let Some(l2) = dup {
                        self.net_stats.duplicated += 1;
                        self.push(
                            self.now + l2,
                            Ev::Arrival {
                                to: r as u32,
                                pkt: pkt.clone(),
                                first_of,
                            },
                        );
                    }
                }
                LinkOutcome::Lost(l) => {
                    self.net_stats.lost += 1;
                    if first_of != NONE {
                        self.record_miss(r, first_of, self.now + l);
                    }
                }
                LinkOutcome::Partitioned(l) => {
                    self.net_stats.partitioned += 1;
                    if first_of != NONE {
                        self.record_miss(r, first_of, self.now + l);
                    }
                }
            }
        }
        self.chan_members[c as usize] = members;
    }

    /// The id of message number `m` (what a participant's event named, for
    /// a report: the events reach the engine with their ids parsed).
    fn id_of(&self, m: u32) -> String {
        message_id(m, self.sc.message_id_len, self.sc.seed)
    }

    /// Reports an id that is not one of the simulation's messages.
    fn unknown_message(&mut self, p: usize, detail: String) {
        self.checker.report(Violation {
            kind: ViolationKind::UnknownMessage,
            participant: p,
            message: None,
            at_ms: self.now,
            detail,
        });
    }

    fn on_event(&mut self, p: usize, ev: Obs) {
        match ev {
            Obs::Delivered { m, chan, lost } => {
                let m = match m {
                    Ok(m) if self.sent(m) => m,
                    other => {
                        let id = other.map_or_else(|id| id, |m| self.id_of(m));
                        let detail =
                            format!("{} delivered {id:?}, which nobody sent", self.names[p]);
                        self.unknown_message(p, detail);
                        return;
                    }
                };
                let lost: Vec<u32> = lost.into_iter().filter(|&x| self.sent(x)).collect();
                let (c, sent_at) = (self.msgs[m as usize].channel, self.msgs[m as usize].sent_at);
                if chan != Some(c) {
                    let name = self.names[p].clone();
                    let got =
                        chan.map_or_else(|| "another channel".into(), |x| chan_name(x.into()));
                    self.anomaly(format!(
                        "{name} delivered #{m} on {got}, sent on {}",
                        chan_name(c.into())
                    ));
                }
                let latency = self.now.saturating_sub(sent_at);
                let deps = std::mem::take(&mut self.msgs[m as usize].deps);
                self.checker.on_delivered(p, m, &deps, &lost, self.now);
                self.msgs[m as usize].deps = deps;
                self.latencies.push(latency.min(u64::from(u32::MAX)) as u32);
                self.delivered_pairs += 1;
                self.log_gained(p, c, m);
                self.detected(p, m, false);
            }
            Obs::Acknowledged(m) => match m {
                Ok(m) if self.sent(m) && self.msgs[m as usize].sender as usize == p => {
                    let info = &mut self.msgs[m as usize];
                    if info.acked_at.is_none() {
                        info.acked_at = Some(self.now);
                    }
                }
                other => {
                    let id = other.map_or_else(|id| id, |m| self.id_of(m));
                    let name = self.names[p].clone();
                    self.anomaly(format!(
                        "{name}: Acknowledged for {id}, not one of its messages"
                    ));
                }
            },
            Obs::NotAcknowledged(m) => {
                if let Some(m) = m.filter(|&m| self.sent(m)) {
                    self.msgs[m as usize].not_acked = true;
                }
            }
            Obs::Missing(ms) => {
                for m in ms {
                    if !self.sent(m) {
                        continue;
                    }
                    self.detected(p, m, true);
                    if self.store_on
                        && !self.checker.has(p, m)
                        && self.pending_queries.insert(pair_key(p as u32, m))
                    {
                        self.push(
                            self.now + self.store_delay,
                            Ev::StoreQuery { p: p as u32, m },
                        );
                    }
                }
            }
            Obs::Lost { count, ms } => {
                self.lost_declared += count;
                for m in ms {
                    if self.sent(m) {
                        self.checker.on_lost(p, m);
                    }
                }
            }
            Obs::Ephemeral => self.ephemeral_received += 1,
        }
    }

    /// A participant's send is due: draws what it sends, does the engine's
    /// bookkeeping, and hands the core call to the participant's peer for
    /// the next window, at this event's own time and sequence number `seq`
    /// (so before anything else due after it: the results are those of a
    /// call made here).
    fn do_send(&mut self, p: usize, seq: u64) {
        let wl = self.sc.workload.clone();
        let interval = wl.interval_s * 1000.0;
        let gap = match wl.arrival {
            Arrival::Poisson => self.wl_rng.exp(interval),
            Arrival::Fixed => interval * (1.0 + wl.jitter * (2.0 * self.wl_rng.next_f64() - 1.0)),
        };
        let next = self.now + (gap.round() as u64).max(1);
        if next < self.workload_end {
            self.push(next, Ev::Send { p: p as u32 });
        }
        let chans = &self.member_chans[p];
        let c = chans[self.wl_rng.below(chans.len() as u64) as usize];
        let size = self
            .wl_rng
            .range_inclusive(wl.content_min_bytes as u64, wl.content_max_bytes as u64)
            as usize;
        let ephemeral = self.wl_rng.chance(wl.ephemeral_share);
        if !self.online[p] {
            self.sends_skipped += 1;
            return;
        }
        let channel = self.chan_names[c as usize].clone();
        let send = if ephemeral {
            let tag = self.ephemeral_sent;
            self.ephemeral_sent += 1;
            crate::peer::SendCall {
                channel,
                message: None,
                size,
                tag: u64::MAX - tag,
            }
        } else {
            let m = self.msgs.len() as u32;
            self.msgs.push(MsgInfo {
                sender: p as u32,
                channel: c,
                sent_at: self.now,
                lamport: 0,
                deps: Box::new([]),
                acked_at: None,
                not_acked: false,
                store_dropped: false,
                named: 0,
            });
            self.last_send = self.now;
            self.expected_pairs += self.chan_members[c as usize].len() as u64 - 1;
            self.checker.on_own_send(p, m);
            self.log_gained(p, c, m);
            crate::peer::SendCall {
                channel,
                message: Some((m, self.id_of(m))),
                size,
                tag: u64::from(m),
            }
        };
        // Into the queue with this event's sequence number, ahead of the
        // rest: no event due before it is left (this global event was the
        // earliest).
        self.queue.push_first(
            self.now,
            seq,
            Ev::Sending {
                p: p as u32,
                send: Box::new(send),
            },
        );
    }

    /// Runs to the end and returns the report.
    pub fn run(&mut self) -> Report {
        self.run_with_progress(&mut |_, _| {})
    }

    /// Runs to the end, calling `progress(now_ms, end_ms)` at every sample.
    pub fn run_with_progress(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Report {
        self.run_with_events(&mut |now, end, _| progress(now, end))
    }

    /// Runs to the end, calling `progress(now_ms, end_ms, events)` at every
    /// sample, where `events` counts the simulated events processed so far
    /// (to see where a long run spends its wall time).
    pub fn run_with_events(&mut self, progress: &mut dyn FnMut(u64, u64, u64)) -> Report {
        let wall = Instant::now();
        loop {
            let g = self.globals.peek().map(|i| (i.time, i.seq));
            let l = self.queue.peek();
            let global_first = match (g, l) {
                (None, None) => break,
                (Some(g), Some(l)) => g < l,
                (g, _) => g.is_some(),
            };
            let first = if global_first { g } else { l };
            if first.is_some_and(|(t, _)| t > self.end) {
                break;
            }
            if global_first {
                let Some(item) = self.globals.pop() else {
                    break;
                };
                self.now = item.time;
                self.events += 1;
                match item.ev {
                    Ev::Send { p } => self.do_send(p as usize, item.seq),
                    Ev::Churn { p, online } => self.churn(p as usize, online),
                    Ev::Sample => {
                        self.timeline.push(self.sample());
                        progress(self.now, self.end, self.events);
                        let next = self.now + self.sc.sample_interval_ms;
                        if next <= self.end {
                            self.push(next, Ev::Sample);
                        }
                    }
                    other => unreachable!("not a global event: {other:?}"),
                }
                self.note_consistency();
            } else if let Some(l) = l {
                // A window: from the earliest participant event, up to the
                // lookahead, the next global event and the end.
                let mut bound = (l.0.saturating_add(self.lookahead), 0).min((self.end + 1, 0));
                if let Some(g) = g {
                    bound = bound.min(g);
                }
                if bound <= l {
                    bound = (l.0, l.1 + 1);
                }
                self.run_window(bound);
            }
        }
        self.now = self.end;
        if self.timeline.last().is_none_or(|s| ms(s.t_s) != self.end) {
            self.timeline.push(self.sample());
        }
        progress(self.end, self.end, self.events);
        let wall = wall.elapsed().as_secs_f64();
        self.finish(wall)
    }

    fn note_consistency(&mut self) {
        let consistent = self.inconsistent == 0;
        if consistent != self.was_consistent {
            self.was_consistent = consistent;
            self.transitions.push((self.now, consistent));
        }
    }

    /// Runs the participant and store events before `bound` ((time, seq)):
    /// each participant's on its peer (in parallel), then all of them
    /// replayed in global order to apply their outputs.
    fn run_window(&mut self, bound: (u64, u64)) {
        let mut local = 0usize;
        while let Some(top) = self.queue.peek() {
            if top >= bound {
                break;
            }
            let Some(Item { time, seq, ev }) = self.queue.pop() else {
                break;
            };
            let (p, lev) = match ev {
                Ev::Arrival { to, pkt, first_of } => (to, LocalEv::Arrival { pkt, first_of }),
                Ev::Sending { p, send } => (p, LocalEv::Send(send)),
                Ev::Timer { p, at } => (p, LocalEv::Timer { at }),
                Ev::StoreReply {
                    p,
                    m,
                    pkt: Some(pkt),
                } => (p, LocalEv::Reply { m, pkt }),
                ev => {
                    self.window.push_in_order(Item { time, seq, ev });
                    continue;
                }
            };
            self.peers[p as usize].give(time, seq, lev);
            self.window.push_in_order(Item {
                time,
                seq,
                ev: Ev::Done { p },
            });
            local += 1;
        }
        let (epoch, end) = (self.epoch, bound.0);
        // A window of a few events is cheaper on this thread than handed to
        // the helpers (either way gives the same records).
        match self.pool.as_mut() {
            Some(pool) if local >= 4 => {
                pool.run(&mut self.parts, &mut self.peers, &self.online, epoch, end)
            }
            _ => crate::workers::run_range(
                &mut self.parts,
                &mut self.peers,
                &self.online,
                epoch,
                end,
            ),
        }
        self.in_window = true;
        self.bound_time = bound.0;
        while let Some(item) = self.window.pop() {
            self.now = item.time;
            self.events += 1;
            match item.ev {
                Ev::Done { p } => {
                    let p = p as usize;
                    match self.peers[p].take() {
                        Some(rec) => {
                            if matches!(rec.done, Done::Sent { .. }) {
                                // Counted as its `Send` event.
                                self.events -= 1;
                            }
                            self.apply_record(p, rec)
                        }
                        None => unreachable!("participant {p} has no record for its event"),
                    }
                }
                Ev::StoreQuery { p, m } => self.store_query(p, m),
                Ev::StoreReply { p, m, pkt: None } => {
                    self.pending_queries.remove(&pair_key(p, m));
                    self.store_stats.misses += 1;
                }
                other => unreachable!("not a window event: {other:?}"),
            }
            self.note_consistency();
        }
        self.in_window = false;
    }

    /// Drops what the store recorded more than `keep` ms ago (recording
    /// times only grow: `at` is the broadcast time plus a fixed latency).
    fn expire_store(&mut self, keep: u64) {
        while let Some(&(at, m)) = self.store_order.front() {
            if at.saturating_add(keep) >= self.now {
                break;
            }
            self.store_order.pop_front();
            self.store.remove(&m);
            self.msgs[m as usize].store_dropped = true;
            self.store_stats.expired += 1;
        }
    }

    fn store_query(&mut self, p: u32, m: u32) {
        let (pu, key) = (p as usize, pair_key(p, m));
        if !self.online[pu] || self.checker.has(pu, m) {
            self.pending_queries.remove(&key);
        } else {
            self.store_stats.queries += 1;
            let arrives = self.now + self.store_latency;
            let pkt = self
                .store
                .get(&m)
                .filter(|(_, at)| *at <= arrives)
                .map(|(b, _)| b.clone());
            if pkt.is_none() && self.msgs[m as usize].store_dropped {
                self.store_stats.expired_queries += 1;
            }
            self.push(arrives + self.store_latency, Ev::StoreReply { p, m, pkt });
        }
    }

    fn sample(&self) -> Sample {
        Sample {
            t_s: self.now as f64 / 1000.0,
            ratio: if self.expected_pairs == 0 {
                1.0
            } else {
                self.delivered_pairs as f64 / self.expected_pairs as f64
            },
            delivered: self.delivered_pairs,
            expected: self.expected_pairs,
        }
    }

    fn churn(&mut self, p: usize, online: bool) {
        if online {
            self.offline_depth[p] = self.offline_depth[p].saturating_sub(1);
            if self.offline_depth[p] > 0 || self.online[p] {
                return;
            }
            self.set_online(p, true);
            let now = self.now;
            for m in std::mem::take(&mut self.offline_misses[p]) {
                if let Some(miss) = self.misses.get_mut(&pair_key(p as u32, m)) {
                    if miss.detected.is_none() && miss.due < now {
                        miss.due = now;
                    }
                }
            }
            if let Some(h) = self.hook.as_mut() {
                h.came_online(p, &mut self.parts[p], now);
            }
            self.peers[p].armed = None;
            self.drain(p);
        } else {
            self.offline_depth[p] += 1;
            if self.offline_depth[p] > 1 {
                return;
            }
            self.set_online(p, false);
            self.peers[p].armed = None;
            if let Some(h) = self.hook.as_mut() {
                h.went_offline(p, &self.parts[p], self.now);
            }
        }
    }

    // ------------------------------------------------------------ finish

    fn final_logs(&mut self) {
        let max_log = self
            .parts
            .first()
            .map(|p| p.config().max_log)
            .unwrap_or(usize::MAX);
        for c in 0..self.chan_names.len() {
            let mut expected: Vec<u32> = (0..self.msgs.len() as u32)
                .filter(|&m| self.msgs[m as usize].channel as usize == c)
                .collect();
            expected.sort_by_key(|&m| (self.msgs[m as usize].lamport, m));
            let keep = expected.len().min(max_log);
            let expected = &expected[expected.len() - keep..];
            let members = self.chan_members[c].clone();
            for &p in &members {
                let p = p as usize;
                if !self.online[p] {
                    continue;
                }
                let log = self.parts[p]
                    .channel_state(&self.chan_names[c])
                    .map(|s| s.log)
                    .unwrap_or_default();
                let mut prev: Option<(u64, u32)> = None;
                let mut ids = Vec::with_capacity(log.len());
                for (pos, id) in log.iter().enumerate() {
                    let Some(m) = self.parse_id(id) else {
                        let detail = format!(
                            "{} channel {}: log position {pos} holds {id:?}, which nobody sent",
                            self.names[p], self.chan_names[c]
                        );
                        self.unknown_message(p, detail);
                        continue;
                    };
                    let key = (self.msgs[m as usize].lamport, m);
                    if prev.is_some_and(|k| k >= key) {
                        self.checker.report(Violation {
                            kind: ViolationKind::LogOrder,
                            participant: p,
                            message: Some(m),
                            at_ms: self.now,
                            detail: format!(
                                "{} channel {}: log position {pos} ({id}, lamport {}) is not after the previous entry",
                                self.names[p], self.chan_names[c], key.0
                            ),
                        });
                    }
                    prev = Some(key);
                    ids.push(m);
                }
                if self.sc.expect_full_delivery && ids != expected {
                    let pos = ids
                        .iter()
                        .zip(expected)
                        .position(|(a, b)| a != b)
                        .unwrap_or(ids.len().min(expected.len()));
                    let describe = |m: Option<&u32>| match m {
                        Some(&m) => format!(
                            "#{m} (from {})",
                            self.names[self.msgs[m as usize].sender as usize]
                        ),
                        None => "nothing".into(),
                    };
                    let detail = format!(
                        "channel {}: after healing, the log has {} entries where {} were sent; first difference at position {pos}: expected {}, found {}",
                        self.chan_names[c],
                        ids.len(),
                        expected.len(),
                        describe(expected.get(pos)),
                        describe(ids.get(pos))
                    );
                    self.checker.report(Violation {
                        kind: ViolationKind::FinalLog,
                        participant: p,
                        message: expected.get(pos).copied(),
                        at_ms: self.now,
                        detail,
                    });
                }
            }
        }
    }

    /// Messages delivered to every member, messages missing somewhere, and
    /// missing (member, message) pairs in all and of messages that no causal
    /// history ever named.
    fn completeness(&self) -> (u64, u64, u64, u64) {
        let (mut complete, mut incomplete, mut missing, mut unnamed) = (0, 0, 0, 0);
        for (m, info) in self.msgs.iter().enumerate() {
            let lacking = self.chan_members[info.channel as usize]
                .iter()
                .filter(|&&p| !self.checker.has(p as usize, m as u32))
                .count() as u64;
            if lacking == 0 {
                complete += 1;
            } else {
                incomplete += 1;
                missing += lacking;
                if info.named == 0 {
                    unnamed += lacking;
                }
            }
        }
        (complete, incomplete, missing, unnamed)
    }

    fn finish(&mut self, wall: f64) -> Report {
        self.final_logs();
        let (complete, incomplete, missing_pairs, missing_unnamed) = self.completeness();
        let sc = &self.sc;
        let s_ms = sc.workload.interval_s * 1000.0;
        let cfg = self.parts[0].config().clone();

        // Latency.
        let mut lat: Vec<u64> = self.latencies.iter().map(|&v| u64::from(v)).collect();
        let latency_ms = Percentiles::of(&mut lat);
        let latency_histogram = histogram(&lat);

        // Acks.
        let mut ack_times: Vec<u64> = Vec::new();
        let (mut not_acked, mut pending) = (0, 0);
        for m in &self.msgs {
            match m.acked_at {
                Some(t) => ack_times.push(t - m.sent_at),
                None if m.not_acked => not_acked += 1,
                None => pending += 1,
            }
        }
        let total_msgs = self.msgs.len() as u64;
        let time_to_ack_ms = Percentiles::of(&mut ack_times);
        let ack_p90 = quantile_with_infinite(&ack_times, total_msgs, 0.9);

        // Detection.
        let mut det: Vec<u64> = Vec::new();
        let (mut by_event, mut by_delivery) = (0, 0);
        for miss in self.misses.values() {
            if let Some(t) = miss.detected {
                det.push(t.saturating_sub(miss.due));
                if miss.by_event {
                    by_event += 1;
                } else {
                    by_delivery += 1;
                }
            }
        }
        let missed = self.misses.len() as u64;
        let time_ms = Percentiles::of(&mut det);
        let detect_p90 = quantile_with_infinite(&det, missed, 0.9);

        // Consistency.
        let mut disruption_end = 0u64;
        if sc.has_loss() || sc.network.duplicate > 0.0 {
            disruption_end = disruption_end.max(sc.loss_end_ms().min(self.end));
        }
        for p in &sc.partitions {
            disruption_end = disruption_end.max(ms(p.end_s));
        }
        if sc.churn.fraction > 0.0 {
            disruption_end = disruption_end.max(sc.churn_end_ms());
        }
        for o in &sc.churn.offline {
            disruption_end = disruption_end.max(ms(o.end_s));
        }
        let (reference, kind) = if disruption_end > self.last_send {
            (disruption_end, "heal")
        } else {
            (self.last_send, "last send")
        };
        let mut state_at_ref = true;
        let mut consistent_at = None;
        for &(t, c) in &self.transitions {
            if t <= reference {
                state_at_ref = c;
            } else if consistent_at.is_none() && c {
                consistent_at = Some(t);
            }
        }
        if state_at_ref {
            consistent_at = Some(reference);
        }
        let consistent_at_end = self.inconsistent == 0;
        let time_to_consistency = consistent_at.map(|t| t - reference);

        let furps = Furps {
            ack_within_s: ack_p90.is_some_and(|v| v as f64 <= s_ms),
            detect_90pct_within_3s: missed == 0
                || detect_p90.is_some_and(|v| v as f64 <= 3.0 * s_ms),
            consistent_within_6s: time_to_consistency.is_some_and(|v| v as f64 <= 6.0 * s_ms),
            s_seconds: sc.workload.interval_s,
            ack_p90_ms: ack_p90,
            detect_p90_ms: detect_p90,
            consistency_ms: time_to_consistency,
        };

        // Bytes.
        let total: u64 = self.by_reason.iter().map(|r| r.bytes).sum();
        let f = self.fields;
        let n = sc.participants;
        let bytes = WireBytes {
            total,
            content: f.content,
            bloom: f.bloom,
            causal_history: f.history,
            repair_request: f.repair,
            other: total.saturating_sub(f.content + f.bloom + f.history + f.repair),
            per_content_message: if total_msgs == 0 {
                0.0
            } else {
                total as f64 / total_msgs as f64
            },
            per_participant_mean: total as f64 / n as f64,
            per_participant_max: self.part_bytes.iter().copied().max().unwrap_or(0),
            by_reason: REASONS
                .iter()
                .zip(self.by_reason.iter())
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            received_total: self.received_bytes,
            store_replies: self.store_reply_bytes,
        };

        let mut stats = sds::Stats::default();
        for p in &self.parts {
            stats += p.stats();
        }
        let protocol = stats_map(&stats);

        let mut checked = vec![
            "no delivery before dependencies".to_string(),
            "no duplicate delivery".to_string(),
            "logs in (lamport, id) order".to_string(),
        ];
        if sc.expect_full_delivery {
            checked.push("after healing every log holds every message, in the same order".into());
        } else {
            checked.push("full delivery not expected (reported only)".into());
        }
        let mut violations: Vec<String> = self
            .checker
            .violations
            .iter()
            .map(|v| {
                let msg = match v.message {
                    Some(m) if (m as usize) < self.msgs.len() => format!(
                        "message {} (#{m}, sent by {} at {:.3}s)",
                        message_id(m, sc.message_id_len, sc.seed),
                        self.names[self.msgs[m as usize].sender as usize],
                        self.msgs[m as usize].sent_at as f64 / 1000.0
                    ),
                    _ => "message -".into(),
                };
                format!(
                    "seed {}, participant {}, {msg}: {v}",
                    sc.seed, self.names[v.participant]
                )
            })
            .collect();
        if self.checker.violation_count > violations.len() as u64 {
            violations.push(format!(
                "... and {} more",
                self.checker.violation_count - violations.len() as u64
            ));
        }
        let ok = self.checker.violation_count == 0;
        if self.anomaly_count > self.anomalies.len() as u64 {
            let more = self.anomaly_count - self.anomalies.len() as u64;
            self.anomalies
                .push(format!("... and {more} more anomalies"));
        }
        let bloom_bytes = cfg.bloom_params().map(|p| p.words() * 8).unwrap_or(0);
        let settings = Settings {
            channels: sc.channels.count,
            membership: match sc.channels.membership {
                Membership::All => "all participants in all channels".into(),
                Membership::Subset => {
                    format!("{} channel(s) per participant", sc.channels.per_participant)
                }
            },
            dialect: format!("{:?}", cfg.default_dialect).to_lowercase(),
            interval_s: sc.workload.interval_s,
            arrival: format!("{:?}", sc.workload.arrival).to_lowercase(),
            content_bytes: (sc.workload.content_min_bytes, sc.workload.content_max_bytes),
            ephemeral_share: sc.workload.ephemeral_share,
            senders: ((sc.workload.sender_share * n as f64).round() as usize).min(n),
            workload_s: (sc.workload.start_s, sc.workload.start_s + sc.duration_s),
            latency_ms: (
                sc.network.latency_min_ms,
                sc.network.latency_max_ms,
                sc.network.jitter_ms,
            ),
            loss_model: match sc.network.loss_model {
                LossModel::Bernoulli => "independent".into(),
                LossModel::GilbertElliott => "Gilbert-Elliott".into(),
            },
            loss: match sc.network.loss_model {
                LossModel::Bernoulli => sc.network.loss,
                LossModel::GilbertElliott => sc.network.gilbert_elliott.mean_loss(),
            },
            loss_window_s: (sc.network.loss_start_s, sc.loss_end_ms() as f64 / 1000.0),
            duplicate: sc.network.duplicate,
            partitions: sc.partitions.len(),
            churn: (sc.churn.fraction, sc.churn.offline.len()),
            store: sc.store.enabled,
            repair: cfg.repair.enabled,
            repair_window_ms: (cfg.repair.t_min_ms, cfg.repair.t_max_ms),
            response_groups: cfg.repair.num_response_groups,
            causal_history_len: cfg.causal_history_len,
            resend_interval_ms: cfg.resend_interval_ms,
            sync_interval_ms: cfg.sync_interval_ms,
            bloom_bytes,
            expect_full_delivery: sc.expect_full_delivery,
            heal_s: sc.heal_ms() as f64 / 1000.0,
            end_s: self.end as f64 / 1000.0,
        };
        let mut store_stats = self.store_stats.clone();
        store_stats.messages_held = self.store.len() as u64;
        Report {
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            seed: sc.seed,
            participants: n,
            delivery_ratio: if self.expected_pairs == 0 {
                1.0
            } else {
                self.delivered_pairs as f64 / self.expected_pairs as f64
            },
            invariants_ok: ok,
            furps,
            wall_seconds: wall,
            events_per_second: if wall > 0.0 {
                self.events as f64 / wall
            } else {
                0.0
            },
            events: self.events,
            settings,
            delivery: Delivery {
                messages: total_msgs,
                expected_pairs: self.expected_pairs,
                delivered_pairs: self.delivered_pairs,
                messages_complete: complete,
                messages_incomplete: incomplete,
                missing_pairs,
                missing_pairs_never_named: missing_unnamed,
                messages_never_named: self.msgs.iter().filter(|m| m.named == 0).count() as u64,
                sends_skipped_offline: self.sends_skipped,
                ephemeral_sent: self.ephemeral_sent,
                ephemeral_pairs: (self.ephemeral_expected, self.ephemeral_received),
                dependencies_declared_lost: self.lost_declared,
            },
            timeline: self.timeline.clone(),
            latency_ms,
            latency_histogram,
            acks: Acks {
                acknowledged: time_to_ack_ms.count,
                not_acknowledged: not_acked,
                pending,
                time_to_ack_ms,
            },
            detection: Detection {
                missed_pairs: missed,
                detected_by_missing_event: by_event,
                detected_by_delivery: by_delivery,
                undetected: missed - by_event - by_delivery,
                time_ms,
            },
            consistency: Consistency {
                reference_s: reference as f64 / 1000.0,
                reference_kind: kind.into(),
                consistent_at_s: consistent_at.map(|t| t as f64 / 1000.0),
                time_to_consistency_ms: time_to_consistency,
                consistent_at_end,
            },
            bytes,
            store: store_stats,
            network: self.net_stats.clone(),
            protocol,
            invariants: Invariants {
                ok,
                violation_count: self.checker.violation_count,
                violations,
                checked,
            },
            anomalies: self.anomalies.clone(),
        }
    }
}

/// Content of message `tag` from participant `p`: unique (ephemeral ids are
/// content hashes), `size` bytes.
pub(crate) fn make_content(size: usize, tag: u64, p: usize) -> Bytes {
    let head = format!("{tag:016x}:{p}:");
    let mut v = Vec::with_capacity(size.max(head.len()));
    v.extend_from_slice(head.as_bytes());
    let mut h = mix64(tag ^ p as u64);
    while v.len() < size {
        h = mix64(h);
        v.push(b'a' + (h % 26) as u8);
    }
    // Keep it unique even when `size` is smaller than the header.
    if v.len() > size && size >= 17 {
        v.truncate(size);
    }
    Bytes::from(v)
}

/// Latency histogram: 40 buckets up to the 99th percentile (the rest in the last).
fn histogram(sorted: &[u64]) -> Vec<Bucket> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let hi = crate::report::nearest_rank(sorted, 0.99)
        .unwrap_or(1)
        .max(1);
    let buckets = 40u64;
    let width = hi.div_ceil(buckets).max(1);
    let mut out: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            lo_ms: i * width,
            hi_ms: (i + 1) * width,
            count: 0,
        })
        .collect();
    for &v in sorted {
        let i = ((v / width) as usize).min(out.len() - 1);
        out[i].count += 1;
    }
    if let Some(last) = out.last_mut() {
        last.hi_ms = last.hi_ms.max(sorted[sorted.len() - 1] + 1);
    }
    out
}

fn stats_map(s: &sds::Stats) -> BTreeMap<String, u64> {
    let pairs: [(&str, u64); 22] = [
        ("sent", s.sent),
        ("resent", s.resent),
        ("syncs_sent", s.syncs_sent),
        ("ephemeral_sent", s.ephemeral_sent),
        ("received", s.received),
        ("syncs_received", s.syncs_received),
        ("ephemeral_received", s.ephemeral_received),
        ("delivered", s.delivered),
        ("duplicates", s.duplicates),
        ("too_old", s.too_old),
        ("buffered", s.buffered),
        ("missing_reported", s.missing_reported),
        ("lost", s.lost),
        ("buffer_overflows", s.buffer_overflows),
        ("acknowledged", s.acknowledged),
        ("possibly_acknowledged", s.possibly_acknowledged),
        ("not_acknowledged", s.not_acknowledged),
        ("bad_blooms", s.bad_blooms),
        ("repair_requests_sent", s.repair_requests_sent),
        ("repair_requests_received", s.repair_requests_received),
        ("repair_responses_sent", s.repair_responses_sent),
        ("repair_requests_expired", s.repair_requests_expired),
    ];
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Runs a scenario to the end.
pub fn run(scenario: &Scenario) -> Result<Report, SimError> {
    Ok(Simulation::new(scenario)?.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Participants' threads parse ids and channel names back to numbers:
    /// every name the engine makes parses to its number, nothing else does.
    #[test]
    fn names_parse_back_to_their_numbers() {
        for c in [0usize, 1, 9, 10, 123, 65_535] {
            assert_eq!(parse_chan(&chan_name(c)), Some(c as u16), "{c}");
        }
        for bad in [
            "channel-",
            "channel-01",
            "channel-65536",
            "channel-+1",
            "channel-1 ",
            "Channel-1",
            "c-1",
        ] {
            assert_eq!(parse_chan(bad), None, "{bad}");
        }
        for len in [16, 32, 64] {
            for m in [0u32, 1, 0xabc, u32::MAX] {
                assert_eq!(parse_msg(&message_id(m, len, 7), len), Some(m), "{m} {len}");
            }
        }
        let id = message_id(5, 64, 7);
        assert_eq!(parse_msg(&id, 32), None, "wrong length");
        assert_eq!(parse_msg(&format!("1{}", &id[1..]), 64), None, "beyond u32");
        assert_eq!(parse_msg(&format!("{}x{}", &id[..15], &id[16..]), 64), None);
    }

    #[test]
    fn hex_prefixes_parse_like_from_str_radix() {
        for text in [
            "0000000000000000",
            "00000000000012aE",
            "ffffffffffffffff",
            "0123456789abcdef",
        ] {
            assert_eq!(
                parse_hex16(text.as_bytes()),
                u64::from_str_radix(text, 16).ok(),
                "{text}"
            );
        }
        for bad in ["000000000000000g", "00000000000000 1", "+000000000000001"] {
            assert_eq!(parse_hex16(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn ids_sort_like_indices_and_parse_back() {
        let a = message_id(9, 64, 1);
        let b = message_id(10, 64, 1);
        assert_eq!(a.len(), 64);
        assert!(a < b);
        assert_eq!(&a[..16], "0000000000000009");
        assert_eq!(message_id(3, 16, 5), "0000000000000003");
    }

    #[test]
    fn content_is_unique_and_sized() {
        assert_eq!(make_content(100, 1, 2).len(), 100);
        assert_ne!(make_content(100, 1, 2), make_content(100, 2, 2));
    }
}
