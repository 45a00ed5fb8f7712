//! [`Uri`]: `sip:` and `sips:` URIs (RFC 3261 19.1), as a proxy reads and
//! rewrites them. Other schemes (`tel:`) are refused: the proxy routes SIP.

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
}

/// A SIP URI: `sip:user:password@host:port;params?headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// The userinfo before `@`, password included, still escaped.
    pub user: Option<String>,
    /// Host name or address; IPv6 without brackets.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;lr`, `;transport=tcp`), in order.
    pub params: Params,
    /// Raw `?headers` part, without the `?`.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a bare URI (no `<>`, no display name).
    pub fn parse(s: &str) -> Result<Uri, SipError> {
        let bad = || SipError::Uri(s.chars().take(200).collect());
        let s = s.trim();
        let (scheme, rest) = match s.split_once(':') {
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sip") => (Scheme::Sip, rest),
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sips") => (Scheme::Sips, rest),
            _ => return Err(bad()),
        };
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (rest, None),
        };
        // Userinfo may contain ';' (RFC 3261 25.1 allows it in user), so the
        // host part starts after the last '@'.
        let (user, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(rest[..i].to_string()), &rest[i + 1..]),
            None => (None, rest),
        };
        if user.as_deref() == Some("") {
            return Err(bad());
        }
        let (hostport, params) = match hostpart.split_once(';') {
            Some((hp, p)) => (hp, Params::parse(p)),
            None => (hostpart, Params::default()),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part without a password.
    pub fn user_name(&self) -> Option<&str> {
        self.user
            .as_deref()
            .map(|u| u.split(':').next().unwrap_or(u))
    }
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
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
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
        ] {
            assert!(Uri::parse(s).is_err(), "{s}");
        }
    }
}
