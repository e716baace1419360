//! Hash maps keyed by message ids with a fast hasher (foldhash) instead of
//! SipHash. It is seeded randomly per process, so ids chosen by a remote peer
//! cannot be crafted to collide; no protocol output depends on map iteration
//! order, so runs stay deterministic.

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;
