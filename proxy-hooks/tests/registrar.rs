//! The registrar (`Location`): Path on the way in, 200 OK mirroring into
//! `reg:`, rule 7 targets for own and other proxies' bindings, expiry,
//! and the fallbacks when the store is down or holds garbage. Messages are
//! SIP text parsed with `SipMessage::parse`; stores are a real
//! `redis-server` and the memory store.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::proxy::{Dest, Flow, FlowKeys, Location, Target};
use locus_proxy::registrar::{OwnAddr, Registrar, RegistrarConfig};
use locus_proxy::sip::{ConnId, NameAddr, SipMessage, Transport, Uri};
use locus_schema::store::memory::MemStore;
use locus_schema::store::redis::RedisStore;
use locus_schema::testing::RedisServer;
use locus_schema::{Keys, NodeId, Store};

const PATIENCE: Duration = Duration::from_secs(10);
const EDGE: &str = "<sip:edge.example.com;lr>";

fn tcp_flow() -> Flow {
    Flow {
        source: "192.0.2.7:40000".parse().unwrap(),
        transport: Transport::Tcp,
        conn: Some(ConnId(9)),
        local: "10.0.0.1:5060".parse().unwrap(),
    }
}

fn parse(text: &str) -> SipMessage {
    SipMessage::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
}

fn register(contact: &str, extra: &str) -> SipMessage {
    parse(&format!(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP 192.0.2.7:40000;branch=z9hG4bK-r1
Max-Forwards: 70
From: <sip:1000@example.com>;tag=f1
To: <sip:1000@Example.com>
Call-ID: reg-call-1
CSeq: 12 REGISTER
Contact: {contact}
User-Agent: Yealink SIP-T46S
{extra}Content-Length: 0

"
    ))
}

fn ok(contact_lines: &str) -> SipMessage {
    parse(&format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/TCP 192.0.2.7:40000;branch=z9hG4bK-r1
From: <sip:1000@example.com>;tag=f1
To: <sip:1000@Example.com>;tag=t9
Call-ID: reg-call-1
CSeq: 12 REGISTER
{contact_lines}Content-Length: 0

"
    ))
}

fn node_target() -> Target {
    Target::node(
        NodeId::new("fs2").unwrap(),
        Uri::parse("sip:10.0.0.12:5080").unwrap(),
    )
}

/// The farm secret every registrar here signs flow tokens with.
fn keys() -> FlowKeys {
    FlowKeys::new(b"registrar test secret", None)
}

fn registrar(store: &Arc<dyn Store>, id: &str, cfg: RegistrarConfig) -> Registrar {
    Registrar::new(store.clone(), cfg, id.into(), OwnAddr::new(None).unwrap()).with_keys(keys())
}

/// REGISTERs `contact` for 1000@example.com through `r` over [`tcp_flow`]
/// (with an edge proxy's Path already on it) and feeds it the box's 200.
async fn register_through(r: &Registrar, contact: &str, granted: &str) {
    let mut req = register(contact, &format!("Path: {EDGE}\nExpires: 3600\n"));
    r.prepare_register(&mut req, &tcp_flow());
    let resp = ok(&format!("Contact: {granted}\n"));
    r.on_register_final(&req, &tcp_flow(), &node_target(), &mut resp.clone())
        .await;
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn path_carries_a_decodable_flow_token_and_supported_lists_path() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new(Keys::default()));
    let r = registrar(&store, "p1", RegistrarConfig::default());
    let mut req = register(
        "<sip:1000@192.168.1.20:5060;transport=tcp>",
        &format!("Path: {EDGE}\nSupported: replaces, timer\n"),
    );
    r.prepare_register(&mut req, &tcp_flow());
    let paths = req.headers.get_all("Path");
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[1], EDGE, "ours goes above the edge proxy's");
    let ours = NameAddr::parse(paths[0]).unwrap();
    assert_eq!(ours.uri.host, "10.0.0.1");
    assert_eq!(ours.uri.port, Some(5060));
    assert_eq!(ours.uri.params.get("lr"), Some(None));
    assert_eq!(ours.uri.params.get("transport"), Some(Some("tcp")));
    let token = ours.uri.params.get("flow").flatten().unwrap();
    let local: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    assert_eq!(keys().open(token, local), Ok(tcp_flow()));
    assert_eq!(req.headers.get("Supported"), Some("replaces, timer, path"));

    // Already listed: left alone; absent: added.
    let mut req = register("<sip:1000@h>", "Supported: PATH\n");
    r.prepare_register(&mut req, &tcp_flow());
    assert_eq!(req.headers.get_all("Supported"), vec!["PATH"]);
    let mut req = register("<sip:1000@h>", "");
    r.prepare_register(&mut req, &tcp_flow());
    assert_eq!(req.headers.get("Supported"), Some("path"));
}

