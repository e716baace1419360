//! The result of a run: every metric, as JSON (`serde`) and as a text report.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Nearest-rank percentiles of a set of durations (ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of values.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 95th percentile.
    pub p95: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest value.
    pub max: Option<u64>,
}

/// The nearest-rank `q`-quantile of sorted values: the value at rank
/// `ceil(q * n)` (1-based).
pub fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The nearest-rank `q`-quantile over `total` values of which only the
/// `sorted` ones are finite (the others count as infinite): `None` if the
/// rank falls among the infinite ones.
pub fn quantile_with_infinite(sorted: &[u64], total: u64, q: f64) -> Option<u64> {
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    sorted.get(rank as usize - 1).copied()
}

impl Percentiles {
    /// Percentiles of `values` (sorted in place).
    pub fn of(values: &mut [u64]) -> Percentiles {
        values.sort_unstable();
        let n = values.len();
        let mean = (n > 0).then(|| values.iter().map(|&v| v as f64).sum::<f64>() / n as f64);
        Percentiles {
            count: n as u64,
            mean,
            p50: nearest_rank(values, 0.50),
            p90: nearest_rank(values, 0.90),
            p95: nearest_rank(values, 0.95),
            p99: nearest_rank(values, 0.99),
            max: values.last().copied(),
        }
    }
}

/// The three Logos FURPS reliability targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Furps {
    /// "A sender knows its message arrived within S": p90 of send ->
    /// acknowledged over all sent messages (unacknowledged ones count as
    /// never) is at most S.
    pub ack_within_s: bool,
    /// "90 % of missed messages are detected within 3·S".
    pub detect_90pct_within_3s: bool,
    /// "The group is consistent within 6·S" after the last send / heal.
    pub consistent_within_6s: bool,
    /// S, in seconds (the per-participant send interval).
    pub s_seconds: f64,
    /// The p90 time to acknowledgement counted for the first target (ms;
    /// `null` when more than 10 % were never acknowledged).
    pub ack_p90_ms: Option<u64>,
    /// The p90 detection time counted for the second target (ms; `null` if
    /// more than 10 % were never detected or nothing was missed).
    pub detect_p90_ms: Option<u64>,
    /// Time to consistency (ms; `null` if never).
    pub consistency_ms: Option<u64>,
}

/// Scenario settings echoed in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Channels.
    pub channels: usize,
    /// Membership (`all`/`subset`) and channels per participant.
    pub membership: String,
    /// Sending dialect.
    pub dialect: String,
    /// S: mean send interval per participant (s).
    pub interval_s: f64,
    /// `poisson` / `fixed`.
    pub arrival: String,
    /// Content size range (bytes).
    pub content_bytes: (usize, usize),
    /// Ephemeral share.
    pub ephemeral_share: f64,
    /// Participants that send.
    pub senders: usize,
    /// Workload start and end (s).
    pub workload_s: (f64, f64),
    /// Latency range and jitter (ms).
    pub latency_ms: (u64, u64, u64),
    /// Loss model.
    pub loss_model: String,
    /// Mean loss rate while loss is on.
    pub loss: f64,
    /// Loss window (s).
    pub loss_window_s: (f64, f64),
    /// Duplication probability.
    pub duplicate: f64,
    /// Number of partitions.
    pub partitions: usize,
    /// Share of participants churning at random, and explicit offline periods.
    pub churn: (f64, usize),
    /// Store node on.
    pub store: bool,
    /// SDS-R on.
    pub repair: bool,
    /// T_min, T_max (ms).
    pub repair_window_ms: (u64, u64),
    /// Response groups.
    pub response_groups: u32,
    /// Causal history length.
    pub causal_history_len: usize,
    /// Resend interval (ms).
    pub resend_interval_ms: u64,
    /// Sync interval (ms).
    pub sync_interval_ms: u64,
    /// Bloom filter size on the wire (bytes).
    pub bloom_bytes: usize,
    /// Whether full delivery is expected (an invariant) or only reported.
    pub expect_full_delivery: bool,
    /// When the network healed (s).
    pub heal_s: f64,
    /// Simulated end (s).
    pub end_s: f64,
}

