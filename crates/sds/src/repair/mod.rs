//! SDS-R, the repair extension: the outgoing and incoming repair-request
//! buffers. The formulas (T_req, T_resp, response groups) are in [`timing`].
//!
//! Both buffers are keyed by message id, ordered by deadline (O(log n) per
//! operation) and capped; when full, the entry with the furthest deadline is
//! evicted (it is the one least likely to matter soon).
//!
//! A missing message is scheduled lazily: its `T_req` (a hash of our id and
//! the message id, at least `T_min` away) is computed only once `T_min` has
//! passed since it was found missing. Most missing messages arrive before
//! (they were only reordered, or a store query or another participant's
//! answer brought them), so they never cost the hash nor a place in the
//! deadline sets. What the buffer requests, and when, is exactly what an
//! eagerly scheduled buffer would do (a property test compares the two);
//! the only visible difference is a timer deadline (`poll_timeout`) at the
//! moment an entry is scheduled (rounded down to [`PROMOTE_STEP_MS`], so
//! that the deadline does not move with every missing message that arrives).

pub mod timing;

use crate::channel::Dep;
use crate::timer::DeadlineQueue;
use crate::wire::HistoryEntry;
use hashbrown::hash_map::Entry;
use std::collections::{BTreeSet, VecDeque};
use timing::RepairHash;

use crate::id::{AsKey, Id, IdMap};

/// An entry of the outgoing repair-request buffer.
#[derive(Clone, Debug)]
pub(crate) struct OutRepair {
    /// The missing entry as the message that named it carried it (its id
    /// and sender id shared with the channel's other tables).
    pub entry: Dep,
    /// Times it was attached to an outgoing message.
    pub attempts: u32,
}

/// Pending entries are scheduled in steps of this many milliseconds: the
/// deadline a pending entry puts on the timer is the start of the step in
/// which its `T_min` passes (never later than its `T_req`), so the timer
/// does not move with every missing message that arrives meanwhile.
pub const PROMOTE_STEP_MS: u64 = 1_000;

/// The start of the promotion step containing `at`.
fn step_start(at: u64) -> u64 {
    at - at % PROMOTE_STEP_MS
}

/// Whether the queue item `(at, id)` stands for a pending entry (not one
/// removed, scheduled, or added again since).
fn is_pending_at(entries: &IdMap<Slot>, id: &Id, at: u64) -> bool {
    entries
        .get(id)
        .is_some_and(|s| matches!(s.when, When::Pending { promote_at, .. } if promote_at == at))
}

/// What `T_req` and the expiry of an entry are computed from: our id and
/// the SDS-R timing settings (constant for a participant).
#[derive(Clone, Debug, Default)]
pub(crate) struct ReqTiming {
    /// Our own participant id.
    pub me: Id,
    /// `T_min` (ms).
    pub t_min: u64,
    /// `T_max` (ms).
    pub t_max: u64,
    /// Request rounds before an entry is retired (at least 1).
    pub max_attempts: u32,
}

impl ReqTiming {
    /// `(T_req, expiry)` of a missing `id` detected at `detected`.
    fn schedule(&self, hash: RepairHash, id: &str, detected: u64) -> (u64, u64) {
        let offset = timing::t_req_offset(hash, self.me.as_bytes(), id, self.t_min, self.t_max);
        let t_req = detected.saturating_add(offset);
        let expires = t_req.saturating_add(
            self.t_max
                .saturating_mul(u64::from(self.max_attempts.max(1))),
        );
        (t_req, expires)
    }
}

/// When an entry is requested.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Not scheduled yet: `T_req` is at least `T_min` after detection, so it
    /// is computed only at `promote_at` (detection + `T_min`), when the entry
    /// is still there. Most missing messages arrive long before (reordering,
    /// a store query, another participant's request), and never cost the
    /// hash nor a place in the schedules.
    Pending {
        detected: u64,
        promote_at: u64,
        hash: RepairHash,
    },
    /// On the schedules.
    Scheduled {
        /// When it becomes eligible; `None` once retired from the schedule.
        due: Option<u64>,
        /// When it is given up.
        expires: u64,
    },
}

/// An entry with its deadlines (kept here rather than in a second and third
/// hash table: one lookup finds everything about an id).
#[derive(Debug)]
struct Slot {
    e: OutRepair,
    when: When,
}

