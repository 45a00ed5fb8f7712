//! The behavioural suite every [`Store`] backend must pass, written once
//! and run against Redis (`redis_store.rs`) and memory (`mem_store.rs`)
//! through [`store_suite!`]. Expiry is awaited by polling with
//! [`eventually`]: real time on Redis, `tokio::time::pause()` on memory.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::{
    HashOp, NodeChange, NodeId, NodeImage, NodeState, NodeStatus, Notice, NoticeKind, Store, Table,
};

/// A short lease: Redis expires keys with ~ms precision, so one second is
/// plenty to observe and short enough for a test.
pub const SHORT_TTL: Duration = Duration::from_secs(1);
/// A lease that will not run out during a test.
pub const LONG_TTL: Duration = Duration::from_secs(600);
/// How long anything may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Generates one `#[tokio::test]` per suite function; `$cfg` is the
/// attribute's parenthesized arguments. `$make` is an async
/// fn returning `(guard, Arc<dyn Store>)`; the guard (a server) lives for
/// the whole test.
#[macro_export]
macro_rules! store_suite {
    (@each $cfg:tt $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test $cfg]
            async fn $name() {
                let (_guard, store) = $make().await;
                suite::$name(store).await;
            }
        )*
    };
    ($cfg:tt $make:path) => {
        $crate::store_suite!(@each $cfg $make;
            apply_sets_and_deletes_fields,
            apply_writes_status,
            empty_change_writes_nothing,
            replace_removes_stale_fields,
            readers_never_see_half_a_replace,
            lease_makes_live_then_expires,
            state_survives_status_writes,
            node_state_defaults_to_active,
            nodes_do_not_touch_each_other,
            reap_expired_removes_only_dead_nodes,
            delete_node_removes_everything,
            members_add_and_remove,
            subscribe_receives_notices,
            ping_answers,
        );
    };
}

pub fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn set(table: Table, field: &str, value: &str) -> HashOp {
    HashOp {
        table,
        field: field.into(),
        value: Some(value.into()),
    }
}

pub fn del(table: Table, field: &str) -> HashOp {
    HashOp {
        table,
        field: field.into(),
        value: None,
    }
}

pub fn status(calls: u32) -> NodeStatus {
    NodeStatus {
        sip_uri: "sip:127.0.0.1:5080".into(),
        calls,
        weight: 10,
        version: "1.10.12".into(),
        idle_cpu: 97.25,
        ..Default::default()
    }
}

pub fn ops(ops: Vec<HashOp>) -> NodeChange {
    NodeChange { ops, status: None }
}

/// Polls `check` every 50 ms until it holds; panics after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
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

/// The tables of one node as read back.
async fn tables(store: &Arc<dyn Store>, node: &NodeId) -> NodeImage {
    let farm = store.read_farm().await.unwrap();
    farm.nodes
        .get(node)
        .map(|v| v.image.clone())
        .unwrap_or_default()
}

