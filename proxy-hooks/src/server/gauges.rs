//! Farm-view and probe metrics of a running proxy, read from live state at
//! each `/metrics` scrape: per-node routability and probe state, snapshot
//! staleness and rebuilds, probe counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::health::{Health, ProbeState};
use crate::hook::Refresh;
use crate::routing::sync::FarmSync;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabel {
    result: &'static str,
}

/// Registers the gauges; the returned closure refreshes them.
pub(super) fn register(registry: &mut Registry, sync: Arc<FarmSync>, health: Health) -> Refresh {
    let up = Family::<NodeLabel, Gauge>::default();
    let probe = Family::<NodeLabel, Gauge>::default();
    let draining = Family::<NodeLabel, Gauge>::default();
    let calls = Family::<NodeLabel, Gauge>::default();
    let probes = Family::<ProbeLabel, Gauge>::default();
    let stale = Gauge::<i64>::default();
    let rebuilds = Gauge::<i64>::default();
    let failures = Gauge::<i64>::default();
    registry.register(
        "locus_proxy_node_up",
        "1 when the node is routable (lease, ESL and probe good)",
        up.clone(),
    );
    registry.register(
        "locus_proxy_node_probe",
        "OPTIONS probe state: 1 up, 0 down, -1 not answered yet",
        probe.clone(),
    );
    registry.register(
        "locus_proxy_node_draining",
        "1 when the node takes only locality-bound calls",
        draining.clone(),
    );
    registry.register(
        "locus_proxy_node_calls",
        "Live calls as published by the node's agent",
        calls.clone(),
    );
    registry.register(
        "locus_proxy_probes",
        "OPTIONS probe outcomes since start, by result",
        probes.clone(),
    );
    registry.register(
        "locus_proxy_farm_stale",
        "1 while the farm view cannot be read from the store (routing on the last one)",
        stale.clone(),
    );
    registry.register(
        "locus_proxy_farm_rebuilds",
        "Farm snapshots built since start",
        rebuilds.clone(),
    );
    registry.register(
        "locus_proxy_farm_read_failures",
        "Failed farm reads since start",
        failures.clone(),
    );
    Arc::new(move || {
        let snap = sync.snapshot();
        up.clear();
        probe.clear();
        draining.clear();
        calls.clear();
        for n in snap.nodes() {
            let l = NodeLabel {
                node: n.id.to_string(),
            };
            up.get_or_create(&l).set(i64::from(n.up));
            draining.get_or_create(&l).set(i64::from(n.draining));
            calls.get_or_create(&l).set(i64::from(n.calls));
            let state = match health.state(&n.id) {
                Some(ProbeState::Up) => 1,
                Some(ProbeState::Down) => 0,
                Some(ProbeState::Unknown) | None => -1,
            };
            probe.get_or_create(&l).set(state);
        }
        let s = health.stats();
        let get = |a: &AtomicU64| i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        for (result, v) in [
            ("ok", &s.ok),
            ("unavailable", &s.unavailable),
            ("timeout", &s.timeouts),
            ("send_error", &s.send_errors),
        ] {
            probes.get_or_create(&ProbeLabel { result }).set(get(v));
        }
        stale.set(i64::from(sync.is_stale()));
        rebuilds.set(i64::try_from(sync.rebuilds()).unwrap_or(i64::MAX));
        failures.set(i64::try_from(sync.failures()).unwrap_or(i64::MAX));
    })
}
