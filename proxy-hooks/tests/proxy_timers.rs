//! The INVITE timers as operators expect them (issue 7, item 2): any
//! provisional, 100 Trying included, stops `invite_timeout` (sipp boxes
//! with 3 s and 10 s of post-dial delay ring and answer, never CANCELled,
//! under the shipped defaults); the last target waits Timer B; a branch
//! given up that answers late is CANCELled, and its late 2xx is ACKed and
//! BYEd by the proxy, never relayed beside the 2xx the caller took.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use locus_proxy::proxy::{CoreConfig, StaticRouter};
use locus_proxy::sip::SipMessage;
use support::proxy::raw::{Peer, invite, to_tag};
use support::proxy::{fast, ok, sipp, start, uac, uas};

const WAIT: Duration = Duration::from_secs(5);

/// A box that sends 100 Trying at once and 180 only after `delay`, then
/// 200; a second box behind it that must never be tried.
async fn post_dial_delay(delay: Duration) {
    if sipp().is_none() {
        return;
    }
    let ms = delay.as_millis().to_string();
    let pdd = uas("uas-pdd.xml", "127.0.0.1", false, 1, &["-d", &ms]).await;
    let spare = Peer::bind("127.0.0.1").await;
    let router = Arc::new(StaticRouter::new(vec![pdd.target(), spare.target()]));
    // The shipped defaults: invite_timeout 2 s, ring_timeout 120 s.
    let p = start("127.0.0.1", CoreConfig::default(), router)
        .await
        .unwrap();
    let t0 = Instant::now();
    let out = uac("uac-ring.xml", p.udp, false, 1, &["-s", "1000"]).await;
    ok(&out, "UAC (must get 180 then 200)");
    assert!(t0.elapsed() >= delay, "the call ended before the box rang");
    // A CANCEL would be an unexpected message to the sipp box: it fails.
    pdd.finish().await;
    assert_eq!(p.stats.failovers(), 0);
    assert!(spare.pending().is_empty(), "the next box was tried");
    assert!(p.stats.relayed_class(180) >= 1);
    assert_eq!(p.stats.replies(408), 0);
}

