//! Trust and the proxy's own routing tables (DESIGN.md "Failure model",
//! "Trust"; rule 6): [`Policy`] tells farm nodes, carrier trunks and phones
//! apart by source address (a node by the IP of its `sip_uri`, any port
//! and transport, or by `node_networks`; over UDP with `node_secret`, by
//! its `X-Locus-Auth` header too), refuses to relay for foreign domains, strips
//! `X-Locus-*` headers that did not come from a farm node, and holds the
//! DID table, the gateways and the `outside` pattern for `FarmRouter`.
//!
//! Configured by [`PolicyConfig`] (`[proxy.policy]`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;

use locus_schema::NodeId;

use regex::Regex;

use crate::proxy::Flow;
use crate::routing::request::Source;
use crate::routing::snapshot::FarmSnapshot;
use crate::sip::uri::split_host_port;
use crate::sip::{NameAddr, SipMessage, Transport, Uri, addr_user_host, to_tag};

mod auth;
mod config;
mod gate;
mod net;

pub use auth::{AUTH_HEADER, Vouched};
use config::Peer;
pub use config::{DEFAULT_OUTSIDE, NodeMatch, PolicyConfig, PolicyError, Trunk};
pub use gate::{NOT_OUR_DIALOG, OUTSIDE_FARM, PRELOADED_ROUTE, PRIVATE_ADDRESS, UNKNOWN_DIALOG};
pub use net::{Cidr, is_private};

/// The node id a request from `node_networks` carries when its IP is no
/// node's (`Source::Node`; logs only).
pub const NETWORK_NODE: &str = "node-network";

/// The header prefix only farm nodes may send (a box's 302 target, ...).
pub const LOCUS_PREFIX: &str = "X-Locus-";

/// 403 for a request into a domain we do not serve: not an open relay.
pub const RELAYING_DENIED: (u16, &str) = (403, "Relaying Denied");

/// The compiled `[proxy.policy]` plus the proxy's own addresses.
#[derive(Debug)]
pub struct Policy {
    /// Lower-cased.
    domains: Vec<String>,
    /// Lower-cased host (IPv6 without brackets), its address when an IP
    /// literal, port if given.
    own: Vec<(String, Option<IpAddr>, Option<u16>)>,
    trunks: Vec<(String, Vec<Cidr>)>,
    /// Number or prefix -> lower-cased domain.
    dids: BTreeMap<String, String>,
    gateways: Vec<Uri>,
    outside: Regex,
    /// Sibling proxies.
    peers: Vec<Peer>,
    node_match: NodeMatch,
    node_networks: Vec<Cidr>,
    node_secret: Option<String>,
    node_secrets: BTreeMap<NodeId, String>,
    /// [`NETWORK_NODE`].
    network_node: NodeId,
    /// Sibling proxies found through their leases (`cluster.rs`): their
    /// listening sockets, exactly.
    siblings: Arc<ArcSwap<Vec<SocketAddr>>>,
}

