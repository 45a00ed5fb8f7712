//! The [`Store`]: where agents write their node and readers read the farm.
//! Backends: [`redis::RedisStore`] (Redis, Sentinel, TLS) and
//! [`memory::MemStore`] (in-process, for the demo and unit tests); [`open`]
//! picks one from a URL. Change notices are [`notice::Notice`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::binding::Binding;
use crate::change::{NodeChange, NodeImage};
use crate::keys::NodeId;
use crate::types::{NodeState, NodeStatus};

mod failover;
mod link;
pub mod memory;
pub mod notice;
pub mod redis;
mod url;

pub use url::redact as redact_url;

/// Why a store operation failed. Every variant is retryable by the caller
/// except [`StoreError::Config`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The store URL or options are unusable.
    #[error("store config: {0}")]
    Config(String),
    /// The operation did not finish in time.
    #[error("store operation timed out")]
    Timeout,
}

/// One node as a reader sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// The node id.
    pub id: Option<NodeId>,
    /// Its status and tables.
    pub image: NodeImage,
    /// Last heartbeat from the `nodes` ZSET (ms).
    pub heartbeat_ms: u64,
    /// False when its lease (`{id}:node`) has expired.
    pub live: bool,
}

/// The whole farm as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FarmView {
    /// Every node listed in `nodes`, live or not.
    pub nodes: BTreeMap<NodeId, NodeView>,
    /// `member:{domain}:{ext}` -> groups.
    pub members: BTreeMap<(String, String), Vec<String>>,
    /// `tenant:{domain}` -> pinned node (multi-tenant mode; written by
    /// operators, read by proxies; config pins take precedence).
    pub tenants: BTreeMap<String, NodeId>,
}

/// Backend of the published farm state (see `docs/redis-schema.md`).
///
/// Status writes never touch the `state` field of `{id}:node` (active or
/// draining): it belongs to the operator (`locus node drain`), and only
/// [`Store::set_node_state`] writes it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies one change to one node's keys atomically (one MULTI/EXEC in
    /// the node's slot) and publishes a notice on `events`.
    async fn apply(&self, node: &NodeId, change: &NodeChange) -> Result<(), StoreError>;

    /// Makes the node's published content equal to `image`: writes every
    /// field, deletes every field not in it, atomically; publishes a notice.
    async fn replace(&self, node: &NodeId, image: &NodeImage) -> Result<(), StoreError>;

    /// Writes the status (except `state`), sets the lease (`PEXPIRE
    /// {id}:node ttl`) and the heartbeat score in `nodes`. Returns whether
    /// `{id}:node` existed before: `false` means the store lost this node's
    /// keys (restart without persistence, failover to an empty replica, an
    /// expired lease) and the caller must republish everything.
    async fn lease(
        &self,
        node: &NodeId,
        status: &NodeStatus,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Sets a node's administrative state (drain / undrain).
    async fn set_node_state(&self, node: &NodeId, state: NodeState) -> Result<(), StoreError>;

    /// Reads the operator-set state of a node (default active).
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError>;

    /// Adds pickup groups to `member:{domain}:{ext}` (idempotent).
    async fn add_members(
        &self,
        domain: &str,
        ext: &str,
        groups: &[String],
    ) -> Result<(), StoreError>;

    /// Deletes `member:{domain}:{ext}`.
    async fn remove_members(&self, domain: &str, ext: &str) -> Result<(), StoreError>;

    /// Upserts one binding into `reg:{domain}:{user}` (field = its
    /// contact), drops fields already expired and sets the key to expire
    /// [`crate::binding::KEY_GRACE`] after its latest binding. Atomic.
    async fn put_binding(
        &self,
        domain: &str,
        user: &str,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        let _ = (domain, user, binding);
        Err(unsupported())
    }

    /// Removes one contact of a user (a REGISTER with `expires=0`).
    async fn remove_binding(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
    ) -> Result<(), StoreError> {
        let _ = (domain, user, contact);
        Err(unsupported())
    }

    /// Removes every contact of a user (`Contact: *`, `Expires: 0`).
    async fn remove_bindings(&self, domain: &str, user: &str) -> Result<(), StoreError> {
        let _ = (domain, user);
        Err(unsupported())
    }

    /// The unexpired bindings of a user, by contact. Unreadable fields are
    /// logged and skipped, never an error.
    async fn bindings(&self, domain: &str, user: &str) -> Result<Vec<Binding>, StoreError> {
        let _ = (domain, user);
        Err(unsupported())
    }

    /// Pins a domain to a node (`tenant:{domain}`), or unpins it (`None`).
    async fn set_tenant(&self, domain: &str, node: Option<&NodeId>) -> Result<(), StoreError> {
        let _ = (domain, node);
        Err(unsupported())
    }

    /// Reads every node (live or not), every membership and every tenant pin.
    async fn read_farm(&self) -> Result<FarmView, StoreError>;

    /// Deletes every key of a node and its `nodes` entry (the janitor's
    /// job for nodes whose lease has expired). Returns true when there was
    /// something to delete.
    async fn delete_node(&self, node: &NodeId) -> Result<bool, StoreError>;

    /// Deletes nodes whose lease expired more than `grace` ago; returns them.
    async fn reap_expired(&self, grace: Duration) -> Result<Vec<NodeId>, StoreError>;

    /// Subscribes to change notices (JSON strings from `events`). The
    /// receiver closes when the subscription breaks.
    async fn subscribe(&self) -> Result<tokio::sync::mpsc::Receiver<String>, StoreError>;

    /// Checks the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens a store from a URL: `redis://`, `rediss://` (TLS),
/// `redis+sentinel://[[user]:pass@]host:port[,host:port]/master[/db]`,
/// `redis+unix:///path`, or `memory://` (an empty in-process store).
pub async fn open(
    url: &str,
    keys: crate::Keys,
    timeout: Duration,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("memory://") {
        return Ok(std::sync::Arc::new(memory::MemStore::new(keys)));
    }
    Ok(std::sync::Arc::new(
        self::redis::RedisStore::connect(url, keys, timeout).await?,
    ))
}

/// What the location and tenant methods answer on a backend without them
/// (test doubles written before they existed; both real backends have them).
fn unsupported() -> StoreError {
    StoreError::Config("this store backend keeps no bindings or tenant pins".into())
}

pub(crate) use crate::util::now_ms;

/// The status as hash fields without `state`: that field belongs to the
/// operator (`locus node drain`) and only [`Store::set_node_state`] writes it.
pub(crate) fn status_fields(status: &NodeStatus) -> Vec<(&'static str, String)> {
    status
        .to_fields()
        .into_iter()
        .filter(|(k, _)| *k != "state")
        .collect()
}

/// Longest lease kept as given; ten years is "forever" for a lease.
const MAX_LEASE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The lease actually set: at least 1 ms (a zero `PEXPIRE` deletes the key)
/// and at most [`MAX_LEASE`] (Redis refuses huge expiries, `Instant`
/// arithmetic would overflow).
pub(crate) fn lease_ttl(ttl: Duration) -> Duration {
    ttl.clamp(Duration::from_millis(1), MAX_LEASE)
}
