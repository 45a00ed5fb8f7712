//! The HTTP route hook over real loopback HTTP/1.1: a farm in the memory
//! store, read by `FarmSync`, asked through `POST /route`, `GET /route`,
//! `GET /route/du`, `/metrics` and `/healthz`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_proxy::hook::{self, HookAnswer, HookState};
use locus_proxy::{Engine, FarmSync, RoutingConfig};
use locus_schema::store::memory::MemStore;
use locus_schema::{
    CallState, EslLink, GroupEntry, HashOp, Keys, MemberEntry, NodeChange, NodeId, NodeStatus,
    NodeStore, Table,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const D: &str = "d.example.com";
const LEASE: Duration = Duration::from_secs(3600);

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn uri(node: &str) -> String {
    format!("sip:{node}.test:5060")
}

async fn add_node(store: &MemStore, name: &str) {
    let s = NodeStatus {
        sip_uri: uri(name),
        esl: EslLink::Up,
        weight: 100,
        updated_ms: 1,
        ..NodeStatus::default()
    };
    assert!(store.lease(&id(name), &s, LEASE).await.is_ok());
}

/// A call of pickup group `group` ringing on `node`.
/// `fs`'s claim that `ext` (in `group`) is registered there.
async fn member(store: &MemStore, node: &str, ext: &str, group: &str) {
    let claim = MemberEntry {
        groups: vec![group.to_owned()],
        regs: vec![],
    };
    let change = NodeChange {
        ops: vec![HashOp::member(D, ext, Some(&claim))],
        status: None,
    };
    store.apply(&id(node), &change).await.unwrap();
}

async fn group_ringing(store: &MemStore, node: &str, group: &str, since_ms: u64) {
    let e = vec![GroupEntry {
        uuid: format!("u-{group}-{node}"),
        state: CallState::Ringing,
        since_ms,
    }];
    let change = NodeChange {
        ops: vec![HashOp {
            table: Table::Groups,
            field: format!("{D}/{group}"),
            value: Some(serde_json::to_string(&e).unwrap()),
        }],
        status: None,
    };
    store.apply(&id(node), &change).await.unwrap();
}

struct Hook {
    addr: SocketAddr,
    sync: Arc<FarmSync>,
    store: MemStore,
    token: CancellationToken,
}

impl Hook {
    /// A hook over `nodes` (none: an empty farm), before the first read.
    async fn unread(nodes: &[&str]) -> Self {
        let store = MemStore::new(Keys::default());
        for n in nodes {
            add_node(&store, n).await;
        }
        let cfg = Arc::new(RoutingConfig::default());
        let state = HookState {
            engine: Arc::new(Engine::new(&cfg).unwrap()),
            sync: Arc::new(FarmSync::new(cfg)),
        };
        let sync = state.sync.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        tokio::spawn(hook::serve_on(listener, state, token.clone()));
        Self {
            addr,
            sync,
            store,
            token,
        }
    }

    async fn new(nodes: &[&str]) -> Self {
        let h = Self::unread(nodes).await;
        h.read().await;
        h
    }

    async fn read(&self) {
        assert!(self.sync.refresh(&self.store).await);
    }

    /// One request on a fresh connection: (status, body).
    async fn http(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "{head} HTTP/1.1\r\nHost: hook\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        // The server may answer 413 and close before reading all of it.
        let _ = s.write_all(body).await;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
            .await
            .expect("response within 5 s")
            .ok();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, body.to_string())
    }

    async fn post(&self, json: &str) -> (u16, String) {
        self.http("POST /route", json.as_bytes()).await
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.http(&format!("GET {path}"), b"").await
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn answer(body: &str) -> HookAnswer {
    serde_json::from_str(body).unwrap()
}

fn invite(ruri_user: &str, from_user: &str, call_id: &str) -> String {
    serde_json::json!({
        "method": "INVITE", "ruri_user": ruri_user, "ruri_domain": D,
        "from_user": from_user, "from_domain": D, "to_user": ruri_user, "to_domain": D,
        "call_id": call_id, "replaces_call_id": null, "in_dialog": false, "source": "phone",
    })
    .to_string()
}

#[tokio::test]
async fn group_pickup_goes_where_the_group_rings() {
    let h = Hook::new(&["fs1", "fs2", "fs3"]).await;
    group_ringing(&h.store, "fs2", "sales", 20).await;
    group_ringing(&h.store, "fs3", "support", 30).await;
    member(&h.store, "fs1", "2001", "sales").await;
    member(&h.store, "fs1", "2002", "support").await;
    h.read().await;

    let (code, body) = h.post(&invite("*8", "2001", "p1@phone")).await;
    assert_eq!(code, 200, "{body}");
    let a = answer(&body);
    assert_eq!(a.rule, "group_pickup");
    assert_eq!(a.targets[0].node, "fs2");
    assert_eq!(a.targets[0].uri, uri("fs2"));
    assert_eq!((a.missed, a.stale), (None, false));

    let (_, body) = h.post(&invite("*8", "2002", "p2@phone")).await;
    assert_eq!(
        answer(&body).targets[0].node,
        "fs3",
        "another group, another node"
    );
}

#[tokio::test]
async fn get_and_du_agree_with_post() {
    let h = Hook::new(&["fs1", "fs2", "fs3"]).await;
    group_ringing(&h.store, "fs3", "sales", 20).await;
    member(&h.store, "fs1", "2001", "sales").await;
    h.read().await;
    let (_, posted) = h.post(&invite("*8", "2001", "p1@phone")).await;
    let q =
        format!("method=INVITE&ruri_user=%2A8&ruri_domain={D}&from_user=2001&call_id=p1%40phone");
    let (code, got) = h.get(&format!("/route?{q}")).await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(answer(&got), answer(&posted));
    assert_eq!(answer(&got).targets[0].node, "fs3");
    let (code, du) = h.get(&format!("/route/du?{q}")).await;
    assert_eq!((code, du), (200, uri("fs3")));
    // An unencoded '*' works too, and the source forms parse.
    let q = format!("method=INVITE&ruri_user=*8&ruri_domain={D}&from_user=2001&source=node:fs1");
    assert_eq!(h.get(&format!("/route/du?{q}")).await, (200, uri("fs3")));
}

#[tokio::test]
async fn standard_invite_counts_in_flight() {
    let h = Hook::new(&["fs1", "fs2"]).await;
    let (code, body) = h.post(&invite("1234", "1001", "s1@phone")).await;
    assert_eq!(code, 200, "{body}");
    let a = answer(&body);
    assert_eq!(a.rule, "standard");
    assert_eq!(a.targets.len(), 2, "failover list of both nodes");
    let first = id(&a.targets[0].node);
    assert_eq!(h.sync.inflight().count(&first), 1);
    // least_calls now sees the in-flight call: the next goes elsewhere.
    let (_, body) = h.post(&invite("1234", "1001", "s2@phone")).await;
    let second = id(&answer(&body).targets[0].node);
    assert_ne!(first, second);
    assert_eq!(h.sync.inflight().count(&second), 1);
    // A REGISTER is no INVITE placement: no in-flight count added.
    let (_, body) = h
        .post(
            r#"{"method":"REGISTER","ruri_domain":"d.example.com","to_user":"1001","call_id":"r"}"#,
        )
        .await;
    let a = answer(&body);
    assert_eq!(a.rule, "register");
    assert_eq!(h.sync.inflight().count(&id(&a.targets[0].node)), 1);
}

#[tokio::test]
async fn a_retry_with_the_same_call_id_goes_where_the_first_went() {
    // Kamailio asks again for the phone's authenticated retry (same
    // Call-ID): the box that challenged it, not counted in flight again,
    // although least_calls would now prefer the other node.
    let h = Hook::new(&["fs1", "fs2"]).await;
    let (_, first) = h.post(&invite("1234", "1001", "c1@phone")).await;
    let (_, again) = h.post(&invite("1234", "1001", "c1@phone")).await;
    let (first, again) = (answer(&first), answer(&again));
    assert_eq!(again.targets[0].node, first.targets[0].node);
    assert_eq!(again.targets.len(), 2, "failover list kept");
    assert_eq!(h.sync.inflight().count(&id(&first.targets[0].node)), 1);
    let (code, text) = h.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(text.contains("locus_proxy_affinity_hits_total 1"), "{text}");
}

#[tokio::test]
async fn no_live_node_is_503_and_du_404() {
    let h = Hook::new(&[]).await;
    let (code, body) = h.post(&invite("1234", "1001", "n1@phone")).await;
    assert_eq!(code, 503, "{body}");
    let a = answer(&body);
    assert!(a.targets.is_empty());
    assert_eq!(a.rule, "standard");
    let q = format!("method=INVITE&ruri_user=1234&ruri_domain={D}");
    assert_eq!(h.get(&format!("/route/du?{q}")).await, (404, String::new()));
    // In-dialog requests follow the Route set: 200, no target.
    let (code, body) = h
        .post(r#"{"method":"BYE","ruri_domain":"d.example.com","in_dialog":true}"#)
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(answer(&body).rule, "in_dialog");
}

#[tokio::test]
async fn malformed_requests_are_400_with_a_reason() {
    let h = Hook::new(&["fs1"]).await;
    let cases = [
        ("{not json", "JSON"),
        (r#"{"method":"INVITE"}"#, "ruri_domain"),
        (r#"{"method":"IN VITE","ruri_domain":"d"}"#, "method"),
        (
            r#"{"method":"INVITE","ruri_domain":"d","in_dialog":"yes"}"#,
            "JSON",
        ),
        (
            r#"{"method":"INVITE","ruri_domain":"d","source":{"node":""}}"#,
            "source",
        ),
        (
            r#"{"method":"INVITE","ruri_domain":"d","source":"carrier"}"#,
            "JSON",
        ),
        ("", "JSON"),
    ];
    for (json, needle) in cases {
        let (code, body) = h.post(json).await;
        assert_eq!(code, 400, "{json}: {body}");
        let err: serde_json::Value = serde_json::from_str(&body).unwrap();
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{json}: {msg}");
    }
    for q in [
        "method=INVITE",
        "method=INVITE&ruri_domain=d&in_dialog=maybe",
        "method=INVITE&ruri_domain=d&source=pbx",
        "method=INVITE&ruri_domain=d&ruri_user=%FF",
    ] {
        let (code, body) = h.get(&format!("/route?{q}")).await;
        assert_eq!(code, 400, "{q}: {body}");
        assert_eq!(h.get(&format!("/route/du?{q}")).await.0, 400, "{q}");
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let h = Hook::new(&["fs1"]).await;
    let big = format!(
        r#"{{"method":"INVITE","ruri_domain":"d","call_id":"{}"}}"#,
        "x".repeat(hook::BODY_LIMIT)
    );
    let (code, body) = h.post(&big).await;
    assert_eq!(code, 413, "{body}");
    // Just under the cap is fine.
    let fits = format!(
        r#"{{"method":"INVITE","ruri_domain":"d","call_id":"{}"}}"#,
        "x".repeat(hook::BODY_LIMIT - 100)
    );
    assert_eq!(h.post(&fits).await.0, 200);
}

#[tokio::test]
async fn metrics_count_decisions_per_rule() {
    let h = Hook::new(&["fs1"]).await;
    for n in 0..3 {
        h.post(&invite("1234", "1001", &format!("m{n}"))).await;
    }
    h.post(&invite("*8", "1001", "m9")).await; // nothing rings: falls through
    h.post(r#"{"method":"REGISTER","ruri_domain":"d","to_user":"1"}"#)
        .await;
    let (code, text) = h.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains(r#"locus_proxy_route_decisions_total{rule="standard"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"locus_proxy_route_decisions_total{rule="register"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"rule="group_pickup""#), "{text}");
}

#[tokio::test]
async fn healthz_follows_the_snapshot() {
    let h = Hook::unread(&["fs1"]).await;
    let (code, body) = h.get("/healthz").await;
    assert_eq!(code, 503, "stale before the first read: {body}");
    // Routing still answers, flagged stale (the static-only view: no node).
    let (code, body) = h.post(&invite("1234", "1001", "h1")).await;
    assert_eq!(code, 503);
    assert!(answer(&body).stale);
    h.read().await;
    let (code, body) = h.get("/healthz").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = h.post(&invite("1234", "1001", "h2")).await;
    assert_eq!(code, 200);
    assert!(!answer(&body).stale);
}
