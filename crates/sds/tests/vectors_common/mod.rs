//! Shared helpers of the vector tests (wire, bloom, hash, repair):
//! locating and parsing the golden vectors.
#![allow(dead_code)]

use std::path::PathBuf;

use sds::wire::{HistoryEntry, MessageKind};

/// The shared vectors folder; panics with a clear message if it is missing.
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors"
    ));
    assert!(
        dir.is_dir(),
        "golden vectors not found at {} (expected the shared folder `../shared/vectors` \
         next to the workspace root)",
        dir.display()
    );
    dir
}

/// Reads a file of the vectors folder; panics if it is missing.
pub fn read_vector_file(rel: &str) -> String {
    let path = vectors_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden vector file {}: {e}", path.display()))
}

/// The entries of `PEER/public.json` of one `kind`.
pub fn load(peer: &str, kind: &str) -> Vec<serde_json::Value> {
    let rel = format!("{peer}/public.json");
    let all: Vec<serde_json::Value> = serde_json::from_str(&read_vector_file(&rel))
        .unwrap_or_else(|e| panic!("cannot parse {rel}: {e}"));
    all.into_iter().filter(|v| v["kind"] == kind).collect()
}

/// `PEER/vectors.txt`.
pub fn read_text(peer: &str) -> String {
    read_vector_file(&format!("{peer}/vectors.txt"))
}

/// The `message` entries of a `public.json`.
pub fn public_messages(rel: &str) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(&read_vector_file(rel))
        .unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"));
    let all = json
        .as_array()
        .unwrap_or_else(|| panic!("{rel} is not a JSON array"));
    let msgs: Vec<_> = all
        .iter()
        .filter(|v| v["kind"] == "message")
        .cloned()
        .collect();
    assert!(!msgs.is_empty(), "{rel} has no message vectors");
    msgs
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim()).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// What a text vector says about one message.
#[derive(Debug, Default, Clone)]
pub struct TextVector {
    pub name: String,
    pub wire: Vec<u8>,
    pub declared_len: Option<usize>,
    pub kind: Option<MessageKind>,
    pub message_id: Option<String>,
    pub sender_id: Option<String>,
    pub channel_id: Option<String>,
    /// `Some(None)` = explicitly unset.
    pub lamport: Option<Option<u64>>,
    pub causal_history: Vec<HistoryEntry>,
    pub history_count: Option<usize>,
    pub repair_request: Vec<HistoryEntry>,
    pub repair_count: Option<usize>,
    /// `Some(None)` = explicitly unset.
    pub content: Option<Option<Vec<u8>>>,
    /// `Some(None)` = unset / empty; `Some(Some(n))` = n bytes.
    pub bloom_len: Option<Option<usize>>,
}

fn quoted(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("expected a quoted string, got {s:?}"))
        .to_owned()
}

fn after_eq(line: &str) -> &str {
    line.split_once('=')
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no '=' in {line:?}"))
}

fn leading_number(s: &str) -> usize {
    let digits: String = s.trim().chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("expected a number in {s:?}"))
}

/// Parses `key=value` pairs of an entry line; values may be quoted.
fn entry_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while let Some((key, tail)) = rest.split_once('=') {
        let key = key.trim().rsplit(' ').next().unwrap().to_owned();
        let tail = tail.trim_start();
        let (value, next) = if let Some(t) = tail.strip_prefix('"') {
            let end = t.find('"').expect("unterminated quote");
            (t[..end].to_owned(), &t[end + 1..])
        } else {
            let end = tail.find(' ').unwrap_or(tail.len());
            (tail[..end].to_owned(), &tail[end..])
        };
        out.push((key, value));
        rest = next;
    }
    out
}

/// Builds an entry from `messageId=… retrievalHint=0x… senderId="…"`; with
/// `nim` an empty hint or sender is `None` (that is how the nim dialect decodes).
fn parse_entry(line: &str, nim: bool) -> HistoryEntry {
    let mut e = HistoryEntry::default();
    for (k, v) in entry_pairs(line) {
        match k.as_str() {
            "messageId" => e.message_id = v,
            "retrievalHint" => {
                if v != "(unset)" {
                    let h = unhex(v.strip_prefix("0x").unwrap_or(&v));
                    e.retrieval_hint = if nim && h.is_empty() {
                        None
                    } else {
                        Some(h.into())
                    };
                }
            }
            "senderId" => {
                if v != "(unset)" {
                    e.sender_id = if nim && v.is_empty() { None } else { Some(v) };
                }
            }
            other => panic!("unknown entry key {other:?} in {line:?}"),
        }
    }
    e
}

