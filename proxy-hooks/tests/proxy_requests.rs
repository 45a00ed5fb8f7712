//! The request checks of the proxy core, with raw UDP requests: 400 for
//! missing or broken mandatory headers, 483 for Max-Forwards 0, 482 for a
//! loop, 481 for an unknown CANCEL, OPTIONS to the proxy answered
//! statelessly, retransmissions absorbed, malformed responses dropped.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::Arc;

use locus_proxy::proxy::{Dest, StaticRouter, Target};
use locus_proxy::sip::Uri;
use support::proxy::{fast, final_status, raw_udp, raw_udp_all, start, until};

fn request(method: &str, ruri: &str, extra: &str, drop: &str) -> String {
    let lines = [
        format!(
            "Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK{method}{}",
            ruri.len()
        ),
        "From: <sip:a@example.com>;tag=1".to_string(),
        "To: <sip:b@example.com>".to_string(),
        format!("Call-ID: {method}@test"),
        format!("CSeq: 1 {method}"),
        "Max-Forwards: 70".to_string(),
    ];
    let mut s = format!("{method} {ruri} SIP/2.0\n");
    for l in lines
        .iter()
        .filter(|l| drop.is_empty() || !l.starts_with(drop))
    {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str(extra);
    s.push_str("Content-Length: 0\n\n");
    s
}

fn silent() -> (std::net::UdpSocket, Target) {
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let uri = Uri::parse(&format!("sip:{}", hole.local_addr().unwrap())).unwrap();
    let t = Target {
        dest: Dest::Uri(uri),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    (hole, t)
}

#[tokio::test]
async fn broken_mandatory_headers_get_400_and_nothing_is_forwarded() {
    let (_hole, t) = silent();
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![t])))
        .await
        .unwrap();
    for (drop, extra) in [
        ("CSeq", ""),
        ("From", ""),
        ("Call-ID", ""),
        ("To", "To: garbage\n"),
    ] {
        let r = raw_udp(p.udp, &request("INVITE", "sip:b@example.com", extra, drop))
            .await
            .unwrap();
        assert_eq!(r.status(), Some(400), "without {drop}");
    }
    let mut bad = request("INVITE", "sip:b@example.com", "", "");
    bad = bad.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    assert_eq!(raw_udp(p.udp, &bad).await.unwrap().status(), Some(400));
    let bad = request("INVITE", "sip:b@example.com", "", "")
        .replace("Max-Forwards: 70", "Max-Forwards: x");
    assert_eq!(raw_udp(p.udp, &bad).await.unwrap().status(), Some(400));
    assert_eq!(p.stats.replies(400), 6);
    assert_eq!(p.stats.transactions(), 0);
}

#[tokio::test]
async fn max_forwards_zero_gets_483() {
    let (_hole, t) = silent();
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![t])))
        .await
        .unwrap();
    let req = request("INVITE", "sip:b@example.com", "", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(raw_udp(p.udp, &req).await.unwrap().status(), Some(483));
    let req = request("INVITE", "sip:b@example.com", "", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 1");
    assert_eq!(
        raw_udp(p.udp, &req).await.unwrap().status(),
        Some(100),
        "1 hop left is still forwarded"
    );
}

#[tokio::test]
async fn options_to_the_proxy_is_answered_statelessly() {
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![])))
        .await
        .unwrap();
    let r = raw_udp(
        p.udp,
        &request("OPTIONS", &format!("sip:{}", p.udp), "", ""),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), Some(200));
    assert!(r.to().unwrap().tag().is_some());
    assert_eq!(p.stats.transactions(), 0);
    // With a user part it is for someone behind the proxy: routed (no targets: 503).
    let r = final_status(
        p.udp,
        &request("OPTIONS", &format!("sip:1000@{}", p.udp), "", ""),
    )
    .await;
    assert_eq!(r, Some(503));
    assert_eq!(p.stats.transactions(), 1);
}

#[tokio::test]
async fn an_unknown_cancel_gets_481() {
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![])))
        .await
        .unwrap();
    let r = raw_udp(p.udp, &request("CANCEL", "sip:b@example.com", "", ""))
        .await
        .unwrap();
    assert_eq!(r.status(), Some(481));
}

