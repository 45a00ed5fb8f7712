//! OPTIONS, the proxy's health probe: 200 normally, 503 or silence when
//! scripted so, back to 200 after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sip_support;

use std::time::Duration;

use locus_sim::Health;
use sip_support::{Peer, request, sip_sim};

#[tokio::test]
async fn options_follow_the_scripted_health() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    assert_ne!(to.port(), 0);
    let probe = Peer::bind().await;
    let ruri = format!("sip:{to}");
    let mut n = 0;
    let mut ask = || {
        n += 1;
        request(
            "OPTIONS",
            &ruri,
            "locus",
            probe.addr,
            &format!("probe{n}"),
            n,
        )
    };

    let req = ask();
    probe.send(&req, to).await;
    let (ok, from) = probe.recv().await;
    assert_eq!(from, to, "answers from its SIP port");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.call_id().unwrap(), req.call_id().unwrap());
    assert!(ok.headers.get("Allow").unwrap().contains("INVITE"));
    assert_eq!(ok.headers.get("Via"), req.headers.get("Via"));

    sim.set_sip_health(Health::Unavailable);
    probe.send(&ask(), to).await;
    assert_eq!(probe.recv().await.0.status(), Some(503));

    sim.set_sip_health(Health::Silent);
    probe.send(&ask(), to).await;
    assert!(
        probe.try_recv(Duration::from_millis(300)).await.is_none(),
        "a silent box answers nothing"
    );

    sim.set_sip_health(Health::Ok);
    probe.send(&ask(), to).await;
    assert_eq!(probe.recv().await.0.status(), Some(200));

    let seen = sim.sip_received();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|s| s.method == "OPTIONS" && s.source == probe.addr)
    );
    assert_eq!(seen[0].from_user.as_deref(), Some("locus"));
}

#[tokio::test]
async fn garbage_is_ignored_and_no_sip_without_an_address() {
    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let p = Peer::bind().await;
    p.send_text("not sip at all\r\n\r\n", to).await;
    p.send_text("\r\n\r\n", to).await;
    let req = request("OPTIONS", &format!("sip:{to}"), "locus", p.addr, "after", 1);
    p.send(&req, to).await;
    let (ok, _) = p.recv().await;
    assert_eq!(ok.call_id().unwrap(), "after", "the box survives garbage");

    let plain = locus_sim::Sim::start(locus_sim::SimConfig::default())
        .await
        .unwrap();
    assert_eq!(plain.sip_addr(), None);
}

#[tokio::test]
async fn tcp_on_the_same_port() {
    use futures::StreamExt;
    use locus_proxy::sip::{KeepAlive, SipCodec, SipFrame};
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::FramedRead;

    let sim = sip_sim(None).await;
    let to = sim.sip_addr().unwrap();
    let stream = tokio::net::TcpStream::connect(to).await.unwrap();
    let me = stream.local_addr().unwrap();
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, SipCodec::default());
    let mut next = async || {
        tokio::time::timeout(sip_support::WAIT, frames.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let mut req = request("OPTIONS", &format!("sip:{to}"), "locus", me, "tcp1", 1);
    req.headers
        .set("Via", &format!("SIP/2.0/TCP {me};branch=z9hG4bKtcp1"));
    write.write_all(&req.to_bytes()).await.unwrap();
    let SipFrame::Message(ok) = next().await else {
        panic!("expected a message");
    };
    assert_eq!((ok.status(), ok.call_id().unwrap()), (Some(200), "tcp1"));
    write.write_all(b"\r\n\r\n").await.unwrap();
    // The pong surfaces once more bytes follow it: send another request.
    let mut reg = request("REGISTER", "sip:127.0.0.1", "1000", me, "tcp2", 1);
    reg.headers
        .set("Via", &format!("SIP/2.0/TCP {me};branch=z9hG4bKtcp2"));
    write.write_all(&reg.to_bytes()).await.unwrap();
    let mut got = vec![];
    for _ in 0..2 {
        got.push(next().await);
    }
    assert!(matches!(got[0], SipFrame::KeepAlive(KeepAlive::Pong)));
    let SipFrame::Message(ch) = &got[1] else {
        panic!("expected the challenge");
    };
    assert_eq!(ch.status(), Some(401));
}
