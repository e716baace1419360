//! `sds peer`: one participant driven by JSON lines on stdin, reporting JSON
//! lines on stdout (the protocol is documented in `docs/peer.md`).
//!
//! Every input line produces zero or more output lines followed by
//! `{"type":"done"}`; stdout is flushed after each `done`. Before an input
//! with `now_ms` is processed, every timer due at or before `now_ms` fires at
//! its own deadline, in order.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::{json, Value};

use sds::repair::timing::{self, RepairHash};
use sds::wire::{self, HistoryEntry};
use sds::{ChannelConfig, Config, Dialect, Event, Participant, Received, Transmit};

/// Arguments of `sds peer`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Our participant id (the `sender_id` of everything we send).
    #[arg(long)]
    participant_id: String,
    /// Dialect used to send on the channels this peer creates.
    #[arg(long, value_enum, default_value_t = DialectArg::Spec)]
    dialect: DialectArg,
    /// A TOML file of `sds::Config` fields (see `docs/peer.md`).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Persist the participant: `sqlite:PATH` (or `sqlite:PATH?sync=full`).
    /// A peer started again on the same file continues where it stopped.
    #[arg(long, value_name = "SPEC")]
    store: Option<String>,
}

/// A sending dialect on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DialectArg {
    Spec,
    Nim,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Spec => Dialect::Spec,
            DialectArg::Nim => Dialect::Nim,
        }
    }
}

/// Runs the peer until stdin closes.
pub fn run(args: &PeerArgs) -> ExitCode {
    let file = match args.config.as_deref().map(load_config_file).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("sds peer: {e}");
            return ExitCode::from(2);
        }
    };
    let mut peer = match Peer::new(
        &args.participant_id,
        args.dialect.into(),
        file,
        args.store.as_deref(),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sds peer: {e}");
            return ExitCode::from(2);
        }
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut lines = Vec::new();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sds peer: cannot read stdin: {e}");
                return ExitCode::from(1);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        lines.clear();
        peer.handle_line(&line, &mut lines);
        lines.push(json!({"type": "done"}));
        for v in &lines {
            if writeln!(out, "{v}").is_err() {
                return ExitCode::from(1);
            }
        }
        if out.flush().is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

// ------------------------------------------------------------------ config

/// The TOML configuration file: every field optional, defaults from
/// [`Config::default`]. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    causal_history_len: Option<usize>,
    max_log: Option<usize>,
    max_evicted_ids: Option<usize>,
    max_marked_met: Option<usize>,
    bloom_capacity: Option<u64>,
    bloom_error_rate: Option<f64>,
    possible_ack_threshold: Option<u32>,
    resend_interval_ms: Option<u64>,
    possibly_acked_resend_interval_ms: Option<u64>,
    max_resend_attempts: Option<u32>,
    max_outgoing: Option<usize>,
    max_incoming: Option<usize>,
    buffer_timeout_ms: Option<u64>,
    sync_interval_ms: Option<u64>,
    sync_backoff_ms: Option<u64>,
    sync_suppressed_by_others: Option<bool>,
    accept_unknown_channels: Option<bool>,
    max_channels: Option<usize>,
    max_content_bytes: Option<usize>,
    seed: Option<u64>,
    /// Per-channel: whether periodic sync messages are sent (default: spec yes, nim no).
    sync: Option<bool>,
    repair: Option<RepairFile>,
    limits: Option<LimitsFile>,
}

/// The `[repair]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepairFile {
    enabled: Option<bool>,
    t_min_ms: Option<u64>,
    t_max_ms: Option<u64>,
    num_response_groups: Option<u32>,
    max_requests_per_message: Option<usize>,
    max_request_attempts: Option<u32>,
    min_request_gap_ms: Option<u64>,
    max_outgoing_entries: Option<usize>,
    max_incoming_entries: Option<usize>,
    /// `"spec"` or `"nim"`; absent: follow the channel's dialect.
    hash: Option<HashName>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum HashName {
    Spec,
    Nim,
}

impl From<HashName> for RepairHash {
    fn from(h: HashName) -> Self {
        match h {
            HashName::Spec => RepairHash::Spec,
            HashName::Nim => RepairHash::Nim,
        }
    }
}

