//! The ESL session and the model task: connect to FreeSWITCH (with capped,
//! jittered backoff), subscribe, snapshot, then turn each live event into
//! one change for the publisher. The model is owned here, without locks.

use std::sync::Arc;

use locus_esl::{
    Backoff, DisconnectReason, EslClient, EslConfig, EslError, EslHandle, EslItem, EventStream,
};
use locus_schema::{EslLink, NodeStatus, NodeStore, RegClaim};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::AgentConfig;
use crate::metrics::{EventLabel, Metrics};
use crate::model::{MemberOp, Model, Update};
use crate::publisher::Publish;
use crate::{now_ms, resync, unreg};

/// Events the agent subscribes to: only what the model reads, because
/// FreeSWITCH disconnects a listener that falls 500 events behind.
/// CHANNEL_EXECUTE is needed: the A-leg learns `called_party_callgroup` only
/// from the dialplan's `set`, before the bridge.
pub const SUBSCRIPTION: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ORIGINATE",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CALL_UPDATE",
    "HEARTBEAT",
    "BACKGROUND_JOB",
    "CUSTOM",
    "valet_parking::info",
    "conference::maintenance",
    "callcenter::info",
    "fifo::info",
    "sofia::register",
    "sofia::unregister",
    "sofia::expire",
];

/// A session that lasted this long resets the reconnect backoff.
const STABLE_SESSION: std::time::Duration = std::time::Duration::from_secs(10);

/// Concurrent `user_data` lookups at most.
const LOOKUPS: usize = 4;

/// Events the model takes in a row before letting other tasks run.
const DRAIN: usize = 1024;

/// Why one session ended.
enum End {
    Cancelled,
    Reconnect,
}

/// Runs sessions until cancelled: connect, snapshot, follow, repeat.
pub async fn run(
    cfg: AgentConfig,
    store: Arc<dyn NodeStore>,
    tx: mpsc::Sender<Publish>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    let base = NodeStatus {
        sip_uri: cfg.sip_uri.clone(),
        role: cfg.role,
        weight: cfg.weight,
        ..NodeStatus::default()
    };
    // Until the first snapshot the node is known, with its link down.
    let mut model = Model::new(cfg.model.clone(), base.clone());
    send(&tx, model.set_esl(EslLink::Down, now_ms())).await;
    let mut backoff = Backoff::new(cfg.esl.backoff_base, cfg.esl.backoff_cap);
    let lookups = Arc::new(Semaphore::new(LOOKUPS));
    let esl_cfg = EslConfig {
        addr: cfg.esl.addr.clone(),
        password: cfg.esl.password.clone(),
        connect_timeout: cfg.esl.connect_timeout,
        command_timeout: cfg.esl.command_timeout,
        event_queue: cfg.esl.event_queue,
        max_body: cfg.esl.max_body,
        liveness: cfg.esl.liveness,
    };
    loop {
        let span = info_span!("esl", node.id = %cfg.node_id, peer = %cfg.esl.addr);
        let attempt = async {
            tokio::select! {
                biased;
                _ = token.cancelled() => Err(None),
                r = EslClient::connect(&esl_cfg) => r.map_err(Some),
            }
        }
        .instrument(span.clone())
        .await;
        let (handle, mut events) = match attempt {
            Ok(c) => c,
            Err(None) => return,
            Err(Some(e)) => {
                metrics.esl_failures.inc();
                match &e {
                    EslError::AuthRejected(_) => {
                        error!(parent: &span, "FreeSWITCH refused the ESL password (agent.esl.password); retrying")
                    }
                    _ => warn!(parent: &span, error = %e, "cannot reach FreeSWITCH; retrying"),
                }
                if sleep_or_cancel(backoff.next(), &token).await {
                    return;
                }
                continue;
            }
        };
        metrics.esl_connects.inc();
        let started = tokio::time::Instant::now();
        let end = async {
            match follow(
                &cfg,
                &store,
                &handle,
                &mut events,
                &mut model,
                &base,
                &tx,
                &metrics,
                &lookups,
                &token,
            )
            .await
            {
                Ok(end) => end,
                Err(e) => {
                    warn!(error = %e, "ESL session failed");
                    End::Reconnect
                }
            }
        }
        .instrument(span.clone())
        .await;
        metrics.set_esl_up(false);
        send(&tx, model.set_esl(EslLink::Down, now_ms())).await;
        match end {
            End::Cancelled => {
                let _ = handle.exit().await;
                return;
            }
            End::Reconnect => {
                metrics.esl_failures.inc();
                // A session that lived a while earns a quick reconnect; one
                // that breaks at once (bad frames, a box restarting) keeps
                // backing off, so a sick peer never sees a tight loop.
                if started.elapsed() >= STABLE_SESSION {
                    backoff.reset();
                }
                if sleep_or_cancel(backoff.next(), &token).await {
                    return;
                }
            }
        }
    }
}

