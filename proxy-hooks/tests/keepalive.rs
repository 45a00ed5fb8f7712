//! Keepalives toward phones (issue 8 item 2), with raw peers on loopback:
//! OPTIONS leave from the socket the phone registered on, at the
//! configured pace; answers keep it reachable; `fail_after` misses make it
//! unreachable and a later answer revives it; an answer from anyone else
//! counts for nothing; over TCP a CRLFCRLF ping is answered by a CRLF and
//! a closed connection makes the phone unreachable at once.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use locus_proxy::proxy::Flow;
use locus_proxy::registrar::keepalive::{ContactKey, Fate, Reachability};
use locus_proxy::registrar::{Keepalive, KeepaliveConfig, KeepaliveMethod};
use locus_proxy::sip::{Inbound, SipMessage, SipTransport, Transport, TransportConfig, Uri};
use support::proxy::raw::Peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);
const INTERVAL: Duration = Duration::from_millis(300);

/// Records every fate.
#[derive(Default)]
struct Fates(Mutex<Vec<Fate>>);

#[async_trait]
impl Reachability for Fates {
    async fn set_reachable(&self, fate: Fate) {
        self.0.lock().unwrap().push(fate);
    }
}

impl Fates {
    fn seen(&self) -> Vec<bool> {
        self.0.lock().unwrap().iter().map(|f| f.reachable).collect()
    }

