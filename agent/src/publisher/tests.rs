//! Publisher tests: batching, mirror, lease loss and renewal, with the
//! in-memory store and a slow store.
use locus_schema::FarmRead;
use locus_schema::store::StoreError;
use locus_schema::store::memory::MemStore;
use locus_schema::{HashOp, Keys, MemberEntry, NodeState, NodeStatus, RegClaim, Table};

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
    run(
        cfg,
        store.clone(),
        store,
        rx,
        metrics.clone(),
        CancellationToken::new(),
    )
    .await;
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
    inner: Arc<MemStore>,
    delay: Duration,
    leases: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl NodeStore for SlowStore {
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
    async fn node_state(&self, node: &NodeId) -> Result<NodeState, StoreError> {
        self.inner.node_state(node).await
    }
    async fn take_unregisters(
        &self,
        node: &NodeId,
        max: usize,
    ) -> Result<Vec<locus_schema::UnregRequest>, StoreError> {
        self.inner.take_unregisters(node, max).await
    }
}

/// Paused time: the store's 30 ms writes and the 400 ms window are
/// virtual, so the count is exact, not a race with a loaded machine.
#[tokio::test(start_paused = true)]
async fn lease_is_renewed_while_events_never_stop() {
    let store = Arc::new(SlowStore {
        inner: Arc::new(MemStore::new(Keys::new("t:"))),
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
    let publisher = tokio::spawn(run(
        cfg,
        store.clone(),
        store.inner.clone(),
        rx,
        Metrics::new(),
        token.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    token.cancel();
    publisher.await.unwrap();
    producer.abort();
    let leases = store.leases.load(std::sync::atomic::Ordering::Relaxed);
    // About one per write (30 ms, past the 20 ms refresh): ~13.
    assert!(leases >= 5, "{leases} leases in 400 ms");
}

fn claim(call_id: &str, contact: &str) -> RegClaim {
    RegClaim {
        call_id: call_id.into(),
        contact: contact.into(),
        profile: "internal".into(),
    }
}

fn add(ext: &str, groups: &[&str], reg: Option<RegClaim>) -> MemberOp {
    MemberOp::Add {
        domain: "d".into(),
        ext: ext.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        reg,
    }
}

fn remove(ext: &str, call_id: Option<&str>) -> MemberOp {
    MemberOp::Remove {
        domain: "d".into(),
        ext: ext.into(),
        call_id: call_id.map(str::to_owned),
    }
}

fn written(op: Option<HashOp>) -> Option<MemberEntry> {
    let op = op.expect("a field write");
    assert_eq!((op.table, op.field.as_str()), (Table::Members, "d/1009"));
    op.value.map(|v| serde_json::from_str(&v).unwrap())
}

/// The claim lives while the box holds any registration of the user: one
/// of two phones expiring leaves it, the last one removes it.
#[test]
fn a_claim_goes_with_the_users_last_registration() {
    let mut claims = BTreeMap::new();
    let e = written(claim_change(
        &mut claims,
        add("1009", &["sales"], Some(claim("c1", "<sip:1009@h:1>"))),
    ))
    .unwrap();
    assert_eq!(
        (e.groups.as_slice(), e.regs.len()),
        (&["sales".to_owned()][..], 1)
    );
    // A refresh changes nothing: no write.
    let same = add("1009", &["sales"], Some(claim("c1", "<sip:1009@h:1>")));
    assert_eq!(claim_change(&mut claims, same), None);
    // A second phone; then the same phone under a new Call-ID replaces its row.
    claim_change(
        &mut claims,
        add("1009", &[], Some(claim("c2", "<sip:1009@h:2>"))),
    );
    let e = written(claim_change(
        &mut claims,
        add("1009", &[], Some(claim("c3", "<sip:1009@h:2>"))),
    ))
    .unwrap();
    let ids: Vec<&str> = e.regs.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c3"]);
    assert_eq!(e.groups, ["sales"], "an Add without groups keeps them");
    // c1 expires: c3 still holds the claim.
    let e = written(claim_change(&mut claims, remove("1009", Some("c1")))).unwrap();
    assert_eq!(e.regs, vec![claim("c3", "<sip:1009@h:2>")]);
    // An expiry of a registration we never saw keeps what we know.
    assert!(written(claim_change(&mut claims, remove("1009", Some("zz")))).is_some());
    assert_eq!(
        written(claim_change(&mut claims, remove("1009", Some("c3")))),
        None
    );
    assert!(claims.is_empty());
    assert_eq!(
        claim_change(&mut claims, remove("1009", None)),
        None,
        "nothing to remove"
    );
}

/// A resync's registration list wins: registrations that ended while the
/// agent was away go (and the claim with its last one), new ones come,
/// a claim learnt from a call only goes (the box holds no registration).
#[test]
fn resync_reconciles_claims_with_the_boxs_registrations() {
    let mut claims = BTreeMap::new();
    claim_change(&mut claims, add("1009", &["sales"], Some(claim("c1", ""))));
    claim_change(&mut claims, add("1010", &["ops"], Some(claim("c2", ""))));
    claim_change(&mut claims, add("1011", &["ops"], None));
    let listed = vec![
        ("d".to_owned(), "1010".to_owned(), claim("c2", "")),
        ("d".to_owned(), "1012".to_owned(), claim("c4", "sip:1012@h")),
    ];
    let ops = reconcile_claims(&mut claims, listed);
    let fields: Vec<(&str, bool)> = ops
        .iter()
        .map(|o| (o.field.as_str(), o.value.is_some()))
        .collect();
    assert_eq!(
        fields,
        [("d/1009", false), ("d/1011", false), ("d/1012", true)]
    );
    let keys: Vec<&str> = claims.keys().map(|(_, e)| e.as_str()).collect();
    assert_eq!(keys, ["1010", "1012"]);
}

/// Claims survive a resync's Replace (the model's image has none).
#[tokio::test]
async fn claims_survive_a_resyncs_replace() {
    let store = Arc::new(MemStore::new(Keys::new("t:")));
    let (tx, rx) = mpsc::channel(8);
    let node = NodeId::new("fs1").unwrap();
    let cfg = PublisherConfig {
        node: node.clone(),
        lease: Duration::from_secs(10),
        refresh: Duration::from_secs(5),
        reap_after: Duration::from_secs(60),
    };
    // Live, as after the publisher's first lease.
    store
        .lease(&node, &NodeStatus::default(), Duration::from_secs(10))
        .await
        .unwrap();
    tx.send(Publish::Member(add(
        "1009",
        &["sales"],
        Some(claim("c1", "")),
    )))
    .await
    .unwrap();
    tx.send(Publish::Replace(NodeImage::default()))
        .await
        .unwrap();
    drop(tx);
    run(
        cfg,
        store.clone(),
        store.clone(),
        rx,
        Metrics::new(),
        CancellationToken::new(),
    )
    .await;
    let farm = store.read_farm().await.unwrap();
    let members = farm.members();
    assert_eq!(
        members
            .get(&("d".to_owned(), "1009".to_owned()))
            .map(Vec::as_slice),
        Some(&["sales".to_owned()][..]),
        "{farm:?}"
    );
}
