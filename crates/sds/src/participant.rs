//! The participant: one participant id, any number of channels.

use crate::bloom::{BloomError, BloomParams};
use crate::channel::{
    Channel, ChannelState, Ctx, Handover, Id, Outputs, Prehashed, Received, StoredMessage,
};
use crate::config::{ChannelConfig, Config};
use crate::event::{Event, Transmit, TransmitReason};
use crate::hash::nim_string_hash;
use crate::stats::Stats;
use crate::store::{ChangeSet, Store, StoreError};
use crate::wire::{self, DecodeError, Dialect, EncodeError, MessageKind};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Supplies retrieval hints for our own messages when they are first named
/// in a causal history (e.g. the Waku message hash of the published bytes).
pub trait RetrievalHintProvider {
    /// The hint for `message_id` in `channel`, if known.
    fn retrieval_hint(&mut self, channel: &str, message_id: &str) -> Option<Bytes>;
}

/// An invalid configuration or participant id.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The participant id is empty (it would make every message with an empty
    /// sender id look like our own).
    #[error("the participant id must not be empty")]
    EmptyParticipantId,
    /// The bloom capacity or error rate is unusable.
    #[error("invalid bloom filter configuration: {0}")]
    Bloom(#[from] BloomError),
}

/// Why [`Participant::open`] failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be read, or holds state that does not decode.
    #[error("cannot load the participant's state: {0}")]
    Store(#[from] StoreError),
}

/// Why `send` or `send_ephemeral` refused a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Content messages need content (an empty one would be a sync message).
    #[error("content is empty")]
    EmptyContent,
    /// Content above `Config::max_content_bytes`.
    #[error("content is {len} bytes, above the limit of {max}")]
    ContentTooLarge {
        /// Content length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message id is empty.
    #[error("message id is empty")]
    EmptyMessageId,
    /// An id (message or channel) above the wire limit.
    #[error("{what} is {len} bytes, above the limit of {max}")]
    IdTooLong {
        /// Which id.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message id is already in the channel's log or buffers.
    #[error("message id {0:?} is already used in this channel")]
    DuplicateMessageId(String),
    /// The channel would exceed `Config::max_channels`.
    #[error("too many channels (limit {max})")]
    TooManyChannels {
        /// The limit.
        max: usize,
    },
    /// The channel's dialect cannot carry the message.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Why `receive` rejected bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The bytes are not a valid SDS message.
    #[error("invalid message: {0}")]
    Decode(#[from] DecodeError),
    /// The message names a channel we do not have and unknown channels are not accepted.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// Accepting the channel would exceed `Config::max_channels`.
    #[error("too many channels (limit {max})")]
    TooManyChannels {
        /// The limit.
        max: usize,
    },
    /// A content or sync message without a message id.
    #[error("message has no message id")]
    MissingMessageId,
}

/// Errors of channel-addressed calls.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No such channel.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// The channel would exceed `Config::max_channels`.
    #[error("too many channels (limit {max})")]
    TooManyChannels {
        /// The limit.
        max: usize,
    },
}

/// A decoded message made ready for the participants of this process that
/// receive it ([`Participant::receive_prepared`]): a process that hands one
/// broadcast to many participants (a simulator, an application with several
/// identities) decodes it once and hashes its ids once, where each
/// participant would hash them again. For a content message it also makes,
/// once, the form in which a participant keeps the message (in its log or
/// incoming buffer: ids, causal-history entries with their hints and
/// senders, content); every participant that keeps it holds a reference to
/// that one copy instead of building its own. The hashes are seeded once per
/// process, so a `Prepared` is for this process only (it cannot be sent
/// elsewhere: it is not serialisable); the message and its hashes are kept
/// together, so they cannot disagree.
#[derive(Clone, Debug)]
pub struct Prepared<'a> {
    message: wire::MessageRef<'a>,
    dialect: Dialect,
    hashes: Prehashed,
    /// A content message's stored form (what a log entry or a buffered
    /// message holds), made once and shared by every receiver.
    stored: Option<Arc<StoredMessage>>,
}

