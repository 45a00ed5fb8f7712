//! Suite: what writes leave in the store (apply, replace, status vs state).

use std::sync::Arc;

use locus_schema::{NodeChange, NodeState, NodeStatus, Store, Table};

use super::*;

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
