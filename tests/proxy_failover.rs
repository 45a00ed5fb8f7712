//! Failover through `locus proxy` with real sipp phones, Redis and three
//! simulated boxes: a box answering 503, a box that says 100 and never rings, boxes
//! taken out by OPTIONS probes, draining, and Redis going away.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::{Duration, Instant};

use locus_proxy::Algorithm;
use locus_schema::{NodeId, NodeState};
use locus_sim::{Answer, Health};
use support::failover::{ECHO, burst, burst_ok, delta, only_box, seen, wait_node};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::sipp_bin;
use support::{DOMAIN, WAIT};

fn no_sipp() -> bool {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return true;
    }
    false
}

/// With `hash_ruri` every call to one number tries the same box first:
/// three calls show which.
async fn first_choice(farm: &SipFarm) -> String {
    let probe = burst_ok(farm, ECHO, 3, 100).await;
    let first = only_box(&probe);
    assert_eq!(probe[&first], 3, "{probe:?}");
    first
}

/// Boxes other than `first` that took calls: exactly one (the second in
/// hash order), with `n` INVITEs.
fn one_other(per_box: &std::collections::BTreeMap<String, usize>, first: &str, n: usize) {
    let others: Vec<_> = per_box
        .iter()
        .filter(|(k, v)| k.as_str() != first && **v > 0)
        .collect();
    assert_eq!(others.len(), 1, "{per_box:?}");
    assert_eq!(*others[0].1, n, "{per_box:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_answering_503_fails_over_and_caller_never_sees_it() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |c| c.routing.algorithm = Algorithm::HashRuri).await;
    let first = first_choice(&farm).await;
    farm.sim(&first).set_sip_answer(Answer::Unavailable);
    let stats = &farm.proxy.stats;
    let (fo, relayed5, own503) = (
        stats.failovers(),
        stats.relayed_class(503),
        stats.replies(503),
    );

    let (res, per_box) = burst(&farm, ECHO, 10, 300).await;
    // sipp's scenario fails a call on any 503 (not an expected response).
    assert_eq!(res.code, Some(0), "{per_box:?}\n{}", res.log);
    assert_eq!((res.ok, res.failed), (10, 0), "{}", res.log);
    assert_eq!(
        per_box[&first], 10,
        "every call tried {first} first: {per_box:?}"
    );
    one_other(&per_box, &first, 10);
    assert_eq!(stats.failovers() - fo, 10);
    assert_eq!(
        stats.relayed_class(503) - relayed5,
        0,
        "a 5xx reached the phone"
    );
    assert_eq!(stats.replies(503) - own503, 0);
    farm.stop_proxy().await;
}

/// A box that says 100 Trying and then nothing: the 100 stops
/// `invite_timeout` (a post-dial delay is not a dead box), so only
/// `ring_timeout` ends the branch, with a CANCEL, and the call fails over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_that_only_says_trying_is_cancelled_after_ring_timeout() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |c| {
        c.routing.algorithm = Algorithm::HashRuri;
        c.core.ring_timeout = Duration::from_millis(1500);
    })
    .await;
    let first = first_choice(&farm).await;
    farm.sim(&first).set_sip_answer(Answer::NoAnswer);
    let fo = farm.proxy.stats.failovers();
    let cancels = seen(&farm, "CANCEL", ECHO);

    let started = Instant::now();
    let per_box = burst_ok(&farm, ECHO, 4, 200).await;
    let took = started.elapsed();
    assert_eq!(per_box[&first], 4, "{per_box:?}");
    one_other(&per_box, &first, 4);
    assert_eq!(farm.proxy.stats.failovers() - fo, 4);
    // The silent branch had a 100, so the proxy CANCELs it (RFC 3261 16.10).
    let cancelled = delta(&cancels, &seen(&farm, "CANCEL", ECHO));
    assert_eq!(cancelled[&first], 4, "{cancelled:?}");
    // Each call waited out `ring_timeout`, not the 1 s `invite_timeout`.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boxes_down_by_probes_get_no_calls_and_come_back() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    for (id, bad) in [("fs2", Health::Silent), ("fs3", Health::Unavailable)] {
        farm.sim(id).set_sip_health(bad);
        wait_node(&farm, id, "probes take it down", |n| !n.up).await;
        let fo = farm.proxy.stats.failovers();
        let per_box = burst_ok(&farm, ECHO, 12, 800).await;
        assert_eq!(per_box[id], 0, "{id} is down ({bad:?}): {per_box:?}");
        assert_eq!(per_box.values().sum::<usize>(), 12, "{per_box:?}");
        // Not tried at all: no branch timed out or failed over.
        assert_eq!(farm.proxy.stats.failovers() - fo, 0);

        farm.sim(id).set_sip_health(Health::Ok);
        wait_node(&farm, id, "probes bring it back", |n| n.up).await;
        let per_box = burst_ok(&farm, ECHO, 12, 800).await;
        assert!(per_box[id] >= 2, "{id} is back: {per_box:?}");
        assert_eq!(per_box.values().sum::<usize>(), 12, "{per_box:?}");
    }
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_box_keeps_its_room_and_pickups_but_gets_no_new_calls() {
    if no_sipp() {
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    let fs1 = NodeId::new("fs1").unwrap();
    farm.sim("fs1")
        .conference_join("1001", "3001")
        .await
        .unwrap();
    farm.wait_view("room 3001 hosted on fs1", |s| {
        s.room(DOMAIN, "3001")
            .iter()
            .any(|c| s.node(c.node).is_some_and(|n| n.id == fs1))
    })
    .await;

    farm.store
        .set_node_state(&fs1, NodeState::Draining)
        .await
        .unwrap();
    wait_node(&farm, "fs1", "fs1 draining", |n| n.draining && n.up).await;
    let per_box = burst_ok(&farm, ECHO, 12, 800).await;
    assert_eq!(per_box["fs1"], 0, "draining: {per_box:?}");
    assert_eq!(per_box.values().sum::<usize>(), 12, "{per_box:?}");
    // Joiners of a room meet where it is hosted, draining or not.
    let joins = burst_ok(&farm, "3001", 3, 300).await;
    assert_eq!(joins["fs1"], 3, "{joins:?}");
    assert_eq!(joins.values().sum::<usize>(), 3, "{joins:?}");
    // A directed pickup goes where the extension rings, draining or not.
    farm.sim("fs1").call("1002", "1003").await.unwrap();
    farm.wait_view("1003 rings on fs1", |s| {
        s.ringing(DOMAIN, "1003")
            .iter()
            .any(|r| s.node(r.node).is_some_and(|n| n.id == fs1))
    })
    .await;
    let picks = burst_ok(&farm, "**1003", 1, 300).await;
    assert_eq!(picks["fs1"], 1, "{picks:?}");
    assert_eq!(picks.values().sum::<usize>(), 1, "{picks:?}");

    farm.store
        .set_node_state(&fs1, NodeState::Active)
        .await
        .unwrap();
    wait_node(&farm, "fs1", "fs1 undrained", |n| !n.draining && n.up).await;
    // fs1 still holds the room member and the picked call: least calls
    // gives it a little less than a third.
    let per_box = burst_ok(&farm, ECHO, 18, 800).await;
    assert!(per_box["fs1"] >= 3, "undrained: {per_box:?}");
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_calls_route_on_the_last_view() {
    if no_sipp() {
        return;
    }
    let mut farm = start_sip_farm(3, |_| {}).await;
    assert!(!farm.proxy.sync.is_stale());
    farm.redis.stop();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !farm.proxy.sync.is_stale() {
        assert!(tokio::time::Instant::now() < deadline, "never went stale");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let per_box = burst_ok(&farm, ECHO, 9, 800).await;
    assert_eq!(per_box.values().sum::<usize>(), 9, "{per_box:?}");
    for (id, n) in &per_box {
        assert!(*n >= 1, "{id} dropped out of the last view: {per_box:?}");
    }
    assert!(farm.proxy.sync.is_stale(), "Redis is still down");

    // Probes still count while the store is away: a box that stops
    // answering leaves the last view, and comes back when it answers.
    farm.sim("fs3").set_sip_health(Health::Silent);
    wait_node(&farm, "fs3", "probes take fs3 down", |n| !n.up).await;
    let fo = farm.proxy.stats.failovers();
    let per_box = burst_ok(&farm, ECHO, 8, 800).await;
    assert_eq!(per_box["fs3"], 0, "{per_box:?}");
    assert_eq!(farm.proxy.stats.failovers() - fo, 0);
    farm.sim("fs3").set_sip_health(Health::Ok);
    wait_node(&farm, "fs3", "probes bring fs3 back", |n| n.up).await;
    let per_box = burst_ok(&farm, ECHO, 9, 800).await;
    assert!(per_box["fs3"] >= 1, "{per_box:?}");
    assert!(farm.proxy.sync.is_stale(), "Redis is still down");
    farm.stop_proxy().await;
}
