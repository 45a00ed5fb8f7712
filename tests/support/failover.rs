//! Helpers of the failover and tenant farm tests: a burst of sipp calls
//! to one number with the INVITEs each box received for it during the
//! burst, and waits on the proxy's view of one node.

use std::collections::BTreeMap;

use locus_schema::NodeId;

use super::DOMAIN;
use super::sipfarm::SipFarm;
use super::sipp::{Sipp, SippResult};

/// The number every box answers itself (`9196` echo): a standard call
/// that stays on the box the proxy picked.
pub const ECHO: &str = "9196";

/// Requests with `method` for R-URI user `user` each box received so far.
pub fn seen(farm: &SipFarm, method: &str, user: &str) -> BTreeMap<String, usize> {
    farm.nodes
        .iter()
        .map(|n| {
            let count = n
                .sim
                .sip_received()
                .iter()
                .filter(|s| s.method == method && s.ruri_user.as_deref() == Some(user))
                .count();
            (n.id.as_str().to_owned(), count)
        })
        .collect()
}

/// `after - before`, per box.
pub fn delta(
    before: &BTreeMap<String, usize>,
    after: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

/// `n` calls from phone 1000 to `service` (each held `hold_ms`); returns
/// sipp's result and the calls per box for `service` they caused (a box
/// that got any INVITE of a call counts it once: the challenged INVITE and
/// its authenticated retry are one call).
pub async fn burst(
    farm: &SipFarm,
    service: &str,
    n: u32,
    hold_ms: u32,
) -> (SippResult, BTreeMap<String, usize>) {
    let calls = |farm: &SipFarm| -> BTreeMap<String, usize> {
        farm.calls_for(service).into_iter().collect()
    };
    let before = calls(farm);
    let mut run = Sipp::new("phone_call.xml", farm.proxy_udp()).phone("1000", DOMAIN);
    run.service = service.into();
    run.calls = n;
    run.rate = 10;
    run.hold_ms = hold_ms;
    let res = run.run().await;
    (res, delta(&before, &calls(farm)))
}

/// [`burst`] that must succeed call for call, every authenticated retry
/// on the box that challenged it.
pub async fn burst_ok(
    farm: &SipFarm,
    service: &str,
    n: u32,
    hold_ms: u32,
) -> BTreeMap<String, usize> {
    let (res, per_box) = burst(farm, service, n, hold_ms).await;
    assert_eq!(res.code, Some(0), "sipp failed: {per_box:?}\n{}", res.log);
    assert_eq!((res.ok, res.failed), (u64::from(n), 0), "{}", res.log);
    assert_eq!(farm.misrouted_retries(), [], "retries off their box");
    per_box
}

/// Waits until the proxy's view of node `id` satisfies `ok`.
pub async fn wait_node(
    farm: &SipFarm,
    id: &str,
    what: &str,
    ok: impl Fn(&locus_proxy::Node) -> bool,
) {
    let id = NodeId::new(id).unwrap();
    farm.wait_view(what, |snap| {
        snap.find(&id)
            .and_then(|i| snap.node(i))
            .is_some_and(|n| ok(n))
    })
    .await;
}

/// The box that took a call to `service` (the only one with INVITEs).
pub fn only_box(per_box: &BTreeMap<String, usize>) -> String {
    let hit: Vec<&String> = per_box
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(hit.len(), 1, "expected one box: {per_box:?}");
    hit[0].clone()
}
