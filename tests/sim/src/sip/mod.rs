//! The box's SIP side: one UDP (and TCP) port, like a sofia profile's, that
//! answers the farm's proxy as a FreeSWITCH box would. OPTIONS (the
//! proxy's health probe), REGISTER with digest auth (running the ESL
//! register scripts), INVITEs routed by the vanilla dialplan (features
//! answered locally, calls to users bridged through the proxy as a second
//! dialog), CANCEL, ACK and BYE. Every SIP action drives the same scripts
//! as [`crate::SimHandle`], so the ESL side stays what the agent expects.
//!
//! Layout: `endpoint` (socket, dispatch, state), `tcp` (SIP over TCP on
//! the same port), `wire` (building
//! messages), `auth` (RFC 2617 digest), `registrar` (REGISTER), `invite`
//! (the answering side), `features` (dialplan features on an INVITE),
//! `bridge` (the box's own INVITE to the proxy and its responses),
//! `dialog` (dialogs, ACK, BYE, CANCEL), `timers` (200 retransmission and
//! delayed answers).

pub(crate) mod auth;
mod bridge;
mod dialog;
mod endpoint;
mod features;
mod invite;
mod outbound;
mod registrar;
mod tcp;
mod timers;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

pub(crate) use endpoint::Endpoint;

/// How the box answers OPTIONS (the proxy's health probe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// 200 OK.
    #[default]
    Ok,
    /// 503 Service Unavailable (a box shutting down or overloaded).
    Unavailable,
    /// No answer at all (a dead box).
    Silent,
}

/// How the box answers new INVITEs (scripted per box).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Answer {
    /// Route by the vanilla dialplan: features answer 200, users are
    /// bridged through the proxy.
    #[default]
    Normal,
    /// 486 Busy Here.
    Busy,
    /// 503 Service Unavailable.
    Unavailable,
    /// 100 Trying, then nothing (until the caller CANCELs).
    NoAnswer,
    /// 180 Ringing now, then after the delay as [`Answer::Normal`].
    Ring(Duration),
    /// 302 with `X-Locus-Node: <node id>` (the call lives elsewhere).
    Redirect(String),
}

/// One SIP request the box received (for test assertions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipSeen {
    /// Method (`INVITE`, `ACK`, ...).
    pub method: String,
    /// Request-URI user, if any.
    pub ruri_user: Option<String>,
    /// From user, if any.
    pub from_user: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// Source address of the packet.
    pub source: SocketAddr,
    /// Every header line as received (name, value), in order.
    pub headers: Vec<(String, String)>,
}

impl SipSeen {
    /// The first value of header `name` (case-insensitive, full names only).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A user's SIP registration at this box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipBinding {
    /// Contact URI as registered.
    pub contact: String,
    /// `Path` values (RFC 3327), in order: the route to reach the contact.
    pub path: Vec<String>,
    /// Where the REGISTER came from.
    pub source: SocketAddr,
    /// Lifetime granted, seconds.
    pub expires: u32,
}
