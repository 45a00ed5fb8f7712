//! The phone's user agent core: one UDP socket, the shared state, request
//! building and client transactions (RFC 3261 17.1: retransmitted on T1
//! doubling until a response, bounded by the caller's wait). The receiving
//! side is `serve`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::{Headers, NameAddr, SipMessage, StartLine, Uri};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::PhoneError;

/// RFC 3261 timer T1.
pub(super) const T1: Duration = Duration::from_millis(500);
/// RFC 3261 timer T2 (cap of non-INVITE and 2xx retransmission intervals).
pub(super) const T2: Duration = Duration::from_secs(4);
/// Retransmissions of one message at most (64*T1 in all, as timer B/F).
const TRIES: u32 = 7;

/// The answering side of one INVITE received.
#[derive(Debug)]
pub(super) struct Uas {
    pub invite: SipMessage,
    pub source: SocketAddr,
    /// The phone's To tag for this dialog.
    pub tag: String,
    /// Last response sent (resent on a retransmitted INVITE).
    pub last: Option<Bytes>,
    pub answered: bool,
    pub acked: bool,
    pub cancelled: bool,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Client transactions waiting for responses, by Via branch.
    pub waiters: HashMap<String, mpsc::UnboundedSender<SipMessage>>,
    /// The ACK of each answered INVITE of ours, by Call-ID: resent when
    /// the 2xx is retransmitted (RFC 3261 13.2.2.4).
    pub acks: HashMap<String, (Bytes, SocketAddr)>,
    /// INVITEs received, by Call-ID.
    pub uas: HashMap<String, Uas>,
    /// Dialogs the far end ended with BYE, by Call-ID.
    pub ended: HashSet<String>,
    /// In-dialog re-INVITEs answered (200), by Call-ID.
    pub reinvited: HashMap<String, u32>,
    /// Out-of-dialog OPTIONS received (keepalives): when, and from where.
    pub options: Vec<(std::time::Instant, SocketAddr)>,
    /// Call-ID of every REGISTER of the phone, once the first is sent.
    pub reg_call_id: Option<String>,
    /// CSeq of its latest REGISTER.
    pub reg_cseq: u32,
    /// The final response to its latest REGISTER.
    pub reg_last: Option<SipMessage>,
}

/// Everything the phone and its calls share.
#[derive(Debug)]
pub(super) struct Inner {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    /// The address the phone writes in its Via, Contact and SDP when it
    /// is not `local` (a phone behind NAT names its private address).
    pub claimed: std::sync::OnceLock<SocketAddr>,
    pub user: String,
    pub password: String,
    pub domain: String,
    pub proxy: SocketAddr,
    st: Mutex<State>,
    /// Woken on every state change (ACK, BYE, CANCEL received).
    pub changed: Notify,
    pub incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    pub queue: mpsc::UnboundedSender<String>,
    pub stop: CancellationToken,
    /// A dead phone: everything it receives is dropped unanswered.
    pub silent: std::sync::atomic::AtomicBool,
    /// Header parameters of its REGISTER Contact (RFC 5626 `reg-id`,
    /// `+sip.instance`), when set.
    pub reg_params: std::sync::OnceLock<String>,
}

