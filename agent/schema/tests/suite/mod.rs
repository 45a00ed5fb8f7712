//! The behavioural suite every [`Store`] backend must pass, written once
//! and run against Redis (`redis_store.rs`) and memory (`mem_store.rs`)
//! through [`store_suite!`]. Expiry is awaited by polling with
//! [`eventually`]: real time on Redis, `tokio::time::pause()` on memory.

#![allow(dead_code)]

mod lifecycle;
mod writes;

// Not every test crate runs the suite; some only borrow the helpers.
#[allow(unused_imports)]
pub use lifecycle::*;
#[allow(unused_imports)]
pub use writes::*;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::{
    HashOp, NodeChange, NodeId, NodeImage, NodeStatus, Notice, NoticeKind, Store, Table,
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
            extreme_lease_ttls_are_clamped,
            delete_node_removes_everything,
            members_are_the_union_of_live_claims,
            unregister_requests_queue_per_node,
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

/// Leases node `fs1` and writes one call `u` to it: a live node with
/// something to lose.
pub async fn node_with_one_call<S: Store + ?Sized>(store: &S) -> NodeId {
    let n = id("fs1");
    store.lease(&n, &status(1), LONG_TTL).await.unwrap();
    store
        .apply(&n, &ops(vec![set(Table::Calls, "u", "{}")]))
        .await
        .unwrap();
    n
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
pub async fn tables(store: &Arc<dyn Store>, node: &NodeId) -> NodeImage {
    let farm = store.read_farm().await.unwrap();
    farm.nodes
        .get(node)
        .map(|v| v.image.clone())
        .unwrap_or_default()
}

pub fn table(img: &NodeImage, t: Table) -> Vec<(String, String)> {
    img.table(t).map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub fn image(status: NodeStatus, fields: &[(Table, &str, &str)]) -> NodeImage {
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

/// Next notice, parsed; panics after [`PATIENCE`].
pub async fn recv(rx: &mut tokio::sync::mpsc::Receiver<String>) -> Notice {
    let msg = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no notice in time")
        .expect("subscription closed");
    Notice::parse(&msg).unwrap_or_else(|e| panic!("bad notice {msg:?}: {e}"))
}
