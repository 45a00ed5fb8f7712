//! A [`RouteRequest`] borrowed from a [`SipMessage`], and the borrowed
//! From/To readers it needs: routing reads user and host of three URIs,
//! the Call-ID, `Replaces` and the To tag on every request, so these
//! slice the raw header values instead of building [`crate::sip::NameAddr`]s.

use crate::request::{Method, RouteRequest, Source};
use crate::sip::SipMessage;

/// The engine's method for a SIP method token.
pub fn method_of(method: &str) -> Method {
    match method {
        "INVITE" => Method::Invite,
        "REGISTER" => Method::Register,
        _ => Method::Other,
    }
}

/// A user part without password or user parameters (`+3906;npdi` ->
/// `+3906`).
pub fn bare_user(user: &str) -> &str {
    let user = user.split(':').next().unwrap_or(user);
    user.split(';').next().unwrap_or(user)
}

/// The URI of a From/To/Contact value: inside `<>`, else up to the first
/// `;` (header parameters of an addr-spec, RFC 3261 20.10).
fn uri_of(value: &str) -> Option<&str> {
    let v = value.trim();
    match v.find('<') {
        Some(open) => {
            let rest = &v[open + 1..];
            rest.find('>').map(|close| &rest[..close])
        }
        None => v.split(';').next(),
    }
}

/// User (without password; `""` when none) and host (IPv6 without
/// brackets) of a From/To value's `sip:`/`sips:` URI; for a `tel:` URI
/// (RFC 3966), the number and an empty host.
pub fn addr_user_host(value: &str) -> Option<(&str, &str)> {
    let uri = uri_of(value)?.trim();
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.eq_ignore_ascii_case("tel") {
        return crate::sip::tel::number(rest).map(|n| (n, ""));
    }
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let rest = rest.split('?').next().unwrap_or(rest);
    let (user, hostpart) = match rest.rfind('@') {
        Some(i) => (bare_user(&rest[..i]), &rest[i + 1..]),
        None => ("", rest),
    };
    let host = match hostpart.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => hostpart.split([':', ';']).next()?,
    };
    (!host.is_empty()).then_some((user, host))
}

/// The `tag` parameter of a From/To value.
pub fn to_tag(value: &str) -> Option<&str> {
    let v = value.trim();
    let params = match v.find('<') {
        Some(open) => v[open..].split_once('>')?.1,
        None => v.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| val.trim())
            .filter(|t| !t.is_empty())
    })
}

/// The routing view of request `req` from `source`; `None` for a response.
/// Unreadable From/To leave their fields empty (the core has checked
/// syntax; routing then falls back on the R-URI).
pub fn route_request<'a>(req: &'a SipMessage, source: Source<'a>) -> Option<RouteRequest<'a>> {
    let method = req.method()?;
    let ruri = req.request_uri()?;
    let header = |n: &str| req.headers.get(n);
    let (from_user, from_domain) = header("From").and_then(addr_user_host).unwrap_or(("", ""));
    let to = header("To");
    let (to_user, to_domain) = to.and_then(addr_user_host).unwrap_or(("", ""));
    let replaces = header("Replaces")
        .and_then(|r| r.split(';').next())
        .map(str::trim)
        .filter(|c| !c.is_empty());
    Some(RouteRequest {
        method: method_of(method),
        ruri_user: ruri.user.as_deref().map_or("", bare_user),
        ruri_domain: &ruri.host,
        from_user,
        from_domain,
        to_user,
        to_domain,
        call_id: header("Call-ID").unwrap_or(""),
        replaces_call_id: replaces,
        in_dialog: to.and_then(to_tag).is_some(),
        source,
    })
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
    fn builds_the_request() {
        let raw = "INVITE sip:+390612;npdi@proxy.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
f: <sip:1001@d.example.com>;tag=1\r\n\
t: <sip:2000@d.example.com>\r\n\
i: c1@phone\r\n\
CSeq: 1 INVITE\r\n\
Replaces: old@phone;to-tag=a;from-tag=b\r\n\
Content-Length: 0\r\n\r\n";
        let m = SipMessage::parse(raw.as_bytes()).unwrap();
        let r = route_request(&m, Source::Phone).unwrap();
        assert_eq!(r.method, Method::Invite);
        assert_eq!(
            (r.ruri_user, r.ruri_domain),
            ("+390612", "proxy.example.com")
        );
        assert_eq!(
            (r.from_user, r.to_user, r.to_domain),
            ("1001", "2000", "d.example.com")
        );
        assert_eq!(
            (r.call_id, r.replaces_call_id),
            ("c1@phone", Some("old@phone"))
        );
        assert!(!r.in_dialog);
        // A tel: R-URI (RFC 3966): the number is the user, no domain.
        let tel = raw.replacen("sip:+390612;npdi@proxy.example.com", "tel:+390612;npdi", 1);
        let m = SipMessage::parse(tel.as_bytes()).unwrap();
        let r = route_request(&m, Source::Phone).unwrap();
        assert_eq!((r.ruri_user, r.ruri_domain), ("+390612", ""));
        assert_eq!(r.to_domain, "d.example.com");
    }
}
