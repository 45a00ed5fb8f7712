//! OPTIONS health probes (issue 3): is each FreeSWITCH box's SIP stack
//! answering? [`Health`] sends an RFC 3261 OPTIONS to every target node each
//! `interval` through the shared [`SipTransport`](crate::sip::SipTransport),
//! matches responses by Via branch ([`Health::on_response`], called from the
//! proxy's receive loop) and flips a node down after `down_after`
//! consecutive failures, up after `up_after` consecutive successes.
//!
//! Policy, and why:
//! * Any final response counts as alive, 404 and 405 included: FreeSWITCH
//!   answers OPTIONS per profile and per ACL, and a 4xx still proves the
//!   SIP stack parses and answers. **503 counts as a failure**: FreeSWITCH
//!   sends it when paused (`fsctl pause`), shutting down or over
//!   `max-sessions`/`sessions-per-second`, i.e. it will refuse INVITEs too.
//! * No final response within `timeout`, or a send error (TCP refused, no
//!   listener of the family), is a failure. 1xx is consumed and ignored.
//! * A new node starts [`ProbeState::Unknown`], which is **not up**; its
//!   first success makes it up at once (no `up_after` wait), `down_after`
//!   failures make it down. After a proxy restart routing waits one probe
//!   round trip, never sends calls to a box nobody has heard from.
//! * Targets must be IP literals (no DNS on the probe path); transport from
//!   the URI's `transport` param, UDP by default; TLS/WS are refused.
//!
//! Reads ([`Health::is_up`]) are lock-free (`ArcSwap` of a map republished
//! on every flip); the probe book is a std mutex held for short sections,
//! never across `.await`. Fold it into routing with
//! [`FarmSnapshot::build_with`](crate::FarmSnapshot::build_with).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use locus_schema::NodeId;
use serde::Deserialize;

use crate::routing::snapshot::FarmSnapshot;
use crate::sip::{Transport, Uri};

mod book;
mod run;

pub use book::Health;

/// `[proxy.health]`: probe timings and thresholds (unknown keys refused).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Time between two probes of a node.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A probe without a final response after this long has failed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failures that take an up node down.
    pub down_after: u32,
    /// Consecutive successes that bring a down node back.
    pub up_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            down_after: 3,
            up_after: 2,
        }
    }
}

impl HealthConfig {
    /// Refuses zero durations and thresholds.
    pub fn validate(&self) -> Result<(), HealthError> {
        let bad = |what: &'static str| Err(HealthError::Config(what));
        if self.interval.is_zero() {
            return bad("interval must be > 0");
        }
        if self.timeout.is_zero() {
            return bad("timeout must be > 0");
        }
        if self.down_after == 0 || self.up_after == 0 {
            return bad("down_after and up_after must be >= 1");
        }
        Ok(())
    }
}

/// What can go wrong with a probe target or the configuration.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A configuration value out of range.
    #[error("health config: {0}")]
    Config(&'static str),
    /// The target host is not an IP address.
    #[error("node {node}: probe target {host} is not an IP address")]
    NotAnAddress {
        /// Node.
        node: NodeId,
        /// The host as given.
        host: String,
    },
    /// The URI asks for a transport the proxy does not speak.
    #[error("node {node}: unsupported transport {transport}")]
    Transport {
        /// Node.
        node: NodeId,
        /// The `transport` param (or `sips`).
        transport: String,
    },
    /// The node's SIP URI does not parse.
    #[error("node {node}: bad SIP URI {uri}")]
    Uri {
        /// Node.
        node: NodeId,
        /// The URI as published.
        uri: String,
    },
}

/// Probe verdict for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeState {
    /// Not answered yet (not up).
    Unknown,
    /// Answering.
    Up,
    /// `down_after` failures in a row (or a 503).
    Down,
}

/// Where and how one node is probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Node.
    pub id: NodeId,
    /// Request-URI of the probes (the node's SIP URI).
    pub uri: Uri,
    /// Address the probes go to (port 5060 when the URI has none).
    pub addr: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

impl Target {
    /// The probe target of node `id` at `uri`.
    pub fn new(id: NodeId, uri: Uri) -> Result<Target, HealthError> {
        let refuse = |t: &str| HealthError::Transport {
            node: id.clone(),
            transport: t.to_string(),
        };
        if uri.scheme == crate::sip::Scheme::Sips {
            return Err(refuse("sips"));
        }
        let transport = match uri.params.get("transport").flatten() {
            None => Transport::Udp,
            Some(t) if t.eq_ignore_ascii_case("udp") => Transport::Udp,
            Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            Some(t) => return Err(refuse(t)),
        };
        let ip: IpAddr = uri.host.parse().map_err(|_| HealthError::NotAnAddress {
            node: id.clone(),
            host: uri.host.clone(),
        })?;
        let addr = SocketAddr::new(ip, uri.port.unwrap_or(5060));
        Ok(Target {
            id,
            uri,
            addr,
            transport,
        })
    }
}

/// Every node of `snap` (agent and static) with a SIP URI that parses, for
/// [`Health::set_targets`]; the rest are logged at debug and left out (they
/// are never up).
pub fn targets_of(snap: &FarmSnapshot) -> Vec<(NodeId, Uri)> {
    snap.nodes()
        .iter()
        .filter(|n| !n.sip_uri.is_empty())
        .filter_map(|n| match Uri::parse(&n.sip_uri) {
            Ok(u) => Some((n.id.clone(), u)),
            Err(e) => {
                tracing::debug!(node.id = %n.id, error = %e, "health: node SIP URI unreadable");
                None
            }
        })
        .collect()
}

/// Probe counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct HealthStats {
    /// OPTIONS sent.
    pub sent: AtomicU64,
    /// Final responses other than 503.
    pub ok: AtomicU64,
    /// 503 responses.
    pub unavailable: AtomicU64,
    /// Probes that saw no final response in time.
    pub timeouts: AtomicU64,
    /// Probes that could not be sent.
    pub send_errors: AtomicU64,
    /// Responses to our probes that came after their timeout.
    pub late: AtomicU64,
    /// Flips to up.
    pub went_up: AtomicU64,
    /// Flips to down.
    pub went_down: AtomicU64,
}
