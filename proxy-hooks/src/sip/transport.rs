//! [`SipTransport`]: the proxy's UDP and TCP listeners (IPv4 and IPv6), one
//! bounded queue of [`Inbound`] messages, and [`SipTransport::send`].
//!
//! UDP replies leave from the listening socket, so the NAT pinhole a phone
//! opened towards it stays the one in use (RFC 3581). TCP sends reuse the
//! connection a peer came in on, or one already open to it, or an accepted
//! connection remembered as serving that address (a box's own connection
//! from an ephemeral port, [`SipTransport::remember_conns`]), before opening
//! a new one (RFC 3261 18.2.2, RFC 5923). A bad message never ends a loop: it is counted
//! and logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SipError;
use super::conn::{self, ConnTable, Limits, Side};
use super::message::SipMessage;
use super::parse::{Datagram, parse_datagram};
use super::socket::{bind_tcp, bind_udp};

/// Transport a message came on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// Identifies one TCP connection for the life of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// One received message.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message.
    pub msg: SipMessage,
    /// The peer's address (what `received`/`rport` are filled from).
    pub source: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
    /// The TCP connection it came on.
    pub conn: Option<ConnId>,
    /// The local address it arrived at (which listener; for Via/Record-Route).
    pub local: SocketAddr,
}

/// Listener addresses and limits (`[proxy.sip]` in `locus.toml`; every
/// field optional, unknown keys refused).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// UDP bind addresses (port 0 in tests).
    pub udp: Vec<SocketAddr>,
    /// UDP sockets bound by the caller, used before `udp` (not from
    /// `locus.toml`): an address handed over without a free-port race (a
    /// test that must name the proxy's address before starting it).
    #[serde(skip)]
    pub udp_sockets: Vec<Arc<std::net::UdpSocket>>,
    /// TCP bind addresses. Absent (`None`): TCP on the UDP listeners'
    /// addresses (the same port when UDP binds port 0); `[]`: no TCP.
    pub tcp: Option<Vec<SocketAddr>>,
    /// Inbound queue capacity; a full queue drops (and counts) messages.
    pub queue: usize,
    /// A TCP connection idle this long is closed.
    #[serde(with = "humantime_serde")]
    pub tcp_idle: Duration,
    /// Most accepted (inbound) TCP connections at once.
    pub max_connections: usize,
    /// Most accepted TCP connections from one source IP (phones behind
    /// one NAT address share it: raise it for a large site on TCP).
    pub max_connections_per_ip: usize,
    /// Most TCP connections the proxy opens itself (to boxes, gateways,
    /// phones' flows gone): a separate pool, so inbound strangers cannot
    /// starve it.
    pub max_outbound_connections: usize,
    /// Outbound TCP connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl TransportConfig {
    /// True when some listener is configured (UDP, or TCP given explicitly).
    pub fn has_listener(&self) -> bool {
        !self.udp.is_empty()
            || !self.udp_sockets.is_empty()
            || self.tcp.as_ref().is_some_and(|t| !t.is_empty())
    }
}

/// A bound UDP socket and its address.
type UdpListener = (Arc<UdpSocket>, SocketAddr);

/// Attempts at binding TCP on the port UDP got when that was port 0 and
/// another process holds the TCP side of it.
const SAME_PORT_ATTEMPTS: usize = 8;

