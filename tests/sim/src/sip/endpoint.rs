//! [`Endpoint`]: the bound SIP socket, the box's SIP state, and the receive
//! loop that dispatches each datagram. Handlers run under the state lock
//! (then the core lock, always in that order) and return the datagrams to
//! send, which go out after both locks are released.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use locus_proxy::sip::{Datagram, SipMessage, parse_datagram};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use super::auth::Nonces;
use super::dialog::{Dialog, Phase};
use super::{Answer, Health, SipBinding, SipSeen, wire};
use crate::error::SimError;
use crate::server::Shared;

/// Requests remembered for [`crate::SimHandle::sip_received`].
const SEEN: usize = 10_000;
/// Past this many dialogs, finished transactions whose ACK or final
/// response never came are forgotten.
const DIALOGS: usize = 4_096;

/// Datagrams to send: bytes and destination.
pub(super) type Out = Vec<(Bytes, SocketAddr)>;

/// The box's SIP state.
#[derive(Debug, Default)]
pub(crate) struct SipState {
    pub health: Health,
    pub answer: Answer,
    pub seen: Vec<SipSeen>,
    pub nonces: Nonces,
    pub regs: HashMap<String, SipBinding>,
    /// Dialogs (and INVITE transactions awaiting their ACK) by Call-ID.
    pub dialogs: HashMap<String, Dialog>,
    /// First final status of each of the box's own INVITEs, by Call-ID.
    pub finals: HashMap<String, u16>,
}

impl SipState {
    /// Keeps the first final status of the box's INVITE `call_id`.
    pub(super) fn record_final(&mut self, call_id: &str, status: u16) {
        if self.finals.len() >= SEEN {
            self.finals.clear();
        }
        self.finals.entry(call_id.to_owned()).or_insert(status);
    }
}

/// The SIP side of one simulated box.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub socket: UdpSocket,
    /// Bound address (sent-by, Contact).
    pub local: SocketAddr,
    pub shared: Arc<Shared>,
    state: Mutex<SipState>,
    /// Where calls to users go.
    pub proxy: Option<SocketAddr>,
    /// Writers of the TCP connections, by peer.
    tcp: Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>,
}

impl Endpoint {
    /// Binds `addr` and starts the receive loop on the simulator's tracker.
    pub(crate) async fn start(
        shared: Arc<Shared>,
        addr: SocketAddr,
        proxy: Option<SocketAddr>,
    ) -> Result<Arc<Self>, SimError> {
        let bind = |source| SimError::SipBind { addr, source };
        let socket = UdpSocket::bind(addr).await.map_err(bind)?;
        let mut local = socket.local_addr().map_err(bind)?;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let ep = Arc::new(Self {
            socket,
            local,
            shared: shared.clone(),
            state: Mutex::new(SipState::default()),
            proxy,
            tcp: Mutex::new(HashMap::new()),
        });
        shared.tracker.spawn(recv_loop(ep.clone()));
        // TCP on the same port when it is free too; UDP alone otherwise.
        match TcpListener::bind(local).await {
            Ok(l) => {
                shared.tracker.spawn(super::tcp::accept_loop(ep.clone(), l));
            }
            Err(e) => tracing::warn!(sip.addr = %local, error = %e, "no SIP over TCP"),
        }
        tracing::info!(sip.addr = %local, "simulated box answering SIP");
        Ok(ep)
    }

