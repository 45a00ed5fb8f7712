//! A farm node is known by its IP, not its exact `sip_uri` address (issue
//! 7 item 5): FreeSWITCH sends over TCP from ephemeral ports, and its MWI
//! NOTIFY to a TCP phone got 403 on the real farm. With real Redis and
//! `locus proxy`, a raw box (`tcpbox`, a static node at 127.0.0.4 whose
//! `sip_uri` is TCP on a port nobody listens on) talks to the proxy over
//! the connection it opened itself:
//! * its NOTIFY reaches a TCP-registered phone with its `X-Locus-*`
//!   headers, its INVITE to an outside number reaches the gateway (no
//!   403); the same from a phone's IP goes to a box, headers stripped;
//! * the proxy's replies and its own requests to the box (probes, the
//!   phone's REGISTER, calls) use the box's connection (nothing listens at
//!   its `sip_uri`: a new connection would be refused);
//! * UDP from the box's IP on another port is the box's; `node_networks`
//!   makes nodes of a block; `node_secret` makes UDP trust need a valid
//!   `X-Locus-Auth`, which never leaves the proxy.
//!
//! Two UDP listeners (a flow answered from the listener it came in on) are
//! covered by `proxy-hooks/tests/proxy_limits.rs`.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::routing::config::StaticNode;
use locus_proxy::server::ProxyConfig;
use locus_schema::NodeId;
use support::regtrust::{RawSip, status_of};
use support::sipfarm::{SipFarm, start_sip_farm};
use support::{DOMAIN, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// The raw box's IP (apart from phones on 127.0.0.1 and the sim boxes).
const BOX: &str = "127.0.0.4";
/// The gateway's IP: outside the farm.
const GW: &str = "127.0.0.5";
/// A number outside the farm (the default `outside` pattern).
const OUTSIDE: &str = "5551234567";
const SECRET: &str = "farm-node-secret-0123456789";

/// One SIP message read off a TCP stream, framed by Content-Length.
async fn read_frame(r: &mut (impl AsyncReadExt + Unpin), buf: &mut Vec<u8>) -> Option<String> {
    loop {
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let n = n.trim();
                    (n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l"))
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() >= total {
                let text = String::from_utf8_lossy(&buf[..total]).into_owned();
                buf.drain(..total);
                return Some(text);
            }
        }
        let mut chunk = [0u8; 8192];
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The value of header `name` in `text`.
fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn method_of(text: &str) -> Option<&str> {
    let first = text.lines().next()?;
    (!first.starts_with("SIP/2.0")).then(|| first.split(' ').next())?
}

fn ruri_user(text: &str) -> Option<&str> {
    let uri = text.lines().next()?.split(' ').nth(1)?;
    uri.strip_prefix("sip:")?.split('@').next()
}

/// A response to `req`: its Vias, From, To (tagged), Call-ID and CSeq,
/// then `extra` lines.
fn answer(req: &str, status: u16, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status} Test\r\n");
    for l in req.lines().skip(1).take_while(|l| !l.is_empty()) {
        let name = l.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("To") && !l.contains("tag=") {
            out.push_str(&format!("{l};tag=answered\r\n"));
        } else if ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A request over `transport` from `sent_by`, with a fresh Call-ID and
/// branch, then `extra` lines.
fn request(method: &str, ruri: &str, transport: &str, sent_by: SocketAddr, extra: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1000;
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by};branch=z9hG4bKns{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:fs@{DOMAIN}>;tag=f{n}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: ns{n}@test\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A TCP peer: reads in a task (answering what `auto` says), everything
/// read also goes to `seen`.
struct TcpPeer {
    write: Arc<Mutex<OwnedWriteHalf>>,
    seen: mpsc::UnboundedReceiver<String>,
    local: SocketAddr,
}

impl TcpPeer {
    async fn connect(ip: &str, to: SocketAddr, auto: fn(&str) -> Option<String>) -> TcpPeer {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        let stream: TcpStream = sock.connect(to).await.unwrap();
        let local = stream.local_addr().unwrap();
        let (mut read, write) = stream.into_split();
        let write = Arc::new(Mutex::new(write));
        let (tx, seen) = mpsc::unbounded_channel();
        let w = write.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(msg) = read_frame(&mut read, &mut buf).await {
                // Seen before answered: whoever gets the answer finds the
                // request already counted.
                let reply = auto(&msg);
                if tx.send(msg).is_err() {
                    return;
                }
                if let Some(reply) = reply {
                    let _ = w.lock().await.write_all(reply.as_bytes()).await;
                }
            }
        });
        TcpPeer { write, seen, local }
    }

    async fn send(&self, text: &str) {
        self.write
            .lock()
            .await
            .write_all(text.as_bytes())
            .await
            .unwrap();
    }

    /// The next message read that satisfies `want`, within [`WAIT`].
    async fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(m)) if want(&m) => return m,
                Ok(Some(_)) => {}
                _ => panic!("timed out waiting for {what}"),
            }
        }
    }
}