/// The `[limits]` table (decoding limits).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_message_bytes: Option<usize>,
    max_causal_history: Option<usize>,
    max_repair_request: Option<usize>,
    max_id_len: Option<usize>,
    max_hint_len: Option<usize>,
    max_bloom_bytes: Option<usize>,
}

fn load_config_file(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ConfigFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

macro_rules! set {
    ($dst:expr, $src:expr, $($f:ident),* $(,)?) => {
        $( if let Some(v) = $src.$f { $dst.$f = v; } )*
    };
}

impl ConfigFile {
    /// Parses a TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    /// The library configuration: defaults overridden by the file.
    pub fn to_config(&self, dialect: Dialect) -> Config {
        let mut c = Config {
            default_dialect: dialect,
            ..Config::default()
        };
        set!(
            c,
            self,
            causal_history_len,
            max_log,
            max_evicted_ids,
            max_marked_met,
            bloom_capacity,
            bloom_error_rate,
            possible_ack_threshold,
            resend_interval_ms,
            possibly_acked_resend_interval_ms,
            max_resend_attempts,
            max_outgoing,
            max_incoming,
            buffer_timeout_ms,
            sync_interval_ms,
            sync_backoff_ms,
            sync_suppressed_by_others,
            accept_unknown_channels,
            max_channels,
            max_content_bytes,
            seed,
        );
        if let Some(r) = &self.repair {
            set!(
                c.repair,
                r,
                enabled,
                t_min_ms,
                t_max_ms,
                num_response_groups,
                max_requests_per_message,
                max_request_attempts,
                min_request_gap_ms,
                max_outgoing_entries,
                max_incoming_entries,
            );
            if let Some(h) = r.hash {
                c.repair.hash = Some(h.into());
            }
        }
        if let Some(l) = &self.limits {
            set!(
                c.limits,
                l,
                max_message_bytes,
                max_causal_history,
                max_repair_request,
                max_id_len,
                max_hint_len,
                max_bloom_bytes,
            );
        }
        c
    }
}

// -------------------------------------------------------------------- input

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Send {
        now_ms: u64,
        channel: String,
        message_id: String,
        content_hex: String,
    },
    SendEphemeral {
        now_ms: u64,
        channel: String,
        content_hex: String,
    },
    Receive {
        now_ms: u64,
        hex: String,
        #[serde(default)]
        retrieval_hint_hex: Option<String>,
    },
    MarkMet {
        now_ms: u64,
        channel: String,
        message_ids: Vec<String>,
    },
    Tick {
        now_ms: u64,
    },
    /// Sets the retrieval hint of a log entry (e.g. one of ours, once the
    /// transport knows its hash); used in later causal histories.
    SetHint {
        channel: String,
        message_id: String,
        retrieval_hint_hex: String,
    },
    State {
        channel: String,
    },
    Stats {
        #[serde(default)]
        channel: Option<String>,
    },
    /// SDS-R formulas with this peer's configuration (for cross-checks).
    RepairTiming {
        #[serde(default)]
        participant_id: Option<String>,
        sender_id: String,
        message_id: String,
        #[serde(default)]
        hash: Option<HashName>,
    },
}

// --------------------------------------------------------------------- peer

/// The participant and what the peer adds around it.
pub struct Peer {
    p: Participant,
    channel_cfg: ChannelConfig,
    /// Channels we configured (with `channel_cfg`).
    known: BTreeSet<String>,
}

impl Peer {
    /// A peer with the given id, sending dialect and configuration file.
    pub fn new(
        id: &str,
        dialect: Dialect,
        file: ConfigFile,
        store: Option<&str>,
    ) -> Result<Self, String> {
        let config = file.to_config(dialect);
        let p = match store {
            Some(spec) => {
                let store = sds_sqlite::store_from_spec(spec).map_err(|e| e.to_string())?;
                Participant::open(id, config, store).map_err(|e| e.to_string())?
            }
            None => Participant::new(id, config).map_err(|e| e.to_string())?,
        };
        let channel_cfg = ChannelConfig {
            sync: file.sync,
            ..ChannelConfig::new(dialect)
        };
        Ok(Peer {
            p,
            channel_cfg,
            known: BTreeSet::new(),
        })
    }