impl<'a> Prepared<'a> {
    /// Prepares `message`, decoded in `dialect` (with the receivers'
    /// [`Config::limits`]: see [`Participant::receive_decoded`], whose
    /// contract, content kept as given included, applies).
    pub fn new(message: wire::MessageRef<'a>, dialect: Dialect) -> Prepared<'a> {
        let hashes = Prehashed::of(&message);
        let stored = (message.kind() == MessageKind::Content && !message.message_id.is_empty())
            .then(|| Arc::new(StoredMessage::prepared(&message, &hashes)));
        Prepared {
            message,
            dialect,
            hashes,
            stored,
        }
    }

    /// The message.
    pub fn message(&self) -> &wire::MessageRef<'a> {
        &self.message
    }

    /// The dialect it was decoded in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

/// One SDS participant: a sans-IO state machine for any number of channels.
///
/// Inputs ([`send`](Self::send), [`send_ephemeral`](Self::send_ephemeral),
/// [`receive`](Self::receive), [`mark_dependencies_met`](Self::mark_dependencies_met),
/// [`handle_timeout`](Self::handle_timeout)) take the current time in Unix
/// milliseconds. **After every input, drain the outputs**:
/// [`poll_transmit`](Self::poll_transmit) (bytes to broadcast),
/// [`poll_event`](Self::poll_event) (what the application should know), and
/// re-arm a timer at [`poll_timeout`](Self::poll_timeout), calling
/// `handle_timeout` when it expires.
///
/// ```
/// use sds::{Participant, Config, Event};
///
/// let mut alice = Participant::new("alice", Config::default()).unwrap();
/// let mut bob = Participant::new("bob", Config::default()).unwrap();
/// let t0 = 1_700_000_000_000;
/// alice.send("chat", "m1", &b"hello"[..], t0).unwrap();
/// let tx = alice.poll_transmit().unwrap();
/// bob.receive(tx.bytes, None, t0 + 50).unwrap();
/// match bob.poll_event() {
///     Some(Event::Delivered { message_id, .. }) => assert_eq!(message_id, "m1"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
pub struct Participant {
    id: Id,
    config: Config,
    bloom_params: BloomParams,
    channels: BTreeMap<String, Channel>,
    out: Outputs,
    seed: u64,
    hints: Option<Box<dyn RetrievalHintProvider + Send>>,
    store: Option<Box<dyn Store>>,
    store_healthy: bool,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("id", &self.id)
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

macro_rules! ctx {
    ($s:ident) => {
        Ctx {
            cfg: &$s.config,
            me: &$s.id,
            bloom_params: &$s.bloom_params,
            out: &mut $s.out,
            seed: $s.seed,
            persistent: $s.store.is_some(),
            hints: match $s.hints.as_mut() {
                Some(h) => Some(&mut **h),
                None => None,
            },
        }
    };
}

impl Participant {
    /// A participant with the given id and configuration.
    pub fn new(participant_id: impl Into<String>, config: Config) -> Result<Self, ConfigError> {
        let id: String = participant_id.into();
        if id.is_empty() {
            return Err(ConfigError::EmptyParticipantId);
        }
        let bloom_params = config.bloom_params()?;
        let seed = config.seed ^ nim_string_hash(id.as_bytes()) as u64;
        Ok(Participant {
            id: Id::from(id),
            config,
            bloom_params,
            channels: BTreeMap::new(),
            out: Outputs::default(),
            seed,
            hints: None,
            store: None,
            store_healthy: true,
        })
    }

    /// A participant whose state lives in `store`: every channel is restored
    /// from it, and every operation's changes are written to it (see
    /// [`crate::store`] for the contract and the delivery guarantee).
    pub fn open(
        participant_id: impl Into<String>,
        config: Config,
        mut store: Box<dyn Store>,
    ) -> Result<Self, OpenError> {
        let mut p = Participant::new(participant_id, config)?;
        let snapshots = store.load()?;
        p.store = Some(store);
        for snap in &snapshots {
            if snap.meta.is_none() {
                continue;
            }
            let mut ctx = ctx!(p);
            let ch = Channel::restore(&mut ctx, snap)?;
            p.channels.insert(snap.channel.clone(), ch);
        }
        Ok(p)
    }

    /// Removes a channel and its persisted state. An unknown channel is not
    /// an error (its persisted state, if any, is removed too).
    pub fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError> {
        if let Some(store) = self.store.as_mut() {
            store.drop_channel(channel)?;
        }
        self.channels.remove(channel);
        Ok(())
    }