async fn mirrors_the_200_and_targets_own_and_other(store: Arc<dyn Store>) {
    let a = registrar(&store, "p1", RegistrarConfig::default());
    let b = registrar(&store, "p2", RegistrarConfig::default());
    let contact = "<sip:1000@192.168.1.20:5060;transport=tcp>";
    register_through(
        &a,
        contact,
        "<sip:1000@192.168.1.20:5060;transport=tcp>;expires=600",
    )
    .await;
    assert_eq!(a.stats().saved.get(), 1);

    let stored = store.bindings("example.com", "1000").await.unwrap();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    assert_eq!(s.contact, "sip:1000@192.168.1.20:5060;transport=tcp");
    assert_eq!((s.proxy.as_str(), s.transport.as_str()), ("p1", "tcp"));
    assert_eq!(s.received, "192.0.2.7:40000");
    assert_eq!(s.socket, "sip:10.0.0.1:5060;transport=tcp");
    assert_eq!(s.flow, keys().token(&tcp_flow()));
    assert_eq!(s.path, vec![EDGE.to_string()], "our own Path is not stored");
    assert_eq!(s.node.as_ref().map(NodeId::as_str), Some("fs2"));
    assert_eq!((s.call_id.as_str(), s.cseq), ("reg-call-1", 12));
    assert_eq!(s.user_agent.as_deref(), Some("Yealink SIP-T46S"));
    // 600 s from the 200 (not 3600 from the request) plus the 30 s grace.
    let left = s.expires_ms.saturating_sub(now_ms());
    assert!((625_000..=630_000).contains(&left), "{left}");

    let contact_uri = Uri::parse("sip:1000@192.168.1.20:5060;transport=tcp").unwrap();
    // The owning proxy sends over the flow itself, TCP connection included.
    let own = a.lookup("1000", "example.com").await;
    assert_eq!(
        own,
        vec![Target {
            dest: Dest::Flow(tcp_flow()),
            ruri: Some(contact_uri.clone()),
            node: None,
            route: vec![EDGE.into()],
        }]
    );
    // Another proxy goes through the owner, naming the flow.
    let other = b.lookup("1000", "EXAMPLE.com").await;
    assert_eq!(other.len(), 1);
    let t = &other[0];
    assert_eq!(
        t.dest,
        Dest::Uri(Uri::parse("sip:10.0.0.1:5060;transport=tcp").unwrap())
    );
    assert_eq!(t.ruri, Some(contact_uri));
    assert_eq!(t.route.len(), 2);
    assert_eq!(t.route[1], EDGE);
    let via = NameAddr::parse(&t.route[0]).unwrap();
    assert_eq!(via.uri.params.get("lr"), Some(None));
    let local: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let token = via.uri.params.get("flow").flatten().unwrap();
    assert_eq!(keys().open(token, local), Ok(tcp_flow()));
    assert_eq!(
        (a.stats().lookup_hits.get(), b.stats().lookup_hits.get()),
        (1, 1)
    );
    assert!(b.lookup("1001", "example.com").await.is_empty());
    assert_eq!(b.stats().lookup_misses.get(), 1);
}

async fn non_2xx_is_ignored_and_removals_apply(store: Arc<dyn Store>) {
    let a = registrar(&store, "p1", RegistrarConfig::default());
    // A 401 mirrors nothing.
    let mut req = register("<sip:1000@192.168.1.20>", "");
    a.prepare_register(&mut req, &tcp_flow());
    let mut challenge = ok("Contact: <sip:1000@192.168.1.20>;expires=60\n");
    challenge.start = locus_proxy::sip::StartLine::Response {
        status: 401,
        reason: "Unauthorized".into(),
    };
    a.on_register_final(&req, &tcp_flow(), &node_target(), &mut challenge.clone())
        .await;
    assert!(a.lookup("1000", "example.com").await.is_empty());

    register_through(&a, "<sip:1000@192.168.1.20>", "<sip:1000@192.168.1.20>").await;
    register_through(&a, "<sip:1000@192.168.1.21>", "<sip:1000@192.168.1.21>").await;
    assert_eq!(a.lookup("1000", "example.com").await.len(), 2);

    // expires=0 on one contact removes that one.
    let mut req = register("<sip:1000@192.168.1.20>;expires=0", "");
    a.prepare_register(&mut req, &tcp_flow());
    a.on_register_final(&req, &tcp_flow(), &node_target(), &mut ok(""))
        .await;
    let left = a.lookup("1000", "example.com").await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].ruri,
        Some(Uri::parse("sip:1000@192.168.1.21").unwrap())
    );

    // Contact: * with Expires: 0 removes everything.
    let mut req = register("*", "Expires: 0\n");
    a.prepare_register(&mut req, &tcp_flow());
    a.on_register_final(&req, &tcp_flow(), &node_target(), &mut ok(""))
        .await;
    assert!(a.lookup("1000", "example.com").await.is_empty());
    assert!(
        store
            .bindings("example.com", "1000")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.stats().removed.get(), 2);
}

