//! [`FarmRouter`]: the production [`Router`] of the SIP proxy. Trust and
//! the proxy's own tables come from [`Policy`]; rules 1-5 from the
//! [`Engine`] over the current [`FarmSnapshot`](crate::FarmSnapshot);
//! registrations and rule 7 lookups from a [`Location`] (the registrar).
//!
//! Dispatch (`rules.rs`), by where a request comes from:
//! * REGISTER, from anyone: rule 2, then the registrar adds `Path`.
//! * A carrier trunk: the DID (R-URI user) names the tenant domain, placed
//!   by rules 4-5 only (feature codes and `Replaces` never apply to carrier
//!   calls); unknown DID: 404.
//! * A farm node: a registered user's contacts, all at once (rule 7);
//!   else, for an INVITE, a feature code by the engine (a box may send a
//!   pickup or a conference join through the proxy); else a number
//!   matching `outside`, or a foreign R-URI host, to the gateways in order
//!   (rule 6); else 480. A user is looked up before feature codes so a
//!   registered extension that happens to look like a code still rings.
//! * A phone: the engine, rules 1-5.
//!
//! `OPTIONS` to the proxy's own address without a user is answered here
//! (200): carriers and phones ping the proxy itself.
//!
//! A box over TCP is known by its IP whatever its source port (see
//! `Policy::classify`); its connection is remembered as the way to that
//! node's `sip_uri` (`SipTransport::alias`), so requests to it reuse the
//! connection it opened instead of a new one to its listener.
//!
//! A node's 401/407 pins the request's Call-ID to that node, and rules
//! 1-5 send a pinned Call-ID there first (`crate::routing::affinity`): the phone's
//! authenticated retry must meet the box that issued the nonce.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use locus_schema::NodeId;

use crate::policy::{Policy, Vouched};
use crate::proxy::{Flow, Location, NextHop, Pass, PreloadedRoute, Router, Target, Verdict};
use crate::routing::engine::Engine;
use crate::routing::request::Source;
use crate::routing::snapshot::FarmSnapshot;
use crate::routing::sync::FarmSync;
use crate::sip::{SipMessage, SipTransport, Uri};

pub mod request;
mod rules;

/// The header a box's 302 names the node holding the call in.
pub const REDIRECT_HEADER: &str = "X-Locus-Node";

/// Engine + farm snapshot + policy + registrar, behind the [`Router`] seam.
pub struct FarmRouter {
    policy: Policy,
    engine: Arc<Engine>,
    sync: Arc<FarmSync>,
    location: Option<Arc<dyn Location>>,
    preloaded: PreloadedRoute,
    /// Requests that proved a node secret at admission, for routing.
    vouched: Vouched,
}

impl std::fmt::Debug for FarmRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FarmRouter")
            .field("policy", &self.policy)
            .field("location", &self.location.is_some())
            .finish_non_exhaustive()
    }
}

fn reply(status: u16, reason: &'static str) -> Verdict {
    Verdict::Reply {
        status,
        reason: Cow::Borrowed(reason),
    }
}

impl FarmRouter {
    /// A router over `sync`'s snapshots. Without a `location` (no
    /// registrar), REGISTERs go out without `Path` and farm nodes' calls to
    /// users find no one.
    pub fn new(
        policy: Policy,
        engine: Arc<Engine>,
        sync: Arc<FarmSync>,
        location: Option<Arc<dyn Location>>,
    ) -> Self {
        Self {
            policy,
            engine,
            sync,
            location,
            preloaded: PreloadedRoute::default(),
            vouched: Vouched::default(),
        }
    }

    /// What the gate does with a phone's preloaded Route
    /// (`[proxy.security] preloaded_route`; default refuse).
    pub fn with_preloaded_route(mut self, mode: PreloadedRoute) -> Self {
        self.preloaded = mode;
        self
    }

    /// The trust and routing tables.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Has `transport` remember boxes' inbound TCP connections (see
    /// [`node_listener`]), so requests to a node reuse the connection it
    /// opened.
    pub fn with_transport(self, transport: &SipTransport) -> Self {
        let sync = self.sync.clone();
        transport.remember_conns(Box::new(move |req, peer| {
            node_listener(&sync.snapshot(), req, peer)
        }));
        self
    }

    /// The source of a request being routed: by address, a UDP node's
    /// only if admission vouched for its secret.
    pub(crate) fn source<'a>(
        &'a self,
        snap: &'a FarmSnapshot,
        req: &SipMessage,
        flow: &Flow,
    ) -> Source<'a> {
        match self.policy.classify(snap, flow) {
            Source::Node(_) if self.policy.wants_secret(flow) && !self.vouched.take(req, flow) => {
                self.policy.stranger(flow)
            }
            s => s,
        }
    }

    /// A node's 401/407 (digest challenge, its own nonce): pin the Call-ID
    /// to that node, so the phone's authenticated retry goes back to it
    /// (`affinity.rs`; only out-of-dialog requests reach `on_final`).
    fn pin_challenge(&self, req: &SipMessage, target: &Target, resp: &SipMessage) {
        if let (Some(401 | 407), Some(node), Some(call_id)) =
            (resp.status(), &target.node, req.call_id().ok())
        {
            tracing::debug!(sip.call_id = call_id, node.id = %node, "challenged: Call-ID pinned");
            self.sync.affinity().remember(call_id, node);
        }
    }

    /// A 302 from farm node `from` naming `value` (its `X-Locus-Node`):
    /// that node, when it is another node, known and up.
    fn redirect(&self, from: &NodeId, value: &str) -> Option<Vec<Target>> {
        let Ok(id) = NodeId::new(value.trim()) else {
            tracing::warn!(node.id = %from, value, "302 names no valid node");
            return None;
        };
        if id == *from {
            tracing::warn!(node.id = %from, "302 redirects to the node itself; ignored");
            return None;
        }
        let snap = self.sync.snapshot();
        let node = snap.find(&id).and_then(|i| snap.node(i));
        let Some(node) = node.filter(|n| n.up) else {
            tracing::warn!(node.id = %from, to = %id, "302 to an unknown or down node; ignored");
            return None;
        };
        match Uri::parse(&node.sip_uri) {
            Ok(uri) => {
                tracing::debug!(node.id = %from, to = %id, "302 retargeted");
                Some(vec![Target::node(id, uri)])
            }
            Err(e) => {
                tracing::warn!(node.id = %id, error = %e, "node SIP URI unreadable");
                None
            }
        }
    }
}

