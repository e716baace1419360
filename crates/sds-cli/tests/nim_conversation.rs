//! The nim-sds conversation of `vectors/nim-sds/vectors.txt` (section 2:
//! alice wraps w-1, w-2, w-3; bob wraps b-1), replayed through nim-dialect
//! `sds peer` processes configured like the nim-sds run (bloom capacity 10,
//! error rate 0.01, causal history 2).
//!
//! nim-sds cannot run here, so the vectors stand in for it: our peer plays
//! bob against nim's alice, then alice against nim's bob.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use sds::bloom::{BloomEncoding, BloomLimits, BloomParams, BloomView};
use sds::wire::{self, Dialect, Limits};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");
const CH: &str = "chan-W";
/// nim-sds's lamport of w-1 is in seconds; our clock runs in ms around it.
const T0: u64 = 1_795_706_319_000;

const CONFIG: &str = "causal_history_len = 2\nbloom_capacity = 10\nbloom_error_rate = 0.01\n";

/// The wire hex of each `== S2 <title>` vector in section 2.
fn section2() -> Vec<(String, Vec<u8>)> {
    let path = format!("{VECTORS}/nim-sds/vectors.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("nim-sds vectors missing at {path} ({e}); this test needs the shared/ folder")
    });
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(title) = l.strip_prefix("== S2 ") else {
            continue;
        };
        let header = lines.next().expect("wire line");
        assert!(header.starts_with("wire ("), "{header}");
        let mut hex = String::new();
        while let Some(h) = lines.peek() {
            if !h.starts_with("  ") || h.trim_start().starts_with("decoded") {
                break;
            }
            hex.push_str(h.trim());
            lines.next();
        }
        out.push((title.to_string(), hex::decode(&hex).expect("vector hex")));
    }
    assert_eq!(out.len(), 4, "section 2 should have four wraps");
    out
}

