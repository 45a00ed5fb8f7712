//! What [`FarmRouter`] does with one out-of-dialog request, by source
//! (see the module doc of `farm`): REGISTER, carrier DIDs, farm nodes
//! (rule 7, feature codes, gateways) and phones.

use std::sync::Arc;

use super::request::route_request;
use super::{FarmRouter, reply};
use crate::proxy::{Dest, Flow, Fork, Label, Target, Verdict};
use crate::routing::affinity::Pinned;
use crate::routing::request::{Method, RouteRequest, Rule, Source};
use crate::routing::snapshot::{FarmSnapshot, Node};
use crate::sip::{SipMessage, Uri};

/// A node's `sip_uri` as a target (logged and skipped when unreadable).
fn node_target(n: &Arc<Node>) -> Option<Target> {
    match Uri::parse(&n.sip_uri) {
        Ok(uri) => Some(Target::node(n.id.clone(), uri)),
        Err(e) => {
            tracing::warn!(node.id = %n.id, error = %e, "node SIP URI unreadable; skipped");
            None
        }
    }
}

impl FarmRouter {
    pub(super) async fn decide(
        &self,
        snap: &FarmSnapshot,
        req: &SipMessage,
        flow: &Flow,
        source: Source<'_>,
    ) -> Verdict {
        let (Some(rr), Some(ruri)) = (route_request(req, source), req.request_uri()) else {
            return reply(400, "Bad Request");
        };
        if req.method() == Some("OPTIONS")
            && ruri.user.is_none()
            && self.policy.is_own(&ruri.host, ruri.port, flow)
        {
            return reply(200, "OK");
        }
        if rr.method == Method::Register {
            return self.by_engine(snap, &rr);
        }
        match source {
            Source::Trunk(trunk) => self.carrier_call(snap, &rr, trunk),
            Source::Node(_) => self.node_request(snap, &rr, ruri, flow).await,
            Source::Phone => self.by_engine(snap, &rr),
        }
    }

    /// Rules 1-5, a Call-ID pinned by a challenge first.
    fn by_engine(&self, snap: &FarmSnapshot, rr: &RouteRequest<'_>) -> Verdict {
        let (inflight, pins) = (self.sync.inflight(), self.sync.affinity());
        let p = self.engine.route_pinned(snap, rr, inflight, pins);
        let label = Label::Engine(p.decision.rule);
        self.forward(p, rr, label)
    }

    /// The decision's nodes, one at a time; a standard INVITE counts one
    /// call in flight on the first (for `least_calls`, as the HTTP hook
    /// does), unless it is the retry of a challenged one, counted already.
    fn forward(&self, p: Pinned, rr: &RouteRequest<'_>, label: Label) -> Verdict {
        let d = p.decision;
        let targets: Vec<Target> = d.targets.iter().filter_map(node_target).collect();
        tracing::debug!(
            call.id = rr.call_id,
            route.rule = label.as_str(),
            route.reason = d.reason,
            route.pinned = p.hit,
            node.id = targets
                .first()
                .and_then(|t| t.node.as_ref())
                .map(|n| n.as_str()),
            "route decision"
        );
        let Some(first) = targets.first() else {
            return reply(503, "No Node Available");
        };
        if d.rule == Rule::Standard
            && rr.method == Method::Invite
            && !p.hit
            && let Some(id) = &first.node
        {
            self.sync.inflight().add(id);
        }
        Verdict::Forward {
            targets,
            fork: Fork::Serial,
            label,
        }
    }

    /// Rule 6, inbound: DID -> tenant domain -> rules 4-5.
    fn carrier_call(&self, snap: &FarmSnapshot, rr: &RouteRequest<'_>, trunk: &str) -> Verdict {
        let Some(domain) = self.policy.did(rr.ruri_user) else {
            tracing::info!(
                trunk,
                did = rr.ruri_user,
                call.id = rr.call_id,
                "unknown DID"
            );
            return reply(404, "Not Found");
        };
        let placed = RouteRequest {
            ruri_domain: domain,
            to_domain: domain,
            ..*rr
        };
        let (inflight, pins) = (self.sync.inflight(), self.sync.affinity());
        let p = self.engine.place_pinned(snap, &placed, inflight, pins);
        self.forward(p, &placed, Label::Did)
    }

