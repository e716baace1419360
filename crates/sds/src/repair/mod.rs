//! SDS-R, the repair extension: the outgoing and incoming repair-request
//! buffers. The formulas (T_req, T_resp, response groups) are in [`timing`].
//!
//! Both buffers are keyed by message id, ordered by deadline (O(log n) per
//! operation) and capped; when full, the entry with the furthest deadline is
//! evicted (it is the one least likely to matter soon).

pub mod timing;

use crate::fastmap::HashMap;
use crate::timer::DeadlineQueue;
use crate::wire::HistoryEntry;
use std::sync::Arc;

type Id = Arc<str>;

/// An entry of the outgoing repair-request buffer.
#[derive(Clone, Debug)]
pub(crate) struct OutRepair {
    /// The missing entry as the message that named it carried it.
    pub entry: HistoryEntry,
    /// Times it was attached to an outgoing message.
    pub attempts: u32,
}

/// Locally missing entries, each with a request time (T_req) and an expiry.
#[derive(Debug, Default)]
pub(crate) struct RepairOut {
    entries: HashMap<Id, OutRepair>,
    /// When each entry becomes eligible (T_req, then re-request times).
    pub due: DeadlineQueue<Id>,
    /// When each entry is given up.
    pub expiry: DeadlineQueue<Id>,
}

impl RepairOut {
    /// Adds an entry unless present; evicts the furthest-due entries beyond
    /// `cap` and returns their ids.
    pub fn add(
        &mut self,
        id: Id,
        entry: HistoryEntry,
        t_req: u64,
        expires: u64,
        cap: usize,
    ) -> Vec<Id> {
        let mut evicted = Vec::new();
        if cap == 0 || self.entries.contains_key(&id) {
            return evicted;
        }
        self.entries
            .insert(id.clone(), OutRepair { entry, attempts: 0 });
        self.due.set(id.clone(), t_req);
        self.expiry.set(id, expires);
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
        self.entries.len() >= cap && self.due.last().is_some_and(|(at, _)| at < t_req)
    }

    /// An entry, for persisting it.
    pub fn get(&self, id: &str) -> Option<&OutRepair> {
        self.entries.get(id)
    }

    /// Restores an entry from a store.
    pub fn restore(&mut self, id: Id, e: OutRepair, due: Option<u64>, expires: u64) {
        if let Some(d) = due {
            self.due.set(id.clone(), d);
        }
        self.expiry.set(id.clone(), expires);
        self.entries.insert(id, e);
    }

    pub fn remove(&mut self, id: &str) -> Option<OutRepair> {
        if self.entries.is_empty() {
            return None;
        }
        let (k, e) = self.entries.remove_entry(id)?;
        self.due.remove(&k);
        self.expiry.remove(&k);
        Some(e)
    }

    /// Postpones an entry (another participant asked for it first); returns
    /// whether it was moved.
    pub fn postpone(&mut self, id: &str, until: u64) -> bool {
        let Some((k, _)) = self.entries.get_key_value(id) else {
            return false;
        };
        let k = k.clone();
        if self.due.get(&k).is_some_and(|d| d < until) {
            self.due.set(k, until);
            return true;
        }
        false
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
        let ids: Vec<Id> = self
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .map(|(_, k)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            e.attempts += 1;
            out.push(e.entry.clone());
            if e.attempts >= max_attempts {
                self.due.remove(&id);
            } else {
                self.due.set(id, next);
            }
        }
        out
    }

    /// Whether an entry is eligible at `now`.
    pub fn has_eligible(&self, now: u64) -> bool {
        self.due.next().is_some_and(|d| d <= now)
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
