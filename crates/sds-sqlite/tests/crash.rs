//! Crash tests: a child process (this test binary, re-executed with an
//! environment variable) drives a participant on SQLite through a
//! deterministic workload and is killed with SIGKILL at random points, many
//! times. After every kill the database must open, and everything the child
//! reported as committed must still be there; at the end the crashed
//! participant and its peer converge.
//!
//! The child runs the workload's steps from `FROM` on and, after each step
//! whose operation returned (its change set committed inside the call),
//! writes one line to stdout: `@ok STEP D=ids S=ids M=ids R=ids` (delivered,
//! sent, reported missing, received). The parent reads the lines, kills the
//! child after a random number of them plus a random delay (so the kill lands
//! anywhere, including inside a transaction), and restarts it from the step
//! after the last reported one; a step that committed but was not reported is
//! redone, which the workload tolerates (a duplicate send or receive).

use bytes::Bytes;
use sds::{Config, Event, Participant, RepairConfig, TransmitReason};
use sds_sqlite::{open_participant, open_participant_with, Options, SqliteStore};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENV_DB: &str = "SDS_SQLITE_CRASH_CHILD_DB";
const ENV_FROM: &str = "SDS_SQLITE_CRASH_CHILD_FROM";
const T0: u64 = 1_700_000_000_000;
const CH: &str = "chat";
const BOB_MESSAGES: usize = 60;

fn config() -> Config {
    Config {
        seed: 7,
        // Nothing is given up during the test: every unacknowledged message
        // stays in the outgoing buffer, every missing one stays requested.
        max_resend_attempts: 100_000,
        repair: RepairConfig {
            max_request_attempts: 100_000,
            ..RepairConfig::default()
        },
        ..Config::default()
    }
}

#[derive(Clone, Debug)]
enum Step {
    Send(String),
    Receive(String, Bytes),
    Timeout,
}

/// Bob's messages are withheld from Alice during the crash phase when `k % 7 == 3`.
fn withheld(k: usize) -> bool {
    k % 7 == 3
}

/// Bob (the scripted peer) and his messages, in sending order.
fn bob() -> (Participant, Vec<Bytes>) {
    let mut bob = Participant::new("bob", config()).unwrap();
    let mut out = Vec::new();
    for k in 0..BOB_MESSAGES {
        let content = format!("bob says {k}").into_bytes();
        bob.send(CH, &format!("b{k}"), content, T0 + k as u64 * 100)
            .unwrap();
        while let Some(t) = bob.poll_transmit() {
            out.push(t.bytes);
        }
        while bob.poll_event().is_some() {}
    }
    (bob, out)
}

/// The workload: (virtual time, step).
fn workload() -> Vec<(u64, Step)> {
    let (_, msgs) = bob();
    let mut v = Vec::new();
    for (k, m) in msgs.into_iter().enumerate() {
        if k % 2 == 0 {
            v.push(Step::Send(format!("a{k}")));
        }
        if !withheld(k) {
            v.push(Step::Receive(format!("b{k}"), m));
        }
        if k % 3 == 2 {
            v.push(Step::Timeout);
        }
    }
    v.into_iter()
        .enumerate()
        .map(|(i, s)| (T0 + 10_000 + i as u64 * 1_500, s))
        .collect()
}

fn ids(v: &BTreeSet<String>) -> String {
    v.iter().cloned().collect::<Vec<_>>().join(",")
}

/// The child's entry point: a no-op unless run by `crash_kill_restart`.
#[test]
fn crash_child() {
    let Some(db) = std::env::var_os(ENV_DB) else {
        return;
    };
    let from: usize = std::env::var(ENV_FROM).unwrap().parse().unwrap();
    // The journal is folded every 5 change sets, so kills also land inside folds.
    let options = Options {
        journal_fold_rows: 5,
        ..Options::default()
    };
    let mut p = open_participant_with(PathBuf::from(db), &options, "alice", config()).unwrap();
    let out = std::io::stdout();
    for (i, (now, step)) in workload().into_iter().enumerate().skip(from) {
        let mut d = BTreeSet::new();
        let mut s = BTreeSet::new();
        let mut m = BTreeSet::new();
        let mut r = BTreeSet::new();
        match &step {
            Step::Send(id) => match p.send(CH, id, format!("alice says {id}").into_bytes(), now) {
                // Already sent in a step that committed but was not reported.
                Ok(()) | Err(sds::SendError::DuplicateMessageId(_)) => {
                    s = BTreeSet::from([id.clone()]);
                }
                Err(e) => panic!("send {id}: {e}"),
            },
            Step::Receive(id, bytes) => {
                p.receive(bytes.clone(), None, now).unwrap();
                r = BTreeSet::from([id.clone()]);
            }
            Step::Timeout => p.handle_timeout(now),
        }
        while let Some(e) = p.poll_event() {
            match e {
                Event::Delivered { message_id, .. } => {
                    d.insert(message_id);
                }
                Event::MissingDependencies { missing, .. } => {
                    m.extend(missing.into_iter().map(|h| h.message_id));
                }
                Event::PersistenceFailed { error } => panic!("write failed: {error}"),
                _ => {}
            }
        }
        while p.poll_transmit().is_some() {}
        let line = format!(
            "@ok {i} D={} S={} M={} R={}\n",
            ids(&d),
            ids(&s),
            ids(&m),
            ids(&r)
        );
        let mut o = out.lock();
        o.write_all(line.as_bytes()).unwrap();
        o.flush().unwrap();
    }
    let mut o = out.lock();
    o.write_all(b"@end\n").unwrap();
    o.flush().unwrap();
}