/// Parses `nim-sds/vectors.txt`: `== name` blocks with `wire (N bytes) hex:`
/// followed by indented hex lines, then `decoded:` and the fields.
pub fn parse_nim_text(text: &str) -> Vec<TextVector> {
    let mut out: Vec<TextVector> = Vec::new();
    let mut cur: Option<TextVector> = None;
    let mut in_hex = false;
    let mut list: Option<bool> = None; // Some(true) = history, Some(false) = repair
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(name) = raw.strip_prefix("== ") {
            out.extend(cur.take());
            cur = Some(TextVector {
                name: name.to_owned(),
                ..Default::default()
            });
            in_hex = false;
            list = None;
            continue;
        }
        if raw.starts_with('#') {
            out.extend(cur.take());
            in_hex = false;
            continue;
        }
        let Some(v) = cur.as_mut() else { continue };
        if line.starts_with("wire (") && line.ends_with("hex:") {
            v.declared_len = Some(leading_number(&line["wire (".len()..]));
            in_hex = true;
            continue;
        }
        if in_hex {
            if raw.starts_with("  ")
                && line.chars().all(|c| c.is_ascii_hexdigit())
                && !line.is_empty()
            {
                v.wire.extend(unhex(line));
                continue;
            }
            in_hex = false;
        }
        if line.starts_with('{') && line.ends_with('}') {
            let e = parse_entry(&line[1..line.len() - 1], true);
            match list {
                Some(true) => v.causal_history.push(e),
                Some(false) => v.repair_request.push(e),
                None => panic!("entry outside a list in {}: {line}", v.name),
            }
            continue;
        }
        list = None;
        if line.starts_with("messageId") {
            v.message_id = Some(quoted(after_eq(line)));
        } else if line.starts_with("lamportTimestamp") {
            v.lamport = Some(Some(after_eq(line).parse().expect("lamport")));
        } else if line.starts_with("causalHistory") {
            v.history_count = Some(leading_number(after_eq(line)));
            list = Some(true);
        } else if line.starts_with("repairRequest") {
            v.repair_count = Some(leading_number(after_eq(line)));
            list = Some(false);
        } else if line.starts_with("channelId") {
            v.channel_id = Some(quoted(after_eq(line)));
        } else if line.starts_with("content") {
            let hexv = after_eq(line).split(' ').next().unwrap();
            v.content = Some(Some(unhex(hexv.strip_prefix("0x").expect("content hex"))));
        } else if line.starts_with("senderId") {
            v.sender_id = Some(quoted(after_eq(line)));
        } else if let Some(rest) = line.strip_prefix("(field 6) bloomFilter:") {
            let rest = rest.trim();
            v.bloom_len = Some(if rest == "<empty>" {
                None
            } else {
                Some(leading_number(rest))
            });
        }
    }
    out.extend(cur);
    out.retain(|v| !v.wire.is_empty());
    out
}

/// Parses `js-sds/vectors.txt`: `VECTOR:` blocks with a `hex:` line and a
/// `decoded (Message.decode -> XMessage):` section.
pub fn parse_js_text(text: &str) -> Vec<TextVector> {
    let mut out: Vec<TextVector> = Vec::new();
    let mut cur: Option<TextVector> = None;
    let mut in_decoded = false;
    let mut list: Option<bool> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("VECTOR:") {
            out.extend(cur.take());
            cur = Some(TextVector {
                name: name.trim().to_owned(),
                ..Default::default()
            });
            in_decoded = false;
            list = None;
            continue;
        }
        let Some(v) = cur.as_mut() else { continue };
        if let Some(h) = line.strip_prefix("hex:") {
            v.wire = unhex(h);
            continue;
        }
        if let Some(n) = line.strip_prefix("encoded length:") {
            v.declared_len = Some(leading_number(n));
            continue;
        }
        if let Some(rest) = line.strip_prefix("decoded (Message.decode -> ") {
            v.kind = Some(match rest.trim_end_matches("):") {
                "ContentMessage" => MessageKind::Content,
                "SyncMessage" => MessageKind::Sync,
                "EphemeralMessage" => MessageKind::Ephemeral,
                other => panic!("unknown decoded type {other:?}"),
            });
            in_decoded = true;
            continue;
        }
        if !in_decoded {
            continue;
        }
        if line.starts_with('[') {
            let body = line.split_once(']').expect("entry index").1;
            let e = parse_entry(body, false);
            match list {
                Some(true) => v.causal_history.push(e),
                Some(false) => v.repair_request.push(e),
                None => panic!("entry outside a list in {}: {line}", v.name),
            }
            continue;
        }
        if raw.starts_with("        ") {
            continue; // bloom details
        }
        list = None;
        let unset = |s: &str| s == "(unset)";
        if line.starts_with("senderId") {
            v.sender_id = Some(quoted(after_eq(line)));
        } else if line.starts_with("messageId") {
            v.message_id = Some(quoted(after_eq(line)));
        } else if line.starts_with("channelId") {
            v.channel_id = Some(quoted(after_eq(line)));
        } else if line.starts_with("lamportTimestamp") {
            let s = after_eq(line);
            v.lamport = Some(if unset(s) {
                None
            } else {
                Some(s.parse().expect("lamport"))
            });
        } else if line.starts_with("causalHistory") {
            v.history_count = Some(leading_number(after_eq(line)));
            list = Some(true);
        } else if line.starts_with("repairRequest") {
            v.repair_count = Some(leading_number(after_eq(line)));
            list = Some(false);
        } else if line.starts_with("bloomFilter") {
            let s = after_eq(line);
            v.bloom_len = Some(if unset(s) {
                None
            } else {
                Some(leading_number(s))
            });
        } else if line.starts_with("content") {
            let s = after_eq(line);
            v.content = Some(if unset(s) {
                None
            } else {
                let hexv = s.split(' ').nth(2).expect("content hex");
                Some(unhex(hexv.strip_prefix("0x").expect("0x")))
            });
        }
    }
    out.extend(cur);
    out.retain(|v| !v.wire.is_empty());
    out
}
