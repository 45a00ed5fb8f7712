//! The store suite on a real `redis-server` (one per test, on a free
//! loopback port).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod suite;

use std::sync::Arc;
use std::time::Duration;

use locus_schema::store::redis::RedisStore;
use locus_schema::testing::RedisServer;
use locus_schema::{Keys, Store};

async fn redis() -> (RedisServer, Arc<dyn Store>) {
    let server = RedisServer::start().expect("redis-server must be installed to run these tests");
    let store = RedisStore::connect(&server.url(), Keys::default(), Duration::from_secs(2))
        .await
        .unwrap();
    (server, Arc::new(store))
}

store_suite!((flavor = "current_thread") redis);
