//! Malformed ESL from "FreeSWITCH" (a scripted fake server): an event whose
//! JSON is garbage is skipped on the same connection; an oversized frame,
//! junk header bytes and a bad `Content-Length` make the agent drop the
//! connection and reconnect. Never a panic, and publishing goes on.
//! Also the `user_data` lookup path of a registration without `callgroup`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_esl::Event;
use locus_schema::{EslLink, NodeId, Store};
use std::sync::Arc;
use support::fake_esl::FakeEsl;
use support::*;

/// `agent.esl.max_body` for these tests.
const MAX_BODY: usize = 4096;

fn heartbeat(idle_cpu: &str) -> Event {
    let mut ev = Event::new("HEARTBEAT");
    ev.push("Idle-CPU", idle_cpu);
    ev.push("Max-Sessions", "1000");
    ev
}

/// Sends a HEARTBEAT with `cpu` and waits until Redis shows it: proof the
/// agent still reads this connection and still publishes.
async fn beat(store: &Arc<dyn Store>, fake: &FakeEsl, id: &NodeId, cpu: f64) {
    fake.send_event(&heartbeat(&format!("{cpu:.6}")));
    wait_for(store, &format!("idle_cpu {cpu}"), |f| {
        node(f, id).is_some_and(|n| n.live && (n.image.status.idle_cpu - cpu).abs() < 0.001)
    })
    .await;
}

struct Setup {
    _redis: locus_schema::testing::RedisServer,
    store: Arc<dyn Store>,
    fake: FakeEsl,
    agent: AgentHandle,
}

async fn setup(user_data: &str) -> Setup {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let fake = FakeEsl::start(user_data).await;
    let opts = AgentOpts {
        max_body: MAX_BODY,
        ..AgentOpts::default()
    };
    let agent = spawn_agent(opts.config("fs1", &fake.addr.to_string()), store.clone());
    let id = agent.id.clone();
    wait_for(&store, "esl up on the fake box", |f| esl_up(f, &id)).await;
    assert_eq!(fake.accepted(), 1);
    Setup {
        _redis: redis,
        store,
        fake,
        agent,
    }
}

/// Waits for the agent to be connected again (one more subscription than
/// `before`) and publishing `esl = up`.
async fn reconnected(s: &Setup, before: usize) {
    let id = &s.agent.id;
    wait_until("a new subscribed connection", WAIT, || {
        s.fake.subscriptions() > before
    })
    .await;
    wait_for(&s.store, "esl up again", |f| esl_up(f, id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_json_is_skipped_without_a_reconnect() {
    let s = setup("").await;
    let id = s.agent.id.clone();
    beat(&s.store, &s.fake, &id, 11.5).await;
    for garbage in [
        "{not json",
        "[1,2,3]",
        "{\"Event-Name\": {\"nested\": true}}",
        "\u{1}\u{2}",
    ] {
        let frame = format!(
            "Content-Length: {}\nContent-Type: text/event-json\n\n{garbage}",
            garbage.len()
        );
        s.fake.send_raw(frame);
    }
    // The same connection keeps working: the next event is applied.
    beat(&s.store, &s.fake, &id, 22.25).await;
    assert_eq!(s.fake.accepted(), 1, "garbage JSON must not cost the link");
    assert!(!s.agent.join.is_finished());
    s.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_framing_drops_the_link_and_the_agent_reconnects() {
    let s = setup("").await;
    let id = s.agent.id.clone();
    let failures = s.agent.metrics.esl_failures.get();
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "Content-Length over max_body",
            format!(
                "Content-Length: {}\nContent-Type: text/event-json\n\n",
                MAX_BODY * 100
            )
            .into_bytes(),
        ),
        (
            "a header line without a colon",
            b"this is not a header\nContent-Type: text/event-json\n\n".to_vec(),
        ),
        (
            "header bytes that are not UTF-8",
            b"Content-Type: text/\xff\xfe\x00json\n\n".to_vec(),
        ),
        (
            "a Content-Length that is not a number",
            b"Content-Length: -12x\nContent-Type: text/event-json\n\n{}".to_vec(),
        ),
    ];
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let subs = s.fake.subscriptions();
        s.fake.send_raw(bytes);
        reconnected(&s, subs).await;
        assert!(s.fake.accepted() >= i + 2, "{what}: no reconnect");
        // The new connection works end to end.
        beat(&s.store, &s.fake, &id, 30.0 + i as f64).await;
    }
    assert!(s.agent.metrics.esl_failures.get() >= failures + 4);
    assert!(s.agent.metrics.esl_connects.get() >= 5);
    assert!(!s.agent.join.is_finished(), "the agent must survive");
    let view = s.store.read_farm().await.unwrap();
    assert!(view.nodes[&id].live);
    assert_eq!(view.nodes[&id].image.status.esl, EslLink::Up);
    s.agent.stop().await;
}

/// A body bigger than `max_body` sent in full (not just announced) is
/// refused the same way, and the bytes after it are never read as frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_with_its_body_is_refused() {
    let s = setup("").await;
    let id = s.agent.id.clone();
    let subs = s.fake.subscriptions();
    let mut big = heartbeat("1.000000");
    big.push("Padding", "x".repeat(MAX_BODY * 2));
    s.fake.send_event(&big);
    reconnected(&s, subs).await;
    assert!(s.fake.accepted() >= 2);
    let view = s.store.read_farm().await.unwrap();
    assert!(
        (view.nodes[&id].image.status.idle_cpu - 1.0).abs() > 0.001,
        "the oversized event must not have been applied"
    );
    beat(&s.store, &s.fake, &id, 44.0).await;
    s.agent.stop().await;
}

/// `sofia::register` without `callgroup`: the agent asks `user_data` and
/// publishes what the directory says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_without_callgroup_gets_its_groups_from_user_data() {
    let s = setup("sales,support\n").await;
    let mut ev = Event::new("CUSTOM");
    ev.push("Event-Subclass", "sofia::register");
    ev.push("profile-name", "internal");
    ev.push("from-user", "1050");
    ev.push("from-host", DOMAIN);
    ev.push("username", "1050");
    ev.push("realm", DOMAIN);
    ev.push("expires", "3600");
    s.fake.send_event(&ev);
    let view = wait_for(&s.store, "member 1050", |f| {
        f.members().contains_key(&member("1050"))
    })
    .await;
    assert_eq!(
        view.members()[&member("1050")],
        vec!["sales".to_owned(), "support".to_owned()]
    );
    let apis = s.fake.apis.lock().unwrap().clone();
    assert!(
        apis.iter()
            .any(|a| a == &format!("user_data 1050@{DOMAIN} var callgroup")),
        "{apis:?}"
    );
    s.agent.stop().await;
}
