//! Carriers and gateways through `locus proxy` (rule 6) with real sipp,
//! real Redis and simulated boxes: a trunk told apart by source address
//! (`127.0.0.2`; Linux routes all of 127/8 to lo) whose DID maps to a
//! pinned tenant domain, an unknown DID, the same INVITE from a
//! non-trunk; and a box's call to an outside number failing over along
//! the gateways.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use locus_proxy::policy::Trunk;
use locus_schema::NodeId;
use support::regtrust::{RawSip, request, udp_bound};
use support::sipfarm::start_sip_farm;
use support::sipp::{Sipp, free_udp_port, sipp_bin};
use support::{WAIT, closed_port, wait_until};

const CARRIER_IP: &str = "127.0.0.2";
const TENANT: &str = "tenant.test";

/// The one trunk: the carrier at [`CARRIER_IP`].
fn carrier_trunk() -> Vec<Trunk> {
    vec![Trunk {
        name: "carrier".into(),
        sources: vec![format!("{CARRIER_IP}/32")],
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_dids_route_by_tenant_and_strangers_are_refused() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |cfg| {
        cfg.policy.trunks = carrier_trunk();
        // Longest prefix wins: `9196` is the pinned tenant's, `919` (the
        // farm domain, unpinned) would spread the calls over the boxes.
        cfg.policy.dids = BTreeMap::from([
            ("919".into(), support::DOMAIN.into()),
            ("9196".into(), TENANT.into()),
        ]);
        cfg.routing.tenants.pins = BTreeMap::from([(TENANT.into(), NodeId::new("fs2").unwrap())]);
    })
    .await;

    // The carrier calls DID 9196 (the box answers it: echo) for a domain
    // that is not ours; the trunk is trusted, the DID places the calls.
    // The caller is a directory user because the simulated dialplan only
    // serves known callers.
    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", "carrier.example");
    run.local = format!("{CARRIER_IP}:0").parse().unwrap();
    run.service = "9196".into();
    run.calls = 5;
    run.rate = 10;
    run.hold_ms = 200;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "carrier sipp: {}", res.log);
    assert_eq!(res.ok, 5);
    let per_box = farm.calls_for("9196");
    assert_eq!(
        per_box,
        vec![("fs1".into(), 0), ("fs2".into(), 5), ("fs3".into(), 0)]
    );
    assert_eq!(farm.misrouted_retries(), []);
    let seen = farm.sim("fs2").sip_received();
    let first = seen.iter().find(|s| s.method == "INVITE").unwrap();
    assert_eq!(first.header("To"), Some("<sip:9196@carrier.example>"));

    // An unknown DID from the trunk: 404 from the proxy, no box sees it.
    let carrier = RawSip::bind(CARRIER_IP).await;
    let proxy = farm.proxy_udp();
    let invite = |c: &RawSip, user: &str| {
        request(
            "INVITE",
            &format!("sip:{user}@carrier.example"),
            c.local,
            "sip:+4930999@carrier.example",
            &format!("sip:{user}@carrier.example"),
            "",
        )
    };
    let (status, text) = carrier
        .final_response(proxy, &invite(&carrier, "5550000"), WAIT)
        .await
        .expect("an answer to the unknown DID");
    assert_eq!(status, 404, "{text}");

    // The same INVITE (a known DID) from an address that is no trunk: a
    // phone asking us to relay into a foreign domain, 403.
    let stranger = RawSip::bind("127.0.0.1").await;
    let (status, text) = stranger
        .final_response(proxy, &invite(&stranger, "9196"), WAIT)
        .await
        .expect("an answer to the stranger");
    assert_eq!(status, 403, "{text}");
    let total: usize = farm.calls_for("9196").iter().map(|(_, n)| n).sum();
    assert_eq!(total, 5, "the refused INVITE reached a box");
    let total: usize = farm.invites_for("5550000").iter().map(|(_, n)| n).sum();
    assert_eq!(total, 0, "the unknown DID reached a box");
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_numbers_fail_over_along_the_gateways() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    // Three gateways in order: a closed port, a socket that never answers
    // (it records what it gets), and a sipp UAS that answers.
    let closed = closed_port();
    let silent = RawSip::bind("127.0.0.1").await;
    // The gateway first, so the farm is told the port it really holds (a
    // UAS: the remote address is not used).
    let mut gw = Sipp::new("uas_answer.xml", silent.local);
    gw.service = "gw".into();
    let gw = gw.spawn().await;
    let live = gw.local;
    assert!(udp_bound(live));
    let gateways = vec![
        format!("sip:127.0.0.1:{closed}"),
        format!("sip:{}", silent.local),
        format!("sip:{live}"),
    ];
    let farm = start_sip_farm(2, |cfg| cfg.policy.gateways = gateways).await;

    // The box dials out (a scripted call: the vanilla dialplan has no
    // route for carrier numbers): INVITE sip:+4930123456@farm.test.
    let fs1 = farm.sim("fs1");
    let call_id = fs1.sip_call("1000", "+4930123456").await.unwrap();
    wait_until("the box's call answered", WAIT, || {
        fs1.sip_final(&call_id).is_some()
    })
    .await;
    assert_eq!(fs1.sip_final(&call_id), Some(200));
    let res = gw.finish(WAIT).await;
    assert_eq!(res.code, Some(0), "gateway sipp: {}", res.log);

    // The silent gateway was tried before the live one, with the R-URI
    // host rewritten to its own and the number kept.
    let got = silent
        .recv(Duration::from_millis(1))
        .await
        .expect("the silent gateway was tried");
    let line = got.lines().next().unwrap();
    assert_eq!(
        line,
        format!("INVITE sip:+4930123456@{} SIP/2.0", silent.local)
    );
    assert!(got.contains(&format!("Call-ID: {call_id}")), "{got}");
    farm.stop_proxy().await;
}

/// The third call kind of the talk, carrier to phone: a trunk's INVITE for
/// a DID that is a user's number reaches a box by the DID rule, the box
/// bridges to the user through the proxy (rule 7), the registered phone
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_call_for_a_did_rings_the_registered_phone() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |cfg| {
        cfg.policy.trunks = carrier_trunk();
        cfg.policy.dids = BTreeMap::from([("1001".into(), support::DOMAIN.into())]);
    })
    .await;
    let mut phone = Sipp::new("phone_register_answer.xml", farm.proxy_udp())
        .phone("1001", support::DOMAIN)
        .key("expires", "120")
        .auth("1001", "1234")
        .ooc("phone_answer_ooc.xml");
    phone.hold_ms = 8000;
    phone.limit_time = Duration::from_secs(40);
    let callee = phone.spawn().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while farm
        .store
        .bindings(support::DOMAIN, "1001")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "1001 never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", "carrier.example");
    run.local = SocketAddr::new(CARRIER_IP.parse().unwrap(), free_udp_port());
    run.service = "1001".into();
    run.hold_ms = 300;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "carrier: {}", res.log);
    let answered = callee.finish(Duration::from_secs(20)).await;
    assert_eq!(answered.code, Some(0), "phone: {}", answered.log);
    // One box took the carrier's INVITE and bridged it back as a call for
    // the user: the proxy saw both INVITEs and a location branch.
    let boxes: usize = farm.calls_for("1001").iter().map(|(_, n)| n).sum();
    assert_eq!(boxes, 1, "{:?}", farm.calls_for("1001"));
    assert_eq!(farm.misrouted_retries(), []);
    assert!(farm.proxy.stats.branches("did") >= 1);
    assert!(farm.proxy.stats.branches("location") >= 1);
    farm.stop_proxy().await;
}
