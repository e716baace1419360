//! The threads that run the participants' work of a window.
//!
//! Each thread owns a fixed, contiguous range of participants: the calling
//! thread the first, each helper thread one of the others. A participant is
//! therefore always run by the same thread; the aim is that its state stays
//! in that core's caches and is allocated and freed by one thread (the
//! records it produces are still freed by the thread that replays the
//! window). That aim is not measured: this replaced rayon's work-stealing
//! pool, and a full run of `scenarios/perf.toml` took the same time with
//! either (88.4 s, one instrumented run each, session 9).
//!
//! Windows are short (in `scenarios/perf.toml`, 69 000 windows of 87
//! events on average), so a thread waiting for the next window, or the
//! calling thread waiting for a helper's result, keeps polling for a while
//! (yielding its core between polls, see [`wait`]) before it blocks: a
//! blocked thread costs a wake-up through the kernel. The
//! participants of a range travel to their helper and back by value
//! (boxed, so a range is a vector of pointers).
//!
//! Which thread runs which participant does not change what happens: a
//! participant's events of a window depend only on its own state (see
//! [`crate::peer`]).

use crate::peer::Peer;
use sds::Participant;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting thread waits (yielding its core) before it blocks.
const SPIN: Duration = Duration::from_micros(500);

/// A range of participants and what they need to run their window.
struct Range {
    #[allow(clippy::vec_box)] // moved whole between threads: pointers, not 480-byte values
    parts: Vec<Box<Participant>>,
    peers: Vec<Peer>,
    online: Vec<bool>,
    epoch: u64,
    end: u64,
}

/// Runs the window's events of the participants in `parts` (and the timers
/// they set before `end`).
pub(crate) fn run_range(
    parts: &mut [Box<Participant>],
    peers: &mut [Peer],
    online: &[bool],
    epoch: u64,
    end: u64,
) {
    for ((part, peer), &online) in parts.iter_mut().zip(peers.iter_mut()).zip(online) {
        if peer.has_work() {
            peer.run(part, online, epoch, end);
        }
    }
}

/// Receives from `rx`, yielding the core for up to [`SPIN`] before
/// blocking. `None` if the other side is gone.
///
/// It yields rather than spins: when the machine has fewer free cores than
/// the simulation has threads (another job running), a thread that spins
/// holds the core that the thread it waits for needs. With one busy loop
/// running beside it, the default scenario took 15-17 s on two spinning
/// threads, 4.9-5.1 s yielding (3.1-3.9 s on one thread), and about the
/// same without the busy loop either way (2.2-3.7 s); spinning for the
/// first 20 µs before yielding took 6.2-6.3 s with the busy loop.
fn wait<T>(rx: &Receiver<T>) -> Option<T> {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        std::thread::yield_now();
        spins = spins.wrapping_add(1);
        if spins % 8 == 0 && start.elapsed() > SPIN {
            return rx.recv().ok();
        }
    }
}

struct Helper {
    to: Option<Sender<Range>>,
    from: Receiver<Range>,
    thread: Option<JoinHandle<()>>,
}

/// The calling thread and `threads - 1` helper threads.
pub(crate) struct Workers {
    helpers: Vec<Helper>,
}

impl Workers {
    /// Starts `threads - 1` helper threads (none for 0 or 1).
    pub fn new(threads: usize) -> std::io::Result<Workers> {
        let mut helpers = Vec::new();
        for i in 1..threads {
            let (to, jobs) = channel::<Range>();
            let (results, from) = channel::<Range>();
            let thread = std::thread::Builder::new()
                .name(format!("sds-sim-{i}"))
                .spawn(move || {
                    while let Some(mut r) = wait(&jobs) {
                        run_range(&mut r.parts, &mut r.peers, &r.online, r.epoch, r.end);
                        if results.send(r).is_err() {
                            break;
                        }
                    }
                })?;
            helpers.push(Helper {
                to: Some(to),
                from,
                thread: Some(thread),
            });
        }
        Ok(Workers { helpers })
    }

    /// Threads in all (the calling one included).
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs the window's work of every participant: the first range on the
    /// calling thread, the others on the helpers; returns when all are done.
    ///
    /// # Panics
    ///
    /// If a helper thread died (a participant panicked on it).
    #[allow(clippy::vec_box)] // see `Range::parts`
    pub fn run(
        &mut self,
        parts: &mut Vec<Box<Participant>>,
        peers: &mut Vec<Peer>,
        online: &[bool],
        epoch: u64,
        end: u64,
    ) {
        let n = parts.len();
        let t = self.threads();
        let start = |k: usize| k * n / t;
        // Hand out the ranges from the last: each split takes the tail.
        for (h, helper) in self.helpers.iter().enumerate().rev() {
            let (a, b) = (start(h + 1), start(h + 2));
            let range = Range {
                parts: parts.split_off(a),
                peers: peers.split_off(a),
                online: online[a..b].to_vec(),
                epoch,
                end,
            };
            let sent = helper.to.as_ref().map(|to| to.send(range));
            if !matches!(sent, Some(Ok(()))) {
                panic!("a simulator worker thread is gone");
            }
        }
        let own = parts.len();
        run_range(parts, peers, &online[..own], epoch, end);
        for helper in &self.helpers {
            let Some(mut r) = wait(&helper.from) else {
                panic!("a simulator worker thread panicked");
            };
            parts.append(&mut r.parts);
            peers.append(&mut r.peers);
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &mut self.helpers {
            // Closing the channel ends the helper's loop.
            h.to = None;
        }
        for h in &mut self.helpers {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}
