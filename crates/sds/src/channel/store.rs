//! The pieces of channel state: the log, the outgoing and incoming buffers and
//! small bounded id sets. Each keeps its own indexes consistent; the protocol
//! logic lives in the parent module.

use super::Id;
use crate::bloom::ItemHash;
use crate::id::{AsKey, IdMap};
use crate::timer::DeadlineQueue;
use crate::wire::HistoryEntry;
use arcstr::ArcStr;
use bytes::Bytes;
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// A content message as kept in the log and the buffers: what is needed to
/// deliver it, reference it and re-broadcast it (the bloom filter it carried
/// is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredMessage {
    pub id: Id,
    pub sender_id: Id,
    pub lamport: u64,
    pub causal_history: Box<[Dep]>,
    pub content: Bytes,
}

/// One causal-history entry as kept in memory: the ids are shared with the
/// rest of the channel's state (the log, the buffers, the sender table), so a
/// stored message costs one allocation for its whole history instead of two
/// or three per entry, and owns its bytes (a hint is never a slice of the
/// wire buffer it came in, which would keep that whole buffer alive). Each
/// field is one thin pointer: the hint, usually absent, is boxed, and the
/// ids are [`ArcStr`]s, not [`Id`]s (entries are kept, rarely looked up, and
/// the carried hash would cost 8 bytes more each). An entry is 24 bytes
/// (64 with `Arc<str>` ids and an unboxed hint), and every logged or
/// buffered message holds `causal_history_len` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dep {
    pub id: ArcStr,
    pub hint: Option<Box<Bytes>>,
    pub sender: Option<ArcStr>,
}

const _: () = assert!(std::mem::size_of::<Dep>() == 24);
const _: () = assert!(std::mem::size_of::<Id>() == 16);

impl Dep {
    /// The wire form of this entry.
    pub fn to_entry(&self) -> HistoryEntry {
        HistoryEntry {
            message_id: super::owned(&self.id),
            retrieval_hint: self.hint.as_deref().cloned(),
            sender_id: self.sender.as_deref().map(str::to_string),
        }
    }

    /// From a wire entry, with fresh ids (restoring from a store).
    pub fn from_entry(e: HistoryEntry) -> Dep {
        Dep {
            id: ArcStr::from(e.message_id),
            hint: e
                .retrieval_hint
                .map(|h| Box::new(Bytes::copy_from_slice(&h))),
            sender: e.sender_id.map(ArcStr::from),
        }
    }
}

/// A log entry.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub msg: Arc<StoredMessage>,
    /// Retrieval hint of this message, used in our causal histories.
    pub hint: Option<Bytes>,
    /// When we last sent or received a copy of it (SDS-R: a copy seen just
    /// now means someone already answered a repair request for it).
    pub last_seen: u64,
    /// Delivery sequence number (order of delivery or sending).
    pub seq: u64,
}

/// The local log, ordered by (lamport timestamp, message id bytewise).
///
/// The entries live in the id table, so finding one by id (a duplicate, a
/// dependency, a repair request, our own causal history) is one probe; the
/// ordered set holds only (lamport, id) keys, for eviction and log-order
/// walks.
#[derive(Debug, Default)]
pub(crate) struct Log {
    order: BTreeSet<(u64, Id)>,
    entries: IdMap<LogEntry>,
}

impl Log {
    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(&id.as_key())
    }

    /// The shared id of a logged message.
    pub fn key(&self, id: &(impl AsKey + ?Sized)) -> Option<&Id> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get_key_value(&id.as_key()).map(|(k, _)| k)
    }

    pub fn get(&self, id: &(impl AsKey + ?Sized)) -> Option<&LogEntry> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get(&id.as_key())
    }

    pub fn get_mut(&mut self, id: &(impl AsKey + ?Sized)) -> Option<&mut LogEntry> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get_mut(&id.as_key())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Inserts an entry; returns the entries evicted to stay within `cap`.
    pub fn insert(&mut self, entry: LogEntry, cap: usize) -> Vec<LogEntry> {
        let id = entry.msg.id.clone();
        let lamport = entry.msg.lamport;
        if let Some(old) = self.entries.insert(id.clone(), entry) {
            // Replaced (restoring over an existing entry): keep one key.
            self.order.remove(&(old.msg.lamport, id.clone()));
        }
        self.order.insert((lamport, id));
        let mut evicted = Vec::new();
        while self.entries.len() > cap.max(1) {
            match self.order.pop_first() {
                Some((_, id)) => {
                    if let Some(e) = self.entries.remove(&id) {
                        evicted.push(e);
                    }
                }
                None => break,
            }
        }
        evicted
    }

    /// Entries in log order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogEntry> {
        self.order.iter().filter_map(|(_, id)| self.entries.get(id))
    }

    /// The `k`-th entry in log order (a walk of the ordered keys).
    pub fn nth(&self, k: usize) -> Option<&LogEntry> {
        let (_, id) = self.order.iter().nth(k)?;
        self.entries.get(id)
    }
}

