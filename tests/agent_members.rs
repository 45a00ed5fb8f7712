//! Pickup-group membership across boxes, as in the real farm's
//! `x2-member-loss-after-failback` capture: 1009 registered on box A, then
//! on box B; A's stale binding expired (`sofia::expire`) and A's agent
//! deleted the farm-wide membership although 1009 was still registered on
//! B, so its `*8` fell back to standard routing. Now each agent claims its
//! own box's registrations (`{id}:members`) and readers take the union.
//! Simulated boxes, real agents, a real `redis-server`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::{Engine, FarmSnapshot, InFlight, RouteRequest, RoutingConfig, Rule};
use locus_schema::{FarmView, NodeId, UnregRequest};
use support::*;

const USER: &str = "1009";

/// Whether node `id` claims `USER`.
fn claims(f: &FarmView, id: &NodeId) -> bool {
    f.claims()
        .any(|(n, d, e, _)| n == id && d == DOMAIN && e == USER)
}

/// The nodes an INVITE to `*8` from `USER` goes to, and by which rule.
fn pickup_route(view: &FarmView) -> (Rule, Vec<String>) {
    let cfg = RoutingConfig::default();
    let snap = FarmSnapshot::build(view, 1_000, &cfg);
    let engine = Engine::new(&cfg).unwrap();
    let req = RouteRequest::invite("*8", DOMAIN, USER, "pickup-1@phone");
    let d = engine.route(&snap, &req, &InFlight::new());
    (d.rule, d.ids().iter().map(|s| s.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_outlives_a_stale_binding_on_another_box() {
    let farm = start_farm(2).await;
    let (a, b) = (&farm.nodes[0], &farm.nodes[1]);
    // Registered on A (B drained), then on B (undrained): both hold it.
    a.sim.register(USER).await.unwrap();
    b.sim.register(USER).await.unwrap();
    let view = wait_for(&farm.store, "both boxes claim 1009", |f| {
        claims(f, &a.id) && claims(f, &b.id)
    })
    .await;
    assert_eq!(view.members()[&member(USER)], ["techsupport"]);

    // A's old binding lapses.
    a.sim.expire(USER).await.unwrap();
    let view = wait_for(&farm.store, "A's claim gone", |f| !claims(f, &a.id)).await;
    assert!(claims(&view, &b.id), "B still holds 1009");
    assert_eq!(
        view.members().get(&member(USER)).map(Vec::as_slice),
        Some(&["techsupport".to_owned()][..]),
        "1009 is still registered on B: still a member"
    );

    // A techsupport call rings on B: 1009's *8 goes there.
    let call = b.sim.call("1000", "1001").await.unwrap();
    let view = wait_for(&farm.store, "the group call on B", |f| {
        table(f, &b.id, locus_schema::Table::Groups).contains_key(&dkey("techsupport"))
    })
    .await;
    assert_eq!(
        pickup_route(&view),
        (Rule::GroupPickup, vec![b.id.as_str().to_owned()])
    );
    b.sim.hangup(&call).await.unwrap();

    // Unregistered everywhere: no membership left.
    b.sim.unregister(USER).await.unwrap();
    let view = wait_for(&farm.store, "no claim left", |f| {
        !claims(f, &a.id) && !claims(f, &b.id)
    })
    .await;
    assert!(!view.members().contains_key(&member(USER)));
}

/// A proxy's request on `{id}:unreg` makes the node's agent run
/// `flush_inbound_reg` on its box: the registration goes (`sofia::expire`)
/// and the claim with it; the other box keeps its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregister_request_flushes_the_boxs_registration() {
    let farm = start_farm(2).await;
    let (a, b) = (&farm.nodes[0], &farm.nodes[1]);
    a.sim.register(USER).await.unwrap();
    b.sim.register(USER).await.unwrap();
    wait_for(&farm.store, "both boxes claim 1009", |f| {
        claims(f, &a.id) && claims(f, &b.id)
    })
    .await;
    let view = farm.store.read_farm().await.unwrap();
    let regs: Vec<_> = view
        .claims()
        .filter(|(n, _, e, _)| *n == &a.id && *e == USER)
        .flat_map(|(_, _, _, entry)| entry.regs)
        .collect();
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0].profile, "internal");

    let req = UnregRequest {
        profile: "internal".into(),
        target: format!("{USER}@{DOMAIN}"),
    };
    farm.store.request_unregister(&a.id, &req).await.unwrap();
    wait_until("A flushed 1009", WAIT, || !a.sim.registered(USER)).await;
    let view = wait_for(&farm.store, "A's claim gone", |f| !claims(f, &a.id)).await;
    assert!(b.sim.registered(USER), "B was not asked");
    assert_eq!(view.members()[&member(USER)], ["techsupport"]);
    assert!(
        farm.store
            .take_unregisters(&a.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "the agent took the request"
    );
}

/// An agent that starts on a box already holding registrations claims
/// them from `show registrations` (after a restart it has seen no
/// `sofia::register`); groups come from `user_data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_claims_the_boxs_registrations() {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let sim = start_sim("fs1").await;
    sim.register(USER).await.unwrap();
    let cfg = AgentOpts::default().config("fs1", &sim.esl_addr().to_string());
    let agent = spawn_agent(cfg, store.clone());
    let view = wait_for(&store, "fs1 claims 1009 with its groups", |f| {
        claims(f, &agent.id) && f.members().contains_key(&member(USER))
    })
    .await;
    assert_eq!(view.members()[&member(USER)], ["techsupport"]);
}
