//! Publisher tests: batching, mirror, lease loss and renewal, with the
//! in-memory store and a slow store.
use locus_schema::store::memory::MemStore;
use locus_schema::store::{FarmView, StoreError};
use locus_schema::{HashOp, Keys, NodeState, NodeStatus, Table};

use super::*;

fn change(field: &str) -> NodeChange {
    NodeChange {
        ops: vec![HashOp {
            table: Table::Calls,
            field: field.into(),
            value: Some("{}".into()),
        }],
        status: None,
    }
}

#[tokio::test]
async fn acknowledged_writes_record_event_age() {
    let metrics = Metrics::with_latency_samples(16);
    let store = Arc::new(MemStore::new(Keys::new("t:")));
    let (tx, rx) = mpsc::channel(8);
    let cfg = PublisherConfig {
        node: NodeId::new("fs1").unwrap(),
        lease: Duration::from_secs(10),
        refresh: Duration::from_secs(5),
        reap_after: Duration::from_secs(60),
    };
    let origin = now_us() - 7_000;
    tx.send(Publish::Change {
        change: change("a"),
        origin_us: Some(origin),
    })
    .await
    .unwrap();
    tx.send(Publish::Change {
        change: change("b"),
        origin_us: None,
    })
    .await
    .unwrap();
    drop(tx);
    run(cfg, store, rx, metrics.clone(), CancellationToken::new()).await;
    let samples = metrics.take_latency_samples();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert!((7_000..60_000_000).contains(&samples[0]), "{samples:?}");
    // 7 ms and a little: above the 5 ms bucket, inside the 1 s one.
    let text = metrics.encode();
    assert!(
        text.contains("locus_agent_publish_latency_seconds_count 1\n"),
        "{text}"
    );
    assert!(text.contains("_bucket{le=\"0.005\"} 0\n"), "{text}");
    assert!(text.contains("_bucket{le=\"1.0\"} 1\n"), "{text}");
}

/// A store whose node writes take `delay` (Redis under load) and that
/// counts leases.
struct SlowStore {
    inner: MemStore,
    delay: Duration,
    leases: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Store for SlowStore {
    async fn apply(&self, node: &NodeId, change: &NodeChange) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.apply(node, change).await
    }
    async fn replace(&self, node: &NodeId, image: &NodeImage) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.replace(node, image).await
    }
    async fn lease(
        &self,
        node: &NodeId,
        status: &NodeStatus,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.leases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.lease(node, status, ttl).await
    }
    async fn set_node_state(&self, node: &NodeId, state: NodeState) -> Result<(), StoreError> {
        self.inner.set_node_state(node, state).await
    }
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError> {
        self.inner.node_state(node).await
    }
    async fn add_members(
        &self,
        domain: &str,
        ext: &str,
        groups: &[String],
    ) -> Result<(), StoreError> {
        self.inner.add_members(domain, ext, groups).await
    }
    async fn remove_members(&self, domain: &str, ext: &str) -> Result<(), StoreError> {
        self.inner.remove_members(domain, ext).await
    }
    async fn read_farm(&self) -> Result<FarmView, StoreError> {
        self.inner.read_farm().await
    }
    async fn delete_node(&self, node: &NodeId) -> Result<bool, StoreError> {
        self.inner.delete_node(node).await
    }
    async fn reap_expired(&self, grace: Duration) -> Result<Vec<NodeId>, StoreError> {
        self.inner.reap_expired(grace).await
    }
    async fn subscribe(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        self.inner.subscribe().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// Paused time: the store's 30 ms writes and the 400 ms window are
/// virtual, so the count is exact, not a race with a loaded machine.
#[tokio::test(start_paused = true)]
async fn lease_is_renewed_while_events_never_stop() {
    let store = Arc::new(SlowStore {
        inner: MemStore::new(Keys::new("t:")),
        delay: Duration::from_millis(30),
        leases: Default::default(),
    });
    let (tx, rx) = mpsc::channel(4);
    for i in 0..4 {
        tx.send(Publish::Change {
            change: change(&format!("pre{i}")),
            origin_us: None,
        })
        .await
        .unwrap();
    }
    // Refills the channel while each write is in progress, so the
    // publisher never finds it empty.
    let producer = tokio::spawn(async move {
        for i in 0..100_000u32 {
            let msg = Publish::Change {
                change: change(&format!("f{i}")),
                origin_us: None,
            };
            if tx.send(msg).await.is_err() {
                break;
            }
        }
    });
    let cfg = PublisherConfig {
        node: NodeId::new("fs1").unwrap(),
        lease: Duration::from_millis(100),
        refresh: Duration::from_millis(20),
        reap_after: Duration::from_secs(60),
    };
    let token = CancellationToken::new();
    let publisher = tokio::spawn(run(cfg, store.clone(), rx, Metrics::new(), token.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    token.cancel();
    publisher.await.unwrap();
    producer.abort();
    let leases = store.leases.load(std::sync::atomic::Ordering::Relaxed);
    // About one per write (30 ms, past the 20 ms refresh): ~13.
    assert!(leases >= 5, "{leases} leases in 400 ms");
}