/// Binds the UDP listeners, then the TCP ones: `cfg.tcp`, or the UDP
/// listeners' bound addresses when it is absent. When that port came from
/// port 0 and its TCP side is taken, the pair is bound again on a fresh
/// port (bounded attempts).
fn bind_all(cfg: &TransportConfig) -> Result<(Vec<UdpListener>, Vec<TcpListener>), SipError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut udp = Vec::new();
        for handed in &cfg.udp_sockets {
            let std = handed.try_clone()?;
            std.set_nonblocking(true)?;
            let sock = UdpSocket::from_std(std)?;
            let local = sock.local_addr()?;
            udp.push((Arc::new(sock), local));
        }
        for addr in &cfg.udp {
            let sock = bind_udp(*addr)?;
            let local = sock.local_addr()?;
            udp.push((Arc::new(sock), local));
        }
        let same: Vec<SocketAddr>;
        let tcp_addrs = match &cfg.tcp {
            Some(t) => t,
            None => {
                same = udp.iter().map(|(_, a)| *a).collect();
                &same
            }
        };
        let mut tcp = Vec::new();
        let mut clash = None;
        for addr in tcp_addrs {
            match bind_tcp(*addr) {
                Ok(l) => tcp.push(l),
                Err(SipError::Io(e))
                    if cfg.tcp.is_none()
                        && e.kind() == std::io::ErrorKind::AddrInUse
                        && cfg.udp.iter().any(|a| a.port() == 0)
                        && attempt < SAME_PORT_ATTEMPTS =>
                {
                    clash = Some(*addr);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match clash {
            None => return Ok((udp, tcp)),
            Some(addr) => tracing::debug!(%addr, "sip.tcp: port taken on TCP, binding UDP again"),
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            udp: Vec::new(),
            udp_sockets: Vec::new(),
            tcp: None,
            queue: 4096,
            tcp_idle: Duration::from_secs(600),
            max_connections: 4096,
            max_connections_per_ip: 128,
            max_outbound_connections: 1024,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages delivered to the queue.
    pub received: AtomicU64,
    /// Datagrams or framed messages that did not parse.
    pub malformed: AtomicU64,
    /// Messages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Keep-alives seen.
    pub keepalives: AtomicU64,
    /// TCP connections closed on a framing error (size cap, no Content-Length).
    pub framing_errors: AtomicU64,
    /// Inbound TCP connections refused by `max_connections` or
    /// `max_connections_per_ip`.
    pub refused: AtomicU64,
}

/// Running listeners; cheap to clone.
#[derive(Clone)]
pub struct SipTransport {
    /// Each UDP socket with its bound address, read once at bind: `send`
    /// picks the socket by address family on every datagram, and
    /// `local_addr()` is a syscall.
    udp: Arc<Vec<UdpListener>>,
    tcp_addrs: Arc<Vec<SocketAddr>>,
    pub(crate) shared: Arc<Shared>,
}

/// What [`SipTransport::remember_conns`] asks: the address a request on a
/// connection from the peer shows that connection may serve.
pub type ConnHook =
    Box<dyn Fn(&SipMessage, SocketAddr) -> Option<SocketAddr> + Send + Sync + 'static>;

/// What happened on a TCP connection, for [`SipTransport::watch_conns`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// The peer answered a CRLFCRLF ping with a CRLF (RFC 5626 4.4.1).
    Pong(ConnId),
    /// The connection is gone (closed by either side, idle, reset).
    Closed(ConnId),
}

/// What [`SipTransport::watch_conns`] calls; runs on the connection's
/// task, so it must be quick and never block.
pub type ConnWatch = Box<dyn Fn(ConnEvent) + Send + Sync + 'static>;

pub(crate) struct Shared {
    pub(crate) cfg: TransportConfig,
    pub(crate) conn_hook: std::sync::OnceLock<ConnHook>,
    pub(crate) conn_watch: std::sync::OnceLock<ConnWatch>,
    pub(crate) stats: TransportStats,
    pub(crate) conns: ConnTable,
    /// One queue per proxy worker; a message goes to the one its Call-ID
    /// hashes to, so one call's messages keep their order.
    pub(crate) inbound: Vec<mpsc::Sender<Inbound>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    /// Queues a message without ever blocking a reader.
    pub(crate) fn deliver(&self, inbound: Inbound) {
        let queue = match self.inbound.as_slice() {
            [one] => one,
            all => {
                let i = inbound
                    .msg
                    .call_id()
                    .map_or(0, |id| shard_of(id.as_bytes(), all.len()));
                &all[i]
            }
        };
        match queue.try_send(inbound) {
            Ok(()) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %e.into_inner().source, "sip.inbound queue full, message dropped");
            }
        }
    }
}

