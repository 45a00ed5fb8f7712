//! Dialplan features reached by SIP: group pickup of a call the box is
//! bridging (the caller is answered, the box CANCELs its INVITE to the
//! old callee, BYE ends the picked call), pickup with nothing to pick,
//! valet park and retrieve, conference join and leave, queues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;
#[allow(unused_imports)]
mod support;

use locus_esl::Event;
use locus_proxy::sip::SipMessage;
use locus_sim::Activity;
use sip_support::{Peer, ack, answer, in_dialog, invite, sip_sim, until};
use support::Client;

fn app(name: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.get("Event-Name") == Some("CHANNEL_EXECUTE") && e.get("Application") == Some(name)
}

/// `user` dials `dest` from its own phone; returns the INVITE and the 200.
async fn answered(
    phone: &Peer,
    to: std::net::SocketAddr,
    user: &str,
    dest: &str,
    id: &str,
) -> (SipMessage, SipMessage) {
    let inv = invite(&format!("sip:{dest}@127.0.0.1"), user, phone.addr, id);
    phone.send(&inv, to).await;
    let ok = phone.expect_status(200).await;
    assert!(!ok.body.is_empty(), "200 with SDP");
    phone.send(&ack(&inv, &ok, phone.addr), to).await;
    (inv, ok)
}

#[tokio::test]
async fn group_pickup_takes_the_call_the_box_is_bridging() {
    let proxy = Peer::bind().await;
    let sim = sip_sim(Some(proxy.addr)).await;
    let to = sim.sip_addr().unwrap();
    let mut esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let caller = Peer::bind().await;
    let inv = invite("sip:1001@127.0.0.1", "1000", caller.addr, "ringing");
    caller.send(&inv, to).await;
    let (binv, _) = proxy.expect_request("INVITE").await;
    proxy
        .send(&answer(&binv, 180, "Ringing", "bt", Some(proxy.addr)), to)
        .await;
    caller.expect_status(180).await;

    let picker = Peer::bind().await;
    let (pinv, pok) = answered(&picker, to, "1002", "*8", "picker").await;
    let evs = esl.events_until(app("intercept")).await;
    let ex = evs.last().unwrap();
    assert_eq!(ex.get("Caller-Caller-ID-Number"), Some("1002"));
    // The caller is answered by the pickup; the old callee is cancelled.
    let cok = caller.expect_status(200).await;
    caller.send(&ack(&inv, &cok, caller.addr), to).await;
    let (bcancel, _) = proxy.expect_request("CANCEL").await;
    assert_eq!(bcancel.call_id().unwrap(), binv.call_id().unwrap());
    proxy
        .send(&answer(&bcancel, 200, "OK", "bt", None), to)
        .await;
    proxy
        .send(&answer(&binv, 487, "Request Terminated", "bt", None), to)
        .await;
    proxy.expect_request("ACK").await;
    let evs = esl
        .events_until(|e| e.get("Event-Name") == Some("CHANNEL_BRIDGE"))
        .await;
    assert!(
        evs.iter()
            .any(|e| e.get("Hangup-Cause") == Some("PICKED_OFF"))
    );
    let calls = sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].legs.len(), 2);

    // The picker hangs up: the caller gets the BYE.
    picker
        .send(&in_dialog("BYE", &pinv, &pok, picker.addr, 2), to)
        .await;
    picker.expect_status(200).await;
    let (bye, _) = caller.expect_request("BYE").await;
    assert_eq!(bye.call_id().unwrap(), "ringing");
    until(|| sim.channels().is_empty() && sim.sip_dialogs() == 0).await;
}

#[tokio::test]
async fn pickup_with_nothing_ringing_answers_then_hangs_up() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let mut esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let picker = Peer::bind().await;
    let inv = invite("sip:**1001@127.0.0.1", "1002", picker.addr, "empty");
    picker.send(&inv, to).await;
    let ok = picker.expect_status(200).await;
    let evs = esl.events_until(app("intercept")).await;
    assert_eq!(evs.last().unwrap().get("Application-Data"), None);
    picker.send(&ack(&inv, &ok, picker.addr), to).await;
    let (bye, _) = picker.expect_request("BYE").await;
    assert_eq!(bye.call_id().unwrap(), "empty");
    until(|| sim.channels().is_empty() && sim.sip_dialogs() == 0).await;
}

