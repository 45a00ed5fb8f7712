//! Rules 1, 2, 4 and the empty farm, on hand-built farms (rule 3 is in
//! `locality.rs`, rule 5 in `standard.rs`).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::routing::config::TenantConfig;
use locus_proxy::{Method, RouteRequest, RoutingConfig, Rule, routing::rendezvous};
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