/// Delivery of content messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Content messages sent.
    pub messages: u64,
    /// (receiver, message) pairs that should be delivered: each message times
    /// its channel's members other than the sender.
    pub expected_pairs: u64,
    /// Pairs delivered.
    pub delivered_pairs: u64,
    /// Messages delivered to every member.
    pub messages_complete: u64,
    /// Messages missing at one member or more at the end.
    pub messages_incomplete: u64,
    /// (member, message) pairs missing at the end.
    pub missing_pairs: u64,
    /// Of those, pairs whose message was never named in any transmitted
    /// causal history: a receiver that lost it has nothing to detect the gap
    /// with (no `MissingDependencies`, so no SDS-R request or store query).
    pub missing_pairs_never_named: u64,
    /// Messages never named in any transmitted causal history (whether or not
    /// anyone missed them).
    pub messages_never_named: u64,
    /// Sends skipped because the sender was offline.
    pub sends_skipped_offline: u64,
    /// Ephemeral messages sent.
    pub ephemeral_sent: u64,
    /// Ephemeral (receiver, message) pairs expected and received (no
    /// reliability: loss shows here).
    pub ephemeral_pairs: (u64, u64),
    /// Dependencies declared irretrievably lost (summed over participants).
    pub dependencies_declared_lost: u64,
}

/// A point of the delivery-completeness curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Simulated time (s).
    pub t_s: f64,
    /// Delivered pairs / pairs expected for the messages sent so far.
    pub ratio: f64,
    /// Pairs delivered so far.
    pub delivered: u64,
    /// Pairs expected so far.
    pub expected: u64,
}

/// A histogram bucket of delivery latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Lower bound (ms, inclusive).
    pub lo_ms: u64,
    /// Upper bound (ms, exclusive).
    pub hi_ms: u64,
    /// Deliveries.
    pub count: u64,
}

/// Acknowledgements at the sender.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acks {
    /// Messages acknowledged.
    pub acknowledged: u64,
    /// Messages given up ("not acknowledged").
    pub not_acknowledged: u64,
    /// Messages neither acknowledged nor given up at the end.
    pub pending: u64,
    /// Send -> acknowledged, over acknowledged messages (ms).
    pub time_to_ack_ms: Percentiles,
}

/// Detection of missed messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// (receiver, message) pairs whose first transmission did not arrive.
    pub missed_pairs: u64,
    /// Detected by a `MissingDependencies` event naming the message.
    pub detected_by_missing_event: u64,
    /// Delivered (by resend, repair or store) before any such event.
    pub detected_by_delivery: u64,
    /// Never detected.
    pub undetected: u64,
    /// Due -> detected (ms).
    pub time_ms: Percentiles,
}

/// Time to consistency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consistency {
    /// The reference point (s): the last content send or the heal, whichever is later.
    pub reference_s: f64,
    /// `last send` or `heal`.
    pub reference_kind: String,
    /// First time at or after the reference when all online members' logs
    /// were identical (s).
    pub consistent_at_s: Option<f64>,
    /// `consistent_at_s - reference_s` (ms).
    pub time_to_consistency_ms: Option<u64>,
    /// Whether the logs were identical at the end.
    pub consistent_at_end: bool,
}

