//! [`RedisStore`]: the [`crate::Store`] on Redis, Redis over TLS or Redis behind
//! Sentinel. Writes are built in `write`, reads in `read`, the janitor
//! sweep in `janitor` and subscriptions in `events`; the connection
//! (reconnect, timeouts, Sentinel lookup) lives in `store::link`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::link::Link;
use super::{
    FarmAdmin, FarmRead, FarmView, LocationStore, MAX_UNREG, NodeStore, StoreError, UNREG_TTL,
    lease_ttl, now_ms, parse_unregs,
};
use crate::binding::Binding;
use crate::change::{NodeChange, NodeImage};
use crate::keys::{Keys, NodeId};
use crate::lease::ProxyLease;
use crate::types::{NodeState, NodeStatus, UnregRequest};

mod events;
mod janitor;
mod location;
mod read;
mod write;

/// Redis-backed store. Cheap to share behind an `Arc`; every call is
/// bounded by the timeout given to [`RedisStore::connect`].
pub struct RedisStore {
    link: Link,
    keys: Keys,
    dropped: Arc<AtomicU64>,
}

impl RedisStore {
    /// Connects to `url`: `redis://[[user]:pass@]host:port/db`,
    /// `rediss://...` (TLS; `#insecure` skips certificate checks),
    /// `redis+sentinel://[[user]:pass@]host:port[,host:port...]/master[/db]`
    /// (see `docs/redis-schema.md`). Fails now on a bad URL, an unreachable
    /// server or a wrong password.
    pub async fn connect(url: &str, keys: Keys, timeout: Duration) -> Result<Self, StoreError> {
        let link = Link::open(url, timeout).await?;
        tracing::info!(peer = %link.endpoint(), prefix = keys.prefix(), "redis store ready");
        Ok(Self {
            link,
            keys,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The keys this store writes.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Notices dropped because a subscriber's channel was full.
    pub fn dropped_notices(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    async fn exec(&self, pipe: redis::Pipeline) -> Result<(), StoreError> {
        self.link
            .run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }
}

#[async_trait]
impl NodeStore for RedisStore {
    async fn apply(&self, node: &NodeId, change: &NodeChange) -> Result<(), StoreError> {
        if change.is_empty() {
            return Ok(());
        }
        self.exec(write::apply(&self.keys, node, change)).await
    }
    async fn replace(&self, node: &NodeId, image: &NodeImage) -> Result<(), StoreError> {
        self.exec(write::replace(&self.keys, node, image)).await
    }
    async fn lease(
        &self,
        node: &NodeId,
        status: &NodeStatus,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(lease_ttl(ttl).as_millis()).unwrap_or(u64::MAX);
        let pipe = write::lease(&self.keys, node, status, ttl_ms);
        let nodes = self.keys.nodes();
        let id = node.as_str();
        self.link
            .run(|mut c| async move {
                let (existed,): (i64,) = pipe.query_async(&mut c).await?;
                redis::cmd("ZADD")
                    .arg(nodes)
                    .arg(now_ms())
                    .arg(id)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(existed > 0)
            })
            .await
    }
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError> {
        let key = self.keys.node(node);
        let raw: Option<String> = self
            .link
            .run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg("state")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(match raw.as_deref() {
            None => NodeState::Active,
            Some(word) => NodeState::parse(word).unwrap_or_else(|| {
                tracing::warn!(node.id = %node, state = word, "garbage node state; taking active");
                NodeState::Active
            }),
        })
    }
    async fn take_unregisters(
        &self,
        node: &NodeId,
        max: usize,
    ) -> Result<Vec<UnregRequest>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys.unreg(node);
        let last = i64::try_from(max).unwrap_or(i64::MAX);
        let mut p = redis::pipe();
        p.atomic()
            .cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(last - 1)
            .cmd("LTRIM")
            .arg(&key)
            .arg(last)
            .arg(-1)
            .ignore();
        let (raw,): (Vec<Vec<u8>>,) = self
            .link
            .run(|mut c| async move { p.query_async(&mut c).await })
            .await?;
        Ok(parse_unregs(node, raw))
    }
}

#[async_trait]
impl LocationStore for RedisStore {
    async fn request_unregister(
        &self,
        node: &NodeId,
        req: &UnregRequest,
    ) -> Result<(), StoreError> {
        let key = self.keys.unreg(node);
        let json = serde_json::to_string(req)
            .map_err(|e| StoreError::Config(format!("unregister request: {e}")))?;
        let keep = i64::try_from(MAX_UNREG).unwrap_or(i64::MAX);
        let ttl = u64::try_from(UNREG_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut p = redis::pipe();
        p.atomic()
            .cmd("RPUSH")
            .arg(&key)
            .arg(json)
            .ignore()
            .cmd("LTRIM")
            .arg(&key)
            .arg(-keep)
            .arg(-1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore();
        self.exec(p).await
    }
    async fn put_binding(
        &self,
        domain: &str,
        user: &str,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        location::put(&self.link, &self.keys, domain, user, binding).await
    }
    async fn remove_binding(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
    ) -> Result<(), StoreError> {
        location::remove(&self.link, &self.keys, domain, user, contact).await
    }
    async fn remove_bindings(&self, domain: &str, user: &str) -> Result<(), StoreError> {
        location::remove_all(&self.link, &self.keys, domain, user).await
    }
    async fn bindings(&self, domain: &str, user: &str) -> Result<Vec<Binding>, StoreError> {
        location::get(&self.link, &self.keys, domain, user).await
    }
    async fn all_bindings(
        &self,
        max_users: usize,
    ) -> Result<Vec<(String, String, Binding)>, StoreError> {
        location::all(&self.link, &self.keys, max_users).await
    }
    async fn claim_proxy(
        &self,
        lease: &ProxyLease,
        ttl: Duration,
    ) -> Result<Option<ProxyLease>, StoreError> {
        location::claim_proxy(&self.link, &self.keys, lease, ttl).await
    }
    async fn release_proxy(&self, id: &str, instance: &str) -> Result<(), StoreError> {
        location::release_proxy(&self.link, &self.keys, id, instance).await
    }
    async fn proxies(&self) -> Result<Vec<ProxyLease>, StoreError> {
        location::proxies(&self.link, &self.keys).await
    }
}

#[async_trait]
impl FarmRead for RedisStore {
    async fn read_farm(&self) -> Result<FarmView, StoreError> {
        read::farm(&self.link, &self.keys).await
    }
    async fn subscribe(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        events::subscribe(&self.link, &self.keys, self.dropped.clone()).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.link
            .run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }
}

#[async_trait]
impl FarmAdmin for RedisStore {
    async fn set_node_state(&self, node: &NodeId, state: NodeState) -> Result<(), StoreError> {
        self.exec(write::set_state(&self.keys, node, state)).await
    }
    async fn set_tenant(&self, domain: &str, node: Option<&NodeId>) -> Result<(), StoreError> {
        location::set_tenant(&self.link, &self.keys, domain, node).await
    }
    async fn delete_node(&self, node: &NodeId) -> Result<bool, StoreError> {
        let pipe = write::delete(&self.keys, node);
        let nodes = self.keys.nodes();
        let id = node.as_str();
        let (deleted, removed) = self
            .link
            .run(|mut c| async move {
                let (deleted,): (u64,) = pipe.query_async(&mut c).await?;
                let removed: u64 = redis::cmd("ZREM")
                    .arg(nodes)
                    .arg(id)
                    .query_async(&mut c)
                    .await?;
                Ok((deleted, removed))
            })
            .await?;
        if deleted > 0 || removed > 0 {
            tracing::info!(node.id = %node, keys = deleted, "node deleted");
        }
        Ok(deleted > 0 || removed > 0)
    }
    async fn reap_expired(&self, grace: Duration) -> Result<Vec<NodeId>, StoreError> {
        janitor::reap(&self.link, &self.keys, grace).await
    }
}
