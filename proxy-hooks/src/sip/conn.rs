//! TCP connections of the transport: the table (by id and by peer, bounded)
//! and the per-connection task (framed reads, queued writes, RFC 5626 pong,
//! idle timeout).
//!
//! Inbound and outbound connections have separate caps, and inbound ones a
//! cap per source IP too: strangers that connect and idle must not take the
//! slots the proxy needs to reach its boxes and phones, and one host must
//! not take them all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::Instrument;

use super::SipError;
use super::codec::{KeepAlive, SipCodec, SipFrame};
use super::socket::connect;
use super::transport::{ConnEvent, ConnId, Inbound, Shared, Transport};

/// Per-connection write queue depth; a full queue fails the send (the
/// caller's transaction layer retries or fails over) rather than buffering
/// without bound behind a stalled peer.
const WRITE_QUEUE: usize = 64;

/// A peer that does not read for this long is dropped: a blocked write
/// would also stop this connection's reads.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Entry {
    peer: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    inbound: bool,
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<u64, Entry>,
    by_peer: HashMap<SocketAddr, u64>,
    inbound: usize,
    outbound: usize,
    /// Inbound connections per source IP (entries removed at zero).
    per_ip: HashMap<IpAddr, usize>,
    /// Another address an accepted connection serves (a box's listener,
    /// `SipTransport::alias`); removed with the connection.
    aliases: HashMap<SocketAddr, u64>,
}

/// The connection caps (`[proxy.sip]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Accepted connections at once.
    pub(crate) inbound: usize,
    /// Accepted connections from one IP address.
    pub(crate) per_ip: usize,
    /// Connections the proxy opens.
    pub(crate) outbound: usize,
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Accepted on a listener.
    Inbound,
    /// Opened by the proxy.
    Outbound,
}

/// Open connections. The lock is held only for map updates, never across `.await`.
pub(crate) struct ConnTable {
    maps: Mutex<Maps>,
    next: AtomicU64,
    limits: Limits,
}

