//! The network model: per-link latency with jitter, independent or bursty
//! (Gilbert-Elliott) loss, duplication and scheduled partitions.

use crate::rng::{hash_words, SimRng};
use crate::scenario::{ms, parse_ranges, LossModel, Scenario, ScenarioError};

/// What happens to one transmission on one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Arrives after the first latency, and (if duplicated) again after the second.
    Arrives(u64, Option<u64>),
    /// Lost; it would have arrived after this latency.
    Lost(u64),
    /// The receiver is in another partition; it would have arrived after this latency.
    Partitioned(u64),
}

struct ActivePartition {
    start: u64,
    end: u64,
    group: Vec<u16>,
}

/// Link-level behaviour, driven by its own random stream.
pub struct Network {
    seed: u64,
    lat_min: u64,
    lat_span: u64,
    jitter: u64,
    model: LossModel,
    loss: f64,
    ge: crate::scenario::GilbertElliott,
    loss_start: u64,
    loss_end: u64,
    duplicate: f64,
    dup_end: u64,
    /// Gilbert-Elliott state per receiver: `true` = bad.
    bad: Vec<bool>,
    partitions: Vec<ActivePartition>,
    rng: SimRng,
}

impl Network {
    /// The network of a scenario.
    pub fn new(s: &Scenario) -> Result<Network, ScenarioError> {
        let n = &s.network;
        let mut partitions = Vec::new();
        for (i, p) in s.partitions.iter().enumerate() {
            let implicit = p.groups.len() as u16;
            let mut group = vec![implicit; s.participants];
            for (g, spec) in p.groups.iter().enumerate() {
                for idx in parse_ranges(spec, s.participants, &format!("partitions[{i}].groups"))? {
                    group[idx] = g as u16;
                }
            }
            partitions.push(ActivePartition {
                start: ms(p.start_s),
                end: ms(p.end_s),
                group,
            });
        }
        Ok(Network {
            seed: s.seed,
            lat_min: n.latency_min_ms,
            lat_span: n.latency_max_ms - n.latency_min_ms,
            jitter: n.jitter_ms,
            model: n.loss_model,
            loss: n.loss,
            ge: n.gilbert_elliott.clone(),
            loss_start: ms(n.loss_start_s),
            loss_end: s.loss_end_ms(),
            duplicate: n.duplicate,
            dup_end: s.loss_end_ms(),
            bad: vec![false; s.participants],
            partitions,
            rng: SimRng::stream(s.seed, 0x6e65_7477),
        })
    }

    /// The fixed base latency of the link `from -> to` (ms).
    pub fn base_latency(&self, from: usize, to: usize) -> u64 {
        if self.lat_span == 0 {
            return self.lat_min;
        }
        let h = hash_words(&[self.seed, 0x006c_6174, from as u64, to as u64]);
        self.lat_min + h % (self.lat_span + 1)
    }

    fn sample_latency(&mut self, from: usize, to: usize) -> u64 {
        self.base_latency(from, to) + self.rng.range_inclusive(0, self.jitter)
    }

    /// Whether `a` and `b` can hear each other at `now`.
    pub fn connected(&self, a: usize, b: usize, now: u64) -> bool {
        self.partitions
            .iter()
            .all(|p| now < p.start || now >= p.end || p.group[a] == p.group[b])
    }

    /// Whether a partition is active at `now`.
    pub fn partitioned(&self, now: u64) -> bool {
        self.partitions
            .iter()
            .any(|p| now >= p.start && now < p.end)
    }

    fn lost(&mut self, to: usize, now: u64) -> bool {
        if now < self.loss_start || now >= self.loss_end {
            return false;
        }
        match self.model {
            LossModel::Bernoulli => self.rng.chance(self.loss),
            LossModel::GilbertElliott => {
                let bad = self.bad[to];
                let flip = if bad {
                    self.ge.p_bad_to_good
                } else {
                    self.ge.p_good_to_bad
                };
                let bad = if self.rng.chance(flip) { !bad } else { bad };
                self.bad[to] = bad;
                self.rng.chance(if bad {
                    self.ge.loss_bad
                } else {
                    self.ge.loss_good
                })
            }
        }
    }

    /// Decides the fate of one transmission sent at `now` on `from -> to`.
    pub fn transmit(&mut self, from: usize, to: usize, now: u64) -> LinkOutcome {
        let latency = self.sample_latency(from, to);
        if !self.connected(from, to, now) {
            return LinkOutcome::Partitioned(latency);
        }
        if self.lost(to, now) {
            return LinkOutcome::Lost(latency);
        }
        let dup = if now < self.dup_end && self.rng.chance(self.duplicate) {
            Some(self.sample_latency(from, to))
        } else {
            None
        };
        LinkOutcome::Arrives(latency, dup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_loss_rate_and_window() {
        let s = Scenario::from_toml(
            "participants = 4\nduration_s = 10\n[network]\nloss = 0.25\njitter_ms = 0\nlatency_min_ms = 5\nlatency_max_ms = 5\n",
        )
        .unwrap();
        let mut n = Network::new(&s).unwrap();
        let mut lost = 0;
        for _ in 0..10_000 {
            match n.transmit(0, 1, 100) {
                LinkOutcome::Lost(l) => {
                    assert_eq!(l, 5);
                    lost += 1
                }
                LinkOutcome::Arrives(l, None) => assert_eq!(l, 5),
                other => panic!("{other:?}"),
            }
        }
        assert!((2200..2800).contains(&lost), "{lost}");
        // After the loss window (workload end, 10 s) nothing is lost.
        for _ in 0..1000 {
            assert!(matches!(n.transmit(0, 1, 10_000), LinkOutcome::Arrives(..)));
        }
    }

    #[test]
    fn gilbert_elliott_matches_its_mean_and_is_bursty() {
        let s = Scenario::from_toml(
            "participants = 2\nduration_s = 1000\n[network]\nloss_model = \"gilbert_elliott\"\n",
        )
        .unwrap();
        let mean = s.network.gilbert_elliott.mean_loss();
        let mut n = Network::new(&s).unwrap();
        let total = 200_000;
        let (mut lost, mut runs, mut prev) = (0, 0, false);
        for _ in 0..total {
            let l = matches!(n.transmit(0, 1, 1), LinkOutcome::Lost(_));
            if l {
                lost += 1;
                if !prev {
                    runs += 1;
                }
            }
            prev = l;
        }
        let rate = lost as f64 / total as f64;
        assert!((rate - mean).abs() < 0.01, "rate {rate} mean {mean}");
        // Bursty: mean run length well above the ~1.1 of independent loss.
        assert!(lost as f64 / runs as f64 > 2.0);
    }

    #[test]
    fn partitions_cut_links_between_groups_only() {
        let s = Scenario::from_toml(
            "participants = 6\n[[partitions]]\nstart_s = 1\nend_s = 2\ngroups = [\"0-1\", \"2-3\"]\n",
        )
        .unwrap();
        let n = Network::new(&s).unwrap();
        assert!(n.connected(0, 2, 999));
        assert!(!n.connected(0, 2, 1000));
        assert!(n.connected(0, 1, 1500));
        assert!(n.connected(4, 5, 1500)); // the implicit group
        assert!(!n.connected(4, 0, 1500));
        assert!(n.connected(0, 2, 2000));
    }
}
