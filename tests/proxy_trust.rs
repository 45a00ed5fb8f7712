//! Trust at the edge of `locus proxy`, with real Redis, simulated boxes and
//! raw UDP (or sipp) phones: malformed requests answered 400 while the
//! proxy keeps serving, malformed responses dropped silently, relaying for
//! foreign domains refused (403), and `X-Locus-*` headers stripped from a
//! phone's INVITE before a box sees it.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use locus_proxy::proxy::DropReason;
use locus_sim::VANILLA_PASSWORD;
use support::regtrust::{RawSip, request, status_of};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::sipp::{Sipp, sipp_bin};
use support::{DOMAIN, WAIT, wait_until};

/// How long "nothing comes back" is watched for.
const QUIET: Duration = Duration::from_millis(400);

/// The proxy still answers: OPTIONS to its own address, 200.
async fn proxy_answers(farm: &SipFarm, phone: &RawSip) {
    let proxy = farm.proxy_udp();
    let opts = request(
        "OPTIONS",
        &format!("sip:{proxy}"),
        phone.local,
        &format!("sip:1000@{DOMAIN}"),
        &format!("sip:{proxy}"),
        "",
    );
    let (status, text) = phone
        .final_response(proxy, &opts, WAIT)
        .await
        .expect("OPTIONS answered");
    assert_eq!(status, 200, "{text}");
}