    /// A farm node's request: rule 7, feature codes, rule 6 outbound, 480.
    async fn node_request(
        &self,
        snap: &FarmSnapshot,
        rr: &RouteRequest<'_>,
        ruri: &Uri,
        flow: &Flow,
    ) -> Verdict {
        if !self.policy.serves(ruri, flow) {
            // Straight at a node (a box's own contact): hand it over rather
            // than send a farm address to a carrier.
            if let Ok(ip) = ruri.host.parse() {
                let port = ruri.port.unwrap_or(ruri.scheme.default_port());
                if let Some(n) = snap.node_at(std::net::SocketAddr::new(ip, port)) {
                    return match node_target(n) {
                        Some(t) => Verdict::Forward {
                            targets: vec![t],
                            fork: Fork::Serial,
                            label: Label::Other,
                        },
                        None => reply(503, "No Node Available"),
                    };
                }
            }
            return self.to_gateways(ruri, rr);
        }
        let user = rr.ruri_user;
        let domain = self.user_domain(rr, flow);
        if !user.is_empty() {
            if let Some(loc) = &self.location {
                let targets = loc.lookup(user, domain).await;
                if !targets.is_empty() {
                    tracing::debug!(
                        call.id = rr.call_id,
                        user,
                        domain,
                        contacts = targets.len(),
                        "to a registered user"
                    );
                    return Verdict::Forward {
                        targets,
                        fork: Fork::Parallel,
                        label: Label::Location,
                    };
                }
            }
            if rr.method == Method::Invite && self.engine.is_feature_code(user) {
                let r = RouteRequest {
                    ruri_domain: domain,
                    ..*rr
                };
                return self.by_engine(snap, &r);
            }
            if self.policy.is_outside(user) {
                return self.to_gateways(ruri, rr);
            }
        }
        tracing::debug!(call.id = rr.call_id, user, domain, "not registered");
        reply(480, "Temporarily Unavailable")
    }

    /// The domain a node's request is for: the R-URI host, unless that is
    /// the proxy's own address (a dial string pointing at the proxy), then
    /// the To host, then the From host.
    fn user_domain<'a>(&self, rr: &RouteRequest<'a>, flow: &Flow) -> &'a str {
        let own = |h: &str| h.is_empty() || self.policy.is_own(h, None, flow);
        [rr.ruri_domain, rr.to_domain, rr.from_domain]
            .into_iter()
            .find(|h| !own(h))
            .unwrap_or(rr.ruri_domain)
    }

    /// Rule 6, outbound: every gateway in order, R-URI host rewritten to
    /// the gateway's (the carrier expects its own host), user kept.
    fn to_gateways(&self, ruri: &Uri, rr: &RouteRequest<'_>) -> Verdict {
        let gws = self.policy.gateways();
        if gws.is_empty() {
            tracing::info!(
                call.id = rr.call_id,
                user = rr.ruri_user,
                "no gateway configured"
            );
            return reply(503, "No Gateway Available");
        }
        let targets = gws
            .iter()
            .map(|gw| Target {
                dest: Dest::Uri(gw.clone()),
                ruri: Some(Uri {
                    user: ruri.user.clone(),
                    headers: None,
                    ..gw.clone()
                }),
                node: None,
                route: Vec::new(),
            })
            .collect();
        tracing::debug!(call.id = rr.call_id, user = rr.ruri_user, "to the gateways");
        Verdict::Forward {
            targets,
            fork: Fork::Serial,
            label: Label::Gateway,
        }
    }
}