#[async_trait]
impl Router for FarmRouter {
    fn admit(&self, req: &mut SipMessage, flow: &Flow) -> Result<(), (u16, &'static str)> {
        let snap = self.sync.snapshot();
        let source = self.policy.authenticate(&snap, flow, req);
        if let Source::Node(_) = source
            && self.policy.wants_secret(flow)
        {
            // Routing (out of dialog) or the gate (a hop from the request's
            // own headers) asks again, without the header.
            self.vouched.insert(req, flow);
        }
        self.policy.admit(source, req, flow)
    }

    fn approve(
        &self,
        req: &SipMessage,
        flow: &Flow,
        hop: &NextHop<'_>,
    ) -> Result<Pass, (u16, &'static str)> {
        let snap = self.sync.snapshot();
        let source = self.source(&snap, req, flow);
        self.policy
            .approve(&snap, source, flow, hop, self.preloaded)
    }

    fn caller_flow(&self, _req: &SipMessage, flow: &Flow) -> bool {
        // By address only: a node's UDP request without its secret is
        // routed as a stranger's but needs no flow (it is at its Contact).
        let snap = self.sync.snapshot();
        matches!(self.policy.classify(&snap, flow), Source::Phone)
            && !self.policy.is_peer(flow.source)
    }

    async fn route(&self, req: &mut SipMessage, flow: &Flow) -> Verdict {
        let snap = self.sync.snapshot();
        let source = self.source(&snap, req, flow);
        if req.method() == Some("REGISTER")
            && matches!(source, Source::Phone)
            && let Some(loc) = &self.location
            && let Some(resp) = loc.absorb_register(req, flow).await
        {
            return Verdict::Respond(Box::new(resp));
        }
        let verdict = self.decide(&snap, req, flow, source).await;
        if req.method() == Some("REGISTER")
            && let (Verdict::Forward { .. }, Some(loc)) = (&verdict, &self.location)
        {
            // A phone's own Path would be stored with the binding and
            // replayed as Route towards it: only a node's or a peer's (an
            // edge proxy of ours) is kept, under ours.
            let trusted = matches!(source, Source::Node(_)) || self.policy.is_peer(flow.source);
            if !trusted {
                let dropped = req.headers.remove_all("Path");
                if dropped > 0 {
                    tracing::info!(peer = %flow.source, dropped, "REGISTER: Path from outside the farm removed");
                }
            }
            loc.prepare_register(req, flow);
        }
        verdict
    }

    async fn on_final(
        &self,
        req: &SipMessage,
        flow: &Flow,
        target: &Target,
        resp: &mut SipMessage,
    ) -> Option<Vec<Target>> {
        self.pin_challenge(req, target, resp);
        if req.method() == Some("REGISTER") {
            if let Some(loc) = &self.location {
                loc.on_register_final(req, flow, target, resp).await;
            }
            return None;
        }
        if resp.status() != Some(302) {
            return None;
        }
        let value = resp.headers.get(REDIRECT_HEADER)?;
        match &target.node {
            Some(from) => self.redirect(from, value),
            None => {
                // Only farm nodes are trusted to move a call.
                tracing::debug!(peer = ?target.dest, "X-Locus-Node from a non-node ignored");
                None
            }
        }
    }
}

/// The `sip_uri` address of the node a request on a TCP connection from
/// `peer` comes from, for the transport to reuse that connection toward
/// it: of the nodes on `peer`'s IP, the one whose `sip_uri` port is the
/// top Via's sent-by port (a box writes its listener there), else the only
/// one; with several and no match, none. Every request is asked, the ones
/// the core answers itself (OPTIONS pings) included.
pub fn node_listener(
    snap: &FarmSnapshot,
    req: &SipMessage,
    peer: std::net::SocketAddr,
) -> Option<std::net::SocketAddr> {
    let ip = peer.ip().to_canonical();
    let on_ip = snap.nodes_on(ip);
    if on_ip.is_empty() {
        return None;
    }
    let sent_by = req.top_via().ok().and_then(|v| {
        let host = v.host.parse::<std::net::IpAddr>().ok()?;
        (host.to_canonical() == ip).then_some(v.port.unwrap_or(5060))
    });
    let addrs: Vec<std::net::SocketAddr> = on_ip
        .iter()
        .filter_map(|&i| snap.node(i))
        .filter_map(|n| {
            let uri = Uri::parse(&n.sip_uri).ok()?;
            let port = uri.port.unwrap_or(uri.scheme.default_port());
            Some(std::net::SocketAddr::new(ip, port))
        })
        .collect();
    addrs
        .iter()
        .find(|a| Some(a.port()) == sent_by)
        .or_else(|| addrs.first().filter(|_| addrs.len() == 1))
        .copied()
}
