//! `sds bench`: the workloads we compare with nim-sds and `@waku/sds`
//! (see `docs/bench.md`).
//!
//! With the default configuration and 100-byte contents:
//! - `send`: A sends N messages, none acknowledged; the encoded bytes are
//!   produced (taken out of `poll_transmit`);
//! - `receive-in-order`: B receives them in send order;
//! - `receive-random`: C receives them in a seeded random order.
//!
//! Only the workload is timed; inputs are prepared before. The receive
//! workloads read their inputs from a temporary file between operations (not
//! timed), so the peak RSS is the participant's, not the bench's copy of the
//! inputs.

use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use serde_json::json;

use sds::{ChannelConfig, Config, Dialect, Event, Participant};

/// Arguments of `sds bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of messages.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Seed of the contents, ids and the random receive order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Persist each participant in DIR: `sqlite:DIR` (or `sqlite:DIR?sync=full`),
    /// one fresh database file per workload.
    #[arg(long, value_name = "SPEC")]
    store: Option<String>,
    /// Run only this workload (repeatable; for profiling): `send`,
    /// `receive-in-order` or `receive-random`. The inputs are prepared anyway.
    #[arg(long = "only", value_name = "WORKLOAD")]
    only: Vec<String>,
}

const CHANNEL: &str = "bench";
const T0: u64 = 1_700_000_000_000;
const CONTENT_LEN: usize = 100;

/// splitmix64: a small deterministic generator for inputs and shuffles.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One workload's result.
struct Workload {
    name: &'static str,
    seconds: f64,
    n: usize,
    /// Peak RSS during the workload minus RSS before it.
    rss_growth: u64,
    /// Closing the participant afterwards (with a store: the work it left
    /// pending, e.g. the last fold), timed separately.
    close_seconds: f64,
}

/// The largest VmHWM seen so far (it is reset before each workload).
static PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn note_peak() -> u64 {
    let hwm = proc_status_kb("VmHWM:").unwrap_or(0);
    PEAK.fetch_max(hwm, std::sync::atomic::Ordering::Relaxed);
    hwm
}

impl Workload {
    fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.n as f64 / self.seconds
        } else {
            f64::INFINITY
        }
    }
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// Resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn measure<F: FnOnce()>(name: &'static str, n: usize, f: F) -> Workload {
    measure_timed(name, n, || {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    })
}

/// Like [`measure`], for a workload that times its own operations.
fn measure_timed<F: FnOnce() -> f64>(name: &'static str, n: usize, f: F) -> Workload {
    note_peak();
    let before = proc_status_kb("VmRSS:").unwrap_or(0);
    reset_peak_rss();
    let seconds = f();
    let peak = note_peak();
    Workload {
        name,
        seconds,
        n,
        rss_growth: peak.saturating_sub(before),
        close_seconds: 0.0,
    }
}

/// The bench configuration: defaults, with the buffer caps raised to `n`.
fn bench_config(n: usize) -> (Config, bool) {
    let mut c = Config::default();
    let raised = n > c.max_log
        || n > c.max_outgoing
        || n > c.max_incoming
        || n > c.repair.max_outgoing_entries;
    if raised {
        c.max_log = c.max_log.max(n);
        c.max_outgoing = c.max_outgoing.max(n);
        c.max_incoming = c.max_incoming.max(n);
        c.max_evicted_ids = c.max_evicted_ids.max(n);
        // Random-order receipt leaves up to N ids missing at once.
        c.repair.max_outgoing_entries = c.repair.max_outgoing_entries.max(n);
    }
    (c, raised)
}

fn participant(
    id: &str,
    config: &Config,
    store: Option<(&str, &str)>,
) -> Result<Participant, String> {
    let mut p = match store {
        Some((spec, tag)) => {
            let (dir, query) = spec.split_once('?').unwrap_or((spec, ""));
            let path = format!("{dir}/{id}-{tag}.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ =
                    std::fs::remove_file(format!("{}{suffix}", path.trim_start_matches("sqlite:")));
            }
            let spec = if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            };
            let store = sds_sqlite::store_from_spec(&spec).map_err(|e| e.to_string())?;
            Participant::open(id, config.clone(), store).map_err(|e| e.to_string())?
        }
        None => Participant::new(id, config.clone()).map_err(|e| e.to_string())?,
    };
    p.configure_channel(CHANNEL, ChannelConfig::new(Dialect::Spec), T0)
        .map_err(|e| e.to_string())?;
    Ok(p)
}

