//! [`Uri`]: `sip:` and `sips:` URIs (RFC 3261 19.1), as a proxy reads and
//! rewrites them, and `tel:` URIs (RFC 3966, syntax in [`super::tel`])
//! where a phone may put a number instead: [`Uri::parse`] takes SIP only
//! (Route, Contact, configuration: what the proxy may send to),
//! [`Uri::parse_or_tel`] takes a number too (Request-URI, From, To).

use std::fmt;

use super::SipError;
use super::header::Params;

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966): a number, no host.
    Tel,
}

impl Scheme {
    /// The port a URI of this scheme means when it names none (RFC 3263
    /// 4.2: 5060, 5061 for TLS); a `tel:` URI has no host, so no port of
    /// its own: 5060 keeps a comparison with a host address false.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Sip | Scheme::Tel => 5060,
            Scheme::Sips => 5061,
        }
    }
}

/// What the scheme of a Request-URI is, to choose between 400 and 416
/// (RFC 3261 8.2.2.1, 16.3 step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemeOf {
    /// `sip`, `sips` or `tel`.
    Known,
    /// A well-formed scheme the proxy does not serve (`im:`, `http:`).
    Unknown,
    /// Not `scheme ":" ...` at all (`<sip:...>`, no colon).
    Invalid,
}

/// Classifies the scheme of `s` (RFC 3986 3.1: `ALPHA *(ALPHA / DIGIT /
/// "+" / "-" / ".")`).
pub(crate) fn scheme_of(s: &str) -> SchemeOf {
    let Some((scheme, _)) = s.split_once(':') else {
        return SchemeOf::Invalid;
    };
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    match () {
        _ if !well_formed => SchemeOf::Invalid,
        _ if ["sip", "sips", "tel"]
            .iter()
            .any(|k| scheme.eq_ignore_ascii_case(k)) =>
        {
            SchemeOf::Known
        }
        _ => SchemeOf::Unknown,
    }
}

/// Every `%` starts an escape of two hex digits (RFC 3261 25.1 `escaped`).
pub(crate) fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// A character a SIP URI may carry unescaped (RFC 3261 25.1: unreserved,
/// reserved, `%` escapes, `[]` of IPv6 references). Space, `"`, `<`,
/// `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, controls and non-ASCII must be
/// escaped. `#` is tolerated: phones dial `*97#` without escaping it.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/:@[]%#".contains(c)
}

/// A SIP URI, `sip:user:password@host:port;params?headers`, or a tel URI,
/// `tel:number;params` (then `user` is the number, `host` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel`.
    pub scheme: Scheme,
    /// The userinfo before `@`, password included, still escaped; for
    /// `tel:`, the number as written.
    pub user: Option<String>,
    /// Host name or address; IPv6 without brackets; empty for `tel:`.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;lr`, `;transport=tcp`), in order.
    pub params: Params,
    /// Raw `?headers` part, without the `?`.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a bare `sip:`/`sips:` URI (no `<>`, no display name):
    /// anything else, `tel:` included, is an error.
    pub fn parse(s: &str) -> Result<Uri, SipError> {
        let bad = || SipError::Uri(s.trim().chars().take(200).collect());
        let p = UriParts::split(s).ok_or_else(bad)?;
        let (host, port) = split_host_port(p.hostport).ok_or_else(bad)?;
        Ok(Uri {
            scheme: p.scheme,
            user: p.user.map(str::to_string),
            host,
            port,
            params: p.params.map(Params::parse).unwrap_or_default(),
            headers: p.headers.map(str::to_string),
        })
    }

    /// Parses a `sip:`, `sips:` or `tel:` URI: where RFC 3261 lets a
    /// number stand for a SIP address (Request-URI, From, To).
    pub fn parse_or_tel(s: &str) -> Result<Uri, SipError> {
        let s = s.trim();
        let Some((_, rest)) = s
            .split_once(':')
            .filter(|(sc, _)| sc.eq_ignore_ascii_case("tel"))
        else {
            return Uri::parse(s);
        };
        let (number, params) =
            super::tel::split(rest).ok_or_else(|| SipError::Uri(s.chars().take(200).collect()))?;
        Ok(Uri {
            scheme: Scheme::Tel,
            user: Some(number.to_string()),
            host: String::new(),
            port: None,
            params: Params::parse(params),
            headers: None,
        })
    }

    /// Whether this is a `tel:` URI.
    pub fn is_tel(&self) -> bool {
        self.scheme == Scheme::Tel
    }

    /// The user part without a password.
    pub fn user_name(&self) -> Option<&str> {
        self.user
            .as_deref()
            .map(|u| u.split(':').next().unwrap_or(u))
    }
}

/// A `sip:`/`sips:` URI cut into borrowed parts, checked as
/// [`Uri::parse`] checks it: the one URI reader of the crate ([`Uri::parse`]
/// owns its parts; routing reads them in place on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriParts<'a> {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// Userinfo (password and user parameters included), never empty.
    pub user: Option<&'a str>,
    /// `host[:port]` / `[v6][:port]`, not yet checked.
    pub hostport: &'a str,
    /// URI parameters after the first `;` of the host part.
    pub params: Option<&'a str>,
    /// Headers after `?`.
    pub headers: Option<&'a str>,
}

