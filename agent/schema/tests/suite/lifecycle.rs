//! Suite: nodes coming and going (isolation, expiry, janitor, delete),
//! memberships, notices, ping.

use std::sync::Arc;
use std::time::Duration;

use locus_schema::store::MAX_UNREG;
use locus_schema::{
    HashOp, MemberEntry, NodeChange, NodeState, RegClaim, Store, Table, UnregRequest,
};

use super::*;

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

pub async fn extreme_lease_ttls_are_clamped(store: Arc<dyn Store>) {
    let (forever, zero) = (id("forever"), id("zero"));
    store
        .lease(&forever, &status(1), Duration::MAX)
        .await
        .unwrap();
    store
        .lease(&zero, &status(1), Duration::ZERO)
        .await
        .unwrap();
    let farm = store.read_farm().await.unwrap();
    assert!(farm.nodes[&forever].live);
    eventually("zero lease expiry", || {
        let (store, zero) = (store.clone(), zero.clone());
        async move { !store.read_farm().await.unwrap().nodes[&zero].live }
    })
    .await;
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

/// Membership is the union of the live nodes' claims: a claim lost on one
/// node (its binding expired) leaves the user's groups from another; a dead
/// node's claims do not count.
pub async fn members_are_the_union_of_live_claims(store: Arc<dyn Store>) {
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let entry = |groups: &[&str], call_id: &str| MemberEntry {
        groups: g(groups),
        regs: vec![RegClaim {
            call_id: call_id.into(),
            contact: String::new(),
            profile: "internal".into(),
        }],
    };
    let claim = |ext: &str, e: Option<&MemberEntry>| NodeChange {
        ops: vec![HashOp::member("D.example", ext, e)],
        status: None,
    };
    let (a, b, dead) = (id("fs-a"), id("fs-b"), id("fs-dead"));
    for n in [&a, &b] {
        store.lease(n, &status(0), LONG_TTL).await.unwrap();
    }
    store
        .lease(&dead, &status(0), Duration::from_millis(50))
        .await
        .unwrap();
    let (sales_all, all_ops) = (entry(&["sales", "all"], "c1"), entry(&["all", "ops"], "c2"));
    store
        .apply(&a, &claim("1001", Some(&sales_all)))
        .await
        .unwrap();
    store
        .apply(&b, &claim("1001", Some(&all_ops)))
        .await
        .unwrap();
    store
        .apply(&b, &claim("1003", Some(&entry(&[], "c3"))))
        .await
        .unwrap();
    store
        .apply(&dead, &claim("1002", Some(&entry(&["ghost"], "c4"))))
        .await
        .unwrap();
    let key = |e: &str| ("d.example".to_owned(), e.to_owned());
    eventually("the short lease lapses", || async {
        let farm = store.read_farm().await.unwrap();
        !farm.nodes[&dead].live
    })
    .await;
    let farm = store.read_farm().await.unwrap();
    let members = farm.members();
    assert_eq!(members[&key("1001")], g(&["all", "ops", "sales"]));
    assert!(
        !members.contains_key(&key("1002")),
        "dead node's claim counted"
    );
    assert!(
        !members.contains_key(&key("1003")),
        "a claim without groups is no membership"
    );
    assert_eq!(farm.claims().filter(|c| c.2 == "1003").count(), 1);

    // A's binding expires: B still claims the user.
    store.apply(&a, &claim("1001", None)).await.unwrap();
    let members = store.read_farm().await.unwrap().members();
    assert_eq!(members[&key("1001")], g(&["all", "ops"]));
    store.apply(&b, &claim("1001", None)).await.unwrap();
    assert!(store.read_farm().await.unwrap().members().is_empty());
}

/// `{id}:unreg` is a queue per node: oldest first, taken once, bounded.
pub async fn unregister_requests_queue_per_node(store: Arc<dyn Store>) {
    let (a, b) = (id("fs-a"), id("fs-b"));
    let req = |t: &str| UnregRequest {
        profile: "internal".into(),
        target: t.into(),
    };
    assert!(store.take_unregisters(&a, 10).await.unwrap().is_empty());
    for t in ["c1", "c2", "1000@d.example"] {
        store.request_unregister(&a, &req(t)).await.unwrap();
    }
    store.request_unregister(&b, &req("cb")).await.unwrap();
    assert_eq!(
        store.take_unregisters(&a, 2).await.unwrap(),
        vec![req("c1"), req("c2")]
    );
    assert_eq!(
        store.take_unregisters(&a, 10).await.unwrap(),
        vec![req("1000@d.example")]
    );
    assert!(store.take_unregisters(&a, 10).await.unwrap().is_empty());
    assert!(store.take_unregisters(&b, 0).await.unwrap().is_empty());
    assert_eq!(
        store.take_unregisters(&b, 10).await.unwrap(),
        vec![req("cb")]
    );
    for i in 0..MAX_UNREG + 5 {
        store
            .request_unregister(&a, &req(&format!("x{i}")))
            .await
            .unwrap();
    }
    let all = store.take_unregisters(&a, usize::MAX).await.unwrap();
    assert_eq!(all.len(), MAX_UNREG);
    assert_eq!(all[0], req("x5"), "the oldest go first");
    // A deleted node's queue goes with it.
    store.request_unregister(&a, &req("late")).await.unwrap();
    store.delete_node(&a).await.unwrap();
    assert!(store.take_unregisters(&a, 10).await.unwrap().is_empty());
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