/// The queue (of `n`) a Call-ID goes to: FNV-1a, cheap and stable.
fn shard_of(call_id: &[u8], n: usize) -> usize {
    let h = call_id.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(h % n.max(1) as u64).unwrap_or(0)
}

impl SipTransport {
    /// Binds every listener and starts their loops; they stop when
    /// `cancel` fires. Every inbound message arrives on the one queue.
    pub async fn bind(
        cfg: TransportConfig,
        cancel: CancellationToken,
    ) -> Result<(SipTransport, mpsc::Receiver<Inbound>), SipError> {
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        Ok((Self::start(cfg, vec![tx], cancel)?, rx))
    }

    /// Like [`SipTransport::bind`], with inbound messages spread over
    /// `workers` queues by Call-ID, and each UDP socket read by `workers`
    /// tasks (parsing in parallel).
    pub async fn bind_sharded(
        cfg: TransportConfig,
        workers: usize,
        cancel: CancellationToken,
    ) -> Result<(SipTransport, Vec<mpsc::Receiver<Inbound>>), SipError> {
        let workers = workers.max(1);
        let per_queue = (cfg.queue / workers).max(1);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::channel(per_queue)).unzip();
        Ok((Self::start(cfg, txs, cancel)?, rxs))
    }

    /// Binds the listeners and starts their loops: each UDP socket read
    /// by one task per queue in `txs`.
    fn start(
        cfg: TransportConfig,
        txs: Vec<mpsc::Sender<Inbound>>,
        cancel: CancellationToken,
    ) -> Result<SipTransport, SipError> {
        let readers = txs.len();
        let (udp, tcp) = bind_all(&cfg)?;
        let tcp_addrs = tcp
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shared {
            conns: ConnTable::new(Limits {
                inbound: cfg.max_connections,
                per_ip: cfg.max_connections_per_ip,
                outbound: cfg.max_outbound_connections,
            }),
            cfg,
            conn_hook: std::sync::OnceLock::new(),
            conn_watch: std::sync::OnceLock::new(),
            stats: TransportStats::default(),
            inbound: txs,
            cancel,
            tasks: TaskTracker::new(),
        });
        for (sock, local) in &udp {
            for _ in 0..readers {
                shared
                    .tasks
                    .spawn(udp_loop(sock.clone(), *local, shared.clone()));
            }
        }
        for listener in tcp {
            shared.tasks.spawn(accept_loop(listener, shared.clone()));
        }
        Ok(SipTransport {
            udp: Arc::new(udp),
            tcp_addrs: Arc::new(tcp_addrs),
            shared,
        })
    }

    /// Bound UDP addresses (real ports when configured with 0).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().map(|(_, a)| *a).collect()
    }

    /// Bound TCP addresses.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp_addrs.to_vec()
    }

    /// Counters.
    pub fn stats(&self) -> &TransportStats {
        &self.shared.stats
    }

    /// Open TCP connections.
    pub fn connections(&self) -> usize {
        self.shared.conns.len()
    }

    /// Open TCP connections by side: (accepted, opened by us).
    pub fn connection_counts(&self) -> (usize, usize) {
        self.shared.conns.counts()
    }

    /// Remembers open connection `conn` as the way to `addr` too (a box's
    /// listener, when the box connected from an ephemeral port: RFC 5923's
    /// connection reuse, decided by the caller): TCP sends to `addr`
    /// without a connection of their own use it while it is open. Only an
    /// accepted connection from `addr`'s IP qualifies; `false` otherwise.
    pub fn alias(&self, addr: SocketAddr, conn: ConnId) -> bool {
        self.shared.conns.alias(addr, conn)
    }

    /// Asks `which` about every request read on an accepted TCP connection
    /// (with the peer's address): the address it names, if any, is served
    /// by that connection from then on ([`SipTransport::alias`]). Set once;
    /// later calls are ignored.
    pub fn remember_conns(&self, which: ConnHook) {
        if self.shared.conn_hook.set(which).is_err() {
            tracing::warn!("sip.tcp connection hook already set; ignored");
        }
    }

    /// Tells `watch` of every pong and every closed connection (the
    /// keepalives toward phones' TCP flows). Set once; later calls are
    /// ignored.
    pub fn watch_conns(&self, watch: ConnWatch) {
        if self.shared.conn_watch.set(watch).is_err() {
            tracing::warn!("sip.tcp connection watcher already set; ignored");
        }
    }

    /// Writes `bytes` on open connection `conn` to `peer` only: never on
    /// another connection, never a new one (a phone's flow: a connection
    /// we opened would not cross its NAT).
    pub fn send_on(&self, conn: ConnId, peer: SocketAddr, bytes: Bytes) -> Result<(), SipError> {
        conn::send_on(&self.shared, conn, peer, bytes)
    }

    /// Waits until every loop and connection task has ended (after cancel).
    pub async fn closed(&self) {
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// Sends `bytes` to `target`. UDP: from the listener of the target's
    /// address family. TCP: on `conn` if still open, else on a connection
    /// already open to `target`, else on a new one.
    pub async fn send(
        &self,
        target: SocketAddr,
        transport: Transport,
        bytes: Bytes,
        conn: Option<ConnId>,
    ) -> Result<(), SipError> {
        self.send_from(None, target, transport, bytes, conn).await
    }

    /// [`SipTransport::send`], a UDP datagram leaving from the listener
    /// bound to `local` (the one a flow came in on: its NAT binding and the
    /// address the peer knows us by), else from the first of the target's
    /// address family. TCP ignores `local` (a connection has its own).
    pub async fn send_from(
        &self,
        local: Option<SocketAddr>,
        target: SocketAddr,
        transport: Transport,
        bytes: Bytes,
        conn: Option<ConnId>,
    ) -> Result<(), SipError> {
        match transport {
            Transport::Udp => {
                let family = |a: &SocketAddr| a.is_ipv4() == target.is_ipv4();
                let pinned = local.and_then(|l| self.udp.iter().find(|(_, a)| *a == l));
                let (sock, _) = pinned
                    .filter(|(_, a)| family(a))
                    .or_else(|| self.udp.iter().find(|(_, a)| family(a)))
                    .ok_or(SipError::NoListener("UDP"))?;
                sock.send_to(&bytes, target).await?;
                Ok(())
            }
            Transport::Tcp => conn::send(&self.shared, target, bytes, conn).await,
        }
    }
}

