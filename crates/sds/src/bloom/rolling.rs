//! The per-channel filter that forgets its oldest ids.

use std::collections::VecDeque;

use super::{BloomEncoding, BloomFilter, BloomParams, ItemHash};

/// A per-channel bloom filter with rollover, holding the newest ids.
///
/// - [`BloomEncoding::Nim`] (exactly nim-sds's `RollingBloomFilter`): with the
///   configured capacity `c`, `min = ⌊0.8 c⌋` and `max = ⌊1.2 c⌋`. When more
///   than `max` ids have been added, the filter is rebuilt **sized for `max`**
///   (same error rate) from the newest `min` ids. So the live filter holds
///   between `min` and `max` ids, and after the first rollover its parameters
///   (and serialised size) grow: 10 000 → 12 000 items, m 150 000 → 180 000.
/// - [`BloomEncoding::Spec`]: `@waku/sds` peers assume fixed parameters (they
///   decode our filter with their own m = 150 000), so the parameters never
///   change: when more than `c` ids have been added, the filter is rebuilt with
///   the same parameters from the newest `⌊0.8 c⌋` ids.
///
/// Ids are kept as [`ItemHash`]es (16 bytes each), so a rebuild rehashes nothing.
/// Like nim-sds, inserting does not deduplicate: an id inserted twice counts twice.
#[derive(Clone, Debug)]
pub struct RollingBloom {
    filter: BloomFilter,
    /// Parameters of the filter after a rollover.
    rebuild_params: BloomParams,
    /// Ids kept by a rollover.
    keep: usize,
    /// Rollover happens when more than this many ids are held.
    threshold: usize,
    items: VecDeque<ItemHash>,
}

/// `⌊c · num / den⌋`, exact, saturating at `usize::MAX`.
fn scale(c: u64, num: u128, den: u128) -> usize {
    usize::try_from(u128::from(c) * num / den).unwrap_or(usize::MAX)
}

impl RollingBloom {
    /// An empty rolling filter with the configured parameters (normally from
    /// [`BloomParams::new`]).
    pub fn new(encoding: BloomEncoding, params: BloomParams) -> Self {
        // ⌊0.8 c⌋ and ⌊1.2 c⌋ computed exactly; the f64 products Nim uses agree
        // (their rounding error is below half an ulp of any integer result).
        let keep = scale(params.capacity, 4, 5);
        let (threshold, rebuild_params) = match encoding {
            BloomEncoding::Nim => {
                let max = scale(params.capacity, 6, 5);
                let rebuilt = BloomParams::new(max as u64, params.error_rate).unwrap_or(params);
                (max, rebuilt)
            }
            BloomEncoding::Spec => (
                usize::try_from(params.capacity).unwrap_or(usize::MAX),
                params,
            ),
        };
        RollingBloom {
            filter: BloomFilter::new(encoding, params),
            rebuild_params,
            keep,
            threshold,
            items: VecDeque::new(),
        }
    }

    /// The encoding.
    pub fn encoding(&self) -> BloomEncoding {
        self.filter.encoding()
    }

    /// Adds a pre-hashed id (hashed with this filter's encoding), rolling over
    /// when more than the maximum are held.
    pub fn insert(&mut self, item: &ItemHash) {
        self.filter.insert(item);
        self.items.push_back(*item);
        if self.items.len() > self.threshold {
            self.roll();
        }
    }

    /// Hashes `id` with this filter's encoding and adds it.
    pub fn insert_id(&mut self, id: &[u8]) {
        self.insert(&ItemHash::new(self.encoding(), id));
    }

    fn roll(&mut self) {
        let drop = self.items.len().saturating_sub(self.keep);
        self.items.drain(..drop);
        if *self.filter.params() == self.rebuild_params {
            self.filter.clear();
        } else {
            self.filter = BloomFilter::new(self.filter.encoding(), self.rebuild_params);
        }
        for item in &self.items {
            self.filter.insert(item);
        }
    }

    /// Looks up a pre-hashed id.
    pub fn contains(&self, item: &ItemHash) -> bool {
        self.filter.contains(item)
    }

    /// Hashes `id` with this filter's encoding and looks it up.
    pub fn contains_id(&self, id: &[u8]) -> bool {
        self.filter.contains_id(id)
    }

    /// The live filter (what goes on the wire).
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// Number of ids held (inserted since the last rollover, plus those it kept).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Ids kept by a rollover (`⌊0.8 c⌋`).
    pub fn min_items(&self) -> usize {
        self.keep
    }

    /// Most ids held before a rollover (`⌊1.2 c⌋` for Nim, `c` for Spec).
    pub fn max_items(&self) -> usize {
        self.threshold
    }

    /// Forgets every id (the parameters stay as they are).
    pub fn clear(&mut self) {
        self.items.clear();
        self.filter.clear();
    }
}
