//! One test (or more) per routing rule, on hand-built farms.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::config::TenantConfig;
use locus_proxy::{Method, RouteRequest, RoutingConfig, Rule, rendezvous};
use locus_schema::CallState;
use support::{D, Farm, Setup, id};

#[test]
fn in_dialog_follows_the_route_set() {
    let s = Setup::vanilla(&Farm::with_nodes(&["a"]));
    let req = RouteRequest {
        in_dialog: true,
        ..RouteRequest::invite("*8", D, "1001", "c")
    };
    let d = s.route(&req);
    assert_eq!((d.rule, d.targets.len()), (Rule::InDialog, 0));
}

#[test]
fn replaces_goes_to_the_replaced_calls_node_even_draining() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.sipcall("c", "blf-1@phone", "u1").drain("c");
    let s = Setup::vanilla(&f);
    let mut req = RouteRequest::invite("1002", D, "1001", "new@phone");
    req.replaces_call_id = Some("blf-1@phone");
    let d = s.route(&req);
    assert_eq!((d.rule, d.ids()), (Rule::Replaces, vec!["c"]));
    // Unknown Call-ID: falls through, and says so.
    req.replaces_call_id = Some("gone@phone");
    let d = s.route(&req);
    assert_eq!((d.rule, d.missed), (Rule::Standard, Some(Rule::Replaces)));
}

#[test]
fn register_hashes_the_aor_over_active_nodes() {
    let mut f = Farm::with_nodes(&["a", "b", "c", "d"]);
    f.drain("d");
    let s = Setup::vanilla(&f);
    let active = [id("a"), id("b"), id("c")];
    for user in ["1000", "1001", "1002", "1003", "1004", "1005"] {
        let d = s.route(&RouteRequest::register(user, D, "r"));
        let aor = format!("{user}@{D}");
        let want = rendezvous::pick(&aor, active.iter()).unwrap();
        assert_eq!(d.rule, Rule::Register);
        assert_eq!(d.ids()[0], want.as_str(), "{user}");
        assert_eq!(d.targets.len(), 3, "failover over every active node");
    }
    // The AOR is the To URI, case-insensitive in its host.
    let a = s.route(&RouteRequest::register("1001", "D.EXAMPLE.com", "r"));
    assert_eq!(
        a.ids()[0],
        s.route(&RouteRequest::register("1001", D, "r")).ids()[0]
    );
}

#[test]
fn other_methods_follow_the_senders_aor() {
    let s = Setup::vanilla(&Farm::with_nodes(&["a", "b", "c"]));
    let reg = s.route(&RouteRequest::register("1007", D, "r"));
    let sub = RouteRequest {
        method: Method::Other,
        ..RouteRequest::invite("1001", D, "1007", "s")
    };
    let d = s.route(&sub);
    assert_eq!((d.rule, d.ids()), (Rule::Aor, reg.ids()));
}

fn tenant_cfg(pins: &[(&str, &str)], spares: &[&str]) -> RoutingConfig {
    RoutingConfig {
        tenants: TenantConfig {
            pins: pins.iter().map(|(d, n)| (d.to_string(), id(n))).collect(),
            hash_all: false,
        },
        spares: spares.iter().map(|n| id(n)).collect(),
        ..RoutingConfig::default()
    }
}

#[test]
fn tenant_stays_on_its_node_and_moves_to_the_first_live_spare() {
    let mut f = Farm::with_nodes(&["a", "b", "s1", "s2"]);
    f.calls("b", 50);
    let cfg = tenant_cfg(&[(D, "b")], &["s2", "s1"]);
    let s = Setup::new(&f, &cfg);
    let d = s.route(&RouteRequest::invite("1002", D, "1001", "c"));
    assert_eq!((d.rule, d.ids()), (Rule::Tenant, vec!["b", "s2", "s1"]));
    assert_eq!(
        s.route(&RouteRequest::register("1001", D, "r")).ids()[0],
        "b"
    );
    // Spares take no standard calls of other domains.
    let other = s.route(&RouteRequest::invite("1002", "other.example", "1001", "c"));
    assert_eq!((other.rule, other.ids()), (Rule::Standard, vec!["a", "b"]));

    f.dead("b");
    let s = Setup::new(&f, &cfg);
    let d = s.route(&RouteRequest::invite("1002", D, "1001", "c"));
    assert_eq!(
        (d.rule, d.reason),
        (Rule::Tenant, "tenant node down: spare")
    );
    assert_eq!(d.ids(), ["s2", "s1"], "configured order, deterministic");
    f.esl_down("s2");
    let s = Setup::new(&f, &cfg);
    assert_eq!(s.invite("1002", "1001"), ["s1"]);
}

