//! Ordered raw headers and the typed readers a proxy needs.
//!
//! Headers stay `(name, raw value)` as received, so everything the proxy
//! does not touch is forwarded byte for byte. Names compare
//! case-insensitively and compact forms (RFC 3261 7.3.3, `v:` for `Via`)
//! resolve to their long names. List headers (`Via`, `Route`, ...) may carry
//! several values in one line, comma-separated (RFC 3261 7.3.1).

use std::fmt;

use super::SipError;
use super::uri::{Uri, fmt_host_port, split_host_port};

/// Long name of a header name, resolving compact forms (RFC 3261 20, RFC 3515, RFC 3892, RFC 4028).
pub fn canonical(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'v' => "Via",
        b'f' => "From",
        b't' => "To",
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'e' => "Content-Encoding",
        b'k' => "Supported",
        b's' => "Subject",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'u' => "Allow-Events",
        b'x' => "Session-Expires",
        _ => name,
    }
}

/// Whether two header names mean the same header.
pub fn same_name(a: &str, b: &str) -> bool {
    canonical(a).eq_ignore_ascii_case(canonical(b))
}

/// Splits a header value on commas outside quotes and `<>`.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|v| !v.is_empty());
    out
}

/// One header line: name as received, raw value (folding already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name as received (`v`, `VIA`, `Via`).
    pub name: String,
    /// Raw value, trimmed.
    pub value: String,
}

/// The headers of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// First value of `name` (the whole line, list or not).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a list header, across lines, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|h| same_name(&h.name, name))
            .flat_map(|h| split_list(&h.value))
            .collect()
    }

    /// Appends a header at the end.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push(Header {
            name: name.to_string(),
            value: value.to_string(),
        });
    }

    /// Inserts a value before every other value of `name` (a new line above
    /// the first such line, else at the top).
    pub fn prepend(&mut self, name: &str, value: &str) {
        let at = self
            .0
            .iter()
            .position(|h| same_name(&h.name, name))
            .unwrap_or(0);
        self.0.insert(
            at,
            Header {
                name: name.to_string(),
                value: value.to_string(),
            },
        );
    }

    /// Removes and returns the first value of list header `name`, leaving
    /// the rest of its line in place.
    pub fn pop_first(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|h| same_name(&h.name, name))?;
        let mut values: Vec<String> = split_list(&self.0[at].value)
            .into_iter()
            .map(str::to_string)
            .collect();
        if values.len() <= 1 {
            return Some(self.0.remove(at).value);
        }
        let first = values.remove(0);
        self.0[at].value = values.join(", ");
        Some(first)
    }

    /// Removes every line of `name`; returns how many.
    pub fn remove_all(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !same_name(&h.name, name));
        before - self.0.len()
    }

    /// Replaces the first line of `name` (or appends one).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|h| same_name(&h.name, name)) {
            Some(h) => h.value = value.to_string(),
            None => self.push(name, value),
        }
    }

    /// Removes every header whose name starts with `prefix` (case-insensitive), e.g. `X-Locus-`.
    pub fn remove_prefixed(&mut self, prefix: &str) -> usize {
        let before = self.0.len();
        let p = prefix.to_ascii_lowercase();
        self.0
            .retain(|h| !h.name.to_ascii_lowercase().starts_with(&p));
        before - self.0.len()
    }
}

/// `;name=value` parameters, in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `a=1;b;c=2` (without the leading `;`).
    pub fn parse(s: &str) -> Params {
        let items = s.split(';').map(str::trim).filter(|p| !p.is_empty());
        Params(
            items
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                    None => (p.to_string(), None),
                })
                .collect(),
        )
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

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
