//! A small SIP phone (user agent) for the demo and the farm tests, where
//! sipp may be missing: it registers with digest auth, calls, answers and
//! hangs up over UDP through the farm's proxy. Messages go through
//! `locus_proxy::sip::SipMessage`; the digest answer is the simulator's own
//! (`sip::auth`), so phone and box agree by construction.
//!
//! Every wait is bounded ([`Phone::with_timeout`], default 10 s) and
//! requests are retransmitted on T1 doubling (RFC 3261 17.1), so a lost
//! datagram costs time, never a hang.
//!
//! Layout: `ua` (socket, state, transactions), `serve` (the receive task
//! and the answering side of BYE/CANCEL/ACK), `call` ([`PhoneCall`], the
//! INVITE client side), `incoming` ([`IncomingCall`]).

mod call;
mod incoming;
mod serve;
mod ua;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::sip::Uri;
use tokio::net::UdpSocket;

pub use call::PhoneCall;
pub use incoming::IncomingCall;
use ua::{Inner, token};

/// The `Authorization` / `Proxy-Authorization` value answering a box's
/// digest `challenge` (a 401's `WWW-Authenticate` or a 407's
/// `Proxy-Authenticate`) for `method` on `uri`, as this phone answers it:
/// for tests writing raw SIP. `None` when it is not an MD5 Digest challenge.
pub fn answer_challenge(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> Option<String> {
    crate::sip::auth::answer_challenge(challenge, method, uri, user, password)
}

/// Default bound on every wait of a phone.
pub const PHONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a phone operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The UDP socket could not be bound.
    #[error("binding the phone's socket: {0}")]
    Bind(#[source] std::io::Error),
    /// No final response (or no incoming call) in time.
    #[error("no answer to {method} within {wait:?}")]
    Timeout {
        /// What was waited for.
        method: String,
        /// For how long.
        wait: Duration,
    },
    /// The phone was dropped while waiting.
    #[error("the phone is closed")]
    Closed,
    /// A URI or request could not be built (a bad user or domain).
    #[error("cannot build the request: {0}")]
    Build(&'static str),
    /// The digest challenge cannot be answered (not MD5 Digest).
    #[error("cannot answer the challenge {0:?}")]
    Challenge(String),
    /// The call has no dialog (it failed, or was cancelled).
    #[error("no dialog: {0}")]
    NoDialog(&'static str),
}

/// One phone: a user of `domain` on its own UDP port, sending everything
/// to `proxy`. Clones share the phone; the receive task stops when the
/// last clone is dropped.
#[derive(Clone, Debug)]
pub struct Phone {
    inner: Arc<Inner>,
    _guard: Arc<StopGuard>,
    timeout: Duration,
}

#[derive(Debug)]
struct StopGuard(tokio_util::sync::CancellationToken);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Phone {
    /// Binds a free loopback UDP port and starts receiving.
    pub async fn bind(
        user: &str,
        password: &str,
        domain: &str,
        proxy: SocketAddr,
    ) -> Result<Phone, PhoneError> {
        let ip: std::net::IpAddr = if proxy.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(PhoneError::Bind)?;
        let local = sock.local_addr().map_err(PhoneError::Bind)?;
        let inner = Arc::new(Inner::new(sock, local, user, password, domain, proxy));
        tokio::spawn(serve::recv_loop(inner.clone()));
        let guard = Arc::new(StopGuard(inner.stop.clone()));
        Ok(Phone {
            inner,
            _guard: guard,
            timeout: PHONE_TIMEOUT,
        })
    }

    /// The same phone with every wait bounded by `wait`.
    pub fn with_timeout(mut self, wait: Duration) -> Phone {
        self.timeout = wait;
        self
    }

    /// The phone's user.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The phone's own address (where its socket is).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The phone as if behind a NAT: it names `private` (e.g.
    /// `192.168.1.2:5060`) in its Via, Contact and SDP while its packets
    /// come from [`Phone::local_addr`]. Set before the first request; a
    /// second call is ignored.
    pub fn behind_nat(self, private: SocketAddr) -> Phone {
        let _ = self.inner.claimed.set(private);
        self
    }

    /// The phone as an RFC 5626 client: its REGISTER Contact carries
    /// `+sip.instance` and `reg-id`. Set before the first REGISTER; a
    /// second call is ignored.
    pub fn outbound(self, instance: &str, reg_id: u32) -> Phone {
        let params = format!(";reg-id={reg_id};+sip.instance=\"<{instance}>\"");
        let _ = self.inner.reg_params.set(params);
        self
    }

    /// A dead phone (`true`): it drops everything it receives, unanswered;
    /// `false` brings it back.
    pub fn set_silent(&self, silent: bool) {
        self.inner
            .silent
            .store(silent, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every out-of-dialog OPTIONS received (answered or not): when, and
    /// from which address.
    pub fn options_received(&self) -> Vec<(std::time::Instant, SocketAddr)> {
        self.inner.state().options.clone()
    }

    /// The final response to the phone's latest REGISTER.
    pub fn last_register_response(&self) -> Option<locus_proxy::sip::SipMessage> {
        self.inner.state().reg_last.clone()
    }

    /// How many in-dialog re-INVITEs of call `call_id` the phone answered.
    pub fn reinvites_answered(&self, call_id: &str) -> u32 {
        self.inner
            .state()
            .reinvited
            .get(call_id)
            .copied()
            .unwrap_or(0)
    }

    fn uri(&self, user: Option<&str>) -> Result<Uri, PhoneError> {
        let s = match user {
            Some(u) => format!("sip:{u}@{}", self.inner.domain),
            None => format!("sip:{}", self.inner.domain),
        };
        Uri::parse(&s).map_err(|_| PhoneError::Build("user or domain is not a SIP URI"))
    }

    /// REGISTERs (`expires` 0 unregisters), answering a 401/407 digest
    /// challenge once; returns the final status. Every REGISTER of the
    /// phone shares one Call-ID with a rising CSeq (RFC 3261 10.2.4, as
    /// real phones do).
    pub async fn register(&self, expires: u32) -> Result<u16, PhoneError> {
        let inner = &self.inner;
        let aor = format!("<sip:{}@{}>", inner.user, inner.domain);
        let (call_id, first) = {
            let mut st = inner.state();
            let id = st
                .reg_call_id
                .get_or_insert_with(|| format!("{}@{}", token(), inner.me().ip()))
                .clone();
            (id, st.reg_cseq)
        };
        let from = format!("{aor};tag={}", token());
        let params = inner.reg_params.get().map_or("", String::as_str);
        let contact = format!("{}{params}", inner.contact());
        let ruri = self.uri(None)?;
        let mut auth: Option<(&str, String)> = None;
        for round in 1..=2u32 {
            let cseq = first + round;
            inner.state().reg_cseq = cseq;
            let mut h = vec![
                ("From", from.clone()),
                ("To", aor.clone()),
                ("Call-ID", call_id.clone()),
                ("CSeq", format!("{cseq} REGISTER")),
                ("Contact", contact.clone()),
                ("Expires", expires.to_string()),
            ];
            h.extend(auth.take());
            let req = inner.request("REGISTER", ruri.clone(), &h, None);
            let (_, resp) = inner.transact(&req, inner.proxy, self.timeout).await?;
            let status = resp.status().unwrap_or_default();
            match self.credentials(&resp, "REGISTER", &ruri)? {
                Some(a) if round == 1 => auth = Some(a),
                _ => {
                    inner.state().reg_last = Some(resp);
                    return Ok(status);
                }
            }
        }
        Err(PhoneError::Build("unreachable: two REGISTER rounds"))
    }

    /// For a 401/407, the header answering its challenge.
    fn credentials(
        &self,
        resp: &locus_proxy::sip::SipMessage,
        method: &str,
        ruri: &Uri,
    ) -> Result<Option<(&'static str, String)>, PhoneError> {
        let (ask, answer) = match resp.status() {
            Some(401) => ("WWW-Authenticate", "Authorization"),
            Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return Ok(None),
        };
        let challenge = resp.headers.get(ask).unwrap_or_default();
        let inner = &self.inner;
        crate::sip::auth::answer_challenge(
            challenge,
            method,
            &ruri.to_string(),
            &inner.user,
            &inner.password,
        )
        .map(|v| Some((answer, v)))
        .ok_or_else(|| PhoneError::Challenge(challenge.to_owned()))
    }

    /// Calls `to` (a user or a feature code such as `*8`, `6001`, `3001`
    /// of the phone's domain) through the proxy: INVITE, the final
    /// response within the phone's timeout, ACK. A 407 is answered once.
    /// A refused call is `Ok` with its status and no dialog.
    pub async fn call(&self, to: &str) -> Result<PhoneCall, PhoneError> {
        call::invite(self.inner.clone(), self.uri(Some(to))?, self.timeout, self).await
    }

    /// Waits up to `wait` for the next incoming INVITE (already sent 100).
    pub async fn next_call(&self, wait: Duration) -> Result<IncomingCall, PhoneError> {
        let mut rx = tokio::time::timeout(wait, self.inner.incoming.lock())
            .await
            .map_err(|_| PhoneError::Timeout {
                method: "an incoming INVITE".into(),
                wait,
            })?;
        let got = tokio::time::timeout(wait, rx.recv()).await;
        match got {
            Ok(Some(call_id)) => IncomingCall::new(self.inner.clone(), &call_id, self.timeout)
                .ok_or(PhoneError::Closed),
            Ok(None) => Err(PhoneError::Closed),
            Err(_) => Err(PhoneError::Timeout {
                method: "an incoming INVITE".into(),
                wait,
            }),
        }
    }

    /// Answering mode: the next incoming INVITE within `wait` gets 180
    /// then 200; returns the call once ACKed. A later BYE is answered by
    /// the phone ([`PhoneCall::wait_ended`] sees it).
    pub async fn answer_next(&self, wait: Duration) -> Result<PhoneCall, PhoneError> {
        let incoming = self.next_call(wait).await?;
        incoming.ring().await?;
        incoming.answer().await
    }
}
