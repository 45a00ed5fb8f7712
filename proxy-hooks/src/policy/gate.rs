//! The gate (issue 7, "one gate for every destination"): the one place
//! that approves a next hop the core took from a request's own headers,
//! before anything is sent. New out-of-dialog requests are routed by the
//! router itself (its targets are its own choice); everything else comes
//! here: in-dialog requests, ACKs for 2xx, preloaded Routes, flow tokens.
//!
//! * In a dialog, a next hop that is one of our domain names: 481 (nobody
//!   here knows that dialog; no DNS lookup of our own domain). A domain
//!   that is an IP literal is judged as an address, like any host.
//! * A farm node, a trunk or a configured peer: followed (their dialogs
//!   are routed by rules 6 and 7, their Routes are theirs), except to a
//!   private, carrier-grade-NAT, link-local or unique-local address
//!   outside the farm ([`super::is_private`]): 480, never dialled. That is
//!   a phone's own address behind its NAT (the phone is reached through
//!   its flow, which our Path and Record-Route carry), and the same
//!   address may be another host on the proxy's own network.
//! * Anyone else (a phone, an unknown host):
//!   * in a dialog, only along a Record-Route this proxy wrote for that
//!     dialog (`lsig=` on top, [`crate::proxy::keys`]), else 403;
//!   * out of a dialog, a Route beyond ours is refused (403) or stripped
//!     (`[proxy.security] preloaded_route`);
//!   * and the next hop must be inside the farm: a node (by IP, any
//!     port, or host name), a flow of ours, a gateway, a trunk's source or
//!     a peer. Anything else is 403, never sent.

use std::net::IpAddr;

use super::Policy;
use crate::proxy::{Dest, Flow, NextHop, Pass, PreloadedRoute, RouteMark};
use crate::routing::request::Source;
use crate::routing::snapshot::FarmSnapshot;
use crate::sip::{Uri, UriParts};

/// 403 for an in-dialog request along a route this proxy did not record.
pub const NOT_OUR_DIALOG: (u16, &str) = (403, "Not Our Dialog");
/// 403 for a phone's out-of-dialog request with a Route beyond ours.
pub const PRELOADED_ROUTE: (u16, &str) = (403, "Preloaded Route Refused");
/// 481 for an in-dialog request addressed to one of our domains: a
/// dialog's requests go to a Contact, never to a domain.
pub const UNKNOWN_DIALOG: (u16, &str) = (481, "Call/Transaction Does Not Exist");
/// 480 for a private address outside the farm (a Contact behind NAT).
pub const PRIVATE_ADDRESS: (u16, &str) = (480, "Private Address Not Dialled");
/// 403 for a next hop outside the farm.
pub const OUTSIDE_FARM: (u16, &str) = (403, "Destination Outside Farm");

/// Same address, IPv4-mapped IPv6 folded.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Host of a URI as an address, when it is a literal.
fn ip_of(uri: &Uri) -> Option<IpAddr> {
    uri.host.parse::<IpAddr>().ok()
}

impl Policy {
    /// Whether `uri` names a place inside the farm: a node (its `sip_uri`
    /// host, any port, or `node_networks`), a gateway's host, a trunk's
    /// source address, a peer.
    pub fn inside_farm(&self, snap: &FarmSnapshot, uri: &Uri) -> bool {
        let ip = ip_of(uri);
        let same_host = |other: &Uri| match (ip, ip_of(other)) {
            (Some(a), Some(b)) => same_ip(a, b),
            _ => other.host.eq_ignore_ascii_case(&uri.host),
        };
        // By IP through the snapshot's index; a host name against the
        // nodes' `sip_uri` hosts.
        let node = match ip {
            Some(ip) => !snap.nodes_on(ip).is_empty(),
            None => snap.nodes().iter().any(|n| {
                UriParts::split(&n.sip_uri)
                    .and_then(|p| p.host())
                    .is_some_and(|h| h.eq_ignore_ascii_case(&uri.host))
            }),
        };
        let gateway = self.gateways.iter().any(same_host);
        let network = ip.is_some_and(|ip| self.node_networks.iter().any(|c| c.contains(ip)));
        let trunk = ip.is_some_and(|ip| {
            self.trunks
                .iter()
                .any(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
        });
        let peer = ip.is_some_and(|ip| {
            let port = uri.port.unwrap_or(uri.scheme.default_port());
            self.is_peer(std::net::SocketAddr::new(ip, port))
        });
        node || network || gateway || trunk || peer
    }

    /// The gate: whether a request from `source` (`flow`) may go to `hop`.
    pub fn approve(
        &self,
        snap: &FarmSnapshot,
        source: Source<'_>,
        flow: &Flow,
        hop: &NextHop<'_>,
        preloaded: PreloadedRoute,
    ) -> Result<Pass, (u16, &'static str)> {
        // A domain that is an address literal (vanilla FreeSWITCH's domain is
        // its IP) names hosts too: those hops are judged by address below.
        if hop.in_dialog
            && let Dest::Uri(u) = hop.dest
            && ip_of(u).is_none()
            && self.is_domain(&u.host)
        {
            return Err(UNKNOWN_DIALOG);
        }
        if matches!(source, Source::Node(_) | Source::Trunk(_)) || self.is_peer(flow.source) {
            if let Dest::Uri(u) = hop.dest
                && ip_of(u).is_some_and(super::is_private)
                && !self.inside_farm(snap, u)
            {
                tracing::info!(peer = %flow.source, dest = %u, "private address outside the farm not dialled (a phone behind NAT is reached by its flow)");
                return Err(PRIVATE_ADDRESS);
            }
            return Ok(Pass::Go);
        }
        if hop.in_dialog && hop.route != RouteMark::Signed {
            tracing::info!(peer = %flow.source, route = ?hop.route, "in-dialog request not along our Record-Route");
            return Err(NOT_OUR_DIALOG);
        }
        if !hop.in_dialog && hop.preloaded {
            match preloaded {
                PreloadedRoute::Refuse => {
                    tracing::info!(peer = %flow.source, "preloaded Route refused");
                    return Err(PRELOADED_ROUTE);
                }
                PreloadedRoute::Strip => {
                    tracing::debug!(peer = %flow.source, "preloaded Route stripped");
                    return Ok(Pass::Strip);
                }
            }
        }
        let inside = match hop.dest {
            Dest::Flow(_) => true,
            Dest::Uri(u) => self.inside_farm(snap, u),
        };
        if inside {
            Ok(Pass::Go)
        } else {
            tracing::info!(peer = %flow.source, dest = ?hop.dest, "next hop outside the farm refused");
            Err(OUTSIDE_FARM)
        }
    }
}
