//! Rule 3: feature codes go where the thing lives, on hand-built farms.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::routing::config::{ExtCode, TenantConfig};
use locus_proxy::{RouteRequest, RoutingConfig, Rule, routing::rendezvous};
use locus_schema::CallState;
use support::{D, Farm, Setup, id};

fn pinned(domain: &str, node: &str) -> RoutingConfig {
    RoutingConfig {
        tenants: TenantConfig {
            pins: [(domain.to_string(), id(node))].into_iter().collect(),
            hash_all: false,
        },
        ..RoutingConfig::default()
    }
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
    let d = s.route(&RouteRequest::invite("*41002", D, "1001", "x"));
    assert_eq!(d.rule, Rule::Standard, "*4EXT is not a vanilla code");
    let mut cfg = RoutingConfig::default();
    cfg.features.directed_pickup.push(ExtCode {
        pattern: r"^\*4(\d+)$".into(),
        ext: "$1".into(),
    });
    let with_star4 = Setup::new(&f, &cfg);
    for (s, code) in [(&s, "**1002"), (&with_star4, "*41002")] {
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
    let s = Setup::new(&f, &pinned(D, "c"));
    for code in ["3001", "3002", "6001", "5900"] {
        assert_eq!(s.invite(code, "1001"), ["c"], "{code}");
    }
}

#[test]
fn garbage_tables_do_not_break_routing() {
    use locus_schema::Table;
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.member("1001", &["sales"]).ring("b", "1002", "u", 1);
    for t in Table::ALL {
        f.raw("a", t, &format!("{D}/x"), "{garbage");
        f.raw("a", t, "//", "");
    }
    f.raw("a", Table::Groups, &format!("{D}/sales"), "[1,2,3]");
    let s = Setup::vanilla(&f);
    assert!(s.snap.skipped() > 0);
    assert_eq!(s.invite("**1002", "1001"), ["b"]);
    for user in ["*8", "3001", "6001", "5900", "1002"] {
        let d = s.route(&RouteRequest::invite(user, D, "1001", "g"));
        assert!(!d.targets.is_empty(), "{user}");
    }
}
