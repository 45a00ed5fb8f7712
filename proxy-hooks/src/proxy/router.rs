//! The seam between the proxy core (transactions, forwarding, timers) and
//! the farm logic (trust, routing rules 1-7, registrar): the core parses,
//! checks syntax, Max-Forwards and loops, pops its own Route, handles
//! retransmissions, CANCEL and ACK, then asks a [`Router`] what to do with
//! each new out-of-dialog request and tells it about final responses.
//!
//! The core ships a trivial router for its own tests; `FarmRouter` (engine +
//! farm snapshot + policy + registrar) is the production one.

use std::borrow::Cow;
use std::net::SocketAddr;

use async_trait::async_trait;
use locus_schema::NodeId;

use crate::routing::request::Rule;
use crate::sip::{ConnId, SipMessage, Transport, Uri};

/// Where a message came from (or goes back to): the peer, the transport,
/// the TCP connection, and which of our sockets it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The peer's address.
    pub source: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The TCP connection, if any.
    pub conn: Option<ConnId>,
    /// Our local address it arrived at.
    pub local: SocketAddr,
}

/// Where one branch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// Send to the host/port/transport of this URI (a node's `sip_uri`, a
    /// gateway, a contact). The core resolves it (IP literals; names via DNS
    /// A/AAAA, no SRV).
    Uri(Uri),
    /// Send over a known flow (a registered phone's NAT binding, RFC 5626
    /// style): to `source` on `transport`, reusing `conn` when still open.
    Flow(Flow),
}

/// One branch of a forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where the branch is sent.
    pub dest: Dest,
    /// New Request-URI for this branch (a registered contact); `None` keeps it.
    pub ruri: Option<Uri>,
    /// The farm node behind this target (per-node metrics, in-flight
    /// counts, trust of its 302 `X-Locus-Node`); `None` for gateways and
    /// phones.
    pub node: Option<NodeId>,
    /// Route header values to push before forwarding (a binding's Path),
    /// first = topmost.
    pub route: Vec<String>,
}

impl From<&crate::sip::Inbound> for Flow {
    fn from(i: &crate::sip::Inbound) -> Self {
        Flow {
            source: i.source,
            transport: i.transport,
            conn: i.conn,
            local: i.local,
        }
    }
}

impl Flow {
    /// The unsigned body of a flow token: `u~ADDR~0` or `t~ADDR~CONN`.
    /// What goes on the wire is [`super::keys::FlowKeys::token`], signed;
    /// only the proxy that wrote it can use the connection id.
    pub fn token(&self) -> String {
        let t = match self.transport {
            Transport::Udp => 'u',
            Transport::Tcp => 't',
        };
        let conn = self.conn.map_or(0, |c| c.0);
        format!("{t}~{}~{conn}", self.source)
    }

    /// Parses [`Flow::token`] (the unsigned body); `local` is the socket
    /// the request using it arrived at. `None` for anything malformed.
    pub fn from_token(token: &str, local: SocketAddr) -> Option<Flow> {
        let mut parts = token.splitn(3, '~');
        let transport = match parts.next()? {
            "u" => Transport::Udp,
            "t" => Transport::Tcp,
            _ => return None,
        };
        let source: SocketAddr = parts.next()?.parse().ok()?;
        let conn: u64 = parts.next()?.parse().ok()?;
        Some(Flow {
            source,
            transport,
            conn: (conn != 0).then_some(ConnId(conn)),
            local,
        })
    }
}

impl Target {
    /// A farm node at `uri`.
    pub fn node(id: NodeId, uri: Uri) -> Self {
        Target {
            dest: Dest::Uri(uri),
            ruri: None,
            node: Some(id),
            route: Vec::new(),
        }
    }
}

/// How the branches of a [`Verdict::Forward`] are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// One at a time, next on 408, any 5xx, timeout or transport error;
    /// the caller sees only the last failure.
    Serial,
    /// All at once (a user's contacts); first 2xx wins, the rest are
    /// CANCELled; best final response otherwise (RFC 3261 16.7).
    Parallel,
}

/// What the router decided for one request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Answer it here (403 not a relay, 404/480 no such user, 503 nowhere).
    Reply {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: Cow<'static, str>,
    },
    /// Answer it with this response (built from the request: a REGISTER
    /// refresh the registrar answers itself in mid mode).
    Respond(Box<SipMessage>),
    /// Forward it.
    Forward {
        /// Branches, in order.
        targets: Vec<Target>,
        /// Serial failover or parallel fork.
        fork: Fork,
        /// The rule that chose them (metrics label).
        label: Label,
    },
}

/// Metrics label of a decision: an engine rule or one of the proxy's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// Rules 1-5 of the engine.
    Engine(Rule),
    /// Rule 6: a carrier's DID.
    Did,
    /// Rule 6: to the gateways (a number outside the farm).
    Gateway,
    /// Rule 7: a registered user's contacts.
    Location,
    /// A 302 with `X-Locus-Node` from a farm node.
    Redirect,
    /// Anything else (tests, static routes).
    Other,
}

impl Label {
    /// A short snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Engine(r) => r.as_str(),
            Label::Did => "did",
            Label::Gateway => "gateway",
            Label::Location => "location",
            Label::Redirect => "redirect",
            Label::Other => "other",
        }
    }
}

