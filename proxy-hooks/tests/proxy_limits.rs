//! The proxy core's sockets and resources (issue 7, item 7), with raw
//! peers: sends toward a flow leave from the listener it came in on; a
//! full transaction table answers 503 with Retry-After; a request too big
//! for UDP goes over TCP where the target allows it, and back to UDP when
//! TCP fails; a message gets a Content-Length before going over TCP; a
//! stray 2xx is relayed only when its top Via is ours.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use locus_proxy::proxy::{Dest, Flow, Fork, Label, Proxy, Router, StaticRouter, Target, Verdict};
use locus_proxy::sip::{
    SipCodec, SipFrame, SipMessage, SipTransport, Transport, TransportConfig, Uri,
};
use support::proxy::raw::{Peer, invite, to_tag};
use support::proxy::{fast, start, until};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

/// Sends every new request to `to` over a UDP flow that came in on the
/// listener the request reached (as a registered phone's flow would).
struct ToFlow {
    to: SocketAddr,
}

#[async_trait]
impl Router for ToFlow {
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
    async fn route(&self, _: &mut SipMessage, flow: &Flow) -> Verdict {
        let f = Flow {
            source: self.to,
            transport: Transport::Udp,
            conn: None,
            local: flow.local,
        };
        Verdict::Forward {
            targets: vec![Target {
                dest: Dest::Flow(f),
                ruri: None,
                node: None,
                route: Vec::new(),
            }],
            fork: Fork::Serial,
            label: Label::Other,
        }
    }
    async fn on_final(
        &self,
        _: &SipMessage,
        _: &Flow,
        _: &Target,
        _: &mut SipMessage,
    ) -> Option<Vec<Target>> {
        None
    }
}

#[tokio::test]
async fn sends_toward_a_flow_leave_from_the_listener_it_came_in_on() {
    let phone = Peer::bind("127.0.0.1").await;
    let caller = Peer::bind("127.0.0.1").await;
    let cancel = CancellationToken::new();
    let tcfg = TransportConfig {
        udp: vec![
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.2:0".parse().unwrap(),
        ],
        ..Default::default()
    };
    let (t, rx) = SipTransport::bind(tcfg, cancel.clone()).await.unwrap();
    let second = t.udp_addrs()[1];
    let keys = locus_proxy::proxy::FlowKeys::new(b"limits test secret", None);
    let proxy = Proxy::new(fast(), t, Arc::new(ToFlow { to: phone.addr })).with_keys(keys.clone());
    let c = cancel.clone();
    tokio::spawn(async move { proxy.run(rx, c).await });

    // The request reaches the second listener: the branch toward the
    // flow leaves from it, and says so in Via and Record-Route.
    caller.send(second, &invite("1000", "two-listeners")).await;
    let (inv, from) = phone.request("INVITE").await;
    assert_eq!(from, second, "request left from another listener");
    let via = inv.top_via().unwrap();
    assert_eq!(
        (via.host.as_str(), via.port),
        ("127.0.0.2", Some(second.port()))
    );
    let rr = inv.headers.get_all("Record-Route");
    let sig = keys.record_route_sig(inv.call_id().unwrap());
    // The phone's side of the dialog carries the (signed) flow toward it,
    // so in-dialog requests from the caller follow the same socket.
    let toward = keys.token(&Flow {
        source: phone.addr,
        transport: Transport::Udp,
        conn: None,
        local: second,
    });
    assert_eq!(
        rr,
        vec![format!("<sip:{second};lr;flow={toward};lsig={sig}>")]
    );
    phone.answer(&inv, from, 180, "Ringing", "ph").await;
    phone.answer(&inv, from, 200, "OK", "ph").await;
    // Responses to the caller leave from it too: 100 (ours), 180, 200 (relayed).
    for want in [100, 180, 200] {
        let (m, from) = caller
            .expect(WAIT, |m| m.status().is_some())
            .await
            .expect("no response");
        assert_eq!((m.status(), from), (Some(want), second));
    }
    cancel.cancel();
}

