//! Same scenario and seed: the same report, bit for bit (apart from wall time).

mod common;

use sds_sim::{run, Scenario, Simulation};

fn json_without_wall(s: &Scenario) -> serde_json::Value {
    without_wall(run(s).unwrap())
}

fn without_wall(r: sds_sim::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(&r).unwrap();
    let o = v.as_object_mut().unwrap();
    // The only wall-clock-dependent values.
    assert!(o.remove("wall_seconds").is_some());
    assert!(o.remove("events_per_second").is_some());
    v
}

fn small() -> Scenario {
    let mut s = common::load("churn");
    s.participants = 20;
    s.duration_s = 60.0;
    s.settle_s = 120.0;
    s.network.duplicate = 0.05;
    s.churn.offline.clear();
    s
}

#[test]
fn same_seed_same_json() {
    let s = small();
    let a = json_without_wall(&s);
    let b = json_without_wall(&s);
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn another_seed_another_run() {
    let s = small();
    let mut t = s.clone();
    t.seed += 1;
    assert_ne!(json_without_wall(&s), json_without_wall(&t));
}

#[test]
fn required_json_keys() {
    let mut s = small();
    s.duration_s = 20.0;
    let v = serde_json::to_value(run(&s).unwrap()).unwrap();
    for k in [
        "scenario",
        "seed",
        "participants",
        "delivery_ratio",
        "invariants_ok",
        "furps",
        "wall_seconds",
    ] {
        assert!(v.get(k).is_some(), "missing key {k}");
    }
    for k in [
        "ack_within_s",
        "detect_90pct_within_3s",
        "consistent_within_6s",
    ] {
        assert!(v["furps"][k].is_boolean(), "furps.{k}");
    }
    let ratio = v["delivery_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ratio));
}

/// The participants' work runs on several threads in time windows; the
/// report must not depend on how many.
#[test]
fn same_report_with_any_number_of_threads() {
    let mut s = small();
    // Every kind of event: churn, duplicates, store queries and replies.
    s.store.enabled = true;
    s.store.latency_ms = 30;
    s.store.query_delay_ms = 500;
    let run_with = |threads: usize| {
        let mut sim = Simulation::new(&s).unwrap();
        sim.set_threads(threads);
        without_wall(sim.run())
    };
    let one = run_with(1);
    assert!(
        one["store"]["queries"].as_u64().unwrap() > 0,
        "{}",
        one["store"]
    );
    assert!(one["network"]["duplicated"].as_u64().unwrap() > 0);
    assert!(one["network"]["dropped_offline"].as_u64().unwrap() > 0);
    for threads in [2, 3, 5] {
        assert_eq!(one, run_with(threads), "{threads} threads");
    }
}
