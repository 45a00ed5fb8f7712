//! Malformed input by the book, through a running proxy: RFC 4475-style
//! requests (`torture/`) over UDP are forwarded when valid but weird and
//! answered 505 / 416 / 400 when invalid, never forwarded; faulty
//! responses are dropped and counted as `malformed`; over TCP a framing
//! fault either recovers at the next message (513 for a message too large,
//! 505 for a framed one) or gets its 400 before the connection closes, and
//! a new connection works.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use locus_proxy::proxy::{Dest, DropReason, StaticRouter, Target};
use locus_proxy::sip::{MAX_MESSAGE, SipCodec, SipFrame, SipMessage, Uri};
use support::proxy::{Running, fast, start, until};
use support::torture::Want;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::codec::FramedRead;

/// A proxy whose every new request goes to `capture`.
async fn proxy_to_capture() -> (Running, UdpSocket) {
    let capture = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uri = Uri::parse(&format!("sip:{}", capture.local_addr().unwrap())).unwrap();
    let target = Target {
        dest: Dest::Uri(uri),
        ruri: None,
        node: None,
        route: Vec::new(),
    };
    let p = start(
        "127.0.0.1",
        fast(),
        Arc::new(StaticRouter::new(vec![target])),
    )
    .await
    .unwrap();
    (p, capture)
}

/// Sends `text` (`LOCAL` replaced by the sender's address) from a fresh
/// socket; the first final response, if one comes within 3 s.
async fn final_answer(to: SocketAddr, text: &str) -> Option<SipMessage> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let text = text.replace("LOCAL", &sock.local_addr().unwrap().to_string());
    sock.send_to(text.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        let m = SipMessage::parse(&buf[..n]).unwrap();
        if m.status().is_some_and(|s| s >= 200) {
            return Some(m);
        }
    }
}

/// The next request reaching `capture` whose Call-ID is `call_id`;
/// every other Call-ID seen on the way is added to `seen`.
async fn forwarded(capture: &UdpSocket, call_id: &str, seen: &mut HashSet<String>) -> SipMessage {
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, capture.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{call_id} never forwarded"))
            .unwrap();
        let m = SipMessage::parse(&buf[..n]).unwrap();
        let id = m.call_id().unwrap().to_string();
        if id == call_id {
            return m;
        }
        seen.insert(id);
    }
}

#[tokio::test]
async fn valid_but_weird_requests_are_forwarded() {
    let (p, capture) = proxy_to_capture().await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sender.local_addr().unwrap().to_string();
    let mut seen = HashSet::new();
    for c in support::torture::valid() {
        assert_eq!(c.want, Want::Accept);
        let text = c.text.replace("LOCAL", &local);
        sender.send_to(text.as_bytes(), p.udp).await.unwrap();
        let m = forwarded(&capture, c.name, &mut seen).await;
        assert_eq!(m.fault(), None, "{}", c.name);
        assert_eq!(
            m.vias().len(),
            SipMessage::parse(text.as_bytes()).unwrap().vias().len() + 1
        );
        match c.name {
            "tortuous" => assert_eq!(m.headers.get("Max-Forwards"), Some("67")),
            "telinvite" => assert_eq!(m.request_uri().unwrap().to_string(), "tel:+390612345678"),
            "telmessage" => assert_eq!(
                m.request_uri().unwrap().to_string(),
                "tel:7042;phone-context=farm.example.com"
            ),
            "shortlength" => assert_eq!(&m.body[..], b"hello"),
            "trailing" => assert_eq!(m.body.len(), 0),
            _ => {}
        }
    }
    assert!(
        !seen.contains("trailing2"),
        "octets past the datagram's message"
    );
    assert_eq!(p.stats.replies(400) + p.stats.replies(416), 0);
}

