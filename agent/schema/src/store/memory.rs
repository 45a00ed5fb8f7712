//! [`MemStore`]: the [`crate::Store`] in process, with Redis' semantics (a lease
//! that expires the status hash, empty hashes that vanish, `state` kept by
//! status writes). Used by the demo when no redis-server is installed and
//! by unit tests. Time is tokio's, so `tokio::time::pause()` drives leases.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

mod location;

use super::notice::{NOTICE_BUFFER, Notice, NoticeKind};
use super::{
    FarmAdmin, FarmRead, FarmView, LocationStore, MAX_UNREG, NodeStore, NodeView, StoreError,
    UNREG_TTL, lease_ttl, now_ms, status_fields,
};
use crate::Keys;
use crate::binding::Binding;
use crate::change::{NodeChange, NodeImage, Table};
use crate::keys::NodeId;
use crate::lease::ProxyLease;
use crate::types::{NodeState, NodeStatus, UnregRequest};

/// One node's keys.
#[derive(Default)]
struct MemNode {
    /// `{id}:node`; empty means the key does not exist.
    status: BTreeMap<String, String>,
    /// Its lease; `None` means no TTL.
    expires: Option<Instant>,
    /// Non-empty tables only (Redis drops empty hashes).
    tables: BTreeMap<Table, BTreeMap<String, String>>,
}

#[derive(Default)]
struct Farm {
    heartbeats: BTreeMap<NodeId, u64>,
    nodes: BTreeMap<NodeId, MemNode>,
    /// `{id}:unreg` lists with their expiry.
    unregs: BTreeMap<NodeId, (VecDeque<UnregRequest>, Instant)>,
    regs: location::Regs,
    tenants: BTreeMap<String, NodeId>,
    /// `proxy:{id}` leases with their expiry.
    proxies: BTreeMap<String, (ProxyLease, Instant)>,
}

impl Farm {
    /// Drops status hashes whose lease ran out, as Redis would.
    fn expire(&mut self, now: Instant) {
        for node in self.nodes.values_mut() {
            if node.expires.is_some_and(|at| at <= now) {
                node.status.clear();
                node.expires = None;
            }
        }
        self.nodes
            .retain(|_, n| !n.status.is_empty() || !n.tables.is_empty());
        self.unregs.retain(|_, (_, at)| *at > now);
        self.proxies.retain(|_, (_, at)| *at > now);
    }

    fn live(&self, id: &NodeId) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| !n.status.is_empty() && n.expires.is_some())
    }
}

/// In-process store. Clones of the `Arc` share one farm.
pub struct MemStore {
    keys: Keys,
    farm: Mutex<Farm>,
    events: broadcast::Sender<String>,
    dropped: Arc<AtomicU64>,
    /// Wall clock at creation, advanced by tokio time (pausable).
    base_ms: u64,
    base: Instant,
}

impl MemStore {
    /// A new empty store.
    pub fn new(keys: Keys) -> Self {
        let (events, _) = broadcast::channel(NOTICE_BUFFER);
        Self {
            keys,
            farm: Mutex::new(Farm::default()),
            events,
            dropped: Arc::new(AtomicU64::new(0)),
            base_ms: now_ms(),
            base: Instant::now(),
        }
    }

