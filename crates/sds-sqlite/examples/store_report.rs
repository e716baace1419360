//! Prints persisted ops/s and bytes written per operation for change sets
//! shaped like a receive and a send, with synchronous NORMAL and FULL, on a
//! log of 1 000 / 10 000 / 100 000 messages.
//!
//! `cargo run --release -p sds-sqlite --example store_report [DIR]`
//! (DIR: where the databases go; default the system temp dir. Use a real
//! disk: FULL's cost is the fsync.)
//!
//! Bytes written are counted by the kernel (`wchar` of `/proc/self/io`: all
//! bytes passed to write(2) by this process, WAL frames and checkpoints).

#[path = "../benches/shapes/mod.rs"]
mod shapes;

use sds::store::{ChangeSet, Store};
use sds_sqlite::{Options, SqliteStore, Synchronous};
use std::time::{Duration, Instant};

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

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("| sync | workload | log size | ops/s | µs/op | bytes written/op | row bytes/op |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (sync, sname) in [(Synchronous::Normal, "NORMAL"), (Synchronous::Full, "FULL")] {
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
