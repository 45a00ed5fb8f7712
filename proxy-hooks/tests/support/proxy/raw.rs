//! Scripted SIP peers on raw UDP sockets: a caller or a box whose every
//! message the test decides, for orderings sipp cannot express (a box that
//! answers only after another one did). Every wait has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use locus_proxy::proxy::{Dest, Target};
use locus_proxy::sip::{SipMessage, Uri};
use tokio::net::UdpSocket;

/// One scripted peer.
pub struct Peer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    /// A peer on a fresh port of `ip`.
    pub async fn bind(ip: &str) -> Peer {
        let sock = UdpSocket::bind((ip, 0)).await.unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }

    /// A serial/parallel target for it (plain `sip:ip:port`, UDP by default).
    pub fn target(&self) -> Target {
        Target {
            dest: Dest::Uri(Uri::parse(&format!("sip:{}", self.addr)).unwrap()),
            ruri: None,
            node: None,
            route: Vec::new(),
        }
    }

    /// Sends `text` (`LOCAL` becomes our address, `\n` CRLF).
    pub async fn send(&self, to: SocketAddr, text: &str) {
        let text = text
            .replace("LOCAL", &self.addr.to_string())
            .replace('\n', "\r\n");
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// The next message for which `want` holds, within `within`; others
    /// (retransmissions, ...) are skipped. `None` on timeout.
    pub async fn expect(
        &self,
        within: Duration,
        want: impl Fn(&SipMessage) -> bool,
    ) -> Option<(SipMessage, SocketAddr)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = vec![0u8; 65535];
        loop {
            let r = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let (n, from) = r.ok()?.unwrap();
            let Ok(m) = SipMessage::parse(&buf[..n]) else {
                continue;
            };
            if want(&m) {
                return Some((m, from));
            }
        }
    }

    /// The next request with `method` within 5 s (panics otherwise).
    pub async fn request(&self, method: &str) -> (SipMessage, SocketAddr) {
        self.expect(Duration::from_secs(5), |m| m.method() == Some(method))
            .await
            .unwrap_or_else(|| panic!("{} got no {method}", self.addr))
    }

    /// Everything already received, without waiting.
    pub fn pending(&self) -> Vec<SipMessage> {
        let mut buf = vec![0u8; 65535];
        let mut out = Vec::new();
        for _ in 0..1000 {
            let Ok((n, _)) = self.sock.try_recv_from(&mut buf) else {
                break;
            };
            if let Ok(m) = SipMessage::parse(&buf[..n]) {
                out.push(m);
            }
        }
        out
    }

    /// Answers `req` (received from `to`) as a box: Record-Route echoed,
    /// our Contact, To tag `tag` (none on 100).
    pub async fn answer(
        &self,
        req: &SipMessage,
        to: SocketAddr,
        status: u16,
        reason: &str,
        tag: &str,
    ) {
        let mut resp = req.reply(status, reason, Some(tag));
        for rr in req.headers.get_all("Record-Route") {
            resp.headers.push("Record-Route", rr);
        }
        resp.headers
            .push("Contact", &format!("<sip:box@{}>", self.addr));
        self.sock.send_to(&resp.to_bytes(), to).await.unwrap();
    }
}

/// An INVITE from `LOCAL` for `user`, Call-ID `call`.
pub fn invite(user: &str, call: &str) -> String {
    format!(
        "INVITE sip:{user}@example.com SIP/2.0\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK{call};rport\n\
         From: <sip:a@example.com>;tag=caller\nTo: <sip:{user}@example.com>\nCall-ID: {call}\n\
         CSeq: 1 INVITE\nContact: <sip:a@LOCAL>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    )
}

/// The To tag of a message.
pub fn to_tag(m: &SipMessage) -> Option<String> {
    m.to().ok().and_then(|t| t.tag().map(str::to_string))
}
