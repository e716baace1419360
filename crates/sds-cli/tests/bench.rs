//! `sds bench`, run as a process: every workload completes (the bench
//! itself checks N deliveries per receiver and N unacknowledged messages at
//! the sender, and fails otherwise), in worker processes and in process.

use std::process::Command;

use serde_json::Value;

fn bench(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args(["bench", "--n", "300", "--json", "--repeat", "3"])
        .args(extra)
        .output()
        .expect("run sds bench");
    assert!(
        out.status.success(),
        "sds bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn check(v: &Value, in_process: bool) {
    assert_eq!(v["n"], 300);
    assert_eq!(v["repeat"], 3);
    assert_eq!(v["in_process"], in_process);
    assert!(v["message_bytes"].as_u64().unwrap() > 100);
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
    let names: Vec<&str> = v["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["send", "receive-in-order", "receive-random"]);
    for w in v["workloads"].as_array().unwrap() {
        let runs = w["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        let mut per_run: Vec<f64> = runs
            .iter()
            .map(|r| r["ops_per_sec"].as_f64().unwrap())
            .collect();
        assert!(per_run.iter().all(|&x| x > 0.0 && x.is_finite()));
        per_run.sort_by(f64::total_cmp);
        // The reported figures are the median and the best of the runs.
        let median = w["ops_per_sec"].as_f64().unwrap();
        let rel = (median - per_run[1]).abs() / per_run[1];
        assert!(rel < 1e-9, "{median} is not the median of {per_run:?}");
        assert_eq!(w["ops_per_sec_best"].as_f64().unwrap(), per_run[2]);
    }
}

#[test]
fn workloads_run_in_worker_processes() {
    check(&bench(&[]), false);
}

#[test]
fn workloads_run_in_process() {
    check(&bench(&["--in-process"]), true);
}

/// `sds bench --n 10 <option> nope` fails, saying the workload is unknown.
fn refuses_unknown_workload(option: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args(["bench", "--n", "10", option, "nope"])
        .output()
        .expect("run sds bench");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload"));
}

#[test]
fn a_bad_workload_name_is_refused() {
    refuses_unknown_workload("--only");
}

#[test]
fn a_worker_for_an_unknown_workload_is_refused() {
    refuses_unknown_workload("--worker");
}
