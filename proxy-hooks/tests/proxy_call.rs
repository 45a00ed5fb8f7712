//! Real calls through the proxy core: sipp UAC -> proxy -> sipp UAS,
//! INVITE/100/180/200/ACK/BYE/200 with Record-Route and the in-dialog
//! requests routed back through the proxy; over UDP, TCP (double
//! Record-Route towards a UDP UAS) and IPv6.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use locus_proxy::proxy::StaticRouter;
use locus_proxy::sip::{NameAddr, SipCodec, SipFrame, SipMessage};
use support::proxy::raw::{Peer, invite};
use support::proxy::{fast, ok, sipp, start, uac, uas};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

#[tokio::test]
async fn twenty_calls_over_udp_with_record_route_and_bye_through_the_proxy() {
    if sipp().is_none() {
        return;
    }
    let b = uas("uas-call.xml", "127.0.0.1", false, 20, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![b.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    let out = uac("uac-call.xml", p.udp, false, 20, &["-s", "1000"]).await;
    ok(&out, "UAC");
    b.finish().await;
    let s = &p.stats;
    assert_eq!(s.requests("INVITE"), 20);
    assert!(s.requests("BYE") >= 20, "BYEs went around the proxy");
    assert!(s.requests("ACK") >= 20, "ACKs went around the proxy");
    assert_eq!(s.branches("other"), 20);
    assert!(s.relayed_class(200) >= 40, "200 to INVITE and BYE");
    assert!(s.relayed_class(180) >= 20);
    assert!(s.replies(100) >= 20, "100 Trying");
    assert_eq!(s.failovers(), 0);
}

#[tokio::test]
async fn a_call_over_tcp_to_a_udp_box_double_record_routes() {
    if sipp().is_none() {
        return;
    }
    let b = uas("uas-call.xml", "127.0.0.1", false, 2, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![b.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    let out = uac("uac-call.xml", p.tcp, true, 2, &["-s", "1000"]).await;
    ok(&out, "UAC over TCP");
    b.finish().await;
    assert!(p.stats.requests("BYE") >= 2);
}

/// The two entries of a double Record-Route (RFC 5658), checked by their
/// parts (other parameters, a signature for one, may come along): the top
/// one names the side toward `out` (UDP), the next the side toward `inn`
/// (TCP), both with `lr` and `r2=on`.
fn assert_double_record_route(rr: &[NameAddr], out: SocketAddr, inn: SocketAddr, what: &str) {
    assert_eq!(rr.len(), 2, "{what}: two Record-Route entries: {rr:?}");
    for (entry, side, tcp) in [(&rr[0], out, false), (&rr[1], inn, true)] {
        let u = &entry.uri;
        assert_eq!(
            (u.host.as_str(), u.port),
            (side.ip().to_string().as_str(), Some(side.port())),
            "{what}: entry names the wrong side: {rr:?}"
        );
        let transport = u.params.get("transport").flatten();
        assert_eq!(
            transport.map(str::to_ascii_lowercase),
            tcp.then(|| "tcp".to_owned()),
            "{what}: transport of {u:?}"
        );
        assert!(u.params.get("lr").is_some(), "{what}: no lr in {u:?}");
        assert_eq!(
            u.params.get("r2"),
            Some(Some("on")),
            "{what}: no r2=on in {u:?}"
        );
    }
}

/// A caller over TCP, a box over UDP: the proxy records both sides, and
/// each side's in-dialog requests come back through it.
#[tokio::test]
async fn tcp_in_udp_out_double_record_routes_with_r2_on() {
    const WAIT: Duration = Duration::from_secs(5);
    let boxx = Peer::bind("127.0.0.1").await;
    let router = Arc::new(StaticRouter::new(vec![boxx.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    let stream = TcpStream::connect(p.tcp).await.unwrap();
    let local = stream.local_addr().unwrap().to_string();
    let (r, mut w) = stream.into_split();
    let mut frames = FramedRead::new(r, SipCodec::default());
    let tcp = |text: String| {
        text.replace("SIP/2.0/UDP LOCAL", "SIP/2.0/TCP LOCAL")
            .replace("LOCAL", &local)
            .replace('\n', "\r\n")
    };
    w.write_all(tcp(invite("1000", "double-rr")).as_bytes())
        .await
        .unwrap();

    // The INVITE at the box: the box's side (UDP) on top, the caller's
    // side (TCP) below it.
    let (inv, from) = boxx.request("INVITE").await;
    assert_eq!(from, p.udp, "the INVITE left from the UDP listener");
    let rr = inv.record_routes().unwrap();
    assert_double_record_route(&rr, p.udp, p.tcp, "INVITE at the box");

    // The 200 (Record-Route echoed, RFC 3261 12.1.1) reaches the caller
    // over TCP with both entries; the caller's route set is their reverse.
    boxx.answer(&inv, from, 200, "OK", "b").await;
    let ok = next_final(&mut frames, WAIT).await;
    assert_eq!(ok.status(), Some(200));
    let rr = ok.record_routes().unwrap();
    assert_double_record_route(&rr, p.udp, p.tcp, "200 at the caller");

    // The caller's BYE, routed along that set (caller side first), reaches
    // the box over UDP through the proxy.
    let route: Vec<String> = ok
        .headers
        .get_all("Record-Route")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .rev()
        .collect();
    let bye = format!(
        "BYE sip:box@{} SIP/2.0\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bKdouble-rr-bye;rport\n\
         Route: {}\nFrom: <sip:a@example.com>;tag=caller\nTo: <sip:1000@example.com>;tag=b\n\
         Call-ID: double-rr\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        boxx.addr,
        route.join(", ")
    );
    w.write_all(tcp(bye).as_bytes()).await.unwrap();
    let (bye, from) = boxx.request("BYE").await;
    assert_eq!(from, p.udp, "the BYE came through the proxy");
    assert!(
        bye.headers.get("Route").is_none(),
        "the proxy popped both of its entries: {:?}",
        bye.headers.get_all("Route")
    );
    boxx.answer(&bye, from, 200, "OK", "b").await;
    let done = next_final(&mut frames, WAIT).await;
    assert_eq!(
        (done.status(), done.cseq().ok().map(|c| c.1.to_owned())),
        (Some(200), Some("BYE".to_owned()))
    );
}

/// The next final response on a TCP stream (panics after `within`).
async fn next_final(
    frames: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, SipCodec>,
    within: Duration,
) -> SipMessage {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(Ok(SipFrame::Message(m)))) if m.status().is_some_and(|s| s >= 200) => {
                return m;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no final response over TCP: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_call_over_tcp_end_to_end() {
    if sipp().is_none() {
        return;
    }
    let b = uas("uas-call.xml", "127.0.0.1", true, 2, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![b.target()]));
    let p = start("127.0.0.1", fast(), router).await.unwrap();
    let out = uac("uac-call.xml", p.tcp, true, 2, &["-s", "1000"]).await;
    ok(&out, "UAC over TCP");
    b.finish().await;
    assert!(p.stats.requests("BYE") >= 2);
}

#[tokio::test]
async fn a_call_over_ipv6() {
    if sipp().is_none() {
        return;
    }
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: ::1 cannot bind");
        return;
    }
    let b = uas("uas-call.xml", "::1", false, 2, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![b.target()]));
    let Some(p) = start("::1", fast(), router).await else {
        return;
    };
    let out = uac("uac-call.xml", p.udp, false, 2, &["-s", "1000"]).await;
    ok(&out, "UAC over IPv6");
    b.finish().await;
    assert!(p.stats.requests("BYE") >= 2);
}

/// A short burst (ignored by default: CPU-heavy on a shared machine):
/// `cargo test -p locus-proxy --release --test proxy_call -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore]
async fn burst_of_calls_all_complete() {
    if sipp().is_none() {
        return;
    }
    let calls: u32 = std::env::var("LOCUS_BURST_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rate = std::env::var("LOCUS_BURST_RATE").unwrap_or_else(|_| "500".into());
    let b = uas("uas-call.xml", "127.0.0.1", false, calls, &[]).await;
    let router = Arc::new(StaticRouter::new(vec![b.target()]));
    let p = start(
        "127.0.0.1",
        locus_proxy::proxy::CoreConfig::default(),
        router,
    )
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    let cpu0 = own_cpu_ticks();
    let out = uac(
        "uac-call.xml",
        p.udp,
        false,
        calls,
        &["-s", "1000", "-r", &rate, "-l", "5000"],
    )
    .await;
    let ticks = own_cpu_ticks() - cpu0;
    eprintln!(
        "{calls} calls in {:?}; proxy process CPU {} ms ({} us/call)",
        t0.elapsed(),
        ticks * 10,
        ticks * 10_000 / u64::from(calls)
    );
    if !out.status.success() {
        let mut child = b.child;
        let _ = child.start_kill();
        let uas_out = child.wait_with_output().await.unwrap();
        let err = String::from_utf8_lossy(&uas_out.stderr);
        panic!(
            "UAC failed: {}\nUAS said: {}\nstats: active {} retrans {} dropped {} 408 {}",
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(3000)
                .collect::<String>(),
            err.chars().take(3000).collect::<String>(),
            p.stats.active(),
            p.stats.retransmissions(),
            p.stats.dropped(),
            p.stats.replies(408)
        );
    }
    b.finish().await;
    assert_eq!(p.stats.requests("INVITE"), u64::from(calls));
}

/// User + system CPU of this process (not of its sipp children), in
/// clock ticks (10 ms on Linux), from /proc/self/stat.
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}