    /// Handles one input line, appending its outputs (without `done`).
    pub fn handle_line(&mut self, line: &str, out: &mut Vec<Value>) {
        let op: Op = match serde_json::from_str(line) {
            Ok(op) => op,
            Err(e) => {
                out.push(error(format!("bad input line: {e}")));
                return;
            }
        };
        if let Err(e) = self.handle(op, out) {
            out.push(error(e));
        }
        self.drain(out);
    }

    fn ensure_channel(&mut self, channel: &str, now: u64) -> Result<(), String> {
        if self.known.contains(channel) || self.p.channel_state(channel).is_some() {
            return Ok(());
        }
        self.p
            .configure_channel(channel, self.channel_cfg.clone(), now)
            .map_err(|e| e.to_string())?;
        self.known.insert(channel.to_string());
        Ok(())
    }

    /// Fires every timer due at or before `now`, each at its own deadline.
    fn advance(&mut self, now: u64, out: &mut Vec<Value>) {
        let mut last: Option<u64> = None;
        let mut stalls = 0u32;
        while let Some(d) = self.p.poll_timeout() {
            if d > now {
                break;
            }
            if last.is_some_and(|l| d <= l) {
                stalls += 1;
                if stalls > 1000 {
                    out.push(error(format!(
                        "timer stuck at {d}: handle_timeout({d}) did not move the deadline"
                    )));
                    break;
                }
            }
            last = Some(d);
            self.p.handle_timeout(d);
            self.drain(out);
        }
    }

    fn handle(&mut self, op: Op, out: &mut Vec<Value>) -> Result<(), String> {
        match op {
            Op::Send {
                now_ms,
                channel,
                message_id,
                content_hex,
            } => {
                self.advance(now_ms, out);
                let content = unhex("content_hex", &content_hex)?;
                self.ensure_channel(&channel, now_ms)?;
                self.p
                    .send(&channel, &message_id, content, now_ms)
                    .map_err(|e| format!("send: {e}"))
            }
            Op::SendEphemeral {
                now_ms,
                channel,
                content_hex,
            } => {
                self.advance(now_ms, out);
                let content = unhex("content_hex", &content_hex)?;
                self.ensure_channel(&channel, now_ms)?;
                self.p
                    .send_ephemeral(&channel, content, now_ms)
                    .map(|_| ())
                    .map_err(|e| format!("send_ephemeral: {e}"))
            }
            Op::Receive {
                now_ms,
                hex,
                retrieval_hint_hex,
            } => {
                self.advance(now_ms, out);
                let bytes = Bytes::from(unhex("hex", &hex)?);
                let hint = retrieval_hint_hex
                    .map(|h| unhex("retrieval_hint_hex", &h).map(Bytes::from))
                    .transpose()?;
                // Channels named by received messages get our channel settings.
                let mut ids = (Value::Null, Value::Null);
                if let Ok(d) = wire::decode(bytes.clone(), &self.p.config().limits) {
                    let ch = d.message.channel_id;
                    if d.message.sender_id != self.p.participant_id() {
                        self.ensure_channel(&ch, now_ms)?;
                    }
                    ids = (Value::from(ch), Value::from(d.message.message_id));
                }
                let r = self
                    .p
                    .receive(bytes, hint, now_ms)
                    .map_err(|e| format!("receive: {e}"))?;
                out.push(json!({
                    "type": "received",
                    "result": received_name(&r),
                    "channel": ids.0,
                    "message_id": ids.1,
                }));
                Ok(())
            }
            Op::MarkMet {
                now_ms,
                channel,
                message_ids,
            } => {
                self.advance(now_ms, out);
                self.p
                    .mark_dependencies_met(&channel, &message_ids, now_ms)
                    .map_err(|e| format!("mark_met: {e}"))
            }
            Op::Tick { now_ms } => {
                self.advance(now_ms, out);
                Ok(())
            }
            Op::SetHint {
                channel,
                message_id,
                retrieval_hint_hex,
            } => {
                let hint = Bytes::from(unhex("retrieval_hint_hex", &retrieval_hint_hex)?);
                if self.p.set_retrieval_hint(&channel, &message_id, hint) {
                    Ok(())
                } else {
                    Err(format!(
                        "set_hint: {message_id:?} is not in the log of {channel:?}"
                    ))
                }
            }
            Op::State { channel } => {
                let s = self
                    .p
                    .channel_state(&channel)
                    .ok_or_else(|| format!("state: unknown channel {channel:?}"))?;
                out.push(json!({
                    "type": "state",
                    "channel": s.channel,
                    "dialect": dialect_name(s.dialect),
                    "lamport_timestamp": s.lamport_timestamp,
                    "log": s.log,
                    "outgoing": s.outgoing,
                    "incoming": s.incoming,
                    "repair_requests": s.repair_requests,
                    "repair_responses": s.repair_responses,
                    "next_timeout_ms": self.p.poll_timeout(),
                }));
                Ok(())
            }
            Op::Stats { channel } => {
                let s = match &channel {
                    Some(c) => self
                        .p
                        .channel_stats(c)
                        .ok_or_else(|| format!("stats: unknown channel {c:?}"))?,
                    None => self.p.stats(),
                };
                out.push(json!({
                    "type": "stats",
                    "channel": channel,
                    "sent": s.sent,
                    "resent": s.resent,
                    "syncs_sent": s.syncs_sent,
                    "ephemeral_sent": s.ephemeral_sent,
                    "received": s.received,
                    "syncs_received": s.syncs_received,
                    "ephemeral_received": s.ephemeral_received,
                    "delivered": s.delivered,
                    "duplicates": s.duplicates,
                    "too_old": s.too_old,
                    "buffered": s.buffered,
                    "missing_reported": s.missing_reported,
                    "lost": s.lost,
                    "buffer_overflows": s.buffer_overflows,
                    "acknowledged": s.acknowledged,
                    "possibly_acknowledged": s.possibly_acknowledged,
                    "not_acknowledged": s.not_acknowledged,
                    "bad_blooms": s.bad_blooms,
                    "repair_requests_sent": s.repair_requests_sent,
                    "repair_requests_received": s.repair_requests_received,
                    "repair_responses_sent": s.repair_responses_sent,
                    "repair_requests_expired": s.repair_requests_expired,
                }));
                Ok(())
            }
            Op::RepairTiming {
                participant_id,
                sender_id,
                message_id,
                hash,
            } => {
                let r = &self.p.config().repair;
                let me = participant_id.unwrap_or_else(|| self.p.participant_id().to_string());
                let hash = hash.map(RepairHash::from).or(r.hash).unwrap_or(
                    match self.channel_cfg.dialect {
                        Dialect::Spec => RepairHash::Spec,
                        Dialect::Nim => RepairHash::Nim,
                    },
                );
                out.push(json!({
                    "type": "repair_timing",
                    "participant_id": me,
                    "sender_id": sender_id,
                    "message_id": message_id,
                    "t_req_offset_ms":
                        timing::t_req_offset(hash, &me, &message_id, r.t_min_ms, r.t_max_ms),
                    "t_resp_offset_ms":
                        timing::t_resp_offset(hash, &me, &sender_id, &message_id, r.t_max_ms),
                    "in_response_group": timing::in_response_group(
                        hash, &me, &sender_id, &message_id, r.num_response_groups
                    ),
                }));
                Ok(())
            }
        }
    }

