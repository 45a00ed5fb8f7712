//! End to end, the happy path: simulated FreeSWITCH -> ESL -> the real
//! agent -> a real `redis-server`, read back with `read_farm`. A call's
//! life (ringing, answered, gone), pickup-group membership, valet lots,
//! conference rooms, queues, and the operator's drain surviving the agent.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeSet;

use locus_esl::{EslClient, EslConfig, EslItem};
use locus_schema::{CallState, GroupEntry, NodeState, RingEntry, Table};
use locus_sim::SimConfig;
use support::*;

fn ring_entries(v: &str) -> Vec<RingEntry> {
    serde_json::from_str(v).expect("RingEntry list JSON")
}

fn group_entries(v: &str) -> Vec<GroupEntry> {
    serde_json::from_str(v).expect("GroupEntry list JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_is_answered_and_ends() {
    let farm = start_farm(1).await;
    let (id, sim) = (&farm.nodes[0].id, &farm.nodes[0].sim);
    let call = sim.call("1000", "1001").await.unwrap();
    let truth = sim.calls();
    let legs: BTreeSet<String> = truth[0].legs.iter().cloned().collect();
    assert_eq!(truth[0].id, call);
    assert_eq!(legs.len(), 2, "caller and callee legs");

    // Ringing: the extension, the group and the call record all name it.
    wait_for(&farm.store, "1001 ringing", |f| {
        table(f, id, Table::Ringing).contains_key(&dkey("1001"))
    })
    .await;
    let view = settle(&farm.store, sim, id).await;
    let ringing = table(&view, id, Table::Ringing);
    let rings = ring_entries(&ringing[&dkey("1001")]);
    assert_eq!(rings.len(), 1, "{rings:?}");
    assert_eq!(rings[0].uuid, call.0);
    let groups = table(&view, id, Table::Groups);
    let members = group_entries(&groups[&dkey("techsupport")]);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].uuid, call.0);
    assert_eq!(members[0].state, CallState::Ringing);
    let rec = &calls(&view, id)[&call.0];
    assert_eq!(rec.uuid, call.0);
    assert_eq!(rec.domain, DOMAIN);
    assert_eq!(rec.from, "1000");
    assert_eq!(rec.to_ext, "1001");
    assert_eq!(rec.state, CallState::Ringing);
    assert_eq!(rec.group.as_deref(), Some("techsupport"));
    assert_eq!(rec.legs.iter().cloned().collect::<BTreeSet<_>>(), legs);
    assert!(!rec.sip_call_ids.is_empty(), "{rec:?}");
    // Each leg's SIP Call-ID, as the box knows it, is published and mapped.
    let sim_ids: BTreeSet<String> = legs
        .iter()
        .filter_map(|l| sim.var(l, "sip_call_id"))
        .collect();
    assert!(!sim_ids.is_empty(), "the simulator sets sip_call_id");
    let published: BTreeSet<String> = rec.sip_call_ids.iter().cloned().collect();
    assert_eq!(published, sim_ids);
    let sipcalls = table(&view, id, Table::Sipcalls);
    for sip in &rec.sip_call_ids {
        assert_eq!(sipcalls.get(sip), Some(&call.0), "sipcalls[{sip}]");
    }
    assert_eq!(view.nodes[id].image.status.calls, 1);

    // Answered: no longer ringing, still in its group, as answered.
    sim.answer(&call).await.unwrap();
    wait_for(&farm.store, "the call answered", |f| {
        calls(f, id)
            .get(&call.0)
            .is_some_and(|c| c.state == CallState::Answered)
    })
    .await;
    let view = settle(&farm.store, sim, id).await;
    assert!(
        !table(&view, id, Table::Ringing).contains_key(&dkey("1001")),
        "ringing entry must go with the answer"
    );
    let members = group_entries(&table(&view, id, Table::Groups)[&dkey("techsupport")]);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].uuid, call.0);
    assert_eq!(members[0].state, CallState::Answered);
    assert!(calls(&view, id)[&call.0].answered_ms.is_some());

    // Hung up: nothing of it is left anywhere.
    sim.hangup(&call).await.unwrap();
    wait_for(&farm.store, "the call gone", |f| {
        calls(f, id).is_empty() && f.nodes[id].image.status.calls == 0
    })
    .await;
    let view = settle(&farm.store, sim, id).await;
    for t in Table::ALL {
        let left: Vec<_> = table(&view, id, t)
            .into_iter()
            .filter(|(k, v)| k.contains(&call.0) || v.contains(&call.0))
            .collect();
        assert!(left.is_empty(), "{t:?} still mentions the call: {left:?}");
    }
    assert!(sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_publish_group_membership() {
    let farm = start_farm(1).await;
    let sim = &farm.nodes[0].sim;
    sim.register("1010").await.unwrap();
    sim.register("1011").await.unwrap();
    let view = wait_for(&farm.store, "1010 and 1011 members", |f| {
        f.members().contains_key(&member("1010")) && f.members().contains_key(&member("1011"))
    })
    .await;
    assert_eq!(
        view.members()[&member("1010")],
        vec!["techsupport".to_owned()]
    );
    sim.unregister("1010").await.unwrap();
    sim.expire("1011").await.unwrap();
    let view = wait_for(&farm.store, "memberships removed", |f| {
        !f.members().contains_key(&member("1010")) && !f.members().contains_key(&member("1011"))
    })
    .await;
    assert!(view.members().keys().all(|(d, _)| d == DOMAIN));
}

/// A registration without `callgroup`: the agent asks `user_data` (seen as
/// the `API` event the box fires for every api command) and, the directory
/// having no group for that user, publishes no membership. The positive
/// lookup path (a group found by `user_data`) needs a box whose
/// registration and directory disagree; the fake ESL server covers it in
/// `agent_malformed.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_without_callgroup_is_looked_up() {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let sim = start_sim_with(SimConfig {
        node_id: "fs1".into(),
        hostname: "fs1".into(),
        domain: DOMAIN.into(),
        heartbeat: None,
        directory: locus_sim::Directory::from_groups([
            ("1000", Some("techsupport")),
            ("1050", None),
        ]),
        ..SimConfig::default()
    })
    .await;
    let addr = sim.esl_addr().to_string();
    // A second ESL client watches the box's API events.
    let (watch, mut events) = EslClient::connect(&EslConfig {
        addr: addr.clone(),
        ..EslConfig::default()
    })
    .await
    .unwrap();
    watch.subscribe_json(&["API"]).await.unwrap();
    let agent = spawn_agent(agent_config("fs1", &addr), store.clone());
    let id = agent.id.clone();
    wait_for(&store, "fs1 up", |f| esl_up(f, &id)).await;

    sim.register("1050").await.unwrap();
    let asked = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(EslItem::Event(ev))
                    if ev.get("API-Command") == Some("user_data")
                        && ev
                            .get("API-Command-Argument")
                            .is_some_and(|a| a.starts_with("1050@farm.test")) =>
                {
                    return ev.get("API-Command-Argument").map(str::to_owned);
                }
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("the agent never asked user_data for 1050");
    assert_eq!(asked.as_deref(), Some("1050@farm.test var callgroup"));
    // A later registration with a group shows up; 1050 still has none.
    sim.register("1000").await.unwrap();
    let view = wait_for(&store, "1000 member", |f| {
        f.members().contains_key(&member("1000"))
    })
    .await;
    assert!(!view.members().contains_key(&member("1050")));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parks_rooms_and_queues_come_and_go() {
    let farm = start_farm(1).await;
    let (id, sim) = (&farm.nodes[0].id, &farm.nodes[0].sim);
    let lot = format!("{DOMAIN}/valet_parking_lot/6001");
    let parked = sim
        .valet_park("1002", "valet_parking_lot", "6001")
        .await
        .unwrap();
    let m1 = sim.conference_join("1003", "3000").await.unwrap();
    let m2 = sim.conference_join("1004", "3000").await.unwrap();
    let cc = sim
        .callcenter_enter("1005", "support@default")
        .await
        .unwrap();
    let fifo = sim.fifo_push("1006", "5900").await.unwrap();
    let view = wait_for(&farm.store, "lot, room and both queues", |f| {
        let t = |t| table(f, id, t);
        t(Table::Lots).contains_key(&lot)
            && t(Table::Rooms).get(&dkey("3000")).map(String::as_str) == Some("2")
            && t(Table::Queues).len() == 2
    })
    .await;
    assert_eq!(table(&view, id, Table::Lots)[&lot], parked.0);
    let queues = table(&view, id, Table::Queues);
    assert_eq!(queues[&dkey("support@default")], "1", "{queues:?}");
    assert_eq!(queues[&dkey("5900")], "1", "{queues:?}");
    let recs = calls(&view, id);
    assert_eq!(recs[&parked.0].state, CallState::Parked);
    assert_eq!(recs[&parked.0].slot.as_deref(), Some("6001"));
    assert_eq!(recs[&m1.uuid].state, CallState::Conference);
    assert_eq!(recs[&m1.uuid].room.as_deref(), Some("3000"));
    assert_eq!(recs[&cc.0].state, CallState::Queued);
    assert_eq!(recs[&fifo.0].queue.as_deref(), Some("5900"));

    // One leaves the room: the count follows.
    sim.conference_leave(&m1).await.unwrap();
    wait_for(&farm.store, "room of one", |f| {
        table(f, id, Table::Rooms)
            .get(&dkey("3000"))
            .map(String::as_str)
            == Some("1")
    })
    .await;
    // Everything ends: every feature table empties.
    let retrieved = sim
        .valet_retrieve("1007", "valet_parking_lot", "6001")
        .await
        .unwrap();
    sim.conference_leave(&m2).await.unwrap();
    sim.callcenter_leave(&cc).await.unwrap();
    sim.hangup(&fifo).await.unwrap();
    wait_for(&farm.store, "no lots, rooms or queues", |f| {
        [Table::Lots, Table::Rooms, Table::Queues]
            .into_iter()
            .all(|t| table(f, id, t).is_empty())
    })
    .await;
    // Only the retrieved call is left, bridged to the retriever.
    let view = settle(&farm.store, sim, id).await;
    let left = calls(&view, id);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(sim.calls().len(), 1);
    let rec = left.values().next().unwrap();
    assert_eq!(rec.state, CallState::Answered, "{rec:?}");
    assert!(
        rec.legs.contains(&retrieved.0) || rec.uuid == retrieved.0,
        "{rec:?}"
    );
    sim.hangup(&retrieved).await.unwrap();
    wait_for(&farm.store, "no calls", |f| calls(f, id).is_empty()).await;
}

