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
//!
//! Each run of a workload is a fresh process (this program again, with the
//! hidden `--worker` argument), unless `--in-process` is given: a run then
//! starts with the memory of the bench's preparation and of earlier runs
//! just freed, and the allocator returning it to the kernel (and the
//! workload faulting it in again, 4 KiB at a time) lands in the timed
//! region. At N = 100 000 that was 5 000 to 16 000 page faults in a
//! random-order run, and its slowest runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use serde_json::{json, Value};

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
    /// one fresh database file per run.
    #[arg(long, value_name = "SPEC")]
    store: Option<String>,
    /// Run only this workload (repeatable; for profiling): `send`,
    /// `receive-in-order` or `receive-random`. The inputs are prepared anyway.
    #[arg(long = "only", value_name = "WORKLOAD")]
    only: Vec<String>,
    /// Runs of each workload; the median run is reported, with all of them.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Run every workload in this process, one after the other, instead of
    /// one fresh process per run (for profilers that do not follow child
    /// processes).
    #[arg(long)]
    in_process: bool,
    /// Internal: run one workload once and print its result as JSON.
    #[arg(long, hide = true, value_name = "WORKLOAD")]
    worker: Option<String>,
    /// Internal: the encoded inputs of a receive workload.
    #[arg(long, hide = true, value_name = "PATH")]
    inputs: Option<PathBuf>,
}

const CHANNEL: &str = "bench";
const T0: u64 = 1_700_000_000_000;
const CONTENT_LEN: usize = 100;
/// Id text length: 64 hex characters, like sha256 ids.
const ID_WORDS: usize = 4;
const NAMES: [&str; 3] = ["send", "receive-in-order", "receive-random"];

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

/// The N messages' ids and contents, drawn from the seed in that order.
fn messages(seed: u64, n: usize) -> (Vec<String>, Vec<Bytes>) {
    let mut rng = SplitMix(seed);
    let ids: Vec<String> = (0..n)
        .map(|_| {
            (0..ID_WORDS)
                .map(|_| format!("{:016x}", rng.next()))
                .collect()
        })
        .collect();
    let contents: Vec<Bytes> = (0..n)
        .map(|_| {
            let v: Vec<u8> = (0..CONTENT_LEN).map(|_| rng.next() as u8).collect();
            Bytes::from(v)
        })
        .collect();
    (ids, contents)
}

/// The random receive order: drawn after the ids and contents (skipped here,
/// so that a receiver does not hold them).
fn random_order(seed: u64, n: usize) -> Vec<usize> {
    let mut rng = SplitMix(seed);
    for _ in 0..n * (ID_WORDS + CONTENT_LEN) {
        rng.next();
    }
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// One run of a workload.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    seconds: f64,
    /// Closing the participant afterwards (with a store: the work it left
    /// pending, e.g. the last fold), timed separately.
    close_seconds: f64,
    /// Peak RSS during the workload minus RSS before it.
    rss_growth: u64,
    /// Minor page faults of the process during the workload (first touches
    /// of fresh memory; a transparent huge page is one fault for 2 MiB).
    minor_faults: u64,
    /// The largest VmHWM of the process that ran it (in process: so far).
    peak_rss: u64,
}

impl Run {
    fn to_json(&self, n: usize) -> Value {
        json!({
            "seconds": self.seconds,
            "ops_per_sec": ops(n, self.seconds),
            "close_seconds": self.close_seconds,
            "rss_growth_bytes": self.rss_growth,
            "minor_faults": self.minor_faults,
            "peak_rss_bytes": self.peak_rss,
        })
    }

    fn from_json(v: &Value) -> Option<Run> {
        Some(Run {
            seconds: v.get("seconds")?.as_f64()?,
            close_seconds: v.get("close_seconds")?.as_f64()?,
            rss_growth: v.get("rss_growth_bytes")?.as_u64()?,
            minor_faults: v.get("minor_faults")?.as_u64()?,
            peak_rss: v.get("peak_rss_bytes")?.as_u64()?,
        })
    }
}

fn ops(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        f64::INFINITY
    }
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => v[m],
        _ => (v[m - 1] + v[m]) / 2.0,
    }
}

/// A workload's runs.
struct Workload {
    name: &'static str,
    n: usize,
    runs: Vec<Run>,
}

impl Workload {
    fn seconds(&self) -> f64 {
        median(self.runs.iter().map(|r| r.seconds).collect())
    }

    fn ops_per_sec(&self) -> f64 {
        ops(self.n, self.seconds())
    }

