//! SIP message adapter: real-shaped messages, every modification a proxy
//! makes, and fuzzing (random bytes, truncations, byte flips) for panics.

#![allow(clippy::unwrap_used)] // tests may unwrap

use bytes::Bytes;
use locus_proxy::sip::{Datagram, SipError, SipMessage, StartLine, Uri, Via, parse_datagram};

const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:1000@example.com>\r\n\
From: \"Desk\" <sip:1000@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:1000@10.0.0.5:5060;transport=udp>;expires=3600, <sip:1000@[2001:db8::5]:5062>\r\n\
X-Custom-Thing: Foo ,  Bar;baz\r\n\
User-Agent: Yealink SIP-T46S\r\n\
Content-Length: 0\r\n\r\n";

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn invite() -> String {
    format!(
        "INVITE sip:*8@example.com SIP/2.0\r\n\
v: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKabc\r\n\
f: \"Alice\" <sip:1000@example.com>;tag=abc\r\n\
t: <sip:*8@example.com>\r\n\
i: call1@host\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:1000@10.0.0.5;transport=tcp>\r\n\
Route: <sip:proxy.example.com;lr>,\r\n <sip:fs1.example.com;lr>\r\n\
Replaces: abc@host;to-tag=1;from-tag=2;early-only\r\n\
X-Locus-Node: fs2\r\n\
c: application/sdp\r\n\
l: {}\r\n\r\n{}",
        SDP.len(),
        SDP
    )
}

const RESPONSE: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2;received=1.2.3.4;rport=5061\r\n\
VIA: SIP/2.0/TCP [2001:db8::9];branch=z9hG4bK3\r\n\
To: <sip:1001@example.com>;tag=xyz\r\n\
From: <sip:1000@example.com>;tag=abc\r\n\
Call-ID: call1@host\r\n\
CSeq: 1 INVITE\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn register_reads_and_round_trips() {
    let m = SipMessage::parse(REGISTER.as_bytes()).unwrap();
    assert_eq!(m.method(), Some("REGISTER"));
    assert_eq!(m.request_uri().unwrap().host, "example.com");
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.transport.as_str(), via.host.as_str(), via.port),
        ("UDP", "10.0.0.5", Some(5060))
    );
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(via.rport(), Some(None));
    assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(m.from().unwrap().display.as_deref(), Some("Desk"));
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@pc33");
    assert_eq!(m.cseq().unwrap(), (1826, "REGISTER"));
    let contacts = m.contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].params.get("expires"), Some(Some("3600")));
    assert_eq!(contacts[1].uri.host, "2001:db8::5");
    assert_eq!(contacts[1].uri.port, Some(5062));
    assert_eq!(m.headers.get("x-custom-thing"), Some("Foo ,  Bar;baz"));
    assert_eq!(m.content_length().unwrap(), Some(0));
    assert_eq!(m.to_bytes(), Bytes::from(REGISTER));
}

