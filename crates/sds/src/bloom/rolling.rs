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
    /// How many ids at the back of `items` are not set in `filter` yet (see
    /// [`Self::defer`]).
    deferred: usize,
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
            deferred: 0,
        }
    }

    /// The encoding.
    pub fn encoding(&self) -> BloomEncoding {
        self.filter.encoding()
    }

    /// Adds a pre-hashed id (hashed with this filter's encoding), rolling over
    /// when more than the maximum are held.
    pub fn insert(&mut self, item: &ItemHash) {
        self.flush();
        self.filter.insert(item);
        self.items.push_back(*item);
        if self.items.len() > self.threshold {
            self.roll();
        }
    }

    /// Adds a pre-hashed id like [`Self::insert`], but sets its bits only at
    /// the next [`Self::flush`] (or rollover): until then [`Self::contains`]
    /// and [`Self::filter`] do not show it.
    ///
    /// A participant adds an id per message received and reads its filter
    /// only when it sends. Setting the bits of many ids at once touches each
    /// part of the filter once rather than once per id: with many
    /// participants in one process (the simulator), the filter is no longer
    /// in the cache by the next receive, and setting bits one id at a time
    /// was an eighth of the simulator's cache misses.
    pub fn defer(&mut self, item: &ItemHash) {
        self.items.push_back(*item);
        self.deferred += 1;
        if self.items.len() > self.threshold {
            self.roll();
        }
    }

    /// Sets the bits of the ids added with [`Self::defer`].
    pub fn flush(&mut self) {
        if self.deferred == 0 {
            return;
        }
        let from = self.items.len() - self.deferred;
        for item in self.items.range(from..) {
            self.filter.insert(item);
        }
        self.deferred = 0;
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
        self.deferred = 0;
    }

    /// Looks up a pre-hashed id (ids added with [`Self::defer`] count once
    /// flushed).
    pub fn contains(&self, item: &ItemHash) -> bool {
        self.filter.contains(item)
    }

    /// Hashes `id` with this filter's encoding and looks it up.
    pub fn contains_id(&self, id: &[u8]) -> bool {
        self.filter.contains_id(id)
    }

    /// The live filter (what goes on the wire; ids added with
    /// [`Self::defer`] are in it once flushed).
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
        self.deferred = 0;
        self.filter.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deferred inserts, flushed at any point, give the filter eager ones give,
    /// across rollovers and in both encodings.
    #[test]
    fn deferred_inserts_match_eager_ones() {
        for encoding in [BloomEncoding::Spec, BloomEncoding::Nim] {
            let params = BloomParams::new(40, 0.01).unwrap();
            let mut eager = RollingBloom::new(encoding, params);
            let mut lazy = RollingBloom::new(encoding, params);
            let mut flushes = 0;
            for i in 0..500u32 {
                let item = ItemHash::new(encoding, format!("{i:064x}").as_bytes());
                eager.insert(&item);
                if i % 7 == 3 {
                    // An eager insert among deferred ones flushes them first.
                    lazy.insert(&item);
                } else {
                    lazy.defer(&item);
                }
                assert_eq!(lazy.len(), eager.len());
                if i % 13 == 0 || i % 29 == 5 {
                    lazy.flush();
                    flushes += 1;
                    assert_eq!(lazy.filter(), eager.filter(), "{encoding:?} after {i}");
                    assert!(lazy.contains(&item));
                }
            }
            lazy.flush();
            assert_eq!(lazy.filter(), eager.filter());
            assert!(flushes > 30);
            // Deferred ids are invisible until flushed.
            let item = ItemHash::new(encoding, b"late");
            lazy.defer(&item);
            assert_eq!(lazy.filter(), eager.filter());
            lazy.flush();
            assert!(lazy.contains(&item));
            lazy.defer(&item);
            lazy.clear();
            lazy.flush();
            assert!(lazy.is_empty());
        }
    }
}
