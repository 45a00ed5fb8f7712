//! [`Proxy`]: the receive loop of the proxy core. Responses go to their
//! client transaction (or the health prober, or are relayed statelessly
//! when they are 2xx strays); requests are checked (syntax, Max-Forwards,
//! loops, trust), route-processed (RFC 3261 16.4; our Routes' signatures
//! checked, [`super::keys`]), their next hop approved by the router's gate
//! when it comes from their own headers ([`Router::approve`]) and handed to
//! a server transaction ([`super::txn`]), except the cheap stateless cases: OPTIONS
//! to the proxy itself, CANCEL/ACK hop-by-hop matching, ACK for 2xx.
//!
//! Every request except ACK is forwarded statefully, in-dialog ones too:
//! a transaction per BYE costs a task, but it retransmits over UDP when
//! the caller came over TCP (a stateless proxy would lose a dropped BYE
//! for good, RFC 3261 16.11) and answers 408/503 itself when the box
//! behind a dialog has died.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::addr::{Hop, Me, response_hop};
use super::build::{loose_route, next_hop};
use super::config::CoreConfig;
use super::ids::{BranchGen, loop_hash, looped};
use super::keys::FlowKeys;
use super::router::{Dest, Flow, NextHop, Pass, Router, Target};
use super::stats::{DropReason, ProxyStats};
use super::txn::{self, Event, Plan};
use super::validate::validate;
use crate::health::Health;
use crate::registrar::Keepalive;
use crate::sip::{Inbound, SipError, SipMessage, SipTransport, Transport};

/// State shared by the receive loop and the transaction tasks.
pub(crate) struct Core {
    pub(crate) cfg: CoreConfig,
    pub(crate) transport: SipTransport,
    pub(crate) router: Arc<dyn Router>,
    pub(crate) health: OnceLock<Health>,
    /// Absorbs the answers to the keepalives toward phones.
    pub(crate) keepalive: OnceLock<Keepalive>,
    pub(crate) stats: Arc<ProxyStats>,
    pub(crate) me: Me,
    pub(crate) ids: BranchGen,
    /// Signs and checks our flow tokens and Record-Routes.
    pub(crate) keys: FlowKeys,
    /// Server transactions by [`server_key`].
    pub(crate) servers: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    /// Client transactions (our branches) by Via branch.
    pub(crate) clients: Mutex<HashMap<String, mpsc::Sender<Event>>>,
}

use locus_schema::lock;

impl Core {
    /// Sends `bytes` over `hop`.
    pub(crate) async fn send(&self, hop: &Hop, bytes: Bytes) -> Result<(), SipError> {
        self.transport
            .send_from(hop.local, hop.addr, hop.transport, bytes, hop.conn)
            .await
    }

    /// Answers `req` statelessly (no transaction: 400, 482, 483, 481,
    /// OPTIONS, CANCEL's 200).
    /// Sends from the receive loop: UDP at once; TCP in its own task, so a
    /// connect (the peer's connection closed meanwhile) never stalls the loop.
    pub(crate) async fn send_from_loop(
        self: &Arc<Self>,
        hop: Hop,
        bytes: Bytes,
        what: &'static str,
    ) {
        if hop.transport == Transport::Udp {
            if let Err(e) = self.send(&hop, bytes).await {
                tracing::debug!(peer = %hop.addr, error = %e, what, "proxy: not sent");
            }
            return;
        }
        let core = self.clone();
        tokio::spawn(async move {
            if let Err(e) = core.send(&hop, bytes).await {
                tracing::debug!(peer = %hop.addr, error = %e, what, "proxy: not sent");
            }
        });
    }

    async fn reply(self: &Arc<Self>, req: &SipMessage, flow: &Flow, status: u16, reason: &str) {
        let tag = self.ids.tag();
        let resp = req.reply(status, reason, Some(&tag));
        self.stats.replied(status);
        let Some(hop) = req
            .top_via()
            .ok()
            .and_then(|v| response_hop(&v, Some(flow)))
        else {
            tracing::debug!(peer = %flow.source, status, "proxy: no way back for a reply");
            return;
        };
        self.send_from_loop(hop, resp.to_bytes(), "reply").await;
    }
}

/// The SIP proxy core (RFC 3261 section 16). Clones share one core: run
/// one [`Proxy::run`] per receive queue.
#[derive(Clone)]
pub struct Proxy {
    core: Arc<Core>,
}

