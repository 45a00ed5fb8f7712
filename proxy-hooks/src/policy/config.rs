//! [`PolicyConfig`] (`[proxy.policy]` in `locus.toml`): who the proxy
//! relays for (SIP domains, carrier trunks by source address), the DID
//! table (number or prefix -> tenant domain), the outbound gateways and
//! which numbers count as outside the farm.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use super::net::Cidr;
use crate::sip::Uri;
use crate::sip::uri::split_host_port;

/// `[proxy.policy]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// SIP domains we relay for (phones may only call or register into
    /// these, or the proxy's own addresses).
    pub domains: Vec<String>,
    /// Carrier trunks, by source address.
    pub trunks: Vec<Trunk>,
    /// DID number or prefix (`+` and digits) -> tenant domain; the longest
    /// matching prefix wins.
    pub dids: BTreeMap<String, String>,
    /// Outbound gateways (`sip:` URIs), tried in order.
    pub gateways: Vec<String>,
    /// A number a farm node dials that leaves the farm (to the gateways).
    pub outside: String,
    /// Sibling proxies of the farm: trusted like farm nodes, so one proxy
    /// can deliver a call to a phone registered through another (rule 7
    /// through the owning proxy's flow). Each an `ip:port` (that source
    /// only), an IP (any port, UDP or TCP) or a CIDR block.
    pub peers: Vec<String>,
    /// How a source is matched to a node's `sip_uri`: `ip` (default: any
    /// port, UDP or TCP, of its IP) or `address` (its exact ip:port only:
    /// for a lab where phones share a box's IP, e.g. one host's loopback;
    /// a box's TCP requests are then a stranger's).
    pub node_match: NodeMatch,
    /// Networks whose every address is a farm node (any port, UDP or
    /// TCP), beside the IPs of the nodes' `sip_uri`s: boxes known by host
    /// name, or sending from a second address. CIDRs or addresses.
    pub node_networks: Vec<String>,
    /// When set, a UDP request from a node address is a node's only if it
    /// carries `X-Locus-Auth: <secret>` (UDP sources can be forged where
    /// the network does not filter them, BCP 38); else it is a stranger's.
    /// The header is always removed before anything is forwarded.
    pub node_secret: Option<String>,
    /// Per-node secrets (node id -> secret), overriding `node_secret` for
    /// those nodes (and requiring the header from them even without it).
    pub node_secrets: BTreeMap<String, String>,
}

/// [`PolicyConfig::node_match`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMatch {
    /// The IP of a node's `sip_uri`, any port.
    #[default]
    Ip,
    /// The exact ip:port of a node's `sip_uri`.
    Address,
}

/// `[[proxy.policy.trunks]]`: one carrier.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Name (logs, metrics, `Source::Trunk`).
    pub name: String,
    /// Source addresses: IPv4/IPv6 addresses or CIDR blocks.
    pub sources: Vec<String>,
}

/// The default of [`PolicyConfig::outside`]: seven digits or more, with
/// an optional `+` (national and E.164 numbers, not extensions).
pub const DEFAULT_OUTSIDE: &str = r"^\+?[0-9]{7,}$";

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            trunks: Vec::new(),
            dids: BTreeMap::new(),
            gateways: Vec::new(),
            outside: DEFAULT_OUTSIDE.into(),
            peers: Vec::new(),
            node_match: NodeMatch::Ip,
            node_networks: Vec::new(),
            node_secret: None,
            node_secrets: BTreeMap::new(),
        }
    }
}

/// A `[proxy.policy]` value (or an own address) that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The `outside` pattern does not compile.
    #[error("proxy.policy.outside: bad pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        #[source]
        source: Box<regex::Error>,
    },
    /// Any other unusable value.
    #[error("proxy.policy: {0}")]
    Invalid(String),
}

