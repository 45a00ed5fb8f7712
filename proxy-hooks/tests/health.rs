//! OPTIONS health probes on real loopback sockets: a responder built on
//! `SipTransport` that answers 200, goes silent, comes back, answers 503 or
//! 404; TCP targets; real `sipp` as a UAS (skipped when not installed);
//! config, targets and the `FarmSnapshot::build_with` fold.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use locus_proxy::health::{HealthError, ProbeState, targets_of};
use locus_proxy::routing::config::StaticNode;
use locus_proxy::sip::{Inbound, SipMessage, SipTransport, Transport, TransportConfig, Uri};
use locus_proxy::{FarmSnapshot, Health, HealthConfig, RoutingConfig};
use locus_schema::NodeId;
use locus_schema::testing::ports;
use support::{Farm, id, sipp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

fn fast() -> HealthConfig {
    HealthConfig {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(100),
        down_after: 3,
        up_after: 2,
    }
}

fn listen() -> TransportConfig {
    let any = vec!["127.0.0.1:0".parse().unwrap()];
    TransportConfig {
        udp: any.clone(),
        tcp: Some(any),
        ..Default::default()
    }
}

/// Polls `cond` every 5 ms until it holds or [`WAIT`] passes.
async fn until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// The proxy side: a transport, a prober on it, and the receive loop that
/// feeds responses to `on_response` (counting what it did not consume).
struct Proxy {
    health: Health,
    foreign: Arc<AtomicU64>,
    cancel: CancellationToken,
}

async fn proxy(cfg: HealthConfig) -> Proxy {
    let cancel = CancellationToken::new();
    let (t, mut rx) = SipTransport::bind(listen(), cancel.clone()).await.unwrap();
    let health = Health::new(cfg, t);
    let foreign = Arc::new(AtomicU64::new(0));
    let (h, f, c) = (health.clone(), foreign.clone(), cancel.clone());
    tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                _ = c.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            if !h.on_response(&m.msg) {
                f.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let h = health.clone();
    let c = cancel.clone();
    tokio::spawn(async move { h.run(c).await });
    Proxy {
        health,
        foreign,
        cancel,
    }
}

/// A box's SIP stack: answers OPTIONS with `status` (0 = silent) and hands
/// every request it sees to `seen`.
struct Box_ {
    status: Arc<AtomicU16>,
    t: SipTransport,
    seen: mpsc::UnboundedReceiver<Inbound>,
    cancel: CancellationToken,
}

async fn responder(status: u16) -> Box_ {
    let cancel = CancellationToken::new();
    let (t, mut rx) = SipTransport::bind(listen(), cancel.clone()).await.unwrap();
    let st = Arc::new(AtomicU16::new(status));
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (t2, st2, c) = (t.clone(), st.clone(), cancel.clone());
    tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                _ = c.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            let code = st2.load(Ordering::Relaxed);
            if code != 0 {
                let reply = m.msg.reply(code, "Test", Some("box")).to_bytes();
                t2.send(m.source, m.transport, reply, m.conn).await.unwrap();
            }
            let _ = seen_tx.send(m);
        }
    });
    Box_ {
        status: st,
        t,
        seen,
        cancel,
    }
}

fn target(name: &str, b: &Box_, transport: Transport) -> (NodeId, Uri) {
    let uri = match transport {
        Transport::Udp => format!("sip:{}", b.t.udp_addrs()[0]),
        Transport::Tcp => format!("sip:{};transport=tcp", b.t.tcp_addrs()[0]),
    };
    (id(name), Uri::parse(&uri).unwrap())
}