#[tokio::test]
async fn valet_park_then_retrieve_links_the_dialogs() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let parker = Peer::bind().await;
    let (_pinv, _) = answered(&parker, to, "1000", "6001", "park").await;
    until(|| {
        sim.channels()
            .iter()
            .any(|c| matches!(c.activity, Activity::Valet { .. }))
    })
    .await;
    let retriever = Peer::bind().await;
    let (rinv, rok) = answered(&retriever, to, "1003", "6001", "retrieve").await;
    until(|| sim.calls().iter().any(|c| c.legs.len() == 2)).await;
    retriever
        .send(&in_dialog("BYE", &rinv, &rok, retriever.addr, 2), to)
        .await;
    retriever.expect_status(200).await;
    let (bye, _) = parker.expect_request("BYE").await;
    assert_eq!(bye.call_id().unwrap(), "park");
    until(|| sim.channels().is_empty()).await;
}

#[tokio::test]
async fn conference_join_and_leave() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let mut esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let (a, b) = (Peer::bind().await, Peer::bind().await);
    let (ainv, aok) = answered(&a, to, "1000", "3000", "conf-a").await;
    let (binv, bok) = answered(&b, to, "1001", "3000", "conf-b").await;
    let action = |act: &'static str| {
        move |e: &Event| {
            e.get("Event-Subclass") == Some("conference::maintenance")
                && e.get("Action") == Some(act)
        }
    };
    esl.events_until(action("add-member")).await;
    let second = esl.events_until(action("add-member")).await;
    assert_eq!(second.last().unwrap().get("Conference-Size"), Some("2"));
    a.send(&in_dialog("BYE", &ainv, &aok, a.addr, 2), to).await;
    a.expect_status(200).await;
    let del = esl.events_until(action("del-member")).await;
    assert_eq!(del.last().unwrap().get("Conference-Size"), Some("1"));
    b.send(&in_dialog("BYE", &binv, &bok, b.addr, 2), to).await;
    b.expect_status(200).await;
    esl.events_until(action("conference-destroy")).await;
    until(|| sim.channels().is_empty()).await;
}

#[tokio::test]
async fn queues_answer_and_fifo_pop_bridges() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let mut esl = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let cc = Peer::bind().await;
    answered(&cc, to, "1000", "7001", "cc").await;
    let evs = esl
        .events_until(|e| e.get("CC-Action") == Some("member-queue-start"))
        .await;
    assert_eq!(evs.last().unwrap().get("CC-Queue"), Some("support@default"));

    let waiting = Peer::bind().await;
    answered(&waiting, to, "1001", "5900", "fifo-in").await;
    esl.events_until(|e| e.get("FIFO-Action") == Some("push"))
        .await;
    let consumer = Peer::bind().await;
    let (kinv, kok) = answered(&consumer, to, "1002", "5901", "fifo-out").await;
    esl.events_until(|e| e.get("FIFO-Action") == Some("consumer_pop"))
        .await;
    consumer
        .send(&in_dialog("BYE", &kinv, &kok, consumer.addr, 2), to)
        .await;
    consumer.expect_status(200).await;
    let (bye, _) = waiting.expect_request("BYE").await;
    assert_eq!(bye.call_id().unwrap(), "fifo-in");
    until(|| sim.channels().len() == 1).await;
}

#[tokio::test]
async fn unknown_numbers_and_callers_are_refused() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    p.send(&invite("sip:9999@127.0.0.1", "1000", p.addr, "nope"), to)
        .await;
    p.expect_status(404).await;
    p.send(
        &invite("sip:3000@127.0.0.1", "4242", p.addr, "stranger"),
        to,
    )
    .await;
    p.expect_status(404).await;
    assert!(sim.channels().is_empty());
}