#[test]
fn invite_with_compact_forms_folding_and_sdp() {
    let raw = invite();
    let m = SipMessage::parse(raw.as_bytes()).unwrap();
    assert_eq!(m.request_uri().unwrap().user_name(), Some("*8"));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKabc"));
    assert_eq!(m.from().unwrap().tag(), Some("abc"));
    assert_eq!(m.call_id().unwrap(), "call1@host");
    assert_eq!(
        m.contacts().unwrap()[0].uri.params.get("transport"),
        Some(Some("tcp"))
    );
    assert_eq!(m.headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(m.body, Bytes::from(SDP));
    let routes = m.routes().unwrap();
    assert_eq!(
        routes
            .iter()
            .map(|r| r.uri.host.as_str())
            .collect::<Vec<_>>(),
        ["proxy.example.com", "fs1.example.com"]
    );
    let r = m.replaces().unwrap().unwrap();
    assert_eq!(
        (
            r.call_id.as_str(),
            r.to_tag.as_str(),
            r.from_tag.as_str(),
            r.early_only
        ),
        ("abc@host", "1", "2", true)
    );
    // Re-serialised, it parses to the same message (folding is joined).
    assert_eq!(SipMessage::parse(&m.to_bytes()).unwrap(), m);
}

#[test]
fn response_with_several_vias_per_line() {
    let mut m = SipMessage::parse(RESPONSE.as_bytes()).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.vias().len(), 3);
    assert_eq!(m.cseq().unwrap(), (1, "INVITE"));
    assert_eq!(m.record_routes().unwrap().len(), 2);
    // A proxy removes its own Via: the rest of the line stays.
    let top = m.pop_via().unwrap();
    assert!(top.contains("proxy.example.com"), "{top}");
    let next = m.top_via().unwrap();
    assert_eq!(next.received(), Some("1.2.3.4"));
    assert_eq!(next.rport(), Some(Some(5061)));
    assert_eq!(
        m.pop_via().unwrap(),
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2;received=1.2.3.4;rport=5061"
    );
    assert_eq!(m.top_via().unwrap().host, "2001:db8::9");
    assert!(m.pop_via().is_some());
    assert!(m.pop_via().is_none());
    assert!(matches!(m.top_via(), Err(SipError::Missing("Via"))));
}

#[test]
fn proxy_modifications() {
    let mut m = SipMessage::parse(invite().as_bytes()).unwrap();
    let mut via = Via::parse("SIP/2.0/UDP 192.0.2.1:5060").unwrap();
    via.params.set("branch", Some("z9hG4bKproxy1"));
    via.params.set("rport", None);
    m.push_via(&via);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKproxy1"));
    assert_eq!(m.vias().len(), 2);
    m.prepend_record_route("<sip:192.0.2.1;lr>");
    m.prepend_record_route("<sip:192.0.2.2;lr>");
    assert_eq!(m.record_routes().unwrap()[0].uri.host, "192.0.2.2");
    assert_eq!(m.pop_route().unwrap(), "<sip:proxy.example.com;lr>");
    assert_eq!(m.routes().unwrap().len(), 1);
    assert_eq!(m.decrement_max_forwards().unwrap(), 69); // absent: 70 assumed
    assert_eq!(m.decrement_max_forwards().unwrap(), 68);
    m.headers.set("Max-Forwards", "0");
    assert!(matches!(
        m.decrement_max_forwards(),
        Err(SipError::TooManyHops)
    ));
    assert_eq!(m.headers.remove_prefixed("x-locus-"), 1);
    assert_eq!(m.headers.remove_all("CALL-ID"), 1); // removes the compact `i:`
    assert!(m.call_id().is_err());
    m.set_body(Bytes::from_static(b"x"));
    let again = SipMessage::parse(&m.to_bytes()).unwrap();
    assert_eq!(again.body, Bytes::from_static(b"x"));
    assert_eq!(
        again.top_via().unwrap().to_string(),
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy1;rport"
    );
}

#[test]
fn body_framing_by_content_length() {
    let mut raw = REGISTER
        .replace("Content-Length: 0", "Content-Length: 5")
        .into_bytes();
    // RFC 3261 18.3: a datagram shorter than its Content-Length is refused.
    let short = SipMessage::parse(&raw).unwrap();
    let f = short.fault().unwrap();
    assert_eq!((f.status, f.reason), (400, "Bad Content-Length"));
    assert_eq!(short.method(), Some("REGISTER"));
    raw.extend_from_slice(b"helloEXTRA");
    assert_eq!(
        SipMessage::parse(&raw).unwrap().body,
        Bytes::from_static(b"hello")
    );
}

