//! UDP and TCP transport on real loopback sockets (IPv4, and IPv6 when the
//! host has `::1`): delivery, replies from the same socket / connection,
//! outbound connection reuse, keep-alives, malformed input, idle timeout,
//! full queue.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::{Inbound, SipMessage, SipTransport, Transport, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

fn options(n: u32) -> String {
    format!(
        "OPTIONS sip:proxy SIP/2.0\r\nVia: SIP/2.0/UDP client;branch=z9hG4bK{n}\r\nCall-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn ok_for(msg: &SipMessage) -> Bytes {
    let call_id = msg.call_id().unwrap();
    Bytes::from(format!(
        "SIP/2.0 200 OK\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn ipv6_available() -> bool {
    let ok = std::net::UdpSocket::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("skipping IPv6 part: ::1 not available on this host");
    }
    ok
}

fn loopbacks() -> Vec<SocketAddr> {
    let mut v = vec!["127.0.0.1:0".parse().unwrap()];
    if ipv6_available() {
        v.push("[::1]:0".parse().unwrap());
    }
    v
}

async fn start(cfg: TransportConfig) -> (SipTransport, mpsc::Receiver<Inbound>, CancellationToken) {
    let cancel = CancellationToken::new();
    let (t, rx) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    (t, rx, cancel)
}

async fn next(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    timeout(WAIT, rx.recv())
        .await
        .expect("no inbound message in time")
        .unwrap()
}

/// Polls a condition (no sleeps to wait for readiness).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn udp_delivers_and_replies_from_the_listening_socket() {
    let addrs = loopbacks();
    let (t, mut rx, cancel) = start(TransportConfig {
        udp: addrs.clone(),
        ..Default::default()
    })
    .await;
    for listen in t.udp_addrs() {
        let client = UdpSocket::bind(SocketAddr::new(listen.ip(), 0))
            .await
            .unwrap();
        client.send_to(b"garbage\r\n\r\n", listen).await.unwrap();
        client.send_to(b"\r\n\r\n", listen).await.unwrap();
        client.send_to(options(1).as_bytes(), listen).await.unwrap();
        let inbound = next(&mut rx).await;
        assert_eq!(inbound.source, client.local_addr().unwrap());
        assert_eq!(
            (inbound.transport, inbound.conn, inbound.local),
            (Transport::Udp, None, listen)
        );
        assert_eq!(inbound.msg.call_id().unwrap(), "c1");
        t.send(inbound.source, Transport::Udp, ok_for(&inbound.msg), None)
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        // Same socket: the reply comes from the address the client sent to.
        assert_eq!(from, listen);
        assert_eq!(SipMessage::parse(&buf[..n]).unwrap().status(), Some(200));
    }
    let n = addrs.len() as u64;
    assert_eq!(t.stats().malformed.load(Ordering::Relaxed), n);
    assert_eq!(t.stats().keepalives.load(Ordering::Relaxed), n);
    assert_eq!(t.stats().received.load(Ordering::Relaxed), n);
    cancel.cancel();
    timeout(WAIT, t.closed()).await.unwrap();
}

#[tokio::test]
async fn tcp_inbound_replies_on_the_same_connection() {
    let (t, mut rx, cancel) = start(TransportConfig {
        tcp: Some(loopbacks()),
        ..Default::default()
    })
    .await;
    for listen in t.tcp_addrs() {
        let mut client = TcpStream::connect(listen).await.unwrap();
        // Garbage that is still framed, a ping, then a real message.
        client
            .write_all(b"NOT SIP\r\nContent-Length: 0\r\n\r\n\r\n\r\n")
            .await
            .unwrap();
        let mut pong = [0u8; 2];
        timeout(WAIT, client.read_exact(&mut pong))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&pong, b"\r\n");
        client.write_all(options(2).as_bytes()).await.unwrap();
        let inbound = next(&mut rx).await;
        assert_eq!(inbound.transport, Transport::Tcp);
        assert_eq!(inbound.source, client.local_addr().unwrap());
        assert!(inbound.conn.is_some());
        assert_eq!(inbound.local, listen);
        t.send(
            inbound.source,
            Transport::Tcp,
            ok_for(&inbound.msg),
            inbound.conn,
        )
        .await
        .unwrap();
        // Without the conn id, the peer address finds the same connection.
        t.send(inbound.source, Transport::Tcp, ok_for(&inbound.msg), None)
            .await
            .unwrap();
        let mut codec_buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while codec_buf.windows(6).filter(|w| w == b"200 OK").count() < 2 {
            let n = timeout(WAIT, client.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed early");
            codec_buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(
            t.stats().malformed.load(Ordering::Relaxed) as usize,
            t.tcp_addrs().iter().position(|a| *a == listen).unwrap() + 1
        );
        // A message without Content-Length breaks framing: the connection is closed.
        client
            .write_all(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: z\r\n\r\n")
            .await
            .unwrap();
        let n = timeout(WAIT, client.read(&mut chunk))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        eventually("connection removed", || t.connections() == 0).await;
    }
    assert_eq!(
        t.stats().framing_errors.load(Ordering::Relaxed) as usize,
        t.tcp_addrs().len()
    );
    cancel.cancel();
    timeout(WAIT, t.closed()).await.unwrap();
}

#[tokio::test]
async fn tcp_outbound_opens_once_and_reuses() {
    let (t, mut rx, cancel) = start(TransportConfig {
        tcp: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        ..Default::default()
    })
    .await;
    let remote = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = remote.local_addr().unwrap();
    t.send(target, Transport::Tcp, Bytes::from(options(3)), None)
        .await
        .unwrap();
    let (mut peer, _) = timeout(WAIT, remote.accept()).await.unwrap().unwrap();
    t.send(target, Transport::Tcp, Bytes::from(options(4)), None)
        .await
        .unwrap();
    let want = options(3).len() + options(4).len();
    let mut got = vec![0u8; want];
    timeout(WAIT, peer.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, (options(3) + &options(4)).into_bytes());
    assert_eq!(t.connections(), 1);
    // A response on that connection comes back as inbound on it.
    peer.write_all(&ok_for(&SipMessage::parse(options(3).as_bytes()).unwrap()))
        .await
        .unwrap();
    let inbound = next(&mut rx).await;
    assert_eq!(
        (inbound.source, inbound.transport),
        (target, Transport::Tcp)
    );
    assert_eq!(inbound.msg.status(), Some(200));
    // No second connection was opened.
    assert!(
        timeout(Duration::from_millis(100), remote.accept())
            .await
            .is_err()
    );
    cancel.cancel();
    timeout(WAIT, t.closed()).await.unwrap();
}

#[tokio::test]
async fn tcp_idle_connections_close() {
    let cfg = TransportConfig {
        tcp: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        tcp_idle: Duration::from_millis(200),
        ..Default::default()
    };
    let (t, mut rx, cancel) = start(cfg).await;
    let mut client = TcpStream::connect(t.tcp_addrs()[0]).await.unwrap();
    client.write_all(options(5).as_bytes()).await.unwrap();
    next(&mut rx).await;
    assert_eq!(t.connections(), 1);
    let mut buf = [0u8; 16];
    let n = timeout(WAIT, client.read(&mut buf))
        .await
        .expect("idle connection not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    eventually("connection removed", || t.connections() == 0).await;
    cancel.cancel();
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let cfg = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        queue: 1,
        ..Default::default()
    };
    let (t, mut rx, cancel) = start(cfg).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for n in 0..3 {
        client
            .send_to(options(n).as_bytes(), t.udp_addrs()[0])
            .await
            .unwrap();
    }
    eventually("two drops", || {
        t.stats().dropped.load(Ordering::Relaxed) == 2
    })
    .await;
    assert_eq!(next(&mut rx).await.msg.call_id().unwrap(), "c0");
    // The loop is still alive after dropping.
    client
        .send_to(options(7).as_bytes(), t.udp_addrs()[0])
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.msg.call_id().unwrap(), "c7");
    cancel.cancel();
}

#[tokio::test]
async fn ipv4_and_ipv6_wildcards_share_a_port() {
    if !ipv6_available() {
        return;
    }
    // Wildcard listeners, loopback traffic only. [::] is v6-only, so both
    // bind; a few fresh ports in case another process takes one meanwhile.
    let cancel = CancellationToken::new();
    let mut bound = None;
    for _ in 0..5 {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let v4: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
        let v6: SocketAddr = format!("[::]:{port}").parse().unwrap();
        let cfg = TransportConfig {
            udp: vec![v4, v6],
            tcp: Some(vec![v4, v6]),
            ..Default::default()
        };
        if let Ok((t, rx)) = SipTransport::bind(cfg, cancel.clone()).await {
            bound = Some((t, rx, port));
            break;
        }
    }
    let (t, mut rx, port) = bound.expect("0.0.0.0:P and [::]:P could not both be bound");
    for target in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let target: SocketAddr = target.parse().unwrap();
        let client = UdpSocket::bind(SocketAddr::new(target.ip(), 0))
            .await
            .unwrap();
        client.send_to(options(8).as_bytes(), target).await.unwrap();
        let inbound = next(&mut rx).await;
        // An IPv4 peer is seen as IPv4, not as a v4-mapped IPv6 address.
        assert_eq!(inbound.source, client.local_addr().unwrap());
        assert_eq!(inbound.local.is_ipv4(), target.is_ipv4());
        let mut tcp = TcpStream::connect(target).await.unwrap();
        tcp.write_all(options(9).as_bytes()).await.unwrap();
        let inbound = next(&mut rx).await;
        assert_eq!(
            (inbound.source, inbound.transport),
            (tcp.local_addr().unwrap(), Transport::Tcp)
        );
    }
    drop(t);
}

#[test]
fn config_from_toml() {
    let cfg: TransportConfig = toml::from_str(
        r#"
        udp = ["0.0.0.0:5060", "[::]:5060"]
        tcp = ["127.0.0.1:5060"]
        tcp_idle = "90s"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.udp.len(), 2);
    assert_eq!(cfg.tcp_idle, Duration::from_secs(90));
    assert_eq!(cfg.queue, TransportConfig::default().queue);
    assert!(toml::from_str::<TransportConfig>("udp_port = 5060").is_err());
    assert!(toml::from_str::<TransportConfig>("udp = [\"not an address\"]").is_err());
}

/// Reads until EOF (or error), bounded by WAIT; true when the peer closed.
async fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test]
async fn tcp_oversized_message_closes_and_connection_cap_holds() {
    let cfg = TransportConfig {
        tcp: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        max_connections: 1,
        ..Default::default()
    };
    let (t, mut rx, cancel) = start(cfg).await;
    let listen = t.tcp_addrs()[0];
    let mut first = TcpStream::connect(listen).await.unwrap();
    first.write_all(options(1).as_bytes()).await.unwrap();
    next(&mut rx).await;
    // The table is full: a second connection is accepted and closed at once.
    let mut second = TcpStream::connect(listen).await.unwrap();
    assert!(
        closed_by_peer(&mut second).await,
        "second connection should be refused"
    );
    assert_eq!(t.connections(), 1);
    // A body too large even to skip (a smaller one past 64 KiB gets a 513
    // and is skipped, tests/proxy_malformed.rs): framing error, connection
    // closed, counted.
    let big = format!(
        "OPTIONS sip:x SIP/2.0\r\nCall-ID: big\r\nContent-Length: {}\r\n\r\n",
        64 * 64 * 1024
    );
    first.write_all(big.as_bytes()).await.unwrap();
    assert!(
        closed_by_peer(&mut first).await,
        "oversized message should close the connection"
    );
    eventually("framing error counted", || {
        t.stats().framing_errors.load(Ordering::Relaxed) == 1
    })
    .await;
    eventually("slot freed", || t.connections() == 0).await;
    // The freed slot takes a new connection.
    let mut third = TcpStream::connect(listen).await.unwrap();
    third.write_all(options(3).as_bytes()).await.unwrap();
    assert_eq!(next(&mut rx).await.msg.call_id().unwrap(), "c3");
    cancel.cancel();
    timeout(WAIT, t.closed()).await.unwrap();
}