/// The box: probes 200, REGISTERs 200 (bindings echoed), INVITEs 486.
fn box_answers(msg: &str) -> Option<String> {
    match method_of(msg)? {
        "OPTIONS" => Some(answer(msg, 200, "")),
        "REGISTER" => {
            let contact = header(msg, "Contact")?;
            Some(answer(
                msg,
                200,
                &format!("Contact: {contact};expires=300\r\n"),
            ))
        }
        "INVITE" => Some(answer(msg, 486, "")),
        _ => None,
    }
}

/// A phone: answers every request but ACK with 200.
fn phone_answers(msg: &str) -> Option<String> {
    match method_of(msg)? {
        "ACK" => None,
        _ => Some(answer(msg, 200, "")),
    }
}

struct Rig {
    farm: SipFarm,
    tcpbox: TcpPeer,
    /// The box's `sip_uri` address (nothing listens there).
    box_sip: SocketAddr,
    gw: RawSip,
    _reserved: TcpSocket,
}

/// A farm without sim boxes whose one node is `tcpbox` at [`BOX`], TCP,
/// connected to the proxy from an ephemeral port and up; a gateway at
/// [`GW`].
async fn rig(tweak: impl FnOnce(&mut ProxyConfig)) -> Rig {
    // Bound, never listening: a connection to the box's sip_uri is refused.
    let reserved = TcpSocket::new_v4().unwrap();
    reserved.bind(format!("{BOX}:0").parse().unwrap()).unwrap();
    let box_sip = reserved.local_addr().unwrap();
    let gw = RawSip::bind(GW).await;
    let gw_addr = gw.local;
    let farm = start_sip_farm(0, move |cfg| {
        cfg.routing.static_nodes = vec![StaticNode {
            id: NodeId::new("tcpbox").unwrap(),
            sip_uri: format!("sip:{box_sip};transport=tcp"),
            weight: 1,
        }];
        cfg.policy.gateways = vec![format!("sip:{gw_addr}")];
        // Probes patient enough for a loaded CI machine: the box must stay up.
        cfg.health.timeout = Duration::from_secs(2);
        cfg.health.down_after = 10;
        tweak(cfg);
    })
    .await;
    // The proxy knows the node before the box speaks (its first request
    // is when its connection is remembered).
    farm.wait_view("tcpbox known", |s| {
        s.nodes().iter().any(|n| n.id.as_str() == "tcpbox")
    })
    .await;
    let mut tcpbox = TcpPeer::connect(BOX, farm.proxy_tcp(), box_answers).await;
    assert_ne!(tcpbox.local.port(), box_sip.port());
    // A box's first words: a ping of the proxy, answered on its connection.
    let ping = request(
        "OPTIONS",
        &format!("sip:{}", farm.proxy_tcp()),
        "TCP",
        box_sip,
        "",
    );
    tcpbox.send(&ping).await;
    let pong = tcpbox
        .expect("the proxy's 200 to the box's OPTIONS", |m| {
            status_of(m).is_some()
        })
        .await;
    assert_eq!(status_of(&pong), Some(200), "{pong}");
    // The proxy's probes reach the box on its own connection: it comes up,
    // in a farm view built after the probe said so.
    let id = NodeId::new("tcpbox").unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !farm.proxy.health.is_up(&id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tcpbox never probed up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let built = farm.proxy.sync.rebuilds();
    farm.wait_view("tcpbox up", |s| {
        farm.proxy.sync.rebuilds() > built
            && s.nodes().iter().any(|n| n.id.as_str() == "tcpbox" && n.up)
    })
    .await;
    Rig {
        farm,
        tcpbox,
        box_sip,
        gw,
        _reserved: reserved,
    }
}

/// The gateway's next INVITE (ACKs skipped), answered 486.
async fn gw_invite(gw: &RawSip, proxy: SocketAddr) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let got = gw.recv(left).await.expect("the gateway got an INVITE");
        if method_of(&got) == Some("INVITE") {
            gw.send(proxy, &answer(&got, 486, "")).await;
            return got;
        }
    }
}