/// The encoded input messages, kept in an unlinked temporary file rather
/// than in memory, so that the bench's own copy of them (20 KB each: N =
/// 10 000 holds 197 MB) does not count in the peak RSS. A receive workload
/// reads each message just before handing it over, like bytes arriving from
/// a socket; the read is not timed.
struct Inputs {
    file: std::fs::File,
    /// (offset, length) of each message.
    spans: Vec<(u64, usize)>,
    total: usize,
}

impl Inputs {
    fn new() -> Result<Self, String> {
        // One per process (create_new refuses a leftover of a reused pid).
        let path = std::env::temp_dir().join(format!("sds-bench-{}.bin", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("temporary file {}: {e}", path.display()))?;
        // Unlinked at once: the file is gone when the process ends, however
        // it ends.
        let _ = std::fs::remove_file(&path);
        Ok(Inputs {
            file,
            spans: Vec::new(),
            total: 0,
        })
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        self.file
            .write_all(bytes)
            .map_err(|e| format!("writing inputs: {e}"))?;
        self.spans.push((self.total as u64, bytes.len()));
        self.total += bytes.len();
        Ok(())
    }

    fn read(&mut self, i: usize) -> Result<Bytes, String> {
        use std::io::{Read, Seek, SeekFrom};
        let (offset, len) = self.spans[i];
        let mut buf = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| format!("reading inputs: {e}"))?;
        Ok(Bytes::from(buf))
    }
}

/// Receives the inputs in the order of `order`; returns the number delivered
/// and the seconds spent in the participant (receive and draining its
/// outputs), reading the inputs excluded.
fn receive_all(
    p: &mut Participant,
    inputs: &mut Inputs,
    order: &[usize],
) -> Result<(u64, f64), String> {
    let mut delivered = 0;
    let mut spent = std::time::Duration::ZERO;
    for (j, &i) in order.iter().enumerate() {
        let bytes = inputs.read(i)?;
        let start = Instant::now();
        p.receive(bytes, None, T0 + j as u64)
            .map_err(|e| format!("receive: {e}"))?;
        while let Some(e) = p.poll_event() {
            if matches!(e, Event::Delivered { .. }) {
                delivered += 1;
            }
        }
        while p.poll_transmit().is_some() {}
        spent += start.elapsed();
    }
    // Work the store still does in the background (a fold in flight) is
    // part of the workload's cost.
    let start = Instant::now();
    p.flush_store().map_err(|e| format!("store: {e}"))?;
    spent += start.elapsed();
    Ok((delivered, spent.as_secs_f64()))
}