#[tokio::test]
async fn a_full_transaction_table_answers_503_with_retry_after_cancel_still_works() {
    let hole = Peer::bind("127.0.0.1").await;
    let mut cfg = fast();
    cfg.max_transactions = 1;
    let p = start(
        "127.0.0.1",
        cfg,
        Arc::new(StaticRouter::new(vec![hole.target()])),
    )
    .await
    .unwrap();
    let (a, b) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    a.send(p.udp, &invite("1000", "first")).await;
    let trying = a.expect(WAIT, |m| m.status().is_some()).await.unwrap().0;
    assert_eq!(trying.status(), Some(100));
    b.send(p.udp, &invite("1001", "second")).await;
    let (busy, _) = b
        .expect(WAIT, |m| m.status().is_some())
        .await
        .expect("no answer");
    assert_eq!(busy.status(), Some(503));
    assert_eq!(busy.headers.get("Retry-After"), Some("5"));
    assert_eq!(p.stats.overloaded(), 1);
    assert_eq!(p.stats.transactions(), 1, "the refused request opened none");
    // CANCEL opens no transaction: it still reaches the first one.
    let cancel = invite("1000", "first")
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    a.send(p.udp, &cancel).await;
    let (ok, _) = a
        .expect(WAIT, |m| m.cseq().is_ok_and(|c| c.1 == "CANCEL"))
        .await
        .unwrap();
    assert_eq!(ok.status(), Some(200));
    let (fin, _) = a
        .expect(WAIT, |m| {
            m.status().is_some_and(|s| s >= 200) && m.cseq().is_ok_and(|c| c.1 == "INVITE")
        })
        .await
        .expect("no final for the cancelled INVITE");
    assert_eq!(fin.status(), Some(487));
}

/// A box on one port over UDP and (when `tcp`) TCP, like FreeSWITCH.
async fn box_on_both(tcp: bool) -> (Peer, Option<TcpListener>) {
    for _ in 0..20 {
        let udp = Peer::bind("127.0.0.1").await;
        if !tcp {
            return (udp, None);
        }
        if let Ok(l) = TcpListener::bind(udp.addr).await {
            return (udp, Some(l));
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// The next SIP message on the first connection `l` accepts.
async fn read_tcp(l: &TcpListener) -> SipMessage {
    let (s, _) = tokio::time::timeout(WAIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut frames = FramedRead::new(s, SipCodec::default());
    loop {
        match tokio::time::timeout(WAIT, frames.next()).await.unwrap() {
            Some(Ok(SipFrame::Message(m))) => return m,
            Some(Ok(_)) => continue,
            other => panic!("no message over TCP: {other:?}"),
        }
    }
}

fn big_invite(call: &str, body: usize) -> String {
    let sdp = "a=x-pad:".to_string() + &"x".repeat(body) + "\n";
    invite("1000", call).replace(
        "Content-Length: 0\n\n",
        &format!(
            "Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
            sdp.len() + sdp.matches('\n').count()
        ),
    )
}

fn uri_target(addr: SocketAddr, params: &str) -> Target {
    Target {
        dest: Dest::Uri(Uri::parse(&format!("sip:{addr}{params}")).unwrap()),
        ruri: None,
        node: None,
        route: Vec::new(),
    }
}

#[tokio::test]
async fn a_request_too_big_for_udp_goes_over_tcp_where_the_target_allows_it() {
    let (boxx, tcp) = box_on_both(true).await;
    let tcp = tcp.unwrap();
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![boxx.target()])),
    )
    .await
    .unwrap();
    let caller = Peer::bind("127.0.0.1").await;
    caller.send(p.udp, &big_invite("big", 1400)).await;
    let m = read_tcp(&tcp).await;
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.top_via().unwrap().transport, "TCP");
    assert!(
        m.headers
            .get("Record-Route")
            .unwrap()
            .contains("transport=tcp")
    );
    assert_eq!(m.content_length().unwrap(), Some(m.body.len()));
    assert!(m.body.len() > 1400);
    assert_eq!(p.stats.upgrades(), 1);
    assert!(boxx.pending().is_empty(), "also sent over UDP");
}

#[tokio::test]
async fn a_big_request_stays_on_udp_when_tcp_fails_or_the_target_says_udp() {
    // Nothing listens on TCP: the connect fails, the request goes over UDP.
    let (boxx, _) = box_on_both(false).await;
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![boxx.target()])),
    )
    .await
    .unwrap();
    let caller = Peer::bind("127.0.0.1").await;
    caller.send(p.udp, &big_invite("big-fallback", 1400)).await;
    let (m, _) = boxx.request("INVITE").await;
    assert_eq!(m.top_via().unwrap().transport, "UDP");
    assert_eq!(p.stats.upgrades(), 0);

    // transport=udp is explicit: UDP even though TCP would work (the
    // request arrives over UDP only if no TCP send succeeded first).
    let (boxx, _tcp) = box_on_both(true).await;
    let target = uri_target(boxx.addr, ";transport=udp");
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![target])),
    )
    .await
    .unwrap();
    caller.send(p.udp, &big_invite("big-udp", 1400)).await;
    let (m, _) = boxx.request("INVITE").await;
    assert_eq!(m.top_via().unwrap().transport, "UDP");
    assert_eq!(p.stats.upgrades(), 0);
}

