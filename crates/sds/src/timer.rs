//! A keyed deadline queue: O(log n) insert, remove, reschedule and "next due".

use crate::fastmap::HashMap;
use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::Hash;

/// Deadlines keyed by `K`; at most one deadline per key. Ties are broken by the
/// key's order, so iteration is deterministic.
#[derive(Clone, Debug)]
pub(crate) struct DeadlineQueue<K: Ord + Hash + Clone> {
    by_time: BTreeSet<(u64, K)>,
    by_key: HashMap<K, u64>,
}

impl<K: Ord + Hash + Clone> Default for DeadlineQueue<K> {
    fn default() -> Self {
        DeadlineQueue {
            by_time: BTreeSet::new(),
            by_key: HashMap::default(),
        }
    }
}

impl<K: Ord + Hash + Clone> DeadlineQueue<K> {
    /// Sets (or moves) the deadline of `key`.
    pub fn set(&mut self, key: K, at: u64) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Removes the deadline of `key`, returning it.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // (hashbrown hashes the key even when the table is empty)
        if self.by_key.is_empty() {
            return None;
        }
        let (k, at) = self.by_key.remove_entry(key)?;
        self.by_time.remove(&(at, k));
        Some(at)
    }

    /// The deadline of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_key.get(key).copied()
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
        q.set("b", 20);
        q.set("a", 20);
        q.set("c", 10);
        q.set("c", 30);
        assert_eq!(q.next(), Some(20));
        assert_eq!(q.pop_due(19), None);
        assert_eq!(q.pop_due(25), Some((20, "a")));
        assert_eq!(q.pop_due(25), Some((20, "b")));
        assert_eq!(q.pop_due(25), None);
        assert_eq!(q.remove(&"c"), Some(30));
        assert_eq!(q.len(), 0);
    }
}
