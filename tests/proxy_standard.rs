//! Standard calls through `locus proxy` to simulated boxes, with real sipp
//! phones answering the boxes' digest challenge: spread by least calls,
//! each retry on the box that challenged it.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::DOMAIN;
use support::sipfarm::start_sip_farm;
use support::sipp::{Sipp, sipp_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_calls_spread_by_least_calls() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm(3, |_| {}).await;
    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    run.service = "9196".into();
    run.calls = 30;
    run.rate = 15;
    run.hold_ms = 1500;
    let res = run.run().await;
    assert_eq!(res.code, Some(0), "sipp: {}", res.log);
    assert_eq!(res.ok, 30);
    // Every call was challenged by its box (vanilla auth-calls) and its
    // authenticated retry reached that same box (capture b0).
    assert_eq!(farm.misrouted_retries(), []);
    let invites: usize = farm.invites_for("9196").iter().map(|(_, n)| n).sum();
    assert_eq!(invites, 60, "two INVITEs a call");
    assert_eq!(farm.proxy.sync.affinity().hits(), 30);
    let per_box = farm.calls_for("9196");
    let total: usize = per_box.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 30, "{per_box:?}");
    for (id, n) in &per_box {
        // Least calls with the proxy's in-flight counts: an even spread
        // (10 each), give or take what agent updates shift.
        assert!((7..=13).contains(n), "box {id} got {n}: {per_box:?}");
    }
    farm.stop_proxy().await;
}
