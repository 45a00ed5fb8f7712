//! [`RegistrarConfig`] (`[proxy.registrar]`) and [`OwnAddr`], how the
//! proxy names itself in the `Path` it adds and in the `socket` of the
//! bindings it writes, so boxes and other proxies can reach it.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::proxy::{Flow, FlowKeys};
use crate::sip::uri::split_host_port;
use crate::sip::{Params, Scheme, Transport, Uri};

/// How REGISTERs reach the boxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrarMode {
    /// Every REGISTER goes to a box (the box's expiry is the phone's).
    #[default]
    Forward,
    /// Mid-registrar (`registrar/mid.rs`): phones get `phone_expires`,
    /// boxes `box_expires`; refreshes in between are answered here.
    Mid,
}

/// `[proxy.registrar]` (unknown keys refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    /// How long a rule 7 lookup waits for the store before it falls back
    /// to this proxy's own bindings.
    #[serde(with = "humantime_serde")]
    pub lookup_timeout: Duration,
    /// Longest binding mirrored, whatever the box granted.
    #[serde(with = "humantime_serde")]
    pub max_expires: Duration,
    /// How long a binding stays routable past the expiry the box granted:
    /// phones re-register close to the deadline, and the refresh takes a
    /// round trip through this proxy and the box before it is mirrored.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// `forward` (default) or `mid`.
    pub mode: RegistrarMode,
    /// Mid mode: the expiry phones are given (short: it holds the NAT
    /// pinhole and finds dead phones quickly).
    #[serde(with = "humantime_serde")]
    pub phone_expires: Duration,
    /// Mid mode: the expiry asked of the boxes.
    #[serde(with = "humantime_serde")]
    pub box_expires: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            lookup_timeout: Duration::from_millis(200),
            max_expires: Duration::from_secs(7200),
            grace: Duration::from_secs(30),
            mode: RegistrarMode::Forward,
            phone_expires: Duration::from_secs(60),
            box_expires: Duration::from_secs(3600),
        }
    }
}

impl RegistrarConfig {
    /// Refuses a zero lookup timeout or max expiry.
    pub fn validate(&self) -> Result<(), RegistrarError> {
        if self.lookup_timeout.is_zero() {
            return Err(RegistrarError::Config("lookup_timeout must be > 0"));
        }
        if self.max_expires < Duration::from_secs(1) {
            return Err(RegistrarError::Config("max_expires must be >= 1s"));
        }
        if self.phone_expires < Duration::from_secs(1) {
            return Err(RegistrarError::Config("phone_expires must be >= 1s"));
        }
        if self.box_expires < self.phone_expires * 2 {
            return Err(RegistrarError::Config(
                "box_expires must be at least twice phone_expires",
            ));
        }
        Ok(())
    }
}

/// What can be wrong with the registrar's configuration.
#[derive(Debug, thiserror::Error)]
pub enum RegistrarError {
    /// A value out of range.
    #[error("registrar config: {0}")]
    Config(&'static str),
    /// `advertise` is not `host[:port]`.
    #[error("registrar: advertise {0:?} is not host[:port]")]
    Advertise(String),
}

/// How this proxy names itself to boxes and other proxies: the address a
/// REGISTER arrived at (`Flow::local`), or `advertise` (`host[:port]`)
/// when the proxy listens on a wildcard or sits behind NAT. An advertised
/// port replaces the local one; without one the local port is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnAddr {
    host: Option<String>,
    port: Option<u16>,
}

impl OwnAddr {
    /// From an optional `host[:port]` (`[v6]:port` for IPv6).
    pub fn new(advertise: Option<&str>) -> Result<OwnAddr, RegistrarError> {
        let Some(a) = advertise else {
            return Ok(OwnAddr::default());
        };
        let (host, port) = split_host_port(a).ok_or_else(|| RegistrarError::Advertise(a.into()))?;
        Ok(OwnAddr {
            host: Some(host),
            port,
        })
    }

    fn host_port(&self, local: SocketAddr) -> (String, u16) {
        let host = self.host.clone().unwrap_or_else(|| local.ip().to_string());
        (host, self.port.unwrap_or(local.port()))
    }