    fn best(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| ops(self.n, r.seconds))
            .fold(0.0, f64::max)
    }

    fn to_json(&self) -> Value {
        let n = self.n;
        json!({
            "name": self.name,
            "ops_per_sec": self.ops_per_sec(),
            "seconds": self.seconds(),
            "ops_per_sec_best": self.best(),
            "close_seconds": median(self.runs.iter().map(|r| r.close_seconds).collect()),
            "ops_per_sec_with_close":
                ops(n, median(self.runs.iter().map(|r| r.seconds + r.close_seconds).collect())),
            "rss_growth_bytes": self.runs.iter().map(|r| r.rss_growth).max().unwrap_or(0),
            "minor_faults": median(self.runs.iter().map(|r| r.minor_faults as f64).collect()),
            "runs": self.runs.iter().map(|r| r.to_json(n)).collect::<Vec<_>>(),
        })
    }
}

/// The largest VmHWM seen so far (it is reset before each workload).
static PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn note_peak() -> u64 {
    let hwm = proc_status_kb("VmHWM:").unwrap_or(0);
    PEAK.fetch_max(hwm, std::sync::atomic::Ordering::Relaxed);
    hwm
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

/// The process's minor page faults so far (`/proc/self/stat`, field 10);
/// 0 where unavailable.
fn minor_faults() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may hold spaces.
    s.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS (VmHWM) to the current RSS (Linux ≥ 4.0); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `f` (which times its own operations and returns the seconds) and
/// closes what it returns, timed separately.
fn measure<T, F: FnOnce() -> Result<(T, f64), String>>(f: F) -> Result<Run, String> {
    note_peak();
    let before = proc_status_kb("VmRSS:").unwrap_or(0);
    reset_peak_rss();
    let faults = minor_faults();
    let (closing, seconds) = f()?;
    let minor_faults = minor_faults().saturating_sub(faults);
    let peak = note_peak();
    let start = Instant::now();
    drop(closing);
    let close_seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        seconds,
        close_seconds,
        rss_growth: peak.saturating_sub(before),
        minor_faults,
        peak_rss: PEAK.load(std::sync::atomic::Ordering::Relaxed),
    })
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
/// a socket; the read is not timed. In the file, each message follows its
/// length (4 bytes, little-endian), so that a worker process opening it
/// finds them again.
struct Inputs {
    file: std::fs::File,
    /// (offset, length) of each message.
    spans: Vec<(u64, usize)>,
    /// The file's length.
    end: u64,
}

impl Inputs {
    fn create() -> Result<Self, String> {
        // One per process (create_new refuses a leftover of a reused pid).
        let path = std::env::temp_dir().join(format!("sds-bench-{}.bin", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("temporary file {}: {e}", path.display()))?;
        // Unlinked at once: the file is gone when the process ends, however
        // it ends. Worker processes open it through /proc (`Self::path`).
        let _ = std::fs::remove_file(&path);
        Ok(Inputs {
            file,
            spans: Vec::new(),
            end: 0,
        })
    }

    /// A path through which another process opens this (unlinked) file
    /// while this one holds it open (Linux).
    fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }

    /// Opens the inputs another process wrote (`Self::path`).
    fn open(path: &Path) -> Result<Self, String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file =
            std::fs::File::open(path).map_err(|e| format!("inputs {}: {e}", path.display()))?;
        let end = file
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("inputs: {e}"))?;
        let mut spans = Vec::new();
        let mut at = 0u64;
        while at < end {
            let mut len = [0u8; 4];
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(&mut len))
                .map_err(|e| format!("inputs: {e}"))?;
            let len = u32::from_le_bytes(len) as usize;
            spans.push((at + 4, len));
            at += 4 + len as u64;
        }
        if at != end {
            return Err(format!("inputs: truncated at byte {end}"));
        }
        Ok(Inputs { file, spans, end })
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        let len = u32::try_from(bytes.len()).map_err(|_| "input message over 4 GiB")?;
        self.file
            .write_all(&len.to_le_bytes())
            .and_then(|_| self.file.write_all(bytes))
            .map_err(|e| format!("writing inputs: {e}"))?;
        self.spans.push((self.end + 4, bytes.len()));
        self.end += 4 + bytes.len() as u64;
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

    /// The bytes of the messages (without their lengths).
    fn message_bytes(&self) -> usize {
        self.spans.iter().map(|&(_, l)| l).sum()
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

/// What one run of a workload needs.
struct Plan<'a> {
    n: usize,
    seed: u64,
    config: &'a Config,
    store: Option<&'a str>,
}

