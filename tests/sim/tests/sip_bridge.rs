//! Phone -> phone through the box: the phone's INVITE (from the proxy) is
//! bridged by a new INVITE `sip:EXT@domain` to the proxy; its 180 and 200
//! come back to the caller, BYE from either side ends both dialogs and
//! the ESL legs; failures and CANCEL propagate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;
#[allow(unused_imports)]
mod support;

use bytes::Bytes;
use locus_esl::Event;
use locus_proxy::sip::SipMessage;
use locus_sim::{CallState, SimHandle};
use sip_support::{Peer, ack, answer, cancel, in_dialog, invite, ruri_user, sip_sim, until};
use support::Client;

const SDP: &[u8] = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n";

struct Farm {
    sim: SimHandle,
    phone: Peer,
    proxy: Peer,
    esl: Client,
}

async fn farm() -> Farm {
    let proxy = Peer::bind().await;
    let sim = sip_sim(Some(proxy.addr)).await;
    let esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    Farm {
        sim,
        phone: Peer::bind().await,
        proxy,
        esl,
    }
}

fn named(name: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.get("Event-Name") == Some(name)
}

/// 1000 calls 1001; returns the phone's INVITE and the box's INVITE as the
/// proxy got it.
async fn dial(f: &Farm, call_id: &str) -> (SipMessage, SipMessage) {
    let to = f.sim.sip_addr().unwrap();
    let inv = invite("sip:1001@127.0.0.1", "1000", f.phone.addr, call_id);
    f.phone.send(&inv, to).await;
    let (trying, _) = f.phone.recv().await;
    assert_eq!(trying.status(), Some(100));
    let (binv, from) = f.proxy.expect_request("INVITE").await;
    assert_eq!(from, to, "the box sends from its SIP port");
    (inv, binv)
}

fn ok_with_sdp(binv: &SipMessage, proxy: &Peer) -> SipMessage {
    let mut ok = answer(binv, 200, "OK", "btag", Some(proxy.addr));
    ok.headers
        .push("Record-Route", &format!("<sip:{};lr>", proxy.addr));
    ok.headers.push("Content-Type", "application/sdp");
    ok.set_body(Bytes::from_static(SDP));
    ok
}

#[tokio::test]
async fn bridged_call_rings_answers_and_hangs_up_from_the_caller() {
    let mut f = farm().await;
    let to = f.sim.sip_addr().unwrap();
    let (inv, binv) = dial(&f, "call-a").await;
    assert_eq!(
        binv.request_uri().unwrap().to_string(),
        "sip:1001@127.0.0.1"
    );
    assert_eq!(sip_support_from_user(&binv), "1000");
    assert_ne!(binv.call_id().unwrap(), "call-a", "a leg of its own");
    assert!(!binv.body.is_empty(), "the box offers SDP");
    assert!(binv.headers.get("Route").is_none());

    f.proxy
        .send(
            &answer(&binv, 180, "Ringing", "btag", Some(f.proxy.addr)),
            to,
        )
        .await;
    let ringing = f.phone.expect_status(180).await;
    assert!(ringing.to().unwrap().tag().is_some());
    f.esl.events_until(named("CHANNEL_PROGRESS")).await;
    let b = f
        .sim
        .channels()
        .into_iter()
        .find(|c| c.user == "1001")
        .unwrap();
    assert_eq!(b.callstate, CallState::Ringing);

    f.proxy.send(&ok_with_sdp(&binv, &f.proxy), to).await;
    let (back, _) = f.proxy.expect_request("ACK").await;
    assert_eq!(back.call_id().unwrap(), binv.call_id().unwrap());
    assert_eq!(
        back.request_uri().unwrap().to_string(),
        format!("sip:1001@{}", f.proxy.addr)
    );
    assert_eq!(
        back.headers.get("Route"),
        Some(format!("<sip:{};lr>", f.proxy.addr).as_str())
    );
    let ok = f.phone.expect_status(200).await;
    assert_eq!(ok.headers.get("Content-Type"), Some("application/sdp"));
    assert!(!ok.body.is_empty());
    assert_eq!(ok.to().unwrap().tag(), ringing.to().unwrap().tag());
    f.phone.send(&ack(&inv, &ok, f.phone.addr), to).await;
    f.esl.events_until(named("CHANNEL_BRIDGE")).await;
    let calls = f.sim.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].answered);
    assert_eq!(
        (calls[0].from.as_str(), calls[0].to.as_str()),
        ("1000", "1001")
    );
    // The legs carry the real SIP Call-IDs (the agent's `sipcalls` index).
    let (a, b) = (&calls[0].legs[0], &calls[0].legs[1]);
    assert_eq!(f.sim.var(a, "sip_call_id").as_deref(), Some("call-a"));
    assert_eq!(
        f.sim.var(a, "sip_network_port"),
        Some(f.phone.addr.port().to_string())
    );
    assert_eq!(
        f.sim.var(b, "sip_call_id").as_deref(),
        Some(binv.call_id().unwrap())
    );

    f.phone
        .send(&in_dialog("BYE", &inv, &ok, f.phone.addr, 2), to)
        .await;
    let bye_ok = f.phone.expect_status(200).await;
    assert_eq!(bye_ok.cseq().unwrap(), (2, "BYE"));
    let (bye, _) = f.proxy.expect_request("BYE").await;
    assert_eq!(bye.call_id().unwrap(), binv.call_id().unwrap());
    assert_eq!(bye.to().unwrap().tag(), Some("btag"));
    f.proxy
        .send(&answer(&bye, 200, "OK", "btag", None), to)
        .await;
    let evs = f.esl.events_until(named("CHANNEL_DESTROY")).await;
    assert!(
        evs.iter()
            .any(|e| e.get("Event-Name") == Some("CHANNEL_HANGUP"))
    );
    until(|| f.sim.calls().is_empty() && f.sim.sip_dialogs() == 0).await;
}

