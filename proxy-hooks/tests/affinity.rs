//! Call-ID affinity through `FarmRouter` (the `Router` seam; the route
//! hook's side is in `hook.rs`): the retry of a request a box challenged (401/407) goes back to
//! that box under every algorithm and for REGISTER, is not counted in
//! flight again, takes no round-robin turn, and falls back to normal
//! routing when the box is down (capture `b0-basic-call-least-calls`).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_proxy::proxy::{Label, Router, Target, Verdict};
use locus_proxy::routing::config::Algorithm;
use locus_proxy::sip::SipMessage;
use locus_proxy::{RoutingConfig, Rule};
use locus_schema::{EslLink, FarmAdmin, NodeState, NodeStatus, NodeStore};
use support::rig::*;

async fn with(algorithm: Algorithm) -> Rig {
    let routing = RoutingConfig {
        algorithm,
        ..RoutingConfig::default()
    };
    rig([0; 3], &[], routing, POLICY, FakeLocation::default()).await
}

fn targets(v: &Verdict) -> Vec<Target> {
    match v {
        Verdict::Forward { targets, .. } => targets.clone(),
        Verdict::Reply { .. } | Verdict::Respond(_) => panic!("not forwarded: {v:?}"),
    }
}

/// The request again, as the phone's authenticated retry: same Call-ID.
fn retry(first: &SipMessage) -> SipMessage {
    let mut m = first.clone();
    m.headers.set("CSeq", "2 INVITE");
    m
}

/// INVITE `call_id`, challenged by the branch at `answering` (index into
/// the first verdict's targets), then retried: the retry's targets.
async fn challenged_then_retried(r: &Rig, call_id: &str, answering: usize) -> (String, Verdict) {
    let f = flow(PHONE);
    let mut req = invite("sip:2000@d.example.com", call_id);
    let v = r.router.route(&mut req, &f).await;
    let t = targets(&v)[answering].clone();
    let out = r
        .router
        .on_final(&req, &f, &t, &mut response(407, ""))
        .await;
    assert!(out.is_none(), "a 407 is relayed");
    let again = r.router.route(&mut retry(&req), &f).await;
    (t.node.unwrap().as_str().to_owned(), again)
}

#[tokio::test]
async fn least_calls_retry_goes_to_the_challenging_box_counted_once() {
    let r = with(Algorithm::LeastCalls).await;
    for i in 0..6 {
        let (box_, again) = challenged_then_retried(&r, &format!("lc{i}"), 0).await;
        // Without the pin the first attempt's in-flight count makes the
        // challenging box the busiest: the retry would go elsewhere.
        assert_eq!(nodes(&again)[0], box_, "call {i}");
        assert_eq!(nodes(&again).len(), 3, "failover list kept");
        assert_eq!(label_of(&again), Some(Label::Engine(Rule::Standard)));
    }
    // Six calls, six in flight: the retries were not counted again, and
    // least calls spread the first attempts 2/2/2.
    let counts: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|n| r.sync.inflight().count(&id(n)))
        .collect();
    assert_eq!(counts, [2, 2, 2]);
    assert_eq!(r.sync.affinity().hits(), 6);
}

#[tokio::test]
async fn round_robin_retry_takes_no_turn() {
    let r = with(Algorithm::RoundRobin).await;
    let mut firsts = Vec::new();
    for i in 0..6 {
        let (box_, again) = challenged_then_retried(&r, &format!("rr{i}"), 0).await;
        assert_eq!(nodes(&again)[0], box_, "call {i}");
        firsts.push(box_);
    }
    // The first attempts alone took the turns: a, b, c, a, b, c.
    assert_eq!(firsts, ["a", "b", "c", "a", "b", "c"]);
}

#[tokio::test]
async fn every_algorithm_retries_on_the_box_that_answered_after_failover() {
    for algorithm in [
        Algorithm::LeastCalls,
        Algorithm::Weighted,
        Algorithm::RoundRobin,
        Algorithm::HashCallid,
        Algorithm::HashRuri,
    ] {
        let r = with(algorithm).await;
        // The first target failed (503), the second one challenged.
        let (box_, again) = challenged_then_retried(&r, "fo1", 1).await;
        assert_eq!(nodes(&again)[0], box_, "{algorithm:?}");
        assert_eq!(nodes(&again).len(), 3, "{algorithm:?}");
    }
}

#[tokio::test]
async fn register_subscribe_message_retries_stick_even_while_draining() {
    // Rule 2 (and the same AOR rule for other methods): the box that
    // challenged is drained before the retry, so the rule alone would place
    // the retry elsewhere, where the nonce is unknown.
    for (method, challenge) in [("REGISTER", 401), ("SUBSCRIBE", 407), ("MESSAGE", 407)] {
        let r = plain().await;
        let f = flow(PHONE);
        let aor = "sip:1001@d.example.com";
        let call_id = format!("{method}-c1");
        let mut req = msg(method, "sip:d.example.com", aor, aor, &call_id);
        let v = r.router.route(&mut req, &f).await;
        let home = targets(&v)[0].clone();
        let resp = response(challenge, "");
        r.router.on_final(&req, &f, &home, &mut resp.clone()).await;
        let home_id = home.node.clone().unwrap();
        r.store
            .set_node_state(&home_id, NodeState::Draining)
            .await
            .unwrap();
        assert!(r.sync.refresh(&r.store).await);
        let mut again = msg(method, "sip:d.example.com", aor, aor, &call_id);
        let v = r.router.route(&mut again, &f).await;
        assert_eq!(nodes(&v)[0], home_id.as_str(), "{method}");
        let rule = match method {
            "REGISTER" => Rule::Register,
            _ => Rule::Aor,
        };
        assert_eq!(label_of(&v), Some(Label::Engine(rule)), "{method}");
        // A fresh Call-ID goes by the rule, away from the draining box.
        let mut other = msg(method, "sip:d.example.com", aor, aor, "fresh");
        let v = r.router.route(&mut other, &f).await;
        assert_ne!(nodes(&v)[0], home_id.as_str(), "{method}");
    }
}

#[tokio::test]
async fn a_down_box_loses_its_pins_and_other_answers_pin_nothing() {
    let r = with(Algorithm::HashCallid).await;
    let f = flow(PHONE);
    let mut req = invite("sip:2000@d.example.com", "down1");
    let v = r.router.route(&mut req, &f).await;
    let all = targets(&v);
    // A 486 or a 200 pins nothing; a 407 from the third node does.
    r.router
        .on_final(&req, &f, &all[0], &mut response(486, ""))
        .await;
    assert!(r.sync.affinity().node("down1").is_none());
    r.router
        .on_final(&req, &f, &all[2], &mut response(407, ""))
        .await;
    let pinned = all[2].node.clone().unwrap();
    assert_eq!(r.sync.affinity().node("down1"), Some(pinned.clone()));
    // Its ESL link drops: the retry goes by the algorithm again.
    let status = NodeStatus {
        sip_uri: "sip:10.0.0.99:5080".into(),
        esl: EslLink::Down,
        updated_ms: 2,
        ..NodeStatus::default()
    };
    r.store
        .lease(&pinned, &status, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(r.sync.refresh(&r.store).await);
    let v = r.router.route(&mut retry(&req), &f).await;
    assert_eq!(nodes(&v).len(), 2, "the down node is no target");
    assert!(!nodes(&v).contains(&pinned.as_str()));
    assert_eq!(nodes(&v)[0], all[0].node.as_ref().unwrap().as_str());
}