    /// Writes every pending transmit and event.
    fn drain(&mut self, out: &mut Vec<Value>) {
        loop {
            let mut any = false;
            while let Some(t) = self.p.poll_transmit() {
                out.push(transmit_json(&t));
                any = true;
            }
            while let Some(e) = self.p.poll_event() {
                out.push(event_json(e));
                any = true;
            }
            if !any {
                break;
            }
        }
    }
}

fn error(msg: impl Into<String>) -> Value {
    let msg: String = msg.into();
    json!({"type": "error", "error": msg.replace('\n', " ")})
}

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).map_err(|e| format!("{field}: invalid hex: {e}"))
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Spec => "spec",
        Dialect::Nim => "nim",
    }
}

fn received_name(r: &Received) -> &'static str {
    match r {
        Received::Delivered => "delivered",
        Received::Buffered { .. } => "buffered",
        Received::Duplicate => "duplicate",
        Received::Sync => "sync",
        Received::Ephemeral => "ephemeral",
        Received::OwnMessage => "own_message",
        Received::TooOld => "too_old",
        _ => "other",
    }
}

fn opt_hex(b: &Option<Bytes>) -> Value {
    match b {
        Some(b) => Value::String(hex::encode(b)),
        None => Value::Null,
    }
}

fn entry_json(e: &HistoryEntry) -> Value {
    json!({
        "message_id": e.message_id,
        "retrieval_hint_hex": opt_hex(&e.retrieval_hint),
        "sender_id": e.sender_id,
    })
}