fn vector(all: &[(String, Vec<u8>)], prefix: &str) -> Vec<u8> {
    all.iter()
        .find(|(t, _)| t.starts_with(prefix))
        .unwrap_or_else(|| panic!("no vector {prefix}"))
        .1
        .clone()
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Peer {
    fn spawn(id: &str, config: &str) -> Peer {
        let dir = std::env::temp_dir().join(format!("sds-nim-conv-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("peer.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sds"))
            .args([
                "peer",
                "--participant-id",
                id,
                "--dialect",
                "nim",
                "--config",
            ])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sds peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
            _dir: TempDir(dir),
        }
    }

    fn op(&mut self, v: Value) -> Vec<Value> {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            assert!(self.stdout.read_line(&mut l).unwrap() > 0, "peer exited");
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["type"] == "done" {
                return out;
            }
            assert_ne!(v["type"], "error", "{v}");
            out.push(v);
        }
    }

    fn send(&mut self, now: u64, id: &str, content: &[u8]) -> Vec<u8> {
        let out = self.op(
            json!({"op":"send","now_ms":now,"channel":CH,"message_id":id,
                                 "content_hex":hex::encode(content)}),
        );
        let b: Vec<_> = out.iter().filter(|v| v["type"] == "broadcast").collect();
        assert_eq!(b.len(), 1, "{out:?}");
        assert_eq!(b[0]["reason"], "new");
        hex::decode(b[0]["hex"].as_str().unwrap()).unwrap()
    }

    fn receive(&mut self, now: u64, bytes: &[u8]) -> Vec<Value> {
        self.op(json!({"op":"receive","now_ms":now,"hex":hex::encode(bytes)}))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn of_type<'a>(out: &'a [Value], t: &str) -> Vec<&'a Value> {
    out.iter().filter(|v| v["type"] == t).collect()
}

/// Top-level protobuf field numbers, in order, with the raw LEN values.
fn fields(mut b: &[u8]) -> Vec<(u64, Option<Vec<u8>>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b);
        match tag & 7 {
            0 => {
                varint(&mut b);
                out.push((tag >> 3, None));
            }
            2 => {
                let n = varint(&mut b) as usize;
                out.push((tag >> 3, Some(b[..n].to_vec())));
                b = &b[n..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn field(b: &[u8], n: u64) -> Vec<u8> {
    fields(b)
        .into_iter()
        .find(|(f, _)| *f == n)
        .and_then(|(_, v)| v)
        .unwrap_or_else(|| panic!("field {n} missing"))
}

fn nim_bloom_contains(bloom: &[u8], id: &str) -> bool {
    let ours = BloomParams::new(10_000, 0.001).unwrap();
    let v = BloomView::decode(BloomEncoding::Nim, bloom, &ours, &BloomLimits::default())
        .expect("a nim bloom filter");
    v.contains_id(id.as_bytes())
}

#[test]
fn our_bob_receives_nim_alice_and_answers_like_nim_bob() {
    let v = section2();
    let mut bob = Peer::spawn("bob", CONFIG);
    for (i, (name, content)) in [
        ("alice wraps w-1", "payload-1"),
        ("alice wraps w-2", "payload-2"),
        ("alice wraps w-3", "payload-3"),
    ]
    .iter()
    .enumerate()
    {
        let out = bob.receive(T0 + 1000 * i as u64, &vector(&v, name));
        assert!(of_type(&out, "missing").is_empty(), "{name}: {out:?}");
        let d = of_type(&out, "delivered");
        assert_eq!(d.len(), 1, "{name}: {out:?}");
        assert_eq!(d[0]["message_id"], format!("w-{}", i + 1));
        assert_eq!(d[0]["sender_id"], "alice");
        assert_eq!(d[0]["channel"], CH);
        assert_eq!(d[0]["content_hex"], hex::encode(content));
    }
    let s = bob.op(json!({"op":"state","channel":CH}));
    assert_eq!(s[0]["log"], json!(["w-1", "w-2", "w-3"]));
    assert_eq!(s[0]["dialect"], "nim");

    // Our b-1, as nim-sds's bob wrapped it.
    let ours = bob.send(T0 + 4000, "b-1", &[0x42]);
    let nim = vector(&v, "bob wraps b-1");
    let nums: Vec<u64> = fields(&ours).iter().map(|(n, _)| *n).collect();
    // nim-sds's emission order: 1, 2, 3…, 4, 5, 6, 7 (no repair request).
    assert_eq!(nums, [1, 2, 3, 3, 4, 5, 6, 7], "{}", hex::encode(&ours));
    assert_eq!(
        nums,
        fields(&nim).iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    // Every field but the lamport timestamp (ms for us, seconds for nim-sds)
    // is byte-identical to nim-sds's: id, both history entries, channel,
    // content, the bloom filter (nested format, nim's hash, same bits) and sender.
    for n in [1, 4, 5, 6, 7] {
        assert_eq!(
            hex::encode(field(&ours, n)),
            hex::encode(field(&nim, n)),
            "field {n}"
        );
    }
    let hist = |b: &[u8]| -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(n, _)| *n == 3)
            .map(|(_, v)| v.unwrap())
            .collect()
    };
    assert_eq!(hist(&ours), hist(&nim));

    // The bloom decodes as nim's nested format and contains what we received.
    let bloom = field(&ours, 6);
    let nested: Vec<u64> = fields(&bloom).iter().map(|(n, _)| *n).collect();
    assert_eq!(nested, [1, 2, 3, 4, 5]);
    for id in ["w-1", "w-2", "w-3"] {
        assert!(nim_bloom_contains(&bloom, id), "{id} not in our bloom");
    }
    let absent = ["b-1", "w-4", "zzz", "msg-1"]
        .iter()
        .filter(|id| nim_bloom_contains(&bloom, id))
        .count();
    assert!(absent <= 1, "too many false positives in a 3-item bloom");

    // Our message decodes as a nim-dialect message with the right fields.
    let d = wire::decode(bytes::Bytes::from(ours), &Limits::default()).unwrap();
    assert_eq!(d.dialect, Dialect::Nim);
    assert_eq!(d.message.message_id, "b-1");
    assert_eq!(d.message.sender_id, "bob");
    assert_eq!(d.message.lamport_timestamp, Some(T0 + 4000));
}

#[test]
fn our_alice_is_acknowledged_by_nim_bob() {
    let v = section2();
    for (threshold, w1_acked) in [(None, false), (Some(1), true)] {
        let config = match threshold {
            Some(t) => format!("{CONFIG}possible_ack_threshold = {t}\n"),
            None => CONFIG.to_string(),
        };
        let mut alice = Peer::spawn("alice", &config);
        for i in 1..=3u64 {
            let ours = alice.send(
                T0 + 1000 * (i - 1),
                &format!("w-{i}"),
                format!("payload-{i}").as_bytes(),
            );
            let nim = vector(&v, &format!("alice wraps w-{i}"));
            // Same bytes as nim-sds's alice except the lamport timestamp.
            for n in [1, 4, 5, 6, 7] {
                assert_eq!(
                    hex::encode(field(&ours, n)),
                    hex::encode(field(&nim, n)),
                    "w-{i} field {n}"
                );
            }
        }
        let out = alice.receive(T0 + 5000, &vector(&v, "bob wraps b-1"));
        let d = of_type(&out, "delivered");
        assert_eq!(d.len(), 1, "{out:?}");
        assert_eq!(d[0]["message_id"], "b-1");
        assert_eq!(d[0]["sender_id"], "bob");
        assert_eq!(d[0]["content_hex"], "42");
        let acked: Vec<&str> = of_type(&out, "acknowledged")
            .iter()
            .map(|a| a["message_id"].as_str().unwrap())
            .collect();
        // w-2 and w-3 are in b-1's causal history; w-1 only in its bloom.
        let possibly = of_type(&out, "possibly_acknowledged");
        if w1_acked {
            // With a threshold of 1 (nim-sds's rule) the bloom alone acks w-1,
            // and the outgoing buffer empties as nim-sds's did.
            assert_eq!(acked, ["w-2", "w-3", "w-1"], "{out:?}");
            assert!(possibly.is_empty());
        } else {
            assert_eq!(acked, ["w-2", "w-3"], "{out:?}");
            assert_eq!(possibly.len(), 1, "{out:?}");
            assert_eq!(possibly[0]["message_id"], "w-1");
            assert_eq!(possibly[0]["count"], 1);
        }
        let s = alice.op(json!({"op":"state","channel":CH}));
        let expect: Vec<&str> = if w1_acked { vec![] } else { vec!["w-1"] };
        assert_eq!(s[0]["outgoing"], json!(expect));
        // nim-sds's lamport timestamps are seconds, ours milliseconds: b-1
        // (1 795 706 323 s) sorts before our w-1..w-3 (~1.8e12 ms).
        assert_eq!(s[0]["log"], json!(["b-1", "w-1", "w-2", "w-3"]));
    }
}
