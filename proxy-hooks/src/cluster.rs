//! The proxies of a farm (issue 8 item 4): each announces itself with a
//! lease in the store (`proxy:{id}`, refreshed every third of
//! `cluster.lease`), so that
//!
//! * two processes never run under one id: a proxy whose id is held by
//!   another live instance waits one lease for it to lapse (a crash and
//!   restart), then refuses to start;
//! * siblings are trusted as peers by their listed sockets, without a
//!   static `policy.peers` list;
//! * when a proxy is gone (its lease lapsed), a sibling that is its
//!   backup (`cluster.backup_of`) or announces the same advertised address
//!   (a floating IP that moved to it) takes over its phones: UDP bindings
//!   become its own (same phone address; it sends from its own socket,
//!   which crosses the phone's NAT when the address floated, or when the
//!   NAT does not filter by source), TCP bindings are marked unreachable
//!   (their connections died with the proxy) until the phones register
//!   again.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use locus_schema::{ProxyLease, Store, now_ms};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::registrar::Registrar;
use crate::sip::Uri;

/// `[proxy.cluster]` (unknown keys refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How long a proxy's lease outlives its last refresh.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Proxies whose phones this one takes over when they are gone.
    pub backup_of: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            lease: Duration::from_secs(10),
            backup_of: Vec::new(),
        }
    }
}

impl ClusterConfig {
    /// Refuses a lease under 300 ms.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.lease < Duration::from_millis(300) {
            return Err("proxy.cluster: lease must be >= 300ms");
        }
        Ok(())
    }
}

/// This proxy's membership of the farm's proxies.
pub struct Cluster {
    cfg: ClusterConfig,
    store: Arc<dyn Store>,
    me: ProxyLease,
    siblings: Arc<ArcSwap<Vec<SocketAddr>>>,
    registrar: Arc<Registrar>,
}

/// Why the proxy may not start under its id.
#[derive(Debug, thiserror::Error)]
#[error(
    "proxy id {id:?} is held by another live process (instance {instance}, sockets {sockets:?}); give each proxy its own proxy.core.id"
)]
pub struct DuplicateId {
    id: String,
    instance: String,
    sockets: Vec<String>,
}

impl Cluster {
    /// The lease of proxy `id` listening on `sockets`.
    pub fn new(
        cfg: ClusterConfig,
        store: Arc<dyn Store>,
        id: &str,
        sockets: Vec<String>,
        advertise: Option<String>,
        registrar: Arc<Registrar>,
        siblings: Arc<ArcSwap<Vec<SocketAddr>>>,
    ) -> Cluster {
        use std::hash::BuildHasher;
        let instance = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Cluster {
            cfg,
            store,
            me: ProxyLease {
                id: id.to_owned(),
                instance: format!("{instance:016x}"),
                sockets,
                advertise,
                started_ms: now_ms(),
            },
            siblings,
            registrar,
        }
    }

    /// Takes the id: waits up to one lease for another instance's to
    /// lapse, then refuses. A store that does not answer is not a refusal
    /// (the proxy serves without Redis; the loop claims later).
    pub async fn claim(&self) -> Result<(), DuplicateId> {
        let deadline = tokio::time::Instant::now() + self.cfg.lease + self.cfg.lease / 2;
        loop {
            match self.store.claim_proxy(&self.me, self.cfg.lease).await {
                Ok(None) => return Ok(()),
                Ok(Some(other)) if tokio::time::Instant::now() >= deadline => {
                    return Err(DuplicateId {
                        id: other.id,
                        instance: other.instance,
                        sockets: other.sockets,
                    });
                }
                Ok(Some(other)) => {
                    tracing::warn!(proxy.id = %self.me.id, other = %other.instance, "proxy id held by another instance; waiting for its lease to lapse");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy lease not written; serving anyway");
                    return Ok(());
                }
            }
            tokio::time::sleep(self.cfg.lease / 4).await;
        }
    }

    /// Refreshes the lease, follows the siblings and takes over the
    /// phones of those it backs up, until `cancel`; then releases the
    /// lease.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut seen: HashMap<String, ProxyLease> = HashMap::new();
        let mut taken: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.lease / 3) => {}
            }
            match self.store.claim_proxy(&self.me, self.cfg.lease).await {
                Ok(None) => {}
                Ok(Some(other)) => {
                    tracing::error!(proxy.id = %self.me.id, other = %other.instance, sockets = ?other.sockets, "another process holds this proxy id")
                }
                Err(e) => tracing::warn!(error = %e, "proxy lease not refreshed"),
            }
            let live = match self.store.proxies().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy leases unreadable");
                    continue;
                }
            };
            self.publish(&live);
            let alive: HashSet<&str> = live.iter().map(|l| l.id.as_str()).collect();
            taken.retain(|id| !alive.contains(id.as_str()));
            let gone: Vec<String> = self
                .cfg
                .backup_of
                .iter()
                .cloned()
                .chain(
                    seen.values()
                        .filter(|l| self.shares_address(l))
                        .map(|l| l.id.clone()),
                )
                .filter(|id| *id != self.me.id && !alive.contains(id.as_str()))
                .collect();
            for l in &live {
                seen.insert(l.id.clone(), l.clone());
            }
            for id in gone {
                if taken.insert(id.clone()) {
                    let (moved, lost) = self.registrar.take_over(&id).await;
                    tracing::warn!(proxy.gone = %id, moved, unreachable = lost, "took over a gone proxy's phones");
                }
            }
        }
        if let Err(e) = self
            .store
            .release_proxy(&self.me.id, &self.me.instance)
            .await
        {
            tracing::debug!(error = %e, "proxy lease not released");
        }
    }

    /// Whether `other` announced our advertised address (it floated here).
    fn shares_address(&self, other: &ProxyLease) -> bool {
        other.id != self.me.id && other.advertise.is_some() && other.advertise == self.me.advertise
    }

    /// Publishes the siblings' sockets for the policy's peer check.
    fn publish(&self, live: &[ProxyLease]) {
        let addrs: Vec<SocketAddr> = live
            .iter()
            .filter(|l| l.id != self.me.id)
            .flat_map(|l| l.sockets.iter())
            .filter_map(|s| {
                let u = Uri::parse(s).ok()?;
                let ip = u.host.parse().ok()?;
                Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
            })
            .collect();
        self.siblings.store(Arc::new(addrs));
    }
}

/// The default proxy id: the host's name (`/proc/sys/kernel/hostname`),
/// else `proxy`.
pub fn default_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "proxy".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_refusals() {
        let c: ClusterConfig = toml::from_str("backup_of = [\"p1\"]").unwrap();
        assert_eq!(c.lease, Duration::from_secs(10));
        assert_eq!(c.backup_of, vec!["p1"]);
        assert!(c.validate().is_ok());
        let short: ClusterConfig = toml::from_str("lease = \"100ms\"").unwrap();
        assert!(short.validate().is_err());
        assert!(toml::from_str::<ClusterConfig>("peers = []").is_err());
        assert!(!default_id().is_empty());
    }
}