fn transmit_json(t: &Transmit) -> Value {
    json!({
        "type": "broadcast",
        "channel": t.channel,
        "reason": t.reason.as_str(),
        "message_id": t.message_id,
        "hex": hex::encode(&t.bytes),
        "repair_request": t.repair_request,
    })
}

fn event_json(e: Event) -> Value {
    match e {
        Event::Delivered {
            channel,
            message_id,
            sender_id,
            lamport_timestamp,
            content,
            retrieval_hint,
            lost_dependencies,
            seq,
        } => json!({
            "type": "delivered",
            "seq": seq,
            "channel": channel,
            "message_id": message_id,
            "sender_id": sender_id,
            "lamport_timestamp": lamport_timestamp,
            "content_hex": hex::encode(&content),
            "retrieval_hint_hex": opt_hex(&retrieval_hint),
            "lost_dependencies": lost_dependencies,
        }),
        Event::Ephemeral {
            channel,
            message_id,
            sender_id,
            content,
        } => json!({
            "type": "ephemeral",
            "channel": channel,
            "message_id": message_id,
            "sender_id": sender_id,
            "content_hex": hex::encode(&content),
        }),
        Event::Acknowledged {
            channel,
            message_id,
        } => json!({"type": "acknowledged", "channel": channel, "message_id": message_id}),
        Event::PossiblyAcknowledged {
            channel,
            message_id,
            count,
        } => json!({
            "type": "possibly_acknowledged",
            "channel": channel,
            "message_id": message_id,
            "count": count,
        }),
        Event::NotAcknowledged {
            channel,
            message_id,
        } => json!({"type": "not_acknowledged", "channel": channel, "message_id": message_id}),
        Event::MissingDependencies {
            channel,
            message_id,
            missing,
        } => json!({
            "type": "missing",
            "channel": channel,
            "message_id": message_id,
            "missing": missing.iter().map(entry_json).collect::<Vec<_>>(),
        }),
        Event::IrretrievablyLost { channel, missing } => json!({
            "type": "lost",
            "channel": channel,
            "message_ids": missing.iter().map(|e| e.message_id.as_str()).collect::<Vec<_>>(),
            "missing": missing.iter().map(entry_json).collect::<Vec<_>>(),
        }),
        Event::BufferOverflow {
            channel,
            message_id,
        } => json!({"type": "buffer_overflow", "channel": channel, "message_id": message_id}),
        Event::RepairRequested {
            channel,
            message_ids,
        } => json!({"type": "repair_requested", "channel": channel, "message_ids": message_ids}),
        Event::RepairRequestReceived {
            channel,
            from,
            message_ids,
        } => json!({
            "type": "repair_request_received",
            "channel": channel,
            "from": from,
            "message_ids": message_ids,
        }),
        Event::RepairResponseSent {
            channel,
            message_id,
        } => json!({"type": "repair_response_sent", "channel": channel, "message_id": message_id}),
        other => json!({"type": "other_event", "debug": format!("{other:?}")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_maps_onto_config() {
        let f = ConfigFile::parse(
            "causal_history_len = 0\nbloom_capacity = 10\nbloom_error_rate = 0.01\nsync = false\n\
             [repair]\nt_min_ms = 1000\nhash = \"nim\"\n[limits]\nmax_id_len = 64\n",
        )
        .unwrap();
        let c = f.to_config(Dialect::Nim);
        assert_eq!(c.causal_history_len, 0);
        assert_eq!(c.bloom_capacity, 10);
        assert_eq!(c.default_dialect, Dialect::Nim);
        assert_eq!(c.repair.t_min_ms, 1000);
        assert_eq!(c.repair.t_max_ms, Config::default().repair.t_max_ms);
        assert_eq!(c.repair.hash, Some(RepairHash::Nim));
        assert_eq!(c.limits.max_id_len, 64);
        assert_eq!(f.sync, Some(false));
    }

    #[test]
    fn config_file_rejects_unknown_keys() {
        assert!(ConfigFile::parse("causal_history = 2\n").is_err());
        assert!(ConfigFile::parse("[repair]\ntmin = 2\n").is_err());
    }
}
