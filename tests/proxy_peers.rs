//! Several proxies side by side: a phone registered through proxy 2 is
//! reached by a call a box bridges through proxy 1 (rule 7 through the
//! owning proxy's flow). Real sipp phones, real Redis, simulated boxes.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use support::sipfarm::{proxy_config, start_sip_farm};
use support::sipp::{Sipp, sipp_bin};
use support::{DOMAIN, WAIT};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_one_proxy_reaches_a_phone_registered_through_another() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    // Proxy 1 must know proxy 2's address first: bound here, handed over.
    let p2_sock = std::sync::Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let p2_addr = p2_sock.local_addr().unwrap();
    let farm = start_sip_farm(2, |cfg| cfg.policy.peers = vec![p2_addr.to_string()]).await;
    let mut cfg2 = proxy_config();
    cfg2.core.id = "proxy2".into();
    cfg2.sip.udp = vec![];
    cfg2.sip.udp_sockets = vec![p2_sock];
    cfg2.sip.tcp = Some(vec![]);
    cfg2.http = None;
    cfg2.policy.peers = vec![farm.proxy_udp().to_string()];
    let token2 = CancellationToken::new();
    let p2 = locus_proxy::server::start(cfg2, farm.store.clone(), token2.clone())
        .await
        .unwrap();
    let ids: Vec<_> = farm.nodes.iter().map(|n| n.id.clone()).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ids.iter().all(|id| {
        let s = p2.sync.snapshot();
        s.find(id).and_then(|i| s.node(i)).is_some_and(|n| n.up)
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "proxy2 never saw the farm"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 1001 registers through proxy 2 and waits for one call.
    let mut phone = Sipp::new("phone_register_answer.xml", p2_addr)
        .phone("1001", DOMAIN)
        .key("expires", "120")
        .auth("1001", "1234")
        .ooc("phone_answer_ooc.xml");
    // Registered and answering for this long (the test needs a few seconds).
    phone.hold_ms = 8000;
    phone.limit_time = Duration::from_secs(40);
    let callee = phone.spawn().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let b = farm.store.bindings(DOMAIN, "1001").await.unwrap();
        if b.iter().any(|b| b.proxy == "proxy2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no binding by proxy2: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 1000 calls 1001 through proxy 1: a box bridges back to proxy 1, which
    // finds the binding owned by proxy 2 and sends the call through it.
    let mut call = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    call.service = "1001".into();
    call.hold_ms = 300;
    let res = call.run().await;
    assert_eq!(res.code, Some(0), "caller: {}", res.log);
    let answered = callee.finish(Duration::from_secs(20)).await;
    assert_eq!(answered.code, Some(0), "callee: {}", answered.log);
    assert!(p2.registrar.saved.get() >= 1);
    // The call reached the phone through proxy 2 (it relayed the INVITE).
    assert!(
        p2.stats.requests("INVITE") >= 1,
        "proxy 2 never saw the call"
    );
    token2.cancel();
    farm.stop_proxy().await;
}
