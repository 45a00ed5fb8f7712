//! Rule 5: standard calls by algorithm, skipping down and draining nodes,
//! with in-flight counts spreading a burst.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::HashMap;

use locus_proxy::{Algorithm, RouteRequest, RoutingConfig, Rule, routing::rendezvous};
use support::{D, Farm, Setup, id};

fn with(algorithm: Algorithm) -> RoutingConfig {
    RoutingConfig {
        algorithm,
        ..RoutingConfig::default()
    }
}

const ALL: [Algorithm; 5] = [
    Algorithm::LeastCalls,
    Algorithm::Weighted,
    Algorithm::RoundRobin,
    Algorithm::HashCallid,
    Algorithm::HashRuri,
];

#[test]
fn skips_dead_esl_down_draining_and_spare_nodes() {
    let mut f = Farm::with_nodes(&["a", "b", "c", "d", "e", "f"]);
    f.dead("a").esl_down("b").drain("c").spare("d");
    f.calls("e", 100).calls("f", 1);
    for alg in ALL {
        let s = Setup::new(&f, &with(alg));
        for i in 0..20 {
            let cid = format!("c{i}");
            let d = s.route(&RouteRequest::invite("1002", D, "1001", &cid));
            let mut ids = d.ids();
            assert_eq!(d.rule, Rule::Standard);
            ids.sort();
            assert_eq!(
                ids,
                ["e", "f"],
                "{alg:?}: failover = every routable node once"
            );
        }
    }
}

#[test]
fn least_calls_orders_by_load() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.calls("a", 7).calls("b", 3).calls("c", 5);
    let s = Setup::vanilla(&f);
    assert_eq!(s.invite("1002", "1001"), ["b", "c", "a"]);
}

#[test]
fn inflight_spreads_a_burst_that_would_otherwise_herd() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.calls("a", 10).calls("b", 12).calls("c", 30);
    let s = Setup::vanilla(&f);
    let mut herd: HashMap<String, u32> = HashMap::new();
    let mut spread: HashMap<String, u32> = HashMap::new();
    for i in 0..60 {
        let cid = format!("burst-{i}");
        let req = RouteRequest::invite("1002", D, "1001", &cid);
        // Without counting what we send, every INVITE looks best on "a".
        let d = s.engine.route(&s.snap, &req, &locus_proxy::InFlight::new());
        *herd.entry(d.ids()[0].to_string()).or_default() += 1;
        let d = s.route(&req);
        let first = d.targets[0].clone();
        s.inflight.add(&first.id);
        *spread.entry(first.id.to_string()).or_default() += 1;
    }
    assert_eq!(herd.get("a"), Some(&60));
    let load = |n: &str, calls: u32| calls + spread.get(n).copied().unwrap_or(0);
    let loads = [load("a", 10), load("b", 12), load("c", 30)];
    let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    assert!(hi - lo <= 1, "loads after the burst: {loads:?}");
}

#[test]
fn a_newer_agent_update_resets_inflight() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    let s = Setup::vanilla(&f);
    for _ in 0..5 {
        s.inflight.add(&id("a"));
    }
    assert_eq!(s.invite("1002", "1001")[0], "b");
    f.calls("a", 0).node("a").image.status.updated_ms = 2;
    let snap = f.snapshot(&RoutingConfig::default());
    s.inflight.sync(&snap);
    assert_eq!(s.inflight.count(&id("a")), 0);
}

#[test]
fn weighted_shares_follow_weights() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.node("c").image.status.weight = 200;
    let s = Setup::new(&f, &with(Algorithm::Weighted));
    let mut n: HashMap<String, u32> = HashMap::new();
    for i in 0..4000 {
        let cid = format!("w{i}");
        let d = s.route(&RouteRequest::invite("1002", D, "1001", &cid));
        *n.entry(d.ids()[0].to_string()).or_default() += 1;
    }
    let share = |k: &str| f64::from(n[k]) / 4000.0;
    assert!((share("c") - 0.5).abs() < 0.04, "{n:?}");
    assert!((share("a") - 0.25).abs() < 0.04, "{n:?}");
}

#[test]
fn round_robin_takes_turns() {
    let s = Setup::new(
        &Farm::with_nodes(&["a", "b", "c"]),
        &with(Algorithm::RoundRobin),
    );
    let firsts: Vec<String> = (0..6)
        .map(|_| s.invite("1002", "1001")[0].clone())
        .collect();
    assert_eq!(firsts, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn hashes_keep_a_key_on_one_node() {
    let nodes = ["a", "b", "c"];
    let ids = nodes.map(id);
    let s = Setup::new(&Farm::with_nodes(&nodes), &with(Algorithm::HashCallid));
    for i in 0..50 {
        let cid = format!("h{i}@phone");
        let d = s.route(&RouteRequest::invite("1002", D, "1001", &cid));
        assert_eq!(
            d.ids()[0],
            rendezvous::pick(&cid, ids.iter()).unwrap().as_str()
        );
    }
    let s = Setup::new(&Farm::with_nodes(&nodes), &with(Algorithm::HashRuri));
    let owner = rendezvous::pick(&format!("1002@{D}"), ids.iter()).unwrap();
    for i in 0..20 {
        let cid = format!("r{i}");
        let d = s.route(&RouteRequest::invite("1002", D, "1001", &cid));
        assert_eq!(d.ids()[0], owner.as_str());
    }
}

#[test]
fn only_spares_left_still_answer() {
    let mut f = Farm::with_nodes(&["a", "s"]);
    f.dead("a").spare("s");
    let s = Setup::vanilla(&f);
    assert_eq!(s.invite("1002", "1001"), ["s"]);
}

#[test]
fn static_nodes_share_a_burst_by_their_recent_inflight() {
    use locus_proxy::FarmSnapshot;
    use locus_proxy::routing::config::StaticNode;
    let st = |n: &str| StaticNode {
        id: id(n),
        sip_uri: format!("sip:{n}.bench:5060"),
        weight: 1,
    };
    let cfg = RoutingConfig {
        static_nodes: vec![st("b1"), st("b2")],
        ..RoutingConfig::default()
    };
    let s = Setup::new(&Farm::new(), &cfg);
    let mut firsts = Vec::new();
    for i in 0..4 {
        let cid = format!("s{i}");
        let d = s.route(&RouteRequest::invite("1002", D, "1001", &cid));
        s.inflight.add(&d.targets[0].id);
        firsts.push(d.ids()[0].to_string());
    }
    firsts.sort();
    assert_eq!(firsts, ["b1", "b1", "b2", "b2"]);
    // No agent ever reports their calls: a newer snapshot restarts the count.
    let later = FarmSnapshot::build(&Farm::new().view, 5_000, &cfg);
    s.inflight.sync(&later);
    assert_eq!(s.inflight.count(&id("b1")), 0);
}
