//! The gate (`Policy::approve`): which next hop taken from a request's own
//! headers may be used, by source; preloaded Routes refused or stripped;
//! nothing outside the farm for a phone; no private address outside the
//! farm for anyone (a phone's Contact behind NAT). The core side (signatures,
//! forged tokens) is in `proxy_security_matrix` at the root.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::RoutingConfig;
use locus_proxy::policy::{
    NOT_OUR_DIALOG, OUTSIDE_FARM, PRELOADED_ROUTE, PRIVATE_ADDRESS, Policy, PolicyConfig,
    UNKNOWN_DIALOG,
};
use locus_proxy::proxy::{Dest, Flow, NextHop, Pass, PreloadedRoute, RouteMark};
use locus_proxy::sip::{Transport, Uri};
use support::Farm;

fn policy() -> Policy {
    let cfg: PolicyConfig = toml::from_str(
        r#"
        domains = ["d.example.com"]
        gateways = ["sip:203.0.113.50:5060"]
        peers = ["10.0.0.200:5060"]
        [[trunks]]
        name = "carrier"
        sources = ["192.0.2.0/24"]
        "#,
    )
    .unwrap();
    Policy::new(&cfg, vec!["10.0.0.100:5060".into()]).unwrap()
}

fn flow(src: &str) -> Flow {
    Flow {
        source: src.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        local: "10.0.0.100:5060".parse().unwrap(),
    }
}

fn uri(s: &str) -> Dest {
    Dest::Uri(Uri::parse(s).unwrap())
}

fn hop(dest: &Dest, route: RouteMark, in_dialog: bool, preloaded: bool) -> NextHop<'_> {
    NextHop {
        dest,
        route,
        in_dialog,
        preloaded,
    }
}

#[test]
fn a_phone_in_dialog_goes_only_along_our_signed_route_and_into_the_farm() {
    let p = policy();
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.node("a").image.status.sip_uri = "sip:10.0.0.1:5080".into();
    f.node("b").image.status.sip_uri = "sip:fs2.test:5060".into();
    let snap = f.snapshot(&RoutingConfig::default());
    let phone = flow("198.51.100.20:5060");
    let src = p.classify(&snap, &phone);
    let refuse = PreloadedRoute::Refuse;
    let check = |h: &NextHop<'_>| p.approve(&snap, src, &phone, h, refuse);

    // The box, any port (its Contact, a TCP ephemeral port), or by name.
    for inside in [
        "sip:mod_sofia@10.0.0.1:5080",
        "sip:mod_sofia@10.0.0.1:40123;transport=tcp",
        "sip:x@FS2.test",
        "sip:203.0.113.50",
        "sip:192.0.2.9:5060",
        "sip:10.0.0.200:5060",
    ] {
        let d = uri(inside);
        assert_eq!(
            check(&hop(&d, RouteMark::Signed, true, false)),
            Ok(Pass::Go),
            "{inside}"
        );
    }
    let flow_dest = Dest::Flow(flow("198.51.100.77:40000"));
    assert_eq!(
        check(&hop(&flow_dest, RouteMark::Signed, true, false)),
        Ok(Pass::Go)
    );
    // Outside the farm: never, even along our Record-Route.
    for outside in [
        "sip:a@198.51.100.99",
        "sip:a@10.0.0.200:5070",
        "sip:a@evil.org",
    ] {
        let d = uri(outside);
        assert_eq!(
            check(&hop(&d, RouteMark::Signed, true, false)),
            Err(OUTSIDE_FARM),
            "{outside}"
        );
    }
    // Not along a Route we signed: refused, wherever it goes.
    let the_box = uri("sip:mod_sofia@10.0.0.1:5080");
    for mark in [RouteMark::None, RouteMark::Ours, RouteMark::Foreign] {
        assert_eq!(
            check(&hop(&the_box, mark, true, false)),
            Err(NOT_OUR_DIALOG),
            "{mark:?}"
        );
    }
    // An in-dialog request for one of our domains: nobody knows it.
    let domain = uri("sip:2000@d.example.com");
    assert_eq!(
        check(&hop(&domain, RouteMark::Signed, true, false)),
        Err(UNKNOWN_DIALOG)
    );
}

