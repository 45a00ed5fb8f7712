//! Socket set-up for the transport: listeners bound with the options a SIP
//! server needs, and bounded outbound TCP connects.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::SipError;

/// IPv6 sockets are v6-only, so `0.0.0.0:5060` and `[::]:5060` can both be
/// listeners (Linux binds `[::]` dual-stack by default, which would make the
/// second bind fail and would hide IPv4 peers behind mapped addresses).
fn socket(addr: SocketAddr, ty: socket2::Type) -> Result<socket2::Socket, SipError> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// UDP socket buffers asked for (the kernel caps them at
/// `net.core.rmem_max`/`wmem_max`): a burst of thousands of requests per
/// second must not overflow the default ~200 KiB while the receive loop is
/// busy, or phones retransmit (Kamailio probes its buffer up the same way).
const UDP_BUFFER: usize = 4 * 1024 * 1024;

pub(crate) fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SipError> {
    let sock = socket(addr, socket2::Type::DGRAM)?;
    // Best effort: a smaller buffer still works.
    if let Err(e) = sock.set_recv_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "sip.udp: receive buffer not enlarged");
    }
    if let Err(e) = sock.set_send_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "sip.udp: send buffer not enlarged");
    }
    sock.bind(&addr.into())?;
    Ok(UdpSocket::from_std(sock.into())?)
}

pub(crate) fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, SipError> {
    let sock = socket(addr, socket2::Type::STREAM)?;
    // A restarted proxy must rebind while old connections sit in TIME_WAIT.
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(TcpListener::from_std(sock.into())?)
}

/// Opens an outbound TCP connection (used by `conn::send`).
pub(crate) async fn connect(target: SocketAddr, within: Duration) -> Result<TcpStream, SipError> {
    let fut = TcpStream::connect(target);
    match tokio::time::timeout(within, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SipError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timeout",
        ))),
    }
}
