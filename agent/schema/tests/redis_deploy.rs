//! How the store sits in a real deployment: the exact key layout operators
//! read with `redis-cli` (docs/redis-schema.md), key prefixes, Sentinel,
//! `open()` and readers on their own connections.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod suite;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::store::redis::RedisStore;
use locus_schema::testing::{RedisSentinel, RedisServer};
use locus_schema::{
    FarmRead, HashOp, Keys, MemberEntry, NodeChange, NodeState, NodeStore, Store, Table,
    UnregRequest,
};
use redis::AsyncCommands;
use suite::{LONG_TTL, id, ops, set, status};

const TIMEOUT: Duration = Duration::from_secs(2);

fn server() -> RedisServer {
    RedisServer::start().expect("redis-server must be installed to run these tests")
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn key_layout_is_the_documented_one() {
    let srv = server();
    let store = locus_schema::store::open(&srv.url(), Keys::default(), TIMEOUT)
        .await
        .unwrap();
    let n = id("fs1");
    store
        .lease(&n, &status(2), Duration::from_secs(30))
        .await
        .unwrap();
    let change = NodeChange {
        ops: vec![
            set(Table::Calls, "u1", r#"{"uuid":"u1"}"#),
            set(Table::Sipcalls, "abc@10.0.0.1", "u1"),
        ],
        status: None,
    };
    store.apply(&n, &change).await.unwrap();
    store.set_node_state(&n, NodeState::Draining).await.unwrap();
    let claim = MemberEntry {
        groups: vec!["sales".to_owned()],
        regs: vec![],
    };
    store
        .apply(
            &n,
            &ops(vec![HashOp::member("d.example", "1001", Some(&claim))]),
        )
        .await
        .unwrap();
    store
        .request_unregister(
            &n,
            &UnregRequest {
                profile: "internal".into(),
                target: "c1".into(),
            },
        )
        .await
        .unwrap();

    let mut r = raw(&srv.url()).await;
    let keys: BTreeSet<String> = r.keys("*").await.unwrap();
    let want: BTreeSet<String> = [
        "locus:nodes",
        "locus:{fs1}:node",
        "locus:{fs1}:calls",
        "locus:{fs1}:sipcalls",
        "locus:{fs1}:members",
        "locus:{fs1}:unreg",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, want);
    let calls: Vec<(String, String)> = r.hgetall("locus:{fs1}:calls").await.unwrap();
    assert_eq!(calls, vec![("u1".into(), r#"{"uuid":"u1"}"#.into())]);
    let node: std::collections::HashMap<String, String> =
        r.hgetall("locus:{fs1}:node").await.unwrap();
    assert_eq!(node["state"], "draining");
    assert_eq!(node["calls"], "2");
    assert_eq!(node["sip_uri"], "sip:127.0.0.1:5080");
    assert_eq!(node["idle_cpu"], "97.25");
    assert_eq!(node.len(), 12, "{node:?}");
    let pttl: i64 = r.pttl("locus:{fs1}:node").await.unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "{pttl}");
    let score: f64 = r.zscore("locus:nodes", "fs1").await.unwrap();
    let farm = store.read_farm().await.unwrap();
    assert_eq!(score as u64, farm.nodes[&n].heartbeat_ms);
    let claim: String = r
        .hget("locus:{fs1}:members", "d.example/1001")
        .await
        .unwrap();
    assert_eq!(claim, r#"{"groups":["sales"]}"#);
    let unreg: Vec<String> = r.lrange("locus:{fs1}:unreg", 0, -1).await.unwrap();
    assert_eq!(
        unreg,
        vec![r#"{"profile":"internal","target":"c1"}"#.to_owned()]
    );
    let ttl: i64 = r.pttl("locus:{fs1}:unreg").await.unwrap();
    assert!(ttl > 0, "the request queue expires on its own: {ttl}");
}

#[tokio::test]
async fn prefixes_keep_farms_apart() {
    let srv = server();
    let a = RedisStore::connect(&srv.url(), Keys::new("a:"), TIMEOUT)
        .await
        .unwrap();
    let b = RedisStore::connect(&srv.url(), Keys::new("b[1]:"), TIMEOUT)
        .await
        .unwrap();
    let n = id("fs1");
    a.lease(&n, &status(1), LONG_TTL).await.unwrap();
    let claim = |g: &str| MemberEntry {
        groups: vec![g.to_owned()],
        regs: vec![],
    };
    b.lease(&n, &status(1), LONG_TTL).await.unwrap();
    a.apply(&n, &ops(vec![HashOp::member("d", "1", Some(&claim("g")))]))
        .await
        .unwrap();
    b.apply(&n, &ops(vec![HashOp::member("d", "2", Some(&claim("h")))]))
        .await
        .unwrap();
    let mut rb = b.subscribe().await.unwrap();
    a.apply(&n, &ops(vec![set(Table::Calls, "u", "{}")]))
        .await
        .unwrap();

    let fa = a.read_farm().await.unwrap();
    let fb = b.read_farm().await.unwrap();
    assert_eq!(fa.nodes.len(), 1);
    assert_eq!(fb.nodes.len(), 1);
    assert_eq!(fb.nodes[&n].image.table(Table::Calls).count(), 0);
    assert_eq!(
        fa.members().keys().collect::<Vec<_>>(),
        vec![&("d".into(), "1".into())]
    );
    assert_eq!(
        fb.members().keys().collect::<Vec<_>>(),
        vec![&("d".into(), "2".into())]
    );
    let none = tokio::time::timeout(Duration::from_millis(200), rb.recv()).await;
    assert!(none.is_err(), "b must not hear a's events");
    let mut r = raw(&srv.url()).await;
    let exists: bool = r.exists("a:{fs1}:calls").await.unwrap();
    assert!(exists);
}

#[tokio::test]
async fn sentinel_url_reaches_the_master() {
    for password in [None, Some("m4ster-pw")] {
        let srv = match password {
            Some(pw) => RedisServer::start_with_password(pw).unwrap(),
            None => server(),
        };
        let sentinel = RedisSentinel::start(&srv, "locus-master").unwrap();
        let url = sentinel.url(password);
        let store = locus_schema::store::open(&url, Keys::default(), TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let n = suite::node_with_one_call(&*store).await;
        let mut rx = store.subscribe().await.unwrap();
        store.set_node_state(&n, NodeState::Draining).await.unwrap();
        assert_eq!(suite::recv(&mut rx).await.node, n);
        // The writes landed on the master itself.
        let mut r = raw(&srv.url()).await;
        let calls: Vec<String> = r.hkeys("locus:{fs1}:calls").await.unwrap();
        assert_eq!(calls, vec!["u".to_owned()]);
        let state: String = r.hget("locus:{fs1}:node", "state").await.unwrap();
        assert_eq!(state, "draining");
    }
}

#[tokio::test]
async fn unknown_sentinel_master_is_an_error() {
    let srv = server();
    let sentinel = RedisSentinel::start(&srv, "known").unwrap();
    let url = format!("redis+sentinel://127.0.0.1:{}/unknown", sentinel.port());
    let res = locus_schema::store::open(&url, Keys::default(), TIMEOUT).await;
    assert!(res.is_err(), "connected to a master nobody announced");
}

/// Separate connections for writer and reader, so nothing but MULTI keeps
/// a reader from seeing a replace half done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_on_other_connections_never_see_half_a_replace() {
    let srv = server();
    let writer: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&srv.url(), Keys::default(), TIMEOUT)
            .await
            .unwrap(),
    );
    let reader: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&srv.url(), Keys::default(), TIMEOUT)
            .await
            .unwrap(),
    );
    let n = id("fs1");
    writer.lease(&n, &status(0), LONG_TTL).await.unwrap();
    let big = |tag: &str| {
        let mut img = locus_schema::NodeImage {
            status: status(0),
            ..Default::default()
        };
        for t in Table::ALL {
            let fields = img.tables.entry(t).or_default();
            // ~150 KB per replace: more than Redis reads from a socket
            // at once (16 KB), so only MULTI keeps it whole.
            for i in 0..200 {
                fields.insert(format!("{tag}{i}"), tag.repeat(100));
            }
        }
        img
    };
    let (a, b) = (big("a"), big("b"));
    writer.replace(&n, &a).await.unwrap();
    let w = {
        let (writer, n, a, b) = (writer.clone(), n.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                writer
                    .replace(&n, if i % 2 == 0 { &b } else { &a })
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..60 {
        let got = reader.read_farm().await.unwrap().nodes[&n].image.clone();
        assert!(got == a || got == b, "torn read");
    }
    w.await.unwrap();
}

/// A real Sentinel failover: the store follows the master to the promoted
/// replica instead of writing to the demoted one forever.
#[tokio::test]
async fn sentinel_failover_moves_writes_to_the_new_master() {
    let (old, new) = (server(), server());
    let mut rn = raw(&new.url()).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(old.port())
        .query_async(&mut rn)
        .await
        .unwrap();
    let sentinel = RedisSentinel::start(&old, "m").unwrap();
    let store = locus_schema::store::open(&sentinel.url(None), Keys::default(), TIMEOUT)
        .await
        .unwrap();
    let n = id("fs1");
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();

    let rs = raw(&format!("redis://127.0.0.1:{}/", sentinel.port())).await;
    suite::eventually("sentinel sees the replica", || {
        let mut rs = rs.clone();
        async move {
            let r: redis::RedisResult<String> = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg("m")
                .query_async(&mut rs)
                .await;
            r.is_ok()
        }
    })
    .await;
    suite::eventually("failover done", || {
        let mut rs = rs.clone();
        let port = new.port().to_string();
        async move {
            // A busy sentinel may time out a query mid-failover: ask again.
            let addr: Option<(String, String)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg("m")
                .query_async(&mut rs)
                .await
                .ok()
                .flatten();
            addr.is_some_and(|(_, p)| p == port)
        }
    })
    .await;
    // Writes in flight while the announcement travels may still hit the
    // demoted master (inherent to Sentinel); soon they must land on the new.
    let new_url = new.url();
    suite::eventually("writes reach the new master", || {
        let (store, n, new_url) = (store.clone(), n.clone(), new_url.clone());
        async move {
            let change = ops(vec![set(Table::Calls, "after", "{}")]);
            if store.apply(&n, &change).await.is_err() {
                return false;
            }
            // Sentinel kills client connections while reconfiguring.
            let Ok(client) = redis::Client::open(new_url) else {
                return false;
            };
            let Ok(mut rn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let calls: Vec<String> = rn.hkeys("locus:{fs1}:calls").await.unwrap_or_default();
            calls == ["after"]
        }
    })
    .await;
}