#[test]
fn role_spares_are_ranked_by_domain_hash() {
    let mut f = Farm::with_nodes(&["a", "x1", "x2", "x3"]);
    f.spare("x1").spare("x2").spare("x3").dead("a");
    let cfg = tenant_cfg(&[("t1.example", "a"), ("t2.example", "a")], &[]);
    let s = Setup::new(&f, &cfg);
    let spares = [id("x1"), id("x2"), id("x3")];
    for t in ["t1.example", "t2.example"] {
        let d = s.route(&RouteRequest::invite("1", t, "2", "c"));
        let want: Vec<&str> = rendezvous::rank(t, spares.iter())
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(d.ids(), want);
    }
}

#[test]
fn tenant_without_live_node_or_spare_falls_to_standard() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.dead("b");
    let s = Setup::new(&f, &tenant_cfg(&[(D, "b")], &[]));
    let d = s.route(&RouteRequest::invite("1002", D, "1001", "c"));
    assert_eq!((d.rule, d.ids()), (Rule::Standard, vec!["a"]));
}

#[test]
fn hash_all_pins_every_domain_and_keeps_the_pin_while_down() {
    let mut f = Farm::with_nodes(&["a", "b", "c", "s"]);
    f.spare("s");
    let cfg = RoutingConfig {
        tenants: TenantConfig {
            pins: Default::default(),
            hash_all: true,
        },
        ..RoutingConfig::default()
    };
    let s = Setup::new(&f, &cfg);
    let owner = s
        .route(&RouteRequest::invite("1", "t9.example", "2", "c"))
        .ids()[0]
        .to_string();
    let all = [id("a"), id("b"), id("c")];
    assert_eq!(
        owner,
        rendezvous::pick("t9.example", all.iter()).unwrap().as_str()
    );
    f.dead(&owner);
    let s = Setup::new(&f, &cfg);
    assert_eq!(
        s.route(&RouteRequest::invite("1", "t9.example", "2", "c"))
            .ids(),
        ["s"]
    );
}

#[test]
fn group_pickup_uses_the_callers_groups() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.member("1001", &["sales"])
        .member("1005", &["support", "sales"]);
    f.group_call("a", "sales", "u1", CallState::Ringing, 100);
    f.group_call("b", "sales", "u2", CallState::Ringing, 200);
    f.group_call("c", "support", "u3", CallState::Answered, 900);
    let s = Setup::vanilla(&f);
    // Newest ringing call of the group wins; the older one is the failover.
    assert_eq!(s.invite("*8", "1001"), ["b", "a"]);
    // Ringing beats a newer answered call of another of the caller's groups.
    assert_eq!(s.invite("*8", "1005"), ["b", "a", "c"]);
    let d = s.route(&RouteRequest::invite("*8", D, "1001", "x"));
    assert_eq!(
        (d.rule, d.reason),
        (Rule::GroupPickup, "group call ringing")
    );
}

#[test]
fn group_pickup_takes_answered_calls_and_falls_through_on_nothing() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.member("1001", &["sales"]).member("1009", &["nobody"]);
    f.group_call("b", "sales", "u2", CallState::Answered, 200);
    f.calls("b", 10);
    let s = Setup::vanilla(&f);
    let d = s.route(&RouteRequest::invite("*8", D, "1001", "x"));
    assert_eq!(
        (d.rule, d.ids(), d.reason),
        (Rule::GroupPickup, vec!["b"], "group call answered")
    );
    for caller in ["1009", "1777"] {
        let d = s.route(&RouteRequest::invite("*8", D, caller, "x"));
        assert_eq!(
            (d.rule, d.missed),
            (Rule::Standard, Some(Rule::GroupPickup))
        );
        assert_eq!(d.ids()[0], "a");
    }
}

#[test]
fn group_pickup_finds_members_by_dialled_domain_when_from_is_the_proxy() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.member("1001", &["sales"])
        .group_call("b", "sales", "u", CallState::Ringing, 1);
    let s = Setup::vanilla(&f);
    let req = RouteRequest {
        from_domain: "192.0.2.10",
        ..RouteRequest::invite("*8", D, "1001", "x")
    };
    assert_eq!(s.route(&req).ids(), ["b"]);
}