/// One connected session: subscribe, snapshot, follow events.
#[allow(clippy::too_many_arguments)]
async fn follow(
    cfg: &AgentConfig,
    store: &Arc<dyn NodeStore>,
    handle: &EslHandle,
    events: &mut EventStream,
    model: &mut Model,
    base: &NodeStatus,
    tx: &mpsc::Sender<Publish>,
    metrics: &Arc<Metrics>,
    lookups: &Arc<Semaphore>,
    token: &CancellationToken,
) -> Result<End, EslError> {
    // Subscribe first, then snapshot: events that race the snapshot queue
    // up and are applied after it, through the same path as live ones.
    handle.subscribe_json(SUBSCRIPTION).await?;
    resnapshot(cfg, handle, model, base, tx, metrics).await?;
    info!(
        calls = model.call_count(),
        channels = model.channel_count(),
        "ESL connected and reconciled"
    );
    let mut in_a_row = 0;
    let mut unregs = tokio::time::interval(cfg.refresh);
    unregs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One pass at a time, beside the events (an api call waits for its
    // reply, which arrives through this session's reader).
    let mut flushing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let item = tokio::select! {
            biased;
            _ = token.cancelled() => return Ok(End::Cancelled),
            _ = unregs.tick() => {
                if flushing.as_ref().is_none_or(|t| t.is_finished()) {
                    let (store, node, handle) = (store.clone(), cfg.node_id.clone(), handle.clone());
                    flushing = Some(tokio::spawn(async move {
                        unreg::drain(store.as_ref(), &node, &handle).await;
                    }));
                }
                continue;
            }
            // Unconstrained by tokio's task budget: on one core the budget
            // let the socket reader (which never waits, by design) queue
            // events faster than this loop took them, until the queue
            // overflowed and forced resyncs (docs/performance.md). Fairness
            // comes from the yield below instead.
            item = tokio::task::unconstrained(events.recv()) => item,
        };
        in_a_row += 1;
        if in_a_row >= DRAIN {
            in_a_row = 0;
            tokio::task::yield_now().await;
        }
        match item {
            Some(EslItem::Event(ev)) => {
                let label = match ev.subclass() {
                    Some(sub) => sub.to_owned(),
                    None => ev.name().unwrap_or("?").to_owned(),
                };
                metrics
                    .events
                    .get_or_create(&EventLabel { event: label })
                    .inc();
                let origin_us = origin_us(&ev);
                let up = model.apply(&ev, now_ms());
                metrics.calls.set(model.call_count() as i64);
                metrics.channels.set(model.channel_count() as i64);
                dispatch(
                    up,
                    origin_us,
                    handle,
                    tx,
                    lookups,
                    &cfg.model.caller_group_var,
                )
                .await;
            }
            Some(EslItem::Overflow { dropped }) => {
                metrics.events_dropped.inc_by(dropped);
                warn!(dropped, "event queue overflowed; resyncing");
                resnapshot(cfg, handle, model, base, tx, metrics).await?;
            }
            Some(EslItem::Disconnected(reason)) => {
                match &reason {
                    DisconnectReason::Notice(text) => {
                        info!(notice = %text.trim(), "FreeSWITCH closed the ESL link")
                    }
                    other => warn!(reason = ?other, "ESL link lost"),
                }
                return Ok(End::Reconnect);
            }
            None => return Ok(End::Reconnect),
        }
    }
}

async fn resnapshot(
    cfg: &AgentConfig,
    handle: &EslHandle,
    model: &mut Model,
    base: &NodeStatus,
    tx: &mpsc::Sender<Publish>,
    metrics: &Metrics,
) -> Result<(), EslError> {
    let fresh = resync::snapshot(handle, cfg.model.clone(), base.clone()).await?;
    *model = fresh;
    metrics.resyncs.inc();
    metrics.set_esl_up(true);
    let _ = tx.send(Publish::Replace(model.image())).await;
    reclaim(handle, tx, &cfg.model.caller_group_var).await;
    Ok(())
}