/// `locus node drain fs1` writes `state = draining`; the agent's lease
/// refreshes and a full resync (reconnect) must keep it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_survives_lease_refreshes_and_resyncs() {
    let farm = start_farm(1).await;
    let (id, sim, agent) = (&farm.nodes[0].id, &farm.nodes[0].sim, &farm.nodes[0].agent);
    farm.store
        .set_node_state(id, NodeState::Draining)
        .await
        .unwrap();
    let first = wait_for(&farm.store, "draining", |f| {
        f.nodes[id].image.status.state == NodeState::Draining
    })
    .await
    .nodes[id]
        .image
        .status
        .updated_ms;
    // Several lease refreshes later (updated_ms moves on each): still draining.
    wait_for(&farm.store, "three refreshes", |f| {
        f.nodes[id].image.status.updated_ms > first + 900
    })
    .await;
    assert_eq!(
        farm.store.node_state(id).await.unwrap(),
        NodeState::Draining
    );
    // A resync (the link drops, the agent reconnects and replaces its keys).
    let resyncs = agent.metrics.resyncs.get();
    sim.disconnect_all(locus_sim::DisconnectKind::Eof).await;
    wait_until("a resync", WAIT, || agent.metrics.resyncs.get() > resyncs).await;
    let call = sim.call("1000", "1001").await.unwrap();
    let view = wait_for(&farm.store, "a call after the resync", |f| {
        calls(f, id).contains_key(&call.0)
    })
    .await;
    assert_eq!(view.nodes[id].image.status.state, NodeState::Draining);
    assert_eq!(
        farm.store.node_state(id).await.unwrap(),
        NodeState::Draining
    );
}
