//! Keepalives from the proxy to the phones registered through it (issue 8
//! item 2), end to end: real Redis, simulated boxes, the simulator's
//! phones. OPTIONS arrive from the proxy's SIP socket (the one the phone
//! registered to, hence through its NAT pinhole) at the configured pace;
//! a phone that stops answering is marked unreachable in the store and
//! gets no calls; when it answers again it is reachable and called.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_proxy::registrar::KeepaliveMethod;
use locus_sim::VANILLA_PASSWORD;
use locus_sim::phone::Phone;
use support::sipfarm::{SipFarm, start_sip_farm};
use support::{DOMAIN, WAIT};

const INTERVAL: Duration = Duration::from_millis(300);

async fn binding_unreachable(farm: &SipFarm, user: &str) -> Option<bool> {
    let found = farm.store.bindings(DOMAIN, user).await.unwrap();
    found.into_iter().next().map(|b| b.unreachable)
}

async fn wait_unreachable(farm: &SipFarm, user: &str, want: bool) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let now = binding_unreachable(farm, user).await;
        if now == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user}: unreachable is {now:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_phone_gets_no_calls_until_it_answers_the_keepalives_again() {
    let farm = start_sip_farm(2, |c| {
        c.keepalive.method = KeepaliveMethod::Options;
        c.keepalive.interval = INTERVAL;
        c.keepalive.fail_after = 2;
    })
    .await;
    let callee = Phone::bind("1001", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .behind_nat("192.168.77.2:5060".parse().unwrap());
    assert_eq!(callee.register(300).await.unwrap(), 200);
    wait_unreachable(&farm, "1001", false).await;

    // Keepalives from the proxy's own socket, one per interval.
    support::wait_until("three keepalives", WAIT, || {
        callee.options_received().len() >= 3
    })
    .await;
    let got = callee.options_received();
    assert!(
        got.iter().all(|(_, from)| *from == farm.proxy_udp()),
        "{got:?}"
    );
    for w in got.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= INTERVAL / 2 && gap <= INTERVAL * 3, "gap {gap:?}");
    }
    let caller = Phone::bind("1000", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();

    // Dead: marked unreachable after two misses; a call finds nobody.
    callee.set_silent(true);
    wait_unreachable(&farm, "1001", true).await;
    // The operator sees it: own bindings, NATed, unreachable, pings.
    let http = farm.proxy.http.unwrap();
    let (code, metrics) = support::http_get(http, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    for line in [
        "locus_registrar_own_bindings 1",
        "locus_registrar_own_bindings_nat 1",
        "locus_registrar_own_bindings_unreachable 1",
        "locus_keepalive_unreachable_flows 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("locus_keepalive_missed_total"),
        "{metrics}"
    );
    let misses = farm.proxy.registrar.lookup_misses.get();
    let a = caller.call("1001").await.unwrap();
    assert_ne!(a.status, 200, "{a:?}");
    assert!(
        farm.proxy.registrar.lookup_misses.get() > misses,
        "the unreachable binding was still a target"
    );

    // Alive again: the next keepalive answered revives it; calls reach it.
    callee.set_silent(false);
    wait_unreachable(&farm, "1001", false).await;
    let answering = {
        let callee = callee.clone();
        tokio::spawn(async move { callee.answer_next(WAIT).await })
    };
    let mut a = caller.call("1001").await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    answering.await.unwrap().expect("1001 answered");
    assert_eq!(a.hangup().await.unwrap(), 200);
    let ka = farm.proxy.keepalive.stats();
    assert!(ka.went_unreachable.get() >= 1 && ka.revived.get() >= 1);
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_phone_keeps_one_flow_per_instance_and_learns_the_ping_interval() {
    let farm = start_sip_farm(2, |c| c.keepalive.interval = Duration::from_secs(25)).await;
    const DEVICE: &str = "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    // The device registers, then again from another socket (its NAT gave
    // it a new port): its Contact changed, its instance did not.
    let first = Phone::bind("1003", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .outbound(DEVICE, 1);
    assert_eq!(first.register(300).await.unwrap(), 200);
    let ok = first.last_register_response().unwrap();
    assert_eq!(ok.headers.get("Flow-Timer"), Some("25"));
    let moved = Phone::bind("1003", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .outbound(DEVICE, 1);
    assert_eq!(moved.register(300).await.unwrap(), 200);
    let b = farm.store.bindings(DOMAIN, "1003").await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].received, moved.local_addr().to_string());
    assert_eq!(b[0].instance.as_deref(), Some(&*format!("<{DEVICE}>")));
    assert_eq!(b[0].reg_id, Some(1));
    // Two phones without instance: two bindings (RFC 3261 as before).
    for _ in 0..2 {
        let p = Phone::bind("1004", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
            .await
            .unwrap();
        assert_eq!(p.register(300).await.unwrap(), 200);
        assert!(
            p.last_register_response()
                .unwrap()
                .headers
                .get("Flow-Timer")
                .is_none()
        );
    }
    assert_eq!(farm.store.bindings(DOMAIN, "1004").await.unwrap().len(), 2);
    farm.stop_proxy().await;
}
