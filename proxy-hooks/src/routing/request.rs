//! What the routing engine is asked ([`RouteRequest`], borrowed from the
//! parsed SIP message so a decision allocates little) and what it answers
//! ([`Decision`]: an ordered failover list, the rule that chose it, why).

use std::sync::Arc;

use locus_schema::NodeId;

use crate::routing::snapshot::Node;

/// The SIP methods the engine tells apart; the rest route alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// INVITE: rules 1, 3, 4, 5.
    Invite,
    /// REGISTER: rule 2.
    Register,
    /// Any other out-of-dialog request (SUBSCRIBE, MESSAGE, OPTIONS, ...).
    Other,
}

/// Where a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// A phone (or anything not listed below).
    Phone,
    /// A farm node.
    Node(&'a NodeId),
    /// A configured carrier trunk, by name.
    Trunk(&'a str),
}

/// The routing-relevant parts of one SIP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRequest<'a> {
    /// Method.
    pub method: Method,
    /// Request-URI user (the dialled number or feature code).
    pub ruri_user: &'a str,
    /// Request-URI host (the tenant domain).
    pub ruri_domain: &'a str,
    /// From user (the caller; `*8` looks up its pickup groups).
    pub from_user: &'a str,
    /// From host.
    pub from_domain: &'a str,
    /// To user (the AOR of a REGISTER).
    pub to_user: &'a str,
    /// To host.
    pub to_domain: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// Call-ID named by a `Replaces` header (RFC 3891), if any.
    pub replaces_call_id: Option<&'a str>,
    /// True for in-dialog requests (To tag).
    pub in_dialog: bool,
    /// Where it came from.
    pub source: Source<'a>,
}

impl<'a> RouteRequest<'a> {
    /// An out-of-dialog INVITE from `from_user@domain` to `ruri_user@domain`
    /// (To = R-URI), from a phone.
    pub fn invite(
        ruri_user: &'a str,
        domain: &'a str,
        from_user: &'a str,
        call_id: &'a str,
    ) -> Self {
        Self {
            method: Method::Invite,
            ruri_user,
            ruri_domain: domain,
            from_user,
            from_domain: domain,
            to_user: ruri_user,
            to_domain: domain,
            call_id,
            replaces_call_id: None,
            in_dialog: false,
            source: Source::Phone,
        }
    }

    /// A REGISTER of `user@domain` (From = To = the AOR), from a phone.
    pub fn register(user: &'a str, domain: &'a str, call_id: &'a str) -> Self {
        Self {
            method: Method::Register,
            ruri_user: "",
            to_user: user,
            ..Self::invite(user, domain, user, call_id)
        }
    }
}

/// The rule that decided (DESIGN.md "Routing"; a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Rule 1: in-dialog, follow the Route set (no target chosen here).
    InDialog,
    /// Rule 1: `Replaces` -> the node holding the replaced Call-ID.
    Replaces,
    /// Rule 2: REGISTER -> tenant pin, else hash of the AOR.
    Register,
    /// Other out-of-dialog requests -> the sender's AOR node, as REGISTER.
    Aor,
    /// Rule 3: `*8`.
    GroupPickup,
    /// Rule 3: `**EXT`, `*4EXT`.
    DirectedPickup,
    /// Rule 3: valet park and retrieve.
    Valet,
    /// Rule 3: conference rooms.
    Conference,
    /// Rule 3: call-center and FIFO queues.
    Queue,
    /// Rule 4: the domain's pinned node (or a spare).
    Tenant,
    /// Rule 5: spread by load.
    Standard,
}

impl Rule {
    /// A short snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::InDialog => "in_dialog",
            Rule::Replaces => "replaces",
            Rule::Register => "register",
            Rule::Aor => "aor",
            Rule::GroupPickup => "group_pickup",
            Rule::DirectedPickup => "directed_pickup",
            Rule::Valet => "valet",
            Rule::Conference => "conference",
            Rule::Queue => "queue",
            Rule::Tenant => "tenant",
            Rule::Standard => "standard",
        }
    }
}

/// Where to send a request: `targets[0]`, then the others in order on 408,
/// 5xx or timeout. Empty targets: nowhere (503), or, for
/// [`Rule::InDialog`], follow the Route set.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Ordered failover list, no node twice.
    pub targets: Vec<Arc<Node>>,
    /// The rule that chose them.
    pub rule: Rule,
    /// Why, in a few words (for logs).
    pub reason: &'static str,
    /// A rule whose pattern matched but that found nothing and fell
    /// through (e.g. `*8` with nothing ringing).
    pub missed: Option<Rule>,
}

impl Decision {
    pub(crate) fn new(targets: Vec<Arc<Node>>, rule: Rule, reason: &'static str) -> Self {
        Self {
            targets,
            rule,
            reason,
            missed: None,
        }
    }

    /// The first target.
    pub fn primary(&self) -> Option<&Node> {
        self.targets.first().map(|n| n.as_ref())
    }

    /// The targets' ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.targets.iter().map(|n| n.id.as_str()).collect()
    }
}
