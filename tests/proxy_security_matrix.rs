//! The security matrix of `locus proxy` (issue 7 items 3, 4, 9), with real
//! Redis and a simulated box: every combination of source (phone, unknown
//! host, trunk, farm node over UDP from its `sip_uri` address, from another
//! port of its IP, and over TCP from an ephemeral port, peer proxy)
//! x R-URI (our domain, a foreign domain, a host outside the farm, `tel:`)
//! x To tag x preloaded Route (none, ours signed, ours then foreign,
//! foreign) x method is sent as raw UDP, and a listener on a loopback
//! address outside the farm (127.0.0.66) asserts that nothing reaches it
//! unless the policy table ([`expected`], written from the issue) allows.
//! Then forged, replayed and rotated flow tokens.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locus_proxy::policy::Trunk;
use locus_proxy::proxy::{Flow, FlowKeys, PreloadedRoute, Secret};
use locus_proxy::routing::config::StaticNode;
use locus_proxy::server::ProxyConfig;
use locus_proxy::sip::Transport;
use locus_schema::NodeId;
use support::DOMAIN;
use support::sipfarm::{SipFarm, start_sip_farm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

const SECRET: &str = "matrix secret, current one";
const OLD_SECRET: &str = "matrix secret, before rotation";
/// How long one case may take to be answered or to reach the listener.
const CASE: Duration = Duration::from_secs(3);
/// Cases in flight at once.
const PARALLEL: usize = 48;

/// A UDP socket whose datagrams are all kept, so concurrent cases sharing
/// it find their own by Call-ID or Subject.
#[derive(Clone)]
struct Ear {
    sock: Arc<UdpSocket>,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    /// Sends over this TCP connection instead (its local address is `addr`).
    tcp: Option<Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>>,
}

impl Ear {
    async fn bind(ip: &str) -> Ear {
        let sock = Arc::new(UdpSocket::bind(format!("{ip}:0")).await.unwrap());
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, log) = (sock.clone(), seen.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, _)) = s.recv_from(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock().unwrap().push(text);
            }
        });
        Ear {
            sock,
            addr,
            seen,
            tcp: None,
        }
    }

    /// A TCP connection from `ip` (an ephemeral port) to `proxy`; every
    /// message read back is kept, framed by the proxy's own codec.
    async fn connect(ip: &str, proxy: SocketAddr) -> Ear {
        use tokio_util::codec::Decoder;
        let mut ear = Ear::bind(ip).await;
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        let stream = sock.connect(proxy).await.unwrap();
        ear.addr = stream.local_addr().unwrap();
        let (mut read, write) = stream.into_split();
        let log = ear.seen.clone();
        tokio::spawn(async move {
            let mut codec = locus_proxy::sip::SipCodec::default();
            let mut buf = bytes::BytesMut::with_capacity(65_536);
            while matches!(read.read_buf(&mut buf).await, Ok(n) if n > 0) {
                while let Ok(Some(frame)) = codec.decode(&mut buf) {
                    if let locus_proxy::sip::SipFrame::Message(m) = frame {
                        let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
                        log.lock().unwrap().push(text);
                    }
                }
            }
        });
        ear.tcp = Some(Arc::new(tokio::sync::Mutex::new(write)));
        ear
    }

    async fn send(&self, to: SocketAddr, text: &str) {
        match &self.tcp {
            Some(w) => w.lock().await.write_all(text.as_bytes()).await.unwrap(),
            None => {
                self.sock.send_to(text.as_bytes(), to).await.unwrap();
            }
        }
    }

    fn find(&self, pred: &(dyn Fn(&str) -> bool + Sync)) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|t| pred(t.as_str()))
            .cloned()
    }

    /// The first datagram matching `pred` within `limit` (polled).
    async fn wait(&self, pred: &(dyn Fn(&str) -> bool + Sync), limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(t) = self.find(pred) {
                return Some(t);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A final response (>= 200) for `call_id`.
fn final_for(call_id: &str) -> impl Fn(&str) -> bool + '_ {
    move |t: &str| {
        status(t).is_some_and(|s| s >= 200) && t.lines().any(|l| l == format!("Call-ID: {call_id}"))
    }
}

fn status(text: &str) -> Option<u16> {
    let rest = text.lines().next()?.strip_prefix("SIP/2.0 ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Phone,
    Unknown,
    Trunk,
    /// UDP from the node's `sip_uri` address.
    Node,
    /// UDP from another port of the node's IP.
    NodeOtherPort,
    /// TCP from an ephemeral port of the node's IP (FreeSWITCH over TCP).
    NodeTcp,
    Peer,
}

const SOURCES: [Src; 7] = [
    Src::Phone,
    Src::Unknown,
    Src::Trunk,
    Src::Node,
    Src::NodeOtherPort,
    Src::NodeTcp,
    Src::Peer,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ruri {
    OurDomain,
    ForeignDomain,
    OutsideHost,
    Tel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preloaded {
    None,
    OursSigned,
    OursThenForeign,
    Foreign,
}

const METHODS: [&str; 6] = [
    "INVITE",
    "BYE",
    "OPTIONS",
    "MESSAGE",
    "REGISTER",
    "SUBSCRIBE",
];

#[derive(Debug, Clone, Copy)]
struct Case {
    src: Src,
    ruri: Ruri,
    tag: bool,
    route: Preloaded,
    method: &'static str,
}

/// What may happen to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The listener outside the farm receives it (policy allows).
    Reaches,
    /// Answered 403 (or 404/481 for an unknown dialog, 416 for `tel:`
    /// where refused) by the proxy; sent nowhere.
    Refused,
    /// Never reaches the listener (routed inside the farm, or answered).
    Stays,
}

/// The policy table, from issue 7 items 3-4 (not from the code): nodes,
/// trunks and peers are followed along their own Routes and in-dialog
/// R-URIs (an in-dialog request for one of our domains is an unknown
/// dialog); their new requests are routed by the rules, which send
/// nothing to an unlisted host (no gateway is configured here). A phone
/// or unknown host: in a dialog only along our signed Record-Route and
/// only into the farm; out of a dialog a Route beyond ours is refused,
/// and anything not for our domain is refused. A `tel:` R-URI only
/// where RFC 3966 allows one.
fn expected(c: &Case) -> Expect {
    // RFC 3966 numbers are a Request-URI for calls and messages only
    // (item 8): 416 for any other method, from anyone.
    if c.ruri == Ruri::Tel && !matches!(c.method, "INVITE" | "MESSAGE") {
        return Expect::Refused;
    }
    // A node is known by its IP, any port, UDP or TCP (item 5).
    let trusted = matches!(
        c.src,
        Src::Trunk | Src::Node | Src::NodeOtherPort | Src::NodeTcp | Src::Peer
    );
    let foreign_route = matches!(c.route, Preloaded::Foreign | Preloaded::OursThenForeign);
    if trusted {
        if foreign_route {
            return Expect::Reaches;
        }
        return match (c.tag, c.ruri) {
            (true, Ruri::OutsideHost) => Expect::Reaches,
            (true, Ruri::OurDomain) => Expect::Refused,
            _ => Expect::Stays,
        };
    }
    if c.tag || foreign_route {
        return Expect::Refused;
    }
    match c.ruri {
        Ruri::OurDomain => Expect::Stays,
        Ruri::ForeignDomain | Ruri::OutsideHost => Expect::Refused,
        // Relayed to a box or refused: either way not outside.
        Ruri::Tel => Expect::Stays,
    }
}

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for src in SOURCES {
        for ruri in [
            Ruri::OurDomain,
            Ruri::ForeignDomain,
            Ruri::OutsideHost,
            Ruri::Tel,
        ] {
            for tag in [false, true] {
                for route in [
                    Preloaded::None,
                    Preloaded::OursSigned,
                    Preloaded::OursThenForeign,
                    Preloaded::Foreign,
                ] {
                    for method in METHODS {
                        all.push(Case {
                            src,
                            ruri,
                            tag,
                            route,
                            method,
                        });
                    }
                }
            }
        }
    }
    all
}

/// The sockets of the matrix, each on its own loopback address so that a
/// node is not told apart from a phone by port alone.
struct Rig {
    farm: SipFarm,
    phone: Ear,
    unknown: Ear,
    trunk: Ear,
    node: Ear,
    node_other_port: Ear,
    node_tcp: Ear,
    peer: Ear,
    outside: Ear,
    keys: FlowKeys,
}

impl Rig {
    async fn start(tweak: impl FnOnce(&mut ProxyConfig)) -> Rig {
        let phone = Ear::bind("127.0.0.10").await;
        let unknown = Ear::bind("127.0.0.11").await;
        let trunk = Ear::bind("127.0.0.50").await;
        let node = Ear::bind("127.0.0.40").await;
        let peer = Ear::bind("127.0.0.60").await;
        let outside = Ear::bind("127.0.0.66").await;
        let (node_addr, peer_addr) = (node.addr, peer.addr);
        let farm = start_sip_farm(1, |cfg| {
            cfg.policy.trunks = vec![Trunk {
                name: "carrier".into(),
                sources: vec!["127.0.0.50".into()],
            }];
            cfg.policy.peers = vec![peer_addr.to_string()];
            cfg.routing.static_nodes = vec![StaticNode {
                id: NodeId::new("gatenode").unwrap(),
                sip_uri: format!("sip:{node_addr}"),
                weight: 1,
            }];
            cfg.security.secret = Some(Secret::new(SECRET));
            cfg.security.previous_secret = Some(Secret::new(OLD_SECRET));
            tweak(cfg);
        })
        .await;
        let node_other_port = Ear::bind("127.0.0.40").await;
        let node_tcp = Ear::connect("127.0.0.40", farm.proxy_tcp()).await;
        Rig {
            farm,
            phone,
            unknown,
            trunk,
            node,
            node_other_port,
            node_tcp,
            peer,
            outside,
            keys: FlowKeys::new(SECRET.as_bytes(), None),
        }
    }

    fn ear(&self, src: Src) -> &Ear {
        match src {
            Src::Phone => &self.phone,
            Src::Unknown => &self.unknown,
            Src::Trunk => &self.trunk,
            Src::Node => &self.node,
            Src::NodeOtherPort => &self.node_other_port,
            Src::NodeTcp => &self.node_tcp,
            Src::Peer => &self.peer,
        }
    }

    /// The request of case `i`: its Call-ID and text. A Route of ours
    /// carries the `lsig=` this proxy writes in that dialog.
    fn request(&self, i: usize, c: &Case) -> (String, String) {
        let from = self.ear(c.src).addr;
        let (proxy, outside) = (self.farm.proxy_udp(), self.outside.addr);
        let ruri = match c.ruri {
            Ruri::OurDomain => format!("sip:2000@{DOMAIN}"),
            // Resolved from /etc/hosts: loopback, never DNS; a port
            // nobody listens on.
            Ruri::ForeignDomain => "sip:2000@localhost:1".to_string(),
            Ruri::OutsideHost => format!("sip:2000@{outside}"),
            Ruri::Tel => "tel:+15550002000".to_string(),
        };
        let call_id = format!("m{i}-{}@matrix", std::process::id());
        let ours = format!(
            "<sip:{proxy};lr;lsig={}>",
            self.keys.record_route_sig(&call_id)
        );
        let foreign = format!("<sip:{outside};lr>");
        let route = match c.route {
            Preloaded::None => String::new(),
            Preloaded::OursSigned => format!("Route: {ours}\r\n"),
            Preloaded::OursThenForeign => format!("Route: {ours}, {foreign}\r\n"),
            Preloaded::Foreign => format!("Route: {foreign}\r\n"),
        };
        let tag = if c.tag { ";tag=dlg" } else { "" };
        let extra = match c.method {
            "SUBSCRIBE" => "Event: presence\r\nExpires: 60\r\n",
            "REGISTER" => "Expires: 60\r\n",
            _ => "",
        };
        let m = c.method;
        let via = if c.src == Src::NodeTcp { "TCP" } else { "UDP" };
        let text = format!(
            "{m} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/{via} {from};branch=z9hG4bKmx{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:1000@{DOMAIN}>;tag=f{i}\r\n\
             To: <{ruri}>{tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {m}\r\n\
             Contact: <sip:1000@{from}>\r\n\
             Subject: case-{i}\r\n\
             {route}{extra}Content-Length: 0\r\n\r\n"
        );
        (call_id, text)
    }

    /// Runs case `i`; `Err` says what went wrong.
    async fn run(&self, i: usize, c: &Case) -> Result<(), String> {
        let want = expected(c);
        let (call_id, text) = self.request(i, c);
        let ear = self.ear(c.src);
        ear.send(self.farm.proxy_udp(), &text).await;
        let mark = format!("Subject: case-{i}\r\n");
        let reached = |t: &str| t.contains(&mark);
        match want {
            Expect::Reaches => match self.outside.wait(&reached, CASE).await {
                Some(_) => Ok(()),
                None => Err(format!("{c:?}: should reach the outside listener, did not")),
            },
            Expect::Refused => {
                let got = ear.wait(&final_for(&call_id), CASE).await;
                let s = got.as_deref().and_then(status);
                if !matches!(s, Some(403 | 404 | 416 | 481)) {
                    return Err(format!("{c:?}: should be refused, got {s:?}"));
                }
                if self.outside.find(&reached).is_some() {
                    return Err(format!("{c:?}: refused yet reached the outside"));
                }
                let at_box = self.farm.nodes[0]
                    .sim
                    .sip_received()
                    .iter()
                    .any(|s| s.call_id == call_id);
                if at_box {
                    return Err(format!("{c:?}: refused yet reached the box"));
                }
                Ok(())
            }
            Expect::Stays => {
                // Answered (by the proxy or the box), or not within the
                // case's time: either way it must not be outside.
                let _ = ear.wait(&final_for(&call_id), CASE).await;
                match self.outside.find(&reached) {
                    Some(_) => Err(format!("{c:?}: reached the outside listener")),
                    None => Ok(()),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaves_the_farm_unless_policy_allows() {
    let rig = Arc::new(Rig::start(|_| {}).await);
    let all = cases();
    assert_eq!(all.len(), SOURCES.len() * 4 * 2 * 4 * 6);
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in all.iter().copied().enumerate() {
        let (rig, sem) = (rig.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            rig.run(i, &c).await
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.unwrap() {
            failures.push(e);
        }
    }
    // Every case of the table is exercised: each verdict occurs.
    for want in [Expect::Reaches, Expect::Refused, Expect::Stays] {
        assert!(all.iter().any(|c| expected(c) == want), "{want:?} unused");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(rig.farm.proxy.stats.gate_refusals() > 0);
    rig.farm.stop_proxy().await;
}

/// A phone's preloaded Route with `preloaded_route = "strip"`: routed like
/// any new request (to the box), the Route dropped, nothing outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripped_preloaded_route_goes_to_the_box_not_outside() {
    let rig = Rig::start(|cfg| cfg.security.preloaded_route = PreloadedRoute::Strip).await;
    let c = Case {
        src: Src::Phone,
        ruri: Ruri::OurDomain,
        tag: false,
        route: Preloaded::Foreign,
        method: "MESSAGE",
    };
    let (call_id, text) = rig.request(9000, &c);
    rig.phone.send(rig.farm.proxy_udp(), &text).await;
    let sim = &rig.farm.nodes[0].sim;
    support::wait_until("the box gets the MESSAGE", support::WAIT, || {
        sim.sip_received().iter().any(|s| s.call_id == call_id)
    })
    .await;
    let seen = sim.sip_received();
    let at_box = seen.iter().find(|s| s.call_id == call_id).unwrap();
    assert!(
        !at_box.headers.iter().any(|(n, _)| n == "Route"),
        "{:?}",
        at_box.headers
    );
    assert!(rig.outside.find(&|t| t.contains("case-9000")).is_none());
    rig.farm.stop_proxy().await;
}

/// Flow tokens: a valid one (current or previous secret) is followed; a
/// tampered one, one under an unknown secret, the unsigned form of old,
/// and one re-aimed at another connection are refused with 403 and
/// counted; a connection id in a signed token never serves another peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_flow_tokens_are_refused() {
    let rig = Rig::start(|_| {}).await;
    let proxy = rig.farm.proxy_udp();
    let outside_flow = Flow {
        source: rig.outside.addr,
        transport: Transport::Udp,
        conn: None,
        local: proxy,
    };
    let old = FlowKeys::new(OLD_SECRET.as_bytes(), None);
    let stranger = FlowKeys::new(b"nobody in this farm", None);
    let good = rig.keys.token(&outside_flow);
    let tampered = {
        let (body, sig) = good.rsplit_once('~').unwrap();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        format!("{body}~{flipped}{}", &sig[1..])
    };
    let other_conn = good.replacen("~0~", "~7~", 1);
    let send = |n: usize, token: &str| {
        format!(
            "MESSAGE sip:2000@{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bKtok{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:gate@{DOMAIN}>;tag=n{n}\r\n\
             To: <sip:2000@{DOMAIN}>\r\n\
             Call-ID: tok{n}-{}@matrix\r\n\
             CSeq: 1 MESSAGE\r\n\
             Route: <sip:{proxy};lr;flow={token}>\r\n\
             Subject: tok-{n}\r\n\
             Content-Length: 0\r\n\r\n",
            rig.node.addr,
            std::process::id()
        )
    };
    // From the farm node (which may use our Paths): only the signature decides.
    let before = rig.farm.proxy.stats.forged_routes();
    for (n, token, ok) in [
        (1, good.clone(), true),
        (2, old.token(&outside_flow), true),
        (3, stranger.token(&outside_flow), false),
        (4, tampered, false),
        (5, outside_flow.token(), false),
        (6, other_conn, false),
    ] {
        rig.node.send(proxy, &send(n, &token)).await;
        let mark = format!("Subject: tok-{n}\r\n");
        if ok {
            let got = rig.outside.wait(&|t| t.contains(&mark), CASE).await;
            assert!(got.is_some(), "token {n} ({token}) not followed");
        } else {
            let call_id = format!("tok{n}-{}@matrix", std::process::id());
            let got = rig.node.wait(&final_for(&call_id), CASE).await;
            assert_eq!(got.as_deref().and_then(status), Some(403), "token {n}");
            assert!(rig.outside.find(&|t| t.contains(&mark)).is_none());
        }
    }
    assert_eq!(rig.farm.proxy.stats.forged_routes() - before, 4);

    // TCP: a victim phone holds a connection (answered, so the proxy has
    // it); signed tokens naming the outside host with connection ids 1..8
    // (one is the victim's) must all reach the token's own address.
    let mut victim = tokio::net::TcpStream::connect(rig.farm.proxy_tcp())
        .await
        .unwrap();
    let ping = format!(
        "OPTIONS sip:{proxy} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bKvictim\r\n\
         Max-Forwards: 70\r\nFrom: <sip:v@{DOMAIN}>;tag=v\r\nTo: <sip:{proxy}>\r\n\
         Call-ID: victim@matrix\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        victim.local_addr().unwrap()
    );
    victim.write_all(ping.as_bytes()).await.unwrap();
    let mut got = vec![0u8; 4096];
    let n = tokio::time::timeout(CASE, victim.read(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("SIP/2.0 200"));
    let outside_tcp = tokio::net::TcpListener::bind("127.0.0.66:0").await.unwrap();
    let tcp_addr = outside_tcp.local_addr().unwrap();
    for conn in 1..=8u64 {
        let flow = Flow {
            source: tcp_addr,
            transport: Transport::Tcp,
            conn: Some(locus_proxy::sip::ConnId(conn)),
            local: proxy,
        };
        let n = 100 + usize::try_from(conn).unwrap();
        rig.node.send(proxy, &send(n, &rig.keys.token(&flow))).await;
    }
    // Each may come over its own new connection (sent concurrently).
    let text = Arc::new(Mutex::new(String::new()));
    let log = text.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = outside_tcp.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16_384];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
    });
    support::wait_until("every token reaches its own address", CASE, || {
        let t = text.lock().unwrap();
        (101..=108).all(|n| t.contains(&format!("Subject: tok-{n}\r\n")))
    })
    .await;
    let mut leak = [0u8; 1024];
    assert!(
        matches!(victim.try_read(&mut leak), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a token's connection id served another peer"
    );
    rig.farm.stop_proxy().await;
}

/// A phone's own `Path` (which the box would store and the proxy replay
/// as Route towards it) never reaches the box: only ours, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_own_path_is_removed_from_its_register() {
    let rig = Rig::start(|_| {}).await;
    let proxy = rig.farm.proxy_udp();
    let call_id = format!("reg-path-{}@matrix", std::process::id());
    let from = rig.phone.addr;
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKregpath;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1000@{DOMAIN}>;tag=rp\r\n\
         To: <sip:1000@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:1000@{from}>\r\n\
         Path: <sip:{};lr>\r\n\
         Expires: 60\r\n\
         Content-Length: 0\r\n\r\n",
        rig.outside.addr
    );
    rig.phone.send(proxy, &text).await;
    let sim = &rig.farm.nodes[0].sim;
    support::wait_until("the box gets the REGISTER", support::WAIT, || {
        sim.sip_received().iter().any(|s| s.call_id == call_id)
    })
    .await;
    let seen = sim.sip_received();
    let reg = seen.iter().find(|s| s.call_id == call_id).unwrap();
    let paths: Vec<&str> = reg
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Path"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    let ours = format!("<sip:{proxy};lr;flow=u~{from}~0~");
    assert!(paths[0].starts_with(&ours), "{paths:?}");
    rig.farm.stop_proxy().await;
}

/// The way through: a phone's real dialog. The 2xx carries our
/// Record-Route signed for its Call-ID, and the phone's BYE along it
/// reaches the box; the same BYE with the signature of another dialog is
/// refused as forged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_bye_along_our_signed_record_route_reaches_the_box() {
    use support::regtrust::{RawSip, request};
    let rig = Rig::start(|_| {}).await;
    let proxy = rig.farm.proxy_udp();
    let phone = RawSip::bind("127.0.0.12").await;
    let invite = request(
        "INVITE",
        &format!("sip:9196@{DOMAIN}"),
        phone.local,
        &format!("sip:1000@{DOMAIN}"),
        &format!("sip:9196@{DOMAIN}"),
        "",
    );
    let creds = ("1000", locus_sim::VANILLA_PASSWORD);
    let (status, ok) = phone
        .final_response_authed(proxy, &invite, creds, support::WAIT)
        .await
        .expect("INVITE answered");
    assert_eq!(status, 200, "{ok}");
    let header = |name: &str| {
        ok.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_string()
    };
    let call_id = header("Call-ID");
    let rr = header("Record-Route");
    let sig = rig.keys.record_route_sig(&call_id);
    // The phone's side carries its own flow (issue 8: a NATed phone's
    // dialog is reached through it); the phone's BYE, coming from that
    // flow, goes on to the box.
    let own = Flow {
        source: phone.local,
        transport: Transport::Udp,
        conn: None,
        local: proxy,
    };
    let token = rig.keys.token(&own);
    assert_eq!(rr, format!("<sip:{proxy};lr;flow={token};lsig={sig}>"));
    let contact = header("Contact");
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    let bye = |route: &str, branch: &str| {
        format!(
            "BYE {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: 3 BYE\r\n\
             Route: {route}\r\nContent-Length: 0\r\n\r\n",
            phone.local,
            header("From"),
            header("To"),
        )
    };
    let other = rig.keys.record_route_sig("another dialog");
    let stolen = format!("<sip:{proxy};lr;flow={token};lsig={other}>");
    let (s, text) = phone
        .final_response(proxy, &bye(&stolen, "byestolen"), support::WAIT)
        .await
        .expect("forged BYE answered");
    assert_eq!(s, 403, "{text}");
    let (s, text) = phone
        .final_response(proxy, &bye(&rr, "byeok"), support::WAIT)
        .await
        .expect("BYE answered");
    assert_eq!(s, 200, "{text}");
    rig.farm.stop_proxy().await;
}
