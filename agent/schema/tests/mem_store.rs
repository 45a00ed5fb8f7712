//! The store suite on [`MemStore`], with tokio time paused so leases
//! expire instantly; plus what only the in-process store has.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod suite;

use std::sync::Arc;
use std::time::Duration;

use locus_schema::store::memory::MemStore;
use locus_schema::store::notice::NOTICE_BUFFER;
use locus_schema::{FarmRead, Keys, NodeStore, Store, StoreError};

async fn mem() -> ((), Arc<dyn Store>) {
    ((), Arc::new(MemStore::new(Keys::default())))
}

store_suite!((start_paused = true) mem);

#[tokio::test(start_paused = true)]
async fn slow_subscriber_drops_and_counts() {
    let store = Arc::new(MemStore::new(Keys::default()));
    let mut rx = store.subscribe().await.unwrap();
    let n = suite::id("fs1");
    let extra = 50;
    for i in 0..NOTICE_BUFFER + extra {
        let change = suite::ops(vec![suite::set(
            locus_schema::Table::Calls,
            "u",
            &i.to_string(),
        )]);
        store.apply(&n, &change).await.unwrap();
        // Let the forwarder move each notice on, so only the mpsc fills.
        tokio::task::yield_now().await;
    }
    suite::eventually("drops counted", || {
        let store = store.clone();
        async move { store.dropped_notices() >= extra as u64 }
    })
    .await;
    let mut got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await {
        got += 1;
    }
    assert_eq!(
        got as u64 + store.dropped_notices(),
        (NOTICE_BUFFER + extra) as u64
    );
}

#[tokio::test(start_paused = true)]
async fn subscription_closes_with_the_store() {
    let store = MemStore::new(Keys::default());
    let mut rx = store.subscribe().await.unwrap();
    drop(store);
    let end = tokio::time::timeout(suite::PATIENCE, rx.recv())
        .await
        .unwrap();
    assert!(end.is_none());
}

#[tokio::test]
async fn open_dispatches_memory_and_refuses_unknown_schemes() {
    let store = locus_schema::store::open("memory://", Keys::default(), Duration::from_secs(1))
        .await
        .unwrap();
    store.ping().await.unwrap();
    for bad in ["http://x/", "mem://", "", "redis+sentinel://h/"] {
        match locus_schema::store::open(bad, Keys::default(), Duration::from_secs(1)).await {
            Err(StoreError::Config(_)) => {}
            Err(e) => panic!("{bad:?}: wrong error {e}"),
            Ok(_) => panic!("{bad:?}: accepted"),
        }
    }
}
