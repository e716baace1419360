//! The engine's event queue: a calendar of one-millisecond buckets.
//!
//! Events pop in (time, seq) order, exactly as from a `BinaryHeap` of
//! [`Timed`] items, but an event due within [`HORIZON_MS`] of the earliest
//! time still queued is pushed and popped in O(1): it is appended to the
//! bucket of its millisecond, and a bucket is a FIFO. Sequence numbers grow
//! with every push, so FIFO order within a bucket is seq order. Packets
//! (tens of milliseconds ahead) are the bulk of the events; timers further
//! ahead wait in a heap and move into their bucket when the horizon reaches
//! them, before any later push can land in that bucket, so the order stays
//! exact.
//!
//! The queue's floor (`base`) only moves when an event is popped, to that
//! event's time. The engine's clock is never behind the last popped event,
//! so pushes never go below the floor; one that would (a caller bug) is kept
//! in a separate heap and still pops in order.

use crate::peer::Timed;
use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds covered by the buckets (a power of two).
pub(crate) const HORIZON_MS: u64 = 1 << 12;

/// A priority queue of [`Timed`] events, earliest (time, seq) first.
pub(crate) struct Calendar<E> {
    /// `buckets[t % HORIZON_MS]` holds the events due at `t`, for
    /// `base <= t < base + HORIZON_MS`, as (seq, event) in push order.
    buckets: Vec<VecDeque<(u64, E)>>,
    /// No event in the buckets is due before `base`.
    base: u64,
    /// Every bucket of `[base, scan)` is empty (where the earliest one is
    /// looked for next).
    scan: u64,
    /// Events in the buckets.
    in_buckets: usize,
    /// Events due at `base + HORIZON_MS` or later.
    far: BinaryHeap<Timed<E>>,
    /// Events pushed below `base` (never, from the engine).
    early: BinaryHeap<Timed<E>>,
}

