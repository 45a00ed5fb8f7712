//! Digest auth with the boxes through `locus proxy` (issue 7 item 1,
//! capture `b0-basic-call-least-calls`): two simulated boxes challenging
//! INVITEs as vanilla FreeSWITCH does (`auth-calls`), a phone calling
//! through the proxy. Every call must get its 200, the authenticated retry
//! of each on the box that challenged it, under `least_calls` (where the
//! first attempt's in-flight count used to send every retry to the other
//! box, which answered `407 stale=true` for ever) and `round_robin`; and a
//! REGISTER retried after its 401 reaches the box that issued the nonce
//! even when rule 2 would now place it elsewhere.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;

use locus_proxy::Algorithm;
use locus_schema::{NodeId, NodeState};
use locus_sim::VANILLA_PASSWORD;
use locus_sim::phone::Phone;
use support::regtrust::{RawSip, request};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::{DOMAIN, WAIT, http_get};

/// Calls each test places.
const CALLS: usize = 6;

/// `CALLS` calls from phone 1000 to the echo (9196), one after the other;
/// returns the Call-IDs, each answered 200 and hung up.
async fn calls(farm: &SipFarm) -> Vec<String> {
    let phone = Phone::bind("1000", VANILLA_PASSWORD, DOMAIN, farm.proxy_udp())
        .await
        .unwrap()
        .with_timeout(WAIT);
    let mut ids = Vec::new();
    for i in 0..CALLS {
        let mut call = phone.call("9196").await.unwrap();
        assert_eq!(call.status, 200, "call {i}");
        assert_eq!(call.hangup().await.unwrap(), 200, "call {i}");
        ids.push(call.call_id.clone());
    }
    ids
}

/// Per Call-ID, the boxes its INVITEs reached, with (unauthenticated,
/// authenticated) counts.
fn invites_by_call(farm: &SipFarm) -> BTreeMap<String, Vec<(String, usize, usize)>> {
    let mut out: BTreeMap<String, Vec<(String, usize, usize)>> = BTreeMap::new();
    for n in &farm.nodes {
        let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for s in n.sim.sip_received().iter().filter(|s| s.method == "INVITE") {
            let e = per.entry(s.call_id.clone()).or_default();
            match s.header("Proxy-Authorization") {
                Some(_) => e.1 += 1,
                None => e.0 += 1,
            }
        }
        for (id, (plain, authed)) in per {
            let name = n.id.as_str().to_owned();
            out.entry(id).or_default().push((name, plain, authed));
        }
    }
    out
}

/// Every call: one box saw exactly the challenged INVITE and its
/// authenticated retry; the proxy placed each retry by its pin. Returns
/// the calls per box.
async fn assert_each_retry_on_its_box(farm: &SipFarm, ids: &[String]) -> BTreeMap<String, usize> {
    let by_call = invites_by_call(farm);
    let mut per_box: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids {
        let boxes = &by_call[id];
        assert_eq!(boxes.len(), 1, "call {id} reached several boxes: {boxes:?}");
        let (name, plain, authed) = &boxes[0];
        assert_eq!((*plain, *authed), (1, 1), "call {id} on {name}");
        *per_box.entry(name.clone()).or_default() += 1;
    }
    assert_eq!(farm.misrouted_retries(), []);
    let hits = farm.proxy.sync.affinity().hits();
    assert_eq!(hits, CALLS as u64, "one pinned retry a call");
    let (code, metrics) = http_get(farm.proxy.http.unwrap(), "/metrics")
        .await
        .unwrap();
    assert_eq!(code, 200);
    let want = format!("locus_proxy_affinity_hits_total {CALLS}");
    assert!(metrics.contains(&want), "{want} in\n{metrics}");
    per_box
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_calls_retries_reach_the_challenging_box() {
    let farm = start_sip_farm(2, |c| c.routing.algorithm = Algorithm::LeastCalls).await;
    let ids = calls(&farm).await;
    assert_each_retry_on_its_box(&farm, &ids).await;
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_retries_reach_the_challenging_box_and_take_no_turn() {
    let farm = start_sip_farm(2, |c| c.routing.algorithm = Algorithm::RoundRobin).await;
    let ids = calls(&farm).await;
    let per_box = assert_each_retry_on_its_box(&farm, &ids).await;
    // Only first attempts take turns: the calls alternate between boxes.
    assert_eq!(
        per_box.values().copied().collect::<Vec<_>>(),
        [3, 3],
        "{per_box:?}"
    );
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_retry_after_401_reaches_the_box_that_challenged() {
    let farm = start_sip_farm(2, |_| {}).await;
    let phone = RawSip::bind("127.0.0.1").await;
    let aor = format!("sip:1001@{DOMAIN}");
    let ruri = format!("sip:{DOMAIN}");
    let first = request(
        "REGISTER",
        &ruri,
        phone.local,
        &aor,
        &aor,
        "Expires: 60\r\n",
    );
    let (status, text) = phone
        .final_response(farm.proxy_udp(), &first, WAIT)
        .await
        .expect("401");
    assert_eq!(status, 401, "{text}");
    let home = farm
        .nodes
        .iter()
        .find(|n| n.sim.sip_received().iter().any(|s| s.method == "REGISTER"))
        .map(|n| n.id.clone())
        .unwrap();
    // The challenging box is drained before the retry: rule 2 alone would
    // now place the REGISTER on the other box, which never issued the nonce.
    farm.store
        .set_node_state(&home, NodeState::Draining)
        .await
        .unwrap();
    farm.wait_view("home box draining", |s| {
        s.find(&home)
            .and_then(|i| s.node(i))
            .is_some_and(|n| n.draining && n.up)
    })
    .await;
    let challenge = text
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .unwrap();
    let auth =
        locus_sim::phone::answer_challenge(challenge, "REGISTER", &ruri, "1001", VANILLA_PASSWORD)
            .unwrap();
    let retry = first
        .replacen("CSeq: 1 REGISTER", "CSeq: 2 REGISTER", 1)
        .replacen(";branch=z9hG4bK", ";branch=z9hG4bKauth", 1)
        .replacen(
            "Content-Length:",
            &format!("Authorization: {auth}\r\nContent-Length:"),
            1,
        );
    let (status, text) = phone
        .final_response(farm.proxy_udp(), &retry, WAIT)
        .await
        .expect("200");
    assert_eq!(status, 200, "{text}");
    assert!(farm.sim(home.as_str()).sip_binding("1001").is_some());
    let others: Vec<&NodeId> = farm
        .nodes
        .iter()
        .filter(|n| n.id != home)
        .filter(|n| n.sim.sip_received().iter().any(|s| s.method == "REGISTER"))
        .map(|n| &n.id)
        .collect();
    assert!(others.is_empty(), "the retry went to {others:?}");
    assert_eq!(farm.proxy.sync.affinity().hits(), 1);
    farm.stop_proxy().await;
}
