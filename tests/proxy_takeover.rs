//! Proxies that share phones (issue 8 item 4): proxies find each other by
//! their leases in Redis (no static `peers`), a call through one proxy
//! reaches a phone registered through another, and when that proxy is
//! gone its backup takes over its UDP phones, which keep receiving calls
//! without registering again. Two processes may not share a proxy id.
//! Real Redis, simulated boxes, the simulator's phones.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_sim::VANILLA_PASSWORD;
use locus_sim::phone::Phone;
use support::sipfarm::{SipFarm, proxy_config, start_sip_farm};
use support::{DOMAIN, WAIT};
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_millis(600);

async fn owner(farm: &SipFarm, user: &str) -> Option<String> {
    let b = farm.store.bindings(DOMAIN, user).await.unwrap();
    b.into_iter().next().map(|b| b.proxy)
}

async fn wait_owner(farm: &SipFarm, user: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = owner(farm, user).await;
        if now.as_deref() == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} owned by {now:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `caller` calls `callee`'s user; the callee answers. Returns where the
/// callee's INVITE came from.
async fn call_and_answer(caller: &Phone, callee: &Phone) -> std::net::SocketAddr {
    let answering = {
        let callee = callee.clone();
        tokio::spawn(async move {
            let inc = callee
                .next_call(WAIT)
                .await
                .expect("no INVITE reached the callee");
            let from = inc.source();
            let call = inc.answer().await.expect("answer");
            (from, call)
        })
    };
    let mut a = caller.call(callee.user()).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let (from, _b) = answering.await.unwrap();
    assert_eq!(a.hangup().await.unwrap(), 200);
    from
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_proxys_phones_are_taken_over_by_its_backup() {
    // Proxy 1 (the boxes' proxy) backs up proxy 2; neither lists the other.
    let farm = start_sip_farm(2, |c| {
        c.cluster.lease = LEASE;
        c.cluster.backup_of = vec!["proxy2".into()];
    })
    .await;
    let mut cfg2 = proxy_config();
    cfg2.core.id = "proxy2".into();
    cfg2.cluster.lease = LEASE;
    cfg2.http = None;
    cfg2.sip.tcp = Some(vec![]);
    let token2 = CancellationToken::new();
    let p2 = locus_proxy::server::start(cfg2, farm.store.clone(), token2.clone())
        .await
        .unwrap();
    let p2_udp = p2.udp[0];
    let ids: Vec<_> = farm.nodes.iter().map(|n| n.id.clone()).collect();
    support::wait_until("proxy2 sees the farm", WAIT, || {
        let s = p2.sync.snapshot();
        ids.iter()
            .all(|id| s.find(id).and_then(|i| s.node(i)).is_some_and(|n| n.up))
    })
    .await;
    let leases = farm.store.proxies().await.unwrap();
    for id in ["proxy1", "proxy2"] {
        assert!(leases.iter().any(|l| l.id == id), "{leases:?}");
    }
    // Each learns the other from its lease within a refresh.
    tokio::time::sleep(LEASE).await;

    let callee = Phone::bind("1001", VANILLA_PASSWORD, DOMAIN, p2_udp)
        .await
        .unwrap();
    assert_eq!(callee.register(300).await.unwrap(), 200);
    wait_owner(&farm, "1001", "proxy2").await;
    let caller = Phone::bind("1000", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();
    // Through proxy 1, the box, proxy 1 again, then proxy 2's flow.
    assert_eq!(call_and_answer(&caller, &callee).await, p2_udp);

    // Proxy 2 goes away: proxy 1 takes its UDP phone over; the phone is
    // called from proxy 1's socket without registering again.
    token2.cancel();
    let _ = tokio::time::timeout(WAIT, p2.closed()).await;
    wait_owner(&farm, "1001", "proxy1").await;
    let b = farm.store.bindings(DOMAIN, "1001").await.unwrap();
    assert!(!b[0].unreachable, "{b:?}");
    assert_eq!(b[0].received, callee.local_addr().to_string());
    assert_eq!(call_and_answer(&caller, &callee).await, farm.proxy_udp());
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_process_may_not_take_a_proxy_id() {
    let farm = start_sip_farm(1, |c| c.cluster.lease = LEASE).await;
    let mut twin = proxy_config();
    twin.core.id = "proxy1".into();
    twin.cluster.lease = LEASE;
    twin.http = None;
    let token = CancellationToken::new();
    let started = tokio::time::Instant::now();
    let res = locus_proxy::server::start(twin, farm.store.clone(), token.clone()).await;
    token.cancel();
    let err = res.err().expect("a twin proxy started");
    assert!(
        err.to_string().contains("held by another live process"),
        "{err}"
    );
    // It waited for the lease to lapse first (a crash and restart would have).
    assert!(started.elapsed() >= LEASE);
    // Once the first is gone for good, the id is free again.
    farm.stop_proxy().await;
    let mut again = proxy_config();
    again.core.id = "proxy1".into();
    again.cluster.lease = LEASE;
    again.http = None;
    let token = CancellationToken::new();
    let res = locus_proxy::server::start(again, farm.store.clone(), token.clone()).await;
    assert!(res.is_ok(), "{:?}", res.err());
    token.cancel();
}
