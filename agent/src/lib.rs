//! The Locus agent: reads one FreeSWITCH box's Event Socket, keeps a live
//! model of its calls, and publishes it to the store (Redis).
//!
//! Tasks: ESL reader (in `locus-esl`) -> session/model ([`session`]) ->
//! publisher ([`publisher`]), joined by bounded channels; plus `/metrics`.

pub mod config;
pub mod listing;
pub mod metrics;
pub mod model;
pub mod publisher;
pub mod resync;
pub mod session;
pub mod unreg;

use std::sync::Arc;

use locus_schema::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{AgentConfig, ConfigError};
pub use metrics::Metrics;

/// Queue between the model task and the publisher.
const PUBLISH_QUEUE: usize = 8192;

pub use locus_schema::now_ms;

/// Microseconds since the Unix epoch (the unit of `Event-Date-Timestamp`).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs the agent until `token` is cancelled.
pub async fn run(
    cfg: AgentConfig,
    store: Arc<dyn Store>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    run_with_metrics(cfg, store, Metrics::new(), token).await
}

/// Runs the agent with caller-provided metrics (tests and the demo read them).
pub async fn run_with_metrics(
    cfg: AgentConfig,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    cfg.validate()?;
    let tracker = TaskTracker::new();
    let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
    let pub_cfg = publisher::PublisherConfig {
        node: cfg.node_id.clone(),
        lease: cfg.lease,
        refresh: cfg.refresh,
        reap_after: cfg.reap_after,
    };
    // The publisher outlives the session by its own token, so the last
    // changes (esl=down) are written before it stops.
    let pub_token = CancellationToken::new();
    let publisher = tracker.spawn(publisher::run(
        pub_cfg,
        store.clone(),
        store.clone(),
        rx,
        metrics.clone(),
        pub_token.clone(),
    ));
    if let Some(addr) = cfg.http {
        let (m, t) = (metrics.clone(), token.child_token());
        tracker.spawn(async move {
            if let Err(e) = metrics::serve(addr, m, t).await {
                tracing::error!(http.addr = %addr, error = %e, "metrics listener failed");
            }
        });
    }
    tracker.close();
    session::run(cfg, store, tx, metrics, token.child_token()).await;
    // Sender dropped: the publisher drains what is queued, then stops.
    let grace = tokio::time::timeout(std::time::Duration::from_secs(3), publisher).await;
    if grace.is_err() {
        pub_token.cancel();
    }
    tracker.wait().await;
    Ok(())
}
