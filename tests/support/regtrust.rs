//! Raw SIP over UDP for the registration, carrier and trust tests: a
//! socket on any loopback address (a carrier is told apart by source
//! address), requests written by hand (malformed ones too), waiting for
//! the final response with a deadline, and answering a box's INVITE
//! challenge as a phone does.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// A UDP socket speaking raw SIP.
pub struct RawSip {
    sock: UdpSocket,
    /// Bound address (Via sent-by, Contact).
    pub local: SocketAddr,
}

impl RawSip {
    /// Binds `ip:0`.
    pub async fn bind(ip: &str) -> RawSip {
        let sock = UdpSocket::bind(format!("{ip}:0")).await.unwrap();
        let local = sock.local_addr().unwrap();
        RawSip { sock, local }
    }

    /// Sends `text` as one datagram.
    pub async fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    /// The next datagram within `limit`, as text.
    pub async fn recv(&self, limit: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65_536];
        match tokio::time::timeout(limit, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => None,
        }
    }

    /// Sends `text` and waits (up to `limit`) for a final response (1xx
    /// skipped) with the request's Call-ID (any, when it has none), so a
    /// retransmitted answer to an earlier request is not taken for it: its
    /// status and text.
    pub async fn final_response(
        &self,
        to: SocketAddr,
        text: &str,
        limit: Duration,
    ) -> Option<(u16, String)> {
        let call_id = text.lines().find(|l| l.starts_with("Call-ID:"));
        self.send(to, text).await;
        let deadline = tokio::time::Instant::now() + limit;
        // Bounded by the deadline: each round waits for one datagram.
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let got = self.recv(left).await?;
            let same_call = call_id.is_none_or(|c| got.lines().any(|l| l == c));
            if let Some(s) = status_of(&got).filter(|s| *s >= 200 && same_call) {
                return Some((s, got));
            }
        }
    }
}

impl RawSip {
    /// [`RawSip::final_response`] for an INVITE through a box that
    /// challenges it (vanilla `auth-calls`): a 407 is ACKed and the INVITE
    /// sent again as `user`/`password` (next CSeq, new branch, the
    /// `Proxy-Authorization` a phone would send); the final response to
    /// that. Any other first answer is returned as it is.
    pub async fn final_response_authed(
        &self,
        to: SocketAddr,
        text: &str,
        (user, password): (&str, &str),
        limit: Duration,
    ) -> Option<(u16, String)> {
        let (status, resp) = self.final_response(to, text, limit).await?;
        if status != 407 {
            return Some((status, resp));
        }
        let header = |t: &str, name: &str| -> Option<String> {
            t.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        };
        let challenge = header(&resp, "Proxy-Authenticate")?;
        let mut lines = text.lines();
        let start = lines.next()?;
        let uri = start.split_whitespace().nth(1)?;
        // ACK for the 407 (RFC 3261 17.1.1.3): the INVITE's Via, From,
        // Call-ID, CSeq number, the 407's To.
        let to_407 = header(&resp, "To")?;
        let mut ack = format!("ACK {uri} SIP/2.0\r\n");
        for l in text.lines().skip(1).take_while(|l| !l.is_empty()) {
            let line = if l.starts_with("To:") {
                format!("To: {to_407}")
            } else if l.starts_with("CSeq:") {
                "CSeq: 1 ACK".to_owned()
            } else if l.starts_with("Content-") || l.starts_with("Contact:") {
                continue;
            } else {
                l.to_owned()
            };
            ack.push_str(&line);
            ack.push_str("\r\n");
        }
        ack.push_str("Content-Length: 0\r\n\r\n");
        self.send(to, &ack).await;
        let auth = locus_sim::phone::answer_challenge(&challenge, "INVITE", uri, user, password)?;
        let retry = text
            .replacen("CSeq: 1 INVITE", "CSeq: 2 INVITE", 1)
            .replacen(";branch=z9hG4bK", ";branch=z9hG4bKauth", 1)
            .replacen(
                "Content-Length:",
                &format!("Proxy-Authorization: {auth}\r\nContent-Length:"),
                1,
            );
        self.final_response(to, &retry, limit).await
    }
}

/// The status code of a response's text.
pub fn status_of(text: &str) -> Option<u16> {
    let line = text.lines().next()?;
    let rest = line.strip_prefix("SIP/2.0 ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A request from `local`: `METHOD ruri`, From `from`, To `to`, a fresh
/// Call-ID and branch, `CSeq: 1 METHOD`, then `extra` lines (each ending
/// in CRLF), no body.
pub fn request(
    method: &str,
    ruri: &str,
    local: SocketAddr,
    from: &str,
    to: &str,
    extra: &str,
) -> String {
    let n = unique();
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{n:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag=t{n:x}\r\n\
         To: <{to}>\r\n\
         Call-ID: c{n:x}@test\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:test@{local}>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A number unique in this process run (tags, branches, Call-IDs).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (u64::from(nanos) << 20)
        ^ (u64::from(std::process::id()) << 40)
        ^ N.fetch_add(1, Ordering::Relaxed)
}

/// Whether some process has bound UDP `addr` (IPv4), read from
/// `/proc/net/udp` rather than by binding it, which could make the
/// process starting to listen there fail.
pub fn udp_bound(addr: std::net::SocketAddr) -> bool {
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        return false;
    };
    // The kernel prints the address as the in-memory u32 in hex.
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    );
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
    })
}
