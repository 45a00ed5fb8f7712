//! [`Engine`]: the routing decision, a pure function of the configuration,
//! a [`FarmSnapshot`], the request and the proxy's in-flight counts (the
//! round-robin counter is its only state). The SIP proxy and the HTTP hook
//! for Kamailio call the same [`Engine::route`].
//!
//! Rules, first match wins (DESIGN.md "Routing"):
//! 1. in-dialog: follow the Route set; `Replaces` -> the replaced call's node;
//! 2. REGISTER -> tenant pin, else rendezvous hash of the AOR (other
//!    out-of-dialog methods alike, by the sender's AOR: FreeSWITCH keeps
//!    presence subscriptions where the phone registered);
//! 3. feature codes -> where the thing lives (`locality.rs`);
//! 4. tenant pin -> its node, a live spare when it is down;
//! 5. standard -> by load (`standard.rs`).
//!
//! Rules 6 (carrier DIDs, gateways) and 7 (delivery to registered users)
//! live in the SIP proxy's `farm::FarmRouter`, which calls [`Engine::place`]
//! for DIDs. Tenant pins come from the config, then from the store
//! (`tenant:{domain}`, carried by the snapshot).
//!
//! Locality-bound targets (rules 1, 3, 4) may be draining; new placements
//! (rules 2, 5, and rule 3 when nothing exists yet) never are.
//!
//! The proxy and the hook ask [`Engine::route_pinned`]: a Call-ID a box
//! challenged (401/407) goes back to that box first, whatever the rules
//! say, without a round-robin turn (`affinity.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use locus_schema::NodeId;

use crate::routing::affinity::{Affinity, Pinned, Turn};
use crate::routing::config::{Algorithm, ConfigError, RoutingConfig};
use crate::routing::features::Features;
use crate::routing::inflight::InFlight;
use crate::routing::rendezvous;
use crate::routing::request::{Decision, Method, RouteRequest, Rule};
use crate::routing::snapshot::{FarmSnapshot, Node, NodeIx};

/// The routing engine for one configuration.
#[derive(Debug)]
pub struct Engine {
    pub(crate) features: Features,
    pub(crate) algorithm: Algorithm,
    /// Lower-cased domain -> pinned node.
    pins: HashMap<String, NodeId>,
    hash_all: bool,
    spares: Vec<NodeId>,
    pub(crate) round_robin: AtomicUsize,
}

