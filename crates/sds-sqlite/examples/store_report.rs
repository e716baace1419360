//! Prints persisted ops/s and bytes written per operation for change sets
//! shaped like a receive and a send, with synchronous NORMAL and FULL, on a
//! log of 1 000 / 10 000 / 100 000 messages.
//!
//! `cargo run --release -p sds-sqlite --example store_report [DIR]`
//! (DIR: where the databases go; default the system temp dir. Use a real
//! disk: FULL's cost is the fsync.)
//!
//! `SDS_REPORT_N=1000,10000,100000` sets the participant runs' sizes
//! (default 1 000 and 10 000; FULL always runs 2 000). CPU µs/op is the
//! thread's CPU time (`/proc/thread-self/schedstat`), which a busy machine
//! inflates less than the wall time behind ops/s.
//!
//! Bytes written are counted by the kernel (`wchar` of `/proc/self/io`: all
//! bytes passed to write(2) by this process, WAL frames and checkpoints).

#[path = "../benches/shapes/mod.rs"]
mod shapes;

use sds::store::{ChangeSet, Store};
use sds_sqlite::{Options, SqliteStore, Synchronous};
use std::time::{Duration, Instant};

/// CPU time of this thread so far, in ns (`/proc/thread-self/schedstat`):
/// less sensitive than wall time to other processes on a busy machine.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

struct Row {
    ops: u64,
    secs: f64,
    bytes: Option<u64>,
    row_bytes: usize,
}

fn run(
    dir: &std::path::Path,
    sync: Synchronous,
    size: u64,
    work: fn(&str, u64) -> ChangeSet,
    budget: Duration,
) -> Result<Row, String> {
    let tmp = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
    let opts = Options {
        synchronous: sync,
        ..Options::default()
    };
    let mut store = SqliteStore::open_with(tmp.path().join("r.db"), &opts).map_err(|e| e.0)?;
    shapes::prefill(&mut store, "chat", size).map_err(|e| e.0)?;
    // Warm up the statement cache and the page cache.
    for i in 0..200 {
        store.apply(&work("chat", size + i)).map_err(|e| e.0)?;
    }
    let sets: Vec<ChangeSet> = (0..200_000)
        .map(|i| work("chat", size + 1_000 + i))
        .collect();
    let row_bytes = shapes::row_bytes(&sets[0]);
    let w0 = written();
    let t0 = Instant::now();
    let mut ops = 0;
    for cs in &sets {
        store.apply(cs).map_err(|e| e.0)?;
        ops += 1;
        if ops % 64 == 0 && t0.elapsed() >= budget {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let bytes = match (w0, written()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(Row {
        ops,
        secs,
        bytes,
        row_bytes,
    })
}

/// The participant itself on SQLite: `n` sends by A, then B receives them in
/// order (the `sds bench` send and receive-in-order workloads, persisted).
fn participant_workloads(
    dir: &std::path::Path,
    sync: Synchronous,
    n: usize,
) -> Result<[(f64, f64, f64); 2], String> {
    use sds::{Config, Participant};
    let tmp = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
    let opts = Options {
        synchronous: sync,
        ..Options::default()
    };
    let mut config = Config::default();
    config.max_log = config.max_log.max(n);
    config.max_outgoing = config.max_outgoing.max(n);
    config.max_incoming = config.max_incoming.max(n);
    config.max_evicted_ids = config.max_evicted_ids.max(n);
    let t0 = 1_700_000_000_000u64;
    let open = |name: &str| {
        sds_sqlite::open_participant_with(
            tmp.path().join(format!("{name}.db")),
            &opts,
            name,
            config.clone(),
        )
        .map_err(|e| e.to_string())
    };
    let mut a: Participant = open("a")?;
    let mut msgs = Vec::with_capacity(n);
    let w0 = written();
    let c0 = cpu_ns();
    let start = Instant::now();
    for i in 0..n {
        let content = vec![(i % 251) as u8; 100];
        a.send("bench", &shapes::id(i as u64), content, t0 + i as u64)
            .map_err(|e| e.to_string())?;
        while let Some(t) = a.poll_transmit() {
            msgs.push(t.bytes);
        }
        while a.poll_event().is_some() {}
    }
    let send = (
        n as f64 / start.elapsed().as_secs_f64(),
        written().unwrap_or(0).saturating_sub(w0.unwrap_or(0)) as f64 / n as f64,
        cpu_ns().unwrap_or(0).saturating_sub(c0.unwrap_or(0)) as f64 / 1e3 / n as f64,
    );
    let mut b: Participant = open("b")?;
    let w0 = written();
    let c0 = cpu_ns();
    let start = Instant::now();
    for (i, m) in msgs.into_iter().enumerate() {
        b.receive(m, None, t0 + i as u64)
            .map_err(|e| e.to_string())?;
        while b.poll_event().is_some() {}
        while b.poll_transmit().is_some() {}
    }
    let recv = (
        n as f64 / start.elapsed().as_secs_f64(),
        written().unwrap_or(0).saturating_sub(w0.unwrap_or(0)) as f64 / n as f64,
        cpu_ns().unwrap_or(0).saturating_sub(c0.unwrap_or(0)) as f64 / 1e3 / n as f64,
    );
    Ok([send, recv])
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("Participant on SQLite (`sds bench` workloads, 100-byte contents):");
    println!();
    println!(
        "| sync | n | send ops/s | send CPU µs/op | send bytes written/op | receive ops/s | \
         receive CPU µs/op | receive bytes written/op |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let sizes: Vec<usize> = std::env::var("SDS_REPORT_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    let runs = sizes
        .iter()
        .map(|&n| (Synchronous::Normal, "NORMAL", n))
        .chain([(Synchronous::Full, "FULL", 2_000)]);
    for (sync, sname, n) in runs {
        match participant_workloads(&dir, sync, n) {
            Ok([s, r]) => println!(
                "| {sname} | {n} | {:.0} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} |",
                s.0, s.2, s.1, r.0, r.2, r.1
            ),
            Err(e) => {
                eprintln!("participant {sname}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!();
    println!("Store alone, synthetic change sets:");
    println!();
    println!("| sync | workload | log size | ops/s | µs/op | bytes written/op | row bytes/op |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let only_normal = std::env::var_os("SDS_REPORT_NORMAL_ONLY").is_some();
    for (sync, sname) in [(Synchronous::Normal, "NORMAL"), (Synchronous::Full, "FULL")] {
        if only_normal && sync == Synchronous::Full {
            continue;
        }
        for (work, wname) in [
            (shapes::receive as fn(&str, u64) -> ChangeSet, "receive"),
            (shapes::send, "send"),
        ] {
            for size in [1_000u64, 10_000, 100_000] {
                let budget = Duration::from_secs(2);
                match run(&dir, sync, size, work, budget) {
                    Ok(r) => println!(
                        "| {sname} | {wname} | {size} | {:.0} | {:.1} | {} | {} |",
                        r.ops as f64 / r.secs,
                        r.secs * 1e6 / r.ops as f64,
                        r.bytes
                            .map(|b| format!("{:.0}", b as f64 / r.ops as f64))
                            .unwrap_or_else(|| "n/a".into()),
                        r.row_bytes,
                    ),
                    Err(e) => {
                        eprintln!("{sname} {wname} {size}: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
    }
}
