//! One channel's protocol state machine (LIP-109 plus SDS-R).
//!
//! The participant owns one [`Channel`] per channel id and hands it a
//! [`Ctx`] (configuration, identity, output queues, RNG) for every input.

mod persist;
mod store;

use persist::{Dirty, Kind};
use store::{BoundedSet, Buffered, Incoming, Known, Log, LogEntry, OutEntry, Outgoing};
pub(crate) use store::{Dep, StoredMessage};

use crate::bloom::{BloomEncoding, BloomParams, BloomView, ItemHash, RollingBloom};
use crate::config::{ChannelConfig, Config};
use crate::event::{Event, Transmit, TransmitReason};
use crate::repair::timing::{self, RepairHash};
use crate::repair::{RepairIn, RepairOut, ReqTiming};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::wire::{self, Dialect, HistoryEntry, MessageKind};
use crate::RetrievalHintProvider;
use bytes::Bytes;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

pub(crate) use crate::id::Id;
use crate::id::{IdMap, IdSet, Key};

/// The hashes of a received message's ids ([`crate::id::hash_text`]),
/// computed once by the caller for several participants (see
/// [`crate::Prepared`]).
#[derive(Clone, Debug)]
pub(crate) struct Prehashed {
    /// Of the message id.
    pub id: u64,
    /// Of each causal-history id, in order.
    pub history: Box<[u64]>,
    /// Of the message's sender id.
    pub sender: u64,
    /// Of each causal-history entry's sender id (0 where it has none).
    pub senders: Box<[u64]>,
}

/// How a caller hands a message over, beyond the message itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Handover<'p> {
    /// The content is a buffer of its own, to keep by reference (else it is
    /// a slice of the wire bytes, and is copied).
    pub share_content: bool,
    /// The hashes of its ids, if the caller has them.
    pub hashes: Option<&'p Prehashed>,
    /// Its stored form, shared by every participant that receives it, if
    /// the caller made it ([`StoredMessage::prepared`]; with
    /// `share_content`).
    pub stored: Option<&'p Arc<StoredMessage>>,
}

impl Prehashed {
    pub fn of(msg: &wire::MessageRef<'_>) -> Prehashed {
        let hash = crate::id::hash_text;
        Prehashed {
            id: hash(msg.message_id),
            history: msg
                .causal_history
                .iter()
                .map(|e| hash(e.message_id))
                .collect(),
            sender: hash(msg.sender_id),
            senders: msg
                .causal_history
                .iter()
                .map(|e| e.sender_id.map_or(0, hash))
                .collect(),
        }
    }
}

/// An owned copy of an id: `to_string` on an [`Id`] goes through the
/// formatting machinery (`Display`), a plain copy does not.
#[inline]
pub(crate) fn owned(id: &str) -> String {
    id.to_owned()
}

/// Output queues of a participant.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub events: VecDeque<Event>,
    pub transmits: VecDeque<Transmit>,
}

/// What a channel needs from its participant for one operation.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub me: &'a Id,
    pub bloom_params: &'a BloomParams,
    pub out: &'a mut Outputs,
    /// Seed of this participant's randomness (mixed with the channel id).
    pub seed: u64,
    /// Whether changes are tracked for a store.
    pub persistent: bool,
    pub hints: Option<&'a mut (dyn RetrievalHintProvider + Send)>,
}

/// The outcome of receiving one message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A content message, delivered (and possibly others released after it).
    Delivered,
    /// A content message, buffered until its dependencies arrive; `missing`
    /// of them are neither in the log nor in the incoming buffer.
    Buffered {
        /// Dependencies reported missing.
        missing: usize,
    },
    /// A content message we already have (log, buffer or recently evicted).
    Duplicate,
    /// A content message that sorts at or before the newest message whose id
    /// this channel has forgotten (evicted from the log, then from the
    /// bounded evicted-id memory): we cannot tell whether we delivered it, so
    /// it is not delivered; what waits for it is released with it listed as
    /// a lost dependency.
    TooOld,
    /// A sync message (processed for acknowledgements and gaps only).
    Sync,
    /// An ephemeral message (see [`Event::Ephemeral`]).
    Ephemeral,
    /// A message with our own sender id, ignored.
    OwnMessage,
}

/// A snapshot of a channel's state, for inspection and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// Channel id.
    pub channel: String,
    /// Sending dialect.
    pub dialect: Dialect,
    /// Current lamport timestamp.
    pub lamport_timestamp: u64,
    /// Ids of the local log in log order (lamport timestamp, then id).
    pub log: Vec<String>,
    /// Unacknowledged outgoing ids, in send order.
    pub outgoing: Vec<String>,
    /// Buffered incoming ids, sorted.
    pub incoming: Vec<String>,
    /// SDS-R: ids we will request, in T_req order.
    pub repair_requests: Vec<String>,
    /// SDS-R: ids we may re-broadcast, in T_resp order.
    pub repair_responses: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DepState {
    Present,
    Waiting,
    Missing,
}

fn encoding_of(d: Dialect) -> BloomEncoding {
    match d {
        Dialect::Spec => BloomEncoding::Spec,
        Dialect::Nim => BloomEncoding::Nim,
    }
}

fn enc_index(e: BloomEncoding) -> usize {
    match e {
        BloomEncoding::Spec => 0,
        BloomEncoding::Nim => 1,
    }
}

/// Cap on own messages tracked for sync suppression.
const MAX_NEWS: usize = 1024;
/// Cap on delivered messages waiting to be named in a causal history.
const MAX_UNANNOUNCED: usize = 4096;
/// Cap on the sender ids a channel shares among its stored messages (beyond
/// it, ids are simply not shared).
const MAX_SENDERS: usize = 4096;

/// When the next periodic sync is due after `now`: the sync interval plus a
/// random back-off, saturating (an interval configured as `u64::MAX` means
/// "never", not a time that wraps around into the past).
fn sync_due_after(rng: &mut Rng, cfg: &Config, now: u64) -> u64 {
    now.saturating_add(cfg.sync_interval_ms)
        .saturating_add(rng.below(cfg.sync_backoff_ms))
}

pub(crate) struct Channel {
    id: Id,
    cfg: ChannelConfig,
    lamport: u64,
    log: Log,
    /// Sequence number of the next message delivered or sent.
    seq: u64,
    /// The last `causal_history_len` messages delivered or sent: (seq, id).
    recent: VecDeque<(u64, Id)>,
    evicted: BoundedSet,
    /// The log-order key of the newest message whose id we forgot: a message
    /// at or before it may have been delivered already.
    forgotten: Option<(u64, Id)>,
    met: BoundedSet,
    bloom: RollingBloom,
    bloom_bytes: Option<Bytes>,
    outgoing: Outgoing,
    incoming: Incoming,
    repair_out: RepairOut,
    repair_in: RepairIn,
    /// When we last broadcast something carrying our state.
    last_broadcast: u64,
    /// When the next periodic sync is due.
    sync_due: u64,
    /// Messages delivered from others that no broadcast we saw (ours or
    /// another participant's) has named in its causal history yet, oldest
    /// first. They go first into our next causal history, and while there are
    /// any, others' broadcasts do not postpone our sync.
    unannounced: VecDeque<(u64, Id)>,
    unannounced_set: IdMap<u64>,
    /// Our own messages that no other participant has shown to have (in its
    /// causal history or bloom filter) yet; they keep our syncs going too.
    own_news: IdMap<[ItemHash; 2]>,
    /// Sender ids seen, shared by the stored messages and history entries.
    senders: IdSet,
    last_sender: Option<Id>,
    /// Randomness of this channel's back-offs (seeded; persisted).
    rng: Rng,
    /// Keys changed since the last successful write (when persistent).
    dirty: Option<Box<Dirty>>,
    /// The settings and clock as last written.
    last_meta: Option<crate::store::ChannelMeta>,
    pub stats: Stats,
}

