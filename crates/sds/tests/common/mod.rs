//! A tiny virtual-time broadcast network for behaviour and property tests.
#![allow(dead_code)]

use bytes::Bytes;
use sds::{Config, Event, Participant, Transmit};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

pub const T0: u64 = 1_700_000_000_000;

/// SplitMix64, for reproducible network randomness.
#[derive(Clone, Debug)]
pub struct TestRng(pub u64);

impl TestRng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }
}

/// A decision about one transmission to one receiver.
pub type DropFn = Box<dyn FnMut(usize, usize, &Transmit) -> bool>;

/// Participants connected by a lossy broadcast network, driven in virtual time.
pub struct Net {
    pub nodes: Vec<Participant>,
    pub events: Vec<Vec<(u64, Event)>>,
    pub sent: Vec<Vec<(u64, Transmit)>>,
    pub now: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize, usize)>>,
    payloads: HashMap<u64, Bytes>,
    seq: u64,
    pub rng: TestRng,
    pub loss: f64,
    pub dup: f64,
    pub latency: (u64, u64),
    /// Extra filter: return true to drop this transmission for this receiver.
    pub drop: Option<DropFn>,
    /// Whether node i is online (offline nodes neither send nor receive).
    pub online: Vec<bool>,
}

impl Net {
    pub fn new(names: &[&str], config: Config, seed: u64) -> Net {
        let nodes: Vec<Participant> = names
            .iter()
            .map(|n| {
                Participant::new(
                    *n,
                    Config {
                        seed,
                        ..config.clone()
                    },
                )
                .unwrap()
            })
            .collect();
        let k = nodes.len();
        Net {
            nodes,
            events: vec![Vec::new(); k],
            sent: vec![Vec::new(); k],
            now: T0,
            queue: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
            rng: TestRng(seed ^ 0x5eed),
            loss: 0.0,
            dup: 0.0,
            latency: (10, 100),
            drop: None,
            online: vec![true; k],
        }
    }

    /// Drains node `i`'s outputs: events are recorded, transmissions scheduled.
    pub fn flush(&mut self, i: usize) {
        while let Some(ev) = self.nodes[i].poll_event() {
            self.events[i].push((self.now, ev));
        }
        while let Some(tx) = self.nodes[i].poll_transmit() {
            self.sent[i].push((self.now, tx.clone()));
            if !self.online[i] {
                continue;
            }
            let id = self.seq;
            self.seq += 1;
            self.payloads.insert(id, tx.bytes.clone());
            for j in 0..self.nodes.len() {
                if j == i {
                    continue;
                }
                if let Some(f) = self.drop.as_mut() {
                    if f(i, j, &tx) {
                        continue;
                    }
                }
                if self.rng.chance(self.loss) {
                    continue;
                }
                let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let at = self.now + self.rng.range(self.latency.0, self.latency.1 + 1);
                    self.queue.push(Reverse((at, id, j, i)));
                }
            }
        }
    }

    pub fn flush_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.flush(i);
        }
    }

    pub fn send(&mut self, i: usize, channel: &str, id: &str, content: &[u8]) {
        self.nodes[i]
            .send(channel, id, Bytes::copy_from_slice(content), self.now)
            .unwrap();
        self.flush(i);
    }

    /// Runs the network until virtual time `until`.
    pub fn run_until(&mut self, until: u64) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next_timer = (0..self.nodes.len())
                .filter(|i| self.online[*i])
                .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t.max(self.now), i)))
                .min();
            let t_msg = next_msg.unwrap_or(u64::MAX);
            let t_tim = next_timer.map(|(t, _)| t).unwrap_or(u64::MAX);
            let t = t_msg.min(t_tim);
            if t > until {
                self.now = self.now.max(until);
                return;
            }
            self.now = t;
            if t_msg <= t_tim {
                let Reverse((_, id, to, _from)) = self.queue.pop().unwrap();
                if !self.online[to] {
                    continue;
                }
                let bytes = self.payloads[&id].clone();
                let _ = self.nodes[to].receive(bytes, None, self.now);
                self.flush(to);
            } else {
                let (_, i) = next_timer.unwrap();
                self.nodes[i].handle_timeout(self.now);
                self.flush(i);
            }
        }
    }

    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    pub fn log(&self, i: usize, channel: &str) -> Vec<String> {
        self.nodes[i]
            .channel_state(channel)
            .map(|s| s.log)
            .unwrap_or_default()
    }

    pub fn delivered(&self, i: usize) -> Vec<String> {
        self.events[i]
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Delivered { message_id, .. } => Some(message_id.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn count<F: Fn(&Event) -> bool>(&self, i: usize, f: F) -> usize {
        self.events[i].iter().filter(|(_, e)| f(e)).count()
    }
}

/// Receives every pending transmission of `from` at `to`, returning the events
/// produced at `to`.
pub fn pass(from: &mut Participant, to: &mut Participant, now: u64) -> Vec<Event> {
    while let Some(tx) = from.poll_transmit() {
        to.receive(tx.bytes, None, now).unwrap();
    }
    drain(to)
}

pub fn drain(p: &mut Participant) -> Vec<Event> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

pub fn transmits(p: &mut Participant) -> Vec<Transmit> {
    std::iter::from_fn(|| p.poll_transmit()).collect()
}

pub fn delivered_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered { message_id, .. } => Some(message_id.clone()),
            _ => None,
        })
        .collect()
}
