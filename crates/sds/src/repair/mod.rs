//! SDS-R, the repair extension: the outgoing and incoming repair-request
//! buffers. The formulas (T_req, T_resp, response groups) are in [`timing`].
//!
//! Both buffers are keyed by message id, ordered by deadline (O(log n) per
//! operation) and capped; when full, the entry with the furthest deadline is
//! evicted (it is the one least likely to matter soon).

pub mod timing;

use crate::channel::Dep;
use crate::fastmap::HashMap;
use crate::timer::DeadlineQueue;
use crate::wire::HistoryEntry;
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::BTreeSet;
use std::hash::Hash;
use std::sync::Arc;

type Id = Arc<str>;

/// An entry of the outgoing repair-request buffer.
#[derive(Clone, Debug)]
pub(crate) struct OutRepair {
    /// The missing entry as the message that named it carried it (its id
    /// and sender id shared with the channel's other tables).
    pub entry: Dep,
    /// Times it was attached to an outgoing message.
    pub attempts: u32,
}

/// An entry with its deadlines (kept here rather than in a second and third
/// hash table: one lookup finds everything about an id).
#[derive(Debug)]
struct Slot {
    e: OutRepair,
    /// When it becomes eligible; `None` once retired from the schedule.
    due: Option<u64>,
    /// When it is given up.
    expires: u64,
}

/// Locally missing entries, each with a request time (T_req) and an expiry.
#[derive(Debug, Default)]
pub(crate) struct RepairOut {
    entries: HashMap<Id, Slot>,
    /// When each entry becomes eligible (T_req, then re-request times).
    due: BTreeSet<(u64, Id)>,
    /// When each entry is given up.
    expiry: BTreeSet<(u64, Id)>,
}

