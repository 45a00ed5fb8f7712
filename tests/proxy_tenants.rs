//! Tenant pins through `locus proxy` with real sipp phones, Redis and
//! three simulated boxes: a pinned domain stays on its box whatever the
//! load, moves to the spare when that box dies, and a pin written to
//! Redis is honoured like a configured one.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_schema::NodeId;
use support::DOMAIN;
use support::failover::{ECHO, burst_ok, wait_node};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::sipp_bin;

fn no_sipp() -> bool {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return true;
    }
    false
}

fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// Makes `name` the busiest box: `n` ringing calls (ESL only, no SIP),
/// waited for in the proxy's view so least calls would avoid it.
async fn load(farm: &SipFarm, name: &str, n: u32) {
    for i in 0..n {
        let callee = format!("10{:02}", 10 + i);
        farm.sim(name).call("1001", &callee).await.unwrap();
    }
    wait_node(farm, name, "load published", |node| node.calls >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_domain_stays_on_its_box_then_moves_to_the_spare() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |c| {
        c.routing.tenants.pins.insert(DOMAIN.into(), id("fs2"));
        c.routing.spares = vec![id("fs3")];
    })
    .await;
    load(&farm, "fs2", 4).await;
    // A `tenant:` pin in Redis for the same domain: the config pin wins.
    let fs1 = id("fs1");
    farm.store.set_tenant(DOMAIN, Some(&fs1)).await.unwrap();
    farm.wait_view("tenant pin read", |s| s.tenant(DOMAIN) == Some(&fs1))
        .await;
    let per_box = burst_ok(&farm, ECHO, 10, 800).await;
    assert_eq!(
        per_box["fs2"], 10,
        "pinned to fs2 despite its load: {per_box:?}"
    );

    farm.sim("fs2").stop().await;
    wait_node(&farm, "fs2", "fs2 down", |n| !n.up).await;
    let per_box = burst_ok(&farm, ECHO, 10, 800).await;
    assert_eq!(
        per_box["fs3"], 10,
        "the spare takes the tenant: {per_box:?}"
    );
    assert_eq!(
        per_box["fs1"], 0,
        "neither the store's pin nor least calls: {per_box:?}"
    );
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_written_to_redis_is_honoured() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    load(&farm, "fs3", 6).await;
    // Unpinned, least calls keeps away from the busy box (6 calls over
    // fs1 and fs2 never reach its 6).
    let per_box = burst_ok(&farm, ECHO, 6, 800).await;
    assert_eq!(per_box["fs3"], 0, "unpinned: {per_box:?}");

    let fs3 = id("fs3");
    farm.store.set_tenant(DOMAIN, Some(&fs3)).await.unwrap();
    farm.wait_view("tenant pin read", |s| s.tenant(DOMAIN) == Some(&fs3))
        .await;
    let per_box = burst_ok(&farm, ECHO, 10, 800).await;
    assert_eq!(per_box["fs3"], 10, "pinned in Redis: {per_box:?}");
    farm.stop_proxy().await;
}
