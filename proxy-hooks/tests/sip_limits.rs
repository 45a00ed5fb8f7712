//! Transport limits and listener choice on real loopback sockets: inbound
//! TCP capped per source IP and in total, apart from the connections the
//! proxy opens; UDP sends leave from the listener asked for.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::{Inbound, SipTransport, Transport, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

fn options(n: u32) -> String {
    format!(
        "OPTIONS sip:proxy SIP/2.0\r\nVia: SIP/2.0/TCP client;branch=z9hG4bK{n}\r\nCall-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn next(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    timeout(WAIT, rx.recv())
        .await
        .expect("no inbound message")
        .unwrap()
}

/// A client connection from `ip` that has delivered one message (so the
/// proxy has registered it).
async fn client(ip: &str, to: SocketAddr, n: u32, rx: &mut mpsc::Receiver<Inbound>) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    let mut c = s.connect(to).await.unwrap();
    c.write_all(options(n).as_bytes()).await.unwrap();
    assert_eq!(next(rx).await.msg.call_id().unwrap(), format!("c{n}"));
    c
}

/// True when the peer closed `s` (EOF or reset) within WAIT.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        timeout(WAIT, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn inbound_tcp_is_capped_per_ip_and_in_total_apart_from_outbound() {
    let cancel = CancellationToken::new();
    let cfg = TransportConfig {
        tcp: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        max_connections: 3,
        max_connections_per_ip: 2,
        max_outbound_connections: 1,
        ..Default::default()
    };
    let (t, mut rx) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    let listen = t.tcp_addrs()[0];
    let _a = client("127.0.0.1", listen, 1, &mut rx).await;
    let _b = client("127.0.0.1", listen, 2, &mut rx).await;
    // A third from the same address: over its per-IP cap, closed at once.
    let mut third = TcpStream::connect(listen).await.unwrap();
    assert!(
        closed(&mut third).await,
        "third connection from one IP kept"
    );
    assert_eq!(t.stats().refused.load(Ordering::Relaxed), 1);
    // Another address still gets in, up to the total.
    let _c = client("127.0.0.2", listen, 3, &mut rx).await;
    let s = TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut over = s.connect(listen).await.unwrap();
    assert!(closed(&mut over).await, "connection over the total kept");
    assert_eq!(t.stats().refused.load(Ordering::Relaxed), 2);
    assert_eq!(t.connection_counts(), (3, 0));

    // Inbound is full, yet the proxy still reaches a box over TCP.
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = remote.local_addr().unwrap();
    let msg = Bytes::from(options(9));
    t.send(target, Transport::Tcp, msg.clone(), None)
        .await
        .unwrap();
    let (mut peer, _) = timeout(WAIT, remote.accept()).await.unwrap().unwrap();
    let mut buf = vec![0u8; msg.len()];
    timeout(WAIT, peer.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, msg);
    assert_eq!(t.connection_counts(), (3, 1));
    // Its own pool is capped too: a second box cannot be opened.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = t
        .send(other.local_addr().unwrap(), Transport::Tcp, msg, None)
        .await;
    assert!(err.is_err(), "outbound cap not enforced");
    cancel.cancel();
    timeout(WAIT, t.closed()).await.unwrap();
}

#[tokio::test]
async fn udp_sends_leave_from_the_listener_asked_for() {
    let cancel = CancellationToken::new();
    let cfg = TransportConfig {
        udp: vec![
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.2:0".parse().unwrap(),
        ],
        ..Default::default()
    };
    let (t, mut rx) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    let (first, second) = (t.udp_addrs()[0], t.udp_addrs()[1]);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(options(1).as_bytes(), second).await.unwrap();
    let inbound = next(&mut rx).await;
    assert_eq!(inbound.local, second);
    let mut buf = [0u8; 2048];
    for (local, want) in [(Some(inbound.local), second), (None, first)] {
        t.send_from(
            local,
            inbound.source,
            Transport::Udp,
            Bytes::from_static(b"\r\n\r\n"),
            None,
        )
        .await
        .unwrap();
        let (_, from) = timeout(WAIT, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, want);
    }
    cancel.cancel();
}