#[tokio::test]
async fn content_length_is_added_before_anything_goes_over_tcp() {
    // A UDP request without Content-Length (its body is the rest of the
    // datagram), forwarded to a TCP box: the box's codec needs one.
    let (_, tcp) = box_on_both(true).await;
    let tcp = tcp.unwrap();
    let target = uri_target(tcp.local_addr().unwrap(), ";transport=tcp");
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![target])),
    )
    .await
    .unwrap();
    let caller = Peer::bind("127.0.0.1").await;
    let text = invite("1000", "no-cl").replace("Content-Length: 0\n\n", "\nv=0\n");
    caller.send(p.udp, &text).await;
    let m = read_tcp(&tcp).await;
    assert_eq!(m.content_length().unwrap(), Some(5));
    assert_eq!(&m.body[..], b"v=0\r\n");

    // The other way: a UDP box's 200 without Content-Length, relayed to a
    // caller on TCP.
    let boxx = Peer::bind("127.0.0.1").await;
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![boxx.target()])),
    )
    .await
    .unwrap();
    let mut stream = TcpStream::connect(p.tcp).await.unwrap();
    let local = stream.local_addr().unwrap().to_string();
    let inv = invite("1000", "no-cl-back")
        .replace("SIP/2.0/UDP LOCAL", "SIP/2.0/TCP LOCAL")
        .replace("LOCAL", &local)
        .replace('\n', "\r\n");
    stream.write_all(inv.as_bytes()).await.unwrap();
    let (inv, from) = boxx.request("INVITE").await;
    let mut ok = inv.reply(200, "OK", Some("b"));
    ok.headers.remove_all("Content-Length");
    boxx.sock.send_to(&ok.to_bytes(), from).await.unwrap();
    let (r, _w) = stream.into_split();
    let mut frames = FramedRead::new(r, SipCodec::default());
    let mut got = Vec::new();
    while let Ok(Some(Ok(SipFrame::Message(m)))) = tokio::time::timeout(WAIT, frames.next()).await {
        let fin = m.status().is_some_and(|s| s >= 200);
        got.push(m);
        if fin {
            break;
        }
    }
    let fin = got.last().expect("nothing came back over TCP");
    assert_eq!(fin.status(), Some(200), "the 200 could not be framed");
    assert_eq!(fin.content_length().unwrap(), Some(0));
}

#[tokio::test]
async fn a_stray_2xx_is_relayed_only_when_its_top_via_is_ours() {
    let boxx = Peer::bind("127.0.0.1").await;
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![boxx.target()])),
    )
    .await
    .unwrap();
    let (caller, victim) = (Peer::bind("127.0.0.1").await, Peer::bind("127.0.0.1").await);
    caller.send(p.udp, &invite("1000", "stray")).await;
    let (inv, from) = boxx.request("INVITE").await;
    boxx.answer(&inv, from, 200, "OK", "b").await;
    caller
        .expect(WAIT, |m| m.status() == Some(200))
        .await
        .expect("no 200");
    assert!(
        until(|| p.stats.active() == 0).await,
        "transaction never ended"
    );

    // The box retransmits its 200 (no ACK yet): relayed statelessly.
    boxx.answer(&inv, from, 200, "OK", "b").await;
    let (again, _) = caller
        .expect(WAIT, |m| m.status() == Some(200))
        .await
        .expect("stray not relayed");
    assert_eq!(to_tag(&again).as_deref(), Some("b"));

    // Our top Via, but the next one rewritten toward a victim: our
    // branch's keyed hash does not vouch for it.
    let mut forged = inv.reply(200, "OK", Some("b"));
    let vias: Vec<String> = forged.vias().iter().map(|v| v.to_string()).collect();
    forged.headers.remove_all("Via");
    forged.headers.prepend(
        "Via",
        &format!("SIP/2.0/UDP {};branch=z9hG4bKv;rport", victim.addr),
    );
    forged.headers.prepend("Via", &vias[0]);
    boxx.sock.send_to(&forged.to_bytes(), p.udp).await.unwrap();
    // Not our address at all.
    let mut foreign = inv.reply(200, "OK", Some("b"));
    let branch = inv.top_via().unwrap().branch().unwrap().to_string();
    foreign.headers.set_first(
        "Via",
        &format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"),
    );
    boxx.sock.send_to(&foreign.to_bytes(), p.udp).await.unwrap();
    assert!(
        until(|| p.stats.strays() == 2).await,
        "strays: {}",
        p.stats.strays()
    );
    assert!(victim.pending().is_empty(), "a forged 2xx was reflected");
    assert!(caller.pending().is_empty(), "a foreign 2xx was relayed");
}