impl Inner {
    pub(super) fn new(
        sock: UdpSocket,
        local: SocketAddr,
        user: &str,
        password: &str,
        domain: &str,
        proxy: SocketAddr,
    ) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        Self {
            sock,
            local,
            claimed: std::sync::OnceLock::new(),
            user: user.to_owned(),
            password: password.to_owned(),
            domain: domain.to_owned(),
            proxy,
            st: Mutex::new(State::default()),
            changed: Notify::new(),
            incoming: tokio::sync::Mutex::new(rx),
            queue,
            stop: CancellationToken::new(),
            silent: std::sync::atomic::AtomicBool::new(false),
            reg_params: std::sync::OnceLock::new(),
        }
    }

    /// The address the phone names itself by (Via, Contact, SDP).
    pub(super) fn me(&self) -> SocketAddr {
        self.claimed.get().copied().unwrap_or(self.local)
    }

    /// `<sip:user@me>`.
    pub(super) fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.me())
    }

    /// An SDP body on the phone's own address.
    pub(super) fn sdp(&self) -> String {
        let me = self.me();
        sdp(me.ip(), 40_000 + me.port() % 20_000)
    }

    /// The state, locked (poisoning ignored: it holds plain data).
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one datagram; a failure is logged (the far end retransmits).
    pub(super) async fn send(&self, bytes: &Bytes, to: SocketAddr) {
        if let Err(e) = self.sock.send_to(bytes, to).await {
            tracing::debug!(peer = %to, error = %e, "phone send failed");
        }
    }

    /// A request with this phone's Via (fresh branch), Max-Forwards, the
    /// given headers, and `sdp` as body.
    pub(super) fn request(
        &self,
        method: &str,
        uri: Uri,
        rest: &[(&str, String)],
        sdp: Option<String>,
    ) -> SipMessage {
        let mut h = Headers::default();
        h.push(
            "Via",
            &format!("SIP/2.0/UDP {};branch={};rport", self.me(), branch()),
        );
        h.push("Max-Forwards", "70");
        for (k, v) in rest {
            h.push(k, v);
        }
        h.push("User-Agent", "locus-sim-phone");
        let body = sdp.map(Bytes::from).unwrap_or_default();
        if !body.is_empty() {
            h.push("Content-Type", "application/sdp");
        }
        h.push("Content-Length", &body.len().to_string());
        SipMessage {
            start: StartLine::Request {
                method: method.to_owned(),
                uri,
            },
            headers: h,
            body,
        }
    }

    /// Sends `req` to `dest` and waits up to `wait` for its final response,
    /// retransmitting until any response arrives; returns the provisional
    /// statuses seen and the final response.
    pub(super) async fn transact(
        &self,
        req: &SipMessage,
        dest: SocketAddr,
        wait: Duration,
    ) -> Result<(Vec<u16>, SipMessage), PhoneError> {
        let branch = req
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .ok_or(PhoneError::Build("request without a Via branch"))?;
        let method = req.method().unwrap_or_default().to_owned();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.state().waiters.insert(branch.clone(), tx);
        let _forget = Forget(self, branch);
        let bytes = req.to_bytes();
        self.send(&bytes, dest).await;
        let deadline = tokio::time::Instant::now() + wait;
        let (mut every, mut tries) = (T1, 0);
        let mut next = Some(tokio::time::Instant::now() + every);
        let mut provisional = Vec::new();
        // Bounded by the deadline; each round takes a response or a timer.
        loop {
            let retransmit_at = next.unwrap_or(deadline).min(deadline);
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(PhoneError::Closed),
                got = rx.recv() => {
                    let Some(resp) = got else { return Err(PhoneError::Closed) };
                    match resp.status() {
                        Some(s) if s < 200 => {
                            provisional.push(s);
                            next = None;
                        }
                        Some(_) => return Ok((provisional, resp)),
                        None => {}
                    }
                }
                () = tokio::time::sleep_until(retransmit_at) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(PhoneError::Timeout { method, wait });
                    }
                    tries += 1;
                    if tries > TRIES {
                        next = None;
                        continue;
                    }
                    self.send(&bytes, dest).await;
                    // INVITE doubles without a cap (timer A), others up to T2 (timer E).
                    every = if method == "INVITE" { every * 2 } else { (every * 2).min(T2) };
                    next = Some(tokio::time::Instant::now() + every);
                }
            }
        }
    }

    /// Waits until `done` holds of the state, up to `wait`.
    pub(super) async fn until(&self, wait: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        // Each round waits for a change or the deadline.
        loop {
            let notified = self.changed.notified();
            if done(&self.state()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.state());
            }
        }
    }
}

/// Removes a transaction's waiter when it ends, however it ends.
struct Forget<'a>(&'a Inner, String);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.state().waiters.remove(&self.1);
    }
}

/// A random token for tags and Call-IDs.
pub(super) fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new Via branch with the RFC 3261 magic cookie.
pub(super) fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// The address a URI names when its host is an IP literal (no DNS here).
pub(super) fn addr_of(uri: &Uri) -> Option<SocketAddr> {
    let ip: IpAddr = uri.host.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, uri.port.unwrap_or(5060)))
}

/// The address of the first of `routes` (a loose route), if any.
pub(super) fn first_hop(routes: &[String]) -> Option<SocketAddr> {
    let first = routes.first()?;
    NameAddr::parse(first).ok().and_then(|n| addr_of(&n.uri))
}

/// A minimal SDP offer/answer (the phone sends no media).
pub(super) fn sdp(ip: IpAddr, port: u16) -> String {
    let session = rand::random::<u32>();
    format!(
        "v=0\r\no=phone {session} {session} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}
