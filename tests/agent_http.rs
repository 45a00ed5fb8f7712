//! The agent's `/healthz` and `/metrics`, over plain HTTP/1.1 on a raw
//! socket: healthy while ESL and Redis are, 503 when either is lost, and
//! the event counters moving with the box's events.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::time::Instant;

use locus_sim::DisconnectKind;
use support::*;

/// Polls `GET path` until `ok(code, body)`; panics after [`WAIT`].
async fn until_http(
    addr: SocketAddr,
    path: &str,
    what: &str,
    ok: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + WAIT;
    let mut last: String;
    loop {
        match http_get(addr, path).await {
            Ok((code, body)) if ok(code, &body) => return (code, body),
            Ok((code, body)) => last = format!("{code} {body}"),
            Err(e) => last = format!("error {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "GET {path}: no {what} within {WAIT:?}; last: {last}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The value of the first sample line `name{labels} value` (or `name value`).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_follow_the_links() {
    init_tracing();
    let mut redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let sim = start_sim("fs1").await;
    // Port 0: the agent binds it and says where (no free-port race).
    let opts = AgentOpts {
        http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..AgentOpts::default()
    };
    let agent = spawn_agent(
        opts.config("fs1", &sim.esl_addr().to_string()),
        store.clone(),
    );
    wait_until("the agent's http listener", WAIT, || {
        agent.metrics.http_addr().is_some()
    })
    .await;
    let http = agent.metrics.http_addr().unwrap();
    let id = agent.id.clone();
    wait_for(&store, "esl up", |f| esl_up(f, &id)).await;
    let (_, body) = until_http(http, "/healthz", "200", |c, _| c == 200).await;
    assert!(
        body.contains("\"esl\":true") && body.contains("\"store\":true"),
        "{body}"
    );

    let call = sim.call("1000", "1001").await.unwrap();
    wait_for(&store, "the call", |f| calls(f, &id).contains_key(&call.0)).await;
    settle(&store, &sim, &id).await;
    let (code, metrics) = http_get(http, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let created = sample(
        &metrics,
        "locus_agent_esl_events_total{event=\"CHANNEL_CREATE\"}",
    )
    .unwrap_or_else(|| panic!("no CHANNEL_CREATE counter in {metrics}"));
    assert!(created >= 2.0, "two legs created: {created}");
    assert_eq!(sample(&metrics, "locus_agent_esl_up "), Some(1.0));
    assert_eq!(sample(&metrics, "locus_agent_store_up "), Some(1.0));
    assert_eq!(sample(&metrics, "locus_agent_calls "), Some(1.0));
    assert!(sample(&metrics, "locus_agent_esl_connects_total").is_some_and(|v| v >= 1.0));
    assert!(
        metrics.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    // FreeSWITCH killed: unhealthy, and /metrics says why.
    sim.disconnect_all(DisconnectKind::Kill).await;
    let (_, body) = until_http(http, "/healthz", "503", |c, _| c == 503).await;
    assert!(body.contains("\"esl\":false"), "{body}");
    let (_, metrics) = http_get(http, "/metrics").await.unwrap();
    assert_eq!(sample(&metrics, "locus_agent_esl_up "), Some(0.0));
    assert!(sample(&metrics, "locus_agent_esl_failures_total").is_some_and(|v| v >= 1.0));

    // Back, then Redis lost: unhealthy again, for the store this time.
    sim.listen().await;
    until_http(http, "/healthz", "200 after the box returned", |c, _| {
        c == 200
    })
    .await;
    tokio::task::block_in_place(|| redis.stop());
    let (_, body) = until_http(http, "/healthz", "503 without redis", |c, _| c == 503).await;
    assert!(
        body.contains("\"store\":false") && body.contains("\"esl\":true"),
        "{body}"
    );
    tokio::task::block_in_place(|| redis.restart()).unwrap();
    until_http(http, "/healthz", "200 after redis returned", |c, _| {
        c == 200
    })
    .await;
    let (_, metrics) = http_get(http, "/metrics").await.unwrap();
    assert!(sample(&metrics, "locus_agent_store_errors_total").is_some_and(|v| v >= 1.0));
    agent.stop().await;
    // The listener goes with the agent.
    assert!(http_get(http, "/healthz").await.is_err());
}
