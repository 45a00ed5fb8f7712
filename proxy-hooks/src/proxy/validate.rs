//! The checks a request passes before the proxy does anything with it,
//! and the status and reason to answer otherwise: RFC 3261 16.3 step 1
//! ("reasonable syntax") and step 2 (URI scheme), the mandatory headers
//! of 8.1.1, and RFC 4475's invalid messages. The parser has marked what
//! it could not read ([`crate::sip::Fault`]: 505 version, 416 scheme, 400
//! Request-URI, header line or Content-Length); this adds what the proxy
//! reads of the headers.

use crate::sip::SipMessage;
use crate::sip::header::same_name;

/// Headers a request carries once (RFC 3261 20; two different values
/// leave the request ambiguous, RFC 4475 3.3.8).
const SINGLE: [(&str, &str); 5] = [
    ("From", "Duplicate From"),
    ("To", "Duplicate To"),
    ("Call-ID", "Duplicate Call-ID"),
    ("CSeq", "Duplicate CSeq"),
    ("Max-Forwards", "Duplicate Max-Forwards"),
];

/// Methods whose Request-URI may be a `tel:` number (RFC 3966 through RFC
/// 3261 19.1.6): a call or a message to a number, and the ACK and CANCEL
/// that repeat the INVITE's Request-URI (RFC 3261 9.1, 17.1.1.3). Any
/// other method with a tel R-URI gets 416.
const TEL_METHODS: [&str; 4] = ["INVITE", "ACK", "CANCEL", "MESSAGE"];

/// `Ok` when `req` (of `method`) can be processed; else the status and
/// reason phrase of the answer (an ACK is never answered).
pub(crate) fn validate(req: &SipMessage, method: &str) -> Result<(), (u16, &'static str)> {
    if let Some(f) = req.fault() {
        return Err((f.status, f.reason));
    }
    let bad = |reason| (400, reason);
    req.top_via().map_err(|_| bad("Bad Via"))?;
    req.from().map_err(|_| bad("Bad From"))?;
    let to = req.to().map_err(|_| bad("Bad To"))?;
    req.call_id().map_err(|_| bad("Bad Call-ID"))?;
    let (n, m) = req.cseq().map_err(|_| bad("Bad CSeq"))?;
    // RFC 3261 8.1.1.5: below 2**31 (RFC 4475 3.1.2.4).
    if n >= 1 << 31 {
        return Err(bad("Bad CSeq"));
    }
    if m != method {
        return Err(bad("CSeq Method Mismatch"));
    }
    // RFC 3261 20.22: an integer from 0 to 255.
    if let Some(v) = req.headers.get("Max-Forwards")
        && !(v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u8>().is_ok())
    {
        return Err(bad("Bad Max-Forwards"));
    }
    let mut seen = [0u8; SINGLE.len()];
    for h in &req.headers.0 {
        if let Some(i) = SINGLE.iter().position(|(n, _)| same_name(&h.name, n)) {
            seen[i] += 1;
            if seen[i] > 1 {
                return Err(bad(SINGLE[i].1));
            }
        }
    }
    req.contacts().map_err(|_| bad("Bad Contact"))?;
    if req.request_uri().is_some_and(|u| u.is_tel()) && !TEL_METHODS.contains(&method) {
        return Err((416, "Unsupported URI Scheme"));
    }
    // RFC 3261 10.2: the address-of-record in a REGISTER's To is SIP.
    if method == "REGISTER" && to.uri.is_tel() {
        return Err(bad("Bad To"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn req(method: &str, ruri: &str, extra: &str) -> SipMessage {
        let raw = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn answers_by_the_book() {
        let ok = |m: &str, ruri: &str, extra: &str| validate(&req(m, ruri, extra), m);
        assert_eq!(ok("INVITE", "sip:b@example.com", ""), Ok(()));
        assert_eq!(ok("INVITE", "tel:+3906123", ""), Ok(()));
        assert_eq!(
            ok("MESSAGE", "tel:7042;phone-context=example.com", ""),
            Ok(())
        );
        assert_eq!(
            ok("SUBSCRIBE", "tel:+3906123", ""),
            Err((416, "Unsupported URI Scheme"))
        );
        assert_eq!(
            ok("OPTIONS", "im:b@example.com", ""),
            Err((416, "Unsupported URI Scheme"))
        );
        for (extra, why) in [
            ("Max-Forwards: 256\r\n", "Bad Max-Forwards"),
            ("Max-Forwards: +5\r\n", "Bad Max-Forwards"),
            ("Call-ID: c2\r\n", "Duplicate Call-ID"),
            ("t: <sip:c@example.com>\r\n", "Duplicate To"),
            ("Contact: \"Joe <sip:j@h>\r\n", "Bad Contact"),
            ("Contact: <sip:j@h\r\n", "Bad Contact"),
        ] {
            assert_eq!(ok("INVITE", "sip:b@h", extra), Err((400, why)), "{extra}");
        }
        assert_eq!(ok("INVITE", "sip:b@h", "Max-Forwards: 0255\r\n"), Ok(()));
        let big = req("INVITE", "sip:b@h", "").to_bytes();
        let big = String::from_utf8_lossy(&big).replace("CSeq: 1", "CSeq: 2147483648");
        let big = SipMessage::parse(big.as_bytes()).unwrap();
        assert_eq!(validate(&big, "INVITE"), Err((400, "Bad CSeq")));
        let mut reg = req("REGISTER", "sip:example.com", "");
        reg.headers.set("To", "<tel:+3906123>");
        assert_eq!(validate(&reg, "REGISTER"), Err((400, "Bad To")));
        let mut from_tel = req("INVITE", "sip:b@h", "");
        from_tel
            .headers
            .set("From", "\"Cell\" <tel:+3906123>;tag=9");
        assert_eq!(validate(&from_tel, "INVITE"), Ok(()));
    }
}