#[tokio::test]
async fn invalid_requests_are_answered_by_the_book_and_never_forwarded() {
    let (p, capture) = proxy_to_capture().await;
    let mut names = HashSet::new();
    for c in support::torture::invalid() {
        let Want::Answer { status, .. } = c.want else {
            unreachable!()
        };
        let r = final_answer(p.udp, &c.text)
            .await
            .unwrap_or_else(|| panic!("{}: no answer", c.name));
        assert_eq!(r.status(), Some(status), "{}", c.name);
        assert_eq!(r.call_id().unwrap(), c.name, "{}", c.name);
        // A To tag is added where the To can be read (RFC 3261 8.2.6.2).
        if let Ok(to) = r.to() {
            assert!(to.tag().is_some(), "{}", c.name);
        }
        names.insert(c.name.to_string());
    }
    // A valid request sent after them is the first one forwarded: the
    // proxy reads in order, so none of the invalid ones went through.
    let sentinel =
        support::torture::request("sentinel", "OPTIONS", "sip:ringo@farm.example.com", "", "");
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let text = sentinel.replace("LOCAL", &sender.local_addr().unwrap().to_string());
    sender.send_to(text.as_bytes(), p.udp).await.unwrap();
    let mut seen = HashSet::new();
    forwarded(&capture, "sentinel", &mut seen).await;
    assert!(seen.is_disjoint(&names), "forwarded: {seen:?}");
    assert_eq!(p.stats.transactions(), 1);
    assert_eq!(p.stats.replies(505), 1);
    assert_eq!(p.stats.replies(416), 5);
}

#[tokio::test]
async fn faulty_responses_are_dropped_and_counted_as_malformed() {
    let (p, _capture) = proxy_to_capture().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let responses = support::torture::faulty_responses();
    for (_, text) in &responses {
        sock.send_to(text.as_bytes(), p.udp).await.unwrap();
    }
    let n = responses.len() as u64;
    assert!(
        until(|| p.stats.dropped_for(DropReason::Malformed) == n).await,
        "malformed drops: {}",
        p.stats.dropped_for(DropReason::Malformed)
    );
    // A stray that parses (a CSeq: without one it is malformed) is counted apart.
    sock.send_to(
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKother\r\n\
          From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\n\
          CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        p.udp,
    )
    .await
    .unwrap();
    assert!(until(|| p.stats.dropped_for(DropReason::Unmatched) == 1).await);
    assert_eq!(p.stats.dropped_for(DropReason::Malformed), n);
}

/// A TCP connection to the proxy: frames read with our codec.
struct Conn {
    read: FramedRead<tokio::net::tcp::OwnedReadHalf, SipCodec>,
    write: tokio::net::tcp::OwnedWriteHalf,
    local: SocketAddr,
    pongs: usize,
}

impl Conn {
    async fn open(to: SocketAddr) -> Conn {
        let s = TcpStream::connect(to).await.unwrap();
        let local = s.local_addr().unwrap();
        let (r, w) = s.into_split();
        Conn {
            read: FramedRead::new(r, SipCodec::with_max(4 * MAX_MESSAGE)),
            write: w,
            local,
            pongs: 0,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    /// The next response, `None` at EOF (or a reset: the proxy closed);
    /// pongs (the answer to our CRLFCRLF pings) are counted.
    async fn next(&mut self) -> Option<SipMessage> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.read.next())
                .await
                .expect("nothing read within 5 s");
            match frame {
                Some(Ok(SipFrame::Message(m))) => return Some(m),
                Some(Ok(SipFrame::KeepAlive(_))) => self.pongs += 1,
                Some(Ok(other)) => panic!("unexpected {other:?}"),
                None | Some(Err(_)) => return None,
            }
        }
    }
}

/// A request over TCP to the proxy itself (answered 200 by the proxy).
fn options_to(proxy: SocketAddr, name: &str, from: SocketAddr) -> String {
    support::torture::request(
        name,
        "OPTIONS",
        &format!("sip:{proxy};transport=tcp"),
        "",
        "",
    )
    .replace("SIP/2.0/UDP LOCAL", &format!("SIP/2.0/TCP {from}"))
}

