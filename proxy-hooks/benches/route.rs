//! Micro-benchmark of `Engine::route` (and of `FarmSnapshot::build`) on a
//! 3-node farm holding 10,000 calls: ns per decision, p50 and p99, per
//! request kind and over the mix. Bounded: a fixed number of decisions.
//!
//! `cargo bench -p locus-proxy --bench route` (add `-- --quick` for a
//! short run).

#![allow(clippy::unwrap_used)] // a benchmark may unwrap its own fixtures

use std::hint::black_box;
use std::time::Instant;

use locus_proxy::{Engine, FarmSnapshot, InFlight, RouteRequest, RoutingConfig};
use locus_schema::{CallState, EslLink, FarmView, GroupEntry, NodeId, NodeView, RingEntry, Table};

const D: &str = "d.example.com";
const NODES: [&str; 3] = ["fs1", "fs2", "fs3"];
const CALLS: usize = 10_000;

fn farm() -> FarmView {
    let mut view = FarmView::default();
    for (i, n) in NODES.iter().enumerate() {
        let mut v = NodeView {
            id: Some(NodeId::new(*n).unwrap()),
            live: true,
            ..NodeView::default()
        };
        let s = &mut v.image.status;
        s.sip_uri = format!("sip:10.0.0.{}:5080", i + 1);
        s.esl = EslLink::Up;
        s.weight = 100;
        s.calls = (CALLS / 3) as u32;
        view.nodes.insert(NodeId::new(*n).unwrap(), v);
    }
    for c in 0..CALLS {
        let node = NodeId::new(NODES[c % 3]).unwrap();
        let t = &mut view.nodes.get_mut(&node).unwrap().image.tables;
        let uuid = format!("{c:08x}-0000-4000-8000-000000000000");
        let mut set = |table: Table, k: String, v: String| {
            t.entry(table).or_default().insert(k, v);
        };
        set(Table::Sipcalls, format!("cid-{c}@phone"), uuid.clone());
        let ext = 1000 + c % 2000;
        match c % 10 {
            0..=1 => {
                let r = vec![RingEntry {
                    uuid: uuid.clone(),
                    since_ms: c as u64,
                }];
                set(
                    Table::Ringing,
                    format!("{D}/{ext}"),
                    serde_json::to_string(&r).unwrap(),
                );
                let state = CallState::Ringing;
                let g = vec![GroupEntry {
                    uuid,
                    state,
                    since_ms: c as u64,
                }];
                set(
                    Table::Groups,
                    format!("{D}/g{}", c % 50),
                    serde_json::to_string(&g).unwrap(),
                );
            }
            2 => set(
                Table::Lots,
                format!("{D}/valet_parking_lot/{}", 6001 + c % 98),
                uuid,
            ),
            3 => set(Table::Rooms, format!("{D}/{}", 3000 + c % 100), "3".into()),
            _ => {}
        }
    }
    for e in 0..2000 {
        let claim = locus_schema::MemberEntry {
            groups: vec![format!("g{}", e % 50)],
            regs: vec![],
        };
        let value = serde_json::to_string(&claim).unwrap_or_default();
        let node = NodeId::new(NODES[e % 3]).unwrap();
        let t = &mut view.nodes.get_mut(&node).unwrap().image.tables;
        t.entry(Table::Members)
            .or_default()
            .insert(format!("{D}/{}", 1000 + e), value);
    }
    view
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 2_000 } else { 20_000 };
    let cfg = RoutingConfig::default();
    let view = farm();

    let mut builds = Vec::new();
    for _ in 0..if quick { 3 } else { 20 } {
        let t = Instant::now();
        black_box(FarmSnapshot::build(&view, 1, &cfg));
        builds.push(t.elapsed().as_micros() as u64);
    }
    let (b50, b99) = percentiles(builds);
    println!("snapshot build, 3 nodes / {CALLS} calls: p50 {b50} us, p99 {b99} us");

    let snap = FarmSnapshot::build(&view, 1, &cfg);
    let engine = Engine::new(&cfg).unwrap();
    let inflight = InFlight::new();
    let call_ids: Vec<String> = (0..rounds).map(|i| format!("bench-{i}@phone")).collect();
    let kinds: [(&str, &str); 6] = [
        ("standard", "1500"),
        ("group *8", "*8"),
        ("directed **EXT", "**1010"),
        ("conference", "3001"),
        ("valet", "6005"),
        ("register", ""),
    ];
    let mut all = Vec::with_capacity(rounds * (kinds.len() + 1));
    for (name, user) in kinds {
        let mut ns = Vec::with_capacity(rounds);
        for cid in &call_ids {
            let req = match name {
                "register" => RouteRequest::register("1001", D, cid),
                _ => RouteRequest::invite(user, D, "1007", cid),
            };
            let t = Instant::now();
            let d = engine.route(black_box(&snap), black_box(&req), &inflight);
            ns.push(t.elapsed().as_nanos() as u64);
            assert!(!d.targets.is_empty(), "{name}");
        }
        all.extend_from_slice(&ns);
        let (p50, p99) = percentiles(ns);
        println!("route {name:<15} p50 {p50:>6} ns  p99 {p99:>6} ns");
    }
    let mut ns = Vec::with_capacity(rounds);
    for (i, cid) in call_ids.iter().enumerate() {
        let mut req = RouteRequest::invite("1500", D, "1007", cid);
        let replaced = format!("cid-{}@phone", i % CALLS);
        req.replaces_call_id = Some(&replaced);
        let t = Instant::now();
        black_box(engine.route(&snap, &req, &inflight));
        ns.push(t.elapsed().as_nanos() as u64);
    }
    all.extend_from_slice(&ns);
    let (p50, p99) = percentiles(ns);
    println!("route {:<15} p50 {p50:>6} ns  p99 {p99:>6} ns", "replaces");
    let n = all.len();
    let (p50, p99) = percentiles(all);
    println!("route mix ({n} decisions)  p50 {p50:>6} ns  p99 {p99:>6} ns");
}
