//! Property: participants exchanging messages over a network with loss,
//! duplication and reordering converge once the network heals: identical logs,
//! no delivery before dependencies, no duplicate delivery, and every sent
//! message ends acknowledged or reported not acknowledged at its sender.
#![allow(clippy::needless_range_loop)] // participants are indexed across several vectors
mod common;
use common::*;
use proptest::prelude::*;
use sds::{wire, Config, Event, TransmitReason};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
struct Scenario {
    participants: usize,
    messages: Vec<(usize, u64)>, // (sender, send time offset ms)
    loss: f64,
    dup: f64,
    max_latency: u64,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        3usize..=10,
        0.0f64..=0.3,
        0.0f64..=0.2,
        10u64..=3_000,
        any::<u64>(),
    )
        .prop_flat_map(|(n, loss, dup, lat, seed)| {
            prop::collection::vec((0..n, 0u64..120_000), 1..=40).prop_map(move |messages| {
                Scenario {
                    participants: n,
                    messages,
                    loss,
                    dup,
                    max_latency: lat,
                    seed,
                }
            })
        })
}

fn config() -> Config {
    // A smaller bloom filter keeps thousands of cases fast; the protocol is the same.
    Config {
        bloom_capacity: 1_000,
        ..Config::default()
    }
}

fn check(s: &Scenario) -> Result<(), TestCaseError> {
    let names: Vec<String> = (0..s.participants).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = Net::new(&refs, config(), s.seed);
    net.loss = s.loss;
    net.dup = s.dup;
    net.latency = (1, s.max_latency);
    let mut msgs = s.messages.clone();
    msgs.sort_by_key(|m| m.1);
    for (k, (sender, at)) in msgs.iter().enumerate() {
        net.run_until(T0 + at);
        net.send(
            *sender,
            "ch",
            &format!("m{k}"),
            format!("content {k}").as_bytes(),
        );
    }
    // Heal the network at +3 min, then let it settle.
    net.run_until(T0 + 180_000);
    net.loss = 0.0;
    net.dup = 0.0;
    net.run_until(T0 + 40 * 60_000);

    // Causal histories of every content message, from what was sent.
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for sent in &net.sent {
        for (_, tx) in sent {
            if tx.reason == TransmitReason::New {
                let m = wire::decode(tx.bytes.clone(), &Default::default())
                    .unwrap()
                    .message;
                deps.insert(
                    m.message_id,
                    m.causal_history.into_iter().map(|e| e.message_id).collect(),
                );
            }
        }
    }
    if std::env::var("DEBUG_CONVERGENCE").is_ok() {
        let all: HashSet<String> = (0..s.participants).flat_map(|i| net.log(i, "ch")).collect();
        for i in 0..s.participants {
            let log: HashSet<String> = net.log(i, "ch").into_iter().collect();
            for id in all.difference(&log) {
                eprintln!("=== p{i} lacks {id}; seed {}", s.seed);
                for (m, d) in &deps {
                    if d.contains(id) {
                        eprintln!("  {m} names it; p{i} has {m}: {}", log.contains(m));
                    }
                }
                for (j, sent) in net.sent.iter().enumerate() {
                    for (t, tx) in sent {
                        if tx.reason == TransmitReason::Sync {
                            let m = wire::decode(tx.bytes.clone(), &Default::default())
                                .unwrap()
                                .message;
                            if m.causal_history.iter().any(|e| &e.message_id == id) {
                                eprintln!("  sync from p{j} at +{} names it", t - T0);
                            }
                        }
                    }
                }
                for j in 0..s.participants {
                    for (t, e) in &net.events[j] {
                        let txt = format!("{e:?}");
                        if txt.contains(&format!("\"{id}\"")) {
                            eprintln!("p{j} +{} {}", t - T0, &txt[..txt.len().min(250)]);
                        }
                    }
                    for (t, tx) in &net.sent[j] {
                        if tx.message_id == *id || tx.repair_request.contains(id) {
                            eprintln!(
                                "p{j} +{} SENT {:?} {} rr={:?}",
                                t - T0,
                                tx.reason,
                                tx.message_id,
                                tx.repair_request
                            );
                        }
                    }
                }
            }
        }
    }
    let log0 = net.log(0, "ch");
    prop_assert_eq!(
        log0.len(),
        msgs.len(),
        "all messages in the log of p0: {:?}",
        log0
    );
    for i in 0..s.participants {
        let log = net.log(i, "ch");
        prop_assert_eq!(&log, &log0, "log of p{} differs from p0", i);
        // Delivery order respects dependencies; nothing twice.
        let mut have: HashSet<String> = HashSet::new();
        for (_, tx) in &net.sent[i] {
            if tx.reason == TransmitReason::New {
                have.insert(tx.message_id.clone());
            }
        }
        let mut seen = HashSet::new();
        for (_, e) in &net.events[i] {
            if let Event::Delivered {
                message_id,
                lost_dependencies,
                ..
            } = e
            {
                prop_assert!(
                    seen.insert(message_id.clone()),
                    "p{} delivered {} twice",
                    i,
                    message_id
                );
                for d in &deps[message_id] {
                    prop_assert!(
                        have.contains(d) || lost_dependencies.contains(d),
                        "p{} delivered {} before its dependency {}",
                        i,
                        message_id,
                        d
                    );
                }
                have.insert(message_id.clone());
            }
        }
        // Every own message ended acknowledged or given up, exactly once.
        let st = net.nodes[i].channel_state("ch");
        prop_assert!(st.map(|s| s.outgoing.is_empty()).unwrap_or(true));
        let mut ends: HashMap<String, usize> = HashMap::new();
        for (_, e) in &net.events[i] {
            if let Event::Acknowledged { message_id, .. }
            | Event::NotAcknowledged { message_id, .. } = e
            {
                *ends.entry(message_id.clone()).or_default() += 1;
            }
        }
        for (_, tx) in &net.sent[i] {
            if tx.reason == TransmitReason::New {
                prop_assert_eq!(
                    ends.get(&tx.message_id),
                    Some(&1),
                    "p{} {}",
                    i,
                    &tx.message_id
                );
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn groups_converge_after_the_network_heals(s in scenario()) {
        check(&s)?;
    }
}
