//! ESL failures under a running agent: FreeSWITCH killed mid-call (calls
//! change while nobody listens), restarted (calls vanish), closing the
//! link in each of its ways, and a wrong ESL password.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use locus_schema::{CallState, EslLink, Table};
use locus_sim::DisconnectKind;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esl_killed_mid_call_then_back_is_reconciled() {
    let farm = start_farm(1).await;
    let n = &farm.nodes[0];
    let (id, sim) = (&n.id, &n.sim);
    let ends = sim.call("1000", "1001").await.unwrap();
    sim.answer(&ends).await.unwrap();
    let stays = sim.call("1002", "1003").await.unwrap();
    wait_for(&farm.store, "two calls", |f| {
        calls(f, id).len() == 2 && table(f, id, Table::Ringing).contains_key(&dkey("1003"))
    })
    .await;
    let failures = n.agent.metrics.esl_failures.get();

    sim.disconnect_all(DisconnectKind::Kill).await;
    // The outage is visible: the node stays live (lease) with esl = down.
    wait_for(&farm.store, "esl down", |f| {
        f.nodes
            .get(id)
            .is_some_and(|v| v.live && v.image.status.esl == EslLink::Down)
    })
    .await;
    wait_until("no ESL client left", WAIT, || sim.esl_clients() == 0).await;
    // While nobody listens: one call ends, the other is answered.
    sim.hangup(&ends).await.unwrap();
    sim.answer(&stays).await.unwrap();
    let truth: BTreeSet<String> = sim.calls().into_iter().map(|c| c.id.0).collect();
    assert_eq!(truth, BTreeSet::from([stays.0.clone()]));

    sim.listen().await;
    let view = wait_for(&farm.store, "reconnected and reconciled", |f| {
        esl_up(f, id)
            && calls(f, id).keys().cloned().collect::<BTreeSet<_>>() == truth
            && calls(f, id)[&stays.0].state == CallState::Answered
    })
    .await;
    assert!(
        !table(&view, id, Table::Ringing).contains_key(&dkey("1003")),
        "the answered call no longer rings"
    );
    let groups = table(&view, id, Table::Groups);
    let entry = &groups[&dkey("techsupport")];
    assert!(
        entry.contains(&stays.0) && !entry.contains(&ends.0),
        "{entry}"
    );
    assert!(
        table(&view, id, Table::Sipcalls)
            .values()
            .all(|u| u == &stays.0),
        "no Call-ID of the ended call is left"
    );
    assert_eq!(view.nodes[id].image.status.calls, 1);
    assert!(n.agent.metrics.esl_failures.get() > failures);
    assert!(n.agent.metrics.esl_connects.get() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_restart_drops_stale_calls() {
    let farm = start_farm(1).await;
    let n = &farm.nodes[0];
    let (id, sim) = (&n.id, &n.sim);
    let a = sim.call("1000", "1001").await.unwrap();
    sim.answer(&a).await.unwrap();
    sim.valet_park("1002", "valet_parking_lot", "6001")
        .await
        .unwrap();
    sim.conference_join("1003", "3000").await.unwrap();
    wait_for(&farm.store, "calls, lot and room", |f| {
        calls(f, id).len() == 3 && !table(f, id, Table::Lots).is_empty()
    })
    .await;
    let core = sim.core_uuid();
    let connects = n.agent.metrics.esl_connects.get();
    sim.restart().await;
    assert_ne!(sim.core_uuid(), core);
    assert!(sim.calls().is_empty());
    let view = wait_for(&farm.store, "an empty box after the restart", |f| {
        esl_up(f, id) && Table::ALL.into_iter().all(|t| table(f, id, t).is_empty())
    })
    .await;
    assert_eq!(view.nodes[id].image.status.calls, 0);
    assert!(n.agent.metrics.esl_connects.get() > connects);
    // And it follows the new box.
    let b = sim.call("1004", "1005").await.unwrap();
    wait_for(&farm.store, "a call on the restarted box", |f| {
        calls(f, id).contains_key(&b.0)
    })
    .await;
}

/// Every way FreeSWITCH ends the link (goodbye notice, shutdown notice,
/// plain EOF) leads to a reconnect and a resync that sees what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_disconnect_is_followed_by_a_resync() {
    let farm = start_farm(1).await;
    let n = &farm.nodes[0];
    let (id, sim) = (&n.id, &n.sim);
    for kind in [
        DisconnectKind::Exit,
        DisconnectKind::Shutdown,
        DisconnectKind::Eof,
    ] {
        let resyncs = n.agent.metrics.resyncs.get();
        let call = sim.call("1000", "1001").await.unwrap();
        wait_for(&farm.store, "the call", |f| {
            calls(f, id).contains_key(&call.0)
        })
        .await;
        sim.disconnect_all(kind).await;
        // The hangup may race the reconnect: either the live event or the
        // resync must remove the call.
        sim.hangup(&call).await.unwrap();
        wait_until(&format!("a resync after {kind:?}"), WAIT, || {
            n.agent.metrics.resyncs.get() > resyncs
        })
        .await;
        wait_for(&farm.store, "no call, link up", |f| {
            esl_up(f, id) && calls(f, id).is_empty()
        })
        .await;
    }
}

/// Wrong password: logged, retried with capped backoff (not a tight loop),
/// `esl = down` published, and the agent keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_retried_with_backoff() {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let sim = start_sim("fs1").await;
    let opts = AgentOpts {
        password: "not-ClueCon".into(),
        ..AgentOpts::default()
    };
    let agent = spawn_agent(
        opts.config("fs1", &sim.esl_addr().to_string()),
        store.clone(),
    );
    let id = agent.id.clone();
    wait_for(&store, "the node, esl down", |f| {
        f.nodes
            .get(&id)
            .is_some_and(|v| v.live && v.image.status.esl == EslLink::Down)
    })
    .await;
    wait_until("a first rejected attempt", WAIT, || {
        agent.metrics.esl_failures.get() >= 1
    })
    .await;
    // Count attempts over a fixed window: this measures a pace.
    let window = Duration::from_secs(2);
    let before = agent.metrics.esl_failures.get();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let attempts = agent.metrics.esl_failures.get() - before;
    let spent = started.elapsed();
    println!("{attempts} rejected attempts in {spent:?} (base 50ms, cap 500ms)");
    // Full jitter under a 500 ms cap averages 250 ms a try once capped
    // (~8 in 2 s); 30 would need a 6-sigma run of short delays, while a
    // tight loop makes thousands.
    assert!(attempts >= 1, "the agent stopped retrying");
    assert!(
        attempts <= 30,
        "{attempts} attempts in {spent:?}: not backing off"
    );
    assert_eq!(agent.metrics.esl_connects.get(), 0);
    assert!(!agent.join.is_finished(), "the agent must keep running");
    let view = store.read_farm().await.unwrap();
    assert_eq!(view.nodes[&id].image.status.esl, EslLink::Down);
    assert!(view.nodes[&id].live);
    agent.stop().await;
}
