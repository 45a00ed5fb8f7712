//! Shared helpers of the root integration tests: a throwaway `redis-server`
//! per test, simulated FreeSWITCH boxes on port 0, real agents built from a
//! TOML string, and polling of the store with a deadline (never a fixed
//! sleep for readiness).

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a subset; tests may unwrap

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Once};
use std::time::Duration;

use locus_schema::testing::RedisServer;
use locus_schema::{Keys, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod agent;
pub mod failover;
pub mod fake_esl;
pub mod locality;
pub mod nat;
mod poll;
pub mod regtrust;
pub mod sipfarm;
pub mod sipp;

pub use agent::*;
pub use poll::*;

/// The SIP domain every simulated box serves.
pub const DOMAIN: &str = "farm.test";

/// The loopback address the simulated boxes listen and send on. The proxy
/// knows a farm node by its IP (any port), so phones and sipp stay on
/// 127.0.0.1 and boxes live apart, as on a real farm.
pub const BOX_IP: &str = "127.0.0.3";
/// Default bound for "the store shows it": generous for a loaded 2-core box.
pub const WAIT: Duration = Duration::from_secs(15);
/// Poll interval of [`wait_for`].
pub(crate) const POLL: Duration = Duration::from_millis(20);
/// Store operation time limit.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Logs to the test's captured output (`RUST_LOG` filters; warn by default).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A loopback port nothing listens on right now, for a destination that
/// must not answer. Never hand it to a process to bind: our own code binds
/// port 0 or takes a bound socket, external programs go through
/// `locus_schema::testing::ports` (retry on a clash).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Starts a `redis-server` (blocking start, so off the async workers).
pub async fn start_redis() -> RedisServer {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("redis start task")
        .expect("redis-server must be installed (CI installs it)")
}

/// Opens a store on `url` with the default prefix.
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    locus_schema::store::open(url, Keys::default(), STORE_TIMEOUT)
        .await
        .expect("open store")
}

/// One HTTP/1.1 GET over a raw socket: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("http read timed out"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}
