//! The pieces of channel state: the log, the outgoing and incoming buffers and
//! small bounded id sets. Each keeps its own indexes consistent; the protocol
//! logic lives in the parent module.

use super::Id;
use crate::bloom::ItemHash;
use crate::id::{AsKey, IdMap, Key};
use crate::timer::DeadlineQueue;
use crate::wire::{self, HistoryEntry};
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

impl StoredMessage {
    /// The stored form of received content message `msg`, made once for
    /// every participant of this process that receives it
    /// ([`crate::Prepared`]): each keeps a reference to this one allocation
    /// instead of building its own (ids, history entries, senders). Equal,
    /// field by field, to what a channel builds from the same message with
    /// the content kept as given.
    pub fn prepared(msg: &wire::MessageRef<'_>, hashes: &super::Prehashed) -> StoredMessage {
        // A group has few senders: consecutive entries often name the same.
        let mut last: Option<ArcStr> = None;
        let causal_history = msg
            .causal_history
            .iter()
            .map(|e| Dep {
                id: ArcStr::from(e.message_id),
                hint: e
                    .retrieval_hint
                    .as_ref()
                    .map(|h| Box::new(Bytes::copy_from_slice(h))),
                sender: e.sender_id.map(|s| match &last {
                    Some(l) if l.as_str() == s => l.clone(),
                    _ => last.insert(ArcStr::from(s)).clone(),
                }),
            })
            .collect();
        StoredMessage {
            id: Id::with_key(&Key::hashed(msg.message_id, Some(hashes.id))),
            sender_id: Id::with_key(&Key::hashed(msg.sender_id, Some(hashes.sender))),
            lamport: msg.lamport_timestamp.unwrap_or(0),
            causal_history,
            content: msg.content.clone().unwrap_or_default(),
        }
    }

    /// Its wire bytes on `channel` in `dialect`, with a bloom filter and
    /// repair requests, encoded from the stored parts (no owned wire
    /// message or entries are built).
    pub fn encode(
        &self,
        channel: &str,
        dialect: crate::wire::Dialect,
        bloom: Option<&[u8]>,
        repair_request: &[HistoryEntry],
    ) -> Result<Bytes, crate::wire::EncodeError> {
        let mut out = Vec::new();
        crate::wire::encode_parts_into(
            crate::wire::MessageParts {
                sender: &self.sender_id,
                id: &self.id,
                channel,
                lamport: Some(self.lamport),
                history: self.causal_history.iter().map(Dep::parts),
                bloom,
                repair: repair_request.iter().map(HistoryEntry::parts),
                content: Some(&self.content),
            },
            dialect,
            &mut out,
        )?;
        Ok(Bytes::from(out))
    }
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

    /// The entry as the encoder reads it.
    pub fn parts(&self) -> crate::wire::EntryParts<'_> {
        crate::wire::EntryParts {
            id: &self.id,
            hint: self.hint.as_deref().map(|h| &h[..]),
            sender: self.sender.as_deref(),
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
    /// Retrieval hint of this message, used in our causal histories (boxed:
    /// usually absent, and the entries live in the log's id table, whose
    /// buckets it would make half as large again).
    pub hint: Option<Box<Bytes>>,
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

/// The dependencies of one buffered message that are still unmet, as the
/// channel's shared ids (at most one per distinct id of its causal history).
pub(crate) type IdList = SmallVec<[Id; 4]>;

/// A received content message waiting for dependencies.
#[derive(Clone, Debug)]
pub(crate) struct Buffered {
    /// Shared from the start: delivering it moves it into the log as is.
    pub msg: Arc<StoredMessage>,
    pub hint: Option<Bytes>,
    /// Dependencies declared lost.
    pub lost: Vec<String>,
}

/// A buffered message waiting for an id: its slot in the slab and the slot's
/// generation when it started waiting. 8 bytes instead of a 16-byte shared
/// id; a slot reused by a later message has a new generation, so a waiter
/// left behind by an earlier occupant can never be mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    slot: u32,
    gen: u32,
}

/// What the buffer keeps of each slot apart from its message, in a dense
/// vector (16 bytes a slot): resolving a dependency decrements the counts of
/// its waiters here and reads a message only when it is ready, instead of
/// the 100-byte slab entry of every waiter.
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// Moves on each time the slot is freed.
    gen: u32,
    /// How many distinct ids its message still waits for (it is a waiter in
    /// each of their nodes): the list itself is derived from its causal
    /// history and the nodes when it is needed (persistence, lost-dependency
    /// reports), which is rare, instead of being kept per message.
    unmet: u32,
    /// Its lost-dependency deadline; [`NO_TIMEOUT`] once expired, or free.
    timeout_at: u64,
}