/// A FIFO-bounded set of ids, each with its insertion sequence number and,
/// optionally, a tag handed back when it is pushed out (the evicted-id set
/// tags each id with its lamport timestamp; restored ids have none).
#[derive(Debug, Default)]
pub(crate) struct BoundedSet {
    set: IdMap<u64>,
    order: VecDeque<(Id, Option<u64>)>,
    next: u64,
}

impl BoundedSet {
    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
        self.set.contains_key(&id.as_key())
    }

    /// The shared id, if present.
    pub fn key(&self, id: &(impl AsKey + ?Sized)) -> Option<&Id> {
        self.set.get_key_value(&id.as_key()).map(|(k, _)| k)
    }

    /// The insertion sequence number of `id`.
    pub fn seq(&self, id: &(impl AsKey + ?Sized)) -> Option<u64> {
        self.set.get(&id.as_key()).copied()
    }

    /// Inserts `id` (a no-op if present); returns the ids pushed out.
    pub fn insert(&mut self, id: Id, cap: usize) -> Vec<Id> {
        let seq = self.next;
        self.push(id, seq, None, cap)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Inserts `id` with a tag; returns the ids pushed out with theirs.
    pub fn insert_tagged(&mut self, id: Id, tag: u64, cap: usize) -> Vec<(Id, Option<u64>)> {
        let seq = self.next;
        self.push(id, seq, Some(tag), cap)
    }

    /// Inserts with a given sequence number (restoring from a store).
    pub fn insert_with_seq(&mut self, id: Id, seq: u64, cap: usize) -> Vec<Id> {
        self.push(id, seq, None, cap)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    fn push(&mut self, id: Id, seq: u64, tag: Option<u64>, cap: usize) -> Vec<(Id, Option<u64>)> {
        let mut out = Vec::new();
        if cap == 0 || self.set.contains_key(&id) {
            return out;
        }
        self.next = self.next.max(seq + 1);
        self.set.insert(id.clone(), seq);
        self.order.push_back((id, tag));
        while self.order.len() > cap {
            if let Some((old, tag)) = self.order.pop_front() {
                self.set.remove(&old);
                out.push((old, tag));
            }
        }
        out
    }
}

/// An unacknowledged message of ours.
#[derive(Clone, Debug)]
pub(crate) struct OutEntry {
    pub msg: Arc<StoredMessage>,
    /// Resends so far.
    pub attempts: u32,
    /// Hash of the id for the spec and nim bloom encodings.
    pub hashes: [ItemHash; 2],
    /// Distinct remote senders whose bloom filters contained it.
    pub ackers: Vec<Id>,
    /// When it was last broadcast.
    pub last_sent: u64,
}

/// The unacknowledged outgoing buffer, in send order, with resend deadlines.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    entries: BTreeMap<u64, OutEntry>,
    index: IdMap<u64>,
    pub resend: DeadlineQueue,
    next_seq: u64,
}

impl Outgoing {
    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
        self.index.contains_key(&id.as_key())
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn insert(&mut self, entry: OutEntry, resend_at: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = entry.msg.id.clone();
        self.index.insert(id.clone(), seq);
        self.entries.insert(seq, entry);
        self.resend.set(id, resend_at);
    }

    pub fn remove(&mut self, id: &(impl AsKey + ?Sized)) -> Option<OutEntry> {
        if self.index.is_empty() {
            return None;
        }
        let (k, seq) = self.index.remove_entry(&id.as_key())?;
        self.resend.remove(&k);
        self.entries.remove(&seq)
    }

    pub fn get_mut(&mut self, id: &(impl AsKey + ?Sized)) -> Option<&mut OutEntry> {
        let seq = self.index.get(&id.as_key())?;
        self.entries.get_mut(seq)
    }

    /// An entry with its send-order number.
    pub fn get(&self, id: &(impl AsKey + ?Sized)) -> Option<(u64, &OutEntry)> {
        let seq = self.index.get(&id.as_key())?;
        self.entries.get(seq).map(|e| (*seq, e))
    }

