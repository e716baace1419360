//! Counters kept per channel.

use std::ops::AddAssign;

/// Protocol counters of a channel (or summed over a participant's channels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// New content messages sent.
    pub sent: u64,
    /// Resends.
    pub resent: u64,
    /// Sync messages sent.
    pub syncs_sent: u64,
    /// Ephemeral messages sent.
    pub ephemeral_sent: u64,
    /// Messages received from others (content and sync).
    pub received: u64,
    /// Sync messages received.
    pub syncs_received: u64,
    /// Ephemeral messages received.
    pub ephemeral_received: u64,
    /// Content messages delivered.
    pub delivered: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Content messages at or before the newest forgotten id, not delivered
    /// (see `Received::TooOld`).
    pub too_old: u64,
    /// Content messages that had to wait in the incoming buffer.
    pub buffered: u64,
    /// Dependencies reported missing.
    pub missing_reported: u64,
    /// Dependencies declared irretrievably lost.
    pub lost: u64,
    /// Buffered messages dropped because the buffer was full.
    pub buffer_overflows: u64,
    /// Own messages acknowledged.
    pub acknowledged: u64,
    /// Possible-acknowledgement events.
    pub possibly_acknowledged: u64,
    /// Own messages given up.
    pub not_acknowledged: u64,
    /// Received bloom filters that were malformed or hostile (ignored).
    pub bad_blooms: u64,
    /// SDS-R: repair-request entries we sent.
    pub repair_requests_sent: u64,
    /// SDS-R: repair-request entries we received.
    pub repair_requests_received: u64,
    /// SDS-R: re-broadcasts we made.
    pub repair_responses_sent: u64,
    /// SDS-R: requests given up unanswered.
    pub repair_requests_expired: u64,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.sent += o.sent;
        self.resent += o.resent;
        self.syncs_sent += o.syncs_sent;
        self.ephemeral_sent += o.ephemeral_sent;
        self.received += o.received;
        self.syncs_received += o.syncs_received;
        self.ephemeral_received += o.ephemeral_received;
        self.delivered += o.delivered;
        self.duplicates += o.duplicates;
        self.too_old += o.too_old;
        self.buffered += o.buffered;
        self.missing_reported += o.missing_reported;
        self.lost += o.lost;
        self.buffer_overflows += o.buffer_overflows;
        self.acknowledged += o.acknowledged;
        self.possibly_acknowledged += o.possibly_acknowledged;
        self.not_acknowledged += o.not_acknowledged;
        self.bad_blooms += o.bad_blooms;
        self.repair_requests_sent += o.repair_requests_sent;
        self.repair_requests_received += o.repair_requests_received;
        self.repair_responses_sent += o.repair_responses_sent;
        self.repair_requests_expired += o.repair_requests_expired;
    }
}