/// No deadline (expired, or a free slot).
const NO_TIMEOUT: u64 = u64::MAX;

impl Default for Meta {
    fn default() -> Self {
        Meta {
            gen: 0,
            unmet: 0,
            timeout_at: NO_TIMEOUT,
        }
    }
}

/// No slot: a node that is only waited for.
const NO_SLOT: u32 = u32::MAX;

/// One id the incoming buffer knows: a buffered message, an id buffered
/// messages wait for, or both (a buffered message others wait for).
#[derive(Debug)]
struct Node {
    /// The message's slot, or [`NO_SLOT`].
    slot: u32,
    /// Buffered messages waiting for this id, inline up to two (usually one
    /// or two; a message that many later ones name spills to the heap).
    waiters: SmallVec<[Waiter; 2]>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            slot: NO_SLOT,
            waiters: SmallVec::new(),
        }
    }
}

/// A lost-dependency deadline in [`Incoming::timeouts`].
#[derive(Debug)]
struct Deadline {
    at: u64,
    id: Id,
    w: Waiter,
}

impl Deadline {
    /// Whether it is still its message's deadline (`meta`: the buffer's).
    fn is_live(&self, meta: &[Meta]) -> bool {
        let m = &meta[self.w.slot as usize];
        m.gen == self.w.gen && m.timeout_at == self.at
    }
}

/// The incoming buffer with its reverse dependency index and lost timeouts.
///
/// Buffered messages and the ids they wait for share one table, so a
/// dependency lookup or an arrival finds either with one probe. The messages
/// themselves live in a slab (one vector, reused through a free list), and
/// the reverse index names them by slot: a waiting message costs 8 bytes per
/// dependency and a counter, not a 16-byte id in two lists.
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    nodes: IdMap<Node>,
    /// The buffered messages by slot (`None`: a free slot).
    slab: Vec<Option<Buffered>>,
    /// Per slot: generation, unmet count and deadline (see [`Meta`]).
    meta: Vec<Meta>,
    free: Vec<u32>,
    /// Slots in use.
    buffered: usize,
    /// Lost-dependency deadlines in (deadline, id) order, which is also the
    /// receive order (for eviction). The entry of a message delivered or
    /// expired meanwhile stays until it reaches the front, so that a
    /// delivery does not search the queue (it was a B-tree, and its removal
    /// a few cache misses per delivered message); the front is always live.
    timeouts: VecDeque<Deadline>,
    /// Live entries of `timeouts`.
    n_timeouts: usize,
}

