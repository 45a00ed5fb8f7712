//! The SIP parser on RFC 4475-style messages (`torture/`): valid but weird
//! ones parse with no fault and read right (folding, LWS around `/`, `:`,
//! `;`, `=`, escaped quotes, leading zeros, compact and odd-case names,
//! escapes, long values, `tel:`); invalid ones carry the fault the core
//! answers with (505, 416, 400) or fail the header reader the core uses.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use locus_proxy::sip::{Scheme, SipMessage, Via};
use support::torture::Want;

fn parse(text: &str) -> SipMessage {
    SipMessage::parse(text.replace("LOCAL", "192.0.2.10:5060").as_bytes()).unwrap()
}

fn case(name: &str) -> SipMessage {
    let c = support::torture::valid()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap();
    parse(&c.text)
}

#[test]
fn valid_but_weird_messages_parse_without_fault() {
    for c in support::torture::valid() {
        let m = parse(&c.text);
        assert_eq!(m.fault(), None, "{}", c.name);
        assert!(m.request_uri().is_some(), "{}", c.name);
        m.top_via().unwrap_or_else(|e| panic!("{}: {e}", c.name));
        m.from().unwrap_or_else(|e| panic!("{}: {e}", c.name));
        m.to().unwrap_or_else(|e| panic!("{}: {e}", c.name));
        m.contacts().unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(m.call_id().unwrap(), c.name);
        assert_eq!(m.cseq().unwrap().1, m.method().unwrap(), "{}", c.name);
        for v in m.vias() {
            Via::parse(v).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
        // Re-serialised, it reads the same.
        assert_eq!(SipMessage::parse(&m.to_bytes()).unwrap(), m, "{}", c.name);
    }
}

#[test]
fn the_tortuous_invite_reads_right() {
    let m = case("tortuous");
    let uri = m.request_uri().unwrap();
    assert_eq!(uri.params.get("unknownparam"), Some(None));
    let from = m.from().unwrap();
    assert_eq!(from.display.as_deref(), Some(r#"R. \"Ringo\" \\Starr\\"#));
    assert_eq!(from.tag(), Some("77ax"));
    assert_eq!(m.to().unwrap().uri.user_name(), Some("ringo"));
    assert_eq!(m.cseq().unwrap(), (9, "INVITE"));
    assert_eq!(m.headers.get("max-forwards"), Some("0068"));
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    let top = m.top_via().unwrap();
    assert_eq!(
        (top.transport.as_str(), top.host.as_str(), top.branch()),
        ("UDP", "192.0.2.10", Some("z9hG4bKtortuous"))
    );
    let second = Via::parse(vias[1]).unwrap();
    assert_eq!(
        (
            second.transport.as_str(),
            second.host.as_str(),
            second.branch()
        ),
        ("TCP", "spindle.example.org", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(Via::parse(vias[2]).unwrap().branch(), Some("z9hG4bK30239"));
    let contact = &m.contacts().unwrap()[0];
    assert_eq!(contact.display.as_deref(), Some(r#"Quoted string \"\""#));
    assert_eq!(contact.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.params.get("q"), Some(Some("0.33")));
    assert_eq!(
        m.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.headers.get("Subject"), Some(""));
    assert_eq!(m.content_length().unwrap(), Some(m.body.len()));
    assert!(m.body.starts_with(b"v=0"));
}

#[test]
fn escapes_long_values_and_numbers_read_right() {
    let m = case("escapes");
    assert_eq!(
        m.request_uri().unwrap().user_name(),
        Some("%61lice%20smith;ext=%00")
    );
    assert_eq!(
        m.from().unwrap().display.as_deref(),
        Some("%Z%45 is no escape")
    );
    let m = case("long");
    assert_eq!(m.vias().len(), 31);
    assert_eq!(m.headers.get("X-Long-Value").unwrap().len(), 8000);
    assert_eq!(m.from().unwrap().display.unwrap().len(), 200);
    let m = case("telinvite");
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        (ruri.scheme, ruri.user_name(), ruri.host.as_str()),
        (Scheme::Tel, Some("+390612345678"), "")
    );
    assert!(m.to().unwrap().uri.is_tel());
    assert_eq!(
        m.from().unwrap().uri.params.get("phone-context"),
        Some(Some("+39"))
    );
    assert_eq!(m.to_bytes().slice(..32), "INVITE tel:+390612345678 SIP/2.0");
    let m = case("telmessage");
    assert_eq!(m.request_uri().unwrap().user_name(), Some("7042"));
    let m = case("semiuser");
    assert_eq!(
        m.request_uri().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert_eq!(m.request_uri().unwrap().host, "farm.example.com");
}

#[test]
fn datagram_framing_by_content_length() {
    // RFC 3261 18.3: octets past Content-Length are discarded.
    let m = case("trailing");
    assert_eq!((m.method(), m.body.len()), (Some("INVITE"), 0));
    let m = case("shortlength");
    assert_eq!(&m.body[..], b"hello");
    let m = case("barelf");
    assert_eq!(m.method(), Some("OPTIONS"));
    assert_eq!(m.call_id().unwrap(), "barelf");
}

#[test]
fn invalid_messages_carry_their_answer_or_fail_the_reader() {
    for c in support::torture::invalid() {
        let m = parse(&c.text);
        let Want::Answer { status, by_parser } = c.want else {
            unreachable!()
        };
        assert!(m.is_request(), "{}", c.name);
        let fault = m.fault().map(|f| f.status);
        if by_parser {
            assert_eq!(fault, Some(status), "{}", c.name);
            continue;
        }
        assert_eq!(fault, None, "{}", c.name);
        // The header checks of the core find these (tests/proxy_malformed.rs
        // sends them through the proxy); here the readers they use fail or
        // the value is out of range.
        let readers_fail = m.from().is_err()
            || m.to().is_err()
            || m.contacts().is_err()
            || m.request_uri().is_some_and(|u| u.is_tel());
        let repeated = ["Call-ID", "From", "Max-Forwards", "CSeq"].iter().any(|h| {
            m.headers
                .0
                .iter()
                .filter(|x| locus_proxy::sip::header::same_name(&x.name, h))
                .count()
                > 1
        });
        let range = m.headers.get("Max-Forwards") == Some("300")
            || m.cseq().is_ok_and(|(n, _)| n >= 1 << 31);
        assert!(readers_fail || repeated || range, "{}", c.name);
    }
}

#[test]
fn faulty_responses_have_no_status_to_act_on() {
    for (name, text) in support::torture::faulty_responses() {
        let m = SipMessage::parse(text.as_bytes()).unwrap();
        assert!(m.fault().is_some(), "{name}");
        assert_eq!((m.status(), m.is_request()), (None, false), "{name}");
    }
}
