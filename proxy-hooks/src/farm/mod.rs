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
//! A node's 401/407 pins the request's Call-ID to that node, and rules
//! 1-5 send a pinned Call-ID there first (`crate::routing::affinity`): the phone's
//! authenticated retry must meet the box that issued the nonce.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use locus_schema::NodeId;

use crate::policy::Policy;
use crate::proxy::{Flow, Location, NextHop, Pass, PreloadedRoute, Router, Target, Verdict};
use crate::routing::engine::Engine;
use crate::routing::request::Source;
use crate::routing::sync::FarmSync;
use crate::sip::{SipMessage, Uri};

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
        let source = self.policy.classify(&snap, flow);
        self.policy.admit(source, req, flow)
    }

    fn approve(
        &self,
        _req: &SipMessage,
        flow: &Flow,
        hop: &NextHop<'_>,
    ) -> Result<Pass, (u16, &'static str)> {
        let snap = self.sync.snapshot();
        let source = self.policy.classify(&snap, flow);
        self.policy
            .approve(&snap, source, flow, hop, self.preloaded)
    }

    async fn route(&self, req: &mut SipMessage, flow: &Flow) -> Verdict {
        let snap = self.sync.snapshot();
        let verdict = self.decide(&snap, req, flow).await;
        if req.method() == Some("REGISTER")
            && let (Verdict::Forward { .. }, Some(loc)) = (&verdict, &self.location)
        {
            // A phone's own Path would be stored with the binding and
            // replayed as Route towards it: only a peer's (an edge proxy
            // of ours) is kept, under ours.
            let trusted = matches!(self.policy.classify(&snap, flow), Source::Node(_))
                || self.policy.is_peer(flow.source);
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
        resp: &SipMessage,
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