/// What the incoming buffer knows of an id (see [`Incoming::lookup`]).
pub(crate) enum Known<'a> {
    /// A buffered message.
    Buffered(&'a Id),
    /// Not buffered; buffered messages wait for it.
    Waited(&'a Id),
}

impl Incoming {
    fn slot_no(&self, id: &(impl AsKey + ?Sized)) -> Option<u32> {
        if self.buffered == 0 {
            return None;
        }
        let n = self.nodes.get(&id.as_key())?;
        (n.slot != NO_SLOT).then_some(n.slot)
    }

    fn waiter(&self, s: u32) -> Waiter {
        Waiter {
            slot: s,
            gen: self.meta[s as usize].gen,
        }
    }

    pub fn contains(&self, id: &(impl AsKey + ?Sized)) -> bool {
        self.get(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.buffered
    }

    pub fn get(&self, id: &(impl AsKey + ?Sized)) -> Option<&Buffered> {
        let s = self.slot_no(id)?;
        self.slab[s as usize].as_ref()
    }

    /// The lost-dependency deadline of a buffered message (`None` once expired).
    pub fn timeout_of(&self, id: &(impl AsKey + ?Sized)) -> Option<u64> {
        let s = self.slot_no(id)?;
        let at = self.meta[s as usize].timeout_at;
        (at != NO_TIMEOUT).then_some(at)
    }

    /// The dependencies a buffered message still waits for, in the order of
    /// its causal history (empty if it is not buffered).
    pub fn unmet(&self, id: &(impl AsKey + ?Sized)) -> IdList {
        match self.slot_no(id) {
            Some(s) => self.waits_of(s),
            None => IdList::new(),
        }
    }

    /// The ids the message in slot `s` is a waiter of, in the order of its
    /// causal history.
    fn waits_of(&self, s: u32) -> IdList {
        let mut out = IdList::new();
        let (Some(b), w) = (&self.slab[s as usize], self.waiter(s)) else {
            return out;
        };
        if self.meta[s as usize].unmet == 0 {
            return out;
        }
        for dep in b.msg.causal_history.iter() {
            if let Some((k, n)) = self.nodes.get_key_value(&crate::id::Key::new(&dep.id)) {
                if n.waiters.contains(&w) && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    /// Drops dead entries from the front of the deadlines, and compacts the
    /// queue when most of it is dead.
    fn trim_timeouts(&mut self) {
        let meta = &self.meta;
        while self.timeouts.front().is_some_and(|d| !d.is_live(meta)) {
            self.timeouts.pop_front();
        }
        if self.timeouts.len() > 2 * self.n_timeouts + 64 {
            self.timeouts.retain(|d| d.is_live(meta));
        }
    }

    /// The earliest lost-dependency deadline.
    pub fn next_timeout(&self) -> Option<u64> {
        self.timeouts.front().map(|d| d.at)
    }

    /// The buffered message with the earliest deadline (the oldest).
    pub fn oldest(&self) -> Option<Id> {
        self.timeouts.front().map(|d| d.id.clone())
    }

    /// Takes the earliest deadline if it is due at `now`: its message stays
    /// buffered, without a deadline.
    pub fn pop_timed_out(&mut self, now: u64) -> Option<Id> {
        if self.timeouts.front()?.at > now {
            return None;
        }
        let d = self.timeouts.pop_front()?;
        self.meta[d.w.slot as usize].timeout_at = NO_TIMEOUT;
        self.n_timeouts -= 1;
        self.trim_timeouts();
        Some(d.id)
    }

    /// The shared id of `id` if it is buffered or waited for, and which (one
    /// probe for both).
    pub fn lookup(&self, id: &(impl AsKey + ?Sized)) -> Option<Known<'_>> {
        if self.nodes.is_empty() {
            return None;
        }
        let (k, n) = self.nodes.get_key_value(&id.as_key())?;
        if n.slot != NO_SLOT {
            Some(Known::Buffered(k))
        } else {
            Some(Known::Waited(k))
        }
    }

    /// Buffers a message that waits for `unmet` (the channel's shared ids;
    /// repeated ids count once). A message already buffered under the same
    /// id is replaced. A `timeout_at` of `u64::MAX` (which marks "none" in
    /// [`Meta`]) is kept as `u64::MAX - 1`: never reached either.
    pub fn insert(&mut self, b: Buffered, unmet: &[Id], timeout_at: u64) {
        let id = b.msg.id.clone();
        if self.slot_no(&id).is_some() {
            self.remove(&id);
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slab.push(None);
                self.meta.push(Meta::default());
                (self.slab.len() - 1) as u32
            }
        };
        let w = self.waiter(s);
        let mut count = 0;
        for (i, dep) in unmet.iter().enumerate() {
            // Repeats are looked for in the short list at hand, not in the
            // waiters (cold memory: one cache miss per dependency).
            if unmet[..i].contains(dep) {
                continue;
            }
            // By reference: the id is cloned only for a new node (a clone
            // dropped again is two atomic operations on a cold line).
            self.nodes.entry_ref(dep).or_default().waiters.push(w);
            count += 1;
        }
        let at = timeout_at.min(NO_TIMEOUT - 1);
        let d = Deadline {
            at,
            id: id.clone(),
            w,
        };
        // Usually at the back (deadlines grow with the clock); otherwise (a
        // clock going back, a tie, a restore) in its place.
        let in_order = self
            .timeouts
            .back()
            .is_none_or(|b| (b.at, &*b.id) <= (at, &*id));
        if in_order {
            self.timeouts.push_back(d);
        } else {
            let i = self
                .timeouts
                .partition_point(|x| (x.at, &*x.id) <= (at, &*id));
            self.timeouts.insert(i, d);
        }
        self.n_timeouts += 1;
        self.meta[s as usize] = Meta {
            gen: w.gen,
            unmet: count,
            timeout_at: at,
        };
        self.slab[s as usize] = Some(b);
        self.nodes.entry(id).or_default().slot = s;
        self.buffered += 1;
    }

    /// Drops `w` from the waiters of `dep`, and the node once it holds nothing.
    fn unwait(&mut self, dep: &Id, w: Waiter) {
        if let Some(n) = self.nodes.get_mut(dep) {
            n.waiters.retain(|x| *x != w);
            if n.waiters.is_empty() && n.slot == NO_SLOT {
                self.nodes.remove(dep);
            }
        }
    }

    /// Frees a slot (its generation moves on, its deadline is dropped).
    fn release(&mut self, s: u32) -> Option<Buffered> {
        let b = self.slab[s as usize].take()?;
        let m = &mut self.meta[s as usize];
        let timed = m.timeout_at != NO_TIMEOUT;
        *m = Meta {
            gen: m.gen.wrapping_add(1),
            ..Meta::default()
        };
        self.free.push(s);
        self.buffered -= 1;
        if timed {
            self.n_timeouts -= 1;
            self.trim_timeouts();
        }
        Some(b)
    }

    /// Removes a buffered message and its index entries.
    pub fn remove(&mut self, id: &(impl AsKey + ?Sized)) -> Option<Buffered> {
        if self.buffered == 0 {
            return None;
        }
        let key = id.as_key();
        let (k, n) = self.nodes.get_key_value_mut(&key)?;
        if n.slot == NO_SLOT {
            return None;
        }
        let s = std::mem::replace(&mut n.slot, NO_SLOT);
        let k = k.clone();
        if n.waiters.is_empty() {
            self.nodes.remove(&k);
        }
        let w = self.waiter(s);
        // Usually nothing: a message is removed when it is delivered.
        let waits = self.waits_of(s);
        let b = self.release(s)?;
        for dep in &waits {
            self.unwait(dep, w);
        }
        Some(b)
    }

    /// Marks `dep` as resolved (present, or lost when `lost`) for every
    /// message waiting for it; returns those that have nothing left to wait
    /// for (with their lamport timestamps: the caller orders them by it
    /// without looking them up again), and passes every changed message to
    /// `touched` when there is one (with none, a waiter's message is read
    /// only when it is ready).
    pub fn resolve<F: FnMut(&Id)>(
        &mut self,
        dep: &Id,
        lost: bool,
        mut touched: Option<F>,
    ) -> Vec<(u64, Id)> {
        let mut ready = Vec::new();
        if self.nodes.is_empty() {
            return ready;
        }
        let Some(n) = self.nodes.get_mut(dep) else {
            return ready;
        };
        let waiting = std::mem::take(&mut n.waiters);
        if n.slot == NO_SLOT {
            self.nodes.remove(dep);
        }
        for w in waiting {
            let m = &mut self.meta[w.slot as usize];
            if m.gen != w.gen {
                continue;
            }
            m.unmet -= 1;
            let now_ready = m.unmet == 0;
            if !(now_ready || lost || touched.is_some()) {
                continue;
            }
            let Some(b) = self.slab[w.slot as usize].as_mut() else {
                continue;
            };
            if let Some(t) = touched.as_mut() {
                t(&b.msg.id);
            }
            if lost {
                b.lost.push(super::owned(dep));
            }
            if now_ready {
                ready.push((b.msg.lamport, b.msg.id.clone()));
            }
        }
        ready
    }

    /// Resolves every unmet dependency of one message as lost, for that
    /// message only (used to break dependency cycles); returns its lamport
    /// timestamp, or `None` if it is not buffered.
    pub fn force_lost(&mut self, id: &(impl AsKey + ?Sized)) -> Option<u64> {
        let s = self.slot_no(id)?;
        let unmet = self.waits_of(s);
        let w = self.waiter(s);
        self.meta[s as usize].unmet = 0;
        let b = self.slab[s as usize].as_mut()?;
        let lamport = b.msg.lamport;
        b.lost.extend(unmet.iter().map(|d| super::owned(d)));
        for dep in &unmet {
            self.unwait(dep, w);
        }
        Some(lamport)
    }

    /// Ids of buffered messages (unordered).
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.slab
            .iter()
            .filter_map(|b| b.as_ref().map(|b| &b.msg.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::from(s)
    }

    const NO_TOUCH: Option<fn(&Id)> = None;

    fn buffered(me: &str, history: &[&str]) -> Buffered {
        Buffered {
            msg: Arc::new(StoredMessage {
                id: id(me),
                sender_id: id("s"),
                lamport: 7,
                causal_history: history
                    .iter()
                    .map(|h| Dep {
                        id: ArcStr::from(*h),
                        hint: None,
                        sender: None,
                    })
                    .collect(),
                content: Bytes::new(),
            }),
            hint: None,
            lost: Vec::new(),
        }
    }

    fn names(l: &IdList) -> Vec<String> {
        l.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn unmet_is_derived_in_history_order_and_counts_each_id_once() {
        let mut inc = Incoming::default();
        let b = buffered("m", &["c", "a", "c", "b"]);
        inc.insert(b, &[id("a"), id("c"), id("c")], 100);
        assert_eq!(names(&inc.unmet("m")), ["c", "a"]);
        assert!(inc.resolve(&id("a"), false, NO_TOUCH).is_empty());
        assert_eq!(names(&inc.unmet("m")), ["c"]);
        assert_eq!(inc.resolve(&id("c"), true, NO_TOUCH), vec![(7, id("m"))]);
        assert!(inc.unmet("m").is_empty());
        assert_eq!(inc.get("m").unwrap().lost, ["c"]);
        // Nothing waits any more: only the buffered message's node is left.
        let b = inc.remove("m").unwrap();
        assert_eq!(b.msg.id, id("m"));
        assert!(inc.nodes.is_empty());
        assert_eq!(inc.len(), 0);
    }

    #[test]
    fn a_reused_slot_is_not_resolved_by_its_previous_occupant_s_waits() {
        let mut inc = Incoming::default();
        // "z" is not in the history (a record no store of ours writes), so
        // removing the message cannot find the wait and leaves it behind.
        inc.insert(buffered("old", &["x"]), &[id("x"), id("z")], 100);
        inc.remove("old").unwrap();
        assert!(matches!(inc.lookup("z"), Some(Known::Waited(_))));
        assert!(inc.lookup("x").is_none());
        // The next message takes the same slot.
        inc.insert(buffered("new", &["y", "z"]), &[id("y")], 100);
        assert_eq!(inc.slab.len(), 1);
        let mut touched = Vec::new();
        assert!(inc
            .resolve(&id("z"), false, Some(|w: &Id| touched.push(w.clone())))
            .is_empty());
        assert!(touched.is_empty(), "the stale wait touched {touched:?}");
        assert_eq!(names(&inc.unmet("new")), ["y"]);
        assert_eq!(inc.resolve(&id("y"), false, NO_TOUCH), vec![(7, id("new"))]);
    }

    #[test]
    fn removing_or_forcing_a_waiting_message_drops_its_waits() {
        let mut inc = Incoming::default();
        inc.insert(buffered("m1", &["a", "b"]), &[id("a"), id("b")], 100);
        inc.insert(buffered("m2", &["a"]), &[id("a")], 200);
        assert_eq!(inc.oldest(), Some(id("m1")));
        inc.remove("m1").unwrap();
        assert!(inc.lookup("b").is_none());
        assert!(matches!(inc.lookup("a"), Some(Known::Waited(_))));
        assert_eq!(inc.force_lost("m2"), Some(7));
        assert_eq!(inc.get("m2").unwrap().lost, ["a"]);
        assert!(inc.lookup("a").is_none());
        assert!(inc.resolve(&id("a"), false, NO_TOUCH).is_empty());
        // Replacing a buffered message replaces its waits too.
        inc.insert(buffered("m2", &["c"]), &[id("c")], 300);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc.next_timeout(), Some(300));
        assert_eq!(names(&inc.unmet("m2")), ["c"]);
    }

    /// The deadlines: in (deadline, id) order whatever the insertion order;
    /// delivered messages leave no live deadline behind; the queue stays
    /// bounded by its live entries.
    #[test]
    fn deadlines_stay_ordered_and_dead_ones_are_skipped() {
        let mut inc = Incoming::default();
        inc.insert(buffered("b", &["x"]), &[id("x")], 200);
        inc.insert(buffered("a", &["x"]), &[id("x")], 200);
        inc.insert(buffered("c", &["x"]), &[id("x")], 100);
        inc.insert(buffered("d", &["y"]), &[id("y")], 300);
        assert_eq!(inc.oldest(), Some(id("c")));
        assert_eq!(inc.next_timeout(), Some(100));
        // The front delivered: the next live one is the front.
        inc.remove("c").unwrap();
        assert_eq!(inc.oldest(), Some(id("a")));
        // One in the middle delivered: skipped when it reaches the front.
        inc.remove("b").unwrap();
        assert_eq!(inc.pop_timed_out(199), None);
        assert_eq!(inc.pop_timed_out(250), Some(id("a")));
        assert_eq!(inc.timeout_of("a"), None);
        assert!(inc.contains("a"));
        assert_eq!(inc.next_timeout(), Some(300));
        assert_eq!(inc.pop_timed_out(250), None);
        // A slot reused with the same deadline is the new message's.
        inc.remove("d").unwrap();
        inc.insert(buffered("e", &["y"]), &[id("y")], 300);
        assert_eq!(inc.pop_timed_out(300), Some(id("e")));
        assert_eq!(inc.next_timeout(), None);
        assert_eq!(inc.n_timeouts, 0);
        // Many delivered in another order than they arrived: the queue
        // does not grow with them.
        for i in 0..1000u64 {
            inc.insert(buffered(&format!("m{i}"), &["z"]), &[id("z")], 1000 + i);
            if i >= 10 {
                inc.remove(format!("m{}", i - 5).as_str());
            }
        }
        assert!(inc.timeouts.len() <= 2 * inc.n_timeouts + 64 + 1);
        let mut popped = Vec::new();
        while let Some(m) = inc.pop_timed_out(u64::MAX - 1) {
            popped.push(m.to_string());
        }
        let mut expected: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
        expected.extend((995..1000).map(|i| format!("m{i}")));
        assert_eq!(popped, expected);
    }
}