/// Locally missing entries, each with a request time (T_req) and an expiry.
///
/// An entry is added pending (see `When::Pending`) and scheduled once
/// `T_min` has passed; every answer it gives is the one an eagerly scheduled
/// buffer would give (an entry cannot be due, expire, or be the furthest
/// before it is scheduled, and the few operations that need the exact
/// `T_req` of a pending entry compute it), except that [`Self::next_due`]
/// may name a time at which nothing is due yet.
#[derive(Debug, Default)]
pub(crate) struct RepairOut {
    entries: IdMap<Slot>,
    /// Pending entries in detection order: (promote_at, id). Entries removed
    /// meanwhile stay until they reach the front; the front is always live.
    pending: VecDeque<(u64, Id)>,
    /// Live pending entries.
    n_pending: usize,
    /// When each scheduled entry becomes eligible (T_req, then re-request times).
    due: BTreeSet<(u64, Id)>,
    /// When each scheduled entry is given up.
    expiry: BTreeSet<(u64, Id)>,
    timing: ReqTiming,
}

impl RepairOut {
    /// Sets what `T_req` is computed from (before the first [`Self::add`]).
    pub fn set_timing(&mut self, timing: ReqTiming) {
        self.timing = timing;
    }

    /// Whether `id` has an entry.
    pub fn contains(&self, id: &Id) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(id)
    }

    /// Adds an entry for `id`, missing since `now`, unless present; evicts the
    /// furthest-due entries beyond `cap` and returns their ids.
    pub fn add(&mut self, id: Id, entry: Dep, hash: RepairHash, now: u64, cap: usize) -> Vec<Id> {
        let mut evicted = Vec::new();
        if cap == 0 {
            return evicted;
        }
        let promote_at = now.saturating_add(self.timing.t_min);
        match self.entries.entry(id) {
            Entry::Occupied(_) => return evicted,
            Entry::Vacant(v) => {
                let id = v.key().clone();
                v.insert(Slot {
                    e: OutRepair { entry, attempts: 0 },
                    when: When::Pending {
                        detected: now,
                        promote_at,
                        hash,
                    },
                });
                if self.pending.back().is_some_and(|(at, _)| *at > promote_at) {
                    // Out of order (a clock going back): keep the queue sorted.
                    let at = self.pending.partition_point(|(at, _)| *at <= promote_at);
                    self.pending.insert(at, (promote_at, id));
                } else {
                    self.pending.push_back((promote_at, id));
                }
                self.n_pending += 1;
            }
        }
        if self.entries.len() > cap {
            // Eviction picks the furthest T_req: every entry needs one.
            self.schedule_all();
            while self.entries.len() > cap {
                let furthest = self.due.last().or_else(|| self.expiry.last());
                let Some(furthest) = furthest.map(|(_, k)| k.clone()) else {
                    break;
                };
                self.remove(&furthest);
                evicted.push(furthest);
            }
        }
        evicted
    }

    /// Whether an entry due at `t_req` or later would be evicted at once
    /// (the buffer is full of entries due earlier): the caller can skip it.
    pub fn full_before(&mut self, cap: usize, t_req: u64) -> bool {
        if self.entries.len() < cap {
            return false;
        }
        self.schedule_all();
        self.due.last().is_some_and(|(at, _)| *at < t_req)
    }

    /// Schedules the pending entries whose `T_min` has passed at `now`, and
    /// those whose `T_min` passes within the same [`PROMOTE_STEP_MS`] step.
    pub fn promote(&mut self, now: u64) {
        while let Some((at, _)) = self.pending.front() {
            if step_start(*at) > now {
                break;
            }
            if let Some((_, id)) = self.pending.pop_front() {
                self.schedule(&id);
            }
        }
        self.trim_front();
    }

    /// Schedules every pending entry.
    fn schedule_all(&mut self) {
        for (_, id) in std::mem::take(&mut self.pending) {
            self.schedule(&id);
        }
        self.n_pending = 0;
    }

    /// Moves a pending entry onto the schedules (a no-op for any other).
    fn schedule(&mut self, id: &Id) {
        let Some(s) = self.entries.get_mut(id) else {
            return;
        };
        let When::Pending { detected, hash, .. } = s.when else {
            return;
        };
        let (t_req, expires) = self.timing.schedule(hash, id, detected);
        s.when = When::Scheduled {
            due: Some(t_req),
            expires,
        };
        self.n_pending -= 1;
        self.due.insert((t_req, id.clone()));
        self.expiry.insert((expires, id.clone()));
    }

    /// Drops removed entries from the front of the pending queue, and
    /// compacts it when it is mostly stale.
    fn trim_front(&mut self) {
        while let Some((at, id)) = self.pending.front() {
            if is_pending_at(&self.entries, id, *at) {
                break;
            }
            self.pending.pop_front();
        }
        if self.pending.len() > 2 * self.n_pending + 64 {
            let entries = &self.entries;
            self.pending
                .retain(|(at, id)| is_pending_at(entries, id, *at));
        }
    }

    /// An entry with its due time and expiry, for persisting it.
    pub fn get(&self, id: &(impl AsKey + ?Sized)) -> Option<(&OutRepair, Option<u64>, u64)> {
        if self.entries.is_empty() {
            return None;
        }
        let (k, s) = self.entries.get_key_value(&id.as_key())?;
        let (due, expires) = match s.when {
            When::Scheduled { due, expires } => (due, expires),
            When::Pending { detected, hash, .. } => {
                let (t_req, expires) = self.timing.schedule(hash, k, detected);
                (Some(t_req), expires)
            }
        };
        Some((&s.e, due, expires))
    }

    /// Restores an entry from a store.
    pub fn restore(&mut self, id: Id, e: OutRepair, due: Option<u64>, expires: u64) {
        self.remove(&id);
        if let Some(d) = due {
            self.due.insert((d, id.clone()));
        }
        self.expiry.insert((expires, id.clone()));
        self.entries.insert(
            id,
            Slot {
                e,
                when: When::Scheduled { due, expires },
            },
        );
    }

    pub fn remove(&mut self, id: &(impl AsKey + ?Sized)) -> Option<OutRepair> {
        if self.entries.is_empty() {
            return None;
        }
        let (k, s) = self.entries.remove_entry(&id.as_key())?;
        match s.when {
            When::Scheduled { due, expires } => {
                if let Some(d) = due {
                    self.due.remove(&(d, k.clone()));
                }
                self.expiry.remove(&(expires, k));
            }
            When::Pending { promote_at, .. } => {
                self.n_pending -= 1;
                if self
                    .pending
                    .front()
                    .is_some_and(|(at, f)| *at == promote_at && Id::ptr_eq(f, &k))
                {
                    self.pending.pop_front();
                    self.trim_front();
                }
            }
        }
        Some(s.e)
    }

    /// Postpones an entry (another participant asked for it first); returns
    /// whether it was moved.
    pub fn postpone(&mut self, id: &(impl AsKey + ?Sized), until: u64) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        // Two lookups: the shared key (for the schedule), then the slot.
        let Some((k, _)) = self.entries.get_key_value(&id.as_key()) else {
            return false;
        };
        let k = k.clone();
        self.schedule(&k);
        self.trim_front();
        let Some(s) = self.entries.get_mut(&k) else {
            return false;
        };
        match s.when {
            When::Scheduled {
                due: Some(d),
                expires,
            } if d < until => {
                self.due.remove(&(d, k.clone()));
                self.due.insert((until, k));
                s.when = When::Scheduled {
                    due: Some(until),
                    expires,
                };
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
        self.promote(now);
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
            let When::Scheduled { expires, .. } = s.when else {
                continue;
            };
            s.e.attempts += 1;
            out.push(s.e.entry.to_entry());
            self.due.remove(&(at, id.clone()));
            if s.e.attempts >= max_attempts {
                s.when = When::Scheduled { due: None, expires };
            } else {
                s.when = When::Scheduled {
                    due: Some(next),
                    expires,
                };
                self.due.insert((next, id));
            }
        }
        out
    }

    /// Whether an entry is eligible at `now` (after [`Self::promote`]).
    pub fn has_eligible(&self, now: u64) -> bool {
        self.due.first().is_some_and(|(at, _)| *at <= now)
    }

    /// The earliest due time, or an earlier time at which a pending entry is
    /// to be scheduled (call [`Self::promote`] then).
    pub fn next_due(&self) -> Option<u64> {
        let scheduled = self.due.first().map(|(at, _)| *at);
        let pending = self.pending.front().map(|(at, _)| step_start(*at));
        match (scheduled, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest expiry of a scheduled entry, or an earlier time at which
    /// a pending entry is to be scheduled (a pending entry expires after
    /// that; call [`Self::promote`] then).
    pub fn next_expiry(&self) -> Option<u64> {
        let expiry = self.expiry.first().map(|(at, _)| *at);
        let pending = self.pending.front().map(|(at, _)| step_start(*at));
        match (expiry, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the entry expiring first if it expires at `now`
    /// (after [`Self::promote`]).
    pub fn pop_expired(&mut self, now: u64) -> Option<(Id, OutRepair)> {
        let (at, _) = self.expiry.first()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.expiry.first()?.clone();
        let e = self.remove(&id)?;
        Some((id, e))
    }

    /// Ids in T_req order.
    pub fn ids(&self) -> Vec<Id> {
        let mut v: Vec<(u64, &Id)> = self
            .entries
            .iter()
            .filter_map(|(k, s)| {
                let due = match s.when {
                    When::Scheduled { due, .. } => due?,
                    When::Pending { detected, hash, .. } => {
                        self.timing.schedule(hash, k, detected).0
                    }
                };
                Some((due, k))
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, k)| k.clone()).collect()
    }
}

/// Requests we may answer, each with its response time (T_resp).
#[derive(Debug, Default)]
pub(crate) struct RepairIn {
    pub due: DeadlineQueue,
}

impl RepairIn {
    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
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

    pub fn remove(&mut self, id: &(impl AsKey + ?Sized)) -> bool {
        self.due.remove(id).is_some()
    }

    /// Ids in T_resp order.
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.due.iter().map(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    //! The lazily scheduled buffer against an eagerly scheduled model.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const T_MIN: u64 = 1_000;
    const T_MAX: u64 = 5_000;
    const ATTEMPTS: u32 = 3;

    fn timing() -> ReqTiming {
        ReqTiming {
            me: Id::from("me"),
            t_min: T_MIN,
            t_max: T_MAX,
            max_attempts: ATTEMPTS,
        }
    }

    fn dep(id: &Id) -> Dep {
        Dep {
            id: id.text().clone(),
            hint: None,
            sender: Some(arcstr::ArcStr::from("them")),
        }
    }

    /// The eager buffer: T_req computed at once.
    #[derive(Default)]
    struct Model {
        /// id -> (due, expires, attempts)
        e: BTreeMap<String, (Option<u64>, u64, u32)>,
    }

    impl Model {
        fn due_set(&self) -> Vec<(u64, String)> {
            let mut v: Vec<(u64, String)> = self
                .e
                .iter()
                .filter_map(|(k, (d, _, _))| d.map(|d| (d, k.clone())))
                .collect();
            v.sort();
            v
        }

        fn expiry_set(&self) -> Vec<(u64, String)> {
            let mut v: Vec<(u64, String)> = self
                .e
                .iter()
                .map(|(k, (_, x, _))| (*x, k.clone()))
                .collect();
            v.sort();
            v
        }

        fn add(&mut self, id: &str, now: u64, cap: usize) -> Vec<String> {
            if cap == 0 || self.e.contains_key(id) {
                return Vec::new();
            }
            let t_req = now + timing::t_req_offset(RepairHash::Spec, "me", id, T_MIN, T_MAX);
            let expires = t_req + T_MAX * u64::from(ATTEMPTS);
            self.e.insert(id.to_string(), (Some(t_req), expires, 0));
            let mut out = Vec::new();
            while self.e.len() > cap {
                let f = self
                    .due_set()
                    .last()
                    .cloned()
                    .or_else(|| self.expiry_set().last().cloned());
                let Some((_, f)) = f else { break };
                self.e.remove(&f);
                out.push(f);
            }
            out
        }

        fn take(&mut self, now: u64, max: usize, next: u64) -> Vec<String> {
            let picked: Vec<(u64, String)> = self
                .due_set()
                .into_iter()
                .take_while(|(t, _)| *t <= now)
                .take(max)
                .collect();
            for (_, id) in &picked {
                let s = self.e.get_mut(id).unwrap();
                s.2 += 1;
                s.0 = if s.2 >= ATTEMPTS { None } else { Some(next) };
            }
            picked.into_iter().map(|(_, id)| id).collect()
        }

        fn postpone(&mut self, id: &str, until: u64) -> bool {
            match self.e.get_mut(id) {
                Some(s) if s.0.is_some_and(|d| d < until) => {
                    s.0 = Some(until);
                    true
                }
                _ => false,
            }
        }

        fn pop_expired(&mut self, now: u64) -> Option<String> {
            let (at, id) = self.expiry_set().first().cloned()?;
            if at > now {
                return None;
            }
            self.e.remove(&id);
            Some(id)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u8),
        Remove(u8),
        Take(u8),
        Postpone(u8, u16),
        PopExpired,
        FullBefore(u16),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Add),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => (1u8..4).prop_map(Op::Take),
            1 => (any::<u8>(), any::<u16>()).prop_map(|(i, d)| Op::Postpone(i, d)),
            1 => Just(Op::PopExpired),
            1 => any::<u16>().prop_map(Op::FullBefore),
            3 => any::<u16>().prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn lazy_buffer_answers_like_an_eager_one(
            ops in proptest::collection::vec(op(), 1..120),
            cap in 1usize..12,
            ids in 2u8..24,
        ) {
            let mut lazy = RepairOut::default();
            lazy.set_timing(timing());
            let mut model = Model::default();
            let mut now = 10_000u64;
            let name = |i: u8| format!("{:064x}", u64::from(i % ids));
            for op in ops {
                match op {
                    Op::Add(i) => {
                        let id = Id::from(name(i));
                        let full = lazy.full_before(cap, now + T_MIN);
                        let m_full = model.e.len() >= cap
                            && model.due_set().last().is_some_and(|(t, _)| *t < now + T_MIN);
                        prop_assert_eq!(full, m_full);
                        if full {
                            continue;
                        }
                        let got: Vec<String> = lazy
                            .add(id.clone(), dep(&id), RepairHash::Spec, now, cap)
                            .iter()
                            .map(|k| k.to_string())
                            .collect();
                        prop_assert_eq!(got, model.add(&id, now, cap));
                    }
                    Op::Remove(i) => {
                        let id = name(i);
                        prop_assert_eq!(
                            lazy.remove(id.as_str()).is_some(),
                            model.e.remove(&id).is_some()
                        );
                    }
                    Op::Take(max) => {
                        let next = now + 2_000;
                        let got: Vec<String> = lazy
                            .take_eligible(now, usize::from(max), next, ATTEMPTS)
                            .into_iter()
                            .map(|e| e.message_id)
                            .collect();
                        prop_assert_eq!(got, model.take(now, usize::from(max), next));
                    }
                    Op::Postpone(i, d) => {
                        let id = name(i);
                        let until = now + u64::from(d);
                        prop_assert_eq!(lazy.postpone(&id, until), model.postpone(&id, until));
                    }
                    Op::PopExpired => {
                        lazy.promote(now);
                        prop_assert_eq!(
                            lazy.pop_expired(now).map(|(k, _)| k.to_string()),
                            model.pop_expired(now)
                        );
                    }
                    Op::FullBefore(d) => {
                        let t = now + u64::from(d);
                        let m_full = model.e.len() >= cap
                            && model.due_set().last().is_some_and(|(x, _)| *x < t);
                        prop_assert_eq!(lazy.full_before(cap, t), m_full);
                    }
                    Op::Advance(d) => {
                        let to = now + u64::from(d);
                        // The timer: nothing can come due or expire without
                        // `next_due` or `next_expiry` naming a time at or before it.
                        while let Some(t) = [lazy.next_due(), lazy.next_expiry()]
                            .into_iter()
                            .flatten()
                            .filter(|t| *t > now && *t <= to)
                            .min()
                        {
                            now = t;
                            lazy.promote(now);
                        }
                        now = to;
                        lazy.promote(now);
                    }
                }
                // Every entry reads as the eager one.
                for (id, (due, expires, attempts)) in &model.e {
                    let (e, d, x) = lazy.get(id).expect("entry present");
                    prop_assert_eq!((d, x, e.attempts), (*due, *expires, *attempts));
                }
                prop_assert_eq!(lazy.entries.len(), model.e.len());
                let order: Vec<String> = lazy.ids().iter().map(|k| k.to_string()).collect();
                let m_order: Vec<String> = model.due_set().into_iter().map(|(_, k)| k).collect();
                prop_assert_eq!(order, m_order);
                // The timer never names a time after the first due entry.
                if let Some((first, _)) = model.due_set().first() {
                    prop_assert!(lazy.next_due().is_some_and(|t| t <= *first));
                }
                if let Some((first, _)) = model.expiry_set().first() {
                    prop_assert!(lazy.next_expiry().is_some_and(|t| t <= *first));
                }
                prop_assert_eq!(lazy.n_pending, lazy.entries.values().filter(|s| matches!(s.when, When::Pending { .. })).count());
            }
        }
    }
}