    /// `sip:HOST:PORT[;transport=tcp]`: where another proxy sends to reach
    /// us on the socket `flow` arrived at.
    pub fn socket_uri(&self, flow: &Flow) -> Uri {
        let (host, port) = self.host_port(flow.local);
        let mut params = Params::default();
        if flow.transport == Transport::Tcp {
            params.set("transport", Some("tcp"));
        }
        Uri {
            scheme: Scheme::Sip,
            user: None,
            host,
            port: Some(port),
            params,
            headers: None,
        }
    }

    /// `HOST:PORT` (`[v6]:PORT`): how a phone on `flow` knows us, for the
    /// Via of our own requests to it.
    pub fn sent_by(&self, flow: &Flow) -> String {
        let (host, port) = self.host_port(flow.local);
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// `<sip:HOST:PORT[;transport=tcp];lr;flow=TOKEN>`: our Path value
    /// for a REGISTER from `flow`, and the Route another proxy pushes to
    /// reach a phone through us.
    pub fn path_value(&self, flow: &Flow, keys: &FlowKeys) -> String {
        route_through(&self.socket_uri(flow), &keys.token(flow))
    }
}

/// `<SOCKET;lr;flow=TOKEN>` (RFC 3261 loose routing; the flow token tells
/// the owning proxy which phone connection to use, RFC 5626 style).
pub(crate) fn route_through(socket: &Uri, token: &str) -> String {
    let mut uri = socket.clone();
    uri.params.set("lr", None);
    uri.params.set("flow", Some(token));
    format!("<{uri}>")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn flow(local: &str, t: Transport) -> Flow {
        Flow {
            source: "192.0.2.7:40000".parse().unwrap(),
            transport: t,
            conn: (t == Transport::Tcp).then_some(crate::sip::ConnId(9)),
            local: local.parse().unwrap(),
        }
    }

    #[test]
    fn local_address_or_advertised_one() {
        let f = flow("10.0.0.1:5060", Transport::Udp);
        let own = OwnAddr::new(None).unwrap();
        let keys = FlowKeys::new(b"0123456789abcdef", None);
        assert_eq!(own.socket_uri(&f).to_string(), "sip:10.0.0.1:5060");
        let sig = |f: &Flow| keys.token(f).rsplit_once('~').unwrap().1.to_string();
        assert_eq!(
            own.path_value(&f, &keys),
            format!(
                "<sip:10.0.0.1:5060;lr;flow=u~192.0.2.7:40000~0~{}>",
                sig(&f)
            )
        );
        let t = flow("[::1]:5070", Transport::Tcp);
        let adv = OwnAddr::new(Some("proxy.example.com")).unwrap();
        assert_eq!(
            adv.path_value(&t, &keys),
            format!(
                "<sip:proxy.example.com:5070;transport=tcp;lr;flow=t~192.0.2.7:40000~9~{}>",
                sig(&t)
            )
        );
        let adv = OwnAddr::new(Some("[2001:db8::5]:5080")).unwrap();
        assert_eq!(adv.socket_uri(&f).to_string(), "sip:[2001:db8::5]:5080");
        assert_eq!(adv.sent_by(&f), "[2001:db8::5]:5080");
        assert_eq!(own.sent_by(&f), "10.0.0.1:5060");
        for bad in ["", "a b", "h:99999", "[::1"] {
            assert!(OwnAddr::new(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_defaults_and_refusals() {
        let c: RegistrarConfig = toml::from_str("grace = \"10s\"").unwrap();
        assert_eq!(c.grace, Duration::from_secs(10));
        assert_eq!(c.lookup_timeout, Duration::from_millis(200));
        assert!(toml::from_str::<RegistrarConfig>("nope = 1").is_err());
        let zero: RegistrarConfig = toml::from_str("lookup_timeout = \"0s\"").unwrap();
        assert!(zero.validate().is_err());
        assert!(RegistrarConfig::default().validate().is_ok());
        let mid: RegistrarConfig =
            toml::from_str("mode = \"mid\"\nphone_expires = \"60s\"\nbox_expires = \"1h\"")
                .unwrap();
        assert_eq!(mid.mode, RegistrarMode::Mid);
        assert!(mid.validate().is_ok());
        let short: RegistrarConfig = toml::from_str("box_expires = \"90s\"").unwrap();
        assert!(short.validate().is_err());
        assert!(toml::from_str::<RegistrarConfig>("mode = \"proxy\"").is_err());
    }
}
