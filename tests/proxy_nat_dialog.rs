//! A phone behind NAT keeps its calls (issue 8 item 1): it names a private
//! address in its Via and Contact while its packets come from another, so
//! its binding is marked `nat`, and every in-dialog request towards it
//! (the box's ACK, re-INVITE and BYE, whose Request-URI is the private
//! Contact) goes through the flow our Record-Route carries, never to the
//! private address. Its own in-dialog requests go the other way, to the
//! box. Real Redis, simulated boxes, the simulator's phones; the same with
//! a real NAT (network namespaces) is in `proxy_nat.rs`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use locus_sim::VANILLA_PASSWORD;
use locus_sim::phone::Phone;
use support::sipfarm::start_sip_farm;
use support::{DOMAIN, WAIT};

/// Where the NATed phone says it is: nowhere the proxy can reach.
const PRIVATE: &str = "192.168.77.2:5060";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natted_phones_dialog_follows_its_flow_both_ways() {
    let farm = start_sip_farm(2, |_| {}).await;
    let private: SocketAddr = PRIVATE.parse().unwrap();
    let callee = Phone::bind("1001", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .behind_nat(private);
    assert_eq!(callee.register(300).await.unwrap(), 200);
    let home = farm.home_of("1001");
    let deadline = tokio::time::Instant::now() + WAIT;
    let b = loop {
        let found = farm.store.bindings(DOMAIN, "1001").await.unwrap();
        if let Some(b) = found.into_iter().next() {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "1001 never mirrored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(b.nat, "{b:?}");
    assert_eq!(b.received, callee.local_addr().to_string());
    assert_eq!(b.contact, format!("sip:1001@{PRIVATE}"));

    // The caller's INVITE lands on the other box (tenant pin), which
    // bridges to 1001 through the proxy: the call crosses the flow.
    let bridger = farm.pin_tenant_away_from(&home).await;
    let caller = Phone::bind("1000", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();
    let answering = {
        let callee = callee.clone();
        tokio::spawn(async move { callee.answer_next(WAIT).await })
    };
    let mut a = caller.call("1001").await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    // Answered means ACKed: the box's ACK reached the phone by its flow.
    let mut b_call = answering.await.unwrap().expect("1001 answered and ACKed");
    let box_ = farm.sim(bridger.as_str());

    // Phone -> box: its re-INVITE leaves by the box's Contact.
    assert_eq!(b_call.reinvite().await.unwrap(), 200);
    // Box -> phone: the box's re-INVITE to the private Contact arrives.
    assert!(
        box_.sip_reinvite(&b_call.call_id).await,
        "no such dialog on the bridging box"
    );
    support::wait_until("the box's re-INVITE answered", WAIT, || {
        box_.sip_reinvite_status(&b_call.call_id).is_some()
    })
    .await;
    assert_eq!(box_.sip_reinvite_status(&b_call.call_id), Some(200));
    assert_eq!(callee.reinvites_answered(&b_call.call_id), 1);
    // The box saw the phone's re-INVITE and the ACK of its 200.
    let seen: Vec<String> = box_
        .sip_received()
        .into_iter()
        .filter(|s| s.call_id == b_call.call_id)
        .map(|s| format!("{} {}", s.method, s.header("CSeq").unwrap_or_default()))
        .collect();
    assert!(seen.iter().any(|s| s.starts_with("INVITE")), "{seen:?}");
    assert!(seen.iter().any(|s| s.starts_with("ACK")), "{seen:?}");

    // The caller hangs up: the box's BYE reaches the phone by its flow.
    assert_eq!(a.hangup().await.unwrap(), 200);
    assert!(
        b_call.wait_ended(WAIT).await,
        "the box's BYE never reached the NATed phone"
    );
    assert!(b_call.hangup().await.is_err(), "the dialog is over");
    assert_eq!(
        farm.proxy.stats.gate_refusals(),
        0,
        "the gate refused an in-dialog hop"
    );
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natted_caller_gets_the_boxs_requests_by_its_flow() {
    let farm = start_sip_farm(2, |_| {}).await;
    let callee = Phone::bind("1001", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap();
    assert_eq!(callee.register(300).await.unwrap(), 200);
    let caller = Phone::bind("1000", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .behind_nat(PRIVATE.parse().unwrap());
    let answering = {
        let callee = callee.clone();
        tokio::spawn(async move { callee.answer_next(WAIT).await })
    };
    let mut a = caller.call("1001").await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let mut b = answering.await.unwrap().expect("1001 answered");

    // The box holding the caller's dialog re-INVITEs it at its private
    // Contact: the Record-Route's flow takes it there.
    let mut on = None;
    for n in &farm.nodes {
        if n.sim.sip_reinvite(&a.call_id).await {
            on = Some(n.id.clone());
        }
    }
    let box_ = farm.sim(on.expect("a box holds the caller's dialog").as_str());
    support::wait_until("the box's re-INVITE answered", WAIT, || {
        box_.sip_reinvite_status(&a.call_id).is_some()
    })
    .await;
    assert_eq!(box_.sip_reinvite_status(&a.call_id), Some(200));
    assert_eq!(caller.reinvites_answered(&a.call_id), 1);
    // The caller's own re-INVITE goes to the box.
    assert_eq!(a.reinvite().await.unwrap(), 200);

    // The callee hangs up: the box's BYE reaches the NATed caller.
    assert_eq!(b.hangup().await.unwrap(), 200);
    assert!(
        a.wait_ended(WAIT).await,
        "the box's BYE never reached the NATed caller"
    );
    assert_eq!(farm.proxy.stats.gate_refusals(), 0);
    farm.stop_proxy().await;
}
