//! [`start`]: one running `locus proxy`, assembled from [`ProxyConfig`]:
//! SIP listeners, the farm view kept by Redis sync, OPTIONS probes, the
//! routing engine, trust policy, registrar, the proxy core, and one HTTP
//! listener for `/metrics`, `/healthz` and the route hook. The CLI, the
//! demo and the farm tests all start the proxy through here.

mod gauges;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::Store;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Cluster, ClusterConfig};
use crate::farm::FarmRouter;
use crate::health::{Health, HealthConfig};
use crate::hook::{self, HookState};
use crate::policy::{Policy, PolicyConfig};
use crate::proxy::{CoreConfig, Proxy, ProxyStats, SecurityConfig};
use crate::registrar::{
    Keepalive, KeepaliveConfig, OwnAddr, Registrar, RegistrarConfig, RegistrarStats,
};
use crate::routing::config::RoutingConfig;
use crate::routing::engine::Engine;
use crate::routing::sync::FarmSync;
use crate::sip::{SipTransport, TransportConfig};

/// `[proxy]` in `locus.toml`: every section optional, unknown keys refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `/metrics`, `/healthz` and the route hook (`/route`); none if unset.
    pub http: Option<SocketAddr>,
    /// `[proxy.sip]`: listeners and limits.
    pub sip: TransportConfig,
    /// `[proxy.core]`: identity, advertised address, transaction timers.
    pub core: CoreConfig,
    /// `[proxy.health]`: OPTIONS probes.
    pub health: HealthConfig,
    /// `[proxy.routing]`: rules 1-5.
    pub routing: RoutingConfig,
    /// `[proxy.policy]`: domains, trunks, DIDs, gateways (trust, rule 6).
    pub policy: PolicyConfig,
    /// `[proxy.registrar]`: `reg:` mirroring and lookups (rule 7).
    pub registrar: RegistrarConfig,
    /// `[proxy.keepalive]`: pings toward the phones registered through us.
    pub keepalive: KeepaliveConfig,
    /// `[proxy.cluster]`: this proxy's lease, takeover of gone siblings.
    pub cluster: ClusterConfig,
    /// `[proxy.security]`: the farm secret (flow tokens, Record-Route
    /// signatures) and what to do with phones' preloaded Routes.
    pub security: SecurityConfig,
}

impl ProxyConfig {
    /// A proxy for a farm on loopback (the demo, the farm tests): UDP, TCP
    /// and HTTP on 127.0.0.1 with free ports, probes every 200 ms (down
    /// after 2 misses of 300 ms, up after 1 answer), sync every 300 ms
    /// (coalesce 20 ms), relaying for `domain`.
    pub fn loopback(domain: &str) -> ProxyConfig {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut cfg = ProxyConfig {
            http: Some(any),
            ..ProxyConfig::default()
        };
        cfg.sip.udp = vec![any];
        cfg.sip.tcp = Some(vec![any]);
        cfg.health.interval = Duration::from_millis(200);
        cfg.health.timeout = Duration::from_millis(300);
        cfg.health.down_after = 2;
        cfg.health.up_after = 1;
        cfg.routing.sync.coalesce = Duration::from_millis(20);
        cfg.routing.sync.refresh = Duration::from_millis(300);
        cfg.policy.domains = vec![domain.to_owned()];
        cfg
    }

    /// Checks every section; the message names the section.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |e: String| Err(ServerError::Config(e));
        if !self.sip.has_listener() {
            return bad("proxy.sip: no udp or tcp listener".into());
        }
        self.core
            .validate()
            .map_err(|e| ServerError::Config(e.to_string()))?;
        self.health
            .validate()
            .map_err(|e| ServerError::Config(e.to_string()))?;
        self.routing
            .validate()
            .map_err(|e| ServerError::Config(e.to_string()))?;
        self.policy
            .validate()
            .map_err(|e| ServerError::Config(format!("proxy.policy: {e}")))?;
        self.registrar
            .validate()
            .map_err(|e| ServerError::Config(format!("proxy.registrar: {e}")))?;
        self.keepalive
            .validate()
            .map_err(|e| ServerError::Config(e.into()))?;
        self.cluster
            .validate()
            .map_err(|e| ServerError::Config(e.into()))?;
        self.security.validate().map_err(ServerError::Config)?;
        Ok(())
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configuration value that cannot work.
    #[error("{0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("binding {what}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A started proxy: its bound addresses and counters.
pub struct RunningProxy {
    /// Bound UDP listeners (real ports when configured with 0).
    pub udp: Vec<SocketAddr>,
    /// Bound TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// Bound HTTP listener.
    pub http: Option<SocketAddr>,
    /// Proxy core counters.
    pub stats: Arc<ProxyStats>,
    /// Registrar counters.
    pub registrar: Arc<RegistrarStats>,
    /// The farm view.
    pub sync: Arc<FarmSync>,
    /// The probes.
    pub health: Health,
    /// The keepalives toward phones.
    pub keepalive: Keepalive,
    tasks: TaskTracker,
    transport: SipTransport,
}

impl RunningProxy {
    /// Waits until every task has ended (after the token was cancelled).
    pub async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.transport.closed().await;
    }
}