/// Bytes of one kind of transmission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReasonBytes {
    /// Transmissions (broadcasts, counted once whatever the number of receivers).
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Bytes on the wire, counted once per transmission.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WireBytes {
    /// All bytes broadcast.
    pub total: u64,
    /// Content field encodings.
    pub content: u64,
    /// Bloom-filter field encodings.
    pub bloom: u64,
    /// Causal-history field encodings.
    pub causal_history: u64,
    /// Repair-request field encodings.
    pub repair_request: u64,
    /// Everything else (ids, channel, lamport timestamp, tags).
    pub other: u64,
    /// Total / content messages sent.
    pub per_content_message: f64,
    /// Mean bytes broadcast per participant.
    pub per_participant_mean: f64,
    /// Most bytes broadcast by one participant.
    pub per_participant_max: u64,
    /// By transmission reason (`new`, `resend`, `sync`, `repair`, `ephemeral`).
    pub by_reason: BTreeMap<String, ReasonBytes>,
    /// Bytes received by participants over the network (each delivered copy).
    pub received_total: u64,
    /// Bytes of store replies.
    pub store_replies: u64,
}

/// Store-node activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Messages held.
    pub messages_held: u64,
    /// Queries.
    pub queries: u64,
    /// Queries answered with the message.
    pub hits: u64,
    /// Queries for messages the store did not have (yet).
    pub misses: u64,
    /// Replies lost because the participant went offline.
    pub replies_dropped: u64,
    /// Messages dropped after the retention period (`store.retention_s`).
    pub expired: u64,
    /// Queries for a message the store had dropped (counted in `misses` too).
    pub expired_queries: u64,
}

/// Packet fates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetStats {
    /// (transmission, receiver) packets.
    pub packets: u64,
    /// Lost.
    pub lost: u64,
    /// Cut by a partition.
    pub partitioned: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Arrived at an offline receiver.
    pub dropped_offline: u64,
}

/// Invariant outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invariants {
    /// Whether all held.
    pub ok: bool,
    /// Violations (all of them).
    pub violation_count: u64,
    /// The first violations, described.
    pub violations: Vec<String>,
    /// What was checked.
    pub checked: Vec<String>,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// Seed.
    pub seed: u64,
    /// Participants.
    pub participants: usize,
    /// Final delivery ratio (delivered pairs / expected pairs; 1 if none expected).
    pub delivery_ratio: f64,
    /// Whether every invariant held.
    pub invariants_ok: bool,
    /// FURPS targets.
    pub furps: Furps,
    /// Wall-clock seconds of the run (the only value that differs between
    /// two runs of the same scenario and seed, with `events_per_second`).
    pub wall_seconds: f64,
    /// Simulated events processed per wall-clock second.
    pub events_per_second: f64,
    /// Simulated events processed.
    pub events: u64,
    /// Settings.
    pub settings: Settings,
    /// Delivery.
    pub delivery: Delivery,
    /// Delivery completeness over time.
    pub timeline: Vec<Sample>,
    /// Send -> delivered at each receiver (ms).
    pub latency_ms: Percentiles,
    /// Latency histogram.
    pub latency_histogram: Vec<Bucket>,
    /// Acknowledgements.
    pub acks: Acks,
    /// Missed-message detection.
    pub detection: Detection,
    /// Consistency.
    pub consistency: Consistency,
    /// Bytes on the wire.
    pub bytes: WireBytes,
    /// Store node.
    pub store: StoreStats,
    /// Network.
    pub network: NetStats,
    /// `sds::Stats` summed over participants.
    pub protocol: BTreeMap<String, u64>,
    /// Invariants.
    pub invariants: Invariants,
    /// Unexpected behaviour of the core that is not an invariant violation
    /// (errors returned by `send`/`receive`, undecodable transmissions, timers
    /// that do not advance).
    pub anomalies: Vec<String>,
}