/// What the child reported as committed.
#[derive(Default, Debug)]
struct Reported {
    next: usize,
    delivered: BTreeSet<String>,
    sent: BTreeSet<String>,
    missing: BTreeSet<String>,
    received: BTreeSet<String>,
    ended: bool,
}

impl Reported {
    fn line(&mut self, line: &str) {
        // libtest may print "test crash_child ... " in front of the first line.
        let line = match (line.find("@ok "), line.find("@end")) {
            (Some(i), _) | (None, Some(i)) => &line[i..],
            _ => return,
        };
        if line == "@end" {
            self.ended = true;
            return;
        }
        let Some(rest) = line.strip_prefix("@ok ") else {
            return; // the test harness's own output
        };
        let mut parts = rest.split(' ');
        let step: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(step, self.next, "steps are reported in order");
        self.next = step + 1;
        for part in parts {
            let (k, v) = part.split_once('=').unwrap();
            let set = match k {
                "D" => &mut self.delivered,
                "S" => &mut self.sent,
                "M" => &mut self.missing,
                "R" => &mut self.received,
                _ => panic!("bad line {line}"),
            };
            set.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from));
        }
    }
}

/// xorshift64* for kill points.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Runs the child from `rep.next`; kills it after `kill_after` lines (and a
/// random delay of up to 0.4 ms), or lets it finish when `None`. Returns whether it was killed.
fn run_child(db: &Path, rep: &mut Reported, kill_after: Option<(u64, u64)>) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV_DB, db)
        .env(ENV_FROM, rep.next.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    let mut killed = false;
    while let Some(Ok(line)) = lines.next() {
        rep.line(&line);
        if line.contains("@ok ") {
            seen += 1;
        }
        if let Some((n, delay_us)) = kill_after {
            if seen == n {
                std::thread::sleep(Duration::from_micros(delay_us));
                child.kill().unwrap(); // SIGKILL
                killed = true;
                break;
            }
        }
    }
    // Lines written before the kill are reports of committed steps.
    for line in lines.map_while(Result::ok) {
        rep.line(&line);
    }
    let status = child.wait().unwrap();
    if !killed {
        assert!(status.success(), "child failed: {status}");
    }
    killed
}

/// Opens a copy of the database (so checking does not change it) and checks
/// the invariants. Returns the numbers of resends and of repair requests seen.
fn check(db: &Path, rep: &Reported, now: u64) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(db, &copy).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).unwrap();
    }
    // The append files hold the change sets not folded yet (the second
    // while the first is folded in the background).
    for suffix in ["-sds-journal", "-sds-journal-2"] {
        let journal = PathBuf::from(format!("{}{suffix}", db.display()));
        if journal.exists() {
            std::fs::copy(&journal, format!("{}{suffix}", copy.display())).unwrap();
        }
    }
    SqliteStore::open(&copy).expect("the database opens after a kill");
    let mut p = open_participant(&copy, "alice", config()).expect("the participant opens");
    let Some(state) = p.channel_state(CH) else {
        assert!(rep.sent.is_empty() && rep.delivered.is_empty(), "{rep:?}");
        return (0, 0);
    };
    let log: BTreeSet<_> = state.log.iter().cloned().collect();
    let outgoing: BTreeSet<_> = state.outgoing.iter().cloned().collect();
    let requested: BTreeSet<_> = state.repair_requests.iter().cloned().collect();
    // Nothing delivered or sent in a committed step is lost.
    let lost: Vec<_> = rep
        .delivered
        .union(&rep.sent)
        .filter(|id| !log.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "committed ids missing from the log: {lost:?}"
    );
    // No acknowledgements can happen (Bob never hears from Alice): every
    // sent message is still unacknowledged.
    let gone: Vec<_> = rep.sent.difference(&outgoing).collect();
    assert!(
        gone.is_empty(),
        "sent ids missing from the outgoing buffer: {gone:?}"
    );
    // Every dependency reported missing and not received since is still requested.
    let still_missing: BTreeSet<_> = rep
        .missing
        .iter()
        .filter(|id| !rep.received.contains(*id) && !log.contains(*id))
        .cloned()
        .collect();
    let unrequested: Vec<_> = still_missing.difference(&requested).collect();
    assert!(
        unrequested.is_empty(),
        "missing ids no longer requested: {unrequested:?}"
    );
    // Time passes: every unacknowledged message is resent after its deadline,
    // and the repair requests go out.
    let mut resent = BTreeSet::new();
    let mut carried = BTreeSet::new();
    let until = now + 130_000;
    while let Some(t) = p.poll_timeout().filter(|t| *t <= until) {
        p.handle_timeout(t);
        while let Some(tx) = p.poll_transmit() {
            if tx.reason == TransmitReason::Resend {
                resent.insert(tx.message_id.clone());
            }
            carried.extend(tx.repair_request);
        }
        while p.poll_event().is_some() {}
    }
    let unsent: Vec<_> = outgoing.difference(&resent).collect();
    assert!(
        unsent.is_empty(),
        "not resent after the deadline: {unsent:?}"
    );
    let never: Vec<_> = still_missing.difference(&carried).collect();
    assert!(
        never.is_empty(),
        "repair never requested after restart: {never:?}"
    );
    (resent.len(), still_missing.len())
}

