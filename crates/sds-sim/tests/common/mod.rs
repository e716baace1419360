//! Helpers: load the repository's scenario files and shrink them.
#![allow(dead_code)]

use sds_sim::{Report, Scenario};
use std::path::PathBuf;

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(format!("{name}.toml"))
}

pub fn load(name: &str) -> Scenario {
    let text = std::fs::read_to_string(scenario_path(name)).expect("scenario file");
    Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Fewer participants, shorter phases: a few seconds in release.
pub fn shrink(mut s: Scenario, participants: usize) -> Scenario {
    s.participants = participants;
    s
}

pub fn assert_ok(r: &Report) {
    assert!(
        r.invariants_ok,
        "scenario {} seed {}: invariants violated:\n{}",
        r.scenario,
        r.seed,
        r.invariants.violations.join("\n")
    );
    assert!(r.anomalies.is_empty(), "anomalies: {:?}", r.anomalies);
}
