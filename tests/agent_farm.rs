//! Several boxes in one farm: each agent writes only its own node's keys,
//! stopping one leaves the other alone, and a crashed agent's node expires
//! (hidden from readers) and is then removed by another agent's janitor.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeSet;

use locus::inspect::{What, render};
use locus_schema::{EslLink, Keys, Table};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_publishes_only_its_own_calls() {
    let farm = start_farm(2).await;
    let (fs1, fs2) = (&farm.nodes[0], &farm.nodes[1]);
    let ringing = fs1.sim.call("1000", "1001").await.unwrap();
    let talking = fs2.sim.call("1002", "1003").await.unwrap();
    fs2.sim.answer(&talking).await.unwrap();
    let parked = fs2
        .sim
        .valet_park("1004", "valet_parking_lot", "6001")
        .await
        .unwrap();
    wait_for(&farm.store, "calls on both nodes", |f| {
        calls(f, &fs1.id).len() == 1 && calls(f, &fs2.id).len() == 2
    })
    .await;
    settle(&farm.store, &fs1.sim, &fs1.id).await;
    let view = settle(&farm.store, &fs2.sim, &fs2.id).await;

    for n in [fs1, fs2] {
        let truth: BTreeSet<String> = n.sim.calls().into_iter().map(|c| c.id.0).collect();
        let published: BTreeSet<String> = calls(&view, &n.id).into_keys().collect();
        assert_eq!(
            published, truth,
            "{} publishes exactly its box's calls",
            n.id
        );
        let uuids: BTreeSet<String> = n
            .sim
            .channels()
            .into_iter()
            .map(|c| c.uuid)
            .chain(truth.iter().cloned())
            .collect();
        // Every uuid in any of its tables belongs to its own box.
        for t in [Table::Ringing, Table::Groups, Table::Lots, Table::Sipcalls] {
            for (k, v) in table(&view, &n.id, t) {
                let named: Vec<&String> = uuids.iter().filter(|u| v.contains(u.as_str())).collect();
                assert!(
                    !named.is_empty(),
                    "{}:{t:?} {k} = {v} is not its call",
                    n.id
                );
            }
        }
        assert_eq!(view.nodes[&n.id].image.status.calls as usize, truth.len());
    }
    assert!(table(&view, &fs1.id, Table::Ringing).contains_key(&dkey("1001")));
    assert!(table(&view, &fs2.id, Table::Ringing).is_empty());
    assert!(table(&view, &fs1.id, Table::Lots).is_empty());
    assert_eq!(
        table(&view, &fs2.id, Table::Lots)[&format!("{DOMAIN}/valet_parking_lot/6001")],
        parked.0
    );
    assert!(calls(&view, &fs1.id).contains_key(&ringing.0));

    // Stopping fs2's agent leaves fs1's keys exactly as they were.
    let fs1_before = view.nodes[&fs1.id].image.tables.clone();
    let beat = view.nodes[&fs1.id].image.status.updated_ms;
    let farm_nodes = farm.nodes;
    let mut it = farm_nodes.into_iter();
    let (fs1, fs2) = (it.next().unwrap(), it.next().unwrap());
    fs2.agent.stop().await;
    let view = wait_for(&farm.store, "fs2 down, fs1 still refreshing", |f| {
        node(f, &fs2.id).is_some_and(|n| n.image.status.esl == EslLink::Down)
            && node(f, &fs1.id).is_some_and(|n| n.image.status.updated_ms > beat)
    })
    .await;
    assert_eq!(view.nodes[&fs1.id].image.tables, fs1_before);
    assert!(esl_up(&view, &fs1.id));
    // fs2's content stays (until its lease ends): nobody else wrote it.
    assert_eq!(calls(&view, &fs2.id).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_agent_expires_and_is_reaped_by_another() {
    let opts = AgentOpts {
        lease: "2s",
        refresh: "300ms",
        reap_after: "3s",
        ..AgentOpts::default()
    };
    let farm = start_farm_with(2, &opts).await;
    let (fs1, fs2) = (&farm.nodes[0], &farm.nodes[1]);
    let call = fs2.sim.call("1000", "1001").await.unwrap();
    wait_for(&farm.store, "fs2's call", |f| {
        calls(f, &fs2.id).contains_key(&call.0)
    })
    .await;

    // A crash: no graceful shutdown, no last write.
    fs2.agent.join.abort();
    let view = wait_for(&farm.store, "fs2's lease expired", |f| {
        node(f, &fs2.id).is_some_and(|n| !n.live)
    })
    .await;
    assert!(view.nodes[&fs1.id].live, "fs1 is unaffected");
    // Readers hide it: inspect shows it expired and none of its calls.
    let now = locus_agent::now_ms();
    let listed = render(&view, What::Calls, true, now);
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert!(rows.is_array());
    assert!(
        !listed.contains(&call.0),
        "expired node's call shown: {listed}"
    );
    let nodes = render(&view, What::Nodes, false, now);
    let fs2_row = nodes.lines().find(|l| l.starts_with("fs2")).unwrap();
    assert!(fs2_row.contains("expired"), "{nodes}");

    // Then fs1's janitor removes every key of fs2.
    wait_for(&farm.store, "fs2 reaped", |f| {
        !f.nodes.contains_key(&fs2.id)
    })
    .await;
    let client = redis::Client::open(farm.redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys = Keys::default();
    let left: i64 = redis::cmd("EXISTS")
        .arg(keys.node_keys(&fs2.id))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(left, 0, "fs2 keys left after the reap");
    let mine: i64 = redis::cmd("EXISTS")
        .arg(keys.node(&fs1.id))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(mine, 1, "the janitor must keep live nodes");
    assert!(esl_up(&farm.store.read_farm().await.unwrap(), &fs1.id));
}