/// Whether the gateway has no INVITE waiting (the calls before were
/// decided: their finals came back).
async fn gateway_idle(gw: &RawSip) -> bool {
    while let Some(m) = gw.recv(Duration::from_millis(50)).await {
        if method_of(&m) == Some("INVITE") {
            return false;
        }
    }
    true
}

/// A UDP INVITE for [`OUTSIDE`] from `from` with `extra` lines; its final
/// status.
async fn udp_invite(proxy: SocketAddr, from: &RawSip, extra: &str) -> u16 {
    let text = request(
        "INVITE",
        &format!("sip:{OUTSIDE}@{DOMAIN}"),
        "UDP",
        from.local,
        &format!("X-Locus-Test: kept\r\n{extra}"),
    );
    let (status, _) = from
        .final_response(proxy, &text, WAIT)
        .await
        .expect("a final response");
    status
}

/// Whether `sender`'s INVITE for [`OUTSIDE`] is treated as a node's: it
/// reaches the gateway with `X-Locus-Test` kept (and no `X-Locus-Auth`);
/// otherwise it reaches the box (rules 1-5) with `X-Locus-*` stripped.
/// Either answers 486, which the sender gets.
async fn trusted(rig: &mut Rig, sender: &RawSip, extra: &str) -> bool {
    let Rig {
        farm, tcpbox, gw, ..
    } = rig;
    let proxy = farm.proxy_udp();
    let route = async {
        tokio::select! {
            inv = gw_invite(gw, proxy) => {
                assert_eq!(header(&inv, "X-Locus-Test"), Some("kept"), "{inv}");
                assert_eq!(header(&inv, "X-Locus-Auth"), None, "never forwarded: {inv}");
                true
            }
            got = tcpbox.expect("the INVITE at the box or the gateway", |m| {
                method_of(m) == Some("INVITE") && ruri_user(m) == Some(OUTSIDE)
            }) => {
                assert_eq!(header(&got, "X-Locus-Test"), None, "stripped: {got}");
                assert_eq!(header(&got, "X-Locus-Auth"), None, "{got}");
                false
            }
        }
    };
    let (status, at_gw) = tokio::join!(udp_invite(proxy, sender, extra), route);
    assert_eq!(status, 486, "answered by the box or the gateway");
    at_gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_over_tcp_from_an_ephemeral_port_is_a_node() {
    let mut rig = rig(|_| {}).await;
    let proxy_tcp = rig.farm.proxy_tcp();

    // A phone registers over TCP; the REGISTER reaches the box on the
    // box's own connection (nothing listens at its sip_uri).
    let mut phone = TcpPeer::connect("127.0.0.1", proxy_tcp, phone_answers).await;
    let reg = request(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        "TCP",
        phone.local,
        &format!(
            "Contact: <sip:1001@{};transport=tcp>\r\nExpires: 300\r\n",
            phone.local
        ),
    )
    .replace(
        &format!("To: <sip:{DOMAIN}>"),
        &format!("To: <sip:1001@{DOMAIN}>"),
    )
    .replace(
        &format!("<sip:fs@{DOMAIN}>"),
        &format!("<sip:1001@{DOMAIN}>"),
    );
    phone.send(&reg).await;
    let ok = phone
        .expect("the REGISTER's final", |m| {
            status_of(m).is_some_and(|s| s >= 200)
        })
        .await;
    assert_eq!(status_of(&ok), Some(200), "{ok}");
    rig.tcpbox
        .expect("the REGISTER at the box", |m| {
            method_of(m) == Some("REGISTER")
        })
        .await;

    // The box's MWI NOTIFY over TCP from its ephemeral port: a node's, so
    // it reaches the phone (rule 7) with X-Locus-* kept; no 403.
    let notify = request(
        "NOTIFY",
        &format!("sip:1001@{DOMAIN}"),
        "TCP",
        rig.box_sip,
        "Event: message-summary\r\nSubscription-State: terminated;reason=noresource\r\n\
         X-Locus-Test: kept\r\n",
    );
    rig.tcpbox.send(&notify).await;
    let at_phone = phone
        .expect("the NOTIFY at the phone", |m| {
            method_of(m) == Some("NOTIFY")
        })
        .await;
    assert_eq!(
        header(&at_phone, "X-Locus-Test"),
        Some("kept"),
        "{at_phone}"
    );
    let final_ = rig
        .tcpbox
        .expect("the NOTIFY's final", |m| {
            status_of(m).is_some_and(|s| s >= 200) && header(m, "CSeq") == Some("1 NOTIFY")
        })
        .await;
    assert_eq!(status_of(&final_), Some(200), "{final_}");

    // Its INVITE to an outside number goes to the gateway (rule 6).
    let invite = request(
        "INVITE",
        &format!("sip:{OUTSIDE}@{DOMAIN}"),
        "TCP",
        rig.box_sip,
        "X-Locus-Test: kept\r\n",
    );
    rig.tcpbox.send(&invite).await;
    let at_gw = gw_invite(&rig.gw, rig.farm.proxy_udp()).await;
    assert_eq!(header(&at_gw, "X-Locus-Test"), Some("kept"), "{at_gw}");
    let busy = rig
        .tcpbox
        .expect("the INVITE's final", |m| {
            status_of(m).is_some_and(|s| s >= 200) && header(m, "CSeq") == Some("1 INVITE")
        })
        .await;
    assert_eq!(status_of(&busy), Some(486), "{busy}");

    // The same INVITE from a phone's IP is a stranger's: to the box by
    // rules 1-5, headers stripped, the gateway untouched.
    let stranger = RawSip::bind("127.0.0.1").await;
    assert!(!trusted(&mut rig, &stranger, "").await);
    assert!(gateway_idle(&rig.gw).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_from_a_box_ip_on_another_port_is_a_node_and_networks_count() {
    let mut rig = rig(|cfg| cfg.policy.node_networks = vec!["127.0.0.6/32".into()]).await;
    let box_udp = RawSip::bind(BOX).await;
    assert_ne!(box_udp.local.port(), rig.box_sip.port());
    assert!(
        trusted(&mut rig, &box_udp, "").await,
        "box IP, another port"
    );
    let in_net = RawSip::bind("127.0.0.6").await;
    assert!(trusted(&mut rig, &in_net, "").await, "node_networks");
    let outside_net = RawSip::bind("127.0.0.7").await;
    assert!(
        !trusted(&mut rig, &outside_net, "").await,
        "not in node_networks"
    );
    let phone = RawSip::bind("127.0.0.1").await;
    assert!(!trusted(&mut rig, &phone, "").await, "a phone's IP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_secret_is_required_over_udp_and_never_forwarded() {
    let mut rig = rig(|cfg| cfg.policy.node_secret = Some(SECRET.into())).await;
    let box_udp = RawSip::bind(BOX).await;
    let good = format!("X-Locus-Auth: {SECRET}\r\n");
    assert!(trusted(&mut rig, &box_udp, &good).await, "valid secret");
    assert!(!trusted(&mut rig, &box_udp, "").await, "no header");
    let wrong = format!("X-Locus-Auth: {SECRET}x\r\n");
    assert!(!trusted(&mut rig, &box_udp, &wrong).await, "wrong secret");
    // A phone holding the secret is still no node.
    let phone = RawSip::bind("127.0.0.1").await;
    assert!(!trusted(&mut rig, &phone, &good).await, "a phone's IP");
    // TCP needs no header: the box's connection is the box's (its ping in
    // `rig` was answered, its INVITE out goes to the gateway).
    let invite = request(
        "INVITE",
        &format!("sip:{OUTSIDE}@{DOMAIN}"),
        "TCP",
        rig.box_sip,
        "X-Locus-Test: kept\r\n",
    );
    rig.tcpbox.send(&invite).await;
    let at_gw = gw_invite(&rig.gw, rig.farm.proxy_udp()).await;
    assert_eq!(header(&at_gw, "X-Locus-Test"), Some("kept"), "{at_gw}");
}
