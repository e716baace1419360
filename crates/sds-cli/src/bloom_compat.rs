//! Stand-ins for the `BloomView` methods the bloom module is adding
//! (`count_ones`, `set_bits`, `estimated_items`).
//!
//! TODO(bloom merge): delete this file and `mod bloom_compat` / its `use` in
//! `decode.rs` once the bloom branch lands; the inherent methods then take
//! over (inherent methods win over trait methods of the same name, so the
//! call sites in `decode.rs` do not change).

use sds::bloom::BloomView;

/// The pending part of the `BloomView` API.
pub trait BloomViewPending {
    /// Number of set bits.
    fn count_ones(&self) -> u64;
    /// Positions of the set bits, ascending.
    fn set_bits(&self) -> Vec<u64>;
    /// Estimated number of inserted items.
    fn estimated_items(&self) -> f64;
}

impl BloomViewPending for BloomView<'_> {
    fn count_ones(&self) -> u64 {
        todo!("needs the bloom module (BloomView::count_ones)")
    }
    fn set_bits(&self) -> Vec<u64> {
        todo!("needs the bloom module (BloomView::set_bits)")
    }
    fn estimated_items(&self) -> f64 {
        todo!("needs the bloom module (BloomView::estimated_items)")
    }
}