    async fn wait_for(&self, want: &[bool]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.seen() != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fates {:?}, want {want:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct Rig {
    ka: Keepalive,
    fates: Arc<Fates>,
    udp: SocketAddr,
    tcp: SocketAddr,
    /// Requests the transport received (phones' TCP hellos).
    requests: mpsc::UnboundedReceiver<Inbound>,
    cancel: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn rig(method: KeepaliveMethod) -> Rig {
    let cancel = CancellationToken::new();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tcfg = TransportConfig {
        udp: vec![any],
        tcp: Some(vec![any]),
        ..Default::default()
    };
    let (t, mut rx) = SipTransport::bind(tcfg, cancel.clone()).await.unwrap();
    let cfg = KeepaliveConfig {
        method,
        interval: INTERVAL,
        fail_after: 2,
    };
    let ka = Keepalive::new(cfg, t.clone());
    ka.watch(&t);
    let fates = Arc::new(Fates::default());
    let (tx, requests) = mpsc::unbounded_channel();
    {
        let ka = ka.clone();
        tokio::spawn(async move {
            while let Some(i) = rx.recv().await {
                if i.msg.is_request() {
                    let _ = tx.send(i);
                } else {
                    ka.on_response(&i.msg, &Flow::from(&i));
                }
            }
        });
    }
    {
        let (ka, sink, c) = (ka.clone(), fates.clone(), cancel.clone());
        tokio::spawn(async move { ka.run(sink, c).await });
    }
    Rig {
        ka,
        fates,
        udp: t.udp_addrs()[0],
        tcp: t.tcp_addrs()[0],
        requests,
        cancel,
    }
}

fn key(contact: &str) -> ContactKey {
    ContactKey {
        domain: "example.com".into(),
        user: "1000".into(),
        contact: contact.into(),
    }
}

fn far() -> u64 {
    locus_schema::now_ms() + 600_000
}

fn udp_flow(phone: SocketAddr, local: SocketAddr) -> Flow {
    Flow {
        source: phone,
        transport: Transport::Udp,
        conn: None,
        local,
    }
}

/// Pings `phone` (a UDP flow to the rig's listener) from now on.
fn track_udp(r: &Rig, phone: &Peer) -> (String, Flow) {
    let contact = format!("sip:1000@{}", phone.addr);
    let flow = udp_flow(phone.addr, r.udp);
    let uri = Uri::parse(&contact).unwrap();
    r.ka.track(flow, key(&contact), uri, r.udp.to_string(), far());
    (contact, flow)
}

async fn answer(phone: &Peer, from_socket: &Peer, req: &SipMessage, to: SocketAddr) {
    let _ = phone;
    let ok = req.reply(200, "OK", Some("ph"));
    from_socket.sock.send_to(&ok.to_bytes(), to).await.unwrap();
}

#[tokio::test]
async fn options_come_from_the_registered_socket_and_answers_keep_the_phone() {
    let r = rig(KeepaliveMethod::Options).await;
    let phone = Peer::bind("127.0.0.1").await;
    let (contact, flow) = track_udp(&r, &phone);
    let mut at = Vec::new();
    for _ in 0..4 {
        let (req, from) = phone.request("OPTIONS").await;
        assert_eq!(from, r.udp, "keepalive left from another socket");
        assert_eq!(req.request_uri().unwrap().to_string(), contact);
        let via = req.top_via().unwrap();
        assert_eq!(via.port, Some(r.udp.port()));
        at.push(tokio::time::Instant::now());
        answer(&phone, &phone, &req, from).await;
    }
    // One every interval (not a burst, not a stall): loose bounds.
    for w in at.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= INTERVAL / 2 && gap <= INTERVAL * 3,
            "gap {gap:?} for an interval of {INTERVAL:?}"
        );
    }
    assert!(r.fates.seen().is_empty(), "{:?}", r.fates.seen());
    assert_eq!(r.ka.reachable(&flow), Some(true));
    let deadline = tokio::time::Instant::now() + WAIT;
    while r.ka.stats().answered.get() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "answers not counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_silent_phone_becomes_unreachable_and_an_answer_revives_it() {
    let r = rig(KeepaliveMethod::Options).await;
    let phone = Peer::bind("127.0.0.1").await;
    let stranger = Peer::bind("127.0.0.1").await;
    let (contact, flow) = track_udp(&r, &phone);
    // Silent: fail_after (2) unanswered pings, then the third is due.
    for _ in 0..3 {
        phone.request("OPTIONS").await;
    }
    r.fates.wait_for(&[false]).await;
    assert_eq!(r.ka.reachable(&flow), Some(false));
    let f = r.fates.0.lock().unwrap()[0].clone();
    assert_eq!((f.flow, f.contacts), (flow, vec![key(&contact)]));
    // Pings go on; the right answer from someone else does not count.
    let (req, from) = phone.request("OPTIONS").await;
    answer(&phone, &stranger, &req, from).await;
    tokio::time::sleep(INTERVAL / 3).await;
    assert_eq!(r.ka.reachable(&flow), Some(false), "a stranger revived it");
    // The phone's own answer to the next one revives it.
    let (req, from) = phone.request("OPTIONS").await;
    answer(&phone, &phone, &req, from).await;
    r.fates.wait_for(&[false, true]).await;
    assert_eq!(r.ka.stats().went_unreachable.get(), 1);
    assert_eq!(r.ka.stats().revived.get(), 1);
}

#[tokio::test]
async fn one_ping_per_flow_and_none_once_every_contact_is_gone() {
    let r = rig(KeepaliveMethod::Options).await;
    let phone = Peer::bind("127.0.0.1").await;
    let flow = udp_flow(phone.addr, r.udp);
    let (a, b) = (
        format!("sip:1000@{}", phone.addr),
        format!("sip:1000@{};line=2", phone.addr),
    );
    for c in [&a, &b] {
        r.ka.track(
            flow,
            key(c),
            Uri::parse(c).unwrap(),
            r.udp.to_string(),
            far(),
        );
    }
    let (req, from) = phone.request("OPTIONS").await;
    answer(&phone, &phone, &req, from).await;
    let (req, from) = phone.request("OPTIONS").await;
    answer(&phone, &phone, &req, from).await;
    // Two contacts, one flow: one OPTIONS per interval, not two.
    tokio::time::sleep(INTERVAL / 2).await;
    let extra = phone.pending();
    assert!(
        extra.len() <= 1,
        "{} pings in half an interval",
        extra.len()
    );
    assert_eq!(r.ka.stats().flows.get(), 1);
    r.ka.untrack(&key(&a));
    r.ka.untrack(&key(&b));
    assert_eq!(r.ka.stats().flows.get(), 0);
    let _ = phone.pending();
    let more = phone
        .expect(INTERVAL * 3, |m| m.method() == Some("OPTIONS"))
        .await;
    assert!(more.is_none(), "pinged after every contact left");
}

#[tokio::test]
async fn tcp_pings_are_ponged_and_a_closed_connection_is_unreachable_at_once() {
    let mut r = rig(KeepaliveMethod::Crlf).await;
    let mut phone = TcpStream::connect(r.tcp).await.unwrap();
    let hello = format!(
        "OPTIONS sip:{tcp} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKhello\r\n\
         From: <sip:1000@example.com>;tag=a\r\nTo: <sip:{tcp}>\r\nCall-ID: hello\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        tcp = r.tcp,
        me = phone.local_addr().unwrap()
    );
    phone.write_all(hello.as_bytes()).await.unwrap();
    let inbound = tokio::time::timeout(WAIT, r.requests.recv())
        .await
        .unwrap()
        .unwrap();
    let flow = Flow::from(&inbound);
    assert!(flow.conn.is_some());
    let contact = format!("sip:1000@{};transport=tcp", flow.source);
    r.ka.track(
        flow,
        key(&contact),
        Uri::parse(&contact).unwrap(),
        r.tcp.to_string(),
        far(),
    );
    // Three pings, each answered with a CRLF: never a miss.
    let mut buf = [0u8; 4];
    for _ in 0..3 {
        tokio::time::timeout(WAIT, phone.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"\r\n\r\n");
        phone.write_all(b"\r\n").await.unwrap();
    }
    tokio::time::sleep(INTERVAL).await;
    assert_eq!(r.ka.stats().missed.get(), 0);
    assert_eq!(r.ka.reachable(&flow), Some(true));
    // The phone's connection closes: unreachable without waiting for misses.
    drop(phone);
    r.fates.wait_for(&[false]).await;
    assert_eq!(
        r.ka.reachable(&flow),
        None,
        "a dead connection is still pinged"
    );
}
