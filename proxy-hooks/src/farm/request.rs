//! A [`RouteRequest`] borrowed from a [`SipMessage`]: routing reads user
//! and host of three URIs, the Call-ID, `Replaces` and the To tag on every
//! request, through the sip layer's borrowed readers
//! ([`crate::sip::NameAddrParts`], [`crate::sip::UriParts`]).

use crate::routing::request::{Method, RouteRequest, Source};
use crate::sip::{SipMessage, addr_user_host, bare_user, to_tag};

/// The engine's method for a SIP method token.
pub fn method_of(method: &str) -> Method {
    match method {
        "INVITE" => Method::Invite,
        "REGISTER" => Method::Register,
        _ => Method::Other,
    }
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
