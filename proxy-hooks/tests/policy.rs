//! Trust: telling farm nodes, carrier trunks and phones apart by source
//! address, refusing to relay for foreign domains, stripping `X-Locus-*`
//! from outside the farm; the DID table; tenant pins from the store.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;

use locus_proxy::policy::{Policy, PolicyConfig};
use locus_proxy::proxy::Flow;
use locus_proxy::sip::{SipMessage, Transport};
use locus_proxy::{RouteRequest, RoutingConfig, Rule, Source};
use support::{D, Farm, Setup, id};

const LOCAL: &str = "10.0.0.100:5060";

fn policy() -> Policy {
    let cfg: PolicyConfig = toml::from_str(
        r#"
        domains = ["d.example.com", "T1.Example.com"]
        [dids]
        "+3906" = "d.example.com"
        "+390612" = "t1.example.com"
        "0612345" = "t1.example.com"
        [[trunks]]
        name = "carrier4"
        sources = ["192.0.2.0/24"]
        [[trunks]]
        name = "carrier6"
        sources = ["2001:db8:c::/48", "198.51.100.7"]
        "#,
    )
    .unwrap();
    Policy::new(
        &cfg,
        vec!["proxy.example.com".into(), "203.0.113.1:5070".into()],
    )
    .unwrap()
}

fn flow(src: &str) -> Flow {
    Flow {
        source: src.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        local: LOCAL.parse().unwrap(),
    }
}

/// Nodes `a` and `b` on one host (ports 5080, 5082), `c` by name.
fn farm() -> Farm {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.node("a").image.status.sip_uri = "sip:10.0.0.1:5080".into();
    f.node("b").image.status.sip_uri = "sip:10.0.0.1:5082;transport=udp".into();
    f.node("c").image.status.sip_uri = "sip:fs3.test:5060".into();
    f
}

fn msg(method: &str, ruri: &str, to: &str, extra: &str) -> SipMessage {
    let raw = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK1\r\n\
From: <sip:1001@d.example.com>;tag=f1\r\nTo: {to}\r\nCall-ID: c1@x\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(raw.as_bytes()).unwrap()
}