fn secs(ms: Option<u64>) -> String {
    match ms {
        Some(v) if v < 10_000 => format!("{:.3} s", v as f64 / 1000.0),
        Some(v) => format!("{:.1} s", v as f64 / 1000.0),
        None => "never".into(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// `1234567` -> `1 234 567`.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn pcts_line(p: &Percentiles) -> String {
    if p.count == 0 {
        return "none".into();
    }
    format!(
        "p50 {}  p90 {}  p95 {}  p99 {}  max {}",
        secs(p.p50),
        secs(p.p90),
        secs(p.p95),
        secs(p.p99),
        secs(p.max)
    )
}

impl Report {
    /// The report as text, for people.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let s = &self.settings;
        let d = &self.delivery;
        let _ = writeln!(
            o,
            "SDS simulation: scenario \"{}\", seed {}",
            self.scenario, self.seed
        );
        if !self.description.is_empty() {
            let _ = writeln!(o, "  {}", self.description);
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "Scenario");
        let _ = writeln!(
            o,
            "  group        {} participants, {} channel(s) ({}), {} dialect",
            self.participants, s.channels, s.membership, s.dialect
        );
        let _ = writeln!(
            o,
            "  workload     {} senders, one message every {} s each ({}), {}-{} B content, {:.0} % ephemeral, t = {:.0}-{:.0} s",
            s.senders, s.interval_s, s.arrival, s.content_bytes.0, s.content_bytes.1,
            s.ephemeral_share * 100.0, s.workload_s.0, s.workload_s.1
        );
        let _ = writeln!(
            o,
            "  network      latency {}-{} ms + jitter 0-{} ms; loss {} ({}) during t = {:.0}-{:.0} s; duplication {}",
            s.latency_ms.0, s.latency_ms.1, s.latency_ms.2, pct(s.loss), s.loss_model,
            s.loss_window_s.0, s.loss_window_s.1, pct(s.duplicate)
        );
        let _ = writeln!(
            o,
            "  disruptions  {} partition(s), churn {:.0} % of participants + {} offline period(s)",
            s.partitions,
            s.churn.0 * 100.0,
            s.churn.1
        );
        let _ = writeln!(
            o,
            "  recovery     SDS-R {} (T_min {} s, T_max {} s, {} response group(s)), store node {}",
            if s.repair { "on" } else { "off" },
            s.repair_window_ms.0 / 1000,
            s.repair_window_ms.1 / 1000,
            s.response_groups,
            if s.store { "on" } else { "off" }
        );
        let _ = writeln!(
            o,
            "  sds          causal history {}, resend {} s, sync {} s, bloom {} B",
            s.causal_history_len,
            s.resend_interval_ms as f64 / 1000.0,
            s.sync_interval_ms as f64 / 1000.0,
            s.bloom_bytes
        );
        let _ = writeln!(
            o,
            "  time         healed at {:.1} s, simulated until {:.1} s",
            s.heal_s, s.end_s
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "Delivery");
        let _ = writeln!(
            o,
            "  messages     {} content messages sent ({} skipped: sender offline), {} ephemeral",
            thousands(d.messages),
            thousands(d.sends_skipped_offline),
            thousands(d.ephemeral_sent)
        );
        let _ = writeln!(
            o,
            "  delivered    {} / {} (receiver, message) pairs = {}",
            thousands(d.delivered_pairs),
            thousands(d.expected_pairs),
            pct(self.delivery_ratio)
        );
        let _ = writeln!(
            o,
            "  complete     {} messages at every member, {} missing somewhere; {} dependencies declared lost",
            thousands(d.messages_complete),
            thousands(d.messages_incomplete),
            thousands(d.dependencies_declared_lost)
        );
        if d.missing_pairs > 0 {
            let _ = writeln!(
                o,
                "  missing      {} (member, message) pairs at the end",
                thousands(d.missing_pairs)
            );
        }
        if d.missing_pairs_never_named > 0 {
            let _ = writeln!(
                o,
                "  never named  {} of them are of messages that no causal history ever named ({} such messages): receivers that lost those cannot detect the gap",
                thousands(d.missing_pairs_never_named),
                thousands(d.messages_never_named)
            );
        }
        if d.ephemeral_sent > 0 {
            let (e, r) = d.ephemeral_pairs;
            let _ = writeln!(
                o,
                "  ephemeral    {} / {} pairs received ({})",
                thousands(r),
                thousands(e),
                pct(if e == 0 { 1.0 } else { r as f64 / e as f64 })
            );
        }
        let mut line = String::from("  over time   ");
        let marks = timeline_marks(&self.timeline, 8);
        for m in marks {
            let _ = write!(line, " {:.0}s:{:.1}%", m.t_s, m.ratio * 100.0);
        }
        let _ = writeln!(o, "{line}");
        let _ = writeln!(o);
        let _ = writeln!(o, "Latency (send -> delivered, per receiver)");
        let _ = writeln!(o, "  {}", pcts_line(&self.latency_ms));
        let _ = writeln!(o);
        let a = &self.acks;
        let _ = writeln!(o, "Acknowledgement (send -> acknowledged at the sender)");
        let _ = writeln!(
            o,
            "  {} acknowledged, {} not acknowledged (given up), {} pending",
            thousands(a.acknowledged),
            thousands(a.not_acknowledged),
            thousands(a.pending)
        );
        let _ = writeln!(o, "  {}", pcts_line(&a.time_to_ack_ms));
        let _ = writeln!(o);
        let t = &self.detection;
        let _ = writeln!(o, "Missed-message detection (first due at the receiver -> MissingDependencies or delivery)");
        let _ = writeln!(
            o,
            "  {} missed pairs: {} detected by MissingDependencies, {} by delivery, {} never",
            thousands(t.missed_pairs),
            thousands(t.detected_by_missing_event),
            thousands(t.detected_by_delivery),
            thousands(t.undetected)
        );
        let _ = writeln!(o, "  {}", pcts_line(&t.time_ms));
        let _ = writeln!(o);
        let c = &self.consistency;
        let _ = writeln!(o, "Consistency (all online members' logs identical)");
        let _ = writeln!(
            o,
            "  reference {:.1} s ({}); consistent at {}; time to consistency {}; consistent at the end: {}",
            c.reference_s,
            c.reference_kind,
            c.consistent_at_s.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "never".into()),
            secs(c.time_to_consistency_ms),
            if c.consistent_at_end { "yes" } else { "no" }
        );
        let _ = writeln!(o);
        let b = &self.bytes;
        let _ = writeln!(o, "Bytes on the wire (each broadcast counted once)");
        let tot = b.total.max(1) as f64;
        let _ = writeln!(
            o,
            "  total {}: content {:.1} %, bloom {:.1} %, causal history {:.1} %, repair {:.1} %, other {:.1} %",
            human_bytes(b.total as f64),
            b.content as f64 * 100.0 / tot,
            b.bloom as f64 * 100.0 / tot,
            b.causal_history as f64 * 100.0 / tot,
            b.repair_request as f64 * 100.0 / tot,
            b.other as f64 * 100.0 / tot
        );
        let _ = writeln!(
            o,
            "  {} per content message; per participant {} mean, {} max; received {} in all",
            human_bytes(b.per_content_message),
            human_bytes(b.per_participant_mean),
            human_bytes(b.per_participant_max as f64),
            human_bytes(b.received_total as f64)
        );
        let mut line = String::from("  broadcasts  ");
        for (k, v) in &b.by_reason {
            let _ = write!(
                line,
                " {k} {} ({})",
                thousands(v.count),
                human_bytes(v.bytes as f64)
            );
        }
        let _ = writeln!(o, "{line}");
        if s.store {
            let st = &self.store;
            let _ = writeln!(
                o,
                "  store        {} held, {} queries: {} answered, {} not found; replies {}",
                thousands(st.messages_held),
                thousands(st.queries),
                thousands(st.hits),
                thousands(st.misses),
                human_bytes(b.store_replies as f64)
            );
            if st.expired > 0 {
                let _ = writeln!(
                    o,
                    "               {} dropped after the retention period; {} queries asked for one of them",
                    thousands(st.expired),
                    thousands(st.expired_queries)
                );
            }
        }
        let n = &self.network;
        let _ = writeln!(
            o,
            "  packets      {} sent to receivers: {} lost, {} partitioned, {} duplicated, {} to offline receivers",
            thousands(n.packets),
            thousands(n.lost),
            thousands(n.partitioned),
            thousands(n.duplicated),
            thousands(n.dropped_offline)
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "Protocol counters (sds::Stats summed over participants)");
        let mut line = String::new();
        for (i, (k, v)) in self.protocol.iter().enumerate() {
            if i % 4 == 0 {
                if !line.is_empty() {
                    let _ = writeln!(o, "{line}");
                }
                line = String::from(" ");
            }
            let _ = write!(line, " {:<26}", format!("{k} {}", thousands(*v)));
        }
        let _ = writeln!(o, "{}", line.trim_end());
        let _ = writeln!(o);
        let f = &self.furps;
        let mark = |b: bool| if b { "[met]    " } else { "[NOT met]" };
        let _ = writeln!(o, "FURPS targets (S = {} s)", f.s_seconds);
        let _ = writeln!(
            o,
            "  {} a sender knows its message arrived within S: p90 time to ack {} (unacknowledged = never)",
            mark(f.ack_within_s),
            secs(f.ack_p90_ms)
        );
        let det = if t.missed_pairs == 0 {
            "no message was missed".to_string()
        } else {
            format!("p90 detection {}", secs(f.detect_p90_ms))
        };
        let _ = writeln!(
            o,
            "  {} 90 % of missed messages detected within 3·S = {} s: {}",
            mark(f.detect_90pct_within_3s),
            f.s_seconds * 3.0,
            det
        );
        let _ = writeln!(
            o,
            "  {} group consistent within 6·S = {} s: {}",
            mark(f.consistent_within_6s),
            f.s_seconds * 6.0,
            secs(f.consistency_ms)
        );
        let _ = writeln!(o);
        let i = &self.invariants;
        if i.ok {
            let _ = writeln!(o, "Invariants: OK ({})", i.checked.join("; "));
        } else {
            let _ = writeln!(
                o,
                "Invariants: VIOLATED ({} violation(s), seed {})",
                i.violation_count, self.seed
            );
            for v in i.violations.iter().take(8) {
                let _ = writeln!(o, "  {v}");
            }
            if i.violations.len() > 8 {
                let _ = writeln!(
                    o,
                    "  ... ({} violations in all; the JSON output lists the first {})",
                    i.violation_count,
                    i.violations.len()
                );
            }
        }
        if !self.anomalies.is_empty() {
            let _ = writeln!(o, "Anomalies of the core:");
            for a in &self.anomalies {
                let _ = writeln!(o, "  {a}");
            }
        }
        let _ = writeln!(
            o,
            "Performance: {} simulated events in {:.2} s wall = {} events/s",
            thousands(self.events),
            self.wall_seconds,
            thousands(self.events_per_second as u64)
        );
        o
    }
}

fn timeline_marks(t: &[Sample], n: usize) -> Vec<Sample> {
    if t.is_empty() {
        return Vec::new();
    }
    let step = (t.len() as f64 / n as f64).max(1.0);
    let mut out: Vec<Sample> = (0..n)
        .map(|i| ((i + 1) as f64 * step).ceil() as usize - 1)
        .filter(|&i| i < t.len())
        .map(|i| t[i])
        .collect();
    out.dedup_by(|a, b| a.t_s == b.t_s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(nearest_rank(&v, 0.9), Some(9));
        assert_eq!(nearest_rank(&v, 0.5), Some(5));
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(quantile_with_infinite(&v, 10, 0.9), Some(9));
        assert_eq!(quantile_with_infinite(&v[..8], 10, 0.9), None);
        assert_eq!(quantile_with_infinite(&v[..9], 10, 0.9), Some(9));
        assert_eq!(thousands(1234567), "1 234 567");
        assert_eq!(thousands(12), "12");
    }
}
