//! Addresses: which host:port values are ours (Route popping, strict
//! routers, OPTIONS to the proxy, loop detection), what we write as
//! sent-by and Record-Route, where a [`Dest`] goes and where a response
//! goes back to (RFC 3261 18.2.2, RFC 3581 4).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::router::{Dest, Flow};
use crate::sip::{ConnId, Scheme, SipMessage, Transport, Uri, Via};

/// Where one message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The peer's address.
    pub addr: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The TCP connection to reuse, if still open.
    pub conn: Option<ConnId>,
    /// Our listener to send from (UDP): the one a flow came in on, so a
    /// phone's NAT binding and the address it knows us by stay the same.
    /// `None`: the first listener of the peer's address family.
    pub local: Option<SocketAddr>,
}

impl Hop {
    /// The listener a UDP hop leaves from, when pinned.
    pub fn udp_local(&self) -> Option<SocketAddr> {
        self.local.filter(|_| self.transport == Transport::Udp)
    }

    /// Makes `msg` fit to go over this hop: a stream frames messages by
    /// Content-Length (RFC 3261 18.3), which UDP lets a sender leave out.
    pub fn frame(&self, msg: &mut SipMessage) {
        if self.transport == Transport::Tcp && msg.headers.get("Content-Length").is_none() {
            msg.headers
                .push("Content-Length", &msg.body.len().to_string());
        }
    }

    /// A hop to `addr` over `transport`, from any listener, new connection allowed.
    pub fn to(addr: SocketAddr, transport: Transport) -> Hop {
        Hop {
            addr,
            transport,
            conn: None,
            local: None,
        }
    }

    /// Back over `flow`: its peer, transport, connection and listener.
    pub fn back(flow: &Flow) -> Hop {
        Hop {
            addr: flow.source,
            transport: flow.transport,
            conn: flow.conn,
            local: Some(flow.local),
        }
    }
}

/// How long a DNS lookup of a target may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The proxy's own addresses.
#[derive(Debug, Clone)]
pub struct Me {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    advertise: Option<(String, Option<u16>)>,
}

impl Me {
    /// From the bound listeners and the configured `advertise`.
    pub fn new(udp: Vec<SocketAddr>, tcp: Vec<SocketAddr>, advertise: Option<&str>) -> Me {
        let advertise = advertise.and_then(crate::sip::uri::split_host_port);
        Me {
            udp,
            tcp,
            advertise,
        }
    }

    /// Whether `host[:port]` names this proxy. An unspecified listener
    /// (`0.0.0.0`) matches only loopback hosts: set `advertise` to be
    /// recognised by a routable address.
    pub fn is_ours(&self, host: &str, port: Option<u16>) -> bool {
        let port = port.unwrap_or(5060);
        if let Some((h, p)) = &self.advertise
            && h.eq_ignore_ascii_case(host)
            && p.unwrap_or(5060) == port
        {
            return true;
        }
        let Ok(ip) = host.parse::<IpAddr>() else {
            return false;
        };
        self.udp.iter().chain(&self.tcp).any(|a| {
            a.port() == port && (a.ip() == ip || (a.ip().is_unspecified() && ip.is_loopback()))
        })
    }

    /// Whether a URI names this proxy.
    pub fn is_ours_uri(&self, uri: &Uri) -> bool {
        self.is_ours(&uri.host, uri.port)
    }

    /// Whether a Via was written by this proxy.
    pub fn is_our_via(&self, via: &Via) -> bool {
        self.is_ours(&via.host, via.port)
    }