/// Runs the workloads and prints the results.
pub fn run(args: &BenchArgs) -> ExitCode {
    match bench(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sds bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &BenchArgs) -> Result<(), String> {
    let n = args.n;
    if n == 0 {
        return Err("--n must be at least 1".into());
    }
    let (config, raised) = bench_config(n);

    // Inputs: ids (64 hex characters, like sha256 ids) and 100-byte contents.
    let mut rng = SplitMix(args.seed);
    let ids: Vec<String> = (0..n)
        .map(|_| (0..4).map(|_| format!("{:016x}", rng.next())).collect())
        .collect();
    let contents: Vec<Bytes> = (0..n)
        .map(|_| {
            let v: Vec<u8> = (0..CONTENT_LEN).map(|_| rng.next() as u8).collect();
            Bytes::from(v)
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let in_order: Vec<usize> = (0..n).collect();

    const NAMES: [&str; 3] = ["send", "receive-in-order", "receive-random"];
    if let Some(bad) = args.only.iter().find(|o| !NAMES.contains(&o.as_str())) {
        return Err(format!(
            "unknown workload {bad:?} (expected one of {})",
            NAMES.join(", ")
        ));
    }
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut workloads: Vec<Workload> = Vec::new();

    // send: the bytes are produced and handed over (dropped), as a broadcast
    // would; keeping 20 KB per message here would time the kernel zeroing
    // fresh pages rather than the protocol.
    if wanted("send") {
        let mut a = participant(
            "bench-a",
            &config,
            args.store.as_deref().map(|s| (s, "send")),
        )?;
        let mut send_err = None;
        let mut produced = 0usize;
        let send = measure("send", n, || {
            for (i, (id, c)) in ids.iter().zip(&contents).enumerate() {
                if let Err(e) = a.send(CHANNEL, id, c.clone(), T0 + i as u64) {
                    send_err = Some(e.to_string());
                    return;
                }
                while let Some(t) = a.poll_transmit() {
                    produced += usize::from(!t.bytes.is_empty());
                }
            }
            // Timed: the store's background work (a fold in flight).
            if let Err(e) = a.flush_store() {
                send_err = Some(e.to_string());
            }
        });
        if let Some(e) = send_err {
            return Err(format!("send: {e}"));
        }
        if produced != n {
            return Err(format!("send produced {produced} messages, expected {n}"));
        }
        let outgoing = a.channel_state(CHANNEL).map_or(0, |s| s.outgoing.len());
        if outgoing != n {
            return Err(format!(
                "expected {n} unacknowledged messages, found {outgoing}"
            ));
        }
        let start = Instant::now();
        drop(a);
        let mut send = send;
        send.close_seconds = start.elapsed().as_secs_f64();
        workloads.push(send);
    }
    // The same messages again (same participant, inputs and clock: the same
    // bytes), kept as the inputs of the receive workloads. Not timed.
    let mut a2 = participant("bench-a", &config, None)?;
    let mut inputs = Inputs::new()?;
    let mut last_len = 0;
    for (i, (id, c)) in ids.iter().zip(&contents).enumerate() {
        a2.send(CHANNEL, id, c.clone(), T0 + i as u64)
            .map_err(|e| format!("send: {e}"))?;
        while let Some(t) = a2.poll_transmit() {
            last_len = t.bytes.len();
            inputs.push(&t.bytes)?;
        }
    }
    drop(a2);
    if inputs.spans.len() != n {
        return Err(format!(
            "send produced {} messages, expected {n}",
            inputs.spans.len()
        ));
    }
    let input_bytes = inputs.total;
    let message_bytes = last_len;

    for (name, id, tag, order) in [
        ("receive-in-order", "bench-b", "recv-in-order", &in_order),
        ("receive-random", "bench-c", "recv-random", &order),
    ] {
        if !wanted(name) {
            continue;
        }
        let mut b = participant(id, &config, args.store.as_deref().map(|s| (s, tag)))?;
        let mut res = Ok(0);
        let w = measure_timed(name, n, || match receive_all(&mut b, &mut inputs, order) {
            Ok((delivered, seconds)) => {
                res = Ok(delivered);
                seconds
            }
            Err(e) => {
                res = Err(e);
                0.0
            }
        });
        let delivered = res?;
        let start = Instant::now();
        drop(b);
        let mut w = w;
        w.close_seconds = start.elapsed().as_secs_f64();
        if delivered != n as u64 {
            return Err(format!("{name}: expected {n} deliveries, got {delivered}"));
        }
        workloads.push(w);
    }

    note_peak();
    let peak_rss = PEAK.load(std::sync::atomic::Ordering::Relaxed);
    if args.json {
        let v = json!({
            "n": n,
            "workloads": workloads.iter().map(|w| json!({
                "name": w.name,
                "ops_per_sec": w.ops_per_sec(),
                "seconds": w.seconds,
                "rss_growth_bytes": w.rss_growth,
                "close_seconds": w.close_seconds,
                "ops_per_sec_with_close": w.n as f64 / (w.seconds + w.close_seconds),
            })).collect::<Vec<_>>(),
            "message_bytes": message_bytes,
            "peak_rss_bytes": peak_rss,
            "input_bytes": input_bytes,
            "caps_raised_to_n": raised,
        });
        println!("{v}");
    } else {
        println!("sds bench: N = {n}, 100-byte contents, default config (spec dialect)");
        if raised {
            println!(
                "note: N is above a default cap: max_log, max_outgoing, max_incoming, \
                 max_evicted_ids and repair.max_outgoing_entries raised to {n}"
            );
        }
        println!(
            "{:<18} {:>12} {:>14} {:>14}",
            "workload", "seconds", "ops/s", "RSS growth"
        );
        for w in &workloads {
            println!(
                "{:<18} {:>12.4} {:>14.0} {:>11.1} MB",
                w.name,
                w.seconds,
                w.ops_per_sec(),
                w.rss_growth as f64 / 1e6
            );
        }
        println!("steady-state message: {message_bytes} bytes");
        println!(
            "encoded input messages: {:.1} MB (kept in a temporary file, not in memory)",
            input_bytes as f64 / 1e6
        );
        println!("peak RSS (VmHWM): {:.1} MB", peak_rss as f64 / 1e6);
    }
    Ok(())
}