impl Policy {
    /// Compiles `cfg`. `own` are the proxy's own addresses (`host` or
    /// `host:port`, `[v6]:port`; a host without port matches any port):
    /// always ours, whatever `domains` says.
    pub fn new(cfg: &PolicyConfig, own: Vec<String>) -> Result<Self, PolicyError> {
        let c = cfg.compile()?;
        let own = own
            .iter()
            .map(|o| {
                split_host_port(o)
                    .or_else(|| {
                        o.parse::<std::net::Ipv6Addr>()
                            .ok()
                            .map(|a| (a.to_string(), None))
                    })
                    .map(|(h, p)| {
                        let ip = h.parse::<IpAddr>().ok().map(|i| i.to_canonical());
                        (h.to_ascii_lowercase(), ip, p)
                    })
                    .ok_or_else(|| PolicyError::Invalid(format!("own address {o:?} unreadable")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            domains: cfg.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            own,
            trunks: c.trunks,
            dids: cfg
                .dids
                .iter()
                .map(|(n, d)| (n.clone(), d.to_ascii_lowercase()))
                .collect(),
            gateways: c.gateways,
            outside: c.outside,
            peers: c.peers,
            siblings: Arc::default(),
            node_match: cfg.node_match,
            node_networks: c.node_networks,
            node_secret: cfg.node_secret.clone(),
            node_secrets: cfg
                .node_secrets
                .iter()
                .filter_map(|(id, s)| NodeId::new(id.as_str()).ok().map(|id| (id, s.clone())))
                .collect(),
            network_node: NodeId::new(NETWORK_NODE)
                .map_err(|e| PolicyError::Invalid(e.to_string()))?,
        })
    }

    /// Where a packet from `flow` comes from, by address alone: a farm
    /// node when its IP is a node's (any port, UDP or TCP: a box sends
    /// over TCP from ephemeral ports; of several boxes on one IP, the one
    /// whose `sip_uri` port matches, else the first by id) or lies in
    /// `node_networks`, else a trunk whose sources hold it, else a phone.
    /// Phones must therefore never share an IP with a box. With a node
    /// secret, a UDP request is a node's only if [`Policy::authenticate`]
    /// vouched for it.
    pub fn classify<'a>(&'a self, snap: &'a FarmSnapshot, flow: &Flow) -> Source<'a> {
        match self.node_by_addr(snap, flow.source) {
            Some(id) => Source::Node(id),
            None => self.stranger(flow),
        }
    }

    /// A source that is not a node: a trunk whose sources hold its IP, or a
    /// phone.
    pub fn stranger<'a>(&'a self, flow: &Flow) -> Source<'a> {
        let ip = flow.source.ip();
        self.trunks
            .iter()
            .find(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
            .map_or(Source::Phone, |(name, _)| Source::Trunk(name))
    }

    /// The farm node at `addr` by address (see [`Policy::classify`]).
    pub fn node_by_addr<'a>(
        &'a self,
        snap: &'a FarmSnapshot,
        addr: SocketAddr,
    ) -> Option<&'a NodeId> {
        let node = match self.node_match {
            NodeMatch::Ip => snap.node_from(addr),
            NodeMatch::Address => snap.node_at(addr),
        };
        if let Some(n) = node {
            return Some(&n.id);
        }
        self.node_networks
            .iter()
            .any(|c| c.contains(addr.ip()))
            .then_some(&self.network_node)
    }

    /// The secret node `id` must send, if any.
    fn secret_of(&self, id: &NodeId) -> Option<&str> {
        self.node_secrets
            .get(id)
            .or(self.node_secret.as_ref())
            .map(String::as_str)
    }

    /// Whether a request on `flow` from a node address must prove itself
    /// with `X-Locus-Auth`: over UDP, when any node secret is configured.
    /// A TCP source address is proven by the handshake (an off-path
    /// forger cannot complete it).
    pub fn wants_secret(&self, flow: &Flow) -> bool {
        flow.transport == Transport::Udp
            && (self.node_secret.is_some() || !self.node_secrets.is_empty())
    }

    /// Admission's view of a request: [`Policy::classify`], then, when the
    /// source is a node by address and [`Policy::wants_secret`], its
    /// `X-Locus-Auth` must equal the secret of a node on that IP (the
    /// node named is then that one; a `node_networks` source at no node's
    /// IP needs `node_secret`). A node on an IP whose nodes have no secret
    /// passes without. Otherwise the source is a stranger. The header is
    /// removed in every case: it never leaves the proxy.
    pub fn authenticate<'a>(
        &'a self,
        snap: &'a FarmSnapshot,
        flow: &Flow,
        req: &mut SipMessage,
    ) -> Source<'a> {
        let got = req.headers.get(AUTH_HEADER).map(str::to_owned);
        req.headers.remove_all(AUTH_HEADER);
        let source = self.classify(snap, flow);
        let Source::Node(by_addr) = source else {
            return source;
        };
        if !self.wants_secret(flow) {
            return source;
        }
        let ip = flow.source.ip();
        let mut ids: Vec<&NodeId> = vec![by_addr];
        ids.extend(
            snap.nodes_on(ip)
                .iter()
                .filter_map(|&i| snap.node(i))
                .map(|n| &n.id)
                .filter(|id| *id != by_addr),
        );
        let wanted: Vec<(&NodeId, &str)> = ids
            .into_iter()
            .filter_map(|id| self.secret_of(id).map(|s| (id, s)))
            .collect();
        if wanted.is_empty() {
            return source;
        }
        let got = got.as_deref().map(str::trim).unwrap_or_default();
        match wanted.iter().find(|(_, s)| auth::same_secret(got, s)) {
            Some((id, _)) => Source::Node(id),
            None => {
                tracing::info!(peer = %flow.source, header = !got.is_empty(),
                    "request from a node address without a valid X-Locus-Auth: a stranger's");
                self.stranger(flow)
            }
        }
    }

    /// Trust for a request from `source`: farm nodes pass untouched;
    /// everyone else loses `X-Locus-*` headers. In-dialog requests (To tag)
    /// pass: the core forwards them only along a Route set we recorded.
    /// Out of dialog, a Route carrying our `flow=` token is refused (403)
    /// from anyone but a node; then trunks pass, and a phone's request must
    /// be for one of our domains or addresses (R-URI host, and for REGISTER
    /// the To host too), else 403.
    pub fn admit(
        &self,
        source: Source<'_>,
        req: &mut SipMessage,
        flow: &Flow,
    ) -> Result<(), (u16, &'static str)> {
        if let Source::Node(_) = source {
            return Ok(());
        }
        if self.is_peer(flow.source) {
            // A sibling proxy relays what a box or a phone sent it, incl.
            // our flow Routes (rule 7 through the owning proxy).
            return Ok(());
        }
        let stripped = req.headers.remove_prefixed(LOCUS_PREFIX);
        if stripped > 0 {
            tracing::debug!(peer = %flow.source, headers = stripped, "X-Locus headers stripped");
        }
        if req.headers.get("To").and_then(to_tag).is_some() {
            return Ok(());
        }
        // Our `flow=` Route parameters (Path, Record-Route) send a request
        // straight to an address; outside a dialog only a farm node holds
        // one (the Path of a binding), so anyone else's would make us an
        // open relay to any address.
        let forged = req
            .headers
            .get_all("Route")
            .into_iter()
            .any(|r| NameAddr::parse(r).is_ok_and(|n| n.uri.params.get("flow").is_some()));
        if forged {
            tracing::info!(peer = %flow.source, "out-of-dialog Route with a flow token refused");
            return Err(RELAYING_DENIED);
        }
        if let Source::Trunk(_) = source {
            return Ok(());
        }
        let ruri_ok = req.request_uri().is_some_and(|u| self.serves(u, flow));
        let to_ok = req.method() != Some("REGISTER")
            || req
                .headers
                .get("To")
                .and_then(addr_user_host)
                .is_some_and(|(_, host)| self.is_domain(host) || self.is_own(host, None, flow));
        if ruri_ok && to_ok {
            Ok(())
        } else {
            tracing::info!(peer = %flow.source, ruri = ?req.request_uri().map(|u| u.host.as_str()),
                "relaying denied");
            Err(RELAYING_DENIED)
        }
    }

    /// Whether a packet from `addr` comes from a sibling proxy: one of
    /// `peers`, or a socket a live proxy's lease lists.
    pub fn is_peer(&self, addr: SocketAddr) -> bool {
        self.peers.iter().any(|p| p.matches(addr)) || self.siblings.load().contains(&addr)
    }

    /// The live siblings' sockets, as the cluster loop republishes them.
    pub fn siblings(&self) -> Arc<ArcSwap<Vec<SocketAddr>>> {
        self.siblings.clone()
    }

    /// Whether `uri` is for us: one of our domains or our own address.
    pub fn serves(&self, uri: &Uri, flow: &Flow) -> bool {
        let port = uri.port.unwrap_or(uri.scheme.default_port());
        self.is_domain(&uri.host) || self.is_own(&uri.host, Some(port), flow)
    }

    /// Whether `host` is one of the configured domains.
    pub fn is_domain(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    /// Whether `host[:port]` is one of our own addresses, or the local
    /// address `flow` arrived at (unless that is a wildcard). `port: None`
    /// matches any port.
    pub fn is_own(&self, host: &str, port: Option<u16>, flow: &Flow) -> bool {
        let ip = host.parse::<IpAddr>().ok().map(|i| i.to_canonical());
        let port_ok = |p: Option<u16>| p.is_none() || port.is_none() || p == port;
        let listed = self.own.iter().any(|(h, own_ip, p)| {
            let same = match (ip, own_ip) {
                (Some(a), Some(b)) => a == *b,
                _ => h.eq_ignore_ascii_case(host),
            };
            same && port_ok(*p)
        });
        let local = flow.local;
        listed
            || (!local.ip().is_unspecified()
                && ip == Some(local.ip().to_canonical())
                && port_ok(Some(local.port())))
    }

    /// The tenant domain of a DID (R-URI user of a carrier's INVITE): the
    /// longest configured number or prefix that starts `number`. User
    /// parameters (`;npdi`) are ignored; `+` is matched literally.
    pub fn did(&self, number: &str) -> Option<&str> {
        let number = number.split(';').next().unwrap_or(number);
        (1..=number.len())
            .rev()
            .find_map(|len| number.get(..len).and_then(|p| self.dids.get(p)))
            .map(String::as_str)
    }

    /// Whether a number a farm node dials leaves the farm.
    pub fn is_outside(&self, number: &str) -> bool {
        self.outside.is_match(number)
    }

    /// The outbound gateways, in order.
    pub fn gateways(&self) -> &[Uri] {
        &self.gateways
    }

    /// The configured trunk names.
    pub fn trunks(&self) -> impl Iterator<Item = &str> {
        self.trunks.iter().map(|(n, _)| n.as_str())
    }
}