impl<'a> UriParts<'a> {
    /// Cuts `s`; `None` for another scheme, characters a URI may not hold,
    /// bad escapes or an empty user.
    pub fn split(s: &'a str) -> Option<UriParts<'a>> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once(':') {
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sip") => (Scheme::Sip, rest),
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sips") => (Scheme::Sips, rest),
            _ => return None,
        };
        if !rest.chars().all(is_uri_char) || !escapes_ok(rest) {
            return None;
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h)),
            None => (rest, None),
        };
        // Userinfo may contain ';' (RFC 3261 25.1 allows it in user), so the
        // host part starts after the last '@'.
        let (user, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        if user == Some("") {
            return None;
        }
        let (hostport, params) = match hostpart.split_once(';') {
            Some((hp, p)) => (hp, Some(p)),
            None => (hostpart, None),
        };
        Some(UriParts {
            scheme,
            user,
            hostport,
            params,
            headers,
        })
    }

    /// The host (IPv6 without brackets), borrowed; `None` when malformed.
    pub fn host(&self) -> Option<&'a str> {
        let hp = self.hostport.trim();
        let host = match hp.strip_prefix('[') {
            Some(v6) => v6.split_once(']')?.0,
            None => hp.split(':').next()?,
        };
        (!host.is_empty()).then_some(host)
    }
}

/// A user part without password or user parameters (`+3906;npdi` ->
/// `+3906`).
pub fn bare_user(user: &str) -> &str {
    let user = user.split(':').next().unwrap_or(user);
    user.split(';').next().unwrap_or(user)
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when malformed.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if host.is_empty() || !host.contains(':') {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (s, None),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    Some((host.to_string(), port))
}

/// Writes `host[:port]`, bracketing IPv6.
pub(crate) fn fmt_host_port(f: &mut impl fmt::Write, host: &str, port: Option<u16>) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")?;
    } else {
        f.write_str(host)?;
    }
    match port {
        Some(p) => write!(f, ":{p}"),
        None => Ok(()),
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme == Scheme::Tel {
            f.write_str("tel:")?;
            f.write_str(self.user.as_deref().unwrap_or_default())?;
            return write!(f, "{}", self.params);
        }
        f.write_str(match self.scheme {
            Scheme::Sips => "sips:",
            _ => "sip:",
        })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        fmt_host_port(f, &self.host, self.port)?;
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let u = Uri::parse("sip:1000:pw@example.com:5080;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user_name(), Some("1000"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.params.get("transport"), Some(Some("tcp")));
        assert_eq!(u.params.get("LR"), Some(None));
        assert_eq!(
            u.to_string(),
            "sip:1000:pw@example.com:5080;transport=tcp;lr?subject=x"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let u = Uri::parse("sips:[::1]:5061").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(5061)));
        assert_eq!(u.to_string(), "sips:[::1]:5061");
        assert!(Uri::parse("sip:[::1").is_err());
        assert!(Uri::parse("sip:::1").is_err());
    }

    #[test]
    fn refuses_garbage() {
        for s in [
            "",
            "tel:+123",
            "sip:",
            "sip:@host",
            "sip:a b",
            "sip:h:99999",
            "sip:h:",
            "sip:a\"b@h",
            "sip:a<b@h",
            "sip:%zz@h",
            "sip:a@h%2",
            "sip:caf\u{e9}@h",
            "sip:a\tb@h",
        ] {
            assert!(Uri::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn tel_only_where_asked() {
        let t = Uri::parse_or_tel("TEL:+1-201-555-0123;phone-context=+1").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert!(t.is_tel());
        assert_eq!(
            (t.user_name(), t.host.as_str()),
            (Some("+1-201-555-0123"), "")
        );
        assert_eq!(t.params.get("phone-context"), Some(Some("+1")));
        assert_eq!(t.to_string(), "tel:+1-201-555-0123;phone-context=+1");
        assert_eq!(
            Uri::parse_or_tel("sip:%61lice@h").unwrap().user_name(),
            Some("%61lice")
        );
        assert!(Uri::parse("tel:+1555").is_err(), "SIP only");
        assert!(
            Uri::parse_or_tel("tel:1555").is_err(),
            "local needs a context"
        );
        assert!(Uri::parse_or_tel("im:a@b").is_err());
    }

    #[test]
    fn schemes_for_400_or_416() {
        for (s, want) in [
            ("sip:a@b", SchemeOf::Known),
            ("SIPS:b", SchemeOf::Known),
            ("tel:+1", SchemeOf::Known),
            ("nobodyKnowsThisScheme:opaque", SchemeOf::Unknown),
            ("soap.beep://192.0.2.1:3002", SchemeOf::Unknown),
            ("<sip:a@b>", SchemeOf::Invalid),
            ("1abc:x", SchemeOf::Invalid),
            ("nocolon", SchemeOf::Invalid),
        ] {
            assert_eq!(scheme_of(s), want, "{s}");
        }
        assert_eq!(Scheme::Sips.default_port(), 5061);
    }
}
