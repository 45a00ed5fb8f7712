//! [`OwnFlows`]: the bindings this process registered, with the flow each
//! came in on (TCP connection id included, which only this process can
//! use). Rule 7 prefers them to the flow rebuilt from the store, and falls
//! back to them alone when the store does not answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use locus_schema::Binding;

use crate::proxy::Flow;

/// Writes between two sweeps of expired entries (bounds the map).
const SWEEP_EVERY: u32 = 256;

#[derive(Default)]
struct Inner {
    /// (domain, user), lower-cased -> contact -> binding and its flow.
    aors: HashMap<(String, String), BTreeMap<String, (Binding, Flow)>>,
    writes: u32,
}

/// This process's own bindings. A std mutex, held for map operations only.
#[derive(Default)]
pub(crate) struct OwnFlows(Mutex<Inner>);

fn aor(domain: &str, user: &str) -> (String, String) {
    (domain.to_lowercase(), user.to_lowercase())
}

impl OwnFlows {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned map is still a usable map.
        locus_schema::lock(&self.0)
    }

    pub(crate) fn save(&self, domain: &str, user: &str, b: Binding, flow: Flow, now_ms: u64) {
        let mut inner = self.lock();
        inner.writes = inner.writes.wrapping_add(1);
        if inner.writes.is_multiple_of(SWEEP_EVERY) {
            inner.aors.retain(|_, m| {
                m.retain(|_, (b, _)| b.live_at(now_ms));
                !m.is_empty()
            });
        }
        let m = inner.aors.entry(aor(domain, user)).or_default();
        m.insert(b.contact.clone(), (b, flow));
    }

    pub(crate) fn remove(&self, domain: &str, user: &str, contact: &str) {
        let mut inner = self.lock();
        let key = aor(domain, user);
        if let Some(m) = inner.aors.get_mut(&key) {
            m.remove(contact);
            if m.is_empty() {
                inner.aors.remove(&key);
            }
        }
    }

    pub(crate) fn remove_all(&self, domain: &str, user: &str) {
        self.lock().aors.remove(&aor(domain, user));
    }

    /// The flow of one own contact, if still live.
    pub(crate) fn flow(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
        now_ms: u64,
    ) -> Option<Flow> {
        let inner = self.lock();
        let (b, f) = inner.aors.get(&aor(domain, user))?.get(contact)?;
        b.live_at(now_ms).then_some(*f)
    }

    /// Marks own contact `contact` (un)reachable when it is still on
    /// `flow`; the binding as it now is, to write to the store.
    pub(crate) fn mark(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
        flow: &Flow,
        unreachable: bool,
    ) -> Option<Binding> {
        let mut inner = self.lock();
        let (b, f) = inner.aors.get_mut(&aor(domain, user))?.get_mut(contact)?;
        if f != flow {
            return None;
        }
        b.unreachable = unreachable;
        Some(b.clone())
    }

    /// Live own bindings: (all, behind NAT, unreachable).
    pub(crate) fn counts(&self, now_ms: u64) -> (usize, usize, usize) {
        let inner = self.lock();
        let live = inner
            .aors
            .values()
            .flat_map(|m| m.values())
            .filter(|(b, _)| b.live_at(now_ms));
        live.fold((0, 0, 0), |(n, nat, dead), (b, _)| {
            (
                n + 1,
                nat + usize::from(b.nat),
                dead + usize::from(b.unreachable),
            )
        })
    }

    /// Every live own binding of a user, with its flow.
    pub(crate) fn live_with_flows(
        &self,
        domain: &str,
        user: &str,
        now_ms: u64,
    ) -> Vec<(Binding, Flow)> {
        let inner = self.lock();
        inner
            .aors
            .get(&aor(domain, user))
            .map_or_else(Vec::new, |m| {
                m.values()
                    .filter(|(b, _)| b.live_at(now_ms))
                    .cloned()
                    .collect()
            })
    }

    /// Every live own binding of a user.
    pub(crate) fn live(&self, domain: &str, user: &str, now_ms: u64) -> Vec<Binding> {
        let all = self.live_with_flows(domain, user, now_ms);
        all.into_iter().map(|(b, _)| b).collect()
    }
}