/// INVITEs the boxes received in all.
fn invites(farm: &SipFarm) -> usize {
    farm.nodes
        .iter()
        .map(|n| {
            n.sim
                .sip_received()
                .iter()
                .filter(|s| s.method == "INVITE")
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    let farm = start_sip_farm(2, |_| {}).await;
    let phone = RawSip::bind("127.0.0.1").await;
    let proxy = farm.proxy_udp();
    let good = request(
        "INVITE",
        &format!("sip:9196@{DOMAIN}"),
        phone.local,
        &format!("sip:1000@{DOMAIN}"),
        &format!("sip:9196@{DOMAIN}"),
        "",
    );
    let no_call_id: String = good
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Call-ID:"))
        .collect();
    let bad_cseq = good.replace("CSeq: 1 INVITE", "CSeq: one INVITE");
    let wrong_method = good.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    for (what, text) in [
        ("no Call-ID", no_call_id),
        ("CSeq without a number", bad_cseq),
        ("CSeq method not the request's", wrong_method),
    ] {
        let (status, reply) = phone
            .final_response(proxy, &text, WAIT)
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(status, 400, "{what}: {reply}");
    }
    // Garbage that is not SIP at all (no Via to answer): nothing, and no
    // harm. (A socket of its own: the 400s above may be retransmitted.)
    let garbage = RawSip::bind("127.0.0.1").await;
    garbage.send(proxy, "\u{1}\u{2}GARBAGE\r\n\r\n").await;
    garbage.send(proxy, "INVITE\r\n\r\n").await;
    assert_eq!(garbage.recv(QUIET).await, None);
    assert_eq!(invites(&farm), 0, "a malformed request reached a box");
    proxy_answers(&farm, &phone).await;
    // A well-formed INVITE still routes to a box (echo answers 200, after
    // the box's challenge).
    let (status, reply) = phone
        .final_response_authed(proxy, &good, ("1000", VANILLA_PASSWORD), WAIT)
        .await
        .expect("INVITE answered");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(invites(&farm), 2, "the INVITE and its authenticated retry");
    assert_eq!(farm.misrouted_retries(), []);
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_responses_are_dropped_silently() {
    let farm = start_sip_farm(1, |_| {}).await;
    let sender = RawSip::bind("127.0.0.1").await;
    let next_hop = RawSip::bind("127.0.0.1").await;
    let proxy = farm.proxy_udp();
    // Responses whose top Via names the proxy and the next one a listener
    // of ours: forwarding them would reach `next_hop`.
    let vias = format!(
        "Via: SIP/2.0/UDP {proxy};branch=z9hG4bK-lp-forged\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bKnext\r\n",
        next_hop.local
    );
    let id = format!(
        "From: <sip:1000@{DOMAIN}>;tag=a\r\nTo: <sip:9196@{DOMAIN}>;tag=b\r\nCall-ID: forged@test\r\n"
    );
    for (what, text) in [
        (
            "no CSeq",
            format!("SIP/2.0 200 OK\r\n{vias}{id}Content-Length: 0\r\n\r\n"),
        ),
        (
            "bad status code",
            format!("SIP/2.0 2x0 OK\r\n{vias}{id}CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "no Via",
            format!("SIP/2.0 180 Ringing\r\n{id}CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
        ),
        (
            "Content-Length past the end",
            format!(
                "SIP/2.0 200 OK\r\n{vias}{id}CSeq: 1 INVITE\r\nContent-Length: 500\r\n\r\nv=0\r\n"
            ),
        ),
    ] {
        let before = farm.proxy.stats.dropped_for(DropReason::Malformed);
        sender.send(proxy, &text).await;
        // First the positive control: the proxy read it and dropped it for
        // being malformed (not lost on the way); only then is a quiet
        // window worth anything.
        wait_until(&format!("{what} counted as malformed"), WAIT, || {
            farm.proxy.stats.dropped_for(DropReason::Malformed) == before + 1
        })
        .await;
        let back = sender.recv(QUIET).await;
        assert_eq!(
            back.as_deref().and_then(status_of),
            None,
            "{what}: answered {back:?}"
        );
        assert_eq!(back, None, "{what}: something came back");
        assert_eq!(
            next_hop.recv(Duration::from_millis(50)).await,
            None,
            "{what}: forwarded"
        );
    }
    // The control: the same response well formed reaches the stray-2xx
    // path (RFC 3261 16.7 item 5), which relays only a 2xx whose top Via
    // carries our own keyed branch; this one was forged, so it is counted
    // as a stray and not relayed either.
    let strays = farm.proxy.stats.strays();
    let well_formed =
        format!("SIP/2.0 200 OK\r\n{vias}{id}CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    sender.send(proxy, &well_formed).await;
    wait_until("the forged stray counted", WAIT, || {
        farm.proxy.stats.strays() == strays + 1
    })
    .await;
    assert_eq!(
        next_hop.recv(QUIET).await,
        None,
        "a forged stray 2xx relayed"
    );
    proxy_answers(&farm, &sender).await;
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_may_not_relay_into_foreign_domains() {
    let farm = start_sip_farm(2, |_| {}).await;
    let phone = RawSip::bind("127.0.0.1").await;
    let proxy = farm.proxy_udp();
    let cases = [
        (
            "INVITE to a foreign domain",
            request(
                "INVITE",
                "sip:9196@evil.example",
                phone.local,
                &format!("sip:1000@{DOMAIN}"),
                "sip:9196@evil.example",
                "",
            ),
        ),
        (
            "REGISTER with a foreign To",
            request(
                "REGISTER",
                &format!("sip:{DOMAIN}"),
                phone.local,
                "sip:1000@evil.example",
                "sip:1000@evil.example",
                "Expires: 60\r\n",
            ),
        ),
        (
            "REGISTER to a foreign registrar",
            request(
                "REGISTER",
                "sip:evil.example",
                phone.local,
                &format!("sip:1000@{DOMAIN}"),
                &format!("sip:1000@{DOMAIN}"),
                "Expires: 60\r\n",
            ),
        ),
    ];
    for (what, text) in cases {
        let (status, reply) = phone
            .final_response(proxy, &text, WAIT)
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(status, 403, "{what}: {reply}");
    }
    let seen: usize = farm
        .nodes
        .iter()
        .map(|n| {
            n.sim
                .sip_received()
                .iter()
                .filter(|s| s.method != "OPTIONS")
                .count()
        })
        .sum();
    assert_eq!(seen, 0, "a refused request reached a box");
    // The same INVITE into our domain goes through.
    let ours = request(
        "INVITE",
        &format!("sip:9196@{DOMAIN}"),
        phone.local,
        &format!("sip:1000@{DOMAIN}"),
        &format!("sip:9196@{DOMAIN}"),
        "",
    );
    let (status, reply) = phone
        .final_response_authed(proxy, &ours, ("1000", VANILLA_PASSWORD), WAIT)
        .await
        .expect("answered");
    assert_eq!(status, 200, "{reply}");
    farm.stop_proxy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_locus_headers_from_a_phone_never_reach_a_box() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    let mut run = Sipp::new("phone_call_xlocus.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    run.service = "9196".into();
    run.calls = 3;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "sipp: {}", res.log);
    let seen: Vec<_> = farm
        .nodes
        .iter()
        .flat_map(|n| n.sim.sip_received())
        .filter(|s| s.method == "INVITE")
        .collect();
    // Three calls, each challenged once: the INVITE and its retry.
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(farm.misrouted_retries(), []);
    for s in &seen {
        // The phone's other headers arrive, the X-Locus ones do not.
        assert_eq!(s.header("User-Agent"), Some("locus-test-phone"), "{s:?}");
        let forged: Vec<_> = s
            .headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-locus-"))
            .collect();
        assert!(forged.is_empty(), "{forged:?}");
    }
    farm.stop_proxy().await;
}
