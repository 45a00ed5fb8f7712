//! Real `sipp` against the box: as phones calling a conference (built-in
//! `uac`), and as the callee behind the farm's proxy answering the box's
//! bridged INVITE (built-in `uas`). Skipped, with a message, when sipp is
//! not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use locus_sim::{Directory, Sim, SimConfig, SimHandle, User};
use sip_support::{Peer, ack, in_dialog, invite, until};

fn sipp() -> Option<PathBuf> {
    locus_schema::testing::sipp()
}

fn free_port() -> u16 {
    // sipp needs a concrete local port; let the OS pick one.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A box whose directory also knows `sipp` (the From user of sipp's
/// built-in scenarios), trusting its callers: the built-in `uac` cannot
/// answer a 407 (`auth_calls` off, as behind a trusted proxy).
async fn sim(proxy: Option<SocketAddr>) -> SimHandle {
    let mut directory = Directory::vanilla();
    directory.users.insert(
        "sipp".into(),
        User {
            callgroup: None,
            password: "1234".into(),
        },
    );
    Sim::start(SimConfig {
        heartbeat: None,
        sip_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        proxy,
        directory,
        auth_calls: false,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn run(sipp: PathBuf, args: Vec<String>) -> Output {
    tokio::time::timeout(
        Duration::from_secs(40),
        tokio::process::Command::new(sipp)
            .args(args)
            .args(["-i", "127.0.0.1", "-timeout", "20s", "-timeout_error"])
            .args(["-nostdin", "-trace_err", "-error_file", "/dev/stderr"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("sipp did not finish")
    .unwrap()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "sipp failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sipp_phones_join_a_conference() {
    let Some(sipp) = sipp() else { return };
    let sim = sim(None).await;
    let to = sim.sip_addr().unwrap();
    let args = ["-sn", "uac", "-s", "3000", "-m", "3", "-r", "10", "-p"]
        .into_iter()
        .map(str::to_owned)
        .chain([free_port().to_string(), to.to_string()])
        .collect();
    let out = run(sipp, args).await;
    assert_ok(&out);
    let count = |m: &str| sim.sip_received().iter().filter(|r| r.method == m).count();
    assert_eq!(count("INVITE"), 3);
    assert_eq!(count("BYE"), 3);
    until(|| sim.channels().is_empty() && sim.sip_dialogs() == 0).await;
}

#[tokio::test]
async fn sipp_answers_the_bridged_call() {
    let Some(sipp) = sipp() else { return };
    let port = free_port();
    let proxy = SocketAddr::from(([127, 0, 0, 1], port));
    let sim = sim(Some(proxy)).await;
    let to = sim.sip_addr().unwrap();
    let args = ["-sn", "uas", "-m", "1", "-p"]
        .into_iter()
        .map(str::to_owned)
        .chain([port.to_string()])
        .collect();
    let callee = tokio::spawn(run(sipp, args));
    // sipp may not listen yet: the box retransmits its INVITE (timer A).
    let phone = Peer::bind().await;
    let inv = invite("sip:1001@127.0.0.1", "1000", phone.addr, "to-sipp");
    phone.send(&inv, to).await;
    phone.expect_status(180).await;
    let ok = phone.expect_status(200).await;
    phone.send(&ack(&inv, &ok, phone.addr), to).await;
    until(|| sim.calls().first().is_some_and(|c| c.answered)).await;
    phone
        .send(&in_dialog("BYE", &inv, &ok, phone.addr, 2), to)
        .await;
    phone.expect_status(200).await;
    assert_ok(&callee.await.unwrap());
    until(|| sim.channels().is_empty() && sim.sip_dialogs() == 0).await;
}