/// Makes the membership claims agree with the box's registrations (they
/// may have ended, or been made, while the agent was not looking; after a
/// restart the agent knows none), then looks up the groups of each user
/// in the background, one at a time.
async fn reclaim(handle: &EslHandle, tx: &mpsc::Sender<Publish>, var: &str) {
    let rows = match handle.api(crate::listing::SHOW_REGISTRATIONS).await {
        Ok(body) => match crate::listing::parse_show_json(&body) {
            Ok(rows) => rows,
            Err(e) => {
                warn!(error = %e, "unreadable registration list; claims kept as they are");
                return;
            }
        },
        Err(e) => {
            debug!(error = %e, "registration list unavailable; claims kept as they are");
            return;
        }
    };
    let regs: Vec<(String, String, RegClaim)> = rows.iter().filter_map(registration).collect();
    let _ = tx.send(Publish::Registrations(regs.clone())).await;
    let (handle, tx, var) = (handle.clone(), tx.clone(), var.to_owned());
    tokio::spawn(async move {
        let mut done = std::collections::BTreeSet::new();
        for (domain, ext, _) in regs {
            if !done.insert((domain.clone(), ext.clone())) {
                continue;
            }
            let groups = user_groups(&handle, &domain, &ext, &var).await;
            if !groups.is_empty() {
                let add = MemberOp::Add {
                    domain,
                    ext,
                    groups,
                    reg: None,
                };
                if tx.send(Publish::Member(add)).await.is_err() {
                    return;
                }
            }
        }
    });
}

/// One row of `show registrations as json` as `(domain, user, claim)`.
fn registration(row: &crate::listing::ShowRow) -> Option<(String, String, RegClaim)> {
    let user = row.get("reg_user").filter(|u| !u.is_empty())?;
    let domain = row.get("realm").filter(|d| !d.is_empty())?;
    let call_id = row.get("token").filter(|t| !t.is_empty())?;
    // `sofia/<profile>/<contact>`.
    let url = row.get("url").map(String::as_str).unwrap_or_default();
    let mut parts = url.splitn(3, '/');
    let (profile, contact) = match (parts.next(), parts.next(), parts.next()) {
        (Some("sofia"), Some(p), Some(c)) if !p.is_empty() => (p.to_owned(), c.to_owned()),
        _ => ("internal".to_owned(), String::new()),
    };
    let reg = RegClaim {
        call_id: call_id.clone(),
        contact,
        profile,
    };
    Some((domain.clone(), user.clone(), reg))
}

/// The user's pickup groups from its directory (`user_data`); none when
/// the lookup fails.
async fn user_groups(handle: &EslHandle, domain: &str, ext: &str, var: &str) -> Vec<String> {
    let cmd = format!("user_data {ext}@{domain} var {var}");
    match handle.api(&cmd).await {
        Ok(body) => body
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty() && !g.starts_with("-ERR"))
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            debug!(%domain, %ext, error = %e, "user_data lookup failed");
            Vec::new()
        }
    }
}

/// When FreeSWITCH created the event: `Event-Date-Timestamp`, microseconds
/// since the epoch, stamped by `switch_event_prep_for_delivery` before the
/// event is queued to listeners. A missing or unreadable stamp just leaves
/// the event out of the latency metric.
fn origin_us(ev: &locus_esl::Event) -> Option<u64> {
    ev.get("Event-Date-Timestamp")?
        .parse()
        .ok()
        .filter(|&us| us > 0)
}

/// Sends an update's change and membership to the publisher; membership
/// lookups (`user_data`) run beside, bounded, never blocking the model.
async fn dispatch(
    up: Update,
    origin_us: Option<u64>,
    handle: &EslHandle,
    tx: &mpsc::Sender<Publish>,
    lookups: &Arc<Semaphore>,
    var: &str,
) {
    let Update { change, members } = up;
    if !change.is_empty() {
        let _ = tx.send(Publish::Change { change, origin_us }).await;
    }
    for m in members {
        match m {
            MemberOp::Lookup { domain, ext, reg } => {
                let Ok(permit) = lookups.clone().try_acquire_owned() else {
                    debug!(%domain, %ext, "membership lookup skipped: too many in flight");
                    // The registration is claimed all the same (groups
                    // come with the next refresh or call).
                    if reg.is_some() {
                        let groups = Vec::new();
                        let add = MemberOp::Add {
                            domain,
                            ext,
                            groups,
                            reg,
                        };
                        let _ = tx.send(Publish::Member(add)).await;
                    }
                    continue;
                };
                let (handle, tx, var) = (handle.clone(), tx.clone(), var.to_owned());
                tokio::spawn(async move {
                    let _permit = permit;
                    let groups = user_groups(&handle, &domain, &ext, &var).await;
                    if !groups.is_empty() || reg.is_some() {
                        let add = MemberOp::Add {
                            domain,
                            ext,
                            groups,
                            reg,
                        };
                        let _ = tx.send(Publish::Member(add)).await;
                    }
                });
            }
            other => {
                let _ = tx.send(Publish::Member(other)).await;
            }
        }
    }
}

async fn send(tx: &mpsc::Sender<Publish>, up: Update) {
    if !up.change.is_empty() {
        let _ = tx
            .send(Publish::Change {
                change: up.change,
                origin_us: None,
            })
            .await;
    }
}

/// Sleeps, or returns true at once when cancelled.
async fn sleep_or_cancel(d: std::time::Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = token.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
