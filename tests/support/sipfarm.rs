//! A whole farm on loopback for the SIP tests: Redis, `locus proxy` (the
//! same `locus_proxy::server::start` the CLI runs), and simulated boxes
//! `fs1..fsN` answering SIP on their own ports of [`BOX_IP`] (phones stay
//! on 127.0.0.1: the proxy knows a node by its IP), each with its agent
//! publishing `sip_uri` = that address. Timers are shortened so probes,
//! failover and sync happen in test time. The boxes challenge INVITEs as
//! vanilla does (`auth-calls`), so phones answer a 407 on every call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::server::{ProxyConfig, RunningProxy};
use locus_schema::testing::RedisServer;
use locus_schema::{NodeId, Store};
use locus_sim::{Directory, SimConfig, SimHandle, SipSeen};
use tokio_util::sync::CancellationToken;

use super::{
    AgentOpts, BOX_IP, DOMAIN, Node, WAIT, init_tracing, open_store, spawn_agent, start_redis,
};

/// Test defaults: loopback listeners on port 0, probes every 200 ms (down
/// after 2 misses, up after 1 answer), fast sync, 1 s failover timer,
/// [`DOMAIN`] relayed.
pub fn proxy_config() -> ProxyConfig {
    let mut cfg = ProxyConfig::loopback(DOMAIN);
    cfg.core.id = "proxy1".into();
    cfg.core.invite_timeout = Duration::from_millis(1000);
    cfg
}

/// Redis, the proxy and the boxes.
pub struct SipFarm {
    pub redis: RedisServer,
    pub store: Arc<dyn Store>,
    pub proxy: RunningProxy,
    pub proxy_token: CancellationToken,
    pub nodes: Vec<Node>,
}

/// Starts Redis, a proxy configured by `tweak(proxy_config())`, and `n`
/// boxes with agents; returns once the proxy routes to every box.
pub async fn start_sip_farm(n: usize, tweak: impl FnOnce(&mut ProxyConfig)) -> SipFarm {
    start_sip_farm_dir(n, Directory::vanilla(), tweak).await
}