impl<E> Calendar<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Calendar {
            buckets: (0..HORIZON_MS).map(|_| VecDeque::new()).collect(),
            base: 0,
            scan: 0,
            in_buckets: 0,
            far: BinaryHeap::new(),
            early: BinaryHeap::new(),
        }
    }

    fn bucket(&mut self, time: u64) -> &mut VecDeque<(u64, E)> {
        &mut self.buckets[(time % HORIZON_MS) as usize]
    }

    /// Queues `ev` at (`time`, `seq`); `seq` must be larger than that of
    /// every event pushed before.
    pub fn push(&mut self, time: u64, seq: u64, ev: E) {
        self.put(time, seq, ev, false);
    }

    /// Queues `ev` at (`time`, `seq`) ahead of every queued event, whose
    /// (time, seq) must all be later (the engine hands the core call of a
    /// global event, the earliest of all, to the next window this way,
    /// keeping that event's own sequence number).
    pub fn push_first(&mut self, time: u64, seq: u64, ev: E) {
        debug_assert!(self.peek().is_none_or(|first| (time, seq) < first));
        self.put(time, seq, ev, true);
    }

    /// Queues `ev` in its bucket's back, or its front if `first`.
    fn put(&mut self, time: u64, seq: u64, ev: E, first: bool) {
        if time < self.base {
            self.early.push(Timed { time, seq, ev });
        } else if time - self.base >= HORIZON_MS {
            self.far.push(Timed { time, seq, ev });
        } else {
            let bucket = self.bucket(time);
            if first {
                bucket.push_front((seq, ev));
            } else {
                bucket.push_back((seq, ev));
            }
            self.in_buckets += 1;
            self.scan = self.scan.min(time);
        }
    }

    /// The time of the earliest non-empty bucket (moves `scan` up to it).
    fn first_bucket(&mut self) -> Option<u64> {
        if self.in_buckets == 0 {
            return None;
        }
        while self.bucket(self.scan).is_empty() {
            self.scan += 1;
        }
        Some(self.scan)
    }

    /// (time, seq) of the earliest event.
    pub fn peek(&mut self) -> Option<(u64, u64)> {
        if let Some(e) = self.early.peek() {
            return Some((e.time, e.seq));
        }
        match self.first_bucket() {
            Some(t) => self.bucket(t).front().map(|(seq, _)| (t, *seq)),
            None => self.far.peek().map(|e| (e.time, e.seq)),
        }
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<Timed<E>> {
        if let Some(e) = self.early.pop() {
            return Some(e);
        }
        // With only far events, the floor jumps to the first of them, which
        // moves it (and those due within the horizon) into their buckets.
        let time = match self.first_bucket() {
            Some(t) => t,
            None => self.far.peek()?.time,
        };
        self.advance(time);
        let (seq, ev) = self.bucket(time).pop_front()?;
        self.in_buckets -= 1;
        Some(Timed { time, seq, ev })
    }

    /// Moves the floor up to `time` (no bucket event is earlier) and the far
    /// events the horizon now covers into their buckets, in order.
    fn advance(&mut self, time: u64) {
        if time <= self.base {
            return;
        }
        self.base = time;
        self.scan = self.scan.max(time);
        while self
            .far
            .peek()
            .is_some_and(|e| e.time - self.base < HORIZON_MS)
        {
            if let Some(Timed { time, seq, ev }) = self.far.pop() {
                self.bucket(time).push_back((seq, ev));
                self.in_buckets += 1;
                self.scan = self.scan.min(time);
            }
        }
    }

    /// Number of queued events.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.in_buckets + self.far.len() + self.early.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pushes and pops as the engine does (pushes at or after the last
    /// popped time, increasing seqs), against a `BinaryHeap`.
    #[test]
    fn pops_in_the_order_of_a_binary_heap() {
        let op = prop_oneof![
            // A push `ahead` ms after the clock: packets, timers, far timers.
            3 => (0u64..200).prop_map(Some),
            1 => (0u64..3 * HORIZON_MS).prop_map(Some),
            1 => (0u64..100_000).prop_map(Some),
            // A pop.
            4 => Just(None),
            // A push ahead of everything queued (`push_first`): at the
            // earliest event's time with a smaller seq, or `ahead` ms after
            // the clock into an empty queue.
            1 => (0u64..3 * HORIZON_MS).prop_map(|ahead| Some(u64::MAX - ahead)),
        ];
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&proptest::collection::vec(op, 0..600), |ops| {
                let mut cal = Calendar::new();
                let mut heap: BinaryHeap<Timed<u64>> = BinaryHeap::new();
                let (mut now, mut seq) = (0u64, 1u64 << 32);
                for op in ops {
                    match op {
                        Some(first) if first > u64::MAX - 3 * HORIZON_MS => {
                            // Ordinary pushes' seqs are 2^20 apart, so the
                            // few below the earliest's are free.
                            let (time, s) = match heap.peek() {
                                Some(e) => (e.time, e.seq - 1),
                                None => {
                                    seq += 1 << 20;
                                    (now + (u64::MAX - first), seq)
                                }
                            };
                            let ev = u64::MAX - s;
                            cal.push_first(time, s, ev);
                            heap.push(Timed { time, seq: s, ev });
                        }
                        Some(ahead) => {
                            seq += 1 << 20;
                            cal.push(now + ahead, seq, seq);
                            heap.push(Timed {
                                time: now + ahead,
                                seq,
                                ev: seq,
                            });
                        }
                        None => {
                            prop_assert_eq!(cal.peek(), heap.peek().map(|e| (e.time, e.seq)));
                            let (a, b) = (cal.pop(), heap.pop());
                            prop_assert_eq!(
                                a.as_ref().map(|e| (e.time, e.seq, e.ev)),
                                b.as_ref().map(|e| (e.time, e.seq, e.ev))
                            );
                            if let Some(e) = a {
                                now = e.time;
                            }
                        }
                    }
                    prop_assert_eq!(cal.len(), heap.len());
                }
                while let Some(b) = heap.pop() {
                    let a = cal.pop().map(|e| (e.time, e.seq, e.ev));
                    prop_assert_eq!(a, Some((b.time, b.seq, b.ev)));
                }
                prop_assert!(cal.pop().is_none());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_push_below_the_floor_still_pops_first() {
        let mut cal = Calendar::new();
        cal.push(100, 1, 'a');
        cal.push(150, 2, 'b');
        assert_eq!(cal.pop().map(|e| e.ev), Some('a'));
        cal.push(50, 3, 'c');
        assert_eq!(cal.peek(), Some((50, 3)));
        assert_eq!(cal.pop().map(|e| e.ev), Some('c'));
        assert_eq!(cal.pop().map(|e| e.ev), Some('b'));
        assert_eq!(cal.pop().map(|e| e.ev), None);
    }
}