    /// Waits for the store's background work ([`Store::flush`]); `Ok`
    /// without a store. Benchmarks call it so that their timing includes
    /// that work.
    pub fn flush_store(&mut self) -> Result<(), StoreError> {
        match self.store.as_mut() {
            Some(store) => store.flush(),
            None => Ok(()),
        }
    }

    /// Whether the last write to the store succeeded (true without a store).
    pub fn store_is_healthy(&self) -> bool {
        self.store_healthy
    }

    /// Writes the changes of the operation that just ran (and any earlier
    /// unwritten ones) to the store, in one change set.
    fn persist(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let set = ChangeSet {
            channels: self
                .channels
                .values()
                .filter_map(Channel::changes)
                .collect(),
        };
        if set.channels.is_empty() {
            return;
        }
        match store.apply(&set) {
            Ok(()) => {
                for ch in self.channels.values_mut() {
                    ch.committed();
                }
                self.store_healthy = true;
            }
            Err(e) => {
                self.store_healthy = false;
                self.out.events.push_back(Event::PersistenceFailed {
                    error: e.to_string(),
                });
            }
        }
    }

    /// Our participant id.
    pub fn participant_id(&self) -> &str {
        &self.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Installs a provider of retrieval hints for our own messages (see
    /// also [`set_retrieval_hint`](Self::set_retrieval_hint)).
    pub fn set_hint_provider(&mut self, provider: Box<dyn RetrievalHintProvider + Send>) {
        self.hints = Some(provider);
    }

    /// Creates a channel with the given settings, or changes an existing
    /// channel's settings.
    pub fn configure_channel(
        &mut self,
        channel: &str,
        cfg: ChannelConfig,
        now: u64,
    ) -> Result<(), ChannelError> {
        let result = self.set_channel(channel, cfg, now);
        self.persist();
        result
    }

    fn set_channel(
        &mut self,
        channel: &str,
        cfg: ChannelConfig,
        now: u64,
    ) -> Result<(), ChannelError> {
        if let Some(ch) = self.channels.get_mut(channel) {
            let ctx = ctx!(self);
            ch.set_config(&ctx, cfg);
            return Ok(());
        }
        if self.channels.len() >= self.config.max_channels {
            return Err(ChannelError::TooManyChannels {
                max: self.config.max_channels,
            });
        }
        let mut ctx = ctx!(self);
        let ch = Channel::new(&mut ctx, Id::from(channel), cfg, now);
        self.channels.insert(channel.to_string(), ch);
        Ok(())
    }

    fn ensure_channel(&mut self, channel: &str, now: u64) -> Result<(), ChannelError> {
        if self.channels.contains_key(channel) {
            return Ok(());
        }
        self.set_channel(
            channel,
            ChannelConfig::new(self.config.default_dialect),
            now,
        )
    }

    fn check_content(&self, content: &Bytes) -> Result<(), SendError> {
        if content.is_empty() {
            return Err(SendError::EmptyContent);
        }
        let max = self.config.max_content_bytes;
        if content.len() > max {
            return Err(SendError::ContentTooLarge {
                len: content.len(),
                max,
            });
        }
        Ok(())
    }

    /// Validates the channel id and creates the channel if needed.
    fn channel_for_sending(&mut self, channel: &str, now: u64) -> Result<(), SendError> {
        self.check_id("channel id", channel)?;
        self.ensure_channel(channel, now).map_err(|e| match e {
            ChannelError::TooManyChannels { max } => SendError::TooManyChannels { max },
            ChannelError::UnknownChannel(_) => SendError::TooManyChannels { max: 0 },
        })
    }

    fn check_id(&self, what: &'static str, id: &str) -> Result<(), SendError> {
        let max = self.config.limits.max_id_len;
        if id.len() > max {
            return Err(SendError::IdTooLong {
                what,
                len: id.len(),
                max,
            });
        }
        Ok(())
    }

    /// Sends a content message with the caller's globally unique id. The
    /// bytes to broadcast come out of [`poll_transmit`](Self::poll_transmit)
    /// (reason `New`); the message stays in the outgoing buffer, and is resent,
    /// until acknowledged or given up.
    pub fn send(
        &mut self,
        channel: &str,
        message_id: &str,
        content: impl Into<Bytes>,
        now: u64,
    ) -> Result<(), SendError> {
        let content: Bytes = content.into();
        self.check_content(&content)?;
        if message_id.is_empty() {
            return Err(SendError::EmptyMessageId);
        }
        self.check_id("message id", message_id)?;
        self.channel_for_sending(channel, now)?;
        let mut ctx = ctx!(self);
        let Some(ch) = self.channels.get_mut(channel) else {
            return Err(SendError::TooManyChannels {
                max: self.config.max_channels,
            });
        };
        if ch.knows(message_id) {
            return Err(SendError::DuplicateMessageId(message_id.to_string()));
        }
        let result = ch.send(&mut ctx, Id::from(message_id), content, now);
        self.persist();
        Ok(result?)
    }

    /// Sends an ephemeral message (no lamport timestamp, causal history or
    /// bloom filter; never buffered or resent). Its id is the lowercase hex
    /// sha256 of the content, as `@waku/sds` does. Returns the id.
    pub fn send_ephemeral(
        &mut self,
        channel: &str,
        content: impl Into<Bytes>,
        now: u64,
    ) -> Result<String, SendError> {
        let content: Bytes = content.into();
        self.check_content(&content)?;
        self.channel_for_sending(channel, now)?;
        let dialect = self
            .channels
            .get(channel)
            .map(|c| c.config().dialect)
            .unwrap_or_default();
        let id = hex_lower(&Sha256::digest(&content));
        let m = wire::Message {
            sender_id: self.id.to_string(),
            message_id: id.clone(),
            channel_id: channel.to_string(),
            lamport_timestamp: None,
            causal_history: Vec::new(),
            bloom_filter: None,
            repair_request: Vec::new(),
            content: Some(content),
        };
        let bytes = wire::encode(&m, dialect)?;
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.stats.ephemeral_sent += 1;
        }
        self.out.transmits.push_back(Transmit {
            channel: channel.to_string(),
            message_id: id.clone(),
            reason: TransmitReason::Ephemeral,
            bytes: Bytes::from(bytes),
            repair_request: Vec::new(),
        });
        Ok(id)
    }

    /// Processes bytes received from the transport, in either dialect.
    /// `retrieval_hint` is the transport's handle for these bytes (e.g. the
    /// Waku message hash); it is used when this message is named in our
    /// causal histories.
    pub fn receive(
        &mut self,
        bytes: impl Into<Bytes>,
        retrieval_hint: Option<Bytes>,
        now: u64,
    ) -> Result<Received, ReceiveError> {
        let bytes: Bytes = bytes.into();
        let decoded = wire::decode_ref(&bytes, &self.config.limits)?;
        // The content is a slice of `bytes`: what is kept is a copy of it,
        // so that the whole message (with its bloom filter) is not.
        self.receive_message(
            &decoded.message,
            decoded.dialect,
            retrieval_hint,
            now,
            Handover {
                share_content: false,
                hashes: None,
                stored: None,
            },
        )
    }

    /// Like [`receive`](Self::receive), for a message the caller has
    /// already decoded, in `dialect`: for a process that hands the same
    /// broadcast to several participants (a simulator, an application with
    /// several identities) and decodes it once. It is processed exactly as
    /// `receive` would process the bytes it was decoded from, provided it
    /// was decoded with this participant's [`Config::limits`] (as
    /// [`wire::decode_ref`] does with `&participant.config().limits`); those
    /// limits are what bounds a hostile message, and they are not checked
    /// again here.
    ///
    /// The content is kept as given: the message's log entry holds a new
    /// reference to `msg.content`, not a copy (`receive` copies). Several
    /// participants given the same `Bytes` therefore share one copy of it.
    /// But if it is a slice of a larger buffer, as [`wire::decode_ref`] and
    /// [`wire::decode`] return it (a slice of the whole wire message, bloom
    /// filter included), that buffer stays in memory for as long as the
    /// message is kept: give the content a buffer of its own first
    /// (`Bytes::copy_from_slice`), once per broadcast.
    pub fn receive_decoded(
        &mut self,
        msg: &wire::MessageRef<'_>,
        dialect: Dialect,
        retrieval_hint: Option<Bytes>,
        now: u64,
    ) -> Result<Received, ReceiveError> {
        let how = Handover {
            share_content: true,
            hashes: None,
            stored: None,
        };
        self.receive_message(msg, dialect, retrieval_hint, now, how)
    }

    /// Like [`receive_decoded`](Self::receive_decoded) (same contract: the
    /// message decoded with this participant's [`Config::limits`], the
    /// content kept as given), for a message [`Prepared`] once for all the
    /// participants of this process that receive it: the hashes of its ids,
    /// which each participant would otherwise compute again, come with it.
    pub fn receive_prepared(
        &mut self,
        prepared: &Prepared<'_>,
        retrieval_hint: Option<Bytes>,
        now: u64,
    ) -> Result<Received, ReceiveError> {
        self.receive_message(
            &prepared.message,
            prepared.dialect,
            retrieval_hint,
            now,
            Handover {
                share_content: true,
                hashes: Some(&prepared.hashes),
                stored: prepared.stored.as_ref(),
            },
        )
    }

    /// [`receive_decoded`](Self::receive_decoded), the message handed over
    /// as `how` says.
    fn receive_message(
        &mut self,
        msg: &wire::MessageRef<'_>,
        dialect: Dialect,
        retrieval_hint: Option<Bytes>,
        now: u64,
        how: Handover<'_>,
    ) -> Result<Received, ReceiveError> {
        if msg.sender_id == &*self.id {
            return Ok(Received::OwnMessage);
        }
        let kind = msg.kind();
        if kind != MessageKind::Ephemeral && msg.message_id.is_empty() {
            return Err(ReceiveError::MissingMessageId);
        }
        if !self.channels.contains_key(msg.channel_id) {
            if !self.config.accept_unknown_channels {
                return Err(ReceiveError::UnknownChannel(msg.channel_id.to_owned()));
            }
            self.ensure_channel(msg.channel_id, now).map_err(|_| {
                ReceiveError::TooManyChannels {
                    max: self.config.max_channels,
                }
            })?;
        }
        let mut ctx = ctx!(self);
        let Some(ch) = self.channels.get_mut(msg.channel_id) else {
            return Err(ReceiveError::UnknownChannel(msg.channel_id.to_owned()));
        };
        if kind == MessageKind::Ephemeral {
            ch.stats.ephemeral_received += 1;
            ctx.out.events.push_back(Event::Ephemeral {
                channel: msg.channel_id.to_owned(),
                message_id: msg.message_id.to_owned(),
                sender_id: msg.sender_id.to_owned(),
                content: msg.content.clone().unwrap_or_default(),
            });
            self.persist();
            return Ok(Received::Ephemeral);
        }
        let received = ch.receive(&mut ctx, msg, dialect, retrieval_hint, now, how);
        self.persist();
        Ok(received)
    }

    /// Marks dependencies as met: the application obtained these messages by
    /// other means (e.g. from a store node). Buffered messages waiting only for
    /// them are delivered; the ids count as present from now on and are added
    /// to the bloom filter.
    pub fn mark_dependencies_met<I, S>(
        &mut self,
        channel: &str,
        message_ids: I,
        now: u64,
    ) -> Result<(), ChannelError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut ctx = ctx!(self);
        let ch = self
            .channels
            .get_mut(channel)
            .ok_or_else(|| ChannelError::UnknownChannel(channel.to_string()))?;
        ch.mark_met(&mut ctx, message_ids, now);
        self.persist();
        Ok(())
    }