#[tokio::test]
async fn tcp_absent_listens_where_udp_does_and_an_empty_list_not_at_all() {
    let cancel = CancellationToken::new();
    let udp: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // `tcp` absent: TCP on the port UDP got, on that address only.
    let cfg = TransportConfig {
        udp: vec![udp],
        ..Default::default()
    };
    let (t, mut rx) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    let [u] = t.udp_addrs()[..] else {
        panic!("one UDP listener: {:?}", t.udp_addrs())
    };
    assert_eq!(t.tcp_addrs(), vec![u], "TCP on the UDP address");
    let mut tcp = TcpStream::connect(u).await.unwrap();
    tcp.write_all(options(21).as_bytes()).await.unwrap();
    let inbound = next(&mut rx).await;
    assert_eq!(inbound.transport, Transport::Tcp);
    assert_eq!(inbound.msg.call_id().unwrap(), "c21");

    // `tcp = []`: no TCP listener.
    let cfg = TransportConfig {
        udp: vec![udp],
        tcp: Some(Vec::new()),
        ..Default::default()
    };
    let (t2, _rx2) = SipTransport::bind(cfg, cancel.clone()).await.unwrap();
    assert_eq!(t2.udp_addrs().len(), 1);
    assert!(t2.tcp_addrs().is_empty());

    // From locus.toml: no `tcp` key is the same as absent, `[]` is none.
    let absent: TransportConfig = toml::from_str("udp = [\"127.0.0.1:5080\"]").unwrap();
    assert_eq!(absent.tcp, None);
    let none: TransportConfig = toml::from_str("udp = [\"127.0.0.1:5080\"]\ntcp = []").unwrap();
    assert_eq!(none.tcp, Some(vec![]));
    cancel.cancel();
}
