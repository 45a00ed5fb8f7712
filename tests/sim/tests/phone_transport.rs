//! `locus_sim::phone` over a lossy or silent peer: requests are
//! retransmitted on T1 doubling with the same branch, and every wait ends.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use locus_proxy::sip::SipMessage;
use locus_sim::phone::{Phone, PhoneError};
use tokio::net::UdpSocket;

async fn recv(sock: &UdpSocket) -> SipMessage {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("a datagram")
        .unwrap();
    SipMessage::parse(&buf[..n]).unwrap()
}

#[tokio::test]
async fn a_lost_register_is_retransmitted_with_the_same_branch() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = Phone::bind("1000", "1234", "d.test", peer.local_addr().unwrap())
        .await
        .unwrap();
    let reg = tokio::spawn(async move { p.register(60).await });
    let first = recv(&peer).await;
    let again = recv(&peer).await; // the first was "lost": not answered
    assert_eq!(first.method(), Some("REGISTER"));
    assert_eq!(
        first.to_bytes(),
        again.to_bytes(),
        "a retransmission is the same message"
    );
    let to = first
        .top_via()
        .map(|v| format!("127.0.0.1:{}", v.port.unwrap()))
        .unwrap();
    let ok = again.reply(200, "OK", Some("t1"));
    peer.send_to(&ok.to_bytes(), to).await.unwrap();
    assert_eq!(reg.await.unwrap().unwrap(), 200);
}

#[tokio::test]
async fn a_silent_peer_ends_in_a_timeout_after_bounded_retransmissions() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = Phone::bind("1000", "1234", "d.test", peer.local_addr().unwrap())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(2200));
    let started = tokio::time::Instant::now();
    let r = p.call("1001").await;
    assert!(matches!(r, Err(PhoneError::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // INVITE at 0, 0.5 s and 1.5 s (T1 doubling; the next would be at
    // 3.5 s, past the wait), then the CANCEL.
    let mut methods = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await
    {
        let m = SipMessage::parse(&buf[..n]).unwrap();
        methods.push(m.method().unwrap().to_owned());
    }
    assert_eq!(
        methods,
        ["INVITE", "INVITE", "INVITE", "CANCEL"],
        "{methods:?}"
    );
}
