//! Hash sets with a fast hasher (foldhash) instead of SipHash, for keys
//! other than bare ids (those use [`crate::id::IdMap`]). It is seeded
//! randomly per process, so ids chosen by a remote peer cannot be crafted to
//! collide; no protocol output depends on iteration order, so runs stay
//! deterministic.

pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;