    /// The SIP state, locked (poisoning ignored as for the core).
    pub(crate) fn state(&self) -> MutexGuard<'_, SipState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The SIP domain (realm, R-URI host of the box's own INVITEs).
    pub(super) fn domain(&self) -> String {
        self.shared.core().cfg.domain.clone()
    }

    /// The box's Contact for a dialog with `user`.
    pub(super) fn contact(&self, user: &str) -> String {
        format!("<sip:{user}@{}>", self.local)
    }

    /// TCP connections by peer, locked.
    pub(super) fn tcp_conns(&self) -> MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Bytes>>> {
        self.tcp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends messages: over the peer's TCP connection when it has one,
    /// else by UDP; a failed send is logged (the peer retransmits).
    pub(super) async fn send_all(&self, out: Out) {
        for (bytes, to) in out {
            let conn = self.tcp_conns().get(&to).cloned();
            if let Some(conn) = conn {
                if conn.send(bytes).await.is_err() {
                    tracing::debug!(peer = %to, "sip tcp connection gone");
                }
                continue;
            }
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                tracing::debug!(peer = %to, error = %e, "sip send failed");
            }
        }
    }

    fn handle(self: &Arc<Self>, data: &[u8], src: SocketAddr) -> Out {
        match parse_datagram(data) {
            Ok(Datagram::Message(m)) => self.handle_message(m, src),
            Ok(Datagram::KeepAlive) => vec![],
            Err(e) => {
                tracing::debug!(peer = %src, error = %e, "unparsable sip datagram");
                vec![]
            }
        }
    }

    /// Ends the SIP dialog `call_id` from the box's side (BYE, or 487 /
    /// CANCEL while unanswered), with its ESL legs and its partner; `false`
    /// when there is no such dialog.
    pub(crate) async fn hang_up(&self, call_id: &str) -> bool {
        let out = {
            let mut st = self.state();
            if !st.dialogs.contains_key(call_id) {
                return false;
            }
            self.end_dialog(&mut st, call_id, true)
        };
        self.send_all(out).await;
        true
    }

    /// One message from `src` (UDP or TCP).
    pub(super) fn handle_message(self: &Arc<Self>, msg: SipMessage, src: SocketAddr) -> Out {
        let mut st = self.state();
        if st.dialogs.len() > DIALOGS {
            st.dialogs
                .retain(|_, d| !matches!(d.phase, Phase::Failed | Phase::Cancelled));
        }
        if msg.is_request() {
            self.request(&mut st, msg, src)
        } else {
            self.response(&mut st, &msg)
        }
    }

    fn request(self: &Arc<Self>, st: &mut SipState, msg: SipMessage, src: SocketAddr) -> Out {
        let Ok(call_id) = msg.call_id().map(str::to_owned) else {
            return vec![];
        };
        let method = msg.method().unwrap_or_default().to_owned();
        if st.seen.len() >= SEEN {
            st.seen.remove(0);
        }
        st.seen.push(SipSeen {
            method: method.clone(),
            ruri_user: wire::ruri_user(&msg),
            from_user: wire::from_user(&msg),
            call_id: call_id.clone(),
            source: src,
            headers: msg
                .headers
                .0
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        });
        tracing::debug!(peer = %src, sip.method = %method, sip.call_id = %call_id, "sip request");
        let reply = |status| vec![(wire::respond(&msg, status, None).to_bytes(), src)];
        match method.as_str() {
            "OPTIONS" => match st.health {
                Health::Ok => {
                    let mut r = wire::respond(&msg, 200, Some(&wire::token()));
                    r.headers.push("Allow", wire::ALLOW);
                    r.headers.push("Accept", "application/sdp");
                    vec![(r.to_bytes(), src)]
                }
                Health::Unavailable => reply(503),
                Health::Silent => vec![],
            },
            "REGISTER" => self.register(st, &msg, src),
            "INVITE" => self.invite(st, msg, &call_id, src),
            "ACK" => self.ack(st, &call_id),
            "BYE" => self.bye(st, &msg, &call_id, src),
            "CANCEL" => self.cancel(st, &msg, &call_id, src),
            // In-dialog INFO, NOTIFY, UPDATE...: accepted, no effect.
            _ if st.dialogs.contains_key(&call_id) => reply(200),
            _ => {
                let mut r = wire::respond(&msg, 405, Some(&wire::token()));
                r.headers.push("Allow", wire::ALLOW);
                vec![(r.to_bytes(), src)]
            }
        }
    }
}

async fn recv_loop(ep: Arc<Endpoint>) {
    let mut buf = vec![0u8; 65_536];
    // Runs until the simulator stops; each round waits for one datagram.
    loop {
        let got = tokio::select! {
            biased;
            () = ep.shared.stop.cancelled() => return,
            r = ep.socket.recv_from(&mut buf) => r,
        };
        match got {
            Ok((n, src)) => {
                let out = ep.handle(&buf[..n], src);
                ep.send_all(out).await;
            }
            // ICMP errors from an earlier send show up here on some systems.
            Err(e) => {
                tracing::debug!(error = %e, "sip receive error");
                tokio::task::yield_now().await;
            }
        }
    }
}