    /// Inserts at a given send-order number (restoring from a store).
    pub fn insert_with_seq(&mut self, seq: u64, entry: OutEntry, resend_at: u64) {
        self.next_seq = self.next_seq.max(seq + 1);
        let id = entry.msg.id.clone();
        self.index.insert(id.clone(), seq);
        self.entries.insert(seq, entry);
        self.resend.set(id, resend_at);
    }

    /// The oldest entry's id.
    pub fn oldest(&self) -> Option<Id> {
        self.entries.values().next().map(|e| e.msg.id.clone())
    }

    /// Entries in send order.
    pub fn iter(&self) -> impl Iterator<Item = &OutEntry> {
        self.entries.values()
    }

    /// Entries in send order, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut OutEntry> {
        self.entries.values_mut()
    }
}

/// A short list of ids, kept inline up to two: a buffered message usually
/// waits for one or two dependencies, and an id is usually waited for by one
/// or two messages. Inline, resolving a dependency does not follow a pointer
/// to a separate allocation per message (a cache miss each, with many
/// participants in one process).
pub(crate) type IdList = SmallVec<[Id; 2]>;

/// A received content message waiting for dependencies.
#[derive(Clone, Debug)]
pub(crate) struct Buffered {
    /// Shared from the start: delivering it moves it into the log as is.
    pub msg: Arc<StoredMessage>,
    pub hint: Option<Bytes>,
    /// Dependencies not yet in the log (nor met nor lost).
    pub unmet: IdList,
    /// Dependencies declared lost.
    pub lost: Vec<String>,
}

/// A buffered message with its lost-dependency deadline.
#[derive(Debug)]
struct Slot {
    b: Buffered,
    /// `None` once it has expired (the message stays until it is released).
    timeout_at: Option<u64>,
}

/// One id the incoming buffer knows: a buffered message, an id buffered
/// messages wait for, or both (a buffered message others wait for).
#[derive(Debug, Default)]
struct Node {
    /// Boxed: a slot is 200 bytes, and the table doubles as it grows; the
    /// growth then moves pointers, and the table stays small.
    slot: Option<Box<Slot>>,
    /// Buffered messages waiting for this id.
    waiters: IdList,
}

/// The incoming buffer with its reverse dependency index and lost timeouts.
///
/// Buffered messages and the ids they wait for share one table, so a
/// dependency lookup or an arrival finds either with one probe.
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    nodes: IdMap<Node>,
    /// Nodes with a slot.
    buffered: usize,
    /// Lost-dependency deadlines (also the receive order, for eviction); the
    /// deadline of each is also in its slot, so no second hash table is needed.
    timeouts: BTreeSet<(u64, Id)>,
}

