//! Serial failover, redirects, parallel forking and CANCEL through the
//! proxy core, with sipp at both ends.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locus_proxy::proxy::{Dest, Flow, Router, StaticRouter, Target, Verdict};
use locus_proxy::sip::{SipMessage, Uri};
use support::proxy::{fast, ok, sipp, start, uac, uas, until};

#[tokio::test]
async fn a_503_fails_over_to_the_next_target_and_the_caller_sees_200() {
    if sipp().is_none() {
        return;
    }
    let bad = uas("uas-503.xml", "127.0.0.1", false, 3, &[]).await;
    let good = uas("uas-call.xml", "127.0.0.1", false, 3, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![bad.target(), good.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    ok(
        &uac("uac-call.xml", p.udp, false, 3, &["-s", "1000"]).await,
        "UAC",
    );
    bad.finish().await; // it got its ACKs from the proxy
    good.finish().await;
    assert_eq!(p.stats.failovers(), 3);
    assert_eq!(p.stats.branches("other"), 6);
}

#[tokio::test]
async fn no_answer_within_invite_timeout_fails_over() {
    if sipp().is_none() {
        return;
    }
    // Bound but silent: an INVITE black hole.
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = Target {
        dest: Dest::Uri(Uri::parse(&format!("sip:{}", hole.local_addr().unwrap())).unwrap()),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    let good = uas("uas-call.xml", "127.0.0.1", false, 1, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![silent, good.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    let t0 = Instant::now();
    ok(
        &uac("uac-call.xml", p.udp, false, 1, &["-s", "1000"]).await,
        "UAC",
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "failed over before invite_timeout"
    );
    good.finish().await;
    assert_eq!(p.stats.failovers(), 1);
    // The black hole got the INVITE and its retransmissions (T1 = 100 ms).
    hole.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while hole.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert!(got >= 2, "INVITE retransmitted {got} times");
}

#[tokio::test]
async fn a_dead_tcp_target_fails_over_at_once() {
    if sipp().is_none() {
        return;
    }
    let closed = support::proxy::closed_port("127.0.0.1");
    let dead = Target {
        dest: Dest::Uri(Uri::parse(&format!("sip:127.0.0.1:{closed};transport=tcp")).unwrap()),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    let good = uas("uas-call.xml", "127.0.0.1", false, 1, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![dead, good.target()]));
    let mut cfg = fast();
    cfg.invite_timeout = Duration::from_secs(5);
    let p = start("127.0.0.1", cfg, router).await.unwrap();
    let t0 = Instant::now();
    ok(
        &uac("uac-call.xml", p.udp, false, 1, &["-s", "1000"]).await,
        "UAC",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "waited for a timeout instead of failing over"
    );
    good.finish().await;
    assert_eq!(p.stats.failovers(), 1);
}

#[tokio::test]
async fn nothing_reachable_gives_503_only_silence_gives_408() {
    let closed = support::proxy::closed_port("127.0.0.1");
    let dead = Target {
        dest: Dest::Uri(Uri::parse(&format!("sip:127.0.0.1:{closed};transport=tcp")).unwrap()),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    let p = start("127.0.0.1", fast(), Arc::new(StaticRouter::new(vec![dead])))
        .await
        .unwrap();
    let r = support::proxy::raw_udp(p.udp, &invite("1000")).await;
    // First the 100 Trying; the 503 follows.
    assert_eq!(r.unwrap().status(), Some(100));
    assert!(until(|| p.stats.replies(503) == 1).await, "no 503");

    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = Target {
        dest: Dest::Uri(Uri::parse(&format!("sip:{}", hole.local_addr().unwrap())).unwrap()),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    // The last target waits Timer B (64*T1 = 1.28 s here), not invite_timeout.
    let mut cfg = fast();
    cfg.t1 = Duration::from_millis(20);
    let p = start("127.0.0.1", cfg, Arc::new(StaticRouter::new(vec![silent])))
        .await
        .unwrap();
    support::proxy::raw_udp(p.udp, &invite("1001"))
        .await
        .unwrap();
    assert!(until(|| p.stats.replies(408) == 1).await, "no 408");
}

fn invite(user: &str) -> String {
    format!(
        "INVITE sip:{user}@example.com SIP/2.0\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK{user};rport\n\
         From: <sip:a@example.com>;tag=1\nTo: <sip:{user}@example.com>\nCall-ID: {user}@test\n\
         CSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    )
}

/// Routes to the first target; a 302 with `X-Locus-Node` goes to `next`.
struct Redirecting {
    first: Target,
    next: Target,
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Router for Redirecting {
    fn admit(&self, _: &mut SipMessage, _: &Flow) -> Result<(), (u16, &'static str)> {
        Ok(())
    }
    fn approve(
        &self,
        _: &SipMessage,
        _: &Flow,
        _: &locus_proxy::proxy::NextHop<'_>,
    ) -> Result<locus_proxy::proxy::Pass, (u16, &'static str)> {
        Ok(locus_proxy::proxy::Pass::Go)
    }
    async fn route(&self, _: &mut SipMessage, _: &Flow) -> Verdict {
        Verdict::Forward {
            targets: vec![self.first.clone()],
            fork: locus_proxy::proxy::Fork::Serial,
            label: locus_proxy::proxy::Label::Other,
        }
    }
    async fn on_final(
        &self,
        _: &SipMessage,
        _: &Flow,
        _: &Target,
        resp: &mut SipMessage,
    ) -> Option<Vec<Target>> {
        let node = resp.headers.get("X-Locus-Node")?.to_string();
        self.seen.lock().unwrap().push(node);
        (resp.status() == Some(302)).then(|| vec![self.next.clone()])
    }
}

#[tokio::test]
async fn a_302_with_x_locus_node_is_followed_through_on_final() {
    if sipp().is_none() {
        return;
    }
    let redirect = uas("uas-302.xml", "127.0.0.1", false, 2, &["-s", "fs2"]).await;
    let good = uas("uas-call.xml", "127.0.0.1", false, 2, &[]).await;
    let router = Arc::new(Redirecting {
        first: redirect.target(),
        next: good.target(),
        seen: Default::default(),
    });
    let p = start("127.0.0.1", fast(), router.clone()).await.unwrap();
    ok(
        &uac("uac-call.xml", p.udp, false, 2, &["-s", "1000"]).await,
        "UAC",
    );
    redirect.finish().await;
    good.finish().await;
    assert_eq!(p.stats.redirects(), 2);
    assert_eq!(p.stats.branches("redirect"), 2);
    assert_eq!(*router.seen.lock().unwrap(), vec!["fs2", "fs2"]);
}

#[tokio::test]
async fn parallel_fork_486_and_200_gives_the_caller_200() {
    if sipp().is_none() {
        return;
    }
    let busy = uas("uas-486.xml", "127.0.0.1", false, 2, &[]).await;
    let good = uas("uas-call.xml", "127.0.0.1", false, 2, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![busy.target(), good.target()]).parallel());
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    ok(
        &uac("uac-call.xml", p.udp, false, 2, &["-s", "1000"]).await,
        "UAC",
    );
    busy.finish().await;
    good.finish().await;
    assert_eq!(p.stats.branches("other"), 4);
    assert_eq!(p.stats.failovers(), 0);
    assert_eq!(p.stats.relayed_class(486), 0, "the 486 reached the caller");
}

#[tokio::test]
async fn cancel_is_forwarded_and_the_487_relayed() {
    if sipp().is_none() {
        return;
    }
    let ringing = uas("uas-cancel.xml", "127.0.0.1", false, 2, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![ringing.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    ok(
        &uac("uac-cancel.xml", p.udp, false, 2, &["-s", "1000"]).await,
        "UAC",
    );
    ringing.finish().await;
    assert_eq!(p.stats.requests("CANCEL"), 2);
    assert_eq!(p.stats.replies(200), 2, "200 for each CANCEL");
    assert_eq!(p.stats.relayed_class(487), 2);
    assert!(
        until(|| p.stats.active() == 0).await,
        "transactions left behind: {}",
        p.stats.active()
    );
}

#[tokio::test]
async fn ringing_too_long_cancels_the_branch_and_fails_over() {
    if sipp().is_none() {
        return;
    }
    // Rings, then waits for a CANCEL (answers 200 and 487): only the
    // proxy's ring_timeout can end it.
    let ringing = uas("uas-cancel.xml", "127.0.0.1", false, 1, &[]).await;
    let good = uas("uas-call.xml", "127.0.0.1", false, 1, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![ringing.target(), good.target()]));
    let mut cfg = fast();
    cfg.ring_timeout = Duration::from_millis(400);
    let p = start("127.0.0.1", cfg, router).await.unwrap();
    let t0 = Instant::now();
    ok(
        &uac("uac-call.xml", p.udp, false, 1, &["-s", "1000"]).await,
        "UAC",
    );
    assert!(t0.elapsed() >= Duration::from_millis(400));
    ringing.finish().await; // it got the CANCEL and the ACK for its 487
    good.finish().await;
    assert_eq!(p.stats.failovers(), 1);
    assert_eq!(
        p.stats.relayed_class(487),
        0,
        "the 487 of a given-up branch is absorbed"
    );
}