/// The crashed participant and Bob exchange everything over a lossless
/// network until their logs are equal.
fn converge(db: &Path, rep: &Reported) {
    let mut alice = open_participant(db, "alice", config()).unwrap();
    let (mut bob, _) = bob();
    let mut now = workload().last().unwrap().0;
    for _ in 0..400 {
        now += 1_000;
        let mut to_bob = Vec::new();
        let mut to_alice = Vec::new();
        alice.handle_timeout(now);
        bob.handle_timeout(now);
        while let Some(t) = alice.poll_transmit() {
            to_bob.push(t.bytes);
        }
        while let Some(t) = bob.poll_transmit() {
            to_alice.push(t.bytes);
        }
        for b in to_bob {
            bob.receive(b, None, now).unwrap();
        }
        for b in to_alice {
            alice.receive(b, None, now).unwrap();
        }
        while alice.poll_event().is_some() {}
        while bob.poll_event().is_some() {}
        let a = alice.channel_state(CH).unwrap();
        let b = bob.channel_state(CH).unwrap();
        let (la, lb): (BTreeSet<_>, BTreeSet<_>) =
            (a.log.into_iter().collect(), b.log.into_iter().collect());
        if la == lb && a.incoming.is_empty() && b.incoming.is_empty() {
            let want: BTreeSet<String> = (0..BOB_MESSAGES)
                .map(|k| format!("b{k}"))
                .chain((0..BOB_MESSAGES).step_by(2).map(|k| format!("a{k}")))
                .collect();
            assert_eq!(la, want);
            assert!(rep.sent.is_subset(&la));
            return;
        }
    }
    panic!("no convergence after 400 s of lossless exchange");
}

#[test]
fn crash_kill_restart() {
    let seed = std::env::var("SDS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut rng = Rng(seed);
    let steps = workload();
    let started = Instant::now();
    let (mut runs, mut kills, mut checks, mut resends, mut repairs) = (0, 0, 0, 0, 0);
    let mut scenarios = 0;
    // At least two full scenarios; then more until 100 kills or 15 s.
    while scenarios < 2 || (kills < 100 && started.elapsed() < Duration::from_secs(15)) {
        scenarios += 1;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("alice.db");
        let mut rep = Reported::default();
        loop {
            let late = started.elapsed() > Duration::from_secs(18);
            let kill = (!late).then(|| (1 + rng.below(12), rng.below(400)));
            runs += 1;
            let killed = run_child(&db, &mut rep, kill);
            if killed {
                kills += 1;
            }
            let now = steps[rep.next.saturating_sub(1).min(steps.len() - 1)].0;
            let (r, q) = check(&db, &rep, now);
            resends += r;
            repairs += q;
            checks += 1;
            if rep.ended {
                break;
            }
            assert!(rep.next <= steps.len(), "{rep:?}");
        }
        assert_eq!(rep.next, steps.len());
        converge(&db, &rep);
    }
    eprintln!(
        "crash test (seed {seed}): {scenarios} scenarios of {} steps, {runs} child runs, \
         {kills} SIGKILLs, {checks} invariant checks, {resends} resends and {repairs} \
         outstanding repair requests checked, {:.1} s",
        steps.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 20, "only {kills} kills (seed {seed})");
    assert!(resends > 0 && repairs > 0, "the checks were vacuous");
}
