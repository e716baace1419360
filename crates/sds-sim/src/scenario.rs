//! Scenario files: what to simulate (TOML; every key is documented in
//! `docs/sim.md`, with its default).
//!
//! Parsing never panics: a bad file gives a [`ScenarioError`] that names the
//! key (or the TOML line) at fault.

use serde::{Deserialize, Serialize};

/// The scenario `sds sim` runs when no file is given (a copy of
/// `scenarios/default.toml`).
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/default.toml");

/// A scenario that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("scenario file: {0}")]
    Parse(String),
    /// A key has a value outside its range.
    #[error("scenario key `{key}`: {problem}")]
    Invalid {
        /// The key, with its table (e.g. `network.loss`).
        key: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(key: &str, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Short name, shown in reports.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Seed of every random choice (network, workload, churn, and the
    /// participants' own back-offs).
    pub seed: u64,
    /// Number of participants.
    pub participants: usize,
    /// How long the workload sends, in simulated seconds.
    pub duration_s: f64,
    /// How long the simulation goes on after the network has healed (end of
    /// the workload, of loss, of partitions and of churn, whichever is last).
    pub settle_s: f64,
    /// Unix time (ms) of simulated time zero.
    pub epoch_ms: u64,
    /// Interval of the delivery-completeness samples, in ms.
    pub sample_interval_ms: u64,
    /// Whether every sent message must end up in every member's log (and
    /// all logs identical). `false` for scenarios that cannot recover
    /// everything; the report then says how much was lost.
    pub expect_full_delivery: bool,
    /// Length of the generated message ids (hex; at least 16).
    pub message_id_len: usize,
    /// What participants send.
    pub workload: Workload,
    /// Channels and membership.
    pub channels: Channels,
    /// Latency, loss, duplication.
    pub network: Network,
    /// Scheduled partitions (`[[partitions]]`).
    pub partitions: Vec<Partition>,
    /// Participants going offline.
    pub churn: Churn,
    /// The optional store node.
    pub store: Store,
    /// Protocol configuration (maps to `sds::Config`).
    pub sds: SdsSettings,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "unnamed".into(),
            description: String::new(),
            seed: 1,
            participants: 10,
            duration_s: 60.0,
            settle_s: 300.0,
            epoch_ms: 1_700_000_000_000,
            sample_interval_ms: 1_000,
            expect_full_delivery: true,
            message_id_len: 64,
            workload: Workload::default(),
            channels: Channels::default(),
            network: Network::default(),
            partitions: Vec::new(),
            churn: Churn::default(),
            store: Store::default(),
            sds: SdsSettings::default(),
        }
    }
}

/// How send times are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps with mean `interval_s`.
    Poisson,
    /// Gaps of `interval_s`, each varied uniformly by `± jitter · interval_s`.
    Fixed,
}

/// `[workload]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Mean interval between two sends of one participant, in seconds (the
    /// FURPS targets' `S`).
    pub interval_s: f64,
    /// `poisson` or `fixed`.
    pub arrival: Arrival,
    /// For `fixed`: relative variation of each gap (0..1).
    pub jitter: f64,
    /// When sending starts (s).
    pub start_s: f64,
    /// Smallest content size (bytes).
    pub content_min_bytes: usize,
    /// Largest content size (bytes); sizes are uniform in between.
    pub content_max_bytes: usize,
    /// Share of sends that are ephemeral (0..1).
    pub ephemeral_share: f64,
    /// Share of participants that send at all (0..1; the first ones by index).
    pub sender_share: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            interval_s: 10.0,
            arrival: Arrival::Poisson,
            jitter: 0.1,
            start_s: 0.0,
            content_min_bytes: 100,
            content_max_bytes: 100,
            ephemeral_share: 0.0,
            sender_share: 1.0,
        }
    }
}

/// How participants map to channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// Every participant is in every channel.
    All,
    /// Each participant is in `per_participant` channels, chosen at random
    /// (every channel gets at least two members).
    Subset,
}

/// `[channels]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    /// Number of channels.
    pub count: usize,
    /// `all` or `subset`.
    pub membership: Membership,
    /// For `subset`: channels per participant.
    pub per_participant: usize,
}

