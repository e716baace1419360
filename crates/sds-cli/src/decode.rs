//! `sds decode`: print one wire message as JSON.
//!
//! Output: one line of JSON (see `docs/wire.md`). Exit status: 0 on success,
//! 2 when the input is not a valid message (bad hex, undecodable message,
//! invalid bloom filter) or the command line is wrong, 1 when the input cannot
//! be read. On failure exactly one line goes to stderr.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use sds::bloom::{BloomEncoding, BloomLimits, BloomParams, BloomView};
use sds::wire::{self, Dialect, HistoryEntry, Limits, Message, MessageKind};

/// Arguments of `sds decode`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["hex", "file"])))]
pub struct DecodeArgs {
    /// The message as hex (whitespace, also between several arguments, and a
    /// leading `0x` are ignored), or `-` to read hex from stdin.
    #[arg(num_args = 1..)]
    hex: Vec<String>,
    /// Read the raw message bytes from a file instead.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Also list the set bit positions of the bloom filter.
    #[arg(long)]
    bloom_bits: bool,
    /// Decode in this dialect instead of detecting it.
    #[arg(long, value_enum, default_value_t = DialectArg::Auto)]
    dialect: DialectArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DialectArg {
    Auto,
    Spec,
    Nim,
}

/// A failure, reported as one line on stderr.
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn input(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }
    fn io(message: impl Into<String>) -> Self {
        Failure {
            status: 1,
            message: message.into(),
        }
    }
}

/// Runs `sds decode`.
pub fn run(args: &DecodeArgs) -> ExitCode {
    match decode_to_json(args) {
        Ok(line) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not an error worth reporting.
            let _ = writeln!(out, "{line}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            let line = f.message.replace('\n', " ");
            let _ = writeln!(std::io::stderr().lock(), "sds decode: {line}");
            ExitCode::from(f.status)
        }
    }
}

fn read_input(args: &DecodeArgs) -> Result<Vec<u8>, Failure> {
    if let Some(path) = &args.file {
        return std::fs::read(path)
            .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())));
    }
    let text = if matches!(args.hex.as_slice(), [only] if only == "-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::io(format!("cannot read stdin: {e}")))?;
        s
    } else {
        args.hex.join(" ")
    };
    parse_hex(&text)
}

/// Hex with whitespace anywhere and an optional `0x` prefix.
fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let trimmed = text.trim_start();
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&digits).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            Failure::input(format!("invalid hex digit {c:?} at hex digit {index}"))
        }
        hex::FromHexError::OddLength => {
            Failure::input(format!("odd number of hex digits ({})", digits.len()))
        }
        other => Failure::input(format!("invalid hex: {other}")),
    })
}

#[derive(Serialize)]
struct EntryJson<'a> {
    message_id: &'a str,
    retrieval_hint_hex: Option<String>,
    sender_id: Option<&'a str>,
}

#[derive(Serialize)]
struct BloomJson {
    encoding: &'static str,
    capacity: u64,
    error_rate: f64,
    k: u32,
    m_bits: u64,
    set_bits: Value,
    estimated_items: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    bits: Option<Vec<u64>>,
}

#[derive(Serialize)]
struct MessageJson<'a> {
    dialect: &'static str,
    kind: &'static str,
    message_id: &'a str,
    sender_id: &'a str,
    channel_id: &'a str,
    lamport_timestamp: Option<u64>,
    causal_history: Vec<EntryJson<'a>>,
    repair_request: Vec<EntryJson<'a>>,
    content_hex: Option<String>,
    bloom_filter: Option<BloomJson>,
}

fn entries(list: &[HistoryEntry]) -> Vec<EntryJson<'_>> {
    list.iter()
        .map(|e| EntryJson {
            message_id: &e.message_id,
            retrieval_hint_hex: e.retrieval_hint.as_ref().map(hex::encode),
            sender_id: e.sender_id.as_deref(),
        })
        .collect()
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Spec => "spec",
        Dialect::Nim => "nim",
    }
}

fn kind_name(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Content => "content",
        MessageKind::Sync => "sync",
        MessageKind::Ephemeral => "ephemeral",
    }
}

fn decode_to_json(args: &DecodeArgs) -> Result<String, Failure> {
    let input = Bytes::from(read_input(args)?);
    let limits = Limits::default();
    let (dialect, msg) = match args.dialect {
        DialectArg::Auto => {
            let d =
                wire::decode(input.clone(), &limits).map_err(|e| Failure::input(e.to_string()))?;
            (d.dialect, d.message)
        }
        DialectArg::Spec | DialectArg::Nim => {
            let dialect = if args.dialect == DialectArg::Spec {
                Dialect::Spec
            } else {
                Dialect::Nim
            };
            let m = wire::decode_as(input.clone(), dialect, &limits)
                .map_err(|e| Failure::input(e.to_string()))?;
            (dialect, m)
        }
    };
    let bloom = match &msg.bloom_filter {
        Some(b) => Some(bloom_json(&input, b, dialect, args.bloom_bits)?),
        None => None,
    };
    let json = message_json(&msg, dialect, bloom);
    serde_json::to_string(&json).map_err(|e| Failure::io(format!("cannot format JSON: {e}")))
}

fn message_json(msg: &Message, dialect: Dialect, bloom: Option<BloomJson>) -> MessageJson<'_> {
    MessageJson {
        dialect: dialect_name(dialect),
        kind: kind_name(msg.kind()),
        message_id: &msg.message_id,
        sender_id: &msg.sender_id,
        channel_id: &msg.channel_id,
        lamport_timestamp: msg.lamport_timestamp,
        causal_history: entries(&msg.causal_history),
        repair_request: entries(&msg.repair_request),
        content_hex: msg.content.as_ref().map(hex::encode),
        bloom_filter: bloom,
    }
}

fn bloom_json(
    input: &Bytes,
    bloom: &Bytes,
    dialect: Dialect,
    with_bits: bool,
) -> Result<BloomJson, Failure> {
    let (encoding, field) = match dialect {
        Dialect::Spec => (BloomEncoding::Spec, 12),
        Dialect::Nim => (BloomEncoding::Nim, 6),
    };
    let view = BloomView::decode(
        encoding,
        bloom,
        &BloomParams::default(),
        &BloomLimits::default(),
    )
    .map_err(|e| {
        // The bloom is a slice of the input, so its offset is the pointer distance.
        let offset = (bloom.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
        Failure::input(format!(
            "invalid bloom filter in field {field} (bloom_filter) at byte {offset}: {e}"
        ))
    })?;
    let p = *view.params();
    Ok(BloomJson {
        encoding: dialect_name(dialect),
        capacity: p.capacity,
        error_rate: p.error_rate,
        k: p.k,
        m_bits: p.m_bits,
        set_bits: serde_json::json!(view.count_ones()),
        estimated_items: serde_json::json!(view.estimated_items()),
        bits: with_bits.then(|| view.set_bits().into_iter().collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input_forms() {
        assert_eq!(
            parse_hex(" 0x0a 00\n10 00 ").ok(),
            Some(vec![0x0a, 0, 0x10, 0])
        );
        assert_eq!(parse_hex("").ok(), Some(vec![]));
        assert!(parse_hex("0a0").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
