//! The store: where agents write their node and readers read the farm, by
//! role ([`NodeStore`], [`LocationStore`], [`FarmRead`], [`FarmAdmin`];
//! [`Store`] is all four). Backends: [`redis::RedisStore`] (Redis, Sentinel, TLS) and
//! [`memory::MemStore`] (in-process, for the demo and unit tests); [`open`]
//! picks one from a URL. Change notices are [`notice::Notice`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::binding::Binding;
use crate::change::Table;
use crate::change::{NodeChange, NodeImage};
use crate::keys::NodeId;
use crate::lease::ProxyLease;
use crate::types::{MemberEntry, NodeState, NodeStatus, UnregRequest};

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
    /// `tenant:{domain}` -> pinned node (multi-tenant mode; written by
    /// operators, read by proxies; config pins take precedence).
    pub tenants: BTreeMap<String, NodeId>,
}

impl FarmView {
    /// Every live node's claims (`{id}:members`): `(node, domain, ext,
    /// entry)`. Unreadable fields are logged and skipped.
    pub fn claims(&self) -> impl Iterator<Item = (&NodeId, &str, &str, MemberEntry)> {
        self.nodes
            .iter()
            .filter(|(_, v)| v.live)
            .flat_map(|(id, v)| {
                v.image.table(Table::Members).filter_map(move |(field, value)| {
                    let parsed = field
                        .split_once('/')
                        .zip(serde_json::from_str::<MemberEntry>(value).ok());
                    if parsed.is_none() {
                        tracing::debug!(node.id = %id, field, "unreadable member claim; skipped");
                    }
                    parsed.map(|((domain, ext), entry)| (id, domain, ext, entry))
                })
            })
    }

    /// Pickup groups per `(domain, ext)`: the union of the live nodes'
    /// claims, so a user keeps its groups while it is registered (or was
    /// seen calling) on any box. Domains are lower-cased; groups sorted.
    pub fn members(&self) -> BTreeMap<(String, String), Vec<String>> {
        let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (_, domain, ext, entry) in self.claims() {
            if entry.groups.is_empty() {
                continue;
            }
            let groups = out
                .entry((domain.to_ascii_lowercase(), ext.to_owned()))
                .or_default();
            groups.extend(entry.groups);
            groups.sort();
            groups.dedup();
        }
        out
    }
}

/// What an agent writes and reads of its own node: its tables, status and
/// lease, its operator-set state and its queue of unregister requests.
///
/// Status writes never touch the `state` field of `{id}:node` (active or
/// draining): it belongs to the operator (`locus node drain`), and only
/// [`FarmAdmin::set_node_state`] writes it.
#[async_trait]
pub trait NodeStore: Send + Sync + 'static {
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

    /// Reads the operator-set state of a node (default active).
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError>;

    /// Takes up to `max` of `node`'s queued requests (see
    /// [`LocationStore::request_unregister`]), oldest first. Unreadable
    /// entries are logged and dropped.
    async fn take_unregisters(
        &self,
        node: &NodeId,
        max: usize,
    ) -> Result<Vec<UnregRequest>, StoreError>;
}

