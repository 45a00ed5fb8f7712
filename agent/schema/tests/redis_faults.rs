//! What a real Redis can do to the store that memory cannot: garbage in
//! keys, passwords, unanswered connections, restarts, dropped
//! subscriptions. Never a panic, never a hang.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod suite;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use locus_schema::store::notice::NOTICE_BUFFER;
use locus_schema::store::redis::RedisStore;
use locus_schema::testing::RedisServer;
use locus_schema::{FarmAdmin, FarmRead, Keys, NodeState, NodeStore, StoreError, Table};
use redis::AsyncCommands;
use suite::{LONG_TTL, PATIENCE, del, eventually, id, ops, set, status};

const TIMEOUT: Duration = Duration::from_secs(2);

fn server() -> RedisServer {
    RedisServer::start().expect("redis-server must be installed to run these tests")
}

async fn connect(url: &str) -> Result<RedisStore, StoreError> {
    RedisStore::connect(url, Keys::default(), TIMEOUT).await
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

use locus_schema::now_ms;

#[tokio::test]
async fn garbage_in_redis_does_not_break_readers() {
    let srv = server();
    let store = connect(&srv.url()).await.unwrap();
    let mut r = raw(&srv.url()).await;
    let (fs1, fs2) = (id("fs1"), id("fs2"));
    store.lease(&fs2, &status(2), LONG_TTL).await.unwrap();
    let old = now_ms() - 60_000;
    let _: () = r.zadd("locus:nodes", "bad}id", old).await.unwrap();
    let _: () = r.zadd("locus:nodes", "fs1", old).await.unwrap();
    let _: () = r.zadd("locus:nodes", "fs3", old).await.unwrap();
    let _: () = r.set("locus:{fs1}:node", "not a hash").await.unwrap();
    let _: () = r
        .hset("locus:{fs2}:calls", "u1", "not json {")
        .await
        .unwrap();
    let _: () = r
        .hset("locus:{fs2}:calls", "u2", &[0xffu8, 0xfe][..])
        .await
        .unwrap();
    let _: () = r.hset("locus:{fs2}:node", "calls", "lots").await.unwrap();
    let _: () = r.hset("locus:{fs2}:node", "state", "weird").await.unwrap();
    let _: () = r.set("locus:{fs2}:ringing", "a string").await.unwrap();
    let _: () = r
        .hset("locus:{fs2}:members", "d/1001", "not json")
        .await
        .unwrap();
    let _: () = r
        .hset("locus:{fs2}:members", "d/1002", r#"{"groups":["sales"]}"#)
        .await
        .unwrap();
    let _: () = r
        .hset("locus:{fs2}:members", "noslash", r#"{"groups":["x"]}"#)
        .await
        .unwrap();
    let _: () = r.set("locus:{fs2}:unreg", "a string").await.unwrap();

    let farm = store.read_farm().await.unwrap();
    assert_eq!(farm.nodes.len(), 3, "{:?}", farm.nodes.keys());
    assert!(!farm.nodes[&fs1].live, "a string is no lease");
    let v2 = &farm.nodes[&fs2];
    assert!(v2.live);
    assert_eq!(v2.image.status.calls, 0);
    assert_eq!(v2.image.status.state, NodeState::Active);
    let calls: Vec<_> = v2.image.table(Table::Calls).collect();
    assert_eq!(calls[0], (&"u1".to_owned(), &"not json {".to_owned()));
    assert_eq!(calls[1].1, "\u{fffd}\u{fffd}");
    assert!(!v2.image.tables.contains_key(&Table::Ringing));
    let members: Vec<_> = farm.members().keys().cloned().collect();
    assert_eq!(members, vec![("d".to_owned(), "1002".to_owned())]);
    assert_eq!(store.node_state(&fs2).await.unwrap(), NodeState::Active);
    // A request queue of the wrong type is an error, never a panic.
    assert!(matches!(
        store.take_unregisters(&fs2, 10).await,
        Err(StoreError::Redis(_))
    ));

    // Writing into a key of the wrong type fails cleanly...
    let bad = ops(vec![set(Table::Ringing, "d/1", "[]")]);
    assert!(matches!(
        store.apply(&fs2, &bad).await,
        Err(StoreError::Redis(_))
    ));
    // ...and a replace heals it.
    store.replace(&fs2, &Default::default()).await.unwrap();
    store.apply(&fs2, &bad).await.unwrap();

    // fs1 (string, no TTL) and fs3 (no keys) are dead; bad}id is dropped.
    let mut reaped = store.reap_expired(Duration::from_secs(1)).await.unwrap();
    reaped.sort();
    assert_eq!(reaped, vec![fs1, id("fs3")]);
    let left: Vec<String> = r.zrange("locus:nodes", 0, -1).await.unwrap();
    assert_eq!(left, vec!["fs2".to_owned()]);
}

#[tokio::test]
async fn auth_is_used_and_failures_are_errors() {
    let srv = RedisServer::start_with_password("s3cret-pw").unwrap();
    let store = connect(&srv.url()).await.unwrap();
    store.ping().await.unwrap();
    store.lease(&id("fs1"), &status(1), LONG_TTL).await.unwrap();
    assert_eq!(store.read_farm().await.unwrap().nodes.len(), 1);

    let port = srv.port();
    for url in [
        format!("redis://127.0.0.1:{port}/0"),
        format!("redis://:wrong-pw@127.0.0.1:{port}/0"),
    ] {
        match connect(&url).await {
            Err(StoreError::Redis(e)) => assert!(!e.to_string().contains("pw"), "{e}"),
            Err(e) => panic!("{url}: wrong error {e}"),
            Ok(_) => panic!("{url}: connected without the password"),
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepted by the kernel's backlog, never read: PING gets no reply.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let t0 = Instant::now();
    let res = RedisStore::connect(&url, Keys::default(), Duration::from_millis(300)).await;
    assert!(matches!(res, Err(StoreError::Timeout)), "{:?}", res.err());
    assert!(t0.elapsed() < PATIENCE);
}

#[tokio::test]
async fn a_paused_server_times_out_then_recovers() {
    let srv = server();
    let store = RedisStore::connect(&srv.url(), Keys::default(), Duration::from_millis(300))
        .await
        .unwrap();
    let mut r = raw(&srv.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(matches!(store.ping().await, Err(StoreError::Timeout)));
    eventually("ping after pause", || async { store.ping().await.is_ok() }).await;
}

#[tokio::test]
async fn store_recovers_after_redis_restarts() {
    let mut srv = server();
    let store = connect(&srv.url()).await.unwrap();
    let n = suite::node_with_one_call(&store).await;

    srv.stop();
    let t0 = Instant::now();
    assert!(store.ping().await.is_err(), "ping with redis down");
    assert!(store.lease(&n, &status(1), LONG_TTL).await.is_err());
    assert!(
        t0.elapsed() < 3 * TIMEOUT,
        "errors must come within the timeout"
    );

    srv.restart().unwrap();
    eventually("reconnect", || async { store.ping().await.is_ok() }).await;
    // The restarted Redis is empty (no persistence): the agent republishes.
    assert!(store.read_farm().await.unwrap().nodes.is_empty());
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    let farm = store.read_farm().await.unwrap();
    assert!(farm.nodes[&n].live);
}

#[tokio::test]
async fn subscription_closes_when_redis_goes_away() {
    let mut srv = server();
    let store = connect(&srv.url()).await.unwrap();
    let mut rx = store.subscribe().await.unwrap();
    store
        .apply(&id("fs1"), &ops(vec![del(Table::Calls, "u")]))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .is_some()
    );
    srv.stop();
    let end = tokio::time::timeout(PATIENCE, rx.recv()).await;
    assert_eq!(end.ok(), Some(None), "receiver must close");
}

#[tokio::test]
async fn slow_subscriber_drops_and_counts() {
    let srv = server();
    let store = Arc::new(connect(&srv.url()).await.unwrap());
    let _rx = store.subscribe().await.unwrap();
    let n = id("fs1");
    let extra = 40;
    for i in 0..NOTICE_BUFFER + extra {
        let change = ops(vec![set(Table::Calls, "u", &i.to_string())]);
        store.apply(&n, &change).await.unwrap();
    }
    eventually("drops counted", || {
        let store = store.clone();
        async move { store.dropped_notices() == extra as u64 }
    })
    .await;
}
