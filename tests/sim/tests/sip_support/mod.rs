//! SIP test helpers: a UDP peer (a phone, or the farm's proxy) speaking
//! through the proxy crate's `SipMessage`, request builders, digest
//! responses, and a simulated box with its SIP side on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::{SipMessage, Uri};
use locus_sim::{Sim, SimConfig, SimHandle};
use md5::{Digest, Md5};
use tokio::net::UdpSocket;

/// How long a test waits for any one datagram.
pub const WAIT: Duration = Duration::from_secs(5);

/// A box answering SIP on a free port; calls for users go to `proxy`.
/// These tests play the farm's proxy toward it, so the box trusts them
/// (`auth_calls` off, an ACL in front of vanilla's `auth-calls`); the
/// challenge itself is tested in `sip_register.rs`.
pub async fn sip_sim(proxy: Option<SocketAddr>) -> SimHandle {
    Sim::start(SimConfig {
        heartbeat: None,
        sip_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        proxy,
        auth_calls: false,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// One UDP SIP peer.
pub struct Peer {
    sock: UdpSocket,
    /// Its address.
    pub addr: SocketAddr,
}

impl Peer {
    /// Binds a free loopback port.
    pub async fn bind() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        Self { sock, addr }
    }

    /// Sends a message.
    pub async fn send(&self, msg: &SipMessage, to: SocketAddr) {
        self.sock.send_to(&msg.to_bytes(), to).await.unwrap();
    }

    /// Sends raw text (CRLF line ends expected).
    pub async fn send_text(&self, text: &str, to: SocketAddr) {
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// Next datagram, parsed, with its source; panics after [`WAIT`].
    pub async fn recv(&self) -> (SipMessage, SocketAddr) {
        self.try_recv(WAIT)
            .await
            .expect("timed out waiting for SIP")
    }

    /// Next datagram within `wait`, if any.
    pub async fn try_recv(&self, wait: Duration) -> Option<(SipMessage, SocketAddr)> {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some((SipMessage::parse(&buf[..n]).unwrap(), from))
    }

    /// Next response with `status`, skipping provisional ones; any other
    /// final response or a request fails the test.
    pub async fn expect_status(&self, status: u16) -> SipMessage {
        for _ in 0..20 {
            let (m, _) = self.recv().await;
            match m.status() {
                Some(s) if s == status => return m,
                Some(s) if s < 200 => continue,
                _ => panic!("got {:?} while waiting for {status}", m.start),
            }
        }
        panic!("no {status}");
    }

    /// Next request with `method` (skipping responses and retransmissions).
    pub async fn expect_request(&self, method: &str) -> (SipMessage, SocketAddr) {
        for _ in 0..20 {
            let (m, from) = self.recv().await;
            if m.method() == Some(method) {
                return (m, from);
            }
        }
        panic!("no {method}");
    }
}

/// A request from `peer` as `from_user` to `ruri`, with the usual headers.
pub fn request(
    method: &str,
    ruri: &str,
    from_user: &str,
    peer: SocketAddr,
    call_id: &str,
    cseq: u32,
) -> SipMessage {
    let text = format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {peer};branch=z9hG4bK{call_id}{cseq}{method};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from_user}@127.0.0.1>;tag=ft{call_id}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:{from_user}@{peer}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(text.as_bytes()).unwrap()
}

/// An INVITE with SDP.
pub fn invite(ruri: &str, from_user: &str, peer: SocketAddr, call_id: &str) -> SipMessage {
    let mut m = request("INVITE", ruri, from_user, peer, call_id, 1);
    m.headers.push("Content-Type", "application/sdp");
    m.set_body(Bytes::from_static(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
    ));
    m
}

/// An in-dialog request following a response `resp` to `invite` (To with
/// the remote tag, R-URI the remote Contact, Route from Record-Route).
pub fn in_dialog(
    method: &str,
    invite: &SipMessage,
    resp: &SipMessage,
    peer: SocketAddr,
    cseq: u32,
) -> SipMessage {
    let call_id = invite.call_id().unwrap();
    let target = resp.contacts().unwrap().into_iter().next().unwrap().uri;
    let mut m = request(method, &target.to_string(), "x", peer, call_id, cseq);
    m.headers.set("From", invite.headers.get("From").unwrap());
    m.headers.set("To", resp.headers.get("To").unwrap());
    for rr in resp.headers.get_all("Record-Route").into_iter().rev() {
        m.headers.prepend("Route", rr);
    }
    m
}

/// ACK for a 2xx.
pub fn ack(invite: &SipMessage, ok: &SipMessage, peer: SocketAddr) -> SipMessage {
    let n = invite.cseq().unwrap().0;
    in_dialog("ACK", invite, ok, peer, n)
}

/// CANCEL for a pending INVITE (same branch, RFC 3261 9.1).
pub fn cancel(invite: &SipMessage) -> SipMessage {
    let mut m = invite.clone();
    let n = invite.cseq().unwrap().0;
    if let locus_proxy::sip::StartLine::Request { method, .. } = &mut m.start {
        *method = "CANCEL".into();
    }
    m.headers.set("CSeq", &format!("{n} CANCEL"));
    m.headers.remove_all("Content-Type");
    m.set_body(Bytes::new());
    m
}

/// A response from the far end (the test's proxy) to `req`.
pub fn answer(
    req: &SipMessage,
    status: u16,
    reason: &str,
    tag: &str,
    contact: Option<SocketAddr>,
) -> SipMessage {
    let mut r = req.reply(status, reason, Some(tag));
    if let Some(c) = contact {
        r.headers.push("Contact", &format!("<sip:1001@{c}>"));
    }
    r
}

/// Lower-case hex MD5.
pub fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `name="value"` parameter of a challenge.
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    let v = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    Some(v.to_owned())
}

/// The Authorization value answering `challenge` for `user`/`password`.
pub fn authorization(challenge: &str, user: &str, password: &str, uri: &str, qop: bool) -> String {
    let realm = param(challenge, "realm").unwrap();
    let nonce = param(challenge, "nonce").unwrap();
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("REGISTER:{uri}"));
    if qop {
        let (nc, cnonce) = ("00000001", "c0ffee");
        let resp = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
        )
    } else {
        let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5"
        )
    }
}

/// The user part of a request's R-URI.
pub fn ruri_user(m: &SipMessage) -> String {
    m.request_uri()
        .and_then(Uri::user_name)
        .unwrap_or_default()
        .to_owned()
}

/// Polls `f` until it holds (or panics after [`WAIT`]).
pub async fn until(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