impl Default for Channels {
    fn default() -> Self {
        Channels {
            count: 1,
            membership: Membership::All,
            per_participant: 1,
        }
    }
}

/// Loss model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossModel {
    /// Each (transmission, receiver) lost independently with probability `loss`.
    Bernoulli,
    /// Two-state (good/bad) Markov chain per receiver (see `[network.gilbert_elliott]`).
    GilbertElliott,
}

/// `[network.gilbert_elliott]`: per-receiver bursty loss. The chain steps
/// once per packet addressed to the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GilbertElliott {
    /// Probability of moving from good to bad at each packet.
    pub p_good_to_bad: f64,
    /// Probability of moving from bad to good at each packet.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl Default for GilbertElliott {
    fn default() -> Self {
        GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.2,
            loss_good: 0.01,
            loss_bad: 0.8,
        }
    }
}

impl GilbertElliott {
    /// Long-run loss rate: stationary share of the bad state times its loss,
    /// plus the same for the good state.
    pub fn mean_loss(&self) -> f64 {
        let denom = self.p_good_to_bad + self.p_bad_to_good;
        if denom <= 0.0 {
            return self.loss_good;
        }
        let bad = self.p_good_to_bad / denom;
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Smallest base latency of a link (ms). Each ordered pair of
    /// participants gets a fixed base latency, uniform in
    /// `[latency_min_ms, latency_max_ms]`, derived from the seed.
    pub latency_min_ms: u64,
    /// Largest base latency of a link (ms).
    pub latency_max_ms: u64,
    /// Per-packet extra delay, uniform in `[0, jitter_ms]` (reorders packets).
    pub jitter_ms: u64,
    /// `bernoulli` or `gilbert_elliott`.
    pub loss_model: LossModel,
    /// For `bernoulli`: loss probability per (transmission, receiver).
    pub loss: f64,
    /// Bursty-loss parameters (used with `loss_model = "gilbert_elliott"`).
    pub gilbert_elliott: GilbertElliott,
    /// When loss starts (s).
    pub loss_start_s: f64,
    /// When loss ends (s); default: the end of the workload.
    pub loss_end_s: Option<f64>,
    /// Probability that a delivered packet arrives twice (the copy with its own jitter).
    pub duplicate: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency_min_ms: 20,
            latency_max_ms: 150,
            jitter_ms: 30,
            loss_model: LossModel::Bernoulli,
            loss: 0.0,
            gilbert_elliott: GilbertElliott::default(),
            loss_start_s: 0.0,
            loss_end_s: None,
            duplicate: 0.0,
        }
    }
}

/// `[[partitions]]`: between `start_s` and `end_s`, participants of different
/// groups cannot hear each other. Participants not listed form one more group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start (s).
    pub start_s: f64,
    /// End (s): the heal.
    pub end_s: f64,
    /// Groups as index ranges, e.g. `["0-49", "50-99"]` or `["0-9,20-29"]`.
    pub groups: Vec<String>,
}

/// `[[churn.offline]]`: explicit offline periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflinePeriod {
    /// Index ranges, e.g. `"0-9"`.
    pub participants: String,
    /// Goes offline (s).
    pub start_s: f64,
    /// Comes back (s).
    pub end_s: f64,
}

/// `[churn]`: participants offline for periods (they neither send nor
/// receive and their timers pause; they come back with their in-memory state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Churn {
    /// Share of participants that churn at random (0..1).
    pub fraction: f64,
    /// Mean online time between two offline periods (s, exponential).
    pub mean_online_s: f64,
    /// Mean offline period (s, exponential).
    pub mean_offline_s: f64,
    /// Random churn starts (s).
    pub start_s: f64,
    /// Random churn ends (s; everyone is back by then); default: end of the workload.
    pub end_s: Option<f64>,
    /// Explicit offline periods.
    pub offline: Vec<OfflinePeriod>,
}

impl Default for Churn {
    fn default() -> Self {
        Churn {
            fraction: 0.0,
            mean_online_s: 60.0,
            mean_offline_s: 30.0,
            start_s: 0.0,
            end_s: None,
            offline: Vec::new(),
        }
    }
}

