//! Typed header values a proxy reads: [`Via`] (RFC 3261 20.42, RFC 3581
//! `rport`), [`NameAddr`] (From, To, Contact, Route, Record-Route) and
//! [`Replaces`] (RFC 3891). Each parses one value of a (possibly
//! comma-joined) header line; the raw line stays in [`super::Headers`].

use std::fmt;

use super::SipError;
use super::header::Params;
use super::uri::{Uri, UriParts, bare_user, fmt_host_port, split_host_port};

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
    /// Parses one Via value. `sent-protocol` may have linear white space
    /// around its slashes and `sent-by` around its colon (RFC 3261 25.1
    /// `SLASH`, `COLON`; RFC 4475 3.1.1.1).
    pub fn parse(value: &str) -> Result<Via, SipError> {
        let bad = || SipError::HeaderValue {
            header: "Via",
            value: value.chars().take(200).collect(),
        };
        let (sent, params) = match value.split_once(';') {
            Some((s, p)) => (s, Params::parse(p)),
            None => (value, Params::default()),
        };
        let mut parts = sent.splitn(3, '/');
        let (name, version, rest) = (parts.next(), parts.next(), parts.next());
        if !name.is_some_and(|n| n.trim().eq_ignore_ascii_case("SIP"))
            || version.map(str::trim) != Some("2.0")
        {
            return Err(bad());
        }
        let (transport, sent_by) = rest
            .map(str::trim_start)
            .and_then(|r| r.split_once(char::is_whitespace))
            .ok_or_else(bad)?;
        let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
        if transport.is_empty() || !transport.chars().all(token) {
            return Err(bad());
        }
        let sent_by = match sent_by.split_once(':') {
            Some((h, p)) if !sent_by.trim_start().starts_with('[') => {
                format!("{}:{}", h.trim(), p.trim())
            }
            _ => sent_by.trim().to_string(),
        };
        let (host, port) = split_host_port(&sent_by).ok_or_else(bad)?;
        Ok(Via {
            transport: transport.to_string(),
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
    /// Parses one name-addr or addr-spec value with a `sip:`/`sips:` URI
    /// (Contact, Route, Record-Route: addresses the proxy may send to).
    pub fn parse(value: &str) -> Result<NameAddr, SipError> {
        Self::parse_with(value, Uri::parse)
    }

    /// As [`NameAddr::parse`], a `tel:` URI accepted too (From, To).
    pub fn parse_or_tel(value: &str) -> Result<NameAddr, SipError> {
        Self::parse_with(value, Uri::parse_or_tel)
    }

    /// `[display] <uri> *(;param)` or `uri *(;param)`. The display name
    /// is a token list or a quoted string (`\` escapes); quotes and angle
    /// brackets must balance (RFC 4475 3.1.2.6), and an addr-spec has
    /// neither (RFC 3261 20.10: a URI with `,;?` must be in `<>`).
    fn parse_with(
        value: &str,
        uri: fn(&str) -> Result<Uri, SipError>,
    ) -> Result<NameAddr, SipError> {
        let parts = NameAddrParts::split(value)
            .ok_or_else(|| SipError::Uri(value.trim().chars().take(200).collect()))?;
        Ok(NameAddr {
            display: parts.display.map(str::to_string),
            uri: uri(parts.uri)?,
            params: Params::parse(parts.params),
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

/// A name-addr or addr-spec value (From, To, Contact, Route) cut into
/// borrowed parts: the one reader of these values, used by [`NameAddr`]
/// and, without allocating, by routing and policy ([`addr_user_host`],
/// [`to_tag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrParts<'a> {
    /// Display name, quotes removed.
    pub display: Option<&'a str>,
    /// The URI text, not yet checked.
    pub uri: &'a str,
    /// Header parameters after the URI, without the leading `;`.
    pub params: &'a str,
}

impl<'a> NameAddrParts<'a> {
    /// `[display] <uri> *(;param)` or `uri *(;param)`. The display name
    /// is a token list or a quoted string (`\` escapes); quotes and angle
    /// brackets must balance (RFC 4475 3.1.2.6), and an addr-spec has
    /// neither (RFC 3261 20.10: a URI with `,;?` must be in `<>`).
    pub fn split(value: &'a str) -> Option<NameAddrParts<'a>> {
        let v = value.trim();
        let (display, rest) = match v.strip_prefix('"') {
            Some(q) => {
                let close = quoted_end(q)?;
                let rest = q[close + 1..].trim_start();
                if !rest.starts_with('<') {
                    return None;
                }
                (Some(&q[..close]), rest)
            }
            None => match v.find('<') {
                Some(open) => {
                    let d = v[..open].trim();
                    if d.contains(['"', '>']) {
                        return None;
                    }
                    ((!d.is_empty()).then_some(d), &v[open..])
                }
                None => (None, v),
            },
        };
        let (uri, params) = match rest.strip_prefix('<') {
            Some(inner) => {
                let close = inner.find('>')?;
                let after = inner[close + 1..].trim_start();
                if !(after.is_empty() || after.starts_with(';')) {
                    return None;
                }
                (&inner[..close], after)
            }
            // addr-spec: parameters after the URI belong to the header (RFC 3261 20.10).
            None => match rest.find(';') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            },
        };
        if uri.contains(['<', '>', '"']) || !params_balanced(params) {
            return None;
        }
        Some(NameAddrParts {
            display,
            uri,
            params: params.strip_prefix(';').unwrap_or(params),
        })
    }
}

/// User (without password or user parameters; `""` when none) and host
/// (IPv6 without brackets) of a From/To value's `sip:`/`sips:` URI; for a
/// `tel:` URI (RFC 3966), the number and an empty host. Borrowed: routing
/// reads these on every request.
pub fn addr_user_host(value: &str) -> Option<(&str, &str)> {
    let uri = NameAddrParts::split(value)?.uri.trim();
    if let Some((scheme, rest)) = uri.split_once(':')
        && scheme.eq_ignore_ascii_case("tel")
    {
        return super::tel::number(rest).map(|n| (n, ""));
    }
    let parts = UriParts::split(uri)?;
    Some((parts.user.map_or("", bare_user), parts.host()?))
}

/// The `tag` header parameter of a From/To value.
pub fn to_tag(value: &str) -> Option<&str> {
    NameAddrParts::split(value)?
        .params
        .split(';')
        .find_map(|p| {
            let (k, val) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("tag")
                .then(|| val.trim())
                .filter(|t| !t.is_empty())
        })
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// Where a quoted string that opened just before `s` closes, `\`
/// escapes skipped; `None` when it never closes.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Header parameters after a URI: quoted values balanced, no `<>`
/// outside them (`+sip.instance="<urn:uuid:...>"` is fine).
fn params_balanced(s: &str) -> bool {
    let mut rest = s;
    while let Some(i) = rest.find(['"', '<', '>']) {
        if rest.as_bytes()[i] != b'"' {
            return false;
        }
        match quoted_end(&rest[i + 1..]) {
            Some(end) => rest = &rest[i + 1 + end + 1..],
            None => return false,
        }
    }
    true
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_host() {
        for (v, want) in [
            (
                "\"A\" <sip:1001@D.example.com>;tag=x",
                Some(("1001", "D.example.com")),
            ),
            (
                "<sips:1001:pw@[2001:db8::1]:5061;transport=tls>",
                Some(("1001", "2001:db8::1")),
            ),
            (
                "<sip:+3906;npdi@10.0.0.1:5080>;tag=1",
                Some(("+3906", "10.0.0.1")),
            ),
            ("<sip:d.example.com>", Some(("", "d.example.com"))),
            ("<sip:a@h?subject=x>", Some(("a", "h"))),
            // RFC 3261 20.10: in an addr-spec, `;` starts header parameters.
            ("sip:1001@h;tag=1", Some(("1001", "h"))),
            ("<tel:+123>", Some(("+123", ""))),
            (
                "\"Cell\" <tel:7042;phone-context=d.example.com>;tag=1",
                Some(("7042", "")),
            ),
            ("<tel:7042>", None),
            ("<sip:1001@", None),
            ("", None),
        ] {
            assert_eq!(addr_user_host(v), want, "{v}");
        }
    }

    #[test]
    fn reads_the_tag() {
        assert_eq!(to_tag("<sip:a@h;tag=uri-param>;TAG=abc"), Some("abc"));
        assert_eq!(to_tag("<sip:a@h;tag=uri-param>"), None);
        assert_eq!(to_tag("sip:a@h;x=1;tag=t2"), Some("t2"));
        assert_eq!(to_tag("sip:a@h;tag="), None);
        assert_eq!(to_tag("<sip:a@h"), None);
    }

    #[test]
    fn a_quoted_display_name_may_hold_angle_brackets() {
        let v = "\"a <b>\" <sip:1001@h;tag=uri>;tag=t1";
        assert_eq!(addr_user_host(v), Some(("1001", "h")));
        assert_eq!(to_tag(v), Some("t1"));
        assert_eq!(NameAddr::parse(v).unwrap().tag(), Some("t1"));
    }
}
