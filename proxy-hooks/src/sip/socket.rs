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

pub(crate) fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SipError> {
    let sock = socket(addr, socket2::Type::DGRAM)?;
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