async fn expired_bindings_are_never_returned(store: Arc<dyn Store>) {
    let cfg = RegistrarConfig {
        grace: Duration::ZERO,
        ..Default::default()
    };
    let a = registrar(&store, "p1", cfg.clone());
    let b = registrar(&store, "p2", cfg);
    register_through(
        &a,
        "<sip:1000@192.168.1.20>",
        "<sip:1000@192.168.1.20>;expires=1",
    )
    .await;
    assert_eq!(b.lookup("1000", "example.com").await.len(), 1);
    eventually("binding expires", || async {
        a.lookup("1000", "example.com").await.is_empty()
            && b.lookup("1000", "example.com").await.is_empty()
    })
    .await;
}

use locus_schema::now_ms;

async fn redis_store(server: &RedisServer) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::connect(&server.url(), Keys::default(), Duration::from_secs(2))
            .await
            .unwrap(),
    )
}

macro_rules! both {
    ($($name:ident),*) => {
        mod on_redis {
            use super::*;
            $(#[tokio::test] async fn $name() {
                let server = RedisServer::start().expect("redis-server must be installed");
                super::$name(redis_store(&server).await).await;
            })*
        }
        mod on_memory {
            use super::*;
            $(#[tokio::test] async fn $name() {
                super::$name(Arc::new(MemStore::new(Keys::default()))).await;
            })*
        }
    };
}

both!(
    mirrors_the_200_and_targets_own_and_other,
    non_2xx_is_ignored_and_removals_apply,
    expired_bindings_are_never_returned
);

#[tokio::test]
async fn store_down_falls_back_to_own_flows() {
    let mut server = RedisServer::start().unwrap();
    let store = redis_store(&server).await;
    let a = registrar(&store, "p1", RegistrarConfig::default());
    let b = registrar(&store, "p2", RegistrarConfig::default());
    register_through(&a, "<sip:1000@192.168.1.20>", "<sip:1000@192.168.1.20>").await;
    server.stop();

    let started = tokio::time::Instant::now();
    let own = a.lookup("1000", "example.com").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "lookup not bounded"
    );
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].dest, Dest::Flow(tcp_flow()));
    assert!(a.stats().store_errors.get() >= 1);
    // Another proxy has nothing of its own to fall back on.
    assert!(b.lookup("1000", "example.com").await.is_empty());

    // Registering while the store is down: counted, still served locally.
    register_through(&a, "<sip:1000@192.168.1.21>", "<sip:1000@192.168.1.21>").await;
    assert_eq!(a.stats().saved.get(), 1);
    assert!(a.stats().store_errors.get() >= 2);
    assert_eq!(a.lookup("1000", "example.com").await.len(), 2);
}

/// Sends one command as a RESP array (values may hold spaces and quotes).
fn raw(server: &RedisServer, args: &[&str]) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(
        !buf[..n].starts_with(b"-"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn garbage_is_skipped_and_a_restarted_owner_rebuilds_its_flow() {
    let server = RedisServer::start().unwrap();
    let store = redis_store(&server).await;
    let a = registrar(&store, "p1", RegistrarConfig::default());
    register_through(&a, "<sip:1000@192.168.1.20>", "<sip:1000@192.168.1.20>").await;
    let key = Keys::default().reg("example.com", "1000");
    raw(
        &server,
        &["HSET", &key, "sip:1000@bad", "{\"contact\": \"x\", oops"],
    );
    raw(&server, &["HSET", &key, "sip:1000@worse", "[]"]);

    // Same proxy id, new process: no connection ids of the old one.
    let again = registrar(&store, "p1", RegistrarConfig::default());
    let t = again.lookup("1000", "example.com").await;
    assert_eq!(t.len(), 1, "{t:?}");
    let Dest::Flow(f) = &t[0].dest else {
        panic!("own binding not sent over a flow: {:?}", t[0].dest);
    };
    assert_eq!(
        (f.source, f.transport, f.conn),
        (tcp_flow().source, Transport::Tcp, None)
    );
    assert_eq!(f.local, tcp_flow().local);
}
