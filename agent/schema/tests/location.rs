//! `reg:` bindings and `tenant:` pins: one body per behaviour, run on a
//! real `redis-server` and on the memory store; plus what only Redis can
//! show (garbage written by hand, key TTLs).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::store::memory::MemStore;
use locus_schema::store::redis::RedisStore;
use locus_schema::testing::RedisServer;
use locus_schema::{Binding, Keys, NodeId, Store};

const PATIENCE: Duration = Duration::from_secs(10);

use locus_schema::now_ms;

fn binding(contact: &str, expires_ms: u64) -> Binding {
    Binding {
        contact: contact.into(),
        received: "192.0.2.7:40000".into(),
        transport: "udp".into(),
        proxy: "p1".into(),
        socket: "sip:10.0.0.1:5060".into(),
        flow: "u~192.0.2.7:40000~0".into(),
        path: vec!["<sip:edge.example.com;lr>".into()],
        expires_ms,
        user_agent: Some("Yealink".into()),
        node: Some(NodeId::new("fs1").unwrap()),
        nat: true,
        unreachable: true,
        instance: None,
        reg_id: None,
        call_id: "reg-1".into(),
        cseq: 7,
    }
}

fn contacts(mut v: Vec<Binding>) -> Vec<String> {
    v.sort_by(|a, b| a.contact.cmp(&b.contact));
    v.into_iter().map(|b| b.contact).collect()
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

async fn put_read_remove(store: Arc<dyn Store>) {
    let later = now_ms() + 600_000;
    let a = binding("sip:1000@192.0.2.7:5060", later);
    let b = binding("sip:1000@198.51.100.9:5070;transport=tcp", later + 1);
    // Case differs between writes and reads: one key.
    store.put_binding("Example.COM", "1000", &a).await.unwrap();
    store.put_binding("example.com", "1000", &b).await.unwrap();
    let got = store.bindings("EXAMPLE.com", "1000").await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&a) && got.contains(&b), "{got:?}");
    // The whole location, as `locus inspect registrations` reads it.
    store.put_binding("example.com", "2000", &a).await.unwrap();
    let mut all = store.all_bindings(100).await.unwrap();
    all.sort_by(|x, y| (&x.1, &x.2.contact).cmp(&(&y.1, &y.2.contact)));
    let seen: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|(d, u, b)| (d.as_str(), u.as_str(), b.contact.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("example.com", "1000", a.contact.as_str()),
            ("example.com", "1000", b.contact.as_str()),
            ("example.com", "2000", a.contact.as_str()),
        ]
    );
    assert!(store.all_bindings(1).await.unwrap().len() <= 2);
    store.remove_bindings("example.com", "2000").await.unwrap();
    assert!(
        store
            .bindings("example.com", "1001")
            .await
            .unwrap()
            .is_empty()
    );

    // Upsert replaces the same contact.
    let mut a2 = a.clone();
    a2.cseq = 8;
    store.put_binding("example.com", "1000", &a2).await.unwrap();
    let got = store.bindings("example.com", "1000").await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&a2));

    store
        .remove_binding("example.com", "1000", &a.contact)
        .await
        .unwrap();
    let got = store.bindings("example.com", "1000").await.unwrap();
    assert_eq!(contacts(got), vec![b.contact.clone()]);

    store.put_binding("example.com", "1000", &a).await.unwrap();
    store.remove_bindings("example.com", "1000").await.unwrap();
    assert!(
        store
            .bindings("example.com", "1000")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn proxy_ids(store: &Arc<dyn Store>) -> Vec<String> {
    let mut ids: Vec<String> = store
        .proxies()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    ids.sort();
    ids
}

async fn proxy_leases_are_one_instance_per_id(store: Arc<dyn Store>) {
    let lease = |id: &str, instance: &str| locus_schema::ProxyLease {
        id: id.into(),
        instance: instance.into(),
        sockets: vec!["sip:127.0.0.1:5060".into()],
        advertise: None,
        started_ms: now_ms(),
    };
    let ttl = Duration::from_millis(400);
    assert_eq!(
        store.claim_proxy(&lease("p1", "a"), ttl).await.unwrap(),
        None
    );
    // The same instance refreshes; another one under the id is refused.
    assert_eq!(
        store.claim_proxy(&lease("p1", "a"), ttl).await.unwrap(),
        None
    );
    let held = store.claim_proxy(&lease("p1", "b"), ttl).await.unwrap();
    assert_eq!(held.map(|l| l.instance), Some("a".to_string()));
    assert_eq!(
        store.claim_proxy(&lease("p2", "c"), ttl).await.unwrap(),
        None
    );
    assert_eq!(proxy_ids(&store).await, vec!["p1", "p2"]);
    // Release only by the holder; a lapsed lease frees the id.
    store.release_proxy("p2", "not-c").await.unwrap();
    store.release_proxy("p1", "a").await.unwrap();
    assert_eq!(proxy_ids(&store).await, vec!["p2"]);
    eventually("p2's lease lapses", || {
        let store = store.clone();
        async move { store.proxies().await.unwrap().is_empty() }
    })
    .await;
    assert_eq!(
        store.claim_proxy(&lease("p2", "d"), ttl).await.unwrap(),
        None
    );
}

async fn expired_bindings_are_never_returned(store: Arc<dyn Store>) {
    let now = now_ms();
    store
        .put_binding("d", "u", &binding("sip:old@h", now - 1))
        .await
        .unwrap();
    store
        .put_binding("d", "u", &binding("sip:live@h", now + 600_000))
        .await
        .unwrap();
    store
        .put_binding("d", "u", &binding("sip:short@h", now + 300))
        .await
        .unwrap();
    let got = contacts(store.bindings("d", "u").await.unwrap());
    assert_eq!(got, vec!["sip:live@h", "sip:short@h"]);
    eventually("short binding expires", || {
        let store = store.clone();
        async move { contacts(store.bindings("d", "u").await.unwrap()) == vec!["sip:live@h"] }
    })
    .await;
}

async fn tenants_are_read_with_the_farm(store: Arc<dyn Store>) {
    let fs2 = NodeId::new("fs2").unwrap();
    store
        .set_tenant("T1.Example.com", Some(&fs2))
        .await
        .unwrap();
    store
        .set_tenant("t2.example.com", Some(&NodeId::new("fs3").unwrap()))
        .await
        .unwrap();
    let farm = store.read_farm().await.unwrap();
    assert_eq!(farm.tenants.get("t1.example.com"), Some(&fs2));
    assert_eq!(farm.tenants.len(), 2);
    store.set_tenant("t1.example.com", None).await.unwrap();
    let farm = store.read_farm().await.unwrap();
    assert!(!farm.tenants.contains_key("t1.example.com"));
    assert_eq!(farm.tenants.len(), 1);
}

async fn redis() -> (RedisServer, Arc<dyn Store>) {
    let server = RedisServer::start().expect("redis-server must be installed to run these tests");
    let store = RedisStore::connect(&server.url(), Keys::default(), Duration::from_secs(2))
        .await
        .unwrap();
    (server, Arc::new(store))
}

async fn mem() -> ((), Arc<dyn Store>) {
    ((), Arc::new(MemStore::new(Keys::default())))
}

macro_rules! both {
    ($($name:ident),*) => {
        mod on_redis {
            use super::*;
            $(#[tokio::test] async fn $name() { let (_g, s) = redis().await; super::$name(s).await; })*
        }
        mod on_memory {
            use super::*;
            $(#[tokio::test] async fn $name() { let (_g, s) = mem().await; super::$name(s).await; })*
        }
    };
}

both!(
    proxy_leases_are_one_instance_per_id,
    put_read_remove,
    expired_bindings_are_never_returned,
    tenants_are_read_with_the_farm
);

/// A raw command on the test server.
async fn raw(server: &RedisServer, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

#[tokio::test]
async fn redis_garbage_is_skipped_and_the_key_expires_after_the_latest() {
    let (server, store) = redis().await;
    let key = Keys::default().reg("d", "u");
    raw(&server, &["HSET", &key, "sip:bad@h", "{not json"]).await;
    raw(&server, &["HSET", &key, "sip:worse@h", "{\"contact\":5}"]).await;
    let latest = now_ms() + 120_000;
    store
        .put_binding("d", "u", &binding("sip:good@h", latest))
        .await
        .unwrap();
    store
        .put_binding("d", "u", &binding("sip:early@h", latest - 60_000))
        .await
        .unwrap();
    let got = contacts(store.bindings("d", "u").await.unwrap());
    assert_eq!(got, vec!["sip:early@h", "sip:good@h"]);
    // The script left the garbage alone (it goes with the key).
    assert_eq!(raw(&server, &["HLEN", &key]).await, redis::Value::Int(4));
    let redis::Value::Int(pttl) = raw(&server, &["PTTL", &key]).await else {
        panic!("PTTL not an integer");
    };
    let want = i64::try_from(latest - now_ms()).unwrap() + 60_000;
    assert!(
        pttl > want - 5_000 && pttl <= want + 1_000,
        "pttl {pttl}, want ~{want}"
    );

    // A reg key of the wrong type reads as no bindings, not an error.
    let other = Keys::default().reg("d", "v");
    raw(&server, &["SET", &other, "x"]).await;
    assert!(store.bindings("d", "v").await.unwrap().is_empty());

    // A tenant pin that is not a node id, or not a string, is skipped.
    let t = Keys::default();
    raw(&server, &["SET", &t.tenant("bad.example"), "no{pe}"]).await;
    raw(&server, &["SADD", &t.tenant("set.example"), "fs1"]).await;
    raw(&server, &["SET", &t.tenant("ok.example"), "fs1"]).await;
    let farm = store.read_farm().await.unwrap();
    assert_eq!(farm.tenants.keys().collect::<Vec<_>>(), vec!["ok.example"]);
}

/// `docs/redis-schema.md` shows a `Binding`; it must parse and round-trip
/// (a misspelled optional field would otherwise vanish silently).
#[test]
fn documented_binding_is_a_binding() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/redis-schema.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc.find("```json Binding\n").unwrap() + "```json Binding\n".len();
    let body = &doc[start..start + doc[start..].find("```").unwrap()];
    let b: Binding = serde_json::from_str(body).unwrap();
    assert_eq!(b.path.len(), 1);
    let raw: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(serde_json::to_value(&b).unwrap(), raw);
}
