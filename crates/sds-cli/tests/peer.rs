//! `sds peer`: two (or three) peer processes with the test as the network.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const T0: u64 = 1_700_000_000_000;
const CH: &str = "chat";

/// A running `sds peer`.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(id: &str, extra: &[&str]) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sds"))
            .args(["peer", "--participant-id", id])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sds peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one raw line; returns every output line up to (without) `done`.
    fn raw(&mut self, line: &str) -> Vec<Value> {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            let n = self.stdout.read_line(&mut l).unwrap();
            assert!(n > 0, "peer exited before done (after {line})");
            let v: Value = serde_json::from_str(&l).expect("output is one JSON object per line");
            if v["type"] == "done" {
                return out;
            }
            out.push(v);
        }
    }

    fn op(&mut self, v: Value) -> Vec<Value> {
        self.raw(&v.to_string())
    }

    fn send(&mut self, now: u64, id: &str, content: &[u8]) -> Vec<Value> {
        self.op(
            json!({"op":"send","now_ms":now,"channel":CH,"message_id":id,
                       "content_hex":hex::encode(content)}),
        )
    }

    fn receive(&mut self, now: u64, hex: &str, hint: Option<&str>) -> Vec<Value> {
        let mut v = json!({"op":"receive","now_ms":now,"hex":hex});
        if let Some(h) = hint {
            v["retrieval_hint_hex"] = json!(h);
        }
        self.op(v)
    }

    fn state(&mut self) -> Value {
        let out = self.op(json!({"op":"state","channel":CH}));
        assert_eq!(out.len(), 1, "{out:?}");
        out[0].clone()
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

/// The single broadcast of a given reason in `out`; returns its hex.
fn broadcast(out: &[Value], reason: &str) -> String {
    let b: Vec<_> = of_type(out, "broadcast")
        .into_iter()
        .filter(|v| v["reason"] == reason)
        .collect();
    assert_eq!(b.len(), 1, "expected one {reason} broadcast in {out:?}");
    b[0]["hex"].as_str().unwrap().to_string()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn delivery_and_acknowledgement_both_ways() {
    let mut alice = Peer::spawn("alice", &[]);
    let mut bob = Peer::spawn("bob", &[]);

    let out = alice.send(T0, "m1", b"hello");
    let m1 = broadcast(&out, "new");
    assert_eq!(of_type(&out, "broadcast")[0]["message_id"], "m1");
    assert_eq!(of_type(&out, "broadcast")[0]["channel"], CH);

    let out = bob.receive(T0 + 10, &m1, Some("aabb"));
    let d = of_type(&out, "delivered");
    assert_eq!(d.len(), 1, "{out:?}");
    assert_eq!(d[0]["message_id"], "m1");
    assert_eq!(d[0]["sender_id"], "alice");
    assert_eq!(d[0]["channel"], CH);
    assert_eq!(d[0]["content_hex"], hex::encode(b"hello"));
    // The channel's clock starts at T0 (creation) and a send moves it on by one.
    assert_eq!(d[0]["lamport_timestamp"], T0 + 1);
    assert_eq!(d[0]["lost_dependencies"], json!([]));
    assert_eq!(of_type(&out, "received")[0]["result"], "delivered");

    // bob's reply names m1 in its causal history: alice's m1 is acknowledged.
    let out = bob.send(T0 + 20, "b1", b"hi alice");
    let b1 = broadcast(&out, "new");
    let out = alice.receive(T0 + 30, &b1, None);
    assert_eq!(of_type(&out, "delivered")[0]["message_id"], "b1");
    let acks = of_type(&out, "acknowledged");
    assert_eq!(acks.len(), 1, "{out:?}");
    assert_eq!(acks[0]["message_id"], "m1");
    assert_eq!(ids(&alice.state()["outgoing"]), vec!["b1"; 0]);

    // A duplicate is reported as such and delivered once.
    let out = alice.receive(T0 + 40, &b1, None);
    assert!(of_type(&out, "delivered").is_empty());
    assert_eq!(of_type(&out, "received")[0]["result"], "duplicate");

    // Lamport order: m1 (T0 + 1) before b1 (T0 + 20) on both sides.
    for p in [&mut alice, &mut bob] {
        let s = p.state();
        assert_eq!(s["type"], "state");
        assert_eq!(s["channel"], CH);
        assert_eq!(ids(&s["log"]), ["m1", "b1"]);
        assert_eq!(s["lamport_timestamp"], T0 + 20);
        assert!(s["incoming"].as_array().unwrap().is_empty());
        assert!(s.get("repair_requests").is_some() && s.get("repair_responses").is_some());
    }
    assert_eq!(ids(&bob.state()["outgoing"]), ["b1"]);
}

#[test]
fn missing_dependency_with_hint_then_mark_met() {
    let mut alice = Peer::spawn("alice", &[]);
    let mut bob = Peer::spawn("bob", &[]);
    let mut carol = Peer::spawn("carol", &[]);

    let m1 = broadcast(&alice.send(T0, "m1", b"one"), "new");
    bob.receive(T0 + 5, &m1, Some("c0ffee"));
    let b1 = broadcast(&bob.send(T0 + 10, "b1", b"two"), "new");

    // carol lost m1: b1 is buffered and m1 reported missing with alice's id
    // and the hint bob received m1 with.
    let out = carol.receive(T0 + 20, &b1, None);
    assert!(of_type(&out, "delivered").is_empty(), "{out:?}");
    assert_eq!(of_type(&out, "received")[0]["result"], "buffered");
    let m = of_type(&out, "missing");
    assert_eq!(m.len(), 1, "{out:?}");
    assert_eq!(m[0]["message_id"], "b1");
    assert_eq!(
        m[0]["missing"],
        json!([{"message_id":"m1","retrieval_hint_hex":"c0ffee","sender_id":"alice"}])
    );
    let s = carol.state();
    assert_eq!(ids(&s["incoming"]), ["b1"]);
    assert!(ids(&s["log"]).is_empty());
    assert_eq!(ids(&s["repair_requests"]), ["m1"]);

    // The application fetched m1 elsewhere.
    let out = carol.op(json!({"op":"mark_met","now_ms":T0 + 30,"channel":CH,"message_ids":["m1"]}));
    let d = of_type(&out, "delivered");
    assert_eq!(d.len(), 1, "{out:?}");
    assert_eq!(d[0]["message_id"], "b1");
    let s = carol.state();
    assert!(ids(&s["incoming"]).is_empty());
    assert_eq!(ids(&s["log"]), ["b1"]);

    // A late m1 is still delivered through receive; it sorts before b1.
    carol.receive(T0 + 40, &m1, None);
    let log = ids(&carol.state()["log"]);
    assert!(log == ["b1"] || log == ["m1", "b1"], "{log:?}");
}

#[test]
fn late_message_releases_buffered_ones_in_causal_order() {
    let mut alice = Peer::spawn("alice", &[]);
    let mut bob = Peer::spawn("bob", &[]);
    let m: Vec<String> = (0..4)
        .map(|i| broadcast(&alice.send(T0 + i, &format!("m{i}"), b"x"), "new"))
        .collect();
    for (i, hex) in m.iter().enumerate().skip(1).rev() {
        let out = bob.receive(T0 + 100 + i as u64, hex, None);
        assert!(of_type(&out, "delivered").is_empty(), "{out:?}");
    }
    let out = bob.receive(T0 + 200, &m[0], None);
    let order: Vec<_> = of_type(&out, "delivered")
        .iter()
        .map(|d| d["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, ["m0", "m1", "m2", "m3"]);
    assert_eq!(ids(&bob.state()["log"]), ["m0", "m1", "m2", "m3"]);
}

#[test]
fn bad_lines_give_an_error_then_done_and_the_peer_keeps_running() {
    let mut p = Peer::spawn("alice", &[]);
    for line in [
        "not json",
        r#"{"op":"fly","now_ms":1}"#,
        r#"{"op":"send","now_ms":1}"#,
        r#"{"op":"receive","now_ms":1,"hex":"zz"}"#,
        r#"{"op":"receive","now_ms":1,"hex":"ffff"}"#,
        r#"{"op":"send","now_ms":1,"channel":"c","message_id":"m","content_hex":""}"#,
        r#"{"op":"mark_met","now_ms":1,"channel":"nope","message_ids":["x"]}"#,
        r#"{"op":"state","channel":"nope"}"#,
    ] {
        let out = p.raw(line);
        assert_eq!(out.len(), 1, "{line}: {out:?}");
        assert_eq!(out[0]["type"], "error", "{line}: {out:?}");
        let e = out[0]["error"].as_str().unwrap();
        assert!(!e.is_empty() && !e.contains('\n'));
    }
    let out = p.send(T0, "m1", b"still alive");
    assert_eq!(of_type(&out, "broadcast").len(), 1);
}

#[test]
fn ephemeral_messages() {
    let mut alice = Peer::spawn("alice", &[]);
    let mut bob = Peer::spawn("bob", &[]);
    let out = alice.op(json!({"op":"send_ephemeral","now_ms":T0,"channel":CH,
                              "content_hex":hex::encode(b"typing...")}));
    let hex = broadcast(&out, "ephemeral");
    let out = bob.receive(T0 + 1, &hex, None);
    let e = of_type(&out, "ephemeral");
    assert_eq!(e.len(), 1, "{out:?}");
    assert_eq!(e[0]["channel"], CH);
    assert_eq!(e[0]["sender_id"], "alice");
    assert_eq!(e[0]["content_hex"], hex::encode(b"typing..."));
    assert!(of_type(&out, "delivered").is_empty());
    assert!(ids(&bob.state()["log"]).is_empty());
    assert!(ids(&alice.state()["outgoing"]).is_empty());
}

#[test]
fn timers_fire_at_their_own_deadline() {
    let mut alice = Peer::spawn("alice", &[]);
    let _ = broadcast(&alice.send(T0, "m1", b"x"), "new");
    // Nothing is due yet.
    let out = alice.op(json!({"op":"tick","now_ms":T0 + 1_000}));
    assert!(out.is_empty(), "{out:?}");
    // Unacknowledged: resent after the resend interval (30 s by default).
    // A sync may be due in the same window; every broadcast is reported.
    let out = alice.op(json!({"op":"tick","now_ms":T0 + 31_000}));
    let resends: Vec<_> = of_type(&out, "broadcast")
        .into_iter()
        .filter(|b| b["reason"] == "resend")
        .collect();
    assert_eq!(resends.len(), 1, "{out:?}");
    assert_eq!(resends[0]["message_id"], "m1");
    // After the last resend (5 by default) the message is given up.
    let out = alice.op(json!({"op":"tick","now_ms":T0 + 3_600_000}));
    let n = of_type(&out, "not_acknowledged");
    assert_eq!(n.len(), 1, "{out:?}");
    assert_eq!(n[0]["message_id"], "m1");
    let resends = of_type(&out, "broadcast")
        .into_iter()
        .filter(|b| b["reason"] == "resend")
        .count();
    assert_eq!(resends, 4, "{out:?}");
    assert!(ids(&alice.state()["outgoing"]).is_empty());
}

#[test]
fn config_file_and_nim_dialect() {
    let dir = std::env::temp_dir().join(format!("sds-peer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("nim.toml");
    std::fs::write(
        &cfg,
        "causal_history_len = 2\nbloom_capacity = 10\nbloom_error_rate = 0.01\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let mut alice = Peer::spawn("alice", &["--dialect", "nim", "--config", cfg]);
    let mut bob = Peer::spawn("bob", &["--dialect", "nim", "--config", cfg]);
    let mut last = String::new();
    for i in 0..3 {
        last = broadcast(&alice.send(T0 + i, &format!("w-{i}"), b"p"), "new");
    }
    // nim dialect: field 1 (message id) first, field 2 a varint.
    assert!(last.starts_with("0a03772d32"), "{last}");
    assert_eq!(alice.state()["dialect"], "nim");
    let out = bob.receive(T0 + 10, &last, None);
    let m = of_type(&out, "missing");
    // Causal history of 2: w-0 and w-1.
    assert_eq!(m[0]["missing"].as_array().unwrap().len(), 2, "{out:?}");

    // A bad config file is reported and the peer does not start.
    std::fs::write(dir.join("bad.toml"), "no_such_key = 1\n").unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args(["peer", "--participant-id", "x", "--config"])
        .arg(dir.join("bad.toml"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("no_such_key"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repair_timing_and_stats_ops() {
    let mut p = Peer::spawn("alice", &[]);
    let out = p.op(json!({"op":"repair_timing","sender_id":"alice","message_id":"m1"}));
    assert_eq!(out[0]["type"], "repair_timing");
    assert_eq!(out[0]["participant_id"], "alice");
    // The original sender answers at once.
    assert_eq!(out[0]["t_resp_offset_ms"], 0);
    let t_req = out[0]["t_req_offset_ms"].as_u64().unwrap();
    assert!((30_000..120_000).contains(&t_req), "{out:?}");
    assert_eq!(out[0]["in_response_group"], true);
    p.send(T0, "m1", b"x");
    let out = p.op(json!({"op":"stats"}));
    assert_eq!(out[0]["type"], "stats");
    assert_eq!(out[0]["sent"], 1);
}
