//! `locus_sim::phone` through the real `locus proxy` (in-process, on the
//! in-memory store) in front of one simulated box declared as a static
//! node: the REGISTER is challenged by the box, mirrored by the proxy's
//! registrar, and a phone-to-phone call goes phone -> proxy -> box ->
//! proxy -> phone and back with BYE along the Record-Route set.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::Duration;

use locus_proxy::server::{ProxyConfig, RunningProxy};
use locus_schema::{Keys, Store};
use locus_sim::phone::Phone;
use locus_sim::{Sim, SimConfig, SimHandle, VANILLA_PASSWORD};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

struct Farm {
    sim: SimHandle,
    proxy: RunningProxy,
    store: std::sync::Arc<dyn Store>,
    token: CancellationToken,
}

async fn farm() -> Farm {
    let store = locus_schema::store::open("memory://", Keys::new("locus:"), WAIT)
        .await
        .unwrap();
    // The box is started knowing the proxy: its socket is bound here and
    // handed over.
    let proxy_sock = std::sync::Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let proxy_at = proxy_sock.local_addr().unwrap();
    let sim = Sim::start(SimConfig {
        heartbeat: None,
        // Apart from the phones (127.0.0.1): the proxy knows a box by its
        // IP, any port.
        sip_addr: Some(SocketAddr::from(([127, 0, 0, 3], 0))),
        proxy: Some(proxy_at),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut cfg = ProxyConfig::default();
    cfg.sip.udp_sockets = vec![proxy_sock];
    cfg.sip.tcp = Some(Vec::new());
    cfg.core.id = "p1".into();
    cfg.health.interval = Duration::from_millis(100);
    cfg.health.up_after = 1;
    cfg.policy.domains = vec![SimConfig::default().domain];
    cfg.routing.static_nodes = vec![locus_proxy::routing::config::StaticNode {
        id: "fs1".parse().unwrap(),
        sip_uri: format!("sip:{}", sim.sip_addr().unwrap()),
        weight: 1,
    }];
    let token = CancellationToken::new();
    let proxy = locus_proxy::server::start(cfg, store.clone(), token.clone())
        .await
        .unwrap();
    Farm {
        sim,
        proxy,
        store,
        token,
    }
}

impl Farm {
    async fn routable(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let id: locus_schema::NodeId = "fs1".parse().unwrap();
        // Probed up, and a snapshot rebuilt since (the first ones predate
        // the probe).
        let ready = || {
            self.proxy.health.is_up(&id)
                && self.proxy.sync.rebuilds() >= 2
                && self.proxy.sync.snapshot().nodes().iter().any(|n| n.up)
        };
        while !ready() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the box never came up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn phone(&self, user: &str) -> Phone {
        Phone::bind(
            user,
            VANILLA_PASSWORD,
            &SimConfig::default().domain,
            self.proxy.udp[0],
        )
        .await
        .unwrap()
        .with_timeout(WAIT)
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(WAIT, self.proxy.closed()).await;
        self.sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_register_and_call_each_other_through_the_proxy() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let f = farm().await;
    f.routable().await;
    let domain = SimConfig::default().domain;
    let (a, b) = (f.phone("1000").await, f.phone("1001").await);
    assert_eq!(a.register(300).await.unwrap(), 200);
    assert_eq!(b.register(300).await.unwrap(), 200);
    // The box saw the REGISTER through the proxy, with a Path to it.
    let bound = f.sim.sip_binding("1001").expect("bound at the box");
    assert!(!bound.path.is_empty(), "the proxy adds Path: {bound:?}");
    assert_eq!(bound.source, f.proxy.udp[0]);
    // And the proxy's registrar mirrored it in the (memory) store.
    let regs = f.store.bindings(&domain, "1001").await.unwrap();
    assert_eq!(regs.len(), 1, "{regs:?}");

    let caller = tokio::spawn({
        let a = a.clone();
        async move { a.call("1001").await }
    });
    let b_call = b.answer_next(WAIT).await.unwrap();
    let mut a_call = caller.await.unwrap().unwrap();
    assert_eq!(a_call.status, 200);
    let invites: Vec<_> = f
        .sim
        .sip_received()
        .into_iter()
        .filter(|s| s.method == "INVITE" && s.call_id == a_call.call_id)
        .collect();
    // Vanilla auth-calls: the box challenged the first INVITE (407), the
    // phone's authenticated retry (same Call-ID) reached the same box.
    assert_eq!(invites.len(), 2, "the INVITE and its authenticated retry");
    assert!(invites[0].header("Proxy-Authorization").is_none());
    assert!(invites[1].header("Proxy-Authorization").is_some());
    assert!(
        invites.iter().all(|i| i.source == f.proxy.udp[0]),
        "through the proxy"
    );
    assert_eq!(a_call.hangup().await.unwrap(), 200);
    assert!(b_call.wait_ended(WAIT).await, "the BYE reached the callee");
    let byes = f
        .sim
        .sip_received()
        .into_iter()
        .filter(|s| s.method == "BYE" && s.call_id == a_call.call_id)
        .count();
    assert_eq!(byes, 1, "the BYE followed the Record-Route through the box");
    f.stop().await;
}