impl Engine {
    /// Compiles `cfg` (feature-code patterns) into an engine.
    pub fn new(cfg: &RoutingConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            features: Features::compile(&cfg.features)?,
            algorithm: cfg.algorithm,
            pins: cfg
                .tenants
                .pins
                .iter()
                .map(|(d, n)| (d.to_ascii_lowercase(), n.clone()))
                .collect(),
            hash_all: cfg.tenants.hash_all,
            spares: cfg.spares.clone(),
            round_robin: AtomicUsize::new(0),
        })
    }

    /// Decides where `req` goes.
    pub fn route(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
    ) -> Decision {
        self.decide(snap, req, inflight, Turn::Take)
    }

    /// [`Engine::route`] for a proxy that remembers where Call-IDs went
    /// (the retry of a challenged request): a Call-ID pinned in `affinity`
    /// to a node still up goes there first (see `affinity.rs`).
    pub fn route_pinned(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        affinity: &Affinity,
    ) -> Pinned {
        affinity.route(snap, req, |turn| self.decide(snap, req, inflight, turn))
    }

    fn decide(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        turn: Turn,
    ) -> Decision {
        if req.in_dialog {
            return Decision::new(Vec::new(), Rule::InDialog, "follow the Route set");
        }
        let mut missed = None;
        if let Some(call_id) = req.replaces_call_id {
            let found = up(snap, snap.sipcall(call_id).iter().copied());
            if !found.is_empty() {
                return Decision::new(found, Rule::Replaces, "replaced call's node");
            }
            missed = Some(Rule::Replaces);
        }
        let mut d = match req.method {
            Method::Register => self.by_aor(snap, req.to_user, req.to_domain, Rule::Register),
            Method::Other => self.by_aor(snap, req.from_user, req.from_domain, Rule::Aor),
            Method::Invite => self.invite(snap, req, inflight, turn, &mut missed),
        };
        d.missed = d.missed.or(missed);
        d
    }

    fn invite(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        turn: Turn,
        missed: &mut Option<Rule>,
    ) -> Decision {
        if let Some(feature) = self.features.find(req.ruri_user) {
            match self.locality(snap, req, &feature) {
                Ok(d) => return d,
                Err(rule) => *missed = Some(rule),
            }
        }
        if let Some((targets, reason)) = self.tenant(snap, req.ruri_domain) {
            return Decision::new(targets, Rule::Tenant, reason);
        }
        self.standard(snap, req, inflight, turn)
    }

    /// Rules 4 and 5 only, for an INVITE already known to be a call to
    /// `req.ruri_domain` (a carrier's DID, rule 6): feature codes and
    /// `Replaces` never apply to it.
    pub fn place(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
    ) -> Decision {
        self.place_turn(snap, req, inflight, Turn::Take)
    }

    /// [`Engine::place`] with a pinned Call-ID first, as
    /// [`Engine::route_pinned`].
    pub fn place_pinned(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        affinity: &Affinity,
    ) -> Pinned {
        affinity.route(snap, req, |turn| self.place_turn(snap, req, inflight, turn))
    }

    fn place_turn(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        turn: Turn,
    ) -> Decision {
        if let Some((targets, reason)) = self.tenant(snap, req.ruri_domain) {
            return Decision::new(targets, Rule::Tenant, reason);
        }
        self.standard(snap, req, inflight, turn)
    }

    /// Whether `user` (an R-URI user) is one of the configured feature codes.
    pub fn is_feature_code(&self, user: &str) -> bool {
        self.features.find(user).is_some()
    }

    /// Rule 2 (and other methods): tenant pin, else rendezvous of the AOR
    /// over the nodes taking new work.
    fn by_aor(&self, snap: &FarmSnapshot, user: &str, domain: &str, rule: Rule) -> Decision {
        if let Some((targets, reason)) = self.tenant(snap, domain) {
            return Decision::new(targets, rule, reason);
        }
        let mut aor = format!("{user}@{domain}");
        aor.make_ascii_lowercase();
        let targets = ranked(snap, &aor, &fresh(snap));
        let reason = if targets.is_empty() {
            "no routable node"
        } else {
            "AOR hash"
        };
        Decision::new(targets, rule, reason)
    }

    /// Rule 4: the domain's pinned node if up (even draining: its calls are
    /// bound to it), then live spares: configured ones in order, then
    /// role-spare nodes by rendezvous of the domain (deterministic, and a
    /// dead node's tenants spread over the spares). `None` when the domain
    /// is not pinned or nothing of that is up.
    pub(crate) fn tenant(
        &self,
        snap: &FarmSnapshot,
        domain: &str,
    ) -> Option<(Vec<Arc<Node>>, &'static str)> {
        let lower = domain.to_ascii_lowercase();
        // Config pins win over the store's `tenant:` pins: the file is the
        // operator's last word on this proxy.
        let pinned = match self.pins.get(&lower).or_else(|| snap.tenant(&lower)) {
            Some(id) => snap.find(id),
            None if self.hash_all => {
                // Over every known non-spare node, live or not, so the pin
                // holds while its node is down and a spare stands in.
                let all: Vec<NodeIx> = (0..snap.nodes().len())
                    .filter(|&i| !snap.nodes()[i].spare)
                    .collect();
                ranked_ix(snap, &lower, &all).first().copied()
            }
            None => return None,
        };
        let mut targets = Vec::new();
        let pinned_up = pinned.and_then(|i| snap.node(i)).filter(|n| n.up);
        if let Some(n) = pinned_up {
            targets.push(n.clone());
        }
        for id in &self.spares {
            if let Some(n) = snap.find(id).and_then(|i| snap.node(i)) {
                push_spare(&mut targets, n);
            }
        }
        let spares: Vec<NodeIx> = (0..snap.nodes().len())
            .filter(|&i| snap.nodes()[i].spare)
            .collect();
        for i in ranked_ix(snap, &lower, &spares) {
            push_spare(&mut targets, &snap.nodes()[i]);
        }
        match (targets.is_empty(), pinned_up.is_some()) {
            (true, _) => None,
            (false, true) => Some((targets, "tenant node")),
            (false, false) => Some((targets, "tenant node down: spare")),
        }
    }
}

fn push_spare(targets: &mut Vec<Arc<Node>>, n: &Arc<Node>) {
    if n.up && !n.draining && !targets.iter().any(|t| t.id == n.id) {
        targets.push(n.clone());
    }
}

/// The nodes at `ixs` that are up (draining included), each once.
pub(crate) fn up(snap: &FarmSnapshot, ixs: impl Iterator<Item = NodeIx>) -> Vec<Arc<Node>> {
    let mut out: Vec<Arc<Node>> = Vec::new();
    for n in ixs.filter_map(|i| snap.node(i)) {
        if n.up && !out.iter().any(|o| o.id == n.id) {
            out.push(n.clone());
        }
    }
    out
}

/// Nodes that take new work; when none do, live non-draining spares (a
/// farm down to its spares still answers).
pub(crate) fn fresh(snap: &FarmSnapshot) -> Vec<NodeIx> {
    let nodes = snap.nodes();
    let active: Vec<NodeIx> = (0..nodes.len()).filter(|&i| nodes[i].takes_new()).collect();
    if !active.is_empty() {
        return active;
    }
    (0..nodes.len())
        .filter(|&i| nodes[i].up && !nodes[i].draining)
        .collect()
}

/// `ixs` by rendezvous preference for `key`.
pub(crate) fn ranked_ix(snap: &FarmSnapshot, key: &str, ixs: &[NodeIx]) -> Vec<NodeIx> {
    let k = rendezvous::hash(key);
    let nodes = snap.nodes();
    let mut v: Vec<(u64, NodeIx)> = ixs
        .iter()
        .map(|&i| (rendezvous::score(k, nodes[i].hash), i))
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|(_, i)| i).collect()
}

/// Like [`ranked_ix`], as targets.
pub(crate) fn ranked(snap: &FarmSnapshot, key: &str, ixs: &[NodeIx]) -> Vec<Arc<Node>> {
    ranked_ix(snap, key, ixs)
        .into_iter()
        .map(|i| snap.nodes()[i].clone())
        .collect()
}