async fn udp_loop(sock: Arc<UdpSocket>, local: SocketAddr, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, source) = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // ICMP port unreachable surfaces here on some systems; the socket is fine.
                Err(e) => { tracing::debug!(error = %e, "sip.udp recv error"); continue; }
            },
        };
        match parse_datagram(&buf[..n]) {
            Ok(Datagram::Message(msg)) => shared.deliver(Inbound {
                msg,
                source,
                transport: Transport::Udp,
                conn: None,
                local,
            }),
            Ok(Datagram::KeepAlive) => {
                shared.stats.keepalives.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %source, error = %e, "sip.udp malformed datagram");
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "sip.tcp accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = conn::start(&shared, stream, peer, Side::Inbound) {
            // Dropping the stream closes it at once.
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %peer, error = %e, "sip.tcp connection refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    #[test]
    fn a_call_id_always_goes_to_the_same_queue_and_calls_spread() {
        let n = 4;
        let mut used = [0usize; 4];
        for i in 0..400 {
            let id = format!("{i}-a84b4c76e66710@pc33.atlanta.example.com");
            let q = shard_of(id.as_bytes(), n);
            assert_eq!(q, shard_of(id.as_bytes(), n), "not stable");
            used[q] += 1;
        }
        assert!(used.iter().all(|&c| c > 50), "skewed: {used:?}");
        assert_eq!(shard_of(b"x", 1), 0);
        assert_eq!(shard_of(b"x", 0), 0);
    }
}