/// `[store]`: a high-availability cache that records every broadcast and
/// answers queries for missing message ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// Whether there is a store node.
    pub enabled: bool,
    /// One-way latency between a participant and the store (ms); the store
    /// also records a broadcast this long after it was sent.
    pub latency_ms: u64,
    /// How long a participant waits after `MissingDependencies` before asking (ms).
    pub query_delay_ms: u64,
    /// How long the store keeps a message after recording it (s), as a
    /// store node's retention policy does; absent: for the whole run.
    /// Queries for a message it dropped are answered "not found" and
    /// counted apart in the report.
    pub retention_s: Option<u64>,
    /// Whether the store keeps a message's bloom filter (the exact bytes
    /// broadcast). `false`: it keeps the message re-encoded without it, so
    /// a reply carries no acknowledgement information (a late copy's bloom
    /// filter is stale anyway) and the store holds about 1 kB per message
    /// instead of about 20 kB with the default 18 752-byte filter.
    pub keep_bloom: bool,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            enabled: false,
            latency_ms: 50,
            query_delay_ms: 1_000,
            retention_s: None,
            keep_bloom: true,
        }
    }
}

/// Sending dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialectName {
    /// LIP-109 / `@waku/sds`.
    Spec,
    /// nim-sds.
    Nim,
}

/// `[sds]`: protocol configuration. Absent keys keep `sds::Config`'s defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdsSettings {
    /// `spec` (default) or `nim`.
    pub dialect: Option<DialectName>,
    /// `Config::causal_history_len`.
    pub causal_history_len: Option<usize>,
    /// `Config::max_log`.
    pub max_log: Option<usize>,
    /// `Config::max_incoming`.
    pub max_incoming: Option<usize>,
    /// `Config::bloom_capacity`.
    pub bloom_capacity: Option<u64>,
    /// `Config::bloom_error_rate`.
    pub bloom_error_rate: Option<f64>,
    /// `Config::possible_ack_threshold`.
    pub possible_ack_threshold: Option<u32>,
    /// `Config::resend_interval_ms`.
    pub resend_interval_ms: Option<u64>,
    /// `Config::possibly_acked_resend_interval_ms`.
    pub possibly_acked_resend_interval_ms: Option<u64>,
    /// `Config::max_resend_attempts`.
    pub max_resend_attempts: Option<u32>,
    /// `Config::buffer_timeout_ms`.
    pub buffer_timeout_ms: Option<u64>,
    /// `Config::sync_interval_ms`.
    pub sync_interval_ms: Option<u64>,
    /// `Config::sync_backoff_ms`.
    pub sync_backoff_ms: Option<u64>,
    /// `ChannelConfig::sync` (default: on for spec, off for nim).
    pub sync: Option<bool>,
    /// `RepairConfig::enabled` (SDS-R).
    pub repair: Option<bool>,
    /// `RepairConfig::t_min_ms`.
    pub t_min_ms: Option<u64>,
    /// `RepairConfig::t_max_ms`.
    pub t_max_ms: Option<u64>,
    /// `RepairConfig::num_response_groups`; 0 means the spec's formula
    /// (`participants / 128 + 1`).
    pub response_groups: Option<u32>,
    /// `RepairConfig::max_requests_per_message`.
    pub max_repair_requests_per_message: Option<usize>,
    /// `RepairConfig::max_request_attempts`.
    pub max_repair_request_attempts: Option<u32>,
    /// `RepairConfig::retry_interval_ms`.
    pub repair_retry_interval_ms: Option<u64>,
}

