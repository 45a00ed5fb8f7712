//! Prometheus metrics and health of the agent, served on `/metrics` and
//! `/healthz` (axum), including the end-to-end figure that matters to the
//! proxy: how old an event is when its change is acknowledged by the store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Label of per-event-name counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// Event-Name (or the CUSTOM subclass).
    pub event: String,
}

/// Buckets of the publish latency histogram (seconds): 1-2-5 steps from
/// 100 us to 1 s, fine where the target is (a few ms) and coarse beyond.
pub const PUBLISH_LATENCY_BUCKETS: [f64; 13] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
];

/// Every metric of the agent.
pub struct Metrics {
    registry: Registry,
    /// ESL events received, by name.
    pub events: Family<EventLabel, Counter>,
    /// Events dropped because the model fell behind (each triggers a resync).
    pub events_dropped: Counter,
    /// ESL connections established.
    pub esl_connects: Counter,
    /// ESL connection failures (connect, auth, disconnect).
    pub esl_failures: Counter,
    /// Full resyncs (snapshot + reconcile).
    pub resyncs: Counter,
    /// Store writes that failed (retried).
    pub store_errors: Counter,
    /// Atomic changes written to the store.
    pub store_writes: Counter,
    /// Live calls in the model.
    pub calls: Gauge,
    /// Live channels in the model.
    pub channels: Gauge,
    /// Age of each event (now minus its `Event-Date-Timestamp`) when the
    /// store acknowledged the write carrying its change.
    pub publish_latency: Histogram,
    /// Raw latencies (us) for benchmarks; `None` in production.
    samples: Option<Mutex<Samples>>,
    esl_up: Gauge,
    store_up: Gauge,
    /// Where `/metrics` listens once bound (port 0 resolved).
    http: std::sync::OnceLock<SocketAddr>,
}

impl Metrics {
    /// The address `/metrics` and `/healthz` listen on, once bound (the
    /// real port when `agent.http` asked for port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.get().copied()
    }

    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        Self::build(None)
    }

    /// Like [`Metrics::new`], and also keeps up to `cap` raw publish
    /// latencies for [`Metrics::take_latency_samples`] (benchmarks: exact
    /// percentiles rather than bucket bounds). Later samples are not kept.
    pub fn with_latency_samples(cap: usize) -> Arc<Self> {
        Self::build(Some(cap))
    }

    fn build(sample_cap: Option<usize>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("locus_agent");
        let m = Metrics {
            events: Family::default(),
            events_dropped: Counter::default(),
            esl_connects: Counter::default(),
            esl_failures: Counter::default(),
            resyncs: Counter::default(),
            store_errors: Counter::default(),
            store_writes: Counter::default(),
            calls: Gauge::default(),
            channels: Gauge::default(),
            publish_latency: Histogram::new(PUBLISH_LATENCY_BUCKETS),
            samples: sample_cap.map(|cap| {
                Mutex::new(Samples {
                    cap,
                    us: Vec::new(),
                })
            }),
            esl_up: Gauge::default(),
            store_up: Gauge::default(),
            http: std::sync::OnceLock::new(),
            registry: Registry::default(),
        };
        registry.register("esl_events", "ESL events received", m.events.clone());
        registry.register("esl_up", "ESL link to FreeSWITCH is up", m.esl_up.clone());
        registry.register("store_up", "Redis answers", m.store_up.clone());
        registry.register(
            "esl_events_dropped",
            "ESL events dropped (queue full; resync follows)",
            m.events_dropped.clone(),
        );
        registry.register(
            "esl_connects",
            "ESL connections established",
            m.esl_connects.clone(),
        );
        registry.register(
            "esl_failures",
            "ESL connect/auth/link failures",
            m.esl_failures.clone(),
        );
        registry.register("resyncs", "Full resyncs with FreeSWITCH", m.resyncs.clone());
        registry.register(
            "store_errors",
            "Failed store writes (retried)",
            m.store_errors.clone(),
        );
        registry.register(
            "store_writes",
            "Atomic store writes",
            m.store_writes.clone(),
        );
        registry.register("calls", "Live calls on the box", m.calls.clone());
        registry.register("channels", "Live channels on the box", m.channels.clone());
        registry.register(
            "publish_latency_seconds",
            "Event age (now - Event-Date-Timestamp) when the store acknowledged its change",
            m.publish_latency.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// Records, for each event origin (microseconds since the epoch, as
    /// FreeSWITCH stamps `Event-Date-Timestamp`), its age at `now_us`. An
    /// origin in the future (clocks of two hosts) counts as zero.
    pub fn observe_publish_latency(&self, now_us: u64, origins: &[u64]) {
        if origins.is_empty() {
            return;
        }
        for &o in origins {
            self.publish_latency
                .observe(now_us.saturating_sub(o) as f64 / 1e6);
        }
        if let Some(samples) = &self.samples {
            let mut s = locus_schema::lock(samples);
            let room = s.cap.saturating_sub(s.us.len());
            let ages = origins.iter().take(room).map(|&o| now_us.saturating_sub(o));
            s.us.extend(ages);
        }
    }

    /// Takes the raw latencies (us) kept so far (empty unless built with
    /// [`Metrics::with_latency_samples`]).
    pub fn take_latency_samples(&self) -> Vec<u64> {
        match &self.samples {
            Some(samples) => std::mem::take(&mut locus_schema::lock(samples).us),
            None => Vec::new(),
        }
    }

    /// Records the ESL link state.
    pub fn set_esl_up(&self, up: bool) {
        self.esl_up.set(i64::from(up));
    }

    /// Records the store state.
    pub fn set_store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    /// (esl up, store up).
    pub fn health(&self) -> (bool, bool) {
        (self.esl_up.get() == 1, self.store_up.get() == 1)
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(_) => String::new(),
        }
    }
}

/// Raw latency samples kept for benchmarks.
struct Samples {
    cap: usize,
    us: Vec<u64>,
}

/// Serves `/metrics` and `/healthz` until cancelled.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(health_handler))
        .with_state(metrics.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let _ = metrics.http.set(bound);
    tracing::info!(http.addr = %bound, "metrics and health listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
}

async fn metrics_handler(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn health_handler(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let (esl, store) = m.health();
    let code = if esl && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, format!("{{\"esl\":{esl},\"store\":{store}}}\n"))
}