impl RepairOut {
    /// Whether `id` has an entry.
    pub fn contains(&self, id: &Id) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(id)
    }

    /// Adds an entry unless present; evicts the furthest-due entries beyond
    /// `cap` and returns their ids.
    pub fn add(&mut self, id: Id, entry: Dep, t_req: u64, expires: u64, cap: usize) -> Vec<Id> {
        let mut evicted = Vec::new();
        if cap == 0 {
            return evicted;
        }
        match self.entries.entry(id) {
            Entry::Occupied(_) => return evicted,
            Entry::Vacant(v) => {
                let id = v.key().clone();
                v.insert(Slot {
                    e: OutRepair { entry, attempts: 0 },
                    due: Some(t_req),
                    expires,
                });
                self.due.insert((t_req, id.clone()));
                self.expiry.insert((expires, id));
            }
        }
        while self.entries.len() > cap {
            let furthest = self.due.last().or_else(|| self.expiry.last());
            let Some(furthest) = furthest.map(|(_, k)| k.clone()) else {
                break;
            };
            self.remove(&furthest);
            evicted.push(furthest);
        }
        evicted
    }

    /// Whether an entry due at `t_req` or later would be evicted at once
    /// (the buffer is full of entries due earlier): the caller can skip it
    /// without computing its T_req.
    pub fn full_before(&self, cap: usize, t_req: u64) -> bool {
        self.entries.len() >= cap && self.due.last().is_some_and(|(at, _)| *at < t_req)
    }

    /// An entry with its due time and expiry, for persisting it.
    pub fn get(&self, id: &str) -> Option<(&OutRepair, Option<u64>, u64)> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get(id).map(|s| (&s.e, s.due, s.expires))
    }

    /// Restores an entry from a store.
    pub fn restore(&mut self, id: Id, e: OutRepair, due: Option<u64>, expires: u64) {
        if let Some(old) = self.entries.remove(&id) {
            self.unschedule(&id, &old);
        }
        if let Some(d) = due {
            self.due.insert((d, id.clone()));
        }
        self.expiry.insert((expires, id.clone()));
        self.entries.insert(id, Slot { e, due, expires });
    }

    pub fn remove<Q>(&mut self, id: &Q) -> Option<OutRepair>
    where
        Id: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.entries.is_empty() {
            return None;
        }
        let (k, s) = self.entries.remove_entry(id)?;
        self.unschedule(&k, &s);
        Some(s.e)
    }

    /// Takes a removed entry's deadlines off both schedules.
    fn unschedule(&mut self, id: &Id, s: &Slot) {
        if let Some(d) = s.due {
            self.due.remove(&(d, id.clone()));
        }
        self.expiry.remove(&(s.expires, id.clone()));
    }

    /// Postpones an entry (another participant asked for it first); returns
    /// whether it was moved.
    pub fn postpone(&mut self, id: &str, until: u64) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        // Two lookups: the shared key (for the schedule), then the slot.
        let Some((k, _)) = self.entries.get_key_value(id) else {
            return false;
        };
        let k = k.clone();
        let Some(s) = self.entries.get_mut(&k) else {
            return false;
        };
        match s.due {
            Some(d) if d < until => {
                self.due.remove(&(d, k.clone()));
                self.due.insert((until, k));
                s.due = Some(until);
                true
            }
            _ => false,
        }
    }

    /// Takes up to `max` eligible entries (due at `now`), most overdue first;
    /// each is re-armed at `next` for another round, or retired from the
    /// request schedule after `max_attempts` rounds (it stays until expiry, so
    /// an answer can still cancel it).
    pub fn take_eligible(
        &mut self,
        now: u64,
        max: usize,
        next: u64,
        max_attempts: u32,
    ) -> Vec<HistoryEntry> {
        let picked: Vec<(u64, Id)> = self
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(picked.len());
        for (at, id) in picked {
            let Some(s) = self.entries.get_mut(&id) else {
                continue;
            };
            s.e.attempts += 1;
            out.push(s.e.entry.to_entry());
            self.due.remove(&(at, id.clone()));
            if s.e.attempts >= max_attempts {
                s.due = None;
            } else {
                s.due = Some(next);
                self.due.insert((next, id));
            }
        }
        out
    }

    /// Whether an entry is eligible at `now`.
    pub fn has_eligible(&self, now: u64) -> bool {
        self.next_due().is_some_and(|d| d <= now)
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<u64> {
        self.due.first().map(|(at, _)| *at)
    }

    /// The earliest expiry.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// Removes and returns the entry expiring first if it expires at `now`.
    pub fn pop_expired(&mut self, now: u64) -> Option<Id> {
        let (at, _) = self.expiry.first()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.expiry.pop_first()?;
        if let Some(s) = self.entries.remove(&id) {
            // (its expiry is already off the schedule; removing it again is a no-op)
            self.unschedule(&id, &s);
        }
        Some(id)
    }

    /// Ids in T_req order.
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.due.iter().map(|(_, k)| k)
    }
}

/// Requests we may answer, each with its response time (T_resp).
#[derive(Debug, Default)]
pub(crate) struct RepairIn {
    pub due: DeadlineQueue<Id>,
}

impl RepairIn {
    pub fn contains(&self, id: &str) -> bool {
        self.due.get(id).is_some()
    }

    /// Adds a request unless present (a repeated request does not push
    /// T_resp back); evicts the furthest entries beyond `cap` and returns them.
    pub fn add(&mut self, id: Id, t_resp: u64, cap: usize) -> Vec<Id> {
        let mut evicted = Vec::new();
        if cap == 0 || self.due.get(&id).is_some() {
            return evicted;
        }
        self.due.set(id, t_resp);
        while self.due.len() > cap {
            let Some(furthest) = self.due.last().map(|(_, k)| k.clone()) else {
                break;
            };
            self.due.remove(&furthest);
            evicted.push(furthest);
        }
        evicted
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.due.remove(id).is_some()
    }

    /// Ids in T_resp order.
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.due.iter().map(|(_, k)| k)
    }
}
