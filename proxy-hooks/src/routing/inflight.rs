//! [`InFlight`]: INVITEs this proxy sent to each node since the node's
//! agent last published its call count. `least_calls` adds it to the
//! published count, so a burst arriving between two agent updates spreads
//! instead of herding onto the node that looked idlest.
//!
//! Shared by every request task: counters are atomics under a read lock;
//! the write lock is taken only the first time a node is seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use locus_schema::NodeId;

use crate::routing::snapshot::FarmSnapshot;

#[derive(Debug, Default)]
struct Slot {
    count: AtomicU32,
    /// The agent update the count started after.
    since_ms: AtomicU64,
}

/// Per-node in-flight INVITE counts.
#[derive(Debug, Default)]
pub struct InFlight {
    slots: RwLock<HashMap<NodeId, Slot>>,
}

impl InFlight {
    /// Empty counts.
    pub fn new() -> Self {
        Self::default()
    }

    // A poisoned lock only means a panic elsewhere mid-update; counters
    // are still usable.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<NodeId, Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<NodeId, Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one INVITE sent to `node`.
    pub fn add(&self, node: &NodeId) {
        if let Some(s) = self.read().get(node) {
            s.count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut slots = self.write();
        let s = slots.entry(node.clone()).or_default();
        s.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The agent of `node` published at `updated_ms`: its call count now
    /// includes what we sent before, so start again from zero. An update
    /// not newer than the last one seen changes nothing.
    pub fn reset(&self, node: &NodeId, updated_ms: u64) {
        if let Some(s) = self.read().get(node)
            && s.since_ms.fetch_max(updated_ms, Ordering::Relaxed) < updated_ms
        {
            s.count.store(0, Ordering::Relaxed);
        }
    }

    /// INVITEs sent to `node` since its last agent update.
    pub fn count(&self, node: &NodeId) -> u32 {
        self.read()
            .get(node)
            .map_or(0, |s| s.count.load(Ordering::Relaxed))
    }

    /// Resets every node of a new snapshot with its update time and forgets
    /// nodes it no longer lists. Nodes without an agent never publish a
    /// count: theirs restarts at every snapshot, so it measures the recent
    /// rate rather than growing for ever.
    pub fn sync(&self, snap: &FarmSnapshot) {
        for n in snap.nodes() {
            let at = if n.agent {
                n.updated_ms
            } else {
                snap.built_ms()
            };
            self.reset(&n.id, at);
        }
        let known = self.read().keys().any(|id| snap.find(id).is_none());
        if known {
            self.write().retain(|id, _| snap.find(id).is_some());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn counts_until_a_newer_update() {
        let f = InFlight::new();
        let a = NodeId::new("a").unwrap();
        f.reset(&a, 5); // unknown node: nothing to reset
        assert_eq!(f.count(&a), 0);
        f.add(&a);
        f.add(&a);
        assert_eq!(f.count(&a), 2);
        f.reset(&a, 10);
        assert_eq!(f.count(&a), 0);
        f.add(&a);
        f.reset(&a, 10); // the same update again
        f.reset(&a, 9); // an older one
        assert_eq!(f.count(&a), 1);
    }

    #[test]
    fn concurrent_adds_are_all_counted() {
        let f = std::sync::Arc::new(InFlight::new());
        let a = NodeId::new("a").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (f, a) = (f.clone(), a.clone());
                std::thread::spawn(move || (0..1000).for_each(|_| f.add(&a)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(f.count(&a), 4000);
    }
}