#[test]
fn preloaded_routes_from_phones_are_refused_or_stripped() {
    let p = policy();
    let snap = Farm::with_nodes(&["a"]).snapshot(&RoutingConfig::default());
    let phone = flow("198.51.100.20:5060");
    let src = p.classify(&snap, &phone);
    let d = uri("sip:10.0.0.1:5080;lr");
    let h = hop(&d, RouteMark::Foreign, false, true);
    assert_eq!(
        p.approve(&snap, src, &phone, &h, PreloadedRoute::Refuse),
        Err(PRELOADED_ROUTE)
    );
    assert_eq!(
        p.approve(&snap, src, &phone, &h, PreloadedRoute::Strip),
        Ok(Pass::Strip)
    );
    // Behind our own (signed or not) Route, the same.
    let h = hop(&d, RouteMark::Ours, false, true);
    assert_eq!(
        p.approve(&snap, src, &phone, &h, PreloadedRoute::Refuse),
        Err(PRELOADED_ROUTE)
    );
}

#[test]
fn nodes_trunks_and_peers_are_followed_anywhere() {
    let p = policy();
    let mut f = Farm::with_nodes(&["a"]);
    f.node("a").image.status.sip_uri = "sip:10.0.0.1:5080".into();
    let snap = f.snapshot(&RoutingConfig::default());
    let far = uri("sip:a@198.51.100.99");
    for src in ["10.0.0.1:5080", "192.0.2.7:5060", "10.0.0.200:5060"] {
        let fl = flow(src);
        let s = p.classify(&snap, &fl);
        for (mark, in_dialog, preloaded) in [
            (RouteMark::None, true, false),
            (RouteMark::Foreign, true, false),
            (RouteMark::Foreign, false, true),
        ] {
            let h = hop(&far, mark, in_dialog, preloaded);
            assert_eq!(
                p.approve(&snap, s, &fl, &h, PreloadedRoute::Refuse),
                Ok(Pass::Go),
                "{src} {mark:?}"
            );
        }
    }
    // The same from a peer's address but another port: a stranger.
    let fl = flow("10.0.0.200:5999");
    let s = p.classify(&snap, &fl);
    let h = hop(&far, RouteMark::None, true, false);
    assert_eq!(
        p.approve(&snap, s, &fl, &h, PreloadedRoute::Refuse),
        Err(NOT_OUR_DIALOG)
    );
}

#[test]
fn private_addresses_outside_the_farm_are_never_dialled_whoever_asks() {
    let p = policy();
    let mut f = Farm::with_nodes(&["a"]);
    f.node("a").image.status.sip_uri = "sip:10.0.0.1:5080".into();
    let snap = f.snapshot(&RoutingConfig::default());
    // A box, a trunk, a peer sending in-dialog to a NATed phone's Contact.
    for src in ["10.0.0.1:5080", "192.0.2.7:5060", "10.0.0.200:5060"] {
        let fl = flow(src);
        let s = p.classify(&snap, &fl);
        for private in [
            "sip:1001@192.168.1.2:5060",
            "sip:1001@10.9.9.9",
            "sip:1001@100.64.3.4:5062",
            "sip:1001@[fd00::2]:5060",
            "sip:1001@169.254.0.7",
        ] {
            let d = uri(private);
            let h = hop(&d, RouteMark::Signed, true, false);
            assert_eq!(
                p.approve(&snap, s, &fl, &h, PreloadedRoute::Refuse),
                Err(PRIVATE_ADDRESS),
                "{src} -> {private}"
            );
        }
        // Private addresses of the farm itself stay reachable: a node (any
        // port), the peer; and a flow is never an address.
        for inside in ["sip:10.0.0.1:5090", "sip:10.0.0.200:5060"] {
            let d = uri(inside);
            let h = hop(&d, RouteMark::Signed, true, false);
            assert_eq!(
                p.approve(&snap, s, &fl, &h, PreloadedRoute::Refuse),
                Ok(Pass::Go),
                "{src} -> {inside}"
            );
        }
        let d = Dest::Flow(flow("198.51.100.77:40000"));
        let h = hop(&d, RouteMark::Signed, true, false);
        assert_eq!(
            p.approve(&snap, s, &fl, &h, PreloadedRoute::Refuse),
            Ok(Pass::Go)
        );
    }
}
