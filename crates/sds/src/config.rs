//! Configuration of a [`Participant`](crate::Participant), with documented defaults.

use crate::bloom::{BloomError, BloomLimits, BloomParams};
use crate::repair::timing::RepairHash;
use crate::wire::{Dialect, Limits};

/// Participant-wide configuration. Every knob has a default (see [`Config::default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Dialect used to send on channels that were not configured explicitly. Default: spec.
    pub default_dialect: Dialect,
    /// Causal-history entries attached to each outgoing message. Default: 10.
    ///
    /// The spec recommends 2; `@waku/sds` sends 200, nim-sds 10. With 10, a
    /// lost message is detected by any of the next ten messages (robust at
    /// 30 % loss), and the history stays small next to the 18.8 KB bloom
    /// filter (about 1 KB with 64-character ids and 32-byte hints).
    pub causal_history_len: usize,
    /// Cap of the local log per channel; the oldest entries (by lamport
    /// timestamp, then id) are evicted first. Default: 10 000.
    pub max_log: usize,
    /// Ids recently evicted from the log that are still recognised as
    /// duplicates and as met dependencies. Default: 10 000.
    pub max_evicted_ids: usize,
    /// Ids marked met through `mark_dependencies_met` (or declared lost) that
    /// are remembered; oldest forgotten first. Default: 10 000.
    pub max_marked_met: usize,
    /// Capacity of the local bloom filter. Default: 10 000 (what `@waku/sds` assumes).
    pub bloom_capacity: u64,
    /// False-positive rate of the local bloom filter. Default: 0.001.
    pub bloom_error_rate: f64,
    /// Distinct remote senders whose bloom filters must contain a message
    /// before it counts as acknowledged. Default: 2.
    pub possible_ack_threshold: u32,
    /// Resend period of unacknowledged messages. Default: 30 s.
    pub resend_interval_ms: u64,
    /// Resend period of possibly-acknowledged messages. Default: 90 s.
    pub possibly_acked_resend_interval_ms: u64,
    /// Resends before a message is given up ("not acknowledged"). Default: 5.
    pub max_resend_attempts: u32,
    /// Cap of the unacknowledged outgoing buffer per channel; when full, the
    /// oldest entry is given up ("not acknowledged"). Default: 10 000.
    pub max_outgoing: usize,
    /// Cap of the incoming buffer per channel; when full, the
    /// earliest-received buffered message is dropped. Default: 10 000.
    pub max_incoming: usize,
    /// How long a buffered message waits for its dependencies before they are
    /// declared irretrievably lost and it is delivered. Default: 15 min (long
    /// enough for the resends and every SDS-R round under heavy loss: T_req
    /// up to T_max, then `max_request_attempts` rounds of T_max each).
    pub buffer_timeout_ms: u64,
    /// A channel with nothing broadcast for this long (plus a random back-off)
    /// sends a sync message. Default: 30 s.
    pub sync_interval_ms: u64,
    /// Upper bound of the random sync back-off. Default: 15 s.
    pub sync_backoff_ms: u64,
    /// Older log entries, picked at random, that each sync message names
    /// besides the recent ones, so that a participant that missed every
    /// broadcast naming an older message still learns it exists. Default: 5.
    pub sync_sweep_len: usize,
    /// Whether messages received from others postpone our sync message (the
    /// spec's "only if no other messages have been broadcast"). Default: true.
    pub sync_suppressed_by_others: bool,
    /// Whether channels named by received messages are created on the fly.
    /// Default: true.
    pub accept_unknown_channels: bool,
    /// Cap on the number of channels. Default: 64.
    pub max_channels: usize,
    /// Largest content accepted by `send`. Default: 1 MiB (as nim-sds).
    pub max_content_bytes: usize,
    /// Decoding limits for received messages.
    pub limits: Limits,
    /// Bounds on bloom-filter parameters accepted from the wire.
    pub bloom_limits: BloomLimits,
    /// SDS-R configuration.
    pub repair: RepairConfig,
    /// Seed of the random back-offs (mixed with the participant id).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_dialect: Dialect::Spec,
            causal_history_len: 10,
            max_log: 10_000,
            max_evicted_ids: 10_000,
            max_marked_met: 10_000,
            bloom_capacity: 10_000,
            bloom_error_rate: 0.001,
            possible_ack_threshold: 2,
            resend_interval_ms: 30_000,
            possibly_acked_resend_interval_ms: 90_000,
            max_resend_attempts: 5,
            max_outgoing: 10_000,
            max_incoming: 10_000,
            buffer_timeout_ms: 900_000,
            sync_interval_ms: 30_000,
            sync_backoff_ms: 15_000,
            sync_sweep_len: 5,
            sync_suppressed_by_others: true,
            accept_unknown_channels: true,
            max_channels: 64,
            max_content_bytes: 1024 * 1024,
            limits: Limits::default(),
            bloom_limits: BloomLimits::default(),
            repair: RepairConfig::default(),
            seed: 0,
        }
    }
}