/// Like [`start_sip_farm`], with every box serving `directory` (the proxy
/// learns its groups from the agents' `members` claims).
pub async fn start_sip_farm_dir(
    n: usize,
    directory: Directory,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> SipFarm {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let mut cfg = proxy_config();
    tweak(&mut cfg);
    let proxy_token = CancellationToken::new();
    let proxy = locus_proxy::server::start(cfg, store.clone(), proxy_token.clone())
        .await
        .expect("proxy starts");
    let proxy_udp = proxy.udp[0];
    let mut nodes = Vec::new();
    for i in 1..=n {
        let name = format!("fs{i}");
        let sim = super::start_sim_with(SimConfig {
            node_id: name.clone(),
            hostname: name.clone(),
            domain: DOMAIN.into(),
            heartbeat: None,
            sip_addr: Some(format!("{BOX_IP}:0").parse().expect("literal")),
            proxy: Some(proxy_udp),
            directory: directory.clone(),
            ..SimConfig::default()
        })
        .await;
        let mut acfg = AgentOpts::default().config(&name, &sim.esl_addr().to_string());
        acfg.sip_uri = format!("sip:{}", sim.sip_addr().expect("sim SIP bound"));
        let agent = spawn_agent(acfg, store.clone());
        nodes.push(Node {
            id: agent.id.clone(),
            sim,
            agent,
        });
    }
    let farm = SipFarm {
        redis,
        store,
        proxy,
        proxy_token,
        nodes,
    };
    let ids: Vec<NodeId> = farm.nodes.iter().map(|n| n.id.clone()).collect();
    farm.wait_routable(&ids).await;
    farm
}

impl SipFarm {
    /// The proxy's UDP address (what phones and boxes send to).
    pub fn proxy_udp(&self) -> SocketAddr {
        self.proxy.udp[0]
    }

    /// The proxy's TCP address.
    pub fn proxy_tcp(&self) -> SocketAddr {
        self.proxy.tcp[0]
    }

    /// Box `fsN` (1-based name).
    pub fn sim(&self, name: &str) -> &SimHandle {
        &self
            .nodes
            .iter()
            .find(|n| n.id.as_str() == name)
            .expect("no such box")
            .sim
    }

    /// Waits until the proxy's farm view has each of `ids` up (lease, ESL
    /// and probe good).
    pub async fn wait_routable(&self, ids: &[NodeId]) {
        self.wait_view("nodes routable", |snap| {
            ids.iter().all(|id| {
                snap.find(id)
                    .and_then(|i| snap.node(i))
                    .is_some_and(|n| n.up)
            })
        })
        .await;
    }

    /// The box holding `user`'s registration.
    pub fn home_of(&self, user: &str) -> NodeId {
        self.nodes
            .iter()
            .find(|n| n.sim.sip_binding(user).is_some())
            .map(|n| n.id.clone())
            .expect("no box holds the registration")
    }

    /// Pins the domain (a `tenant:` pin in the store) to a box other than
    /// `home`, so a caller's INVITE lands there and that box bridges back
    /// through the proxy; waits until the proxy sees the pin. Returns it.
    pub async fn pin_tenant_away_from(&self, home: &NodeId) -> NodeId {
        let other = self
            .nodes
            .iter()
            .map(|n| n.id.clone())
            .find(|id| id != home)
            .expect("a second box");
        self.store.set_tenant(DOMAIN, Some(&other)).await.unwrap();
        self.wait_view("the tenant pin", |s| s.tenant(DOMAIN) == Some(&other))
            .await;
        other
    }

    /// Polls the proxy's farm snapshot until `ok` holds (panics after [`WAIT`]).
    pub async fn wait_view(&self, what: &str, ok: impl Fn(&locus_proxy::FarmSnapshot) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if ok(&self.proxy.sync.snapshot()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for the proxy's view: {what}"
            );
            tokio::time::sleep(super::POLL).await;
        }
    }

    /// INVITEs each box received for R-URI user `user`, by box name.
    pub fn invites_for(&self, user: &str) -> Vec<(String, usize)> {
        self.nodes
            .iter()
            .map(|n| {
                let seen: Vec<SipSeen> = n.sim.sip_received();
                let count = seen
                    .iter()
                    .filter(|s| s.method == "INVITE" && s.ruri_user.as_deref() == Some(user))
                    .count();
                (n.id.as_str().to_owned(), count)
            })
            .collect()
    }

    /// Calls (distinct Call-IDs) each box received INVITEs for R-URI user
    /// `user`, by box name: with vanilla `auth-calls` a call is two INVITEs
    /// at its box, the challenged one and the authenticated retry.
    pub fn calls_for(&self, user: &str) -> Vec<(String, usize)> {
        self.nodes
            .iter()
            .map(|n| {
                let mut ids: Vec<String> = n
                    .sim
                    .sip_received()
                    .into_iter()
                    .filter(|s| s.method == "INVITE" && s.ruri_user.as_deref() == Some(user))
                    .map(|s| s.call_id)
                    .collect();
                ids.sort();
                ids.dedup();
                (n.id.as_str().to_owned(), ids.len())
            })
            .collect()
    }

    /// Authenticated INVITEs (`Proxy-Authorization`) that reached a box
    /// which never got that call unauthenticated, i.e. never challenged
    /// it: (box, Call-ID). Such a retry meets an unknown nonce and a
    /// `stale=true` challenge (capture `b0-basic-call-least-calls`).
    pub fn misrouted_retries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let invites: Vec<SipSeen> = n
                .sim
                .sip_received()
                .into_iter()
                .filter(|s| s.method == "INVITE")
                .collect();
            let authed = |s: &SipSeen| s.header("Proxy-Authorization").is_some();
            for s in invites.iter().filter(|s| authed(s)) {
                let challenged = invites.iter().any(|o| o.call_id == s.call_id && !authed(o));
                if !challenged {
                    out.push((n.id.as_str().to_owned(), s.call_id.clone()));
                }
            }
        }
        out
    }

    /// Stops the proxy and waits for its tasks.
    pub async fn stop_proxy(&self) {
        self.proxy_token.cancel();
        let _ = tokio::time::timeout(WAIT, self.proxy.closed()).await;
    }
}