/// The registrar half the farm router delegates to (REGISTER with `Path`,
/// `reg:` mirroring, rule 7 lookups). Implemented by `registrar::Registrar`.
#[async_trait]
pub trait Location: Send + Sync + 'static {
    /// Before a REGISTER from `flow` is forwarded: add our `Path`
    /// (RFC 3327) carrying the flow token, so a box reaches the phone
    /// back through this proxy and this flow.
    fn prepare_register(&self, req: &mut SipMessage, flow: &Flow);

    /// A phone's REGISTER the proxy answers itself (a refresh the box
    /// need not see, mid-registrar mode); `None` forwards it.
    async fn absorb_register(&self, _req: &SipMessage, _flow: &Flow) -> Option<SipMessage> {
        None
    }

    /// A final response to a REGISTER we forwarded to `target`: on 2xx,
    /// mirror the accepted bindings (and removals) into `reg:`, and adjust
    /// the response for the phone (its expiry in mid mode).
    async fn on_register_final(
        &self,
        req: &SipMessage,
        flow: &Flow,
        target: &Target,
        resp: &mut SipMessage,
    );

    /// The live bindings of `user@domain` as branches (rule 7): R-URI =
    /// the contact, sent over the flow it registered from (or through the
    /// proxy that owns that flow). Empty when unknown or on a store error
    /// (logged).
    async fn lookup(&self, user: &str, domain: &str) -> Vec<Target>;
}

/// What route processing found on top of a request (before ours was
/// popped), for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMark {
    /// No Route header.
    None,
    /// The top Route is not ours.
    Foreign,
    /// Ours by address, unsigned (a phone's outbound-proxy Route).
    Ours,
    /// Ours with a signature that holds: a Record-Route we wrote in this
    /// dialog (`lsig=`) or a flow token we issued.
    Signed,
}

/// A next hop the core is about to use for a request routed by its
/// headers (in-dialog, preloaded Route, a flow token, an ACK for a 2xx).
#[derive(Debug, Clone, Copy)]
pub struct NextHop<'a> {
    /// Where it would go.
    pub dest: &'a Dest,
    /// The top Route on arrival.
    pub route: RouteMark,
    /// A To tag (or an ACK): within a dialog.
    pub in_dialog: bool,
    /// Out of dialog with Routes left after ours were popped.
    pub preloaded: bool,
}

/// The gate's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Send it there.
    Go,
    /// Drop the request's Route headers and route it as a new request
    /// (`preloaded_route = "strip"`).
    Strip,
}

/// The farm logic the core asks. Calls are made from the core's request
/// task; keep them fast (`route` may read Redis for a location lookup,
/// with a short timeout).
#[async_trait]
pub trait Router: Send + Sync + 'static {
    /// First look at every request (after syntax, Max-Forwards and loop
    /// checks, before anything else): trust. Strip `X-Locus-*` from
    /// requests not sent by a farm node; refuse (e.g. 403) what we do not
    /// relay. `Err` is answered (a request) or dropped (an ACK).
    fn admit(&self, req: &mut SipMessage, flow: &Flow) -> Result<(), (u16, &'static str)>;

    /// The gate: every next hop the core takes from a request's own
    /// headers (Route set, R-URI of an in-dialog request, flow token, ACK)
    /// is approved here before anything is sent. `Err` is answered (or an
    /// ACK dropped) and nothing goes out.
    fn approve(
        &self,
        req: &SipMessage,
        flow: &Flow,
        hop: &NextHop<'_>,
    ) -> Result<Pass, (u16, &'static str)>;

    /// Whether the dialog `req` (from `flow`) creates must reach its
    /// sender along the flow it came on rather than at its Contact: a
    /// phone, maybe behind NAT (its Contact is then a private address).
    /// The core puts that flow, signed, in the Record-Route the sender's
    /// side sees. `false` for farm nodes, trunks and peers (reached at
    /// their Contact) and by default.
    fn caller_flow(&self, _req: &SipMessage, _flow: &Flow) -> bool {
        false
    }

    /// A new out-of-dialog request (no To tag, no Route left after ours
    /// was popped), not CANCEL or ACK. May edit the request (Path on a
    /// REGISTER, headers for the box).
    async fn route(&self, req: &mut SipMessage, flow: &Flow) -> Verdict;

    /// A final response arrived for a branch of a request this router
    /// routed (`req` as forwarded to `target`, `flow` where the request
    /// came from). Return targets to retry the request on instead of
    /// relaying this response (a 302 with `X-Locus-Node` from a farm node);
    /// `None` lets the core proceed (relay, or fail over on 408/5xx).
    async fn on_final(
        &self,
        req: &SipMessage,
        flow: &Flow,
        target: &Target,
        resp: &mut SipMessage,
    ) -> Option<Vec<Target>>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn flow_token_round_trips_and_refuses_garbage() {
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        for (src, t, c) in [
            ("192.0.2.7:40000", Transport::Udp, None),
            ("[2001:db8::1]:5061", Transport::Tcp, Some(ConnId(42))),
        ] {
            let f = Flow {
                source: src.parse().unwrap(),
                transport: t,
                conn: c,
                local,
            };
            assert_eq!(Flow::from_token(&f.token(), local), Some(f));
        }
        for bad in [
            "",
            "x~1.2.3.4:5~0",
            "u~1.2.3.4~0",
            "u~1.2.3.4:5",
            "u~1.2.3.4:5~z",
        ] {
            assert_eq!(Flow::from_token(bad, local), None, "{bad}");
        }
    }
}