/// `send`: the bytes are produced and handed over (dropped), as a broadcast
/// would; keeping 20 KB per message here would time the kernel zeroing fresh
/// pages rather than the protocol.
fn run_send(plan: &Plan<'_>, messages: &(Vec<String>, Vec<Bytes>)) -> Result<Run, String> {
    let n = plan.n;
    let mut a = participant("bench-a", plan.config, plan.store.map(|s| (s, "send")))?;
    measure(|| {
        let start = Instant::now();
        let mut produced = 0usize;
        for (i, (id, c)) in messages.0.iter().zip(&messages.1).enumerate() {
            a.send(CHANNEL, id, c.clone(), T0 + i as u64)
                .map_err(|e| format!("send: {e}"))?;
            while let Some(t) = a.poll_transmit() {
                produced += usize::from(!t.bytes.is_empty());
            }
        }
        // Timed: the store's background work (a fold in flight).
        a.flush_store().map_err(|e| format!("send: {e}"))?;
        let seconds = start.elapsed().as_secs_f64();
        if produced != n {
            return Err(format!("send produced {produced} messages, expected {n}"));
        }
        let outgoing = a.channel_state(CHANNEL).map_or(0, |s| s.outgoing.len());
        if outgoing != n {
            return Err(format!(
                "expected {n} unacknowledged messages, found {outgoing}"
            ));
        }
        Ok((a, seconds))
    })
}

/// A receive workload: a fresh participant receives every input in `order`.
fn run_receive(
    plan: &Plan<'_>,
    name: &str,
    inputs: &mut Inputs,
    order: &[usize],
) -> Result<Run, String> {
    let n = plan.n;
    if inputs.spans.len() != n {
        return Err(format!(
            "{} input messages, expected {n}",
            inputs.spans.len()
        ));
    }
    let (id, tag) = match name {
        "receive-in-order" => ("bench-b", "recv-in-order"),
        _ => ("bench-c", "recv-random"),
    };
    let mut b = participant(id, plan.config, plan.store.map(|s| (s, tag)))?;
    measure(|| {
        let (delivered, seconds) = receive_all(&mut b, inputs, order)?;
        if delivered != n as u64 {
            return Err(format!("{name}: expected {n} deliveries, got {delivered}"));
        }
        Ok((b, seconds))
    })
}

/// The order a receive workload takes its inputs in.
fn order_of(name: &str, seed: u64, n: usize) -> Vec<usize> {
    if name == "receive-random" {
        random_order(seed, n)
    } else {
        (0..n).collect()
    }
}

/// The hidden `--worker` mode: one run of one workload, its result printed
/// as one JSON line.
fn worker(args: &BenchArgs, name: &str) -> Result<(), String> {
    if !NAMES.contains(&name) {
        return Err(format!("--worker: unknown workload {name:?}"));
    }
    let (config, _) = bench_config(args.n);
    let plan = Plan {
        n: args.n,
        seed: args.seed,
        config: &config,
        store: args.store.as_deref(),
    };
    let run = if name == "send" {
        let messages = messages(plan.seed, plan.n);
        run_send(&plan, &messages)?
    } else {
        let path = args
            .inputs
            .as_deref()
            .ok_or("--worker: a receive workload needs --inputs")?;
        let mut inputs = Inputs::open(path)?;
        let order = order_of(name, plan.seed, plan.n);
        run_receive(&plan, name, &mut inputs, &order)?
    };
    println!("{}", run.to_json(plan.n));
    Ok(())
}

