//! Scripted INVITE outcomes per box (busy, unavailable, no answer,
//! ringing time, redirect), retransmissions, and the per-box counters a
//! farm test reads to see which box got which INVITE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;

use std::time::Duration;

use locus_sim::Answer;
use sip_support::{Peer, ack, cancel, invite, sip_sim, until};

#[tokio::test]
async fn busy_unavailable_and_redirect() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    for (answer, status) in [
        (Answer::Busy, 486),
        (Answer::Unavailable, 503),
        (Answer::Redirect("fs2".into()), 302),
    ] {
        sim.set_sip_answer(answer);
        let id = format!("scripted-{status}");
        let inv = invite("sip:1001@127.0.0.1", "1000", p.addr, &id);
        p.send(&inv, to).await;
        let r = p.expect_status(status).await;
        assert_eq!(r.call_id().unwrap(), id);
        assert!(r.to().unwrap().tag().is_some());
        if status == 302 {
            assert_eq!(r.headers.get("X-Locus-Node"), Some("fs2"));
            assert!(r.headers.get("Contact").unwrap().contains("sip:1001@"));
        }
        // A retransmitted INVITE gets the same final response again.
        p.send(&inv, to).await;
        let again = p.expect_status(status).await;
        assert_eq!(again.to().unwrap().tag(), r.to().unwrap().tag());
    }
    assert!(sim.channels().is_empty(), "refused before the dialplan");
}

#[tokio::test]
async fn no_answer_waits_until_cancelled() {
    let sim = sip_sim(None).await;
    sim.set_sip_answer(Answer::NoAnswer);
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    let inv = invite("sip:3000@127.0.0.1", "1000", p.addr, "silent");
    p.send(&inv, to).await;
    assert_eq!(p.recv().await.0.status(), Some(100));
    assert!(p.try_recv(Duration::from_millis(300)).await.is_none());
    p.send(&cancel(&inv), to).await;
    let c = p.recv().await.0;
    assert_eq!((c.status(), c.cseq().unwrap().1), (Some(200), "CANCEL"));
    assert_eq!(p.expect_status(487).await.cseq().unwrap().1, "INVITE");
    assert!(sim.channels().is_empty());
}

#[tokio::test]
async fn ring_then_answer() {
    let sim = sip_sim(None).await;
    sim.set_sip_answer(Answer::Ring(Duration::from_millis(100)));
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    let inv = invite("sip:3001@127.0.0.1", "1000", p.addr, "rings");
    p.send(&inv, to).await;
    let (trying, _) = p.recv().await;
    assert_eq!(trying.status(), Some(100));
    let (ringing, _) = p.recv().await;
    assert_eq!(ringing.status(), Some(180));
    assert!(sim.channels().is_empty(), "nothing answered while ringing");
    let ok = p.expect_status(200).await;
    assert_eq!(ok.to().unwrap().tag(), ringing.to().unwrap().tag());
    p.send(&ack(&inv, &ok, p.addr), to).await;
    until(|| sim.channels().len() == 1).await;
}

#[tokio::test]
async fn unacknowledged_200_is_retransmitted() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    let inv = invite("sip:3002@127.0.0.1", "1000", p.addr, "no-ack");
    p.send(&inv, to).await;
    let first = p.expect_status(200).await;
    let (again, _) = p.recv().await;
    assert_eq!(again.status(), Some(200), "retransmitted after T1");
    assert_eq!(again.to().unwrap().tag(), first.to().unwrap().tag());
    p.send(&ack(&inv, &first, p.addr), to).await;
    // After the ACK: no more 200s (the next one would come after 1 s).
    assert!(p.try_recv(Duration::from_millis(1500)).await.is_none());
}

#[tokio::test]
async fn each_box_counts_the_invites_it_got() {
    let (a, b) = (sip_sim(None).await, sip_sim(None).await);
    let p = Peer::bind().await;
    for (n, sim) in [(0, &a), (1, &a), (2, &b)] {
        let inv = invite("sip:3000@127.0.0.1", "1000", p.addr, &format!("count-{n}"));
        p.send(&inv, sim.sip_addr().unwrap()).await;
        let ok = p.expect_status(200).await;
        p.send(&ack(&inv, &ok, p.addr), sim.sip_addr().unwrap())
            .await;
    }
    until(|| a.sip_received().len() == 4 && b.sip_received().len() == 2).await;
    let invites = |s: &locus_sim::SimHandle| {
        s.sip_received()
            .into_iter()
            .filter(|r| r.method == "INVITE")
            .map(|r| (r.ruri_user.unwrap(), r.from_user.unwrap(), r.call_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        invites(&a),
        vec![
            ("3000".into(), "1000".into(), "count-0".into()),
            ("3000".into(), "1000".into(), "count-1".into())
        ]
    );
    assert_eq!(
        invites(&b),
        vec![("3000".into(), "1000".into(), "count-2".into())]
    );
}

#[tokio::test]
async fn a_new_cseq_after_a_refusal_is_a_new_attempt() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    sim.set_sip_answer(Answer::Busy);
    let mut inv = invite("sip:3000@127.0.0.1", "1000", p.addr, "retry");
    p.send(&inv, to).await;
    p.expect_status(486).await;
    sim.set_sip_answer(Answer::Normal);
    inv.headers.set("CSeq", "2 INVITE");
    p.send(&inv, to).await;
    let ok = p.expect_status(200).await;
    assert_eq!(ok.cseq().unwrap(), (2, "INVITE"));
}

#[tokio::test]
async fn bye_before_the_answer_ends_the_invite() {
    let sim = sip_sim(None).await;
    sim.set_sip_answer(Answer::NoAnswer);
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    let inv = invite("sip:3000@127.0.0.1", "1000", p.addr, "early-bye");
    p.send(&inv, to).await;
    assert_eq!(p.recv().await.0.status(), Some(100));
    let mut bye = sip_support::request("BYE", "sip:3000@127.0.0.1", "1000", p.addr, "early-bye", 2);
    bye.headers.set("From", inv.headers.get("From").unwrap());
    p.send(&bye, to).await;
    let mut got = vec![];
    for _ in 0..2 {
        let m = p.recv().await.0;
        got.push((m.status().unwrap(), m.cseq().unwrap().1.to_owned()));
    }
    got.sort();
    assert_eq!(
        got,
        vec![(200, "BYE".to_owned()), (487, "INVITE".to_owned())]
    );
    until(|| sim.sip_dialogs() == 0).await;
}

#[tokio::test]
async fn a_restart_forgets_the_dialogs() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    let inv = invite("sip:3000@127.0.0.1", "1000", p.addr, "before-restart");
    p.send(&inv, to).await;
    let ok = p.expect_status(200).await;
    p.send(&ack(&inv, &ok, p.addr), to).await;
    until(|| sim.sip_dialogs() == 1).await;
    sim.restart().await;
    assert_eq!(sim.sip_dialogs(), 0);
    p.send(&sip_support::in_dialog("BYE", &inv, &ok, p.addr, 2), to)
        .await;
    p.expect_status(481).await;
}