impl SdsSettings {
    /// The core configuration for a group of `participants`, with `seed`.
    pub fn to_config(&self, participants: usize, seed: u64) -> sds::Config {
        let mut c = sds::Config::default();
        if let Some(d) = self.dialect {
            c.default_dialect = d.into();
        }
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = self.$field {
                    c.$field = v;
                }
            };
        }
        set!(causal_history_len);
        set!(max_log);
        set!(max_incoming);
        set!(bloom_capacity);
        set!(bloom_error_rate);
        set!(possible_ack_threshold);
        set!(resend_interval_ms);
        set!(possibly_acked_resend_interval_ms);
        set!(max_resend_attempts);
        set!(buffer_timeout_ms);
        set!(sync_interval_ms);
        set!(sync_backoff_ms);
        if let Some(v) = self.repair {
            c.repair.enabled = v;
        }
        if let Some(v) = self.t_min_ms {
            c.repair.t_min_ms = v;
        }
        if let Some(v) = self.t_max_ms {
            c.repair.t_max_ms = v;
        }
        match self.response_groups {
            Some(0) => c.repair.num_response_groups = (participants / 128 + 1) as u32,
            Some(n) => c.repair.num_response_groups = n,
            None => {}
        }
        if let Some(v) = self.max_repair_requests_per_message {
            c.repair.max_requests_per_message = v;
        }
        if let Some(v) = self.max_repair_request_attempts {
            c.repair.max_request_attempts = v;
        }
        if let Some(v) = self.repair_retry_interval_ms {
            c.repair.retry_interval_ms = v;
        }
        c.seed = seed;
        c
    }

    /// The channel settings.
    pub fn channel_config(&self) -> sds::ChannelConfig {
        let mut cc = sds::ChannelConfig::new(self.dialect.map(Into::into).unwrap_or_default());
        cc.sync = self.sync;
        cc
    }
}

impl From<DialectName> for sds::Dialect {
    fn from(d: DialectName) -> Self {
        match d {
            DialectName::Spec => sds::Dialect::Spec,
            DialectName::Nim => sds::Dialect::Nim,
        }
    }
}

/// Parses participant index ranges such as `"0-9,20,30-39"`; every index
/// must be below `n`.
pub fn parse_ranges(s: &str, n: usize, key: &str) -> Result<Vec<usize>, ScenarioError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |x: &str| {
            x.parse::<usize>().map_err(|_| {
                invalid(
                    key,
                    format!("{part:?} is not an index or a range like \"0-9\""),
                )
            })
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            return Err(invalid(
                key,
                format!("range {part:?} is empty (start after end)"),
            ));
        }
        if b >= n {
            return Err(invalid(
                key,
                format!("index {b} in {part:?} is out of range (there are {n} participants)"),
            ));
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(invalid(key, "no participant listed"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn check_prob(key: &str, v: f64) -> Result<(), ScenarioError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(key, format!("{v} is not a probability in [0, 1]")));
    }
    Ok(())
}

fn check_time(key: &str, v: f64) -> Result<(), ScenarioError> {
    if !v.is_finite() || !(0.0..=1.0e7).contains(&v) {
        return Err(invalid(
            key,
            format!("{v} is not a time in seconds between 0 and 1e7"),
        ));
    }
    Ok(())
}