#[tokio::test]
async fn first_200_brings_a_node_up_and_the_probe_is_rfc3261() {
    let mut b = responder(200).await;
    let p = proxy(fast()).await;
    assert!(
        p.health
            .set_targets(vec![target("fs1", &b, Transport::Udp)])
            .is_empty()
    );
    assert!(!p.health.is_up(&id("fs1")), "unknown is not up");
    assert!(until(|| p.health.is_up(&id("fs1"))).await);
    assert_eq!(p.health.state(&id("fs1")), Some(ProbeState::Up));
    assert!(!p.health.is_up(&id("other")));

    let first = b.seen.recv().await.unwrap().msg;
    let second = b.seen.recv().await.unwrap().msg;
    assert_eq!(first.method(), Some("OPTIONS"));
    let via = first.top_via().unwrap();
    assert_eq!(via.transport, "UDP");
    assert!(via.branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(via.rport(), Some(None), "rport requested");
    assert_eq!(first.headers.get("Max-Forwards"), Some("70"));
    assert!(first.from().unwrap().tag().is_some());
    assert!(first.to().unwrap().tag().is_none());
    assert_eq!(first.cseq().unwrap().1, "OPTIONS");
    assert_eq!(first.content_length().unwrap(), Some(0));
    assert!(!first.call_id().unwrap().is_empty());
    // Each probe is its own transaction.
    assert_ne!(second.top_via().unwrap().branch(), via.branch());
    assert_ne!(second.call_id().unwrap(), first.call_id().unwrap());
    assert!(second.cseq().unwrap().0 > first.cseq().unwrap().0);

    let s = p.health.stats();
    assert!(until(|| s.ok.load(Ordering::Relaxed) >= 3).await);
    assert_eq!(s.went_up.load(Ordering::Relaxed), 1);
    assert_eq!(
        p.foreign.load(Ordering::Relaxed),
        0,
        "every response consumed"
    );
    p.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn a_target_added_later_is_probed_at_once_not_an_interval_later() {
    let a = responder(200).await;
    let b = responder(200).await;
    // An interval far longer than WAIT: only the immediate probe of a new
    // target can bring it up in time.
    let p = proxy(HealthConfig {
        interval: Duration::from_secs(600),
        ..fast()
    })
    .await;
    // The first target up proves a round has run (no fixed sleep): the
    // next periodic one is 600 s away.
    let first = vec![target("fs0", &a, Transport::Udp)];
    assert!(p.health.set_targets(first.clone()).is_empty());
    assert!(until(|| p.health.is_up(&id("fs0"))).await, "first round");
    let sent = p.health.stats().sent.load(Ordering::Relaxed);
    let mut both = first;
    both.push(target("fs1", &b, Transport::Udp));
    assert!(p.health.set_targets(both).is_empty());
    assert!(
        until(|| p.health.is_up(&id("fs1"))).await,
        "new target probed at once"
    );
    assert!(p.health.stats().sent.load(Ordering::Relaxed) > sent);
    p.cancel.cancel();
    a.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn silence_takes_a_node_down_and_answers_bring_it_back() {
    let b = responder(200).await;
    let p = proxy(fast()).await;
    p.health
        .set_targets(vec![target("fs1", &b, Transport::Udp)]);
    let fs1 = id("fs1");
    assert!(until(|| p.health.is_up(&fs1)).await);

    let s = p.health.stats();
    let before = s.timeouts.load(Ordering::Relaxed);
    b.status.store(0, Ordering::Relaxed);
    assert!(until(|| !p.health.is_up(&fs1)).await, "silent box stays up");
    assert!(
        s.timeouts.load(Ordering::Relaxed) - before >= 3,
        "down before down_after failures"
    );
    assert_eq!(p.health.state(&fs1), Some(ProbeState::Down));

    let ok_before = s.ok.load(Ordering::Relaxed);
    b.status.store(200, Ordering::Relaxed);
    assert!(until(|| p.health.is_up(&fs1)).await, "box never came back");
    assert!(
        s.ok.load(Ordering::Relaxed) - ok_before >= 2,
        "up before up_after successes"
    );
    assert_eq!(s.went_down.load(Ordering::Relaxed), 1);
    assert_eq!(s.went_up.load(Ordering::Relaxed), 2);
    p.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn answer_503_is_down_and_404_is_alive() {
    let b503 = responder(503).await;
    let b404 = responder(404).await;
    let p = proxy(fast()).await;
    p.health.set_targets(vec![
        target("busy", &b503, Transport::Udp),
        target("strict", &b404, Transport::Udp),
    ]);
    let (busy, strict) = (id("busy"), id("strict"));
    assert!(until(|| p.health.state(&busy) == Some(ProbeState::Down)).await);
    assert!(p.health.is_up(&strict));
    assert!(!p.health.is_up(&busy));
    let s = p.health.stats();
    assert!(until(|| s.unavailable.load(Ordering::Relaxed) >= 3).await);
    assert_eq!(
        p.health.state(&busy),
        Some(ProbeState::Down),
        "503 brought it back"
    );
    p.cancel.cancel();
    b503.cancel.cancel();
    b404.cancel.cancel();
}

#[tokio::test]
async fn tcp_targets_are_probed_over_tcp() {
    let mut b = responder(200).await;
    let p = proxy(fast()).await;
    p.health
        .set_targets(vec![target("fs1", &b, Transport::Tcp)]);
    assert!(until(|| p.health.is_up(&id("fs1"))).await);
    let m = b.seen.recv().await.unwrap();
    assert_eq!(m.transport, Transport::Tcp);
    assert_eq!(m.msg.top_via().unwrap().transport, "TCP");
    p.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn unreachable_tcp_target_goes_down_on_send_errors() {
    // A port nothing listens on: connect is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = proxy(fast()).await;
    let uri = Uri::parse(&format!("sip:127.0.0.1:{port};transport=tcp")).unwrap();
    p.health.set_targets(vec![(id("gone"), uri)]);
    let s = p.health.stats();
    assert!(until(|| p.health.state(&id("gone")) == Some(ProbeState::Down)).await);
    assert!(s.send_errors.load(Ordering::Relaxed) + s.timeouts.load(Ordering::Relaxed) >= 3);
    assert!(!p.health.is_up(&id("gone")));
    p.cancel.cancel();
}

#[tokio::test]
async fn set_targets_keeps_state_of_unchanged_nodes_and_refuses_bad_ones() {
    let b = responder(200).await;
    let p = proxy(fast()).await;
    let t = target("fs1", &b, Transport::Udp);
    p.health.set_targets(vec![t.clone()]);
    assert!(until(|| p.health.is_up(&id("fs1"))).await);

    let refused = p.health.set_targets(vec![
        t,
        (id("dns"), Uri::parse("sip:fs2.example.com:5060").unwrap()),
        (
            id("tls"),
            Uri::parse("sip:127.0.0.1:5061;transport=tls").unwrap(),
        ),
        (id("sips"), Uri::parse("sips:127.0.0.1:5061").unwrap()),
    ]);
    assert!(
        p.health.is_up(&id("fs1")),
        "unchanged target lost its state"
    );
    assert_eq!(refused.len(), 3);
    assert!(matches!(refused[0], HealthError::NotAnAddress { .. }));
    assert!(matches!(refused[1], HealthError::Transport { .. }));
    assert_eq!(p.health.state(&id("dns")), None);

    p.health.set_targets(Vec::new());
    assert!(!p.health.is_up(&id("fs1")), "removed target still up");
    p.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn on_response_ignores_requests_and_foreign_branches() {
    let p = proxy(fast()).await;
    let req = SipMessage::parse(
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKabc\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert!(!p.health.on_response(&req));
    let resp = req.reply(200, "OK", None);
    assert!(
        !p.health.on_response(&resp),
        "a phone's response is not ours"
    );
    p.cancel.cancel();
}

#[test]
fn config_parses_humantime_defaults_and_refuses_unknown_keys() {
    let c: HealthConfig = toml::from_str("interval = \"1s\"\ntimeout = \"250ms\"").unwrap();
    assert_eq!(c.interval, Duration::from_secs(1));
    assert_eq!(c.timeout, Duration::from_millis(250));
    assert_eq!((c.down_after, c.up_after), (3, 2));
    let d: HealthConfig = toml::from_str("").unwrap();
    assert_eq!(d.interval, Duration::from_secs(5));
    assert_eq!(d.timeout, Duration::from_secs(2));
    assert!(toml::from_str::<HealthConfig>("intervall = \"1s\"").is_err());
    assert!(d.validate().is_ok());
    let zero: HealthConfig = toml::from_str("down_after = 0").unwrap();
    assert!(zero.validate().is_err());
}

#[test]
fn build_with_folds_probes_into_node_up() {
    let mut cfg = RoutingConfig::default();
    for name in ["st1", "st2"] {
        cfg.static_nodes.push(StaticNode {
            id: id(name),
            sip_uri: format!("sip:127.0.0.1:{}", if name == "st1" { 5090 } else { 5091 }),
            weight: 1,
        });
    }
    let mut farm = Farm::with_nodes(&["fs1", "fs2", "fs3"]);
    farm.esl_down("fs3");
    let probe_up = |n: &NodeId| n.as_str() != "fs2" && n.as_str() != "st2";
    let snap = FarmSnapshot::build_with(&farm.view, 1, &cfg, &probe_up);
    let up = |name: &str| snap.node(snap.find(&id(name)).unwrap()).unwrap().up;
    assert!(up("fs1"));
    assert!(!up("fs2"), "probe down must take an agent node down");
    assert!(!up("fs3"), "probe up does not override ESL down");
    assert!(up("st1"));
    assert!(!up("st2"), "static nodes are routed by probe alone");
    // targets_of lists every node with a readable URI, static ones included.
    let names: Vec<String> = targets_of(&snap)
        .into_iter()
        .map(|(n, _)| n.as_str().to_string())
        .collect();
    assert_eq!(names, ["fs1", "fs2", "fs3", "st1", "st2"]);
}

#[tokio::test]
async fn sipp_uas_is_probed_up_and_down_once_it_exits() {
    let Some(sipp) = sipp() else { return };
    // sipp binds its port itself: started (again on a fresh port if that
    // one was taken) and seen holding it before the probes begin.
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip/uas-options.xml");
    let make = |port: u16| {
        let mut cmd = tokio::process::Command::new(&sipp);
        cmd.args(["-sf", scenario.to_str().unwrap(), "-t", "u1"])
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "4"])
            .args(["-timeout", "10s", "-timeout_error", "-nostdin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let (spawned, port) = ports::spawn_bound(loopback, None, WAIT, make)
        .await
        .unwrap();
    let ports::Spawned::Listening(child) = spawned else {
        panic!("sipp UAS ended before binding: {spawned:?}")
    };
    let p = proxy(fast()).await;
    let uri = Uri::parse(&format!("sip:127.0.0.1:{port}")).unwrap();
    p.health.set_targets(vec![(id("sipp"), uri)]);
    assert!(
        until(|| p.health.is_up(&id("sipp"))).await,
        "sipp UAS never seen up"
    );
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("sipp did not finish")
        .unwrap();
    assert!(
        out.status.success(),
        "sipp failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(p.health.stats().ok.load(Ordering::Relaxed) >= 4);
    // sipp has exited: its port is silent, so the node goes down.
    assert!(until(|| !p.health.is_up(&id("sipp"))).await);
    p.cancel.cancel();
}

/// The probe verdict reaches routing: `FarmSync` with `Health` marks a
/// live agent node up only while its box answers OPTIONS, and a flip is
/// seen without waiting for the periodic re-read.
#[tokio::test]
async fn farm_sync_routes_only_to_nodes_whose_probe_is_up() {
    use locus_proxy::FarmSync;
    use locus_schema::store::memory::MemStore;
    use locus_schema::{EslLink, FarmRead, Keys, NodeStatus, NodeStore};

    let b = responder(200).await;
    let p = proxy(fast()).await;
    let store = Arc::new(MemStore::new(Keys::default()));
    let status = NodeStatus {
        sip_uri: format!("sip:{}", b.t.udp_addrs()[0]),
        esl: EslLink::Up,
        ..NodeStatus::default()
    };
    store
        .lease(&id("fs1"), &status, Duration::from_secs(60))
        .await
        .unwrap();
    let mut cfg = RoutingConfig::default();
    cfg.sync.refresh = Duration::from_secs(30);
    let sync = Arc::new(FarmSync::new(Arc::new(cfg)).with_health(p.health.clone()));
    let token = CancellationToken::new();
    let (s, st, t) = (
        sync.clone(),
        store.clone() as Arc<dyn FarmRead>,
        token.clone(),
    );
    tokio::spawn(async move { s.run(st, t).await });
    let up = |sync: &FarmSync| {
        let snap = sync.snapshot();
        snap.find(&id("fs1"))
            .and_then(|ix| snap.node(ix))
            .is_some_and(|n| n.up)
    };
    assert!(until(|| up(&sync)).await, "probe answered: node routable");
    b.status.store(0, Ordering::Relaxed);
    assert!(
        until(|| !up(&sync)).await,
        "silent box: not routable, long before the 30 s re-read"
    );
    token.cancel();
    p.cancel.cancel();
    b.cancel.cancel();
}
