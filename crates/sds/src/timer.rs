//! A deadline queue keyed by ids: O(log n) insert, remove, reschedule and
//! "next due".

use crate::id::{AsKey, Id, IdMap};
use std::collections::BTreeSet;

type K = Id;

/// Deadlines keyed by id; at most one deadline per id. Ties are broken by the
/// ids' order, so iteration is deterministic.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeadlineQueue {
    by_time: BTreeSet<(u64, K)>,
    by_key: IdMap<u64>,
}

impl DeadlineQueue {
    /// Sets (or moves) the deadline of `key`.
    pub fn set(&mut self, key: K, at: u64) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Removes the deadline of `key`, returning it.
    pub fn remove(&mut self, key: &(impl AsKey + ?Sized)) -> Option<u64> {
        if self.by_key.is_empty() {
            return None;
        }
        let (k, at) = self.by_key.remove_entry(&key.as_key())?;
        self.by_time.remove(&(at, k));
        Some(at)
    }

    /// The deadline of `key`.
    pub fn get(&self, key: &(impl AsKey + ?Sized)) -> Option<u64> {
        if self.by_key.is_empty() {
            return None;
        }
        self.by_key.get(&key.as_key()).copied()
    }

    /// The entry with the latest deadline.
    pub fn last(&self) -> Option<(u64, &K)> {
        self.by_time.last().map(|(at, k)| (*at, k))
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, K)> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (at, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some((at, key))
    }

    /// Entries in deadline order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &K)> {
        self.by_time.iter().map(|(at, k)| (*at, k))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_reschedules() {
        let mut q = DeadlineQueue::default();
        q.set(Id::from("b"), 20);
        q.set(Id::from("a"), 20);
        q.set(Id::from("c"), 10);
        q.set(Id::from("c"), 30);
        assert_eq!(q.next(), Some(20));
        assert_eq!(q.pop_due(19), None);
        assert_eq!(q.pop_due(25), Some((20, Id::from("a"))));
        assert_eq!(q.pop_due(25), Some((20, Id::from("b"))));
        assert_eq!(q.pop_due(25), None);
        assert_eq!(q.get("c"), Some(30));
        assert_eq!(q.remove("c"), Some(30));
        assert_eq!(q.len(), 0);
    }
}
