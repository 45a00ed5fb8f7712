//! `FarmSnapshot::build`: node routability and the cross-node indexes,
//! from hand-built farm views, including garbage.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::RoutingConfig;
use locus_proxy::routing::config::StaticNode;
use locus_schema::{CallState, Table};
use support::{D, Farm, id};

fn ids_of(snap: &locus_proxy::FarmSnapshot, ixs: impl Iterator<Item = usize>) -> Vec<String> {
    ixs.map(|i| snap.node(i).unwrap().id.to_string()).collect()
}

#[test]
fn routability_follows_lease_esl_drain_and_role() {
    let mut f = Farm::with_nodes(&["a", "b", "c", "d", "e", "f"]);
    f.dead("b").esl_down("c").drain("d").spare("e");
    f.node("f").image.status.sip_uri.clear();
    let cfg = RoutingConfig {
        spares: vec![id("a")],
        ..RoutingConfig::default()
    };
    let snap = f.snapshot(&cfg);
    let by = |n: &str| snap.node(snap.find(&id(n)).unwrap()).unwrap().clone();
    assert!(by("a").up && by("a").spare && !by("a").takes_new());
    assert!(!by("b").up && !by("c").up);
    assert!(by("d").up && by("d").draining && !by("d").takes_new());
    assert!(by("e").spare);
    assert!(!by("f").up, "no SIP URI: nowhere to send");
    assert_eq!(snap.nodes().len(), 6);
}

#[test]
fn static_nodes_join_unless_an_agent_publishes_them() {
    let f = Farm::with_nodes(&["fs1"]);
    let st = |n: &str| StaticNode {
        id: id(n),
        sip_uri: format!("sip:{n}.static:5060"),
        weight: 0,
    };
    let cfg = RoutingConfig {
        static_nodes: vec![st("bench"), st("fs1")],
        ..RoutingConfig::default()
    };
    let snap = f.snapshot(&cfg);
    let ids: Vec<&str> = snap.nodes().iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["bench", "fs1"]);
    let bench = &snap.nodes()[0];
    assert!(bench.up && !bench.agent && bench.weight == 1);
    assert_eq!(snap.nodes()[1].sip_uri, "sip:fs1.test:5060");
}

#[test]
fn indexes_span_nodes_in_preference_order() {
    let mut f = Farm::with_nodes(&["a", "b", "c"]);
    f.ring("a", "1001", "u1", 500).ring("b", "1001", "u2", 300);
    f.ring("b", "1001", "u3", 900);
    f.group_call("a", "sales", "u1", CallState::Ringing, 500);
    f.group_call("b", "sales", "u4", CallState::Answered, 900);
    f.group_call("c", "sales", "u5", CallState::Early, 700);
    f.park("a", "valet", "6001", "p1")
        .park("c", "valet", "6002", "p2");
    f.park("c", "valet", "6003", "p3");
    f.room("a", "3001", 2)
        .room("b", "3001", 5)
        .queue("c", "5900", 1);
    f.sipcall("b", "abc@phone", "u2")
        .member("1002", &["sales", "support"]);
    let snap = f.snapshot(&RoutingConfig::default());

    let ring: Vec<(String, u64)> = snap
        .ringing(D, "1001")
        .iter()
        .map(|r| (snap.node(r.node).unwrap().id.to_string(), r.since_ms))
        .collect();
    assert_eq!(ring, [("b".to_string(), 300), ("a".to_string(), 500)]);
    let g = snap.group_calls(D, "sales");
    assert_eq!(ids_of(&snap, g.iter().map(|c| c.node)), ["c", "a", "b"]);
    assert_eq!(
        g.iter().map(|c| c.ringing).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(
        ids_of(&snap, snap.slot(D, "valet", "6002").iter().copied()),
        ["c"]
    );
    let lot = snap.lot(D, "valet");
    assert_eq!(ids_of(&snap, lot.iter().map(|c| c.node)), ["c", "a"]);
    assert_eq!(lot[0].count, 2);
    assert_eq!(
        ids_of(&snap, snap.room(D, "3001").iter().map(|c| c.node)),
        ["b", "a"]
    );
    assert_eq!(snap.queue(D, "5900")[0].count, 1);
    assert_eq!(
        ids_of(&snap, snap.sipcall("abc@phone").iter().copied()),
        ["b"]
    );
    assert_eq!(snap.groups_of(D, "1002"), ["sales", "support"]);
    // SIP hosts are case-insensitive; extensions are not touched.
    assert_eq!(snap.ringing("D.Example.COM", "1001").len(), 2);
    assert!(snap.ringing(D, "1003").is_empty() && snap.sipcall("nope").is_empty());
    assert_eq!(snap.skipped(), 0);
}

#[test]
fn dead_nodes_are_not_indexed() {
    let mut f = Farm::with_nodes(&["a", "b"]);
    f.ring("a", "1001", "u1", 1).room("a", "3001", 1).dead("a");
    f.ring("b", "1001", "u2", 2);
    let snap = f.snapshot(&RoutingConfig::default());
    assert_eq!(
        ids_of(&snap, snap.ringing(D, "1001").iter().map(|r| r.node)),
        ["b"]
    );
    assert!(snap.room(D, "3001").is_empty());
}

#[test]
fn garbage_is_skipped_and_counted() {
    let mut f = Farm::with_nodes(&["a"]);
    f.ring("a", "1001", "u1", 5);
    let junk = [
        (Table::Ringing, format!("{D}/1002"), "not json"),
        (Table::Ringing, "no-slash".to_string(), "[]"),
        (
            Table::Groups,
            format!("{D}/g"),
            r#"[{"uuid":"x","state":"dancing","since_ms":1}]"#,
        ),
        (Table::Groups, format!("{D}/h"), r#"{"uuid":"x"}"#),
        (Table::Lots, format!("{D}/lotonly"), "uuid"),
        (Table::Lots, format!("{D}/valet/6001"), ""),
        (Table::Rooms, format!("{D}/3001"), "many"),
        (Table::Rooms, format!("{D}/3002"), "-1"),
        (Table::Queues, format!("{D}/5900"), "0"),
        (Table::Sipcalls, "cid".to_string(), ""),
    ];
    for (t, field, value) in &junk {
        f.raw("a", *t, field, value);
    }
    let snap = f.snapshot(&RoutingConfig::default());
    assert_eq!(snap.skipped(), junk.len());
    assert_eq!(snap.ringing(D, "1001").len(), 1, "good values survive");
    assert!(snap.group_calls(D, "g").is_empty() && snap.room(D, "3001").is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic generator: no dependency, reproducible.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet: Vec<char> = "[]{}\":,/0123456789abc -\u{fffd}\\".chars().collect();
    let mut f = Farm::with_nodes(&["a"]);
    for round in 0..500 {
        let mut s = String::new();
        for _ in 0..(next() % 40) {
            s.push(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        let table = Table::ALL[round % Table::ALL.len()];
        f.raw("a", table, &s, &s.clone());
    }
    let snap = f.snapshot(&RoutingConfig::default());
    assert!(snap.skipped() > 0);
}
