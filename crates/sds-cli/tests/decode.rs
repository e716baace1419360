//! `sds decode`, run as a process.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors"
    ));
    assert!(
        dir.is_dir(),
        "golden vectors not found at {} (expected `../shared/vectors` next to the workspace root)",
        dir.display()
    );
    dir
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}

fn public_messages(rel: &str) -> Vec<Value> {
    let path = vectors_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let all: Vec<Value> = serde_json::from_str(&text).expect("public.json");
    all.into_iter().filter(|v| v["kind"] == "message").collect()
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn sds(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sds");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().expect("wait for sds");
    Run {
        status: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// Runs successfully and parses the single JSON line.
fn decoded(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let r = sds(args, stdin);
    assert_eq!(r.status, 0, "sds {args:?} failed: {}", r.stderr);
    assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "one line of JSON: {}",
        r.stdout
    );
    serde_json::from_str(&r.stdout).expect("valid JSON")
}

/// Fails with exit status 2 and one line on stderr; returns that line.
fn rejected(args: &[&str], stdin: Option<&[u8]>) -> String {
    let r = sds(args, stdin);
    assert_eq!(
        r.status, 2,
        "sds {args:?}: stdout {} stderr {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "one line on stderr: {:?}",
        r.stderr
    );
    assert!(r.stderr.starts_with("sds decode: "), "{}", r.stderr);
    r.stderr.trim_end().to_owned()
}

/// The JSON entries the decoder prints for a vector's entries; `nim` maps
/// empty hints and senders to null (that is how the nim dialect decodes them).
fn expected_entries(list: &Value, nim: bool) -> Value {
    let entries: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let empty = |v: &Value| nim && v.as_str() == Some("");
            let hint = &e["retrieval_hint_hex"];
            let sender = &e["sender_id"];
            json!({
                "message_id": e["message_id"],
                "retrieval_hint_hex": if empty(hint) { Value::Null } else { hint.clone() },
                "sender_id": if empty(sender) { Value::Null } else { sender.clone() },
            })
        })
        .collect();
    Value::Array(entries)
}

#[test]
fn js_ephemeral_vector() {
    let v = public_messages("js-sds/public.json")
        .into_iter()
        .find(|v| v["message_kind"] == "ephemeral")
        .expect("an ephemeral js vector");
    let out = decoded(&["decode", v["wire_hex"].as_str().unwrap()], None);
    assert_eq!(
        out,
        json!({
            "dialect": "spec",
            "kind": "ephemeral",
            "message_id": v["message_id"],
            "sender_id": v["sender_id"],
            "channel_id": v["channel_id"],
            "lamport_timestamp": null,
            "causal_history": [],
            "repair_request": [],
            "content_hex": v["content_hex"],
            "bloom_filter": null,
        })
    );
}

#[test]
fn nim_vectors_without_bloom() {
    let vs: Vec<Value> = public_messages("nim-sds/public.json")
        .into_iter()
        .filter(|v| v["bloom_filter_hex"] == "")
        .collect();
    assert!(!vs.is_empty());
    for v in vs {
        let out = decoded(&["decode", v["wire_hex"].as_str().unwrap()], None);
        assert_eq!(
            out,
            json!({
                "dialect": "nim",
                "kind": "content",
                "message_id": v["message_id"],
                "sender_id": v["sender_id"],
                "channel_id": v["channel_id"],
                "lamport_timestamp": v["lamport_timestamp"],
                "causal_history": expected_entries(&v["causal_history"], true),
                "repair_request": expected_entries(&v["repair_request"], true),
                "content_hex": v["content_hex"],
                "bloom_filter": null,
            })
        );
    }
}

#[test]
fn stdin_file_and_argument_agree() {
    let hex = "0a016d10012201632a01003200"; // nim-sds vectors.txt "S1 minimal"
    let from_arg = decoded(&["decode", hex], None);
    let spaced = "0a 01 6d\n 10 01\t22 01 63 2a 01 00 32 00\n";
    let from_stdin = decoded(&["decode", "-"], Some(spaced.as_bytes()));
    let path = std::env::temp_dir().join(format!("sds-decode-test-{}.bin", std::process::id()));
    std::fs::write(&path, hex::decode(hex).unwrap()).unwrap();
    let from_file = decoded(&["decode", "--file", path.to_str().unwrap()], None);
    let _ = std::fs::remove_file(&path);
    assert_eq!(from_arg, from_stdin);
    assert_eq!(from_arg, from_file);
    assert_eq!(from_arg["dialect"], "nim");
    assert_eq!(from_arg["message_id"], "m");
    assert_eq!(from_arg["lamport_timestamp"], 1);
    assert_eq!(from_arg["content_hex"], "00");
}

