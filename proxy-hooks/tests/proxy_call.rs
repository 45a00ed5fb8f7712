//! Real calls through the proxy core: sipp UAC -> proxy -> sipp UAS,
//! INVITE/100/180/200/ACK/BYE/200 with Record-Route and the in-dialog
//! requests routed back through the proxy; over UDP, TCP (double
//! Record-Route towards a UDP UAS) and IPv6.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod proxy_support;

use std::sync::Arc;

use locus_proxy::proxy::StaticRouter;
use proxy_support::{fast, ok, sipp, start, uac, uas};

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