    /// Sets the retrieval hint of a message in the log (typically one of ours,
    /// once the transport knows its hash). Returns whether it was found.
    pub fn set_retrieval_hint(&mut self, channel: &str, message_id: &str, hint: Bytes) -> bool {
        let found = self
            .channels
            .get_mut(channel)
            .is_some_and(|c| c.set_hint(message_id, hint));
        self.persist();
        found
    }

    /// Runs everything due at `now`: resends, buffer timeouts, repair
    /// responses and requests, sync messages.
    pub fn handle_timeout(&mut self, now: u64) {
        let mut ctx = ctx!(self);
        for ch in self.channels.values_mut() {
            if ch.next_deadline(ctx.cfg).is_some_and(|d| d <= now) {
                ch.handle_timeout(&mut ctx, now);
            }
        }
        self.persist();
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The next bytes to broadcast, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next
    /// (Unix ms), if anything is pending. A call at that time may find
    /// nothing to do: an SDS-R request is scheduled (its `T_req` computed)
    /// only once `T_min` has passed since the dependency was found missing,
    /// and this deadline names that moment, rounded down to the second (see
    /// [`crate::repair`]).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.channels
            .values()
            .filter_map(|c| c.next_deadline(&self.config))
            .min()
    }

    /// Channel ids, sorted.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// Messages from others still in the channel's log that were delivered
    /// after delivery sequence number `seq` (all of them with `None`), in
    /// delivery order. After a crash, an application that recorded the `seq`
    /// of the last [`Event::Delivered`] it processed calls this to process
    /// what it missed: that makes delivery exactly-once (see [`crate::store`]).
    pub fn delivered_after(&self, channel: &str, seq: Option<u64>) -> Vec<crate::Delivery> {
        self.channels
            .get(channel)
            .map(|c| c.delivered_after(&self.id, seq))
            .unwrap_or_default()
    }

