//! `FarmRouter` end to end through the `Router` seam, on a farm kept in
//! the in-memory store and a fake registrar: REGISTER with Path, carrier
//! DIDs, rule 7, gateways, 480, 302 `X-Locus-Node`, in-flight counting.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::Arc;
use std::time::Duration;

use locus_proxy::policy::Policy;
use locus_proxy::proxy::{Dest, Fork, Label, Router, Target, Verdict};
use locus_proxy::sip::Uri;
use locus_proxy::{Engine, FarmRouter, FarmSync, RoutingConfig, Rule, routing::rendezvous};
use locus_schema::{EslLink, NodeStatus, NodeStore};
use support::rig::*;

#[tokio::test]
async fn register_gets_path_and_goes_to_the_aors_node() {
    let r = plain().await;
    let f = flow(PHONE);
    let mut req = msg(
        "REGISTER",
        "sip:d.example.com",
        "sip:1001@d.example.com",
        "sip:1001@d.example.com",
        "reg1",
    );
    let v = r.router.route(&mut req, &f).await;
    let all = [id("a"), id("b"), id("c")];
    let want = rendezvous::pick("1001@d.example.com", all.iter()).unwrap();
    assert_eq!(
        label(&v),
        Some((Label::Engine(Rule::Register), Fork::Serial))
    );
    assert_eq!(nodes(&v)[0], want.as_str());
    assert_eq!(nodes(&v).len(), 3, "failover over every node");
    let path = req.headers.get("Path").unwrap();
    assert!(path.contains(&f.token()), "{path}");
    assert_eq!(r.loc.seen.lock().unwrap().prepared, vec![f]);
    // The box's 200 goes to the registrar, and is relayed (None).
    let Verdict::Forward { targets, .. } = v else {
        panic!()
    };
    let out = r
        .router
        .on_final(&req, &f, &targets[0], &mut response(200, ""))
        .await;
    assert!(out.is_none());
    assert_eq!(
        r.loc.seen.lock().unwrap().finals,
        vec![(200, Some(want.clone()))]
    );
}

#[tokio::test]
async fn dids_go_to_the_tenants_box_by_longest_prefix() {
    let mut routing = RoutingConfig::default();
    routing
        .tenants
        .pins
        .insert("t1.example.com".into(), id("c"));
    let r = rig([0, 0, 0], &[], routing, POLICY, FakeLocation::default()).await;
    let f = flow(TRUNK);
    // +390612... -> t1 (longest prefix) -> pinned c.
    let v = r
        .router
        .route(&mut invite("sip:+39061234@10.0.0.100", "did1"), &f)
        .await;
    assert_eq!(label(&v), Some((Label::Did, Fork::Serial)));
    assert_eq!(nodes(&v), vec!["c"]);
    // +3906... -> d, not pinned: a standard placement over every node,
    // counted in flight on the first.
    let v = r
        .router
        .route(&mut invite("sip:+39065555@10.0.0.100", "did2"), &f)
        .await;
    assert_eq!(label(&v), Some((Label::Did, Fork::Serial)));
    assert_eq!(nodes(&v).len(), 3);
    assert_eq!(r.sync.inflight().count(&id(nodes(&v)[0])), 1);
    // Unknown DID.
    let v = r
        .router
        .route(&mut invite("sip:+4930123@10.0.0.100", "did3"), &f)
        .await;
    assert_eq!(status(&v), Some(404));
}

#[tokio::test]
async fn carrier_calls_never_use_feature_codes() {
    // Conference 3000 lives on busy c; a DID "3000" from the carrier is a
    // standard call (least calls: a or b), a phone dialling 3000 joins c.
    let r = rig(
        [0, 0, 50],
        &[("c", "3000")],
        RoutingConfig::default(),
        POLICY,
        FakeLocation::default(),
    )
    .await;
    let v = r
        .router
        .route(&mut invite("sip:3000@10.0.0.100", "t1"), &flow(TRUNK))
        .await;
    assert_eq!(label(&v).unwrap().0, Label::Did);
    assert_ne!(nodes(&v)[0], "c");
    let v = r
        .router
        .route(&mut invite("sip:3000@d.example.com", "p1"), &flow(PHONE))
        .await;
    assert_eq!(label(&v).unwrap().0, Label::Engine(Rule::Conference));
    assert_eq!(nodes(&v), vec!["c"]);
}

