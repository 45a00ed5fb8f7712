//! An unregister through the proxy reaches every box holding the user.
//! After a failover a phone's binding lives on two boxes (the capture
//! `x2-member-loss-after-failback`: 1009 registered on A while B was
//! drained, then on B); its `Expires: 0` is routed to one box only. The
//! proxy, after that box's 200, asks the other box's agent (`{id}:unreg`)
//! to flush the user's registration there. Real sipp phone, real Redis,
//! simulated boxes with their agents.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;

use locus_schema::{NodeId, NodeState};
use support::sipfarm::SipFarm;
use support::sipp::{Sipp, free_udp_port, sipp_bin};
use support::{DOMAIN, WAIT, wait_for, wait_until};

const USER: &str = "1009";

/// The phone registering from `local` for `expires` seconds (0: removal);
/// returns where it really was (another port if that one was taken).
async fn register(farm: &SipFarm, expires: u32, local: SocketAddr) -> SocketAddr {
    let mut run = Sipp::new("phone_register.xml", farm.proxy_udp())
        .phone(USER, DOMAIN)
        .key("expires", &expires.to_string());
    run.local = local;
    let res = run.auth(USER, "1234").run().await;
    assert_eq!(res.code, Some(0), "sipp: {}", res.log);
    res.local
}

/// The boxes holding a registration of the user, by name.
fn holders(farm: &SipFarm) -> Vec<String> {
    farm.nodes
        .iter()
        .filter(|n| n.sim.registered(USER))
        .map(|n| n.id.as_str().to_owned())
        .collect()
}

async fn set_state(farm: &SipFarm, node: &str, state: NodeState) {
    let id = NodeId::new(node).unwrap();
    farm.store.set_node_state(&id, state).await.unwrap();
    let draining = state == NodeState::Draining;
    farm.wait_view("drain state seen", |s| {
        s.find(&id)
            .and_then(|i| s.node(i))
            .is_some_and(|n| n.draining == draining)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregister_reaches_every_box_holding_the_user() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = support::sipfarm::start_sip_farm(2, |_| {}).await;
    let phone: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();

    // Registered on its home box (the same phone address from now on).
    let phone = register(&farm, 3600, phone).await;
    let home = match holders(&farm).as_slice() {
        [one] => one.clone(),
        other => panic!("one box must hold the binding: {other:?}"),
    };
    // Home drained: the next REGISTER goes to the other box; undrained,
    // home still holds its own binding too (both are live).
    set_state(&farm, &home, NodeState::Draining).await;
    assert_eq!(register(&farm, 3600, phone).await, phone);
    set_state(&farm, &home, NodeState::Active).await;
    let mut both = holders(&farm);
    both.sort();
    assert_eq!(both, ["fs1", "fs2"], "a binding on each box");
    let away = both.iter().find(|n| **n != home).unwrap().clone();
    farm.wait_view("both boxes' claims", |s| {
        s.registered_on(DOMAIN, USER).len() == 2
    })
    .await;

    // Expires 0: routed home, forwarded to the other box by its agent.
    assert_eq!(register(&farm, 0, phone).await, phone);
    assert!(!farm.sim(&home).registered(USER), "home unregistered it");
    wait_until("the other box flushed it", WAIT, || {
        !farm.sim(&away).registered(USER)
    })
    .await;
    assert_eq!(farm.proxy.registrar.remote_unregisters.get(), 1);
    let view = wait_for(&farm.store, "no claim left", |f| {
        f.claims().all(|(_, _, ext, _)| ext != USER)
    })
    .await;
    assert!(
        !view
            .members()
            .contains_key(&(DOMAIN.to_owned(), USER.to_owned()))
    );
    assert!(farm.store.bindings(DOMAIN, USER).await.unwrap().is_empty());
    farm.stop_proxy().await;
}
