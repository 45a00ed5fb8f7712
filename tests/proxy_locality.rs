//! Locality through `locus proxy` with real sipp phones (answering the
//! boxes' INVITE challenge): requests that must reach the box holding
//! something (a ringing extension, a call being replaced, a parked call, a
//! conference) get there, whatever the standard algorithm would pick; a
//! box's 302 `X-Locus-Node` moves a call.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_sim::Answer;
use support::locality::{boxes_for, calm_health, invites_where, node, node_name, wait_until};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::{Sipp, sipp_bin};
use support::{DOMAIN, WAIT};

const LOT: &str = "valet_parking_lot";

fn skip() -> bool {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return true;
    }
    false
}

/// One call from phone `user` to `service` (hold `ms`), expecting a 200.
async fn call_ok(farm: &SipFarm, user: &str, service: &str, ms: u32) {
    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone(user, DOMAIN);
    run.service = service.into();
    run.hold_ms = ms;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "{user} -> {service}: {}", res.log);
    assert_eq!(res.ok, 1, "{user} -> {service}: {}", res.log);
}

/// Waits until the proxy sees `id` with at least `calls` calls.
async fn wait_calls(farm: &SipFarm, id: &str, calls: u32) {
    farm.wait_view(&format!("{id} has {calls} calls"), |snap| {
        snap.find(&node(id))
            .and_then(|i| snap.node(i))
            .is_some_and(|n| n.calls >= calls)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directed_pickup_lands_where_the_extension_rings() {
    if skip() {
        return;
    }
    let farm = start_sip_farm(3, calm_health).await;
    // `**EXT`: 1001 rings on fs2, which now has the most calls (least
    // calls would send a standard call elsewhere).
    farm.sim("fs2").call("1000", "1001").await.unwrap();
    farm.wait_view("1001 rings on fs2", |snap| {
        let r = snap.ringing(DOMAIN, "1001");
        r.len() == 1 && node_name(snap, r[0].node) == "fs2"
    })
    .await;
    wait_calls(&farm, "fs2", 1).await;
    call_ok(&farm, "1002", "**1001", 300).await;
    assert_eq!(boxes_for(&farm, "**1001"), ["fs2"]);
    // Picked up there: the intercepted call was answered, nothing rings.
    farm.wait_view("1001 no longer rings", |snap| {
        snap.ringing(DOMAIN, "1001").is_empty()
    })
    .await;
    assert!(farm.sim("fs2").calls().iter().all(|c| c.answered));

    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_lands_on_the_box_holding_the_call() {
    if skip() {
        return;
    }
    let farm = start_sip_farm(3, calm_health).await;
    // Two calls on fs3: least calls sends new standard calls elsewhere.
    let call = farm.sim("fs3").call("1000", "1001").await.unwrap();
    farm.sim("fs3").call("1002", "1003").await.unwrap();
    let cid = farm.sim("fs3").var(&call.0, "sip_call_id").unwrap();
    farm.wait_view("the call's Call-ID on fs3", |snap| {
        let at = snap.sipcall(&cid);
        at.len() == 1 && node_name(snap, at[0]) == "fs3"
    })
    .await;
    wait_calls(&farm, "fs3", 2).await;

    let mut run = Sipp::new("phone_replaces.xml", farm.proxy_udp())
        .phone("1004", DOMAIN)
        .key("replaces", &format!("{cid};to-tag=t1;from-tag=f1"));
    run.service = "9196".into();
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "Replaces: {}", res.log);
    assert_eq!(boxes_for(&farm, "9196"), ["fs3"]);

    // The same call without Replaces is a standard call: not fs3.
    call_ok(&farm, "1004", "9196", 100).await;
    let per_box = invites_where(&farm, |s| s.ruri_user.as_deref() == Some("9196"));
    let total: usize = per_box.values().map(Vec::len).sum();
    assert_eq!(total, 2, "{per_box:?}");
    assert_eq!(per_box["fs3"].len(), 1, "{per_box:?}");
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_with_x_locus_node_reroutes_the_call() {
    if skip() {
        return;
    }
    // Every standard call of the domain goes to fs1 first.
    let farm = start_sip_farm(3, |cfg| {
        calm_health(cfg);
        cfg.routing.tenants.pins.insert(DOMAIN.into(), node("fs1"));
    })
    .await;
    farm.sim("fs1")
        .set_sip_answer(Answer::Redirect("fs2".into()));
    // The scenario fails on a 302: the phone must see fs2's 200. fs1 moves
    // the call after taking the phone's credentials (its dialplan runs
    // after auth-calls), so fs2 meets fs1's nonce and challenges again
    // (stale=true); the third INVITE is pinned to fs2 by that challenge.
    let mut run = Sipp::new("phone_call_rechallenged.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    run.service = "9196".into();
    run.hold_ms = 200;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "redirected call: {}", res.log);
    assert_eq!(res.ok, 1, "{}", res.log);
    let per_box = invites_where(&farm, |s| s.ruri_user.as_deref() == Some("9196"));
    assert_eq!(per_box["fs1"].len(), 1, "{per_box:?}");
    assert_eq!(per_box["fs2"].len(), 1, "{per_box:?}");
    assert!(per_box["fs3"].is_empty(), "{per_box:?}");
    assert_eq!(per_box["fs1"][0].call_id, per_box["fs2"][0].call_id);
    // fs1: the challenged INVITE and the retry it redirected; fs2: the
    // redirected retry (stale) and the one with its own nonce.
    let count = |name: &str| {
        farm.sim(name)
            .sip_received()
            .iter()
            .filter(|s| s.method == "INVITE" && s.ruri_user.as_deref() == Some("9196"))
            .count()
    };
    assert_eq!((count("fs1"), count("fs2")), (2, 2));
    assert_eq!(farm.proxy.stats.redirects(), 1);
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valet_retrieve_lands_on_the_parking_box() {
    if skip() {
        return;
    }
    // The domain is pinned to fs3: its standard calls and its placements
    // (where a slot nobody holds would go) are fs3.
    let farm = start_sip_farm(3, |cfg| {
        calm_health(cfg);
        cfg.routing.tenants.pins.insert(DOMAIN.into(), node("fs3"));
    })
    .await;
    farm.sim("fs1")
        .valet_park("1000", LOT, "6001")
        .await
        .unwrap();
    farm.wait_view("6001 parked on fs1", |snap| {
        let at = snap.slot(DOMAIN, LOT, "6001");
        at.len() == 1 && node_name(snap, at[0]) == "fs1"
    })
    .await;
    call_ok(&farm, "1005", "9196", 100).await;
    assert_eq!(boxes_for(&farm, "9196"), ["fs3"], "standard call");

    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1005", DOMAIN);
    run.service = "6001".into();
    run.hold_ms = 3000;
    let phone = run.spawn().await;
    // Retrieved (not parked again): the slot empties while the phone talks.
    wait_until("6001 reaching a box", || {
        !boxes_for(&farm, "6001").is_empty()
    })
    .await;
    farm.wait_view("slot 6001 taken out", |snap| {
        snap.slot(DOMAIN, LOT, "6001").is_empty()
    })
    .await;
    let res = phone.finish(WAIT).await;
    assert_eq!(res.code, Some(0), "retrieve: {}", res.log);
    assert_eq!(boxes_for(&farm, "6001"), ["fs1"]);
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_joiners_meet_on_one_box() {
    if skip() {
        return;
    }
    let farm = start_sip_farm(3, calm_health).await;
    let mut first = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    first.service = "3001".into();
    first.hold_ms = 4000;
    let first = first.spawn().await;
    let mut host = String::new();
    farm.wait_view("room 3001 with its first member", |snap| {
        let room = snap.room(DOMAIN, "3001");
        room.len() == 1 && room[0].count == 1
    })
    .await;
    let snap = farm.proxy.sync.snapshot();
    host.push_str(&node_name(&snap, snap.room(DOMAIN, "3001")[0].node));
    // The host has the most calls now: least calls would go elsewhere.
    wait_calls(&farm, &host, 1).await;

    let mut second = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1001", DOMAIN);
    second.service = "3001".into();
    second.hold_ms = 2000;
    let second = second.spawn().await;
    farm.wait_view("room 3001 with 2 members on one box", |snap| {
        let room = snap.room(DOMAIN, "3001");
        room.len() == 1 && room[0].count == 2 && node_name(snap, room[0].node) == host
    })
    .await;
    for (name, phone) in [("first", first), ("second", second)] {
        let res = phone.finish(WAIT + Duration::from_secs(5)).await;
        assert_eq!(res.code, Some(0), "{name} joiner: {}", res.log);
    }
    let per_box = invites_where(&farm, |s| s.ruri_user.as_deref() == Some("3001"));
    assert_eq!(per_box[&host].len(), 2, "{per_box:?}");
    farm.stop_proxy().await;
}