fn table(img: &NodeImage, t: Table) -> Vec<(String, String)> {
    img.table(t).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub async fn apply_sets_and_deletes_fields(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(0), LONG_TTL).await.unwrap();
    let change = ops(vec![
        set(Table::Calls, "u1", r#"{"uuid":"u1"}"#),
        set(Table::Calls, "u2", r#"{"uuid":"u2"}"#),
        set(Table::Ringing, "d/1001", "[]"),
        set(Table::Calls, "tmp", "x"),
        del(Table::Calls, "tmp"),
    ]);
    store.apply(&n, &change).await.unwrap();
    let img = tables(&store, &n).await;
    assert_eq!(
        table(&img, Table::Calls),
        pairs(&[("u1", r#"{"uuid":"u1"}"#), ("u2", r#"{"uuid":"u2"}"#)])
    );
    assert_eq!(table(&img, Table::Ringing), pairs(&[("d/1001", "[]")]));

    let change = ops(vec![
        del(Table::Calls, "u1"),
        set(Table::Calls, "u2", "v2"),
        del(Table::Ringing, "d/1001"),
    ]);
    store.apply(&n, &change).await.unwrap();
    let img = tables(&store, &n).await;
    assert_eq!(table(&img, Table::Calls), pairs(&[("u2", "v2")]));
    assert!(
        !img.tables.contains_key(&Table::Ringing),
        "empty table must vanish"
    );
}

pub async fn apply_writes_status(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    let change = NodeChange {
        ops: vec![set(Table::Sipcalls, "cid@host", "u1")],
        status: Some(status(7)),
    };
    store.apply(&n, &change).await.unwrap();
    let farm = store.read_farm().await.unwrap();
    let view = &farm.nodes[&n];
    assert_eq!(view.image.status, status(7));
    assert!(view.live);
    assert_eq!(
        table(&view.image, Table::Sipcalls),
        pairs(&[("cid@host", "u1")])
    );
}

pub async fn empty_change_writes_nothing(store: Arc<dyn Store>) {
    let n = id("fs1");
    let mut rx = store.subscribe().await.unwrap();
    store.apply(&n, &NodeChange::default()).await.unwrap();
    store
        .apply(&n, &ops(vec![set(Table::Rooms, "d/3000", "2")]))
        .await
        .unwrap();
    let first = recv(&mut rx).await;
    assert_eq!(first.kind, NoticeKind::Change);
    assert_eq!(first.tables, vec!["rooms".to_owned()]);
}

fn image(status: NodeStatus, fields: &[(Table, &str, &str)]) -> NodeImage {
    let mut img = NodeImage {
        status,
        ..Default::default()
    };
    for (t, f, v) in fields {
        img.tables
            .entry(*t)
            .or_default()
            .insert((*f).into(), (*v).into());
    }
    img
}

pub async fn replace_removes_stale_fields(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(0), LONG_TTL).await.unwrap();
    let change = ops(vec![
        set(Table::Calls, "old", "1"),
        set(Table::Calls, "keep", "1"),
        set(Table::Lots, "d/l/1", "old"),
        set(Table::Queues, "d/q", "3"),
    ]);
    store.apply(&n, &change).await.unwrap();
    let want = image(
        status(4),
        &[
            (Table::Calls, "keep", "2"),
            (Table::Calls, "new", "3"),
            (Table::Groups, "d/sales", "[]"),
        ],
    );
    store.replace(&n, &want).await.unwrap();
    let got = tables(&store, &n).await;
    assert_eq!(got, want);
}

pub async fn readers_never_see_half_a_replace(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(0), LONG_TTL).await.unwrap();
    let a = image(
        status(1),
        &[(Table::Calls, "a1", "x"), (Table::Ringing, "d/a", "[]")],
    );
    let b = image(
        status(2),
        &[(Table::Calls, "b1", "y"), (Table::Lots, "d/l/b", "u")],
    );
    store.replace(&n, &a).await.unwrap();
    let writer = {
        let (store, n, a, b) = (store.clone(), n.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..100 {
                let img = if i % 2 == 0 { &b } else { &a };
                store.replace(&n, img).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for _ in 0..100 {
        let got = tables(&store, &n).await;
        assert!(got == a || got == b, "torn read: {got:?}");
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
}

pub async fn lease_makes_live_then_expires(store: Arc<dyn Store>) {
    let n = id("fs1");
    store
        .apply(&n, &ops(vec![set(Table::Calls, "u1", "{}")]))
        .await
        .unwrap();
    let farm = store.read_farm().await.unwrap();
    assert!(!farm.nodes.contains_key(&n), "only leased nodes are listed");

    store.lease(&n, &status(3), SHORT_TTL).await.unwrap();
    let farm = store.read_farm().await.unwrap();
    let view = &farm.nodes[&n];
    assert!(view.live);
    assert_eq!(view.id.as_ref(), Some(&n));
    assert!(
        view.heartbeat_ms > 1_600_000_000_000,
        "{}",
        view.heartbeat_ms
    );
    assert_eq!(view.image.status.calls, 3);

    eventually("lease expiry", || {
        let store = store.clone();
        let n = n.clone();
        async move { !store.read_farm().await.unwrap().nodes[&n].live }
    })
    .await;
    let farm = store.read_farm().await.unwrap();
    let view = &farm.nodes[&n];
    assert_eq!(view.image.status, NodeStatus::default(), "status expired");
    assert_eq!(table(&view.image, Table::Calls), pairs(&[("u1", "{}")]));

    store.lease(&n, &status(5), LONG_TTL).await.unwrap();
    assert!(store.read_farm().await.unwrap().nodes[&n].live, "renewed");
}

pub async fn state_survives_status_writes(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(0), LONG_TTL).await.unwrap();
    store.set_node_state(&n, NodeState::Draining).await.unwrap();
    assert_eq!(store.node_state(&n).await.unwrap(), NodeState::Draining);

    // Every status the agent writes says `active`; none may win.
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    store.replace(&n, &image(status(2), &[])).await.unwrap();
    let change = NodeChange {
        ops: vec![],
        status: Some(status(3)),
    };
    store.apply(&n, &change).await.unwrap();
    assert_eq!(store.node_state(&n).await.unwrap(), NodeState::Draining);
    let farm = store.read_farm().await.unwrap();
    assert_eq!(farm.nodes[&n].image.status.state, NodeState::Draining);
    assert_eq!(farm.nodes[&n].image.status.calls, 3);

    store.set_node_state(&n, NodeState::Active).await.unwrap();
    assert_eq!(store.node_state(&n).await.unwrap(), NodeState::Active);
}

pub async fn node_state_defaults_to_active(store: Arc<dyn Store>) {
    assert_eq!(
        store.node_state(&id("nobody")).await.unwrap(),
        NodeState::Active
    );
}

pub async fn nodes_do_not_touch_each_other(store: Arc<dyn Store>) {
    let (n1, n2) = (id("fs1"), id("fs2"));
    for n in [&n1, &n2] {
        store.lease(n, &status(1), LONG_TTL).await.unwrap();
        store
            .apply(n, &ops(vec![set(Table::Calls, "same-uuid", n.as_str())]))
            .await
            .unwrap();
    }
    store
        .set_node_state(&n2, NodeState::Draining)
        .await
        .unwrap();
    let before = store.read_farm().await.unwrap().nodes[&n2].clone();

    store.replace(&n1, &image(status(9), &[])).await.unwrap();
    store
        .apply(&n1, &ops(vec![del(Table::Calls, "same-uuid")]))
        .await
        .unwrap();
    store.lease(&n1, &status(8), SHORT_TTL).await.unwrap();
    store.set_node_state(&n1, NodeState::Active).await.unwrap();
    assert!(store.delete_node(&n1).await.unwrap());

    let farm = store.read_farm().await.unwrap();
    assert!(!farm.nodes.contains_key(&n1));
    assert_eq!(farm.nodes[&n2], before);
    assert_eq!(
        table(&farm.nodes[&n2].image, Table::Calls),
        pairs(&[("same-uuid", "fs2")])
    );
}

pub async fn reap_expired_removes_only_dead_nodes(store: Arc<dyn Store>) {
    let (dead, alive) = (id("dead"), id("alive"));
    store.lease(&dead, &status(1), SHORT_TTL).await.unwrap();
    store
        .apply(&dead, &ops(vec![set(Table::Calls, "u", "{}")]))
        .await
        .unwrap();
    store.lease(&alive, &status(1), LONG_TTL).await.unwrap();
    eventually("dead lease expiry", || {
        let (store, dead) = (store.clone(), dead.clone());
        async move { !store.read_farm().await.unwrap().nodes[&dead].live }
    })
    .await;

    let none = store.reap_expired(Duration::from_secs(3600)).await.unwrap();
    assert!(none.is_empty(), "within grace: {none:?}");
    assert!(store.read_farm().await.unwrap().nodes.contains_key(&dead));

    let reaped = store.reap_expired(Duration::ZERO).await.unwrap();
    assert_eq!(reaped, vec![dead.clone()]);
    let farm = store.read_farm().await.unwrap();
    assert!(!farm.nodes.contains_key(&dead));
    assert!(farm.nodes[&alive].live);
    assert!(
        !store.delete_node(&dead).await.unwrap(),
        "keys already gone"
    );
}

pub async fn delete_node_removes_everything(store: Arc<dyn Store>) {
    let n = id("fs1");
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    let img = image(status(1), &[(Table::Rooms, "d/3000", "4")]);
    store.replace(&n, &img).await.unwrap();
    assert!(store.delete_node(&n).await.unwrap());
    assert!(store.read_farm().await.unwrap().nodes.is_empty());
    assert!(!store.delete_node(&n).await.unwrap());
    // A re-leased node starts empty.
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    assert!(tables(&store, &n).await.tables.is_empty());
}

pub async fn members_add_and_remove(store: Arc<dyn Store>) {
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .add_members("d.example", "1001", &g(&["sales", "all"]))
        .await
        .unwrap();
    store
        .add_members("d.example", "1001", &g(&["all", "ops"]))
        .await
        .unwrap();
    store
        .add_members("d.example", "1002", &g(&["ops"]))
        .await
        .unwrap();
    store.add_members("d.example", "1003", &[]).await.unwrap();
    let farm = store.read_farm().await.unwrap();
    let key = |e: &str| ("d.example".to_owned(), e.to_owned());
    assert_eq!(farm.members[&key("1001")], g(&["all", "ops", "sales"]));
    assert_eq!(farm.members[&key("1002")], g(&["ops"]));
    assert!(!farm.members.contains_key(&key("1003")));

    store.remove_members("d.example", "1001").await.unwrap();
    let farm = store.read_farm().await.unwrap();
    assert!(!farm.members.contains_key(&key("1001")));
    assert_eq!(farm.members.len(), 1);
}

/// Next notice, parsed; panics after [`PATIENCE`].
pub async fn recv(rx: &mut tokio::sync::mpsc::Receiver<String>) -> Notice {
    let msg = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no notice in time")
        .expect("subscription closed");
    Notice::parse(&msg).unwrap_or_else(|e| panic!("bad notice {msg:?}: {e}"))
}

pub async fn subscribe_receives_notices(store: Arc<dyn Store>) {
    let n = id("fs1");
    let mut rx = store.subscribe().await.unwrap();
    let change = NodeChange {
        ops: vec![
            set(Table::Calls, "u1", "{}"),
            set(Table::Ringing, "d/1", "[]"),
        ],
        status: Some(status(1)),
    };
    store.apply(&n, &change).await.unwrap();
    store.replace(&n, &image(status(1), &[])).await.unwrap();
    store.set_node_state(&n, NodeState::Draining).await.unwrap();
    store.delete_node(&n).await.unwrap();

    let got = recv(&mut rx).await;
    assert_eq!(got.node, n);
    assert_eq!(got.kind, NoticeKind::Change);
    assert_eq!(got.tables, vec!["calls", "ringing", "node"]);
    assert_eq!(recv(&mut rx).await.kind, NoticeKind::Replace);
    let state = recv(&mut rx).await;
    assert_eq!(
        (state.kind, state.tables),
        (NoticeKind::State, vec!["node".into()])
    );
    assert_eq!(recv(&mut rx).await.kind, NoticeKind::Delete);
}

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}
