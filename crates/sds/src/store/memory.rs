//! An in-memory [`Store`], for tests and for applications that persist
//! elsewhere. Clones share the same data, so a test can keep a handle to
//! inspect it or to inject write failures.

use super::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Debug, Default)]
struct ChannelRows {
    meta: Option<ChannelMeta>,
    log: BTreeMap<String, LogRecord>,
    outgoing: BTreeMap<String, OutgoingRecord>,
    incoming: BTreeMap<String, IncomingRecord>,
    repair_out: BTreeMap<String, RepairOutRecord>,
    repair_in: BTreeMap<String, RepairInRecord>,
    remembered: BTreeMap<(Remembered, String), RememberedRecord>,
}

#[derive(Debug, Default)]
struct Inner {
    channels: BTreeMap<String, ChannelRows>,
    fail_writes: usize,
    applied: usize,
    rows: usize,
}

/// An in-memory store (see the [module docs](super) for the contract).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave rows half-applied
        // (apply mutates only after validation), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An independent copy of the data (clones share it).
    pub fn deep_copy(&self) -> MemoryStore {
        let copy = MemoryStore::new();
        copy.lock().channels = self.lock().channels.clone();
        copy
    }

    /// A store holding these snapshots (as [`Store::load`] returns them):
    /// for a store that keeps a base state elsewhere and replays change sets
    /// on it with the reference semantics of [`Store::apply`].
    pub fn from_snapshots(snaps: Vec<ChannelSnapshot>) -> MemoryStore {
        fn keyed<V>(rows: Vec<V>, key: impl Fn(&V) -> String) -> BTreeMap<String, V> {
            rows.into_iter().map(|r| (key(&r), r)).collect()
        }
        let store = MemoryStore::new();
        store.lock().channels = snaps
            .into_iter()
            .map(|s| {
                let rows = ChannelRows {
                    meta: s.meta,
                    log: keyed(s.log, |r| r.id.clone()),
                    outgoing: keyed(s.outgoing, |r| r.id.clone()),
                    incoming: keyed(s.incoming, |r| r.id.clone()),
                    repair_out: keyed(s.repair_out, |r| r.id.clone()),
                    repair_in: keyed(s.repair_in, |r| r.id.clone()),
                    remembered: s
                        .remembered
                        .into_iter()
                        .map(|r| ((r.kind, r.id.clone()), r))
                        .collect(),
                };
                (s.channel, rows)
            })
            .collect();
        store
    }

    /// Makes the next `n` calls to `apply` fail (fault injection).
    pub fn fail_next_writes(&self, n: usize) {
        self.lock().fail_writes = n;
    }

    /// Successful `apply` calls so far.
    pub fn applied(&self) -> usize {
        self.lock().applied
    }

    /// Rows written or deleted by successful `apply` calls so far.
    pub fn rows_written(&self) -> usize {
        self.lock().rows
    }
}

fn put<K: Ord, V>(map: &mut BTreeMap<K, V>, rows: &[V], key: impl Fn(&V) -> K)
where
    V: Clone,
{
    for r in rows {
        map.insert(key(r), r.clone());
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<ChannelSnapshot>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .channels
            .iter()
            .map(|(name, c)| ChannelSnapshot {
                channel: name.clone(),
                meta: c.meta.clone(),
                log: c.log.values().cloned().collect(),
                outgoing: c.outgoing.values().cloned().collect(),
                incoming: c.incoming.values().cloned().collect(),
                repair_out: c.repair_out.values().cloned().collect(),
                repair_in: c.repair_in.values().cloned().collect(),
                remembered: c.remembered.values().cloned().collect(),
            })
            .collect())
    }

    fn apply(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.fail_writes > 0 {
            inner.fail_writes -= 1;
            return Err(StoreError("injected write failure".into()));
        }
        for ch in &changes.channels {
            let c = inner.channels.entry(ch.channel.clone()).or_default();
            if let Some(m) = &ch.meta {
                c.meta = Some(m.clone());
            }
            put(&mut c.log, &ch.log_upserts, |r| r.id.clone());
            put(&mut c.outgoing, &ch.outgoing_upserts, |r| r.id.clone());
            put(&mut c.incoming, &ch.incoming_upserts, |r| r.id.clone());
            put(&mut c.repair_out, &ch.repair_out_upserts, |r| r.id.clone());
            put(&mut c.repair_in, &ch.repair_in_upserts, |r| r.id.clone());
            put(&mut c.remembered, &ch.remembered_upserts, |r| {
                (r.kind, r.id.clone())
            });
            for id in &ch.log_deletes {
                c.log.remove(id);
            }
            for id in &ch.outgoing_deletes {
                c.outgoing.remove(id);
            }
            for id in &ch.incoming_deletes {
                c.incoming.remove(id);
            }
            for id in &ch.repair_out_deletes {
                c.repair_out.remove(id);
            }
            for id in &ch.repair_in_deletes {
                c.repair_in.remove(id);
            }
            for (k, id) in &ch.remembered_deletes {
                c.remembered.remove(&(*k, id.clone()));
            }
        }
        inner.applied += 1;
        inner.rows += changes
            .channels
            .iter()
            .map(ChannelChanges::rows)
            .sum::<usize>();
        Ok(())
    }

    fn drop_channel(&mut self, channel: &str) -> Result<(), StoreError> {
        self.lock().channels.remove(channel);
        Ok(())
    }
}
