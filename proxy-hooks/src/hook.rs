//! The HTTP route hook (issue 3): [`Engine::route`] behind a small HTTP API
//! so Kamailio or OpenSIPS can ask where a request goes.
//!
//! * `POST /route` with a JSON [`HookRequest`] -> JSON [`HookAnswer`];
//! * `GET /route?method=INVITE&ruri_user=...` -> the same, for Kamailio's
//!   `http_client_query`, which sends a GET most easily;
//! * `GET /route/du?...` -> just the first target's SIP URI, as plain text,
//!   for a script that does `$du = $var(result)`;
//! * `/metrics` (decisions per rule) and `/healthz` (503 while stale).
//!
//! No target -> 503 (404 on `/route/du`); in-dialog requests answer 200
//! with no targets, since the proxy must follow the Route set. Bodies
//! over 16 KiB are refused (413): a route request is a few hundred bytes.

mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::routing::engine::Engine;
use crate::routing::request::{Decision, Method, Rule};
use crate::routing::sync::FarmSync;

pub use wire::{HookAnswer, HookError, HookRequest, HookSource, HookTarget};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;

/// What the hook routes with.
#[derive(Clone, Debug)]
pub struct HookState {
    /// The routing engine (shared with a SIP proxy in the same process).
    pub engine: Arc<Engine>,
    /// The farm snapshot, kept current elsewhere by [`FarmSync::run`].
    pub sync: Arc<FarmSync>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: &'static str,
}

/// Called before every `/metrics` scrape (gauges read from live state).
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

struct Metrics {
    registry: Registry,
    decisions: Family<RuleLabel, Counter>,
    refresh: Option<Refresh>,
}

#[derive(Clone)]
struct Shared {
    hook: HookState,
    metrics: Arc<Metrics>,
}

/// The hook's routes, with their own metrics registry.
pub fn router(state: HookState) -> Router {
    router_with(state, Registry::default(), None)
}

/// The hook's routes whose `/metrics` also shows `registry` (a SIP proxy's
/// counters in the same process), after calling `refresh`.
pub fn router_with(state: HookState, mut registry: Registry, refresh: Option<Refresh>) -> Router {
    let decisions = Family::<RuleLabel, Counter>::default();
    registry.register(
        "locus_proxy_route_decisions",
        "Route hook decisions, by rule",
        decisions.clone(),
    );
    registry.register(
        "locus_proxy_affinity_hits",
        "Requests sent to the node their Call-ID is pinned to (the retry of a challenged request), SIP proxy and hook",
        state.sync.affinity().hits_counter().clone(),
    );
    let shared = Shared {
        hook: state,
        metrics: Arc::new(Metrics {
            registry,
            decisions,
            refresh,
        }),
    };
    Router::new()
        .route("/route", get(route_get).post(route_post))
        .route("/route/du", get(route_du))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// Binds `addr` and serves the hook until `token` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    state: HookState,
    token: CancellationToken,
) -> std::io::Result<()> {
    serve_on(TcpListener::bind(addr).await?, state, token).await
}

/// Serves the hook on a bound listener until `token` is cancelled.
pub async fn serve_on(
    listener: TcpListener,
    state: HookState,
    token: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(http.addr = %listener.local_addr()?, "route hook listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(token.cancelled_owned())
        .await
}

fn json_error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": msg.to_string() });
    (code, axum::Json(body)).into_response()
}

impl Shared {
    /// Routes a parsed request; counts it, and counts a standard placement
    /// in flight so `least_calls` spreads bursts between agent updates.
    /// The hook never sees the box's answer, so every out-of-dialog
    /// placement pins its Call-ID to the first target: the retry of a
    /// challenged request is sent there again, not counted again.
    fn decide(&self, req: Result<HookRequest, HookError>) -> Result<(Decision, bool), HookError> {
        let checked = req.and_then(HookRequest::check)?;
        let req = checked.request();
        let sync = &self.hook.sync;
        let p =
            self.hook
                .engine
                .route_pinned(&sync.snapshot(), &req, sync.inflight(), sync.affinity());
        let d = p.decision;
        self.metrics
            .decisions
            .get_or_create(&RuleLabel {
                rule: d.rule.as_str(),
            })
            .inc();
        let placed = !p.hit && !req.in_dialog;
        if placed && let Some(n) = d.primary() {
            if d.rule == Rule::Standard && req.method == Method::Invite {
                sync.inflight().add(&n.id);
            }
            sync.affinity().remember(req.call_id, &n.id);
        }
        tracing::debug!(
            call.id = req.call_id,
            route.rule = d.rule.as_str(),
            route.reason = d.reason,
            route.pinned = p.hit,
            node.id = d.primary().map(|n| n.id.as_str()),
            "hook decision"
        );
        Ok((d, sync.is_stale()))
    }

    fn answer(&self, req: Result<HookRequest, HookError>) -> Response {
        let (d, stale) = match self.decide(req) {
            Ok(v) => v,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
        };
        let code = if d.targets.is_empty() && d.rule != Rule::InDialog {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (code, axum::Json(HookAnswer::new(&d, stale))).into_response()
    }
}

async fn route_post(State(s): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(b) => s.answer(HookRequest::from_json(&b)),
        Err(e) => json_error(e.status(), e.body_text()),
    }
}

async fn route_get(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    s.answer(HookRequest::from_query(q.as_deref().unwrap_or_default()))
}

async fn route_du(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match s.decide(HookRequest::from_query(q.as_deref().unwrap_or_default())) {
        Err(e) => json_error(StatusCode::BAD_REQUEST, e),
        Ok((d, _)) => match d.primary() {
            Some(n) => (StatusCode::OK, plain, n.sip_uri.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, plain, String::new()).into_response(),
        },
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    if let Some(refresh) = &s.metrics.refresh {
        refresh();
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &s.metrics.registry) {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    let ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, ctype)], out).into_response()
}

async fn healthz(State(s): State<Shared>) -> Response {
    let sync = &s.hook.sync;
    let stale = sync.is_stale();
    let code = match stale {
        true => StatusCode::SERVICE_UNAVAILABLE,
        false => StatusCode::OK,
    };
    let body = serde_json::json!({ "stale": stale, "nodes": sync.snapshot().nodes().len() });
    (code, axum::Json(body)).into_response()
}