impl Channel {
    pub fn new(ctx: &mut Ctx<'_>, id: Id, cfg: ChannelConfig, now: u64) -> Self {
        let bloom = RollingBloom::new(encoding_of(cfg.dialect), *ctx.bloom_params);
        let mut rng = Rng::new(ctx.seed ^ crate::hash::nim_string_hash(id.as_bytes()) as u64);
        let sync_due = sync_due_after(&mut rng, ctx.cfg, now);
        let mut repair_out = RepairOut::default();
        let r = &ctx.cfg.repair;
        repair_out.set_timing(ReqTiming {
            me: ctx.me.clone(),
            t_min: r.t_min_ms,
            t_max: r.t_max_ms,
            max_attempts: r.max_request_attempts,
        });
        Channel {
            id,
            cfg,
            lamport: now,
            log: Log::default(),
            seq: 0,
            recent: VecDeque::new(),
            evicted: BoundedSet::default(),
            forgotten: None,
            met: BoundedSet::default(),
            bloom,
            bloom_bytes: None,
            outgoing: Outgoing::default(),
            incoming: Incoming::default(),
            repair_out,
            repair_in: RepairIn::default(),
            last_broadcast: 0,
            sync_due,
            unannounced: VecDeque::new(),
            unannounced_set: IdMap::default(),
            own_news: IdMap::default(),
            senders: IdSet::default(),
            last_sender: None,
            rng,
            dirty: ctx.persistent.then(Box::default),
            last_meta: None,
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// Changes the sending dialect. The local bloom filter is rebuilt in the
    /// new encoding from the log (older received ids are forgotten).
    pub fn set_config(&mut self, ctx: &Ctx<'_>, cfg: ChannelConfig) {
        if cfg.dialect != self.cfg.dialect {
            let enc = encoding_of(cfg.dialect);
            let mut bloom = RollingBloom::new(enc, *ctx.bloom_params);
            for e in self.log.iter() {
                bloom.insert(&ItemHash::new(enc, e.msg.id.as_bytes()));
            }
            self.bloom = bloom;
            self.bloom_bytes = None;
        }
        self.cfg = cfg;
    }

    fn encoding(&self) -> BloomEncoding {
        encoding_of(self.cfg.dialect)
    }

    fn repair_hash(&self, cfg: &Config) -> RepairHash {
        cfg.repair.hash.unwrap_or(match self.cfg.dialect {
            Dialect::Spec => RepairHash::Spec,
            Dialect::Nim => RepairHash::Nim,
        })
    }

    /// The stored form of a logged or buffered message (tests).
    #[cfg(test)]
    pub fn stored(&self, id: &str) -> Option<Arc<StoredMessage>> {
        self.log
            .get(id)
            .map(|e| e.msg.clone())
            .or_else(|| self.incoming.get(id).map(|b| b.msg.clone()))
    }

    pub fn knows(&self, id: &str) -> bool {
        self.log.contains(id) || self.outgoing.contains(id) || self.incoming.contains(id)
    }

    fn bloom_insert(&mut self, id: &str) {
        // Set in the filter when it is next read (`bloom_field`).
        self.bloom
            .defer(&ItemHash::new(self.encoding(), id.as_bytes()));
        self.bloom_bytes = None;
    }

    fn bloom_field(&mut self) -> Bytes {
        if let Some(b) = &self.bloom_bytes {
            return b.clone();
        }
        self.bloom.flush();
        let f = self.bloom.filter();
        let mut v = Vec::with_capacity(f.encoded_len());
        f.encode_into(&mut v);
        let b = Bytes::from(v);
        self.bloom_bytes = Some(b.clone());
        b
    }

    /// Where a referenced message is, with the channel's shared copy of its
    /// id when it holds one (one lookup per place, done once).
    fn dep_lookup(&self, id: &Key<'_>) -> (DepState, Option<&Id>) {
        if let Some(k) = self
            .log
            .key(id)
            .or_else(|| self.met.key(id))
            .or_else(|| self.evicted.key(id))
        {
            (DepState::Present, Some(k))
        } else {
            match self.incoming.lookup(id) {
                Some(Known::Buffered(k)) => (DepState::Waiting, Some(k)),
                Some(Known::Waited(k)) => (DepState::Missing, Some(k)),
                None => (DepState::Missing, None),
            }
        }
    }

    /// The causal history of our next message: N messages we delivered or
    /// sent, in delivery order: first those not yet announced (named by any
    /// broadcast we saw), then the most recent ones.
    ///
    /// Usually this is the log's tail. It differs after a late arrival or a
    /// burst of deliveries: a message delivered late sorts into the middle of
    /// the log (by lamport timestamp), and a cascade can release more than N
    /// messages at once, so taking the log's tail would never name some of
    /// them, and a participant that lost every message naming them would
    /// never learn they exist (found by the convergence property test).
    fn causal_history(&mut self, ctx: &mut Ctx<'_>) -> Vec<Dep> {
        let n = ctx.cfg.causal_history_len;
        let mut picked: Vec<(u64, Id)> = Vec::with_capacity(n);
        while picked.len() < n {
            let Some((seq, id)) = self.unannounced.pop_front() else {
                break;
            };
            if self.unannounced_set.get(&id) != Some(&seq) {
                // Announced meanwhile (removed from the set only).
                continue;
            }
            self.unannounced_set.remove(&id);
            persist::touch(&mut self.dirty, Kind::Unannounced, &id);
            if self.log.contains(&id) {
                picked.push((seq, id));
            }
        }
        for (seq, id) in self.recent.iter().rev() {
            if picked.len() >= n {
                break;
            }
            if !picked.iter().any(|(_, p)| p == id) {
                picked.push((*seq, id.clone()));
            }
        }
        picked.sort_unstable_by_key(|(seq, _)| *seq);
        if let Some(p) = ctx.hints.as_deref_mut() {
            for (_, id) in &picked {
                if let Some(e) = self.log.get_mut(id) {
                    if e.hint.is_none() {
                        e.hint = p.retrieval_hint(&self.id, id).map(Box::new);
                        if e.hint.is_some() {
                            persist::touch(&mut self.dirty, Kind::Log, id);
                        }
                    }
                }
            }
        }
        picked
            .iter()
            .filter_map(|(_, id)| self.log.get(id))
            .map(|e| Dep {
                id: e.msg.id.text().clone(),
                hint: e.hint.clone(),
                sender: (!e.msg.sender_id.is_empty()).then(|| e.msg.sender_id.text().clone()),
            })
            .collect()
    }

    /// A shared copy of a sender id (ids repeat: a group has few senders).
    fn sender_key(&mut self, sender: &str, hash: Option<u64>) -> Id {
        self.shared_sender(sender, hash).clone()
    }

    /// The channel's shared copy of a sender id, borrowed: the caller takes
    /// the one reference it keeps (each reference taken and dropped again is
    /// an atomic operation, and a history entry's sender used to cost five).
    ///
    /// Without its hash (`hash`), the last sender is tried first:
    /// consecutive entries often name the same one, and comparing a short
    /// text is cheaper than hashing it. With the hash, the table is probed
    /// at once and its copy lent, with no reference taken or dropped here.
    fn shared_sender(&mut self, sender: &str, hash: Option<u64>) -> &Id {
        if hash.is_none() && self.last_sender.as_ref().is_some_and(|k| **k == *sender) {
            return self.last_sender.as_ref().expect("just checked");
        }
        let key = Key::hashed(sender, hash);
        if self.senders.len() < MAX_SENDERS || self.senders.contains(&key) {
            let k = self.senders.get_or_insert_with(&key, |k| Id::with_key(k));
            if hash.is_none() {
                self.last_sender = Some(k.clone());
            }
            return k;
        }
        // The table is full (a peer naming that many senders): this one's
        // copy is kept as the last sender only.
        self.last_sender = Some(Id::with_key(&key));
        self.last_sender.as_ref().expect("set above")
    }

    /// The in-memory form of a received history entry whose id is `id` (the
    /// channel's shared copy when it holds one, from [`Self::dep_lookup`]).
    #[inline(always)]
    fn entry_dep(
        &mut self,
        e: &wire::HistoryEntryRef<'_>,
        id: arcstr::ArcStr,
        sender_hash: Option<u64>,
    ) -> Dep {
        Dep {
            id,
            // Copied: a slice would keep the whole wire buffer alive.
            hint: e
                .retrieval_hint
                .as_ref()
                .map(|h| Box::new(Bytes::copy_from_slice(h))),
            sender: e
                .sender_id
                .map(|s| self.shared_sender(s, sender_hash).text().clone()),
        }
    }

    /// The wire bytes of a stored message of this channel, in its sending dialect.
    fn encode_stored(
        &self,
        msg: &StoredMessage,
        bloom: Option<&[u8]>,
        repair_request: &[HistoryEntry],
    ) -> Result<Bytes, wire::EncodeError> {
        msg.encode(&self.id, self.cfg.dialect, bloom, repair_request)
    }

    fn transmit(
        &mut self,
        ctx: &mut Ctx<'_>,
        message_id: &str,
        reason: TransmitReason,
        bytes: Bytes,
        repair: &[HistoryEntry],
    ) {
        ctx.out.transmits.push_back(Transmit {
            channel: owned(&self.id),
            message_id: owned(message_id),
            reason,
            bytes,
            repair_request: repair.iter().map(|e| e.message_id.clone()).collect(),
        });
    }

    /// Bookkeeping after we broadcast something that carries our state.
    fn after_broadcast(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        self.last_broadcast = now;
        self.sync_due = sync_due_after(&mut self.rng, ctx.cfg, now);
    }

    /// SDS-R: eligible repair requests for the next outgoing message.
    fn take_repair_requests(&mut self, ctx: &mut Ctx<'_>, now: u64) -> Vec<HistoryEntry> {
        let r = &ctx.cfg.repair;
        if !r.enabled {
            return Vec::new();
        }
        let entries = self.repair_out.take_eligible(
            now,
            r.max_requests_per_message,
            now.saturating_add(r.retry_interval_ms),
            r.max_request_attempts.max(1),
        );
        for e in &entries {
            persist::touch(&mut self.dirty, Kind::RepairOut, &e.message_id);
        }
        if !entries.is_empty() {
            self.stats.repair_requests_sent += entries.len() as u64;
            ctx.out.events.push_back(Event::RepairRequested {
                channel: owned(&self.id),
                message_ids: entries.iter().map(|e| e.message_id.clone()).collect(),
            });
        }
        entries
    }

    // ----------------------------------------------------------------- send

    /// Sends a content message. The caller has validated the arguments.
    pub fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: Id,
        content: Bytes,
        now: u64,
    ) -> Result<(), wire::EncodeError> {
        self.lamport = now.max(self.lamport.saturating_add(1));
        let deps = self.causal_history(ctx);
        let repair = self.take_repair_requests(ctx, now);
        let bloom = self.bloom_field();
        let msg = Arc::new(StoredMessage {
            id: id.clone(),
            sender_id: ctx.me.clone(),
            lamport: self.lamport,
            causal_history: deps.into_boxed_slice(),
            content,
        });
        let bytes = self.encode_stored(&msg, Some(&bloom), &repair)?;
        self.bloom_insert(&id);
        self.log_insert(
            ctx,
            LogEntry {
                msg: msg.clone(),
                hint: None,
                last_seen: now,
                seq: 0,
            },
        );
        if self.outgoing.len() >= ctx.cfg.max_outgoing.max(1) {
            if let Some(old) = self.outgoing.oldest() {
                self.give_up(ctx, &old);
            }
        }
        let hashes = [
            ItemHash::new(BloomEncoding::Spec, id.as_bytes()),
            ItemHash::new(BloomEncoding::Nim, id.as_bytes()),
        ];
        self.outgoing.insert(
            OutEntry {
                msg,
                attempts: 0,
                hashes,
                ackers: Vec::new(),
                last_sent: now,
            },
            now.saturating_add(ctx.cfg.resend_interval_ms),
        );
        persist::touch(&mut self.dirty, Kind::Outgoing, &id);
        self.stats.sent += 1;
        self.transmit(ctx, &id, TransmitReason::New, bytes, &repair);
        self.after_broadcast(ctx, now);
        if self.own_news.len() < MAX_NEWS {
            persist::touch(&mut self.dirty, Kind::OwnNews, &id);
            self.own_news.insert(id, hashes);
        }
        Ok(())
    }

    fn give_up(&mut self, ctx: &mut Ctx<'_>, id: &str) {
        if self.outgoing.remove(id).is_some() {
            persist::touch(&mut self.dirty, Kind::Outgoing, id);
            self.stats.not_acknowledged += 1;
            ctx.out.events.push_back(Event::NotAcknowledged {
                channel: owned(&self.id),
                message_id: owned(id),
            });
        }
    }

    /// A message arrived (by any path): cancel our request for it and our
    /// pending answer to someone else's.
    fn cancel_repairs(&mut self, id: &Id) {
        if self.repair_out.remove(id).is_some() {
            persist::touch(&mut self.dirty, Kind::RepairOut, id);
        }
        if self.repair_in.remove(id) {
            persist::touch(&mut self.dirty, Kind::RepairIn, id);
        }
    }

    fn remember_met(&mut self, ctx: &Ctx<'_>, id: &Id) {
        persist::touch(&mut self.dirty, Kind::Met, id);
        for old in self.met.insert(id.clone(), ctx.cfg.max_marked_met) {
            persist::touch(&mut self.dirty, Kind::Met, &old);
        }
    }

    fn log_insert(&mut self, ctx: &Ctx<'_>, mut entry: LogEntry) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        entry.seq = seq;
        persist::touch(&mut self.dirty, Kind::Log, &entry.msg.id);
        let n = ctx.cfg.causal_history_len;
        if n > 0 {
            if self.recent.len() >= n {
                self.recent.pop_front();
            }
            self.recent.push_back((seq, entry.msg.id.clone()));
        }
        for e in self.log.insert(entry, ctx.cfg.max_log) {
            persist::touch(&mut self.dirty, Kind::Log, &e.msg.id);
            persist::touch(&mut self.dirty, Kind::Evicted, &e.msg.id);
            if ctx.cfg.max_evicted_ids == 0 {
                self.forget((e.msg.lamport, e.msg.id.clone()));
                continue;
            }
            for (old, lamport) in
                self.evicted
                    .insert_tagged(e.msg.id.clone(), e.msg.lamport, ctx.cfg.max_evicted_ids)
            {
                persist::touch(&mut self.dirty, Kind::Evicted, &old);
                // An id restored from a store has no lamport timestamp (it is
                // not persisted): the watermark stays where it is, which only
                // means that message may be delivered again, as before.
                if let Some(lamport) = lamport {
                    self.forget((lamport, old));
                }
            }
        }
        seq
    }

    /// Moves the forgotten watermark up to `key`.
    fn forget(&mut self, key: (u64, Id)) {
        if self.forgotten.as_ref().is_none_or(|f| key > *f) {
            self.forgotten = Some(key);
        }
    }

    // -------------------------------------------------------------- receive

    /// Processes a decoded non-ephemeral message from another participant,
    /// handed over as `how` says.
    pub fn receive(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &wire::MessageRef<'_>,
        dialect: Dialect,
        hint: Option<Bytes>,
        now: u64,
        how: Handover<'_>,
    ) -> Received {
        let pre = how.hashes;
        let kind = msg.kind();
        self.stats.received += 1;
        // Shared with the reverse index (and so with the repair entry) when
        // buffered messages wait for it: later lookups by this id then
        // compare pointers, not 64-byte strings.
        let key = Key::hashed(msg.message_id, pre.map(|p| p.id));
        // One probe of the incoming buffer, for the shared id and for the
        // duplicate check below (nothing in between changes the buffer).
        let (id, buffered): (Id, bool) = match self.incoming.lookup(&key) {
            Some(Known::Buffered(k)) if kind == MessageKind::Content => (k.clone(), true),
            Some(Known::Waited(k)) if kind == MessageKind::Content => (k.clone(), false),
            _ => match how.stored {
                Some(s) => (s.id.clone(), false),
                None => (Id::with_key(&key), false),
            },
        };
        if kind == MessageKind::Content {
            // Arrival by any path cancels our own request and our pending answer.
            self.cancel_repairs(&id);
        }
        let view = self.decode_bloom(ctx, msg, dialect);
        // Each history id hashed once, for every table it is looked up in.
        let keys: SmallVec<[Key<'_>; 16]> = match pre {
            // One branch per message, not per entry.
            Some(p) => msg
                .causal_history
                .iter()
                .zip(p.history.iter())
                .map(|(e, &h)| Key::hashed(e.message_id, Some(h)))
                .collect(),
            None => msg
                .causal_history
                .iter()
                .map(|e| Key::new(e.message_id))
                .collect(),
        };
        self.review_acks(ctx, msg, &keys, view.as_ref(), dialect);
        self.process_repair_requests(ctx, msg, now);
        self.note_coverage(ctx, msg, &keys, view.as_ref(), dialect, now);

        if kind == MessageKind::Sync {
            self.stats.syncs_received += 1;
            let mut missing: Vec<HistoryEntry> = Vec::new();
            let mut missing_deps: Vec<(Id, Dep)> = Vec::new();
            for (i, (e, k)) in msg.causal_history.iter().zip(&keys).enumerate() {
                let (state, known) = self.dep_lookup(k);
                if matches!(state, DepState::Missing) {
                    let id = known.cloned().unwrap_or_else(|| Id::with_key(k));
                    let dep = self.entry_dep(e, id.text().clone(), pre.map(|p| p.senders[i]));
                    missing_deps.push((id, dep));
                    missing.push(e.to_entry());
                }
            }
            if !missing.is_empty() {
                self.report_missing(ctx, msg.message_id, missing, missing_deps, now);
            }
            return Received::Sync;
        }

        let logged = match self.log.get_mut(&id) {
            Some(e) => {
                e.last_seen = now;
                true
            }
            None => false,
        };
        if logged || buffered || self.evicted.contains(&id) {
            self.stats.duplicates += 1;
            return Received::Duplicate;
        }
        let lamport = msg.lamport_timestamp.unwrap_or(0);
        if self
            .forgotten
            .as_ref()
            .is_some_and(|(l, k)| (lamport, msg.message_id) <= (*l, &**k))
        {
            // We may have delivered it before and forgotten its id (a
            // duplicate found by the 100-participant simulation: a repair
            // rebroadcast of a message sent 380 s earlier). Not delivered;
            // what waits for it gets it as a lost dependency.
            self.stats.too_old += 1;
            self.bloom_insert(&id);
            let ready = self.settle(ctx, &id, true);
            if !ready.is_empty() {
                self.cascade(ctx, None, ready, now);
            }
            return Received::TooOld;
        }
        self.bloom_insert(&id);

        // On the stack: the buffer keeps a count, not the list.
        let mut unmet: SmallVec<[Id; 16]> = SmallVec::new();
        let mut missing: Vec<HistoryEntry> = Vec::new();
        let mut missing_deps: Vec<(Id, Dep)> = Vec::new();
        let n_deps = msg.causal_history.len();
        // With a prepared stored form, its history entries are shared as
        // they are (only a missing one is taken apart, for its repair
        // request); without, this channel builds them.
        let prepared = how.stored;
        // Every history entry looked up first, with nothing but loads in
        // between. The loop below takes references on shared ids, and each
        // reference count is an atomic operation, which waits for every
        // load before it: there, the cache misses of the ten lookups came
        // one after the other. Here they overlap, and the loop's own
        // lookups (for the shared ids) find their lines in the cache.
        // Random-order receipt at N = 100 000 gained 2-40 % (four
        // alternating pairs, docs/bench.md, session 13) for about 1 600
        // more instructions per message (7 %).
        let states: SmallVec<[DepState; 16]> = keys.iter().map(|k| self.dep_lookup(k).0).collect();
        let mut deps: Vec<Dep> = Vec::with_capacity(if prepared.is_some() { 0 } else { n_deps });
        for (i, (e, k)) in msg.causal_history.iter().zip(&keys).enumerate() {
            // A self-reference or a repeated entry is kept (it is part of the
            // message) but not waited for twice. The keys compare hashes
            // first, and their texts are in the message buffer at hand.
            let repeated = k.equivalent(&id) || keys[..i].iter().any(|p| p.same(k));
            // Nothing the lookups read has changed since `states`.
            let (again, known) = self.dep_lookup(k);
            let state = states[i];
            debug_assert_eq!(again, state);
            let waits = !repeated && !matches!(state, DepState::Present);
            // `dep`: the entry this channel builds for its own stored form
            // (none with a prepared one, whose entries are shared).
            let (dep, dep_id) = match prepared {
                Some(s) => {
                    let dep_id = waits.then(|| {
                        known
                            .cloned()
                            .unwrap_or_else(|| Id::with_text(k, s.causal_history[i].id.clone()))
                    });
                    (None, dep_id)
                }
                None => {
                    // One reference taken on the shared id for the stored
                    // entry, and one more only for what waits (an atomic
                    // operation each, on a line that is usually not in the
                    // cache: a present dependency used to cost three).
                    let (text, dep_id) = match known {
                        Some(k) => (k.text().clone(), waits.then(|| k.clone())),
                        None => {
                            let new = Id::with_key(k);
                            (new.text().clone(), waits.then_some(new))
                        }
                    };
                    let dep = self.entry_dep(e, text, pre.map(|p| p.senders[i]));
                    (Some(dep), dep_id)
                }
            };
            if let Some(dep_id) = dep_id {
                if matches!(state, DepState::Missing) {
                    if missing.is_empty() {
                        // At most one per remaining entry: one allocation
                        // each, not one per doubling.
                        missing.reserve_exact(n_deps - i);
                        missing_deps.reserve_exact(n_deps - i);
                    }
                    // The entry for its repair request: ours, or the
                    // prepared form's (exactly one of them exists).
                    let entry = dep.as_ref().or(prepared.map(|s| &s.causal_history[i]));
                    if let Some(entry) = entry {
                        missing_deps.push((dep_id.clone(), entry.clone()));
                        missing.push(e.to_entry());
                    }
                }
                unmet.push(dep_id);
            }
            if let Some(dep) = dep {
                deps.push(dep);
            }
        }
        let stored = match prepared {
            Some(s) => s.clone(),
            None => {
                let sender_id = self.sender_key(msg.sender_id, pre.map(|p| p.sender));
                Arc::new(StoredMessage {
                    id: id.clone(),
                    sender_id,
                    lamport: msg.lamport_timestamp.unwrap_or(0),
                    causal_history: deps.into_boxed_slice(),
                    // Shared as given, or copied out so that the whole wire
                    // buffer (with its bloom filter) is not kept alive.
                    content: match &msg.content {
                        Some(c) if how.share_content => c.clone(),
                        c => Bytes::copy_from_slice(c.as_deref().unwrap_or_default()),
                    },
                })
            }
        };
        if unmet.is_empty() {
            self.cascade(ctx, Some((stored, hint, Vec::new())), Vec::new(), now);
            return Received::Delivered;
        }
        if self.incoming.len() >= ctx.cfg.max_incoming.max(1) {
            let oldest = self.incoming.oldest();
            if let Some(oldest) = oldest {
                self.incoming.remove(&oldest);
                persist::touch(&mut self.dirty, Kind::Incoming, &oldest);
                self.stats.buffer_overflows += 1;
                ctx.out.events.push_back(Event::BufferOverflow {
                    channel: owned(&self.id),
                    message_id: owned(&oldest),
                });
            }
        }
        self.incoming.insert(
            Buffered {
                msg: stored,
                hint,
                lost: Vec::new(),
            },
            &unmet,
            now.saturating_add(ctx.cfg.buffer_timeout_ms),
        );
        persist::touch(&mut self.dirty, Kind::Incoming, &id);
        self.stats.buffered += 1;
        let n = missing.len();
        if n > 0 {
            self.report_missing(ctx, &id, missing, missing_deps, now);
        }
        Received::Buffered { missing: n }
    }

    fn report_missing(
        &mut self,
        ctx: &mut Ctx<'_>,
        message_id: &str,
        missing: Vec<HistoryEntry>,
        missing_deps: Vec<(Id, Dep)>,
        now: u64,
    ) {
        if ctx.cfg.repair.enabled {
            // `missing_deps[i]` is `missing[i]` with the channel's shared ids
            // (those of the reverse index when a buffered message waits for it).
            for (e, (dep_id, dep)) in missing.iter().zip(missing_deps) {
                if e.sender_id.as_deref().is_none_or(str::is_empty) {
                    // Unanswerable: nobody can answer a request without the
                    // original sender.
                    continue;
                }
                self.request_repair(ctx, dep_id, dep, now);
            }
        }
        self.stats.missing_reported += missing.len() as u64;
        ctx.out.events.push_back(Event::MissingDependencies {
            channel: owned(&self.id),
            message_id: owned(message_id),
            missing,
        });
    }

    /// SDS-R: schedules a request for the missing `dep` (shared id `id`),
    /// unless one is scheduled already or the buffer is full of entries due
    /// earlier.
    fn request_repair(&mut self, ctx: &Ctx<'_>, id: Id, dep: Dep, now: u64) {
        let r = &ctx.cfg.repair;
        if !r.enabled || self.repair_out.contains(&id) {
            return;
        }
        if self
            .repair_out
            .full_before(r.max_outgoing_entries, now.saturating_add(r.t_min_ms))
        {
            // Full of entries due before this one could be (T_req is at
            // least T_min away): it would be evicted at once.
            return;
        }
        let hash = self.repair_hash(ctx.cfg);
        persist::touch(&mut self.dirty, Kind::RepairOut, &id);
        for old in self
            .repair_out
            .add(id, dep, hash, now, r.max_outgoing_entries)
        {
            persist::touch(&mut self.dirty, Kind::RepairOut, &old);
        }
    }

    fn decode_bloom<'m>(
        &mut self,
        ctx: &Ctx<'_>,
        msg: &'m wire::MessageRef<'_>,
        dialect: Dialect,
    ) -> Option<BloomView<'m>> {
        let bytes = msg.bloom_filter.as_ref().filter(|b| !b.is_empty())?;
        match BloomView::decode(
            encoding_of(dialect),
            bytes,
            ctx.bloom_params,
            &ctx.cfg.bloom_limits,
        ) {
            Ok(v) => Some(v),
            Err(_) => {
                self.stats.bad_blooms += 1;
                None
            }
        }
    }

    /// Review ACK status: causal-history hits acknowledge; bloom hits from
    /// distinct senders possibly acknowledge, up to the threshold.
    fn review_acks(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &wire::MessageRef<'_>,
        keys: &[Key<'_>],
        view: Option<&BloomView<'_>>,
        dialect: Dialect,
    ) {
        for (e, k) in msg.causal_history.iter().zip(keys) {
            if self.outgoing.remove(k).is_some() {
                persist::touch(&mut self.dirty, Kind::Outgoing, e.message_id);
                self.stats.acknowledged += 1;
                ctx.out.events.push_back(Event::Acknowledged {
                    channel: owned(&self.id),
                    message_id: e.message_id.to_owned(),
                });
            }
        }
        let Some(view) = view else { return };
        if self.outgoing.len() == 0 {
            return;
        }
        let idx = enc_index(encoding_of(dialect));
        let sender = msg.sender_id;
        let threshold = ctx.cfg.possible_ack_threshold.max(1);
        let mut acked: Vec<Id> = Vec::new();
        let mut possibly: Vec<(Id, u32, u64)> = Vec::new();
        for o in self.outgoing.iter_mut() {
            if !view.contains(&o.hashes[idx]) || o.ackers.iter().any(|a| &**a == sender) {
                continue;
            }
            o.ackers.push(Id::from(sender));
            persist::touch(&mut self.dirty, Kind::Outgoing, &o.msg.id);
            let count = o.ackers.len() as u32;
            if count >= threshold {
                acked.push(o.msg.id.clone());
            } else {
                possibly.push((o.msg.id.clone(), count, o.last_sent));
            }
        }
        for id in acked {
            self.outgoing.remove(&id);
            self.stats.acknowledged += 1;
            ctx.out.events.push_back(Event::Acknowledged {
                channel: owned(&self.id),
                message_id: owned(&id),
            });
        }
        for (id, count, last_sent) in possibly {
            let later = last_sent.saturating_add(ctx.cfg.possibly_acked_resend_interval_ms);
            if self.outgoing.resend.get(&*id).is_some_and(|at| at < later) {
                self.outgoing.resend.set(id.clone(), later);
            }
            self.stats.possibly_acknowledged += 1;
            ctx.out.events.push_back(Event::PossiblyAcknowledged {
                channel: owned(&self.id),
                message_id: owned(&id),
                count,
            });
        }
    }

    /// SDS-R: another participant's repair requests.
    fn process_repair_requests(&mut self, ctx: &mut Ctx<'_>, msg: &wire::MessageRef<'_>, now: u64) {
        let r = &ctx.cfg.repair;
        if !r.enabled || msg.repair_request.is_empty() {
            return;
        }
        self.stats.repair_requests_received += msg.repair_request.len() as u64;
        ctx.out.events.push_back(Event::RepairRequestReceived {
            channel: owned(&self.id),
            from: msg.sender_id.to_owned(),
            message_ids: msg
                .repair_request
                .iter()
                .map(|e| e.message_id.to_owned())
                .collect(),
        });
        let hash = self.repair_hash(ctx.cfg);
        for e in &msg.repair_request {
            let k = Key::new(e.message_id);
            // Someone else asked first: hold our own request back for a round
            // (the spec removes it; we re-arm it so that a lost answer does not
            // stall recovery for good).
            if self
                .repair_out
                .postpone(&k, now.saturating_add(r.retry_interval_ms))
            {
                persist::touch(&mut self.dirty, Kind::RepairOut, e.message_id);
            }
            let Some(sender) = e.sender_id.filter(|s| !s.is_empty()) else {
                continue;
            };
            let Some(entry) = self.log.get(&k) else {
                continue;
            };
            if self.repair_in.contains(&k)
                || entry.last_seen.saturating_add(r.recent_copy_window_ms) > now
            {
                // Already queued, or a copy went by just now (the answer to
                // this very request, reordered ahead of it).
                continue;
            }
            if !timing::in_response_group(
                hash,
                ctx.me.as_bytes(),
                sender,
                e.message_id,
                r.num_response_groups,
            ) {
                continue;
            }
            let me = ctx.me.as_bytes();
            let offset = timing::t_resp_offset(hash, me, sender, e.message_id, r.t_max_ms);
            let t_resp = now.saturating_add(offset);
            let rid = Id::with_key(&k);
            persist::touch(&mut self.dirty, Kind::RepairIn, &rid);
            for old in self.repair_in.add(rid, t_resp, r.max_incoming_entries) {
                persist::touch(&mut self.dirty, Kind::RepairIn, &old);
            }
        }
    }

    /// A message from another participant was delivered: it is to be named
    /// in one of our causal histories.
    fn announce_later(&mut self, ctx: &mut Ctx<'_>, seq: u64, id: Id, now: u64) {
        if self.unannounced_set.is_empty() {
            let due = sync_due_after(&mut self.rng, ctx.cfg, now);
            self.sync_due = self.sync_due.min(due);
        }
        if self.unannounced_set.len() >= MAX_UNANNOUNCED {
            while let Some((old_seq, old)) = self.unannounced.pop_front() {
                if self.unannounced_set.get(&old) == Some(&old_seq) {
                    self.unannounced_set.remove(&old);
                    persist::touch(&mut self.dirty, Kind::Unannounced, &old);
                    break;
                }
            }
        }
        persist::touch(&mut self.dirty, Kind::Unannounced, &id);
        self.unannounced_set.insert(id.clone(), seq);
        self.unannounced.push_back((seq, id));
    }

    /// Sync suppression: what another participant's broadcast shows it has.
    fn note_coverage(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &wire::MessageRef<'_>,
        keys: &[Key<'_>],
        view: Option<&BloomView<'_>>,
        dialect: Dialect,
        now: u64,
    ) {
        if !self.own_news.is_empty() {
            let idx = enc_index(encoding_of(dialect));
            let dirty = &mut self.dirty;
            self.own_news.retain(|id, hashes| {
                // Hashes first: no id text is read unless one matches.
                let named = keys.iter().any(|k| k.equivalent(id));
                let covered = named || view.is_some_and(|v| v.contains(&hashes[idx]));
                if covered {
                    persist::touch(dirty, Kind::OwnNews, id);
                }
                !covered
            });
        }
        if !self.unannounced_set.is_empty() {
            let mut removed = false;
            for (e, k) in msg.causal_history.iter().zip(keys) {
                if self.unannounced_set.remove(k).is_some() {
                    persist::touch(&mut self.dirty, Kind::Unannounced, e.message_id);
                    removed = true;
                }
            }
            // The queue keeps announced ids until they reach its front (or
            // until it is mostly stale): rebuilding it on every receive cost
            // O(queue) per message, half the simulator's time at 100
            // participants.
            if removed && self.unannounced.len() > 2 * self.unannounced_set.len() + 64 {
                let set = &self.unannounced_set;
                self.unannounced
                    .retain(|(seq, id)| set.get(id) == Some(seq));
            }
        }
        if ctx.cfg.sync_suppressed_by_others
            && self.own_news.is_empty()
            && self.unannounced_set.is_empty()
        {
            let due = sync_due_after(&mut self.rng, ctx.cfg, now);
            self.sync_due = self.sync_due.max(due);
        }
    }

    /// Delivers `first` (if any) and every buffered message in `ready`, then
    /// whatever they release, in causal order: a message is delivered only
    /// after all its dependencies; messages released together go in
    /// (lamport timestamp, id) order.
    fn cascade(
        &mut self,
        ctx: &mut Ctx<'_>,
        first: Option<(Arc<StoredMessage>, Option<Bytes>, Vec<String>)>,
        ready: Vec<(u64, Id)>,
        now: u64,
    ) {
        // Ids no longer buffered are skipped when popped.
        let mut heap: BinaryHeap<Reverse<(u64, Id)>> = ready.into_iter().map(Reverse).collect();
        let mut next = first;
        loop {
            let (msg, hint, lost) = match next.take() {
                Some(x) => x,
                None => match heap.pop() {
                    Some(Reverse((_, id))) => match self.incoming.remove(&id) {
                        Some(b) => {
                            persist::touch(&mut self.dirty, Kind::Incoming, &id);
                            (b.msg, b.hint, b.lost)
                        }
                        None => continue,
                    },
                    None => break,
                },
            };
            let id = msg.id.clone();
            self.deliver_one(ctx, msg, hint, lost, now);
            let ready = self.resolve_waiters(&id, false);
            for r in ready {
                heap.push(Reverse(r));
            }
        }
    }

    fn deliver_one(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: Arc<StoredMessage>,
        hint: Option<Bytes>,
        lost: Vec<String>,
        now: u64,
    ) {
        self.lamport = self.lamport.max(msg.lamport);
        self.cancel_repairs(&msg.id);
        self.stats.delivered += 1;
        ctx.out.events.push_back(Event::Delivered {
            channel: owned(&self.id),
            message_id: owned(&msg.id),
            sender_id: owned(&msg.sender_id),
            lamport_timestamp: msg.lamport,
            content: msg.content.clone(),
            retrieval_hint: hint.clone(),
            lost_dependencies: lost,
            seq: self.seq,
        });
        let id = msg.id.clone();
        let seq = self.log_insert(
            ctx,
            LogEntry {
                msg,
                hint: hint.map(Box::new),
                last_seen: now,
                seq: 0,
            },
        );
        self.announce_later(ctx, seq, id, now);
    }

    // ----------------------------------------------------------- mark met

    pub fn mark_met<I, S>(&mut self, ctx: &mut Ctx<'_>, ids: I, now: u64)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut ready = Vec::new();
        for id in ids {
            let id = id.as_ref();
            if self.log.contains(id) {
                continue;
            }
            let id = Id::from(id);
            self.bloom_insert(&id);
            ready.extend(self.settle(ctx, &id, false));
        }
        self.cascade(ctx, None, ready, now);
    }

    /// A dependency that will not be delivered here (marked met, lost or too
    /// old): remembered as met, its repairs cancelled, and the buffered
    /// messages it releases returned (with it listed as lost when `lost`).
    fn settle(&mut self, ctx: &Ctx<'_>, id: &Id, lost: bool) -> Vec<(u64, Id)> {
        self.remember_met(ctx, id);
        self.cancel_repairs(id);
        self.resolve_waiters(id, lost)
    }

    /// Resolves `id` for the buffered messages waiting for it (see
    /// [`Incoming::resolve`]); with persistence, every one changed is
    /// marked for the next write (without, a waiting message is read only
    /// when it becomes ready).
    fn resolve_waiters(&mut self, id: &Id, lost: bool) -> Vec<(u64, Id)> {
        let dirty = &mut self.dirty;
        let track = dirty.is_some();
        self.incoming.resolve(
            id,
            lost,
            track.then_some(|w: &Id| persist::touch(dirty, Kind::Incoming, w)),
        )
    }

    /// Messages from others in the log delivered after `seq`, in delivery order.
    pub fn delivered_after(&self, me: &str, seq: Option<u64>) -> Vec<crate::Delivery> {
        let mut v: Vec<crate::Delivery> = self
            .log
            .iter()
            .filter(|e| seq.is_none_or(|s| e.seq > s) && &*e.msg.sender_id != me)
            .map(|e| crate::Delivery {
                seq: e.seq,
                message_id: owned(&e.msg.id),
                sender_id: owned(&e.msg.sender_id),
                lamport_timestamp: e.msg.lamport,
                content: e.msg.content.clone(),
                retrieval_hint: e.hint.as_deref().cloned(),
            })
            .collect();
        v.sort_by_key(|d| d.seq);
        v
    }

    pub fn set_hint(&mut self, id: &str, hint: Bytes) -> bool {
        match self.log.get_mut(id) {
            Some(e) => {
                e.hint = Some(Box::new(hint));
                persist::touch(&mut self.dirty, Kind::Log, id);
                true
            }
            None => false,
        }
    }

    // -------------------------------------------------------------- timers

    /// The earliest deadline of this channel.
    pub fn next_deadline(&self, cfg: &Config) -> Option<u64> {
        let mut d = [
            self.outgoing.resend.next(),
            self.incoming.next_timeout(),
            self.repair_in.due.next(),
            self.repair_out.next_expiry(),
            None,
            None,
        ];
        if self.cfg.sync_enabled() {
            d[4] = Some(self.sync_due);
            if cfg.repair.enabled {
                d[5] = self.repair_out.next_due().map(|t| {
                    t.max(
                        self.last_broadcast
                            .saturating_add(cfg.repair.min_request_gap_ms),
                    )
                });
            }
        }
        d.into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        self.repair_out.promote(now);
        self.resend_due(ctx, now);
        self.expire_buffered(ctx, now);
        self.answer_repairs(ctx, now);
        let mut renew = Vec::new();
        while let Some((id, old)) = self.repair_out.pop_expired(now) {
            persist::touch(&mut self.dirty, Kind::RepairOut, &id);
            self.stats.repair_requests_expired += 1;
            // Still missing, and a buffered message still waits for it: every
            // round's answer may have been lost (heavy loss, a partition), so
            // the rounds start over. The buffer timeout bounds this: once the
            // dependency is declared lost, nothing waits for it.
            if matches!(self.incoming.lookup(&id), Some(Known::Waited(_))) {
                renew.push((id, old.entry));
            }
        }
        for (id, dep) in renew {
            self.request_repair(ctx, id, dep, now);
        }
        if self.cfg.sync_enabled() {
            let periodic = now >= self.sync_due;
            let repair = ctx.cfg.repair.enabled
                && self.repair_out.has_eligible(now)
                && now
                    >= self
                        .last_broadcast
                        .saturating_add(ctx.cfg.repair.min_request_gap_ms);
            if periodic || repair {
                self.send_sync(ctx, now);
            }
        }
    }

    fn resend_due(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        while let Some((_, id)) = self.outgoing.resend.pop_due(now) {
            persist::touch(&mut self.dirty, Kind::Outgoing, &id);
            let Some(o) = self.outgoing.get_mut(&id) else {
                continue;
            };
            if o.attempts >= ctx.cfg.max_resend_attempts {
                self.give_up(ctx, &id);
                continue;
            }
            o.attempts += 1;
            o.last_sent = now;
            let interval = if o.ackers.is_empty() {
                ctx.cfg.resend_interval_ms
            } else {
                ctx.cfg.possibly_acked_resend_interval_ms
            };
            let msg = o.msg.clone();
            self.outgoing
                .resend
                .set(id.clone(), now.saturating_add(interval));
            let repair = self.take_repair_requests(ctx, now);
            let bloom = self.bloom_field();
            let Ok(bytes) = self.encode_stored(&msg, Some(&bloom), &repair) else {
                continue;
            };
            self.stats.resent += 1;
            self.transmit(ctx, &id, TransmitReason::Resend, bytes, &repair);
            self.after_broadcast(ctx, now);
        }
    }

    fn expire_buffered(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        while let Some(id) = self.incoming.pop_timed_out(now) {
            persist::touch(&mut self.dirty, Kind::Incoming, &id);
            let roots = self.root_missing(&id);
            let mut ready = Vec::new();
            if !roots.is_empty() {
                self.stats.lost += roots.len() as u64;
                for e in &roots {
                    let rid = Id::from(e.message_id.as_str());
                    ready.extend(self.settle(ctx, &rid, true));
                }
                ctx.out.events.push_back(Event::IrretrievablyLost {
                    channel: owned(&self.id),
                    missing: roots,
                });
            }
            self.cascade(ctx, None, ready, now);
            // A dependency cycle (only a misbehaving peer makes one): give up
            // the remaining dependencies of this message alone.
            if let Some(lamport) = self.incoming.force_lost(&id) {
                self.cascade(ctx, None, vec![(lamport, id)], now);
            }
        }
    }

    /// The dependencies at the root of a buffered message's wait: missing
    /// ids reached through buffered dependencies, with the entry that named them.
    fn root_missing(&self, id: &Id) -> Vec<HistoryEntry> {
        let mut roots: Vec<HistoryEntry> = Vec::new();
        let mut seen_roots = IdSet::default();
        let mut visited = IdSet::default();
        let mut stack = vec![id.clone()];
        while let Some(node) = stack.pop() {
            if !visited.insert(node.clone()) {
                continue;
            }
            let Some(b) = self.incoming.get(&node) else {
                continue;
            };
            for dep in &self.incoming.unmet(&node) {
                if self.incoming.contains(dep) {
                    stack.push(dep.clone());
                } else if seen_roots.insert(dep.clone()) {
                    let entry = b
                        .msg
                        .causal_history
                        .iter()
                        .find(|e| *e.id == **dep)
                        .map(Dep::to_entry)
                        .unwrap_or_else(|| HistoryEntry {
                            message_id: owned(dep),
                            ..HistoryEntry::default()
                        });
                    roots.push(entry);
                }
            }
        }
        roots
    }

    fn answer_repairs(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        while let Some((_, id)) = self.repair_in.due.pop_due(now) {
            persist::touch(&mut self.dirty, Kind::RepairIn, &id);
            let Some(e) = self.log.get(&id) else { continue };
            let msg = e.msg.clone();
            let Ok(bytes) = self.encode_stored(&msg, None, &[]) else {
                continue;
            };
            self.stats.repair_responses_sent += 1;
            self.transmit(ctx, &id, TransmitReason::Repair, bytes, &[]);
            ctx.out.events.push_back(Event::RepairResponseSent {
                channel: owned(&self.id),
                message_id: owned(&id),
            });
        }
    }

    /// Adds `sync_sweep_len` older log entries, picked at random, in front of
    /// a sync message's causal history. The recent entries name what was
    /// delivered lately; a participant that lost every broadcast naming an
    /// older message (an announcement is made once per participant) would
    /// otherwise never learn it exists. Sync messages are never delivered,
    /// so naming old entries blocks nothing. Found by the convergence
    /// property test; costs one log walk per picked entry, once per sync.
    fn add_sweep(&mut self, ctx: &Ctx<'_>, history: &mut Vec<HistoryEntry>) {
        let len = self.log.len();
        if len <= history.len() {
            return;
        }
        let mut older = Vec::new();
        for _ in 0..ctx.cfg.sync_sweep_len {
            let k = self.rng.below(len as u64) as usize;
            let Some(e) = self.log.nth(k) else {
                continue;
            };
            let id = &*e.msg.id;
            if history
                .iter()
                .chain(&older)
                .any(|h: &HistoryEntry| h.message_id == id)
            {
                continue;
            }
            older.push(HistoryEntry {
                message_id: owned(id),
                retrieval_hint: e.hint.as_deref().cloned(),
                sender_id: (!e.msg.sender_id.is_empty()).then(|| owned(&e.msg.sender_id)),
            });
        }
        older.append(history);
        *history = older;
    }

    fn send_sync(&mut self, ctx: &mut Ctx<'_>, now: u64) {
        self.repair_out.promote(now);
        let has_repairs = ctx.cfg.repair.enabled && self.repair_out.has_eligible(now);
        if self.log.len() == 0 && !has_repairs {
            self.sync_due = sync_due_after(&mut self.rng, ctx.cfg, now);
            return;
        }
        self.lamport = now.max(self.lamport.saturating_add(1));
        let id = format!("sync-{:016x}", self.rng.next_u64());
        let mut history: Vec<HistoryEntry> =
            self.causal_history(ctx).iter().map(Dep::to_entry).collect();
        self.add_sweep(ctx, &mut history);
        let repair = self.take_repair_requests(ctx, now);
        let bloom = self.bloom_field();
        let m = wire::Message {
            sender_id: owned(ctx.me),
            message_id: id.clone(),
            channel_id: owned(&self.id),
            lamport_timestamp: Some(self.lamport),
            causal_history: history,
            bloom_filter: Some(bloom),
            repair_request: repair.clone(),
            content: None,
        };
        if let Some(bytes) = wire::encode(&m, self.cfg.dialect).ok().map(Bytes::from) {
            self.stats.syncs_sent += 1;
            self.transmit(ctx, &id, TransmitReason::Sync, bytes, &repair);
        }
        self.after_broadcast(ctx, now);
    }

    // ----------------------------------------------------------- snapshot

    pub fn state(&self) -> ChannelState {
        let mut incoming: Vec<String> = self.incoming.ids().map(|i| i.to_string()).collect();
        incoming.sort();
        ChannelState {
            channel: owned(&self.id),
            dialect: self.cfg.dialect,
            lamport_timestamp: self.lamport,
            log: self.log.iter().map(|e| owned(&e.msg.id)).collect(),
            outgoing: self.outgoing.iter().map(|e| owned(&e.msg.id)).collect(),
            incoming,
            repair_requests: self.repair_out.ids().iter().map(|i| owned(i)).collect(),
            repair_responses: self.repair_in.ids().map(|i| i.to_string()).collect(),
        }
    }
}