    /// A snapshot of a channel's state.
    pub fn channel_state(&self, channel: &str) -> Option<ChannelState> {
        self.channels.get(channel).map(Channel::state)
    }

    /// Counters of one channel.
    pub fn channel_stats(&self, channel: &str) -> Option<Stats> {
        self.channels.get(channel).map(|c| c.stats)
    }

    /// Counters summed over all channels.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for c in self.channels.values() {
            s += c.stats;
        }
        s
    }
}

fn hex_lower(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(p: &mut Participant) -> Vec<Bytes> {
        std::iter::from_fn(|| p.poll_transmit())
            .map(|t| t.bytes)
            .collect()
    }

    /// Receivers of one `Prepared` share its stored form, and that form is
    /// the one a receiver builds itself from the same message, field by
    /// field (history entries, hints and senders included).
    #[test]
    fn prepared_receivers_share_one_stored_form_equal_to_their_own() {
        let t0 = 1_700_000_000_000;
        let cfg = Config::default();
        let mut a = Participant::new("a", cfg.clone()).unwrap();
        a.send("c", "m0", &b"zero"[..], t0).unwrap();
        let first = sent(&mut a);
        let mut b = Participant::new("b", cfg.clone()).unwrap();
        for bytes in &first {
            b.receive(bytes.clone(), Some(Bytes::from_static(b"hint-m0")), t0 + 1)
                .unwrap();
        }
        // b names m0 (with a hint and a sender) and a's message in its history.
        for bytes in &first {
            a.receive(bytes.clone(), None, t0 + 1).unwrap();
        }
        b.send("c", "m1", &b"one"[..], t0 + 2).unwrap();
        let second = sent(&mut b);
        let m1 = second.last().unwrap().clone();

        let mut own = Participant::new("d", cfg.clone()).unwrap();
        let mut shared = [
            Participant::new("e", cfg.clone()).unwrap(),
            Participant::new("f", cfg.clone()).unwrap(),
        ];
        // m0 is missing for all of them: m1 is buffered, then delivered.
        let d = wire::decode(m1.clone(), &cfg.limits).unwrap();
        let mut msg = d.message.borrowed();
        msg.content = msg.content.map(|c| Bytes::copy_from_slice(&c));
        let prepared = Prepared::new(msg, d.dialect);
        for p in &mut shared {
            let r = p.receive_prepared(&prepared, None, t0 + 3).unwrap();
            assert_eq!(r, Received::Buffered { missing: 1 });
        }
        own.receive(m1, None, t0 + 3).unwrap();
        let of = |p: &Participant| p.channels["c"].stored("m1").unwrap();
        let (e, f, mine) = (of(&shared[0]), of(&shared[1]), of(&own));
        assert!(
            Arc::ptr_eq(&e, &f),
            "the receivers hold copies, not one shared form"
        );
        assert!(!Arc::ptr_eq(&e, &mine));
        assert_eq!(*e, *mine);
        assert!(e
            .causal_history
            .iter()
            .any(|d| d.hint.is_some() && d.sender.is_some()));
        for p in shared.iter_mut().chain([&mut own]) {
            for bytes in &first {
                p.receive(bytes.clone(), None, t0 + 4).unwrap();
            }
        }
        let (e, f, mine) = (of(&shared[0]), of(&shared[1]), of(&own));
        assert!(
            Arc::ptr_eq(&e, &f),
            "delivered: the log holds the shared form"
        );
        assert_eq!(*e, *mine);
    }
}