/// Seconds to ms.
pub(crate) fn ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// The embedded default scenario.
    pub fn default_scenario() -> Scenario {
        Scenario::from_toml(DEFAULT_SCENARIO).expect("the embedded default scenario is valid")
    }

    /// End of the workload (ms).
    pub fn workload_end_ms(&self) -> u64 {
        ms(self.workload.start_s + self.duration_s)
    }

    /// When loss ends (ms).
    pub fn loss_end_ms(&self) -> u64 {
        ms(self
            .network
            .loss_end_s
            .unwrap_or(self.workload.start_s + self.duration_s))
    }

    /// When random churn ends (ms).
    pub fn churn_end_ms(&self) -> u64 {
        ms(self
            .churn
            .end_s
            .unwrap_or(self.workload.start_s + self.duration_s))
    }

    /// Whether the loss model loses anything.
    pub fn has_loss(&self) -> bool {
        match self.network.loss_model {
            LossModel::Bernoulli => self.network.loss > 0.0,
            LossModel::GilbertElliott => {
                let g = &self.network.gilbert_elliott;
                g.loss_good > 0.0 || (g.loss_bad > 0.0 && g.p_good_to_bad > 0.0)
            }
        }
    }

    /// When the network has healed (ms): the end of the workload, of loss,
    /// of the last partition and of churn, whichever is last.
    pub fn heal_ms(&self) -> u64 {
        let mut t = self.workload_end_ms();
        if self.has_loss() || self.network.duplicate > 0.0 {
            t = t.max(self.loss_end_ms());
        }
        for p in &self.partitions {
            t = t.max(ms(p.end_s));
        }
        if self.churn.fraction > 0.0 {
            t = t.max(self.churn_end_ms());
        }
        for o in &self.churn.offline {
            t = t.max(ms(o.end_s));
        }
        t
    }

    /// End of the simulation (ms): heal plus settle.
    pub fn end_ms(&self) -> u64 {
        self.heal_ms() + ms(self.settle_s)
    }

    /// Checks every value; errors name the key.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.participants < 2 || self.participants > 100_000 {
            return Err(invalid("participants", "must be between 2 and 100000"));
        }
        check_time("duration_s", self.duration_s)?;
        check_time("settle_s", self.settle_s)?;
        if self.epoch_ms > 1u64 << 60 {
            return Err(invalid("epoch_ms", "too large"));
        }
        if self.sample_interval_ms == 0 || self.sample_interval_ms > 3_600_000 {
            return Err(invalid(
                "sample_interval_ms",
                "must be between 1 and 3600000",
            ));
        }
        if !(16..=256).contains(&self.message_id_len) {
            return Err(invalid("message_id_len", "must be between 16 and 256"));
        }
        let w = &self.workload;
        if !w.interval_s.is_finite() || w.interval_s < 0.001 || w.interval_s > 1.0e6 {
            return Err(invalid(
                "workload.interval_s",
                "must be between 0.001 and 1e6 seconds",
            ));
        }
        check_prob("workload.jitter", w.jitter)?;
        check_time("workload.start_s", w.start_s)?;
        if w.content_min_bytes == 0 {
            return Err(invalid("workload.content_min_bytes", "must be at least 1"));
        }
        if w.content_max_bytes < w.content_min_bytes {
            return Err(invalid(
                "workload.content_max_bytes",
                "must be >= content_min_bytes",
            ));
        }
        if w.content_max_bytes > 1024 * 1024 {
            return Err(invalid(
                "workload.content_max_bytes",
                "must be at most 1 MiB",
            ));
        }
        check_prob("workload.ephemeral_share", w.ephemeral_share)?;
        check_prob("workload.sender_share", w.sender_share)?;
        let c = &self.channels;
        if c.count == 0 || c.count > 64 {
            return Err(invalid("channels.count", "must be between 1 and 64"));
        }
        if c.membership == Membership::Subset {
            if c.per_participant == 0 || c.per_participant > c.count {
                return Err(invalid(
                    "channels.per_participant",
                    "must be between 1 and channels.count",
                ));
            }
            if self.participants * c.per_participant < 2 * c.count {
                return Err(invalid(
                    "channels.per_participant",
                    "too few memberships for every channel to get two members",
                ));
            }
        }
        let n = &self.network;
        if n.latency_max_ms < n.latency_min_ms {
            return Err(invalid(
                "network.latency_max_ms",
                "must be >= latency_min_ms",
            ));
        }
        if n.latency_max_ms > 600_000 || n.jitter_ms > 600_000 {
            return Err(invalid(
                "network.latency_max_ms",
                "latencies above 10 minutes are not supported",
            ));
        }
        check_prob("network.loss", n.loss)?;
        check_prob("network.duplicate", n.duplicate)?;
        let g = &n.gilbert_elliott;
        check_prob("network.gilbert_elliott.p_good_to_bad", g.p_good_to_bad)?;
        check_prob("network.gilbert_elliott.p_bad_to_good", g.p_bad_to_good)?;
        check_prob("network.gilbert_elliott.loss_good", g.loss_good)?;
        check_prob("network.gilbert_elliott.loss_bad", g.loss_bad)?;
        check_time("network.loss_start_s", n.loss_start_s)?;
        if let Some(e) = n.loss_end_s {
            check_time("network.loss_end_s", e)?;
            if e < n.loss_start_s {
                return Err(invalid("network.loss_end_s", "must be >= loss_start_s"));
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            let key = format!("partitions[{i}]");
            check_time(&format!("{key}.start_s"), p.start_s)?;
            check_time(&format!("{key}.end_s"), p.end_s)?;
            if p.end_s < p.start_s {
                return Err(invalid(&format!("{key}.end_s"), "must be >= start_s"));
            }
            if p.groups.is_empty() {
                return Err(invalid(
                    &format!("{key}.groups"),
                    "needs at least one group",
                ));
            }
            let mut seen = vec![false; self.participants];
            for g in &p.groups {
                for i in parse_ranges(g, self.participants, &format!("{key}.groups"))? {
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(invalid(
                            &format!("{key}.groups"),
                            format!("participant {i} is in two groups"),
                        ));
                    }
                }
            }
        }
        let ch = &self.churn;
        check_prob("churn.fraction", ch.fraction)?;
        if ch.fraction > 0.0 {
            if ch.mean_online_s.is_nan() || ch.mean_online_s < 0.1 || !ch.mean_online_s.is_finite()
            {
                return Err(invalid("churn.mean_online_s", "must be at least 0.1 s"));
            }
            if ch.mean_offline_s.is_nan()
                || ch.mean_offline_s < 0.1
                || !ch.mean_offline_s.is_finite()
            {
                return Err(invalid("churn.mean_offline_s", "must be at least 0.1 s"));
            }
        }
        check_time("churn.start_s", ch.start_s)?;
        if let Some(e) = ch.end_s {
            check_time("churn.end_s", e)?;
        }
        for (i, o) in ch.offline.iter().enumerate() {
            let key = format!("churn.offline[{i}]");
            parse_ranges(
                &o.participants,
                self.participants,
                &format!("{key}.participants"),
            )?;
            check_time(&format!("{key}.start_s"), o.start_s)?;
            check_time(&format!("{key}.end_s"), o.end_s)?;
            if o.end_s < o.start_s {
                return Err(invalid(&format!("{key}.end_s"), "must be >= start_s"));
            }
        }
        if self.store.latency_ms > 600_000 {
            return Err(invalid("store.latency_ms", "must be at most 600000"));
        }
        if self.store.query_delay_ms > 3_600_000 {
            return Err(invalid("store.query_delay_ms", "must be at most 3600000"));
        }
        if self.store.retention_s == Some(0) {
            return Err(invalid("store.retention_s", "must be at least 1"));
        }
        let s = &self.sds;
        if let Some(v) = s.causal_history_len {
            if v > 1000 {
                return Err(invalid("sds.causal_history_len", "must be at most 1000"));
            }
        }
        if s.max_log == Some(0) {
            return Err(invalid("sds.max_log", "must be at least 1"));
        }
        if let Some(v) = s.bloom_error_rate {
            if !(v > 0.0 && v < 1.0) {
                return Err(invalid("sds.bloom_error_rate", "must be in (0, 1)"));
            }
        }
        if s.bloom_capacity == Some(0) {
            return Err(invalid("sds.bloom_capacity", "must be at least 1"));
        }
        if let (Some(a), Some(b)) = (s.t_min_ms, s.t_max_ms) {
            if b <= a {
                return Err(invalid("sds.t_max_ms", "must be greater than t_min_ms"));
            }
        }
        let cfg = s.to_config(self.participants, self.seed);
        if cfg.repair.t_max_ms <= cfg.repair.t_min_ms {
            return Err(invalid("sds.t_max_ms", "must be greater than t_min_ms"));
        }
        if let Err(e) = cfg.bloom_params() {
            return Err(invalid(
                "sds.bloom_capacity",
                format!("bloom parameters rejected: {e}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_ranges("0-2, 5", 10, "k").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_ranges("0-10", 10, "k")
            .unwrap_err()
            .to_string()
            .contains("`k`"));
        assert!(parse_ranges("a", 10, "k").is_err());
        assert!(parse_ranges("3-1", 10, "k").is_err());
        assert!(parse_ranges("", 10, "k").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Scenario::from_toml("[network]\nloss = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("network.loss"), "{e}");
        let e = Scenario::from_toml("[network]\nlos = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("los"), "{e}");
        let e = Scenario::from_toml("participants = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("participants"), "{e}");
        let e =
            Scenario::from_toml("[[partitions]]\nstart_s = 1\nend_s = 2\ngroups = [\"0-20\"]\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("partitions[0].groups"), "{e}");
    }
}