fn sip_support_from_user(m: &SipMessage) -> String {
    m.from().unwrap().uri.user_name().unwrap().to_owned()
}

#[tokio::test]
async fn callee_hangs_up_and_the_caller_gets_a_bye() {
    let f = farm().await;
    let to = f.sim.sip_addr().unwrap();
    let (inv, binv) = dial(&f, "call-b").await;
    let ok = ok_with_sdp(&binv, &f.proxy);
    f.proxy.send(&ok, to).await;
    f.proxy.expect_request("ACK").await;
    let aok = f.phone.expect_status(200).await;
    f.phone.send(&ack(&inv, &aok, f.phone.addr), to).await;
    until(|| f.sim.calls().first().is_some_and(|c| c.answered)).await;

    // The proxy's BYE, as the callee would send it back along the route.
    let mut bye = in_dialog("BYE", &binv, &ok, f.proxy.addr, 7);
    bye.headers.set("From", ok.headers.get("To").unwrap());
    bye.headers.set("To", binv.headers.get("From").unwrap());
    f.proxy.send(&bye, to).await;
    assert_eq!(f.proxy.expect_status(200).await.cseq().unwrap(), (7, "BYE"));
    let (abye, _) = f.phone.expect_request("BYE").await;
    assert_eq!(abye.call_id().unwrap(), "call-b");
    assert_eq!(
        abye.request_uri().unwrap().to_string(),
        format!("sip:1000@{}", f.phone.addr)
    );
    until(|| f.sim.calls().is_empty()).await;
}

#[tokio::test]
async fn callee_busy_goes_back_to_the_caller() {
    for (status, reason) in [
        (486, "Busy Here"),
        (480, "Temporarily Unavailable"),
        (503, "Service Unavailable"),
    ] {
        let f = farm().await;
        let to = f.sim.sip_addr().unwrap();
        let (_, binv) = dial(&f, &format!("busy-{status}")).await;
        f.proxy
            .send(&answer(&binv, 180, "Ringing", "bt", Some(f.proxy.addr)), to)
            .await;
        f.phone.expect_status(180).await;
        f.proxy
            .send(&answer(&binv, status, reason, "bt", None), to)
            .await;
        let (ack, _) = f.proxy.expect_request("ACK").await;
        assert_eq!(
            ack.headers.get("Via"),
            binv.headers.get("Via"),
            "non-2xx ACK: same branch"
        );
        assert_eq!(ack.to().unwrap().tag(), Some("bt"));
        let r = f.phone.expect_status(status).await;
        assert_eq!(r.call_id().unwrap(), format!("busy-{status}"));
        until(|| f.sim.calls().is_empty() && f.sim.channels().is_empty()).await;
    }
}

