//! `FarmSync` against the in-memory store, on tokio's paused clock:
//! initial read, notice-driven and coalesced rebuilds, the periodic
//! refresh, a store outage (last view kept, stale flag) and shutdown.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use locus_proxy::{FarmSync, RoutingConfig};
use locus_schema::store::memory::MemStore;
use locus_schema::{
    EslLink, FarmRead, FarmView, HashOp, Keys, NodeChange, NodeId, NodeImage, NodeStatus,
    NodeStore, RingEntry, StoreError, Table,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const D: &str = "d.example.com";
const LEASE: Duration = Duration::from_secs(3600);

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn status(calls: u32) -> NodeStatus {
    NodeStatus {
        sip_uri: "sip:127.0.0.1:5080".into(),
        esl: EslLink::Up,
        calls,
        ..NodeStatus::default()
    }
}

fn ring(ext: &str, since_ms: u64) -> NodeChange {
    let e = vec![RingEntry {
        uuid: format!("u-{ext}"),
        since_ms,
    }];
    NodeChange {
        ops: vec![HashOp {
            table: Table::Ringing,
            field: format!("{D}/{ext}"),
            value: Some(serde_json::to_string(&e).unwrap()),
        }],
        status: None,
    }
}

/// A [`MemStore`] that can be taken down: reads and subscriptions fail
/// and open subscriptions close, as with a lost Redis.
struct Flaky {
    inner: MemStore,
    down: AtomicBool,
    cut: Mutex<CancellationToken>,
}

impl Flaky {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemStore::new(Keys::default()),
            down: AtomicBool::new(false),
            cut: Mutex::new(CancellationToken::new()),
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            let mut cut = self.cut.lock().unwrap();
            cut.cancel();
            *cut = CancellationToken::new();
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(StoreError::Timeout),
            false => Ok(()),
        }
    }
}

/// The farm-read role only: the proxy's sync reads; the tests write
/// through `inner`, which never fails.
#[async_trait]
impl FarmRead for Flaky {
    async fn read_farm(&self) -> Result<FarmView, StoreError> {
        self.check()?;
        self.inner.read_farm().await
    }
    async fn subscribe(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        self.check()?;
        let mut from = self.inner.subscribe().await?;
        let cut = self.cut.lock().unwrap().clone();
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cut.cancelled() => break,
                    m = from.recv() => match m {
                        Some(m) => { let _ = tx.send(m).await; }
                        None => break,
                    },
                }
            }
        });
        Ok(rx)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
}

/// Polls `cond` every 5 ms of (paused) time; the time it took, or a panic
/// after `max`.
async fn wait_for(max: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < max, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

struct Running {
    store: Arc<Flaky>,
    sync: Arc<FarmSync>,
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Running {
    let store = Flaky::new();
    store
        .inner
        .lease(&id("fs1"), &status(1), LEASE)
        .await
        .unwrap();
    let sync = Arc::new(FarmSync::new(Arc::new(RoutingConfig::default())));
    assert!(sync.is_stale() && sync.snapshot().nodes().is_empty());
    let token = CancellationToken::new();
    let (s, st, t) = (
        sync.clone(),
        store.clone() as Arc<dyn FarmRead>,
        token.clone(),
    );
    let task = tokio::spawn(async move { s.run(st, t).await });
    wait_for(Duration::from_secs(1), "first read", || {
        !sync.snapshot().nodes().is_empty()
    })
    .await;
    assert!(!sync.is_stale());
    Running {
        store,
        sync,
        token,
        task,
    }
}

fn ringing(sync: &FarmSync, ext: &str) -> bool {
    !sync.snapshot().ringing(D, ext).is_empty()
}

#[tokio::test(start_paused = true)]
async fn notices_rebuild_quickly_and_coalesce() {
    let r = start().await;
    let fs1 = id("fs1");
    r.store.inner.apply(&fs1, &ring("1001", 5)).await.unwrap();
    let took = wait_for(Duration::from_secs(1), "notice", || {
        ringing(&r.sync, "1001")
    })
    .await;
    assert!(
        took < Duration::from_millis(200),
        "notice-driven, not the 2 s refresh: {took:?}"
    );

    // 100 changes over 500 ms: one rebuild per 50 ms at most, not 100.
    let before = r.sync.rebuilds();
    for i in 0..100 {
        r.store
            .inner
            .apply(&fs1, &ring(&format!("2{i:03}"), 5))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for(Duration::from_secs(1), "burst", || ringing(&r.sync, "2099")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rebuilt = r.sync.rebuilds() - before;
    assert!(
        (5..=12).contains(&rebuilt),
        "100 notices, {rebuilt} rebuilds"
    );
    r.token.cancel();
    tokio::time::timeout(Duration::from_secs(1), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn periodic_refresh_picks_up_changes_without_notices() {
    let r = start().await;
    // A lease writes load figures without publishing a notice.
    r.store
        .inner
        .lease(&id("fs1"), &status(7), LEASE)
        .await
        .unwrap();
    let calls = || r.sync.snapshot().nodes()[0].calls;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(), 1, "no notice, no rebuild yet");
    wait_for(Duration::from_secs(3), "refresh", || calls() == 7).await;
    r.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn store_outage_keeps_the_last_view_and_recovers() {
    let r = start().await;
    r.store.set_down(true);
    r.store
        .inner
        .apply(&id("fs1"), &ring("1001", 5))
        .await
        .unwrap();
    wait_for(Duration::from_secs(5), "stale", || r.sync.is_stale()).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(r.sync.is_stale() && r.sync.failures() >= 4);
    let snap = r.sync.snapshot();
    assert_eq!(snap.nodes()[0].id.as_str(), "fs1", "last view kept");
    assert!(snap.nodes()[0].up && !ringing(&r.sync, "1001"));

    r.store.set_down(false);
    wait_for(Duration::from_secs(3), "recovery", || !r.sync.is_stale()).await;
    assert!(ringing(&r.sync, "1001"));
    // Resubscribed: the next change comes by notice again.
    r.store
        .inner
        .apply(&id("fs1"), &ring("1002", 5))
        .await
        .unwrap();
    let took = wait_for(Duration::from_secs(3), "notice", || {
        ringing(&r.sync, "1002")
    })
    .await;
    assert!(took < Duration::from_millis(200), "{took:?}");
    r.token.cancel();
}

#[tokio::test(start_paused = true)]
async fn inflight_follows_agent_updates() {
    let r = start().await;
    let fs1 = id("fs1");
    r.sync.inflight().add(&fs1);
    r.sync.inflight().add(&fs1);
    let mut s = status(3);
    s.updated_ms = 99;
    r.store
        .inner
        .replace(
            &fs1,
            &NodeImage {
                status: s,
                tables: Default::default(),
            },
        )
        .await
        .unwrap();
    wait_for(Duration::from_secs(1), "reset", || {
        r.sync.inflight().count(&fs1) == 0
    })
    .await;
    r.token.cancel();
}