#[tokio::test]
async fn an_unreadable_length_over_tcp_gets_400_then_the_connection_closes() {
    let (p, _capture) = proxy_to_capture().await;
    let mut c = Conn::open(p.tcp).await;
    let bad = support::torture::request(
        "tcpbad",
        "MESSAGE",
        "sip:ringo@farm.example.com",
        "Content-Length: -5\r\n",
        "hello",
    )
    .replace("SIP/2.0/UDP LOCAL", &format!("SIP/2.0/TCP {}", c.local));
    c.send(bad.as_bytes()).await;
    let r = c.next().await.expect("an answer before the close");
    assert_eq!((r.status(), r.call_id().unwrap()), (Some(400), "tcpbad"));
    assert!(c.next().await.is_none(), "the connection is closed");
    // A new connection is served.
    let mut c = Conn::open(p.tcp).await;
    let ok = options_to(p.tcp, "tcpafter", c.local);
    c.send(ok.as_bytes()).await;
    let r = c.next().await.unwrap();
    assert_eq!((r.status(), r.call_id().unwrap()), (Some(200), "tcpafter"));
}

#[tokio::test]
async fn over_tcp_a_message_too_large_or_faulty_is_answered_and_the_next_is_read() {
    let (p, _capture) = proxy_to_capture().await;
    let mut c = Conn::open(p.tcp).await;
    let big_body = "b".repeat(MAX_MESSAGE + 1);
    let big = support::torture::request(
        "tcpbig",
        "MESSAGE",
        "sip:ringo@farm.example.com",
        "",
        &big_body,
    )
    .replace("SIP/2.0/UDP LOCAL", &format!("SIP/2.0/TCP {}", c.local));
    let v7 = options_to(p.tcp, "tcpv7", c.local).replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    let ok = options_to(p.tcp, "tcpnext", c.local);
    c.send(format!("{big}{v7}\r\n\r\n{ok}").as_bytes()).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let r = c.next().await.expect("connection still open");
        got.push((r.status().unwrap(), r.call_id().unwrap().to_string()));
    }
    assert_eq!(
        got,
        [
            (513, "tcpbig".to_string()),
            (505, "tcpv7".to_string()),
            (200, "tcpnext".to_string())
        ]
    );
    assert_eq!(c.pongs, 1, "the ping between them was answered");
}

#[tokio::test]
async fn over_tcp_framed_garbage_is_skipped_and_the_next_request_answered() {
    let (p, _capture) = proxy_to_capture().await;
    let mut c = Conn::open(p.tcp).await;
    // Not SIP, but framed (a blank line, a Content-Length): nothing to
    // answer (no Via), and the stream stays in step. Binary bytes in a
    // head, a start line alone, a body that looks like a request.
    let garbage: Vec<u8> = [
        &b"BROKEN LINE\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"\x01\x02\xff\xfe GARBAGE\r\nl: 12\r\n\r\nOPTIONS x\r\n\r\n",
        b"INVITE\r\nContent-Length: 0\r\n\r\n",
    ]
    .concat();
    c.send(&garbage).await;
    let ok = options_to(p.tcp, "tcp-after-garbage", c.local);
    c.send(ok.as_bytes()).await;
    let r = c.next().await.expect("the connection survived the garbage");
    assert_eq!(
        (r.status(), r.call_id().unwrap()),
        (Some(200), "tcp-after-garbage"),
        "the request after the garbage, and nothing else, is answered"
    );
    // Still in step: one more request, one more answer.
    let again = options_to(p.tcp, "tcp-again", c.local);
    c.send(again.as_bytes()).await;
    let r = c.next().await.expect("still open");
    assert_eq!((r.status(), r.call_id().unwrap()), (Some(200), "tcp-again"));
}