#[tokio::test]
async fn a_request_routed_back_to_the_proxy_is_a_loop_482() {
    // The router sends everything to the proxy itself: the request comes
    // back with our Via and the same loop hash.
    // Port 0 first, then the target is the address it got.
    let cancel = tokio_util::sync::CancellationToken::new();
    let tcfg = locus_proxy::sip::TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: Some(Vec::new()),
        ..Default::default()
    };
    let (tr, rx) = locus_proxy::sip::SipTransport::bind(tcfg, cancel.clone())
        .await
        .unwrap();
    let addr = tr.udp_addrs()[0];
    let me = Uri::parse(&format!("sip:{addr}")).unwrap();
    let t = Target {
        dest: Dest::Uri(me),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    let proxy = locus_proxy::proxy::Proxy::new(fast(), tr, Arc::new(StaticRouter::new(vec![t])));
    let stats = proxy.stats();
    let c = cancel.clone();
    tokio::spawn(async move { proxy.run(rx, c).await });
    let got = final_status(addr, &request("INVITE", "sip:b@example.com", "", "")).await;
    assert_eq!(got, Some(482));
    assert_eq!(stats.replies(482), 1);
    cancel.cancel();
}

#[tokio::test]
async fn retransmitted_invites_are_absorbed_and_get_the_last_response() {
    let (hole, t) = silent();
    // A silent last target answers 408 after Timer B (64*T1): 1.28 s here.
    let mut cfg = fast();
    cfg.t1 = std::time::Duration::from_millis(20);
    let p = start("127.0.0.1", cfg, Arc::new(StaticRouter::new(vec![t])))
        .await
        .unwrap();
    let inv = request("INVITE", "sip:b@example.com", "", "");
    let got = raw_udp_all(p.udp, &[inv.clone(), inv.clone(), inv]).await;
    let trying = got.iter().filter(|m| m.status() == Some(100)).count();
    assert_eq!(trying, 3, "each copy answered with 100 Trying");
    assert_eq!(got.last().unwrap().status(), Some(408));
    assert_eq!(p.stats.retransmissions(), 2);
    assert_eq!(p.stats.transactions(), 1);
    drop(hole);
}

#[tokio::test]
async fn malformed_and_stray_responses_are_dropped() {
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![])))
        .await
        .unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for r in [
        "SIP/2.0 200 OK\r\nFrom: <sip:a@x>\r\n\r\n",
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-lpdead.1\r\nCSeq: 1 BYE\r\n\r\n",
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKother\r\n\r\n",
    ] {
        sock.send_to(r.as_bytes(), p.udp).await.unwrap();
    }
    assert!(
        until(|| p.stats.dropped() == 3).await,
        "dropped {}",
        p.stats.dropped()
    );
    // Still serving.
    let r = raw_udp(
        p.udp,
        &request("OPTIONS", &format!("sip:{}", p.udp), "", ""),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), Some(200));
}

#[tokio::test]
async fn health_probe_responses_are_offered_to_the_prober_first() {
    use locus_proxy::{Health, HealthConfig};
    let cancel = tokio_util::sync::CancellationToken::new();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tcfg = locus_proxy::sip::TransportConfig {
        udp: vec![any],
        tcp: Some(Vec::new()),
        ..Default::default()
    };
    let (tr, rx) = locus_proxy::sip::SipTransport::bind(tcfg, cancel.clone())
        .await
        .unwrap();
    let addr = tr.udp_addrs()[0];
    let hcfg = HealthConfig {
        interval: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let health = Health::new(hcfg, tr.clone());
    // The probe target is the proxy itself: it answers the OPTIONS (no user
    // part, addressed to it), and the 200 comes back into its own loop.
    let node = locus_schema::NodeId::new("self").unwrap();
    health.set_targets(vec![(
        node.clone(),
        Uri::parse(&format!("sip:{addr}")).unwrap(),
    )]);
    let proxy = locus_proxy::proxy::Proxy::new(fast(), tr, Arc::new(StaticRouter::new(vec![])))
        .with_health(health.clone());
    let stats = proxy.stats();
    let (c1, c2) = (cancel.clone(), cancel.clone());
    tokio::spawn(async move { proxy.run(rx, c1).await });
    let h = health.clone();
    tokio::spawn(async move { h.run(c2).await });
    assert!(
        until(|| health.is_up(&node)).await,
        "probe answer never reached the prober"
    );
    assert_eq!(stats.dropped(), 0, "probe answers were treated as strays");
    assert!(stats.replies(200) >= 1);
    cancel.cancel();
}