#[tokio::test]
async fn a_box_ringing_after_3s_of_post_dial_delay_is_never_cancelled() {
    post_dial_delay(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_box_ringing_after_10s_of_post_dial_delay_is_never_cancelled() {
    post_dial_delay(Duration::from_secs(10)).await;
}

/// Every message `peer` gets until a final response (within 5 s each).
async fn until_final(peer: &Peer) -> Vec<SipMessage> {
    let mut got = Vec::new();
    for _ in 0..100 {
        let Some((m, _)) = peer.expect(WAIT, |_| true).await else {
            break;
        };
        let fin = m.status().is_some_and(|s| s >= 200);
        got.push(m);
        if fin {
            break;
        }
    }
    got
}

#[tokio::test]
async fn a_silent_last_target_waits_timer_b_not_invite_timeout() {
    let hole = Peer::bind("127.0.0.1").await;
    let mut cfg = fast(); // invite_timeout 300 ms
    cfg.t1 = Duration::from_millis(40); // Timer B: 2.56 s
    let p = start(
        "127.0.0.1",
        cfg,
        Arc::new(StaticRouter::new(vec![hole.target()])),
    )
    .await
    .unwrap();
    let caller = Peer::bind("127.0.0.1").await;
    let t0 = Instant::now();
    caller.send(p.udp, &invite("1000", "timer-b")).await;
    let got = caller
        .expect(Duration::from_secs(10), |m| {
            m.status().is_some_and(|s| s >= 200)
        })
        .await
        .expect("no final response");
    assert_eq!(got.0.status(), Some(408));
    assert!(
        t0.elapsed() >= Duration::from_millis(40 * 64),
        "408 before Timer B"
    );
    // Timer A kept retransmitting past invite_timeout (0, 40, 120, 280,
    // 600 ms, ...): the branch was not given up at 300 ms.
    let copies = hole
        .pending()
        .iter()
        .filter(|m| m.method() == Some("INVITE"))
        .count();
    assert!(copies >= 5, "INVITE sent {copies} times");
}

#[tokio::test]
async fn a_late_2xx_from_a_given_up_branch_is_acked_and_byed_never_relayed() {
    let (slow, second, caller) = (
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
    );
    let router = Arc::new(StaticRouter::new(vec![slow.target(), second.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    caller.send(p.udp, &invite("1000", "late-2xx")).await;
    let (inv1, from1) = slow.request("INVITE").await;
    // Silent past invite_timeout: the proxy tries the second box.
    let (inv2, from2) = second.request("INVITE").await;
    second.answer(&inv2, from2, 180, "Ringing", "b2").await;
    second.answer(&inv2, from2, 200, "OK", "b2").await;
    let fin = until_final(&caller).await;
    let ok = fin.last().unwrap();
    assert_eq!(
        (ok.status(), to_tag(ok).as_deref()),
        (Some(200), Some("b2"))
    );

    // Now the given-up box answers too.
    slow.answer(&inv1, from1, 200, "OK", "b1").await;
    let (ack, _) = slow.request("ACK").await;
    let (bye, bye_from) = slow.request("BYE").await;
    for m in [&ack, &bye] {
        assert_eq!(to_tag(m).as_deref(), Some("b1"));
        assert_eq!(m.from().unwrap().tag(), Some("caller"));
        assert_eq!(m.call_id().unwrap(), "late-2xx");
        let contact = format!("sip:box@{}", slow.addr);
        assert_eq!(m.request_uri().unwrap().to_string(), contact);
        assert!(
            m.headers.get("Route").is_none(),
            "our Record-Route is not a Route"
        );
        // A 2xx's ACK is a transaction of its own (RFC 3261 17.1.1.3).
        assert_ne!(
            m.top_via().unwrap().branch(),
            inv1.top_via().unwrap().branch()
        );
    }
    assert_eq!(ack.cseq().unwrap(), (1, "ACK"));
    assert_eq!(bye.cseq().unwrap(), (2, "BYE"));
    slow.answer(&bye, bye_from, 200, "OK", "b1").await;
    // The relay would have left before the BYE: nothing more reached the caller.
    assert!(caller.pending().is_empty(), "b1's 200 reached the caller");
    // Its 200 again (as if our ACK were lost): ACKed again, still not relayed.
    slow.answer(&inv1, from1, 200, "OK", "b1").await;
    slow.request("ACK").await;
    assert!(
        caller.pending().is_empty(),
        "a retransmitted 200 reached the caller"
    );
    assert_eq!(p.stats.released(), 1);
    assert_eq!(p.stats.relayed_class(200), 1);
}

#[tokio::test]
async fn a_given_up_branch_that_rings_late_is_cancelled_and_its_487_absorbed() {
    let (slow, second, caller) = (
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
    );
    let router = Arc::new(StaticRouter::new(vec![slow.target(), second.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    caller.send(p.udp, &invite("1000", "late-ring")).await;
    let (inv1, from1) = slow.request("INVITE").await;
    let (inv2, from2) = second.request("INVITE").await;
    slow.answer(&inv1, from1, 180, "Ringing", "b1").await;
    let (cancel, _) = slow.request("CANCEL").await;
    assert_eq!(cancel.cseq().unwrap(), (1, "CANCEL"));
    assert_eq!(cancel.vias(), inv1.vias()[..1].to_vec());
    slow.answer(&cancel, from1, 200, "OK", "b1").await;
    slow.answer(&inv1, from1, 487, "Request Terminated", "b1")
        .await;
    let (ack, _) = slow.request("ACK").await;
    assert_eq!(
        ack.vias(),
        inv1.vias()[..1].to_vec(),
        "non-2xx ACK: same branch"
    );
    second.answer(&inv2, from2, 200, "OK", "b2").await;
    let got = until_final(&caller).await;
    let statuses: Vec<_> = got.iter().filter_map(SipMessage::status).collect();
    assert_eq!(
        statuses,
        vec![100, 200],
        "the caller heard the given-up box"
    );
    assert_eq!(to_tag(got.last().unwrap()).as_deref(), Some("b2"));
    assert_eq!(p.stats.failovers(), 1);
}

#[tokio::test]
async fn a_late_2xx_before_any_answer_wins_and_the_branch_cancelled_for_it_is_released() {
    let (slow, second, caller) = (
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
        Peer::bind("127.0.0.1").await,
    );
    let router = Arc::new(StaticRouter::new(vec![slow.target(), second.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    caller.send(p.udp, &invite("1000", "late-win")).await;
    let (inv1, from1) = slow.request("INVITE").await;
    let (inv2, from2) = second.request("INVITE").await;
    // The caller still waits: the slow box's 200 is the answer.
    slow.answer(&inv1, from1, 200, "OK", "b1").await;
    let got = until_final(&caller).await;
    let ok = got.last().unwrap();
    assert_eq!(
        (ok.status(), to_tag(ok).as_deref()),
        (Some(200), Some("b1"))
    );
    // The second box, silent so far, is CANCELled on its first response...
    second.answer(&inv2, from2, 180, "Ringing", "b2").await;
    let (cancel, _) = second.request("CANCEL").await;
    second.answer(&cancel, from2, 200, "OK", "b2").await;
    // ...and answers 200 anyway (crossing the CANCEL): released, not relayed.
    second.answer(&inv2, from2, 200, "OK", "b2").await;
    second.request("ACK").await;
    let (bye, _) = second.request("BYE").await;
    assert_eq!(to_tag(&bye).as_deref(), Some("b2"));
    assert!(
        caller.pending().iter().all(|m| m.status() != Some(200)),
        "a second 200 reached the caller"
    );
    assert_eq!(p.stats.released(), 1);
    assert_eq!(p.stats.relayed_class(200), 1);
}
