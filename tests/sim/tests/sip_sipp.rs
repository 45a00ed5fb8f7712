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

use locus_schema::testing::ports;
use locus_sim::{Directory, Sim, SimConfig, SimHandle, User};
use sip_support::{Peer, ack, in_dialog, invite, until};

fn sipp() -> Option<PathBuf> {
    locus_schema::testing::sipp()
}

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

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

/// `sipp ARGS -p PORT ...` on 127.0.0.1, to its end (bounded); again on
/// a fresh port if sipp found its port taken.
async fn run(sipp: PathBuf, args: Vec<String>) -> Output {
    let once = |port: u16| {
        let mut cmd = command(&sipp, &args, port);
        async move {
            tokio::time::timeout(Duration::from_secs(40), cmd.output())
                .await
                .expect("sipp did not finish")
                .unwrap()
        }
    };
    ports::with_port_async(LOOPBACK, None, once, |out: &Output| {
        !out.status.success() && ports::clashed(&String::from_utf8_lossy(&out.stderr))
    })
    .await
    .unwrap()
}

fn command(sipp: &PathBuf, args: &[String], port: u16) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(sipp);
    cmd.args(args)
        .args(["-p", &port.to_string()])
        .args(["-i", "127.0.0.1", "-timeout", "20s", "-timeout_error"])
        .args(["-nostdin", "-trace_err", "-error_file", "/dev/stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
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
    let args = ["-sn", "uac", "-s", "3000", "-m", "3", "-r", "10"]
        .into_iter()
        .map(str::to_owned)
        .chain([to.to_string()])
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
    // sipp first, holding its port; then the box, told where it is.
    let args: Vec<String> = ["-sn", "uas", "-m", "1"].map(str::to_owned).into();
    let (spawned, port) = ports::spawn_bound(LOOPBACK, None, Duration::from_secs(10), |p| {
        command(&sipp, &args, p)
    })
    .await
    .unwrap();
    let ports::Spawned::Listening(child) = spawned else {
        panic!("sipp ended before binding: {spawned:?}")
    };
    let callee = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
            .await
            .expect("sipp did not finish")
            .unwrap()
    });
    let sim = sim(Some(SocketAddr::from(([127, 0, 0, 1], port)))).await;
    let to = sim.sip_addr().unwrap();
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