    /// Our listener for `transport` in the family of `peer`.
    pub fn listener(&self, transport: Transport, peer: SocketAddr) -> Option<SocketAddr> {
        let list = match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        };
        list.iter().copied().find(|a| a.is_ipv4() == peer.is_ipv4())
    }

    /// The sent-by / Record-Route host:port for a side of `transport`
    /// towards `peer` (`local`: the listener address when known).
    pub fn host_port(
        &self,
        transport: Transport,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> String {
        if let Some((h, p)) = &self.advertise {
            let mut s = String::new();
            let _ = crate::sip::uri::fmt_host_port(&mut s, h, *p);
            return s;
        }
        local
            .or_else(|| self.listener(transport, peer))
            .or_else(|| self.udp.first().copied())
            .map(|a| a.to_string())
            .unwrap_or_else(|| "invalid".to_string())
    }

    /// Our Via for a request sent over `hop` with `branch` (`rport`
    /// asked, RFC 3581). Over UDP the sent-by is the listener the datagram
    /// leaves from (responses come back to it); over TCP the listener, not
    /// the connection's ephemeral local port.
    pub fn via(&self, hop: &Hop, branch: &str) -> String {
        let proto = match hop.transport {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        };
        format!(
            "SIP/2.0/{proto} {};branch={branch};rport",
            self.host_port(hop.transport, hop.addr, self.sends_from(hop))
        )
    }

    /// The UDP listener of ours `hop` leaves from, when it names one (a
    /// flow rebuilt from the store may name an address we no longer have:
    /// then the default listener, as the transport does).
    pub fn sends_from(&self, hop: &Hop) -> Option<SocketAddr> {
        hop.udp_local().filter(|l| self.udp.contains(l))
    }

    /// Our address on one side of a Record-Route: for `transport` towards
    /// `peer` (`local`: the listener it uses, when known).
    pub fn record_side(
        &self,
        transport: Transport,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> RecordSide {
        RecordSide {
            host_port: self.host_port(transport, peer, local),
            transport,
        }
    }

    /// `<sip:HOST:PORT[;transport=tcp];lr[;r2=on][;flow=TOKEN];lsig=SIG>`
    /// for one side (`r2`: one of a double Record-Route, RFC 5658; `flow`:
    /// the signed token of the phone on that side, whose dialog requests
    /// follow it; `lsig`: our signature,
    /// [`super::keys::FlowKeys::record_route_sig`]).
    pub fn record_route(
        &self,
        side: &RecordSide,
        r2: bool,
        lsig: &str,
        flow: Option<&str>,
    ) -> String {
        let t = if side.transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let r2 = if r2 { ";r2=on" } else { "" };
        let flow = flow.map(|f| format!(";flow={f}")).unwrap_or_default();
        format!("<sip:{}{t};lr{r2}{flow};lsig={lsig}>", side.host_port)
    }
}

/// Where one side of a dialog reaches us: what its Record-Route entry
/// names. Two equal sides share one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSide {
    host_port: String,
    transport: Transport,
}

/// Why a destination could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `sips:`, `tel:` or `transport=tls/ws/...`: the proxy sends UDP and TCP
    /// to SIP URIs only.
    #[error("unsupported transport {0}")]
    Transport(String),
    /// The host name did not resolve (or timed out).
    #[error("cannot resolve {0}")]
    Lookup(String),
}

/// Whether a request for `dest` may go over TCP instead of UDP when it is
/// too big for a datagram (RFC 3261 18.1.1): a URI that does not ask for
/// UDP explicitly (a box listens on both). Never a flow: a phone behind
/// NAT is reachable only through the binding it opened.
pub fn may_upgrade(dest: &Dest) -> bool {
    matches!(dest, Dest::Uri(u) if u.scheme == Scheme::Sip && u.params.get("transport").is_none())
}

/// Transport of a URI: its `transport` param, UDP by default.
fn uri_transport(uri: &Uri) -> Result<Transport, ResolveError> {
    match uri.scheme {
        Scheme::Sip => {}
        Scheme::Sips => return Err(ResolveError::Transport("sips".into())),
        // A number has no host: only a router's SIP target is a next hop.
        Scheme::Tel => return Err(ResolveError::Transport("tel".into())),
    }
    match uri.params.get("transport").flatten() {
        None => Ok(Transport::Udp),
        Some(t) if t.eq_ignore_ascii_case("udp") => Ok(Transport::Udp),
        Some(t) if t.eq_ignore_ascii_case("tcp") => Ok(Transport::Tcp),
        Some(t) => Err(ResolveError::Transport(t.to_string())),
    }
}

/// The hop of a destination, when no DNS is needed.
pub fn resolve_now(dest: &Dest) -> Option<Result<Hop, ResolveError>> {
    match dest {
        Dest::Flow(f) => Some(Ok(Hop::back(f))),
        Dest::Uri(uri) => {
            let t = match uri_transport(uri) {
                Ok(t) => t,
                Err(e) => return Some(Err(e)),
            };
            let ip: IpAddr = uri.host.parse().ok()?;
            Some(Ok(Hop::to(
                SocketAddr::new(ip, uri.port.unwrap_or(5060)),
                t,
            )))
        }
    }
}