impl ConnTable {
    pub(crate) fn new(limits: Limits) -> ConnTable {
        ConnTable {
            maps: Mutex::new(Maps::default()),
            next: AtomicU64::new(1),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic elsewhere while holding the lock leaves the maps consistent
        // (each update is one insert/remove), so poisoning is ignored.
        locus_schema::lock(&self.maps)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    fn insert(
        &self,
        peer: SocketAddr,
        tx: mpsc::Sender<Bytes>,
        side: Side,
    ) -> Result<ConnId, SipError> {
        let mut m = self.lock();
        let inbound = side == Side::Inbound;
        if inbound {
            if m.inbound >= self.limits.inbound {
                return Err(SipError::ConnectionLimit("max_connections"));
            }
            if m.per_ip.get(&peer.ip()).copied().unwrap_or(0) >= self.limits.per_ip {
                return Err(SipError::ConnectionLimit("max_connections_per_ip"));
            }
            m.inbound += 1;
            *m.per_ip.entry(peer.ip()).or_insert(0) += 1;
        } else {
            if m.outbound >= self.limits.outbound {
                return Err(SipError::ConnectionLimit("max_outbound_connections"));
            }
            m.outbound += 1;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        m.by_id.insert(id, Entry { peer, tx, inbound });
        m.by_peer.insert(peer, id);
        Ok(ConnId(id))
    }

    fn remove(&self, id: ConnId) {
        let mut m = self.lock();
        let Some(e) = m.by_id.remove(&id.0) else {
            return;
        };
        if m.by_peer.get(&e.peer) == Some(&id.0) {
            m.by_peer.remove(&e.peer);
        }
        if !m.aliases.is_empty() {
            m.aliases.retain(|_, c| *c != id.0);
        }
        if !e.inbound {
            m.outbound = m.outbound.saturating_sub(1);
            return;
        }
        m.inbound = m.inbound.saturating_sub(1);
        if let Some(n) = m.per_ip.get_mut(&e.peer.ip()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.per_ip.remove(&e.peer.ip());
            }
        }
    }

    /// Open connections by side: (inbound, outbound).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let m = self.lock();
        (m.inbound, m.outbound)
    }

    /// Makes accepted connection `conn` serve `addr` too, when its peer
    /// has `addr`'s IP.
    pub(crate) fn alias(&self, addr: SocketAddr, conn: ConnId) -> bool {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let mut m = self.lock();
        if m.aliases.get(&addr) == Some(&conn.0) {
            return true;
        }
        let ok = m
            .by_id
            .get(&conn.0)
            .is_some_and(|e| e.inbound && e.peer.ip().to_canonical() == addr.ip());
        if ok {
            m.aliases.insert(addr, conn.0);
        }
        ok
    }

    /// The writer of connection `conn` when it is open and its peer is `peer`.
    fn sender_on(&self, conn: ConnId, peer: SocketAddr) -> Option<mpsc::Sender<Bytes>> {
        let m = self.lock();
        m.by_id
            .get(&conn.0)
            .filter(|e| e.peer == peer)
            .map(|e| e.tx.clone())
    }

    fn sender(&self, conn: Option<ConnId>, peer: SocketAddr) -> Option<mpsc::Sender<Bytes>> {
        let m = self.lock();
        // A connection serves only its own peer: a connection id (from a
        // flow token) naming another peer's link is not used.
        let by_conn = conn
            .and_then(|c| m.by_id.get(&c.0))
            .filter(|e| e.peer == peer);
        let by_peer = || m.by_peer.get(&peer).and_then(|id| m.by_id.get(id));
        let by_alias = || {
            let canon = SocketAddr::new(peer.ip().to_canonical(), peer.port());
            m.aliases.get(&canon).and_then(|id| m.by_id.get(id))
        };
        by_conn
            .or_else(by_peer)
            .or_else(by_alias)
            .map(|e| e.tx.clone())
    }
}

/// Registers `stream` and spawns its task; refused past the caps.
pub(crate) fn start(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    side: Side,
) -> Result<mpsc::Sender<Bytes>, SipError> {
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let id = shared.conns.insert(peer, tx.clone(), side)?;
    tracing::debug!(peer = %peer, conn = id.0, "sip.tcp connection open");
    let span = tracing::debug_span!("sip.tcp", peer = %peer, conn = id.0);
    let task = run(shared.clone(), stream, peer, id, rx).instrument(span);
    shared.tasks.spawn(task);
    Ok(tx)
}

/// Writes on connection `conn` to `peer` only (no other, no new one).
pub(crate) fn send_on(
    shared: &Shared,
    conn: ConnId,
    peer: SocketAddr,
    bytes: Bytes,
) -> Result<(), SipError> {
    let tx = shared
        .conns
        .sender_on(conn, peer)
        .ok_or(SipError::ConnectionBusy(peer))?;
    tx.try_send(bytes)
        .map_err(|_| SipError::ConnectionBusy(peer))
}

/// Sends on an existing connection, or opens one.
pub(crate) async fn send(
    shared: &Arc<Shared>,
    target: SocketAddr,
    bytes: Bytes,
    conn: Option<ConnId>,
) -> Result<(), SipError> {
    let tx = match shared.conns.sender(conn, target) {
        Some(tx) => tx,
        None => start(
            shared,
            connect(target, shared.cfg.connect_timeout).await?,
            target,
            Side::Outbound,
        )?,
    };
    tx.try_send(bytes)
        .map_err(|_| SipError::ConnectionBusy(target))
}

async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: ConnId,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return shared.conns.remove(id),
    };
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, SipCodec::default());
    let idle = shared.cfg.tcp_idle;
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = &mut timer => {
                tracing::debug!(peer = %peer, conn = id.0, "sip.tcp idle, closing");
                break;
            }
            out = rx.recv() => {
                let Some(bytes) = out else { break };
                if bytes[..] == *b"\r\n\r\n" {
                    frames.decoder_mut().expect_pong();
                }
                match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "sip.tcp write failed");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, "sip.tcp peer not reading, closing");
                        break;
                    }
                }
            }
            frame = frames.next() => {
                if !on_frame(&shared, frame, &mut write, (peer, id, local)).await {
                    break;
                }
            }
        }
        timer.as_mut().reset(tokio::time::Instant::now() + idle);
    }
    shared.conns.remove(id);
    if let Some(watch) = shared.conn_watch.get() {
        watch(ConnEvent::Closed(id));
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, write.shutdown()).await;
    tracing::debug!(peer = %peer, conn = id.0, "sip.tcp connection closed");
}

/// Handles one read result; `false` ends the connection.
async fn on_frame(
    shared: &Shared,
    frame: Option<Result<SipFrame, SipError>>,
    write: &mut OwnedWriteHalf,
    (peer, id, local): (SocketAddr, ConnId, SocketAddr),
) -> bool {
    match frame {
        None => false,
        Some(Ok(SipFrame::Message(msg))) => {
            if msg.method().is_some()
                && let Some(addr) = shared.conn_hook.get().and_then(|h| h(&msg, peer))
                && shared.conns.alias(addr, id)
            {
                tracing::debug!(peer = %peer, conn = id.0, %addr, "sip.tcp connection serves a node");
            }
            let transport = Transport::Tcp;
            shared.deliver(Inbound {
                msg,
                source: peer,
                transport,
                conn: Some(id),
                local,
            });
            true
        }
        Some(Ok(SipFrame::KeepAlive(kind))) => {
            shared.stats.keepalives.fetch_add(1, Ordering::Relaxed);
            if kind == KeepAlive::Pong {
                if let Some(watch) = shared.conn_watch.get() {
                    watch(ConnEvent::Pong(id));
                }
                return true;
            }
            // RFC 5626 4.4.1: a CRLFCRLF ping is answered with one CRLF.
            let pong = tokio::time::timeout(WRITE_TIMEOUT, write.write_all(b"\r\n")).await;
            matches!(pong, Ok(Ok(())))
        }
        Some(Ok(SipFrame::Invalid { error, .. })) => {
            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %peer, error = %error, "sip.tcp malformed message");
            true
        }
        Some(Err(e)) => {
            // Framing lost (size cap, no Content-Length): the stream cannot resync.
            shared.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %peer, error = %e, "sip.tcp framing error, closing");
            // RFC 3261 18.3: the request whose head was read still gets its 400 (or 513).
            if let Some(answer) = e.answer() {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, write.write_all(answer)).await;
            }
            false
        }
    }
}
