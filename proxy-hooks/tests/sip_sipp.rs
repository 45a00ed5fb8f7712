//! Real `sipp` against a tiny OPTIONS responder built on the transport, over
//! UDP and TCP. Skipped, with a message, when sipp is not installed.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use locus_proxy::sip::{Inbound, SipTransport, Transport, TransportConfig};
use locus_schema::testing::ports;
use support::sipp;
use tokio_util::sync::CancellationToken;

async fn responder(
    t: SipTransport,
    mut rx: tokio::sync::mpsc::Receiver<Inbound>,
    cancel: CancellationToken,
) -> usize {
    let mut answered = 0;
    loop {
        let inbound = tokio::select! {
            _ = cancel.cancelled() => return answered,
            m = rx.recv() => match m { Some(m) => m, None => return answered },
        };
        if inbound.msg.method() == Some("OPTIONS") {
            let reply = inbound.msg.reply(200, "OK", Some("locus")).to_bytes();
            t.send(inbound.source, inbound.transport, reply, inbound.conn)
                .await
                .unwrap();
            answered += 1;
        }
    }
}

async fn run_sipp(transport: Transport) {
    let Some(sipp) = sipp() else { return };
    let cancel = CancellationToken::new();
    let any = vec!["127.0.0.1:0".parse().unwrap()];
    let cfg = match transport {
        Transport::Udp => TransportConfig {
            udp: any,
            tcp: Some(Vec::new()),
            ..Default::default()
        },
        Transport::Tcp => TransportConfig {
            tcp: Some(any),
            ..Default::default()
        },
    };
    let (t, rx) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    let target = match transport {
        Transport::Udp => t.udp_addrs()[0],
        Transport::Tcp => t.tcp_addrs()[0],
    };
    let task = tokio::spawn(responder(t.clone(), rx, cancel.clone()));
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/options.xml");
    let mode = if transport == Transport::Udp {
        "u1"
    } else {
        "t1"
    };
    // sipp binds its own port: again on a fresh one if it was taken.
    let run = |port: u16| {
        let mut cmd = tokio::process::Command::new(&sipp);
        cmd.arg(target.to_string())
            .args([
                "-sf",
                scenario.to_str().unwrap(),
                "-t",
                mode,
                "-i",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &port.to_string(),
                "-m",
                "10",
                "-r",
                "50",
                "-timeout",
                "10s",
                "-timeout_error",
            ])
            .args(["-nostdin", "-trace_err", "-error_file", "/dev/stderr"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        async move {
            tokio::time::timeout(Duration::from_secs(30), cmd.output())
                .await
                .expect("sipp did not finish")
                .unwrap()
        }
    };
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let out = ports::with_port_async(loopback, None, run, |out: &std::process::Output| {
        !out.status.success() && ports::clashed(&String::from_utf8_lossy(&out.stderr))
    })
    .await
    .unwrap();
    cancel.cancel();
    let answered = task.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sipp {mode} failed: {:?}\n{stderr}",
        out.status
    );
    assert!(answered >= 10, "answered {answered}");
    assert_eq!(
        t.stats()
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn sipp_options_over_udp() {
    run_sipp(Transport::Udp).await;
}

#[tokio::test]
async fn sipp_options_over_tcp() {
    run_sipp(Transport::Tcp).await;
}