/// The hop of a destination; names via A/AAAA (no SRV, RFC 3263 is not
/// implemented), bounded by a timeout.
pub async fn resolve(dest: &Dest) -> Result<Hop, ResolveError> {
    if let Some(r) = resolve_now(dest) {
        return r;
    }
    let Dest::Uri(uri) = dest else {
        return Err(ResolveError::Lookup("flow".into()));
    };
    let t = uri_transport(uri)?;
    let port = uri.port.unwrap_or(5060);
    let fail = || ResolveError::Lookup(uri.host.clone());
    let found = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        tokio::net::lookup_host((uri.host.as_str(), port)),
    )
    .await
    .map_err(|_| fail())?
    .map_err(|_| fail())?
    .next()
    .ok_or_else(fail)?;
    Ok(Hop::to(found, t))
}

/// Where a response to the request carrying `via` goes (RFC 3261 18.2.2,
/// RFC 3581 4): back on the connection or to `received`:`rport`, else to
/// the sent-by port. `flow` is where the request came from, when known:
/// a UDP response then leaves from the listener the request reached.
pub fn response_hop(via: &Via, flow: Option<&Flow>) -> Option<Hop> {
    let tcp = via.transport.eq_ignore_ascii_case("TCP");
    if let Some(f) = flow
        && (f.transport == Transport::Tcp || tcp)
    {
        return Some(Hop::back(f));
    }
    let ip: IpAddr = via.received().unwrap_or(&via.host).parse().ok()?;
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(5060),
    };
    let t = if tcp { Transport::Tcp } else { Transport::Udp };
    let mut hop = Hop::to(SocketAddr::new(ip, port), t);
    hop.local = flow.map(|f| f.local);
    Some(hop)
}

/// Where a response whose top Via (after ours was popped) is `via` goes
/// when relayed statelessly, as text: what our branch's keyed hash
/// covers ([`super::ids::BranchGen::vouches`]). Empty when it goes nowhere.
pub fn relay_key(via: Option<&Via>) -> String {
    match via.and_then(|v| response_hop(v, None)) {
        Some(h) => format!("{:?}/{}", h.transport, h.addr),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn ours_by_listener_advertise_and_loopback_for_unspecified() {
        let me = Me::new(
            vec!["127.0.0.1:5070".parse().unwrap()],
            vec!["0.0.0.0:5071".parse().unwrap()],
            Some("proxy.example.com"),
        );
        assert!(me.is_ours("127.0.0.1", Some(5070)));
        assert!(!me.is_ours("127.0.0.1", Some(5060)));
        assert!(me.is_ours("127.0.0.2", Some(5071)));
        assert!(!me.is_ours("10.0.0.1", Some(5071)));
        assert!(me.is_ours("PROXY.example.com", None));
        assert!(!me.is_ours("proxy.example.com", Some(5070)));
        let side = me.record_side(Transport::Tcp, "10.0.0.1:5060".parse().unwrap(), None);
        assert_eq!(
            me.record_route(&side, false, "ab12", None),
            "<sip:proxy.example.com;transport=tcp;lr;lsig=ab12>"
        );
        assert_eq!(
            me.record_route(&side, true, "ab12", Some("t~192.0.2.1:4000~7~99")),
            "<sip:proxy.example.com;transport=tcp;lr;r2=on;flow=t~192.0.2.1:4000~7~99;lsig=ab12>"
        );
    }

    #[test]
    fn responses_go_to_received_rport_else_sent_by() {
        let v = Via::parse(
            "SIP/2.0/UDP phone.local:5062;branch=z9hG4bKx;received=192.0.2.1;rport=4000",
        )
        .unwrap();
        assert_eq!(
            response_hop(&v, None).unwrap().addr,
            "192.0.2.1:4000".parse().unwrap()
        );
        let v = Via::parse("SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx").unwrap();
        assert_eq!(
            response_hop(&v, None).unwrap().addr,
            "192.0.2.2:5060".parse().unwrap()
        );
        let v = Via::parse("SIP/2.0/UDP name.only;branch=z9hG4bKx").unwrap();
        assert!(response_hop(&v, None).is_none());
    }
}