#[tokio::test]
async fn caller_cancels_while_the_callee_rings() {
    let mut f = farm().await;
    let to = f.sim.sip_addr().unwrap();
    let (inv, binv) = dial(&f, "call-c").await;
    f.proxy
        .send(&answer(&binv, 180, "Ringing", "bt", Some(f.proxy.addr)), to)
        .await;
    f.phone.expect_status(180).await;
    f.phone.send(&cancel(&inv), to).await;
    let c_ok = f.phone.recv().await.0;
    assert_eq!(
        (c_ok.status(), c_ok.cseq().unwrap().1),
        (Some(200), "CANCEL")
    );
    let terminated = f.phone.expect_status(487).await;
    assert_eq!(terminated.cseq().unwrap().1, "INVITE");
    let (bcancel, _) = f.proxy.expect_request("CANCEL").await;
    assert_eq!(bcancel.call_id().unwrap(), binv.call_id().unwrap());
    assert_eq!(bcancel.headers.get("Via"), binv.headers.get("Via"));
    f.proxy
        .send(&answer(&bcancel, 200, "OK", "bt", None), to)
        .await;
    f.proxy
        .send(&answer(&binv, 487, "Request Terminated", "bt", None), to)
        .await;
    f.proxy.expect_request("ACK").await;
    let evs = f
        .esl
        .events_until(|e| {
            e.get("Event-Name") == Some("CHANNEL_HANGUP_COMPLETE")
                && e.get("Caller-Caller-ID-Number") == Some("1000")
        })
        .await;
    assert!(
        evs.iter()
            .any(|e| e.get("Hangup-Cause") == Some("ORIGINATOR_CANCEL"))
    );
    until(|| f.sim.channels().is_empty()).await;
    // The phone ACKs the 487; the box forgets the call.
    let mut a = cancel(&inv);
    a.headers.set("CSeq", "1 ACK");
    if let locus_proxy::sip::StartLine::Request { method, .. } = &mut a.start {
        *method = "ACK".into();
    }
    a.headers.set("To", terminated.headers.get("To").unwrap());
    f.phone.send(&a, to).await;
    until(|| f.sim.sip_dialogs() == 0).await;
}

#[tokio::test]
async fn without_a_proxy_the_box_calls_the_registration_or_answers_480() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let phone = Peer::bind().await;
    phone
        .send(
            &invite("sip:1001@127.0.0.1", "1000", phone.addr, "nowhere"),
            to,
        )
        .await;
    phone.expect_status(480).await;
    until(|| sim.channels().is_empty()).await;

    // 1001 registers at the box, through a "proxy" that adds a Path.
    let callee = Peer::bind().await;
    let edge = Peer::bind().await;
    let mut reg = sip_support::request("REGISTER", "sip:127.0.0.1", "1001", callee.addr, "r1", 1);
    reg.headers.set("To", "<sip:1001@127.0.0.1>");
    reg.headers.push("Path", &format!("<sip:{};lr>", edge.addr));
    callee.send(&reg, to).await;
    let ch = callee.expect_status(401).await;
    let ch = ch.headers.get("WWW-Authenticate").unwrap();
    reg.headers.set("CSeq", "2 REGISTER");
    reg.headers.push(
        "Authorization",
        &sip_support::authorization(ch, "1001", "1234", "sip:127.0.0.1", true),
    );
    callee.send(&reg, to).await;
    callee.expect_status(200).await;

    phone
        .send(
            &invite("sip:1001@127.0.0.1", "1000", phone.addr, "direct"),
            to,
        )
        .await;
    let (binv, _) = edge.expect_request("INVITE").await;
    assert_eq!(ruri_user(&binv), "1001");
    assert_eq!(
        binv.request_uri().unwrap().port,
        Some(callee.addr.port()),
        "R-URI: the contact"
    );
    assert_eq!(
        binv.headers.get("Route"),
        Some(format!("<sip:{};lr>", edge.addr).as_str())
    );
}

#[tokio::test]
async fn the_box_hangs_up_both_sides() {
    let f = farm().await;
    let to = f.sim.sip_addr().unwrap();
    let (inv, binv) = dial(&f, "call-d").await;
    f.proxy.send(&ok_with_sdp(&binv, &f.proxy), to).await;
    f.proxy.expect_request("ACK").await;
    let aok = f.phone.expect_status(200).await;
    f.phone.send(&ack(&inv, &aok, f.phone.addr), to).await;
    until(|| f.sim.calls().first().is_some_and(|c| c.answered)).await;

    assert!(f.sim.sip_hangup("call-d").await);
    let (abye, _) = f.phone.expect_request("BYE").await;
    assert_eq!(abye.call_id().unwrap(), "call-d");
    let (bbye, _) = f.proxy.expect_request("BYE").await;
    assert_eq!(bbye.call_id().unwrap(), binv.call_id().unwrap());
    until(|| f.sim.channels().is_empty() && f.sim.sip_dialogs() == 0).await;
    assert!(!f.sim.sip_hangup("call-d").await);

    // While the callee still rings: the caller gets 487, the callee a CANCEL.
    let (_, binv) = dial(&f, "call-e").await;
    f.proxy
        .send(&answer(&binv, 180, "Ringing", "bt", Some(f.proxy.addr)), to)
        .await;
    f.phone.expect_status(180).await;
    assert!(f.sim.sip_hangup("call-e").await);
    f.phone.expect_status(487).await;
    let (c, _) = f.proxy.expect_request("CANCEL").await;
    assert_eq!(c.call_id().unwrap(), binv.call_id().unwrap());
    until(|| f.sim.channels().is_empty()).await;
}