#[tokio::test]
async fn a_node_calling_a_registered_user_forks_to_its_contacts() {
    let contacts = vec![
        contact("sip:2000@198.51.100.30:5060", "198.51.100.30:5060"),
        contact("sip:2000@198.51.100.31:5062", "198.51.100.31:5062"),
    ];
    let loc = FakeLocation {
        bindings: vec![("2000@d.example.com".into(), contacts.clone())],
        ..FakeLocation::default()
    };
    let r = rig([0; 3], &[], RoutingConfig::default(), POLICY, loc).await;
    let from_a = flow("10.0.0.1:5080");
    let v = r
        .router
        .route(&mut invite("sip:2000@d.example.com", "n1"), &from_a)
        .await;
    let Verdict::Forward {
        targets,
        fork,
        label,
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(
        (targets, fork, label),
        (contacts.clone(), Fork::Parallel, Label::Location)
    );
    // A dial string pointing at the proxy: the To host names the domain.
    let mut req = msg(
        "INVITE",
        "sip:2000@proxy.example.com",
        "sip:1001@d.example.com",
        "sip:2000@d.example.com",
        "n2",
    );
    let v = r.router.route(&mut req, &from_a).await;
    assert_eq!(label_of(&v), Some(Label::Location));
    // The same INVITE from a phone is not rule 7: the engine places it.
    let v = r
        .router
        .route(&mut invite("sip:2000@d.example.com", "p2"), &flow(PHONE))
        .await;
    assert_eq!(label_of(&v), Some(Label::Engine(Rule::Standard)));
}

#[tokio::test]
async fn a_node_calling_outside_goes_to_the_gateways_in_order() {
    let r = plain().await;
    let from_b = flow("10.0.0.1:5082");
    for ruri in [
        "sip:+3902123456@d.example.com",
        "sip:alice@elsewhere.example.org",
    ] {
        let v = r.router.route(&mut invite(ruri, "g1"), &from_b).await;
        let Verdict::Forward {
            targets,
            fork,
            label,
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!((fork, label), (Fork::Serial, Label::Gateway), "{ruri}");
        let hosts: Vec<String> = targets
            .iter()
            .map(|t| match &t.dest {
                Dest::Uri(u) => u.to_string(),
                Dest::Flow(_) => String::new(),
            })
            .collect();
        assert_eq!(
            hosts,
            [
                "sip:gw1.carrier.example:5060",
                "sip:192.0.2.200:5070;transport=tcp"
            ]
        );
        let user = Uri::parse(ruri).unwrap().user;
        let r0 = targets[0].ruri.as_ref().unwrap();
        assert_eq!((&r0.user, r0.host.as_str()), (&user, "gw1.carrier.example"));
        assert!(targets.iter().all(|t| t.node.is_none()));
    }
    // Straight at another box's address: that box, never a carrier.
    let v = r
        .router
        .route(&mut invite("sip:x@10.0.0.3:5080", "g3"), &from_b)
        .await;
    assert_eq!((label_of(&v), nodes(&v)), (Some(Label::Other), vec!["c"]));
    // No gateway configured: 503.
    let r = rig(
        [0; 3],
        &[],
        RoutingConfig::default(),
        "domains = [\"d.example.com\"]",
        FakeLocation::default(),
    )
    .await;
    let v = r
        .router
        .route(&mut invite("sip:+3902123456@d.example.com", "g2"), &from_b)
        .await;
    assert_eq!(status(&v), Some(503));
}

#[tokio::test]
async fn a_node_calling_an_unknown_user_gets_480_and_feature_codes_still_route() {
    let r = rig(
        [0; 3],
        &[("b", "3001")],
        RoutingConfig::default(),
        POLICY,
        FakeLocation::default(),
    )
    .await;
    let from_a = flow("10.0.0.1:5080");
    let v = r
        .router
        .route(&mut invite("sip:2999@d.example.com", "u1"), &from_a)
        .await;
    assert_eq!(status(&v), Some(480));
    assert!(
        r.loc
            .seen
            .lock()
            .unwrap()
            .lookups
            .contains(&"2999@d.example.com".to_string())
    );
    // A conference join through the proxy: the engine's rule 3.
    let v = r
        .router
        .route(&mut invite("sip:3001@d.example.com", "u2"), &from_a)
        .await;
    assert_eq!(
        (label_of(&v), nodes(&v)),
        (Some(Label::Engine(Rule::Conference)), vec!["b"])
    );
}

#[tokio::test]
async fn a_302_with_x_locus_node_from_a_node_retargets() {
    let r = plain().await;
    let f = flow(PHONE);
    let req = invite("sip:*8@d.example.com", "x1");
    let a = Target::node(id("a"), Uri::parse("sip:10.0.0.1:5080").unwrap());
    let out = r
        .router
        .on_final(&req, &f, &a, &mut response(302, "X-Locus-Node: c\r\n"))
        .await;
    let want = Target::node(id("c"), Uri::parse("sip:10.0.0.3:5080").unwrap());
    assert_eq!(out, Some(vec![want]));
    // Not from a farm node (a phone's or gateway's branch): ignored.
    let gw = Target {
        node: None,
        ..a.clone()
    };
    let out = r
        .router
        .on_final(&req, &f, &gw, &mut response(302, "X-Locus-Node: c\r\n"))
        .await;
    assert_eq!(out, None);
    // To itself, to an unknown node, garbage, no header, not a 302: None.
    for (code, extra) in [
        (302, "X-Locus-Node: a\r\n"),
        (302, "X-Locus-Node: zz\r\n"),
        (302, "X-Locus-Node: a b\r\n"),
        (302, ""),
        (486, "X-Locus-Node: c\r\n"),
    ] {
        let out = r
            .router
            .on_final(&req, &f, &a, &mut response(code, extra))
            .await;
        assert_eq!(out, None, "{code} {extra}");
    }
}

#[tokio::test]
async fn a_302_to_a_down_node_is_ignored() {
    let r = plain().await;
    let a = Target::node(id("a"), Uri::parse("sip:10.0.0.1:5080").unwrap());
    let req = invite("sip:*8@d.example.com", "x1");
    let to_c = response(302, "X-Locus-Node: c\r\n");
    let out = r
        .router
        .on_final(&req, &flow(PHONE), &a, &mut to_c.clone())
        .await;
    assert_eq!(out.unwrap()[0].node, Some(id("c")));
    // c's ESL link drops: no longer a place to send the call.
    let status = NodeStatus {
        sip_uri: "sip:10.0.0.3:5080".into(),
        esl: EslLink::Down,
        updated_ms: 2,
        ..NodeStatus::default()
    };
    r.store
        .lease(&id("c"), &status, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(r.sync.refresh(&r.store).await);
    let out = r
        .router
        .on_final(&req, &flow(PHONE), &a, &mut to_c.clone())
        .await;
    assert_eq!(out, None);
}

#[tokio::test]
async fn admit_and_route_through_the_seam() {
    let r = plain().await;
    // Phone to a foreign domain: 403; X-Locus stripped from phones.
    let f = flow(PHONE);
    let mut req = invite("sip:2000@evil.example.org", "a1");
    assert_eq!(r.router.admit(&mut req, &f), Err((403, "Relaying Denied")));
    let mut req = invite("sip:2000@d.example.com", "a2");
    req.headers.push("X-Locus-Node", "c");
    assert_eq!(r.router.admit(&mut req, &f), Ok(()));
    assert!(req.headers.get("X-Locus-Node").is_none());
    let node = flow("10.0.0.3:5080");
    let mut req = invite("sip:2000@anything.example", "a3");
    req.headers.push("X-Locus-Node", "b");
    assert_eq!(r.router.admit(&mut req, &node), Ok(()));
    assert_eq!(req.headers.get("X-Locus-Node"), Some("b"));
    // A standard INVITE from a phone is counted in flight.
    let v = r
        .router
        .route(&mut invite("sip:2000@d.example.com", "a4"), &f)
        .await;
    assert_eq!(label_of(&v), Some(Label::Engine(Rule::Standard)));
    assert_eq!(r.sync.inflight().count(&id(nodes(&v)[0])), 1);
    // OPTIONS to the proxy itself is answered here.
    let mut ping = msg(
        "OPTIONS",
        "sip:proxy.example.com",
        "sip:carrier@x",
        "sip:proxy.example.com",
        "o1",
    );
    assert_eq!(
        status(&r.router.route(&mut ping, &flow(TRUNK)).await),
        Some(200)
    );
}

#[tokio::test]
async fn no_node_up_answers_503() {
    let empty = Arc::new(FarmSync::new(Arc::new(RoutingConfig::default())));
    let policy = Policy::new(&toml::from_str(POLICY).unwrap(), vec![]).unwrap();
    let engine = Arc::new(Engine::new(&RoutingConfig::default()).unwrap());
    let router = FarmRouter::new(policy, engine, empty, None);
    let v = router
        .route(&mut invite("sip:2000@d.example.com", "e1"), &flow(PHONE))
        .await;
    assert_eq!(status(&v), Some(503));
}

#[tokio::test]
async fn a_box_connection_serves_the_node_its_via_names() {
    // a 10.0.0.1:5080, b 10.0.0.1:5082, c 10.0.0.3:5080.
    let r = plain().await;
    let snap = r.sync.snapshot();
    let with_via = |sent_by: &str| {
        let m = invite("sip:2000@d.example.com", "conn");
        let text = String::from_utf8(m.to_bytes().to_vec())
            .unwrap()
            .replace("SIP/2.0/UDP 10.9.9.9", &format!("SIP/2.0/TCP {sent_by}"));
        locus_proxy::sip::SipMessage::parse(text.as_bytes()).unwrap()
    };
    let at = |sent_by: &str, peer: &str| {
        locus_proxy::farm::node_listener(&snap, &with_via(sent_by), peer.parse().unwrap())
            .map(|a| a.to_string())
    };
    // Two boxes on one IP: the Via's sent-by port says which.
    assert_eq!(
        at("10.0.0.1:5082", "10.0.0.1:40000").as_deref(),
        Some("10.0.0.1:5082")
    );
    assert_eq!(
        at("10.0.0.1:5080", "10.0.0.1:40001").as_deref(),
        Some("10.0.0.1:5080")
    );
    assert_eq!(at("10.0.0.1", "10.0.0.1:40002"), None, "5060 is neither");
    assert_eq!(
        at("10.0.0.7:5082", "10.0.0.1:40003"),
        None,
        "sent-by elsewhere"
    );
    // One box on its IP: that one, whatever the Via says.
    assert_eq!(
        at("box.local", "10.0.0.3:40004").as_deref(),
        Some("10.0.0.3:5080")
    );
    // Not a node's IP.
    assert_eq!(at("10.0.0.9:5080", "10.0.0.9:40005"), None);
}