impl Proxy {
    /// A proxy answering on `transport`'s listeners, asking `router`.
    pub fn new(cfg: CoreConfig, transport: SipTransport, router: Arc<dyn Router>) -> Proxy {
        let (udp, tcp) = (transport.udp_addrs(), transport.tcp_addrs());
        if cfg.advertise.is_none() && udp.iter().chain(&tcp).any(|a| a.ip().is_unspecified()) {
            // Via and Record-Route would name 0.0.0.0: nobody could route back.
            tracing::warn!(
                "proxy: a listener is bound to an unspecified address; set proxy.core.advertise"
            );
        }
        let me = Me::new(udp, tcp, cfg.advertise.as_deref());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let salt = nanos ^ std::process::id().rotate_left(16);
        Proxy {
            core: Arc::new(Core {
                cfg,
                transport,
                router,
                health: OnceLock::new(),
                keepalive: OnceLock::new(),
                stats: Arc::new(ProxyStats::default()),
                me,
                ids: BranchGen::new(salt),
                keys: FlowKeys::random(),
                servers: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Offers every response to `health` first (its OPTIONS probes share
    /// the transport).
    pub fn with_health(self, health: Health) -> Proxy {
        let _ = self.core.health.set(health);
        self
    }

    /// Offers every response to `keepalive` (its pings toward phones share
    /// the transport; their answers are never relayed).
    pub fn with_keepalive(self, keepalive: Keepalive) -> Proxy {
        let _ = self.core.keepalive.set(keepalive);
        self
    }

    /// Signs flow tokens and Record-Routes with `keys` (the farm secret)
    /// instead of a random per-process key. Call before [`Proxy::run`].
    pub fn with_keys(mut self, keys: FlowKeys) -> Proxy {
        match Arc::get_mut(&mut self.core) {
            Some(core) => core.keys = keys,
            None => tracing::error!("proxy: keys set after start; ignored"),
        }
        self
    }

    /// Counters.
    pub fn stats(&self) -> Arc<ProxyStats> {
        self.core.stats.clone()
    }

    /// Processes messages from `rx` until `cancel` fires or the queue closes.
    pub async fn run(&self, mut rx: mpsc::Receiver<Inbound>, cancel: CancellationToken) {
        loop {
            let inbound = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            let flow = Flow::from(&inbound);
            if inbound.msg.is_request() {
                on_request(&self.core, inbound.msg, flow, &cancel).await;
            } else {
                super::stateless::on_response(&self.core, inbound.msg, &flow).await;
            }
        }
    }
}

/// Key of a server transaction (RFC 3261 17.2.3): top Via branch and
/// sent-by plus the method, ACK and CANCEL folded onto their INVITE; the
/// RFC 2543 fallback (no magic cookie) uses Call-ID, CSeq and From tag.
pub(crate) fn server_key(req: &SipMessage, method: &str) -> Option<String> {
    let via = req.top_via().ok()?;
    let m = if method == "ACK" || method == "CANCEL" {
        "INVITE"
    } else {
        method
    };
    if let Some(b) = via.branch().filter(|b| b.starts_with("z9hG4bK")) {
        return Some(format!("{b} {m} {}:{}", via.host, via.port.unwrap_or(0)));
    }
    let from_tag = req.from().ok()?.tag().unwrap_or_default().to_string();
    let (n, _) = req.cseq().ok()?;
    Some(format!("{} {n} {from_tag} {m}", req.call_id().ok()?))
}

pub(crate) fn sender(
    map: &Mutex<HashMap<String, mpsc::Sender<Event>>>,
    key: &str,
) -> Option<mpsc::Sender<Event>> {
    lock(map).get(key).cloned()
}

async fn on_request(core: &Arc<Core>, mut msg: SipMessage, flow: Flow, cancel: &CancellationToken) {
    let Some(method) = msg.method().map(str::to_string) else {
        return;
    };
    core.stats.request(&method);
    let is_ack = method == "ACK";
    if let Err((status, why)) = validate(&msg, &method) {
        tracing::debug!(peer = %flow.source, sip.method = %method, status, reason = why, "proxy: bad request");
        if !is_ack && msg.top_via().is_ok() {
            core.reply(&msg, &flow, status, why).await;
        } else {
            core.stats.drop_one(DropReason::Malformed);
        }
        return;
    }
    if msg.stamp_received(flow.source).is_err() {
        return;
    }
    if method == "OPTIONS"
        && msg
            .request_uri()
            .is_some_and(|u| u.user.is_none() && core.me.is_ours_uri(u))
    {
        return core.reply(&msg, &flow, 200, "OK").await;
    }
    let Some(key) = server_key(&msg, &method) else {
        return;
    };
    let existing = sender(&core.servers, &key);
    match (method.as_str(), existing) {
        // Only an RFC 3261 ACK (magic cookie) is known to share its INVITE's
        // branch, hence to be for a non-2xx; an RFC 2543 one matching by
        // Call-ID/CSeq may be the end-to-end ACK of a 2xx and goes on.
        ("ACK", Some(tx)) if key.starts_with("z9hG4bK") => {
            let _ = tx.try_send(Event::Ack);
            return;
        }
        ("CANCEL", Some(tx)) => {
            core.reply(&msg, &flow, 200, "OK").await;
            let _ = tx.try_send(Event::Cancel);
            return;
        }
        // CANCEL is hop-by-hop: nothing to cancel here means nothing anywhere.
        ("CANCEL", None) => {
            return core
                .reply(&msg, &flow, 481, "Call/Transaction Does Not Exist")
                .await;
        }
        ("ACK", _) => {}
        (_, Some(tx)) => {
            core.stats.retransmission();
            let _ = tx.try_send(Event::Retransmit);
            return;
        }
        (_, None) => {}
    }
    let lh = loop_hash(&msg);
    match msg.decrement_max_forwards() {
        Ok(_) => {}
        Err(_) if is_ack => return,
        Err(SipError::TooManyHops) => return core.reply(&msg, &flow, 483, "Too Many Hops").await,
        Err(_) => return core.reply(&msg, &flow, 400, "Bad Max-Forwards").await,
    }
    if looped(&msg, lh, |v| core.me.is_our_via(v)) {
        tracing::info!(peer = %flow.source, sip.method = %method, "proxy: loop detected");
        if !is_ack {
            core.reply(&msg, &flow, 482, "Loop Detected").await;
        }
        return;
    }
    if let Err((status, reason)) = core.router.admit(&mut msg, &flow) {
        if !is_ack {
            core.reply(&msg, &flow, status, reason).await;
        }
        return;
    }
    let routed = match loose_route(&mut msg, &core.me, &core.keys, &flow) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(peer = %flow.source, error = %e, "proxy: bad Route");
            if !is_ack {
                core.reply(&msg, &flow, 400, "Bad Route").await;
            }
            return;
        }
    };
    if routed.forged {
        core.stats.forged_token();
        tracing::info!(peer = %flow.source, sip.method = %method, "proxy: Route of ours with a signature that does not hold");
        if !is_ack {
            core.reply(&msg, &flow, 403, "Forged Route").await;
        }
        return;
    }
    let in_dialog = msg.to().is_ok_and(|t| t.tag().is_some());
    let routed_by_headers = in_dialog || msg.headers.get("Route").is_some() || is_ack;
    let mut dest = match routed.flow {
        Some(f) => Some(Dest::Flow(f)),
        None if routed_by_headers => match next_hop(&msg) {
            Ok(Some(u)) if !core.me.is_ours_uri(&u) => Some(Dest::Uri(u)),
            // In-dialog and addressed to us: we keep no dialogs.
            _ => {
                if !is_ack {
                    core.reply(&msg, &flow, 481, "Call/Transaction Does Not Exist")
                        .await;
                }
                return;
            }
        },
        None => None,
    };
    if let Some(d) = &dest {
        let hop = NextHop {
            dest: d,
            route: routed.mark,
            in_dialog: in_dialog || is_ack,
            preloaded: !in_dialog && !is_ack && routed.remaining,
        };
        match core.router.approve(&msg, &flow, &hop) {
            Ok(Pass::Go) => {}
            Ok(Pass::Strip) => {
                msg.headers.remove_all("Route");
                dest = None;
                if is_ack {
                    return;
                }
            }
            Err((status, reason)) => {
                core.stats.gate_refused();
                tracing::info!(peer = %flow.source, sip.method = %method, dest = ?d, status, "proxy: next hop refused");
                if !is_ack {
                    core.reply(&msg, &flow, status, reason).await;
                }
                return;
            }
        }
    }
    if is_ack {
        if let Some(dest) = dest {
            super::stateless::forward_ack(core, msg, dest, lh, flow).await;
        }
        return;
    }
    let plan = match dest {
        Some(dest) => Plan::Direct(Box::new(Target {
            dest,
            ruri: None,
            node: None,
            route: Vec::new(),
        })),
        None => Plan::Route,
    };
    txn::spawn(core.clone(), key, msg, flow, plan, lh, cancel.clone()).await;
}