/// Binds every listener and starts the proxy; it runs until `token` is
/// cancelled.
pub async fn start(
    cfg: ProxyConfig,
    store: Arc<dyn Store>,
    token: CancellationToken,
) -> Result<RunningProxy, ServerError> {
    cfg.validate()?;
    let (transport, queues) =
        SipTransport::bind_sharded(cfg.sip.clone(), cfg.core.worker_count(), token.clone())
            .await
            .map_err(|e| ServerError::Bind {
                what: "proxy.sip",
                source: std::io::Error::other(e.to_string()),
            })?;
    let udp = transport.udp_addrs();
    let tcp = transport.tcp_addrs();
    let mut own: Vec<String> = udp.iter().chain(&tcp).map(|a| a.to_string()).collect();
    own.extend(cfg.core.advertise.clone());
    let policy = Policy::new(&cfg.policy, own)
        .map_err(|e| ServerError::Config(format!("proxy.policy: {e}")))?;
    let siblings = policy.siblings();
    let routing = Arc::new(cfg.routing.clone());
    let engine = Arc::new(Engine::new(&routing).map_err(|e| ServerError::Config(e.to_string()))?);
    let health = Health::new(cfg.health.clone(), transport.clone());
    let sync = Arc::new(FarmSync::new(routing).with_health(health.clone()));
    let own_addr = OwnAddr::new(cfg.core.advertise.as_deref())
        .map_err(|e| ServerError::Config(format!("proxy.core.advertise: {e}")))?;
    let keys = cfg.security.keys();
    let keepalive = Keepalive::new(cfg.keepalive.clone(), transport.clone());
    keepalive.watch(&transport);
    let registrar = Arc::new(
        Registrar::new(
            store.clone(),
            cfg.registrar.clone(),
            cfg.core.id.clone(),
            own_addr,
        )
        .with_keys(keys.clone())
        .with_farm(sync.clone())
        .with_keepalive(keepalive.clone())
        .with_listeners(udp.clone()),
    );
    let sockets = udp
        .iter()
        .map(|a| format!("sip:{a}"))
        .chain(tcp.iter().map(|a| format!("sip:{a};transport=tcp")))
        .collect();
    let cluster = Cluster::new(
        cfg.cluster.clone(),
        store.clone(),
        &cfg.core.id,
        sockets,
        cfg.core.advertise.clone(),
        registrar.clone(),
        siblings,
    );
    cluster
        .claim()
        .await
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let router = Arc::new(
        FarmRouter::new(
            policy,
            engine.clone(),
            sync.clone(),
            Some(registrar.clone()),
        )
        .with_preloaded_route(cfg.security.preloaded_route)
        .with_transport(&transport),
    );
    let proxy = Proxy::new(cfg.core.clone(), transport.clone(), router)
        .with_keys(keys)
        .with_health(health.clone())
        .with_keepalive(keepalive.clone());
    let stats = proxy.stats();
    let tasks = TaskTracker::new();
    {
        let (sync, store, token) = (sync.clone(), store.clone(), token.clone());
        tasks.spawn(async move { sync.run(store, token).await });
    }
    {
        let (health, token) = (health.clone(), token.clone());
        tasks.spawn(async move { health.run(token).await });
    }
    {
        let token = token.clone();
        tasks.spawn(async move { cluster.run(token).await });
    }
    {
        let (keepalive, token) = (keepalive.clone(), token.clone());
        let sink: Arc<dyn crate::registrar::keepalive::Reachability> = registrar.clone();
        tasks.spawn(async move { keepalive.run(sink, token).await });
    }
    for rx in queues {
        let (proxy, token) = (proxy.clone(), token.clone());
        tasks.spawn(async move { proxy.run(rx, token).await });
    }
    let http = match cfg.http {
        None => None,
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    what: "proxy.http",
                    source,
                })?;
            let bound = listener.local_addr().ok();
            let mut registry = Registry::default();
            stats.register(&mut registry);
            registrar.stats().register(&mut registry);
            keepalive.stats().register(&mut registry);
            let farm_gauges = gauges::register(&mut registry, sync.clone(), health.clone());
            let reg = registrar.clone();
            let refresh: crate::hook::Refresh = Arc::new(move || {
                farm_gauges();
                reg.refresh_gauges();
            });
            let app = hook::router_with(
                HookState {
                    engine,
                    sync: sync.clone(),
                },
                registry,
                Some(refresh),
            );
            let token = token.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "proxy http listener stopped");
                }
            });
            bound
        }
    };
    tracing::info!(
        proxy.id = %cfg.core.id,
        sip.udp = ?udp,
        sip.tcp = ?tcp,
        http.addr = ?http,
        "proxy started"
    );
    Ok(RunningProxy {
        udp,
        tcp,
        http,
        stats,
        registrar: registrar.stats().clone(),
        sync,
        health,
        keepalive,
        tasks,
        transport,
    })
}