/// A SIP host name or IP literal (no port), as in a URI.
pub(crate) fn valid_host(h: &str) -> bool {
    matches!(split_host_port(h), Some((_, None))) || h.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `+` then digits, or digits.
fn valid_number(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parsed forms of the values, shared by `validate` and `Policy::new`.
pub(crate) struct Compiled {
    pub trunks: Vec<(String, Vec<Cidr>)>,
    pub gateways: Vec<Uri>,
    pub outside: Regex,
    pub peers: Vec<Peer>,
    pub node_networks: Vec<Cidr>,
}

/// A sibling proxy: one source address, or every port of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `ip:port` (canonical IP).
    Addr(std::net::SocketAddr),
    /// An IP or a CIDR block: any port.
    Net(Cidr),
}

impl Peer {
    fn parse(s: &str) -> Result<Peer, String> {
        match s.trim().parse::<std::net::SocketAddr>() {
            Ok(a) => Ok(Peer::Addr(std::net::SocketAddr::new(
                a.ip().to_canonical(),
                a.port(),
            ))),
            Err(_) => Cidr::parse(s).map(Peer::Net),
        }
    }

    /// Whether a packet from `addr` comes from this peer.
    pub(crate) fn matches(&self, addr: std::net::SocketAddr) -> bool {
        match self {
            Peer::Addr(a) => a.ip() == addr.ip().to_canonical() && a.port() == addr.port(),
            Peer::Net(c) => c.contains(addr.ip()),
        }
    }
}

impl PolicyConfig {
    /// Checks what parses but cannot work: domains and DID domains are
    /// host names, DID keys are numbers, trunk sources are addresses or
    /// CIDRs (trunk names unique), gateways are `sip:`/`sips:` URIs, the
    /// `outside` pattern compiles.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.compile().map(|_| ())
    }

    pub(crate) fn compile(&self) -> Result<Compiled, PolicyError> {
        let bad = |m: String| PolicyError::Invalid(m);
        for d in &self.domains {
            if !valid_host(d) {
                return Err(bad(format!("domains: {d:?} is not a SIP domain")));
            }
        }
        for (num, dom) in &self.dids {
            if !valid_number(num) {
                return Err(bad(format!("dids: {num:?} is not a number (+ and digits)")));
            }
            if !valid_host(dom) {
                return Err(bad(format!("dids: {num}: {dom:?} is not a SIP domain")));
            }
        }
        let mut trunks: Vec<(String, Vec<Cidr>)> = Vec::with_capacity(self.trunks.len());
        for t in &self.trunks {
            if t.name.trim().is_empty() || trunks.iter().any(|(n, _)| *n == t.name) {
                return Err(bad(format!("trunks: name {:?} empty or repeated", t.name)));
            }
            if t.sources.is_empty() {
                return Err(bad(format!("trunks: {}: no sources", t.name)));
            }
            let cidrs = t
                .sources
                .iter()
                .map(|s| Cidr::parse(s).map_err(|e| bad(format!("trunks: {}: {e}", t.name))))
                .collect::<Result<Vec<_>, _>>()?;
            trunks.push((t.name.clone(), cidrs));
        }
        let gateways = self
            .gateways
            .iter()
            .map(|g| Uri::parse(g).map_err(|_| bad(format!("gateways: {g:?} is not a sip: URI"))))
            .collect::<Result<Vec<_>, _>>()?;
        let outside = Regex::new(&self.outside).map_err(|e| PolicyError::Pattern {
            pattern: self.outside.clone(),
            source: Box::new(e),
        })?;
        let peers = self
            .peers
            .iter()
            .map(|p| Peer::parse(p).map_err(|e| bad(format!("peers: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let node_networks = self
            .node_networks
            .iter()
            .map(|n| Cidr::parse(n).map_err(|e| bad(format!("node_networks: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let secrets = self.node_secret.iter().map(|s| ("node_secret", s));
        let per_node = self.node_secrets.values().map(|s| ("node_secrets", s));
        for (key, s) in secrets.chain(per_node) {
            // Sent as a header value: printable, no spaces or commas.
            if s.len() < 16 || !s.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(bad(format!(
                    "{key}: at least 16 printable characters, no spaces or commas"
                )));
            }
        }
        for id in self.node_secrets.keys() {
            if locus_schema::NodeId::new(id.as_str()).is_err() {
                return Err(bad(format!("node_secrets: {id:?} is not a node id")));
            }
        }
        Ok(Compiled {
            trunks,
            gateways,
            outside,
            peers,
            node_networks,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn empty_means_no_relaying_and_the_default_pattern() {
        let cfg: PolicyConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, PolicyConfig::default());
        assert_eq!(cfg.outside, DEFAULT_OUTSIDE);
        cfg.validate().unwrap();
    }

    #[test]
    fn full_config_parses() {
        let cfg: PolicyConfig = toml::from_str(
            r#"
            domains = ["d.example.com", "t1.example.com"]
            gateways = ["sip:gw1.carrier.example:5060", "sip:192.0.2.10;transport=tcp"]
            outside = '^\+?[0-9]{6,}$'
            [dids]
            "+3906" = "d.example.com"
            "+390612345" = "t1.example.com"
            [[trunks]]
            name = "carrier"
            sources = ["192.0.2.0/24", "2001:db8:c::/48", "198.51.100.7"]
            "#,
        )
        .unwrap();
        let c = cfg.compile().unwrap();
        assert_eq!(c.trunks[0].1.len(), 3);
        assert!(c.peers.is_empty() && c.node_networks.is_empty());
        assert_eq!(c.gateways[1].port, None);
        assert!(c.outside.is_match("123456"));
    }

    #[test]
    fn readme_sample_parses_once_uncommented() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n# [proxy.policy]").unwrap() + 8;
        let len = readme[start..].find("```").unwrap();
        let text: String = readme[start..start + len]
            .lines()
            .map(|l| l.strip_prefix('#').unwrap_or(l).trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let cfg: PolicyConfig = doc["proxy"]["policy"].clone().try_into().unwrap();
        let c = cfg.compile().unwrap();
        assert_eq!(cfg.outside, DEFAULT_OUTSIDE);
        assert_eq!(
            (cfg.domains.len(), cfg.dids.len(), c.trunks[0].1.len()),
            (2, 2, 3)
        );
        assert_eq!(c.gateways.len(), 2);
        assert_eq!((c.node_networks.len(), c.peers.len()), (1, 2));
        assert!(cfg.node_secret.is_some() && cfg.node_secrets.len() == 1);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<PolicyConfig>("domain = []").is_err());
        assert!(toml::from_str::<PolicyConfig>("node_match = \"port\"").is_err());
        assert!(toml::from_str::<PolicyConfig>("[[trunks]]\nname = \"a\"\nsource = []").is_err());
        for bad in [
            "domains = [\"a b\"]",
            "domains = [\"d.example.com:5060\"]",
            "dids = { \"12a\" = \"d\" }",
            "dids = { \"+\" = \"d\" }",
            "dids = { \"123\" = \"\" }",
            "gateways = [\"gw.example.com\"]",
            "gateways = [\"tel:+123\"]",
            "outside = '('",
            "[[trunks]]\nname = \"a\"\nsources = [\"10.0.0.0/33\"]",
            "[[trunks]]\nname = \"a\"\nsources = []",
            "[[trunks]]\nname = \"\"\nsources = [\"10.0.0.1\"]",
            "[[trunks]]\nname = \"a\"\nsources = [\"10.0.0.1\"]\n[[trunks]]\nname = \"a\"\nsources = [\"10.0.0.2\"]",
            "peers = [\"proxy2.example.com\"]",
            "peers = [\"10.0.0.1/8\"]",
            "node_networks = [\"10.0.0.0/33\"]",
            "node_secret = \"short\"",
            "node_secret = \"has a space in it, sixteen+\"",
            "node_secrets = { \"bad id\" = \"0123456789abcdef\" }",
            "node_secrets = { fs1 = \"short\" }",
        ] {
            let cfg: PolicyConfig = toml::from_str(bad).unwrap();
            let e = cfg.validate().unwrap_err();
            assert!(e.to_string().starts_with("proxy.policy"), "{bad}: {e}");
        }
    }
}