/// What the incoming buffer knows of an id (see [`Incoming::lookup`]).
pub(crate) enum Known<'a> {
    /// A buffered message.
    Buffered(&'a Id),
    /// Not buffered; buffered messages wait for it.
    Waited(&'a Id),
}

impl Incoming {
    fn slot(&self, id: &(impl AsKey + ?Sized)) -> Option<&Slot> {
        if self.buffered == 0 {
            return None;
        }
        self.nodes.get(&id.as_key()).and_then(|n| n.slot.as_deref())
    }

    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
        self.slot(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.buffered
    }

    pub fn get(&self, id: &(impl AsKey + ?Sized)) -> Option<&Buffered> {
        self.slot(id).map(|s| &s.b)
    }

    /// The lost-dependency deadline of a buffered message (`None` once expired).
    pub fn timeout_of(&self, id: &(impl AsKey + ?Sized)) -> Option<u64> {
        self.slot(id).and_then(|s| s.timeout_at)
    }

    /// The earliest lost-dependency deadline.
    pub fn next_timeout(&self) -> Option<u64> {
        self.timeouts.first().map(|(at, _)| *at)
    }

    /// The buffered message with the earliest deadline (the oldest).
    pub fn oldest(&self) -> Option<Id> {
        self.timeouts.first().map(|(_, k)| k.clone())
    }

    /// Takes the earliest deadline if it is due at `now`: its message stays
    /// buffered, without a deadline.
    pub fn pop_timed_out(&mut self, now: u64) -> Option<Id> {
        let (at, _) = self.timeouts.first()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.timeouts.pop_first()?;
        if let Some(s) = self.nodes.get_mut(&id).and_then(|n| n.slot.as_mut()) {
            s.timeout_at = None;
        }
        Some(id)
    }

    /// The shared id of `id` if it is buffered or waited for, and which (one
    /// probe for both).
    pub fn lookup(&self, id: &(impl AsKey + ?Sized)) -> Option<Known<'_>> {
        if self.nodes.is_empty() {
            return None;
        }
        let (k, n) = self.nodes.get_key_value(&id.as_key())?;
        if n.slot.is_some() {
            Some(Known::Buffered(k))
        } else {
            Some(Known::Waited(k))
        }
    }

    pub fn insert(&mut self, b: Buffered, timeout_at: u64) {
        let id = b.msg.id.clone();
        for dep in &b.unmet {
            self.nodes
                .entry(dep.clone())
                .or_default()
                .waiters
                .push(id.clone());
        }
        self.timeouts.insert((timeout_at, id.clone()));
        let slot = Box::new(Slot {
            b,
            timeout_at: Some(timeout_at),
        });
        match self.nodes.entry(id.clone()).or_default().slot.replace(slot) {
            Some(old) => {
                if let Some(at) = old.timeout_at.filter(|at| *at != timeout_at) {
                    self.timeouts.remove(&(at, id));
                }
            }
            None => self.buffered += 1,
        }
    }

    /// Drops `w` from the waiters of `dep`, and the node once it holds nothing.
    fn unwait(&mut self, dep: &Id, w: &str) {
        if let Some(n) = self.nodes.get_mut(dep) {
            n.waiters.retain(|x| **x != *w);
            if n.waiters.is_empty() && n.slot.is_none() {
                self.nodes.remove(dep);
            }
        }
    }

    /// Removes a buffered message and its index entries.
    pub fn remove(&mut self, id: &(impl AsKey + ?Sized)) -> Option<Buffered> {
        if self.buffered == 0 {
            return None;
        }
        let key = id.as_key();
        let n = self.nodes.get_mut(&key)?;
        let s = n.slot.take()?;
        self.buffered -= 1;
        if n.waiters.is_empty() {
            self.nodes.remove(&key);
        }
        let k = s.b.msg.id.clone();
        if let Some(at) = s.timeout_at {
            self.timeouts.remove(&(at, k.clone()));
        }
        let b = s.b;
        for dep in &b.unmet {
            self.unwait(dep, &k);
        }
        Some(b)
    }

    /// Marks `dep` as resolved (present, or lost when `lost`) for every
    /// message waiting for it; returns those that have nothing left to wait
    /// for (with their lamport timestamps: the caller orders them by it
    /// without looking them up again), and passes every changed message to
    /// `touched`.
    pub fn resolve(
        &mut self,
        dep: &Id,
        lost: bool,
        mut touched: impl FnMut(&Id),
    ) -> Vec<(u64, Id)> {
        let mut ready = Vec::new();
        if self.nodes.is_empty() {
            return ready;
        }
        let Some(n) = self.nodes.get_mut(dep) else {
            return ready;
        };
        let waiting = std::mem::take(&mut n.waiters);
        if n.slot.is_none() {
            self.nodes.remove(dep);
        }
        for w in waiting {
            if let Some(b) = self
                .nodes
                .get_mut(&w)
                .and_then(|n| n.slot.as_mut())
                .map(|s| &mut s.b)
            {
                // Ids are shared, so the pointer usually finds it.
                let at = b
                    .unmet
                    .iter()
                    .position(|d| Id::ptr_eq(d, dep))
                    .or_else(|| b.unmet.iter().position(|d| **d == **dep));
                if let Some(at) = at {
                    b.unmet.swap_remove(at);
                    touched(&w);
                    if lost {
                        b.lost.push(super::owned(dep));
                    }
                    if b.unmet.is_empty() {
                        ready.push((b.msg.lamport, w));
                    }
                }
            }
        }
        ready
    }

    /// Resolves every unmet dependency of one message as lost, for that
    /// message only (used to break dependency cycles); returns its lamport
    /// timestamp, or `None` if it is not buffered.
    pub fn force_lost(&mut self, id: &(impl AsKey + ?Sized)) -> Option<u64> {
        let key = id.as_key();
        let b = self
            .nodes
            .get_mut(&key)
            .and_then(|n| n.slot.as_mut())
            .map(|s| &mut s.b)?;
        let lamport = b.msg.lamport;
        let unmet = std::mem::take(&mut b.unmet);
        b.lost.extend(unmet.iter().map(|d| super::owned(d)));
        for dep in &unmet {
            self.unwait(dep, key.text());
        }
        Some(lamport)
    }

    /// Ids of buffered messages (unordered).
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.slot.is_some())
            .map(|(k, _)| k)
    }
}