    /// The keys a Redis store with the same prefix would use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Notices dropped because a subscriber fell behind.
    pub fn dropped_notices(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        let since = Instant::now().saturating_duration_since(self.base);
        self.base_ms
            .saturating_add(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// Locks the farm after applying expiries. A poisoned lock only means
    /// another caller panicked mid-write; the maps are still usable.
    fn lock(&self) -> MutexGuard<'_, Farm> {
        let mut farm = crate::util::lock(&self.farm);
        farm.expire(Instant::now());
        farm
    }

    fn publish(&self, notice: &Notice) {
        // No subscribers is not an error.
        let _ = self.events.send(notice.to_json());
    }
}

fn write_status(node: &mut MemNode, status: &NodeStatus) {
    for (k, v) in status_fields(status) {
        node.status.insert(k.to_owned(), v);
    }
}

#[async_trait]
impl NodeStore for MemStore {
    async fn apply(&self, node: &NodeId, change: &NodeChange) -> Result<(), StoreError> {
        if change.is_empty() {
            return Ok(());
        }
        {
            let mut farm = self.lock();
            let n = farm.nodes.entry(node.clone()).or_default();
            for op in &change.ops {
                let table = n.tables.entry(op.table).or_default();
                match &op.value {
                    Some(v) => table.insert(op.field.clone(), v.clone()),
                    None => table.remove(&op.field),
                };
            }
            n.tables.retain(|_, t| !t.is_empty());
            if let Some(status) = &change.status {
                write_status(n, status);
            }
            // Drops the node entry again if only deletes touched it.
            farm.expire(Instant::now());
        }
        self.publish(&Notice::change(node, change));
        Ok(())
    }
    async fn replace(&self, node: &NodeId, image: &NodeImage) -> Result<(), StoreError> {
        {
            let mut farm = self.lock();
            let n = farm.nodes.entry(node.clone()).or_default();
            n.tables = image
                .tables
                .iter()
                .filter(|(_, t)| !t.is_empty())
                .map(|(k, t)| (*k, t.clone()))
                .collect();
            write_status(n, &image.status);
        }
        self.publish(&Notice::whole(node, NoticeKind::Replace));
        Ok(())
    }
    async fn lease(
        &self,
        node: &NodeId,
        status: &NodeStatus,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = self.now_ms();
        let mut farm = self.lock();
        farm.expire(Instant::now());
        let existed = farm.nodes.get(node).is_some_and(|n| !n.status.is_empty());
        let n = farm.nodes.entry(node.clone()).or_default();
        write_status(n, status);
        n.expires = Some(Instant::now() + lease_ttl(ttl));
        farm.heartbeats.insert(node.clone(), now_ms);
        Ok(existed)
    }
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError> {
        let farm = self.lock();
        let word = farm.nodes.get(node).and_then(|n| n.status.get("state"));
        Ok(word.and_then(|w| NodeState::parse(w)).unwrap_or_default())
    }
    async fn take_unregisters(
        &self,
        node: &NodeId,
        max: usize,
    ) -> Result<Vec<UnregRequest>, StoreError> {
        let mut farm = self.lock();
        let Some((list, _)) = farm.unregs.get_mut(node) else {
            return Ok(Vec::new());
        };
        let n = max.min(list.len());
        let taken: Vec<UnregRequest> = list.drain(..n).collect();
        if list.is_empty() {
            farm.unregs.remove(node);
        }
        Ok(taken)
    }
}

#[async_trait]
impl LocationStore for MemStore {
    async fn request_unregister(
        &self,
        node: &NodeId,
        req: &UnregRequest,
    ) -> Result<(), StoreError> {
        let mut farm = self.lock();
        let (list, at) = farm
            .unregs
            .entry(node.clone())
            .or_insert_with(|| (VecDeque::new(), Instant::now()));
        list.push_back(req.clone());
        while list.len() > MAX_UNREG {
            list.pop_front();
        }
        *at = Instant::now() + UNREG_TTL;
        Ok(())
    }
    async fn put_binding(
        &self,
        domain: &str,
        user: &str,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        let (key, now) = (self.keys.reg(domain, user), self.now_ms());
        self.lock().regs.put(key, binding, now);
        Ok(())
    }
    async fn remove_binding(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
    ) -> Result<(), StoreError> {
        let (key, now) = (self.keys.reg(domain, user), self.now_ms());
        self.lock().regs.remove(&key, contact, now);
        Ok(())
    }
    async fn remove_bindings(&self, domain: &str, user: &str) -> Result<(), StoreError> {
        self.lock().regs.remove_all(&self.keys.reg(domain, user));
        Ok(())
    }
    async fn bindings(&self, domain: &str, user: &str) -> Result<Vec<Binding>, StoreError> {
        let (key, now) = (self.keys.reg(domain, user), self.now_ms());
        Ok(self.lock().regs.get(&key, now))
    }
    async fn all_bindings(
        &self,
        max_users: usize,
    ) -> Result<Vec<(String, String, Binding)>, StoreError> {
        let head = format!("{}reg:", self.keys.prefix());
        let now = self.now_ms();
        Ok(self.lock().regs.all(&head, max_users, now))
    }
    async fn claim_proxy(
        &self,
        lease: &ProxyLease,
        ttl: Duration,
    ) -> Result<Option<ProxyLease>, StoreError> {
        let mut farm = self.lock();
        let now = Instant::now();
        farm.expire(now);
        if let Some((held, _)) = farm.proxies.get(&lease.id)
            && held.instance != lease.instance
        {
            return Ok(Some(held.clone()));
        }
        farm.proxies
            .insert(lease.id.clone(), (lease.clone(), now + ttl));
        Ok(None)
    }
    async fn release_proxy(&self, id: &str, instance: &str) -> Result<(), StoreError> {
        let mut farm = self.lock();
        if farm
            .proxies
            .get(id)
            .is_some_and(|(l, _)| l.instance == instance)
        {
            farm.proxies.remove(id);
        }
        Ok(())
    }
    async fn proxies(&self) -> Result<Vec<ProxyLease>, StoreError> {
        let mut farm = self.lock();
        farm.expire(Instant::now());
        Ok(farm.proxies.values().map(|(l, _)| l.clone()).collect())
    }
}

#[async_trait]
impl FarmRead for MemStore {
    async fn read_farm(&self) -> Result<FarmView, StoreError> {
        let farm = self.lock();
        let mut view = FarmView::default();
        for (id, hb) in &farm.heartbeats {
            let mut image = NodeImage::default();
            if let Some(n) = farm.nodes.get(id) {
                image.status =
                    NodeStatus::from_fields(n.status.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                image.tables = n.tables.clone();
            }
            let node = NodeView {
                id: Some(id.clone()),
                image,
                heartbeat_ms: *hb,
                live: farm.live(id),
            };
            view.nodes.insert(id.clone(), node);
        }
        view.tenants = farm.tenants.clone();
        Ok(view)
    }
    async fn subscribe(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        let mut from = self.events.subscribe();
        let (tx, rx) = mpsc::channel(NOTICE_BUFFER);
        let dropped = self.dropped.clone();
        tokio::spawn(async move {
            loop {
                let notice = tokio::select! {
                    () = tx.closed() => break,
                    r = from.recv() => r,
                };
                match notice {
                    Ok(n) => {
                        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(n) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        dropped.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(rx)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl FarmAdmin for MemStore {
    async fn set_node_state(&self, node: &NodeId, state: NodeState) -> Result<(), StoreError> {
        {
            let mut farm = self.lock();
            let n = farm.nodes.entry(node.clone()).or_default();
            n.status.insert("state".into(), state.as_str().into());
        }
        self.publish(&Notice::state(node));
        Ok(())
    }
    async fn set_tenant(&self, domain: &str, node: Option<&NodeId>) -> Result<(), StoreError> {
        let domain = domain.to_lowercase();
        let mut farm = self.lock();
        match node {
            Some(n) => farm.tenants.insert(domain, n.clone()),
            None => farm.tenants.remove(&domain),
        };
        Ok(())
    }
    async fn delete_node(&self, node: &NodeId) -> Result<bool, StoreError> {
        let existed = {
            let mut farm = self.lock();
            let keys = farm.nodes.remove(node).is_some();
            let unregs = farm.unregs.remove(node).is_some();
            farm.heartbeats.remove(node).is_some() || keys || unregs
        };
        self.publish(&Notice::whole(node, NoticeKind::Delete));
        Ok(existed)
    }
    async fn reap_expired(&self, grace: Duration) -> Result<Vec<NodeId>, StoreError> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let cutoff = self.now_ms().saturating_sub(grace_ms);
        let reaped: Vec<NodeId> = {
            let mut farm = self.lock();
            let dead: Vec<NodeId> = farm
                .heartbeats
                .iter()
                .filter(|(id, hb)| **hb < cutoff && !farm.live(id))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &dead {
                farm.nodes.remove(id);
                farm.unregs.remove(id);
                farm.heartbeats.remove(id);
            }
            dead
        };
        for id in &reaped {
            tracing::info!(node.id = %id, "reaped expired node");
            self.publish(&Notice::whole(id, NoticeKind::Delete));
        }
        Ok(reaped)
    }
}
