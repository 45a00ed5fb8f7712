//! The connection to Redis behind a [`super::redis::RedisStore`]: one
//! auto-reconnecting [`ConnectionManager`] for commands, every round trip
//! bounded by the store timeout, and dedicated pub/sub connections.
//!
//! With Sentinel the manager is dropped when a sentinel announces a
//! failover (`super::failover`) and whenever the master stops answering as
//! one (I/O error, timeout, `READONLY`), so the next call asks the sentinels
//! again instead of retrying a demoted address.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tokio::sync::oneshot;

use super::StoreError;
use super::failover::{self, Slot};
use super::url::{Target, parse, redact};

/// Cap on the manager's reconnect backoff: a restarted Redis is found
/// within this long.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Connection attempts per reconnect. Few, because every later command
/// starts a new reconnect anyway, and a wrong password must be reported
/// within the store timeout rather than retried past it.
const RECONNECT_RETRIES: usize = 1;

/// A (re)connecting link to one Redis deployment.
pub(crate) struct Link {
    target: Target,
    timeout: Duration,
    manager: Slot,
    endpoint: String,
    /// Stops the Sentinel failover watcher when the link is dropped.
    _watch: Option<oneshot::Sender<()>>,
}

impl Link {
    /// Parses `url` and connects once, so a wrong address or password is
    /// reported now rather than on the first write.
    pub async fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        if timeout.is_zero() {
            return Err(StoreError::Config("store timeout must be > 0".into()));
        }
        let target = parse(url)?;
        let endpoint = redact(url);
        let manager: Slot = Arc::new(Mutex::new(None));
        let watch = match &target {
            Target::Sentinel(s) => Some(failover::spawn(
                s.clone(),
                manager.clone(),
                timeout,
                endpoint.clone(),
            )),
            Target::Direct(_) => None,
        };
        let link = Self {
            target,
            timeout,
            manager,
            endpoint,
            _watch: watch,
        };
        link.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await?;
        Ok(link)
    }

    /// The URL with its password masked.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The per-round-trip timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one round trip (or a few dependent ones) on the shared
    /// connection, bounded by the store timeout.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let work = async {
            let conn = self.manager().await?;
            f(conn).await.map_err(from_redis)
        };
        let res = match tokio::time::timeout(self.timeout, work).await {
            Ok(res) => res,
            Err(_) => Err(StoreError::Timeout),
        };
        if let Err(e) = &res {
            self.on_error(e);
        }
        res
    }

    /// A new dedicated connection for pub/sub (a subscribed connection
    /// cannot run other commands).
    pub async fn pubsub(&self) -> Result<PubSub, StoreError> {
        let work = async {
            let client = self.client().await?;
            client.get_async_pubsub().await.map_err(StoreError::Redis)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout)?
    }

    async fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(m) = self.cached() {
            return Ok(m);
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_max_delay(MAX_RECONNECT_DELAY)
            .set_number_of_retries(RECONNECT_RETRIES);
        let client = self.client().await?;
        let m = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(from_redis)?;
        if let Ok(mut slot) = self.manager.lock() {
            *slot = Some(m.clone());
        }
        tracing::debug!(peer = %self.endpoint, "redis connected");
        Ok(m)
    }

    fn cached(&self) -> Option<ConnectionManager> {
        self.manager.lock().ok().and_then(|m| m.clone())
    }

    async fn client(&self) -> Result<Client, StoreError> {
        match &self.target {
            Target::Direct(c) => Ok(c.clone()),
            Target::Sentinel(s) => {
                let mut sc = s.client()?;
                let client = sc.async_get_client().await?;
                tracing::info!(peer = %self.endpoint, master = %s.master, "sentinel resolved master");
                Ok(client)
            }
        }
    }

    /// Forgets the connection when reconnecting in place cannot help: with
    /// Sentinel when the master may have moved; always after an
    /// authentication failure (the manager only retries I/O errors, so a
    /// failed AUTH would otherwise stick after a password change).
    fn on_error(&self, e: &StoreError) {
        let sentinel = matches!(self.target, Target::Sentinel(_));
        let drop = match e {
            StoreError::Timeout => sentinel,
            StoreError::Redis(r) => {
                r.kind() == ErrorKind::AuthenticationFailed
                    || (sentinel && master_may_have_moved(r))
            }
            StoreError::Config(_) => false,
        };
        if drop {
            if let Ok(mut slot) = self.manager.lock() {
                *slot = None;
            }
            tracing::warn!(peer = %self.endpoint, error = %e, "dropping redis connection; next call reconnects");
        }
    }
}

/// The redis crate's own response timeout is our timeout too.
fn from_redis(e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::Redis(e)
    }
}

fn master_may_have_moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
        // Inside MULTI the READONLY reply is wrapped in a pipeline or
        // EXECABORT error, whose kind is not ReadOnly.
        || e.to_string().contains("READONLY")
}