#[test]
fn datagrams_and_start_lines() {
    assert_eq!(parse_datagram(b"\r\n\r\n").unwrap(), Datagram::KeepAlive);
    assert_eq!(parse_datagram(b"\r\n").unwrap(), Datagram::KeepAlive);
    assert!(parse_datagram(b"").is_err());
    let ok = parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\n").unwrap();
    assert!(matches!(
        ok,
        Datagram::Message(SipMessage {
            start: StartLine::Request { .. },
            ..
        })
    ));
    // Not SIP at all: an error.
    for bad in [
        "INVITE sip:a@b HTTP/1.1\r\n\r\n",
        "INVITE\r\n\r\n",
        "\"INVITE\" sip:a@b SIP/2.0\r\n\r\n",
        "INVITE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n",
    ] {
        assert!(SipMessage::parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
    // SIP, but faulty: a request keeps its method (to be answered), a
    // response has none (to be dropped).
    for (faulty, method, status) in [
        ("SIP/2.0 99 Low\r\n\r\n", None, 400),
        ("SIP/2.0\r\n\r\n", None, 400),
        ("SIP/2.0 20x OK\r\n\r\n", None, 400),
        ("SIP/2.0 700 High\r\n\r\n", None, 400),
        ("SIP/3.0 200 OK\r\n\r\n", None, 505),
        ("INVITE sip:a@b SIP/3.0\r\n\r\n", Some("INVITE"), 505),
        ("INV ITE sip:a@b SIP/2.0\r\n\r\n", Some("INV"), 400),
        (
            "INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
            Some("INVITE"),
            400,
        ),
        (
            "INVITE sip:a@b SIP/2.0\r\n folded-first\r\n\r\n",
            Some("INVITE"),
            400,
        ),
        (
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
            Some("INVITE"),
            400,
        ),
    ] {
        let m = SipMessage::parse(faulty.as_bytes()).unwrap();
        let f = m
            .fault()
            .unwrap_or_else(|| panic!("{faulty:?} is not faulty"));
        assert_eq!((m.method(), f.status), (method, status), "{faulty:?}");
        assert_eq!(m.is_request(), method.is_some());
        assert!(m.request_uri().is_none() && m.status().is_none());
        // It re-serialises with its start line as received.
        assert!(m.to_bytes().starts_with(f.line.as_bytes()), "{faulty:?}");
    }
    assert!(SipMessage::parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n").is_err());
    // Empty reason phrase, with or without the space.
    for ok in ["SIP/2.0 180 \r\n\r\n", "SIP/2.0 180\r\n\r\n"] {
        assert_eq!(
            SipMessage::parse(ok.as_bytes()).unwrap().status(),
            Some(180),
            "{ok:?}"
        );
    }
}

#[test]
fn uri_round_trip() {
    for s in [
        "sip:a@b",
        "sips:1000@example.com:5061;transport=tls",
        "sip:[::1]:5070;lr",
        "sip:h?x=y",
    ] {
        assert_eq!(Uri::parse(s).unwrap().to_string(), s);
    }
}

/// xorshift64: deterministic, no dependency.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Runs every reader on whatever parses, so accessors are fuzzed too.
fn exercise(data: &[u8]) {
    if let Ok(mut m) = SipMessage::parse(data) {
        let _ = (
            m.top_via(),
            m.from(),
            m.to(),
            m.call_id(),
            m.cseq(),
            m.contacts(),
            m.replaces(),
        );
        let _ = (
            m.routes(),
            m.record_routes(),
            m.content_length(),
            m.decrement_max_forwards(),
        );
        let _ = m.reply(400, "Bad Request", Some("t")).to_bytes();
        let _ = m.stamp_received("[::1]:5060".parse().unwrap());
        let _ = (m.pop_via(), m.pop_route());
        let _ = SipMessage::parse(&m.to_bytes());
    }
    let _ = parse_datagram(data);
}

#[test]
fn never_panics_on_truncations_flips_and_noise() {
    let inv = invite();
    let reals = [REGISTER.as_bytes(), inv.as_bytes(), RESPONSE.as_bytes()];
    for real in reals {
        for cut in 0..real.len() {
            exercise(&real[..cut]);
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let alphabet = b"\r\n:;,<>\"@[]= \tSIP/2.0sipVvia";
    for i in 0..20_000usize {
        let real = reals[i % 3];
        let mut v = real.to_vec();
        for _ in 0..(rng(&mut seed) % 8) {
            let at = (rng(&mut seed) as usize) % v.len();
            v[at] = if i % 2 == 0 {
                rng(&mut seed) as u8
            } else {
                alphabet[(rng(&mut seed) as usize) % alphabet.len()]
            };
        }
        exercise(&v);
        let noise: Vec<u8> = (0..rng(&mut seed) % 300)
            .map(|_| rng(&mut seed) as u8)
            .collect();
        exercise(&noise);
    }
}

#[test]
fn reply_copies_dialog_headers_and_adds_a_to_tag() {
    let req = SipMessage::parse(invite().as_bytes()).unwrap();
    let trying = req.reply(100, "Trying", Some("t1"));
    assert_eq!(trying.status(), Some(100));
    assert_eq!(trying.to().unwrap().tag(), None, "no To tag on 100");
    let busy = SipMessage::parse(&req.reply(486, "Busy Here", Some("t1")).to_bytes()).unwrap();
    assert_eq!(busy.to().unwrap().tag(), Some("t1"));
    assert_eq!(busy.top_via().unwrap().branch(), Some("z9hG4bKabc"));
    assert_eq!(
        (busy.call_id().unwrap(), busy.cseq().unwrap()),
        ("call1@host", (1, "INVITE"))
    );
    assert_eq!(busy.from().unwrap().tag(), Some("abc"));
    assert!(busy.headers.get("Contact").is_none() && busy.headers.get("X-Locus-Node").is_none());
    assert_eq!(
        (busy.content_length().unwrap(), busy.body.len()),
        (Some(0), 0)
    );
    // A To that already has a tag (in-dialog) keeps it.
    let resp = SipMessage::parse(RESPONSE.as_bytes()).unwrap();
    let mut in_dialog = req.clone();
    in_dialog.headers.set("To", resp.headers.get("To").unwrap());
    assert_eq!(
        in_dialog
            .reply(481, "No Dialog", Some("t1"))
            .to()
            .unwrap()
            .tag(),
        Some("xyz")
    );
    // Every Via is kept, in order, comma-joined lines included.
    let mut two = req.clone();
    two.headers.prepend(
        "Via",
        "SIP/2.0/UDP a;branch=z9hG4bK0, SIP/2.0/UDP b;branch=z9hG4bK00",
    );
    assert_eq!(two.reply(503, "Service Unavailable", None).vias().len(), 3);
}

#[test]
fn stamp_received_and_rport() {
    // rport requested: both filled, even when the host matches (RFC 3581).
    let mut m = SipMessage::parse(REGISTER.as_bytes()).unwrap();
    m.stamp_received("10.0.0.5:40000".parse().unwrap()).unwrap();
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.received(), via.rport()),
        (Some("10.0.0.5"), Some(Some(40000)))
    );
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    // No rport, same host: untouched; other host: received only.
    let mut m = SipMessage::parse(invite().as_bytes()).unwrap();
    m.stamp_received("10.0.0.5:5060".parse().unwrap()).unwrap();
    assert_eq!(m.top_via().unwrap().received(), None);
    m.stamp_received("[2001:db8::7]:5060".parse().unwrap())
        .unwrap();
    let via = m.top_via().unwrap();
    assert_eq!((via.received(), via.rport()), (Some("2001:db8::7"), None));
    // Only the top value of a comma-joined line changes.
    let mut r = SipMessage::parse(RESPONSE.as_bytes()).unwrap();
    r.stamp_received("192.0.2.9:5060".parse().unwrap()).unwrap();
    let vias = r.vias();
    assert_eq!(vias.len(), 3);
    assert!(vias[0].ends_with(";received=192.0.2.9"), "{}", vias[0]);
    assert_eq!(
        vias[1],
        "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2;received=1.2.3.4;rport=5061"
    );
    let mut none = SipMessage::parse(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").unwrap();
    assert!(matches!(
        none.stamp_received("127.0.0.1:1".parse().unwrap()),
        Err(SipError::Missing("Via"))
    ));
}