#[test]
fn directed_pickup_goes_where_the_extension_rings_longest() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.ring("a", "1002", "u1", 500)
        .ring("c", "1002", "u2", 100)
        .drain("c");
    let s = Setup::vanilla(&f);
    for code in ["**1002", "*41002"] {
        let d = s.route(&RouteRequest::invite(code, D, "1001", "x"));
        assert_eq!(
            (d.rule, d.ids()),
            (Rule::DirectedPickup, vec!["c", "a"]),
            "{code}"
        );
    }
    let d = s.route(&RouteRequest::invite("**1003", D, "1001", "x"));
    assert_eq!(d.missed, Some(Rule::DirectedPickup));
}

#[test]
fn valet_retrieves_where_parked_and_parks_with_the_lot() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.park("b", "valet_parking_lot", "6001", "p1");
    let s = Setup::vanilla(&f);
    let d = s.route(&RouteRequest::invite("6001", D, "1001", "x"));
    assert_eq!(
        (d.rule, d.ids(), d.reason),
        (Rule::Valet, vec!["b"], "slot held")
    );
    // Another slot of a held lot, and "which slot?" retrieval: the lot's node.
    assert_eq!(s.invite("6002", "1001"), ["b"]);
    assert_eq!(s.invite("6000", "1001"), ["b"]);
    // An empty lot: the lot's rendezvous owner, identical for every caller.
    let s = Setup::vanilla(&Farm::with_nodes(&["a", "b", "c"]));
    let nodes = [id("a"), id("b"), id("c")];
    let owner = rendezvous::pick(&format!("{D}/valet_parking_lot"), nodes.iter()).unwrap();
    let d = s.route(&RouteRequest::invite("6005", D, "1001", "x"));
    assert_eq!((d.ids()[0], d.reason), (owner.as_str(), "placed by hash"));
    assert_eq!(s.invite("6007", "1009")[0], owner.as_str());
}

#[test]
fn conference_joiners_meet() {
    let s = Setup::vanilla(&Farm::with_nodes(&["a", "b", "c", "d"]));
    let first = s.route(&RouteRequest::invite("3001", D, "1001", "x1"));
    let second = s.route(&RouteRequest::invite("3001", D, "1002", "x2"));
    assert_eq!(first.rule, Rule::Conference);
    assert_eq!(first.ids(), second.ids(), "two first joiners meet");
    // Once the room exists, it wins over the hash (even on a draining node).
    let mut f = Farm::with_nodes(&["a", "b", "c", "d"]);
    let other = ["a", "b", "c", "d"]
        .into_iter()
        .find(|n| *n != first.ids()[0])
        .unwrap();
    f.room(other, "3001", 3).drain(other);
    let s = Setup::vanilla(&f);
    assert_eq!(s.invite("3001", "1003"), [other]);
}

#[test]
fn queues_go_where_callers_wait() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.queue("b", "5900", 2);
    let s = Setup::vanilla(&f);
    // Park into the FIFO and unpark from it (5901 serves queue 5900).
    assert_eq!(s.invite("5900", "1001"), ["b"]);
    let d = s.route(&RouteRequest::invite("5901", D, "1001", "x"));
    assert_eq!((d.rule, d.ids()), (Rule::Queue, vec!["b"]));
}

#[test]
fn placements_of_a_pinned_tenant_stay_on_its_node() {
    let f = Farm::with_nodes(&["a", "b", "c"]);
    let s = Setup::new(&f, &tenant_cfg(&[(D, "c")], &[]));
    for code in ["3001", "3002", "6001", "5900"] {
        assert_eq!(s.invite(code, "1001"), ["c"], "{code}");
    }
}

#[test]
fn no_node_at_all_is_an_empty_decision() {
    let mut f = Farm::with_nodes(&["a"]);
    f.dead("a");
    let s = Setup::vanilla(&f);
    for user in ["1002", "3001", "*8"] {
        let d = s.route(&RouteRequest::invite(user, D, "1001", "x"));
        assert!(d.targets.is_empty(), "{user}");
    }
    assert!(
        s.route(&RouteRequest::register("1", D, "r"))
            .targets
            .is_empty()
    );
}