#[test]
fn full_u64_lamport() {
    let out = decoded(
        &["decode", "0a016e10ffffffffffffffffff012201632a003200"],
        None,
    );
    assert_eq!(out["lamport_timestamp"], json!(u64::MAX));
    assert_eq!(out["kind"], "sync");
    assert_eq!(out["content_hex"], "");
}

#[test]
fn garbage_is_rejected() {
    let line = rejected(&["decode", "not hex"], None);
    assert!(line.contains("hex"), "{line}");
    let line = rejected(&["decode", "abc"], None);
    assert!(line.contains("odd number of hex digits"), "{line}");
    let line = rejected(&["decode", "ffffffff"], None);
    assert_eq!(
        line,
        "sds decode: truncated varint in a field tag of the message at byte 0"
    );
    let line = rejected(&["decode", "0b"], None);
    assert_eq!(line, "sds decode: group (wire type 3) in field 1 (sender_id): groups are not supported at byte 0");
    let line = rejected(&["decode", "-"], Some(b"12 02 61 ff"));
    assert_eq!(
        line,
        "sds decode: invalid UTF-8 in field 2 (message_id) at byte 3"
    );
}

#[test]
fn truncation_is_rejected() {
    let v = &public_messages("js-sds/public.json")[0];
    let hex = v["wire_hex"].as_str().unwrap();
    // Cut right after the tag of field 10, which follows the three id fields.
    let bytes = hex::decode(hex).unwrap();
    let tag_at = 2 + bytes[1] as usize; // sender
    let tag_at = tag_at + 2 + bytes[tag_at + 1] as usize; // message id
    let tag_at = tag_at + 2 + bytes[tag_at + 1] as usize; // channel id
    assert_eq!(bytes[tag_at], 0x50, "field 10 follows the channel id");
    let cut = hex::encode(&bytes[..tag_at + 1]);
    let line = rejected(&["decode", &cut], None);
    assert_eq!(
        line,
        format!(
            "sds decode: truncated varint in field 10 (lamport_timestamp) at byte {}",
            tag_at + 1
        )
    );
    // Cut in the middle of the bloom.
    let line = rejected(&["decode", &hex[..4000]], None);
    assert!(line.contains("field 12 (bloom_filter)"), "{line}");
    // A nim message without content.
    let line = rejected(&["decode", "0a016d100122016332 00"], None);
    assert_eq!(
        line,
        "sds decode: missing required field 5 (content) at byte 10"
    );
}

#[test]
fn nim_bloom_with_zero_bits_is_rejected() {
    // Nested bloom {1: 8 zero bytes, 2: capacity 10, 3: 10000 ppm, 4: k 7, 5: m 0}:
    // nim-sds itself crashes on it (SIGFPE).
    let bloom = "0a080000000000000000100a18904e20072800";
    let msg = format!("0a016d1001220163 2a0101 32{:02x}{bloom}", bloom.len() / 2);
    let line = rejected(&["decode", &msg.replace(' ', "")], None);
    assert!(line.contains("bloom"), "{line}");
    assert!(line.contains("at byte 13"), "{line}");
}

#[test]
fn example_files_are_vector_messages() {
    // Checked through the library, so it does not need the bloom module.
    for (file, dialect) in [
        ("examples/messages/js-content.hex", sds::wire::Dialect::Spec),
        ("examples/messages/nim-content.hex", sds::wire::Dialect::Nim),
    ] {
        let text = std::fs::read_to_string(repo_file(file)).expect(file);
        let bytes = hex::decode(text.trim()).expect(file);
        let d = sds::wire::decode(bytes.into(), &sds::wire::Limits::default()).expect(file);
        assert_eq!(d.dialect, dialect, "{file}");
        assert_eq!(d.message.kind(), sds::wire::MessageKind::Content, "{file}");
    }
}

// ---------------------------------------------------------------------------
// These need the bloom module (BloomView::decode, count_ones, set_bits,
// estimated_items); un-ignore them when the bloom branch is merged.

