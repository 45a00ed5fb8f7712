//! Following a Sentinel failover as it happens. A demoted master keeps
//! accepting writes until Sentinel reconfigures it, and those writes are
//! lost when it resyncs; so the store listens to the sentinels'
//! `+switch-master` announcements and drops its connection at once, and the
//! next call asks the sentinels for the new master.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::oneshot;

use super::url::SentinelTarget;

/// The shared slot of a link's connection; `None` makes the next call
/// resolve the master again.
pub(crate) type Slot = Arc<Mutex<Option<ConnectionManager>>>;

/// Sentinel's failover announcement channel.
const SWITCH_CHANNEL: &str = "+switch-master";
/// Liveness check of an idle sentinel subscription.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Re-subscription backoff bounds.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the watcher; it runs until the returned sender is dropped.
pub(crate) fn spawn(
    target: SentinelTarget,
    slot: Slot,
    timeout: Duration,
    peer: String,
) -> oneshot::Sender<()> {
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                res = watch_once(&target, &slot, timeout) => match res {
                    Ok(()) => backoff = MIN_BACKOFF,
                    Err(e) => tracing::debug!(peer = %peer, error = %e, "sentinel watch failed"),
                },
            }
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    stop_tx
}

/// One subscription to a sentinel, until it breaks.
async fn watch_once(
    target: &SentinelTarget,
    slot: &Slot,
    timeout: Duration,
) -> redis::RedisResult<()> {
    let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "sentinel timeout"));
    let connect = async {
        let client = target.client()?.async_get_sentinel_client().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(SWITCH_CHANNEL).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Ok(()) };
                let payload: String = msg.get_payload().unwrap_or_default();
                if announces(&payload, &target.master) {
                    tracing::warn!(master = %target.master, switch = %payload, "sentinel failover; reconnecting");
                    if let Ok(mut s) = slot.lock() {
                        *s = None;
                    }
                }
            }
            _ = ping.tick() => {
                tokio::time::timeout(timeout, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| timed_out())??;
            }
        }
    }
}

/// `+switch-master` payloads read `<master-name> <old-ip> <old-port>
/// <new-ip> <new-port>`.
fn announces(payload: &str, master: &str) -> bool {
    payload.split_whitespace().next() == Some(master)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_master_counts() {
        assert!(announces("locus 10.0.0.1 6379 10.0.0.2 6379", "locus"));
        assert!(!announces("locus2 10.0.0.1 6379 10.0.0.2 6379", "locus"));
        assert!(!announces("", "locus"));
    }
}