/// Runs one workload once in a fresh process (this program again).
fn spawn_run(args: &BenchArgs, name: &str, inputs: &Inputs) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("bench")
        .args(["--n", &args.n.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--worker", name]);
    if name != "send" {
        cmd.arg("--inputs").arg(inputs.path());
    }
    if let Some(s) = &args.store {
        cmd.args(["--store", s]);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("starting a worker process: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name}: the worker process failed ({}; --in-process runs it here)",
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Value>(text.trim())
        .ok()
        .as_ref()
        .and_then(Run::from_json)
        .ok_or_else(|| format!("{name}: unreadable worker output {:?}", text.trim()))
}

/// Runs the workloads and prints the results.
pub fn run(args: &BenchArgs) -> ExitCode {
    let res = match &args.worker {
        Some(name) => worker(args, name),
        None => bench(args),
    };
    match res {
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
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    if let Some(bad) = args.only.iter().find(|o| !NAMES.contains(&o.as_str())) {
        return Err(format!(
            "unknown workload {bad:?} (expected one of {})",
            NAMES.join(", ")
        ));
    }
    let (config, raised) = bench_config(n);
    let plan = Plan {
        n,
        seed: args.seed,
        config: &config,
        store: args.store.as_deref(),
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);

    // The receivers' inputs: the messages a sender produces (the same
    // participant, inputs and clock as the send workload: the same bytes).
    // Not timed.
    let messages = messages(plan.seed, n);
    let mut inputs = Inputs::create()?;
    let mut last_len = 0;
    {
        let mut a = participant("bench-a", &config, None)?;
        for (i, (id, c)) in messages.0.iter().zip(&messages.1).enumerate() {
            a.send(CHANNEL, id, c.clone(), T0 + i as u64)
                .map_err(|e| format!("send: {e}"))?;
            while let Some(t) = a.poll_transmit() {
                last_len = t.bytes.len();
                inputs.push(&t.bytes)?;
            }
        }
    }
    if inputs.spans.len() != n {
        return Err(format!(
            "send produced {} messages, expected {n}",
            inputs.spans.len()
        ));
    }

    let mut workloads: Vec<Workload> = Vec::new();
    for name in NAMES.into_iter().filter(|w| wanted(w)) {
        let mut runs = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat {
            let run = if !args.in_process {
                spawn_run(args, name, &inputs)?
            } else if name == "send" {
                run_send(&plan, &messages)?
            } else {
                run_receive(&plan, name, &mut inputs, &order_of(name, plan.seed, n))?
            };
            runs.push(run);
        }
        workloads.push(Workload { name, n, runs });
    }

    // The largest peak of the processes that ran workloads (in process:
    // this one's, preparation included).
    let peak_rss = workloads
        .iter()
        .flat_map(|w| w.runs.iter().map(|r| r.peak_rss))
        .max()
        .unwrap_or(0);
    let input_bytes = inputs.message_bytes();
    if args.json {
        let v = json!({
            "n": n,
            "repeat": args.repeat,
            "in_process": args.in_process,
            "workloads": workloads.iter().map(Workload::to_json).collect::<Vec<_>>(),
            "message_bytes": last_len,
            "peak_rss_bytes": peak_rss,
            "input_bytes": input_bytes,
            "caps_raised_to_n": raised,
        });
        println!("{v}");
    } else {
        let how = if args.in_process {
            "in this process"
        } else {
            "each in a fresh process"
        };
        println!(
            "sds bench: N = {n}, 100-byte contents, default config (spec dialect); \
             {} run(s) per workload, {how}",
            args.repeat
        );
        if raised {
            println!(
                "note: N is above a default cap: max_log, max_outgoing, max_incoming, \
                 max_evicted_ids and repair.max_outgoing_entries raised to {n}"
            );
        }
        println!(
            "{:<18} {:>12} {:>14} {:>14} {:>14}",
            "workload", "seconds", "ops/s", "best ops/s", "RSS growth"
        );
        for w in &workloads {
            println!(
                "{:<18} {:>12.4} {:>14.0} {:>14.0} {:>11.1} MB",
                w.name,
                w.seconds(),
                w.ops_per_sec(),
                w.best(),
                w.runs.iter().map(|r| r.rss_growth).max().unwrap_or(0) as f64 / 1e6
            );
        }
        println!("(seconds and ops/s: the median run)");
        println!("steady-state message: {last_len} bytes");
        println!(
            "encoded input messages: {:.1} MB (kept in a temporary file, not in memory)",
            input_bytes as f64 / 1e6
        );
        println!("peak RSS (VmHWM): {:.1} MB", peak_rss as f64 / 1e6);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receivers' random order is the one drawn after the ids and
    /// contents from the same generator.
    #[test]
    fn random_order_continues_after_the_messages() {
        let (seed, n) = (7, 50);
        let mut rng = SplitMix(seed);
        let (ids, contents) = messages(seed, n);
        for _ in 0..n * (ID_WORDS + CONTENT_LEN) {
            rng.next();
        }
        let mut expected: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            expected.swap(i, rng.below(i + 1));
        }
        assert_eq!(random_order(seed, n), expected);
        assert_ne!(expected, (0..n).collect::<Vec<_>>());
        assert_eq!(ids.len(), n);
        assert!(ids.iter().all(|i| i.len() == 16 * ID_WORDS));
        assert!(contents.iter().all(|c| c.len() == CONTENT_LEN));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn inputs_written_are_found_again_by_another_opener() {
        let mut w = Inputs::create().unwrap();
        let msgs: [&[u8]; 3] = [b"one", b"", b"three"];
        for m in msgs {
            w.push(m).unwrap();
        }
        let mut r = Inputs::open(&w.path()).unwrap();
        assert_eq!(r.spans, w.spans);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(&r.read(i).unwrap()[..], *m);
        }
        assert_eq!(r.message_bytes(), 8);
    }

    #[test]
    fn a_run_survives_its_json_line() {
        let run = Run {
            seconds: 0.25,
            close_seconds: 0.5,
            rss_growth: 1 << 20,
            minor_faults: 12,
            peak_rss: 3 << 20,
        };
        assert_eq!(Run::from_json(&run.to_json(10)), Some(run));
        assert_eq!(Run::from_json(&json!({"seconds": 1.0})), None);
    }
}
