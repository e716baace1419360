//! Invariants checked during every run: no delivery before dependencies, no
//! duplicate delivery; and, at the end, final logs (see
//! [`crate::Simulation`]).
//!
//! The checker works on indices (participant `p`, message `m`); it is fed
//! by the simulator, and tests can feed it fabricated histories.

use std::collections::HashSet;
use std::fmt;

/// A growable bit set.
#[derive(Debug, Clone, Default)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Whether `i` is in the set.
    pub fn get(&self, i: u32) -> bool {
        let w = (i / 64) as usize;
        w < self.words.len() && self.words[w] & (1u64 << (i % 64)) != 0
    }

    /// Adds `i`; returns whether it was already there.
    pub fn set(&mut self, i: u32) -> bool {
        let w = (i / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        let was = self.words[w] & bit != 0;
        self.words[w] |= bit;
        was
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// A message was delivered before one of its causal dependencies.
    DeliveredBeforeDependency,
    /// A message was delivered twice at one participant.
    DuplicateDelivery,
    /// A delivery, acknowledgement or log entry names a message nobody sent.
    UnknownMessage,
    /// After healing, a log misses messages or differs from the others.
    FinalLog,
    /// A log is not in (lamport timestamp, message id) order.
    LogOrder,
}

impl ViolationKind {
    /// Short name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ViolationKind::DeliveredBeforeDependency => "delivered-before-dependency",
            ViolationKind::DuplicateDelivery => "duplicate-delivery",
            ViolationKind::UnknownMessage => "unknown-message",
            ViolationKind::FinalLog => "final-log",
            ViolationKind::LogOrder => "log-order",
        }
    }
}

/// One violated invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What.
    pub kind: ViolationKind,
    /// Participant index.
    pub participant: usize,
    /// Message index (when the message is known).
    pub message: Option<u32>,
    /// Simulated time (ms).
    pub at_ms: u64,
    /// Human-readable detail (ids, positions).
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at t={:.3}s: {}",
            self.kind.as_str(),
            self.at_ms as f64 / 1000.0,
            self.detail
        )
    }
}

/// Keeps the first violations (all are counted).
pub const MAX_KEPT_VIOLATIONS: usize = 50;

/// Delivery-time invariants.
#[derive(Debug, Default)]
pub struct Checker {
    delivered: Vec<BitSet>,
    lost: Vec<HashSet<u32>>,
    /// The first violations, in order.
    pub violations: Vec<Violation>,
    /// All violations.
    pub violation_count: u64,
}

impl Checker {
    /// A checker for `participants` participants.
    pub fn new(participants: usize) -> Checker {
        Checker {
            delivered: vec![BitSet::default(); participants],
            lost: vec![HashSet::new(); participants],
            violations: Vec::new(),
            violation_count: 0,
        }
    }

    /// Records a violation.
    pub fn report(&mut self, v: Violation) {
        self.violation_count += 1;
        if self.violations.len() < MAX_KEPT_VIOLATIONS {
            self.violations.push(v);
        }
    }

    /// Whether `m` is in `p`'s log as far as the checker knows (sent or delivered).
    pub fn has(&self, p: usize, m: u32) -> bool {
        self.delivered[p].get(m)
    }

    /// `p` sent `m` (its log holds it from now on).
    pub fn on_own_send(&mut self, p: usize, m: u32) {
        self.delivered[p].set(m);
    }

    /// `p` declared `m` irretrievably lost.
    pub fn on_lost(&mut self, p: usize, m: u32) {
        self.lost[p].insert(m);
    }

    /// `p` delivered `m` at `at_ms`, whose causal history is `deps`, listing
    /// `lost` as lost dependencies. Returns whether it was fine.
    pub fn on_delivered(
        &mut self,
        p: usize,
        m: u32,
        deps: &[u32],
        lost: &[u32],
        at_ms: u64,
    ) -> bool {
        let mut ok = true;
        if self.delivered[p].set(m) {
            self.report(Violation {
                kind: ViolationKind::DuplicateDelivery,
                participant: p,
                message: Some(m),
                at_ms,
                detail: format!("message #{m} delivered a second time"),
            });
            ok = false;
        }
        for &d in deps {
            if d == m || self.delivered[p].get(d) || lost.contains(&d) || self.lost[p].contains(&d)
            {
                continue;
            }
            self.report(Violation {
                kind: ViolationKind::DeliveredBeforeDependency,
                participant: p,
                message: Some(m),
                at_ms,
                detail: format!(
                    "message #{m} delivered before its dependency #{d} (neither delivered nor declared lost)"
                ),
            });
            ok = false;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset() {
        let mut b = BitSet::default();
        assert!(!b.get(1000));
        assert!(!b.set(1000));
        assert!(b.set(1000));
        assert!(b.get(1000));
        assert!(!b.get(999));
    }
}