/// What a proxy's registrar keeps: the location service (`reg:`) and the
/// requests it queues for other boxes' agents.
#[async_trait]
pub trait LocationStore: Send + Sync + 'static {
    /// Queues a request for `node`'s agent to drop registrations
    /// (`{id}:unreg`, at most [`MAX_UNREG`] kept, gone after [`UNREG_TTL`]
    /// without a new one).
    async fn request_unregister(&self, node: &NodeId, req: &UnregRequest)
    -> Result<(), StoreError>;

    /// Upserts one binding into `reg:{domain}:{user}` (field = its
    /// contact), drops fields already expired and sets the key to expire
    /// [`crate::binding::KEY_GRACE`] after its latest binding. Atomic.
    async fn put_binding(
        &self,
        domain: &str,
        user: &str,
        binding: &Binding,
    ) -> Result<(), StoreError>;

    /// Removes one contact of a user (a REGISTER with `expires=0`).
    async fn remove_binding(
        &self,
        domain: &str,
        user: &str,
        contact: &str,
    ) -> Result<(), StoreError>;

    /// Removes every contact of a user (`Contact: *`, `Expires: 0`).
    async fn remove_bindings(&self, domain: &str, user: &str) -> Result<(), StoreError>;

    /// The unexpired bindings of a user, by contact. Unreadable fields are
    /// logged and skipped, never an error.
    async fn bindings(&self, domain: &str, user: &str) -> Result<Vec<Binding>, StoreError>;

    /// The unexpired bindings of every user, as `(domain, user, binding)`
    /// sorted by AOR, from at most `max_users` `reg:` keys (for `locus
    /// inspect registrations`: a bounded scan, never on a call's path).
    async fn all_bindings(
        &self,
        max_users: usize,
    ) -> Result<Vec<(String, String, Binding)>, StoreError>;

    /// Writes (or refreshes) `lease` under `proxy:{id}` for `ttl`, unless
    /// another instance holds the id: then nothing is written and its
    /// lease is returned. Atomic.
    async fn claim_proxy(
        &self,
        lease: &ProxyLease,
        ttl: std::time::Duration,
    ) -> Result<Option<ProxyLease>, StoreError>;

    /// Deletes `proxy:{id}` when `instance` holds it (a clean shutdown).
    async fn release_proxy(&self, id: &str, instance: &str) -> Result<(), StoreError>;

    /// Every live proxy lease.
    async fn proxies(&self) -> Result<Vec<ProxyLease>, StoreError>;
}

/// What readers of the farm (proxies, hooks, `locus inspect`) use.
#[async_trait]
pub trait FarmRead: Send + Sync + 'static {
    /// Reads every node (live or not), every membership and every tenant pin.
    async fn read_farm(&self) -> Result<FarmView, StoreError>;

    /// Subscribes to change notices (JSON strings from `events`). The
    /// receiver closes when the subscription breaks.
    async fn subscribe(&self) -> Result<tokio::sync::mpsc::Receiver<String>, StoreError>;

    /// Checks the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The operator's and the janitor's writes: drain, tenant pins, removal of
/// dead nodes.
#[async_trait]
pub trait FarmAdmin: Send + Sync + 'static {
    /// Sets a node's administrative state (drain / undrain).
    async fn set_node_state(&self, node: &NodeId, state: NodeState) -> Result<(), StoreError>;

    /// Pins a domain to a node (`tenant:{domain}`), or unpins it (`None`).
    async fn set_tenant(&self, domain: &str, node: Option<&NodeId>) -> Result<(), StoreError>;

    /// Deletes every key of a node and its `nodes` entry (the janitor's
    /// job for nodes whose lease has expired). Returns true when there was
    /// something to delete.
    async fn delete_node(&self, node: &NodeId) -> Result<bool, StoreError>;

    /// Deletes nodes whose lease expired more than `grace` ago; returns them.
    async fn reap_expired(&self, grace: Duration) -> Result<Vec<NodeId>, StoreError>;
}

/// Backend of the published farm state (see `docs/redis-schema.md`): every
/// role at once, for a process that needs them all (`locus` itself, the
/// demo, tests). A component that needs one role takes that role (`Arc<dyn
/// Store>` upcasts to `Arc<dyn NodeStore>` and the others), so a test
/// double implements only the role it stands in for.
pub trait Store: NodeStore + LocationStore + FarmRead + FarmAdmin {}

impl<T: NodeStore + LocationStore + FarmRead + FarmAdmin + ?Sized> Store for T {}

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

/// Most requests kept in one `{id}:unreg` list (the oldest go first).
pub const MAX_UNREG: usize = 1000;

/// How long an `{id}:unreg` list outlives its newest request: an agent
/// that is down that long has lost its box's registrations anyway.
pub const UNREG_TTL: Duration = Duration::from_secs(600);

/// Parses `{id}:unreg` entries, dropping (with a warning) what is not a
/// request.
pub(crate) fn parse_unregs(node: &NodeId, raw: Vec<Vec<u8>>) -> Vec<UnregRequest> {
    raw.into_iter()
        .filter_map(|r| match serde_json::from_slice(&r) {
            Ok(req) => Some(req),
            Err(e) => {
                tracing::warn!(node.id = %node, error = %e, "unreadable unregister request; dropped");
                None
            }
        })
        .collect()
}

pub(crate) use crate::util::now_ms;

/// The status as hash fields without `state`: that field belongs to the
/// operator (`locus node drain`) and only [`FarmAdmin::set_node_state`] writes it.
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
