//! Typed header values a proxy reads: [`Via`] (RFC 3261 20.42, RFC 3581
//! `rport`), [`NameAddr`] (From, To, Contact, Route, Record-Route) and
//! [`Replaces`] (RFC 3891). Each parses one value of a (possibly
//! comma-joined) header line; the raw line stays in [`super::Headers`].

use std::fmt;

use super::SipError;
use super::header::Params;
use super::uri::{Uri, fmt_host_port, split_host_port};

/// One Via value: `SIP/2.0/UDP host:port;branch=..;rport;received=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as sent (`UDP`, `TCP`, `TLS`, `WS`).
    pub transport: String,
    /// sent-by host (IPv6 without brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters in order.
    pub params: Params,
}

impl Via {
    /// Parses one Via value.
    pub fn parse(value: &str) -> Result<Via, SipError> {
        let bad = || SipError::HeaderValue {
            header: "Via",
            value: value.chars().take(200).collect(),
        };
        let (proto, rest) = value
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(bad)?;
        let mut parts = proto.split('/');
        let (name, version, transport) = (parts.next(), parts.next(), parts.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP")) || version != Some("2.0") {
            return Err(bad());
        }
        let transport = transport
            .filter(|t| !t.is_empty())
            .ok_or_else(bad)?
            .to_string();
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s, Params::parse(p)),
            None => (rest, Params::default()),
        };
        let (host, port) = split_host_port(sent_by).ok_or_else(bad)?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// `rport` (RFC 3581): `None` absent, `Some(None)` requested, `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        fmt_host_port(f, &self.host, self.port)?;
        write!(f, "{}", self.params)
    }
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, quotes removed.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`), after the URI.
    pub params: Params,
}

impl NameAddr {
    /// Parses one name-addr or addr-spec value.
    pub fn parse(value: &str) -> Result<NameAddr, SipError> {
        let v = value.trim();
        let Some(open) = v.find('<') else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 20.10).
            let (uri, params) = match v.split_once(';') {
                Some((u, p)) => (u, Params::parse(p)),
                None => (v, Params::default()),
            };
            return Ok(NameAddr {
                display: None,
                uri: Uri::parse(uri)?,
                params,
            });
        };
        let close = v[open..]
            .find('>')
            .map(|i| open + i)
            .ok_or_else(|| SipError::Uri(v.chars().take(200).collect()))?;
        let display = v[..open].trim().trim_matches('"').trim();
        let rest = v[close + 1..].trim_start();
        Ok(NameAddr {
            display: (!display.is_empty()).then(|| display.to_string()),
            uri: Uri::parse(&v[open + 1..close])?,
            params: Params::parse(rest.strip_prefix(';').unwrap_or(rest)),
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// `Replaces: call-id;to-tag=..;from-tag=..[;early-only]` (RFC 3891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Call-ID of the dialog to replace.
    pub call_id: String,
    /// Its to-tag.
    pub to_tag: String,
    /// Its from-tag.
    pub from_tag: String,
    /// `early-only` present.
    pub early_only: bool,
}

impl Replaces {
    /// Parses a Replaces value.
    pub fn parse(value: &str) -> Result<Replaces, SipError> {
        let bad = || SipError::HeaderValue {
            header: "Replaces",
            value: value.chars().take(200).collect(),
        };
        let (id, params) = value.split_once(';').ok_or_else(bad)?;
        let params = Params::parse(params);
        let tag = |n| params.get(n).flatten().map(str::to_string).ok_or_else(bad);
        let call_id = id.trim();
        if call_id.is_empty() {
            return Err(bad());
        }
        Ok(Replaces {
            call_id: call_id.to_string(),
            to_tag: tag("to-tag")?,
            from_tag: tag("from-tag")?,
            early_only: params.get("early-only").is_some(),
        })
    }
}