impl Config {
    /// The bloom parameters derived from capacity and error rate.
    pub fn bloom_params(&self) -> Result<BloomParams, BloomError> {
        BloomParams::new(self.bloom_capacity, self.bloom_error_rate)
    }
}

/// SDS-R (repair) configuration. `t_min`, `t_max` and the number of response
/// groups SHOULD be the same for every participant of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairConfig {
    /// Whether SDS-R is on. Default: true.
    pub enabled: bool,
    /// T_min: minimum wait before requesting a repair. Default: 30 s.
    pub t_min_ms: u64,
    /// T_max: repair window. Default: 120 s (`@waku/sds`'s default; nim-sds uses 300 s).
    pub t_max_ms: u64,
    /// Number of response groups. Default: 1 (everyone may answer). See
    /// [`crate::repair::timing::response_groups_for`] for the spec's formula.
    pub num_response_groups: u32,
    /// Repair-request entries attached to one outgoing message. Default: 3.
    pub max_requests_per_message: usize,
    /// Times a still-missing message is requested (each round waits
    /// `retry_interval_ms` for an answer). Default: 5 (at 20 % loss, three rounds still lost about one
    /// message in a hundred when every answer was lost; five make it 0.03 %).
    /// When the request expires (T_max per round after `T_req`) and a
    /// buffered message still waits for the message, the rounds start over,
    /// until the buffer timeout declares it lost.
    pub max_request_attempts: u32,
    /// How long a request waits for an answer before it is made again, and how
    /// long another participant's request for the same message holds ours
    /// back. Default: 30 s (T_min). The original sender answers at once, so
    /// a round only fails when the answer is lost.
    pub retry_interval_ms: u64,
    /// Minimum gap between two of our broadcasts that a pending repair request
    /// triggers. Default: 1 s.
    pub min_request_gap_ms: u64,
    /// A request for a message we sent or received a copy of less than this
    /// long ago is not answered: that copy is most likely the answer to this
    /// very request, reordered ahead of it. Default: 5 s.
    pub recent_copy_window_ms: u64,
    /// Cap of the outgoing repair-request buffer per channel (furthest T_req
    /// evicted first). Default: 1 000.
    pub max_outgoing_entries: usize,
    /// Cap of the incoming repair-request buffer per channel (furthest T_resp
    /// evicted first). Default: 1 000.
    pub max_incoming_entries: usize,
    /// Hash used by the formulas. `None` (default) follows each channel's
    /// sending dialect: nim-sds's formulas on nim channels, `@waku/sds`'s on
    /// spec channels, so that every implementation of a group agrees on who
    /// answers when.
    pub hash: Option<RepairHash>,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            enabled: true,
            t_min_ms: 30_000,
            t_max_ms: 120_000,
            num_response_groups: 1,
            max_requests_per_message: 3,
            max_request_attempts: 5,
            retry_interval_ms: 30_000,
            min_request_gap_ms: 1_000,
            recent_copy_window_ms: 5_000,
            max_outgoing_entries: 1_000,
            max_incoming_entries: 1_000,
            hash: None,
        }
    }
}

/// Per-channel settings, given to
/// [`Participant::configure_channel`](crate::Participant::configure_channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Dialect used to send (receiving accepts both).
    pub dialect: Dialect,
    /// Whether periodic sync messages are sent. `None` (default) means yes on
    /// spec channels and no on nim channels: nim-sds treats an empty-content
    /// message as a regular one (logs it, references it in causal histories),
    /// so syncs would pollute nim peers' logs.
    pub sync: Option<bool>,
}

impl ChannelConfig {
    /// Settings with the given dialect and defaults otherwise.
    pub fn new(dialect: Dialect) -> Self {
        ChannelConfig {
            dialect,
            sync: None,
        }
    }

    /// Whether sync messages are sent.
    pub fn sync_enabled(&self) -> bool {
        self.sync.unwrap_or(self.dialect == Dialect::Spec)
    }
}