#[test]
fn classifies_nodes_by_ip_and_port_trunks_by_cidr_else_phones() {
    let p = policy();
    let cfg = RoutingConfig::default();
    let snap = farm().snapshot(&cfg);
    let (a, b) = (id("a"), id("b"));
    let cases: [(&str, Source<'_>); 10] = [
        ("10.0.0.1:5080", Source::Node(&a)),
        ("10.0.0.1:5082", Source::Node(&b)),
        ("[::ffff:10.0.0.1]:5080", Source::Node(&a)),
        // Same host, another port (a box over TCP from an ephemeral port):
        // a node, the first by id of those on that IP.
        ("10.0.0.1:5060", Source::Node(&a)),
        ("[::ffff:10.0.0.1]:41234", Source::Node(&a)),
        ("192.0.2.44:5060", Source::Trunk("carrier4")),
        ("[::ffff:192.0.2.44]:5060", Source::Trunk("carrier4")),
        ("[2001:db8:c:1::9]:5060", Source::Trunk("carrier6")),
        ("198.51.100.7:5099", Source::Trunk("carrier6")),
        ("198.51.100.8:5060", Source::Phone),
    ];
    for (src, want) in cases {
        assert_eq!(p.classify(&snap, &flow(src)), want, "{src}");
    }
    // A node whose sip_uri is a name is never matched by address.
    let c_addr: SocketAddr = "10.0.0.3:5060".parse().unwrap();
    assert!(snap.node_at(c_addr).is_none());
    assert_eq!(p.classify(&snap, &flow("10.0.0.3:5060")), Source::Phone);
    let mut tcp = flow("10.0.0.1:40001");
    tcp.transport = Transport::Tcp;
    assert_eq!(p.classify(&snap, &tcp), Source::Node(&a), "TCP, any port");
}

fn policy_with(extra: &str) -> Policy {
    let cfg: PolicyConfig =
        toml::from_str(&format!("domains = [\"d.example.com\"]\n{extra}")).unwrap();
    Policy::new(&cfg, vec![]).unwrap()
}

#[test]
fn node_match_address_keeps_to_the_exact_sip_uri() {
    let p = policy_with(r#"node_match = "address""#);
    let snap = farm().snapshot(&RoutingConfig::default());
    assert_eq!(
        p.classify(&snap, &flow("10.0.0.1:5082")),
        Source::Node(&id("b"))
    );
    assert_eq!(p.classify(&snap, &flow("10.0.0.1:5060")), Source::Phone);
}

#[test]
fn node_networks_make_nodes_of_a_whole_block() {
    let p = policy_with(r#"node_networks = ["10.0.5.0/24", "10.0.9.9"]"#);
    let snap = farm().snapshot(&RoutingConfig::default());
    let net = id(locus_proxy::policy::NETWORK_NODE);
    assert_eq!(
        p.classify(&snap, &flow("10.0.5.77:35000")),
        Source::Node(&net)
    );
    assert_eq!(
        p.classify(&snap, &flow("10.0.9.9:5060")),
        Source::Node(&net)
    );
    assert_eq!(p.classify(&snap, &flow("10.0.6.1:5060")), Source::Phone);
    assert_eq!(p.classify(&snap, &flow("10.0.9.10:5060")), Source::Phone);
    // A node's own IP still names the node.
    assert_eq!(
        p.classify(&snap, &flow("10.0.0.1:5082")),
        Source::Node(&id("b"))
    );
    let cfg: PolicyConfig = toml::from_str(r#"node_networks = ["10.0.5.1/24"]"#).unwrap();
    assert!(cfg.validate().is_err(), "host bits set");
}

#[test]
fn peers_by_address_ip_or_cidr() {
    let p = policy_with(r#"peers = ["10.0.7.1:5070", "10.0.8.1", "10.1.0.0/16"]"#);
    let (m, to) = ("sip:2000@evil.example.org", "<sip:2000@d.example.com>");
    for (src, peer) in [
        ("10.0.7.1:5070", true),
        ("[::ffff:10.0.7.1]:5070", true),
        ("10.0.7.1:5071", false),
        ("10.0.8.1:40000", true),
        ("10.1.200.3:5060", true),
        ("10.2.0.1:5060", false),
    ] {
        assert_eq!(p.is_peer(src.parse().unwrap()), peer, "{src}");
        // A peer relays anything; anyone else is not a relay to a foreign host.
        let mut req = msg("INVITE", m, to, "");
        let snap = farm().snapshot(&RoutingConfig::default());
        let verdict = p.admit(p.classify(&snap, &flow(src)), &mut req, &flow(src));
        assert_eq!(verdict.is_ok(), peer, "{src}");
    }
}

#[test]
fn a_node_secret_is_needed_over_udp_and_never_forwarded() {
    let p = policy_with(
        r#"node_secret = "farm-secret-0123456789"
        node_networks = ["10.0.5.0/24"]
        [node_secrets]
        b = "b-own-secret-0123456789""#,
    );
    let snap = farm().snapshot(&RoutingConfig::default());
    let (a, b) = (id("a"), id("b"));
    let net = id(locus_proxy::policy::NETWORK_NODE);
    let auth = |v: &str| format!("X-Locus-Auth: {v}\r\n");
    let to = "<sip:2000@d.example.com>";
    let cases: [(&str, Transport, Option<&str>, Source<'_>); 10] = [
        (
            "10.0.0.1:5080",
            Transport::Udp,
            Some("farm-secret-0123456789"),
            Source::Node(&a),
        ),
        // b's own secret names b, whatever port it came from.
        (
            "10.0.0.1:5080",
            Transport::Udp,
            Some("b-own-secret-0123456789"),
            Source::Node(&b),
        ),
        (
            "10.0.0.1:5082",
            Transport::Udp,
            Some("farm-secret-0123456789"),
            Source::Node(&a),
        ),
        ("10.0.0.1:5080", Transport::Udp, None, Source::Phone),
        (
            "10.0.0.1:5080",
            Transport::Udp,
            Some("farm-secret-0123456780"),
            Source::Phone,
        ),
        ("10.0.0.1:5080", Transport::Udp, Some(""), Source::Phone),
        // The handshake proves a TCP source: no header needed.
        ("10.0.0.1:40000", Transport::Tcp, None, Source::Node(&a)),
        (
            "10.0.5.3:5060",
            Transport::Udp,
            Some("farm-secret-0123456789"),
            Source::Node(&net),
        ),
        (
            "10.0.5.3:5060",
            Transport::Udp,
            Some("b-own-secret-0123456789"),
            Source::Phone,
        ),
        // Not a node address: the header proves nothing.
        (
            "198.51.100.20:5060",
            Transport::Udp,
            Some("farm-secret-0123456789"),
            Source::Phone,
        ),
    ];
    for (src, transport, secret, want) in cases {
        let mut f = flow(src);
        f.transport = transport;
        let mut req = msg(
            "INVITE",
            "sip:2000@d.example.com",
            to,
            &(secret.map(auth).unwrap_or_default() + "X-Locus-Node: fs2\r\n"),
        );
        let got = p.authenticate(&snap, &f, &mut req);
        assert_eq!(got, want, "{src} {transport:?} {secret:?}");
        assert_eq!(req.headers.get("X-Locus-Auth"), None, "always removed");
        p.admit(got, &mut req, &f).unwrap();
        let kept = req.headers.get("X-Locus-Node").is_some();
        assert_eq!(kept, matches!(want, Source::Node(_)), "{src} {secret:?}");
    }
}

#[test]
fn phones_may_only_reach_our_domains_and_addresses() {
    let p = policy();
    let snap = farm().snapshot(&RoutingConfig::default());
    let phone = flow("198.51.100.20:5060");
    let src = p.classify(&snap, &phone);
    let to = "<sip:2000@d.example.com>";
    for ok in [
        "sip:2000@d.example.com",
        "sip:2000@t1.EXAMPLE.com",
        "sip:2000@proxy.example.com:5099",
        "sip:2000@203.0.113.1:5070",
        "sip:2000@10.0.0.100", // the local address it arrived at
    ] {
        let mut m = msg("INVITE", ok, to, "");
        assert_eq!(p.admit(src, &mut m, &phone), Ok(()), "{ok}");
    }
    for bad in [
        "sip:2000@evil.example.org",
        "sip:2000@203.0.113.1:5060", // our IP, not our port
        "sip:2000@10.0.0.1:5080",    // a farm node, directly
    ] {
        let mut m = msg("INVITE", bad, to, "");
        assert_eq!(
            p.admit(src, &mut m, &phone),
            Err((403, "Relaying Denied")),
            "{bad}"
        );
    }
    // REGISTER: the AOR's domain must be ours too.
    let mut m = msg(
        "REGISTER",
        "sip:proxy.example.com",
        "<sip:1001@evil.org>",
        "",
    );
    assert_eq!(p.admit(src, &mut m, &phone), Err((403, "Relaying Denied")));
    let mut m = msg(
        "REGISTER",
        "sip:proxy.example.com",
        "<sip:1001@d.example.com>",
        "",
    );
    assert_eq!(p.admit(src, &mut m, &phone), Ok(()));
    // In-dialog (To tag): the core follows our Record-Route, not the R-URI.
    let mut m = msg(
        "BYE",
        "sip:mod_sofia@10.0.0.1:5080",
        "<sip:2000@d>;tag=t",
        "",
    );
    assert_eq!(p.admit(src, &mut m, &phone), Ok(()));
    // A flow token outside a dialog would reach any address: nodes only.
    let forged = "Route: <sip:proxy.example.com;lr;flow=u~192.0.2.99:5060~0>\r\n";
    let trunk = flow("192.0.2.1:5060");
    for f in [&phone, &trunk] {
        let mut m = msg("INVITE", "sip:2000@d.example.com", to, forged);
        let src = p.classify(&snap, f);
        assert_eq!(p.admit(src, &mut m, f), Err((403, "Relaying Denied")));
    }
    let node = flow("10.0.0.1:5080");
    let mut m = msg("INVITE", "sip:2000@198.51.100.99", to, forged);
    assert_eq!(p.admit(p.classify(&snap, &node), &mut m, &node), Ok(()));
    let mut m = msg(
        "INVITE",
        "sip:2000@d.example.com",
        to,
        "Route: <sip:proxy.example.com;lr>\r\n",
    );
    assert_eq!(
        p.admit(src, &mut m, &phone),
        Ok(()),
        "a plain preloaded Route"
    );
    // Trunks and nodes may send anywhere (their calls are routed by rule 6/7).
    let mut m = msg("INVITE", "sip:+39061@evil.example.org", to, "");
    assert_eq!(p.admit(p.classify(&snap, &trunk), &mut m, &trunk), Ok(()));
}

#[test]
fn x_locus_headers_are_stripped_from_outside_the_farm_only() {
    let p = policy();
    let snap = farm().snapshot(&RoutingConfig::default());
    let extra = "X-Locus-Node: b\r\nx-locus-trace: 1\r\nX-Other: kept\r\n";
    for (src, kept) in [
        ("10.0.0.1:5080", true),
        ("192.0.2.9:5060", false),
        ("198.51.100.20:5060", false),
    ] {
        let f = flow(src);
        let mut m = msg(
            "INVITE",
            "sip:2000@d.example.com",
            "<sip:2000@d.example.com>",
            extra,
        );
        p.admit(p.classify(&snap, &f), &mut m, &f).unwrap();
        assert_eq!(m.headers.get("X-Locus-Node").is_some(), kept, "{src}");
        assert_eq!(m.headers.get("X-Locus-Trace").is_some(), kept, "{src}");
        assert_eq!(m.headers.get("X-Other"), Some("kept"));
    }
    // A foreign domain from a phone is refused, and stripped all the same.
    let f = flow("198.51.100.20:5060");
    let mut m = msg("INVITE", "sip:2000@evil.org", "<sip:2000@evil.org>", extra);
    assert!(p.admit(Source::Phone, &mut m, &f).is_err());
    assert!(m.headers.get("X-Locus-Node").is_none());
}

#[test]
fn did_longest_prefix_wins() {
    let p = policy();
    assert_eq!(p.did("+390612999"), Some("t1.example.com"));
    assert_eq!(p.did("+39061"), Some("d.example.com"));
    assert_eq!(p.did("+3906"), Some("d.example.com"));
    assert_eq!(p.did("+390612;npdi"), Some("t1.example.com"));
    assert_eq!(p.did("0612345"), Some("t1.example.com"));
    assert_eq!(p.did("061234"), None, "shorter than the only key");
    assert_eq!(p.did("390612"), None, "+ is literal");
    assert_eq!(p.did(""), None);
    assert_eq!(p.did("+39é06"), None);
    assert!(p.is_outside("+3902123456") && p.is_outside("0612345"));
    assert!(!p.is_outside("1001") && !p.is_outside("*8"));
}

#[test]
fn bad_own_addresses_are_refused() {
    let cfg = PolicyConfig::default();
    assert!(Policy::new(&cfg, vec!["[::1]:5060".into(), "::1".into()]).is_ok());
    let e = Policy::new(&cfg, vec!["host:port".into()]).unwrap_err();
    assert!(e.to_string().contains("own address"), "{e}");
}

#[test]
fn tenant_pins_come_from_the_store_and_the_config_wins() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.view.tenants.insert("D.Example.com".into(), id("b"));
    f.view.tenants.insert("t1.example.com".into(), id("c"));
    let s = Setup::vanilla(&f);
    let d = s.route(&RouteRequest::invite("2000", D, "1001", "x1"));
    assert_eq!((d.rule, d.ids()), (Rule::Tenant, vec!["b"]));
    let d = s.route(&RouteRequest::register("1001", "t1.example.com", "r1"));
    assert_eq!((d.rule, d.ids()[0]), (Rule::Register, "c"));
    // The config pin overrides the store's.
    let mut cfg = RoutingConfig::default();
    cfg.tenants.pins.insert(D.into(), id("a"));
    let s = Setup::new(&f, &cfg);
    let d = s.route(&RouteRequest::invite("2000", D, "1001", "x1"));
    assert_eq!((d.rule, d.ids()), (Rule::Tenant, vec!["a"]));
    // A store pin to a dead node: spares, else standard.
    f.dead("c");
    let s = Setup::vanilla(&f);
    let d = s.route(&RouteRequest::invite(
        "2000",
        "t1.example.com",
        "1001",
        "x1",
    ));
    assert_eq!(d.rule, Rule::Standard);
    // No store pin: standard.
    let d = s.route(&RouteRequest::invite("2000", "other.example", "1001", "x1"));
    assert_eq!(d.rule, Rule::Standard);
}