/// The `set bit indices (N): [..]` of js vectors.txt's "content message #3" and its wire hex.
fn js_content3() -> (String, Vec<u64>) {
    let path = vectors_dir().join("js-sds/vectors.txt");
    let text = std::fs::read_to_string(&path).expect("js-sds/vectors.txt");
    let block = text
        .split("VECTOR:")
        .find(|b| b.trim_start().starts_with("content message #3"))
        .expect("content message #3");
    let hex = block
        .lines()
        .find_map(|l| l.strip_prefix("hex: "))
        .expect("hex line")
        .trim()
        .to_owned();
    let bits = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("set bit indices ("))
        .and_then(|l| l.split_once('['))
        .map(|(_, rest)| rest.trim_end_matches(']'))
        .expect("set bit indices")
        .split(", ")
        .map(|s| s.parse().unwrap())
        .collect();
    (hex, bits)
}

#[test]
fn js_content_vector_with_bloom() {
    let (hex, bits) = js_content3();
    assert_eq!(bits.len(), 20);
    let out = decoded(&["decode", &hex, "--bloom-bits"], None);
    assert_eq!(out["dialect"], "spec");
    assert_eq!(out["kind"], "content");
    assert_eq!(out["lamport_timestamp"], 1_700_000_002_000u64);
    assert_eq!(out["causal_history"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["causal_history"][0]["retrieval_hint_hex"],
        "11".repeat(32)
    );
    let b = &out["bloom_filter"];
    assert_eq!(b["encoding"], "spec");
    assert_eq!(b["capacity"], 10_000);
    assert_eq!(b["error_rate"], 0.001);
    assert_eq!(b["k"], 10);
    assert_eq!(b["m_bits"], 150_000);
    assert_eq!(b["set_bits"], 20);
    assert!(
        b["estimated_items"]
            .as_f64()
            .is_some_and(|n| (1.5..2.5).contains(&n)),
        "{b}"
    );
    assert_eq!(b["bits"], json!(bits));
    // Without --bloom-bits there is no "bits" key.
    let out = decoded(&["decode", &hex], None);
    assert!(out["bloom_filter"].get("bits").is_none());
}

#[test]
fn nim_vector_with_bloom() {
    let hex = std::fs::read_to_string(repo_file("examples/messages/nim-content.hex")).unwrap();
    let out = decoded(&["decode", hex.trim(), "--bloom-bits"], None);
    assert_eq!(
        out,
        json!({
            "dialect": "nim",
            "kind": "content",
            "message_id": "msg-3",
            "sender_id": "alice",
            "channel_id": "chan-A",
            "lamport_timestamp": 1_700_000_000u64,
            "causal_history": [
                {"message_id": "msg-1", "retrieval_hint_hex": "aabb", "sender_id": "alice"},
                {"message_id": "msg-2", "retrieval_hint_hex": null, "sender_id": "bob"},
            ],
            "repair_request": [
                {"message_id": "msg-0", "retrieval_hint_hex": "01", "sender_id": "carol"},
            ],
            "content_hex": "68656c6c6f",
            "bloom_filter": {
                "encoding": "nim",
                "capacity": 10,
                "error_rate": 0.01,
                "k": 7,
                "m_bits": 100,
                "set_bits": 14,
                "estimated_items": out["bloom_filter"]["estimated_items"],
                "bits": [0, 16, 24, 32, 46, 55, 62, 64, 70, 73, 78, 82, 86, 91],
            },
        })
    );
    let est = out["bloom_filter"]["estimated_items"]
        .as_f64()
        .expect("a number");
    assert!(
        (1.5..2.5).contains(&est),
        "two ids inserted, estimated {est}"
    );
}

#[test]
fn example_files_decode() {
    for file in [
        "examples/messages/js-content.hex",
        "examples/messages/nim-content.hex",
    ] {
        let text = std::fs::read(repo_file(file)).expect(file);
        let out = decoded(&["decode", "-"], Some(&text));
        assert!(out["bloom_filter"].is_object(), "{file}: {out}");
    }
}

#[test]
fn hex_may_be_split_across_arguments() {
    let whole = decoded(&["decode", "0a016d10012201632a01003200"], None);
    let split = decoded(
        &["decode", "0x0a016d", "1001", "220163", "2a0100", "3200"],
        None,
    );
    assert_eq!(whole, split);
}
