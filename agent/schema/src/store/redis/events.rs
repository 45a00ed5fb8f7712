//! Subscribing to `events` on a dedicated pub/sub connection. One task per
//! subscription forwards payloads into a bounded channel; it never blocks
//! on a slow reader (drops and counts instead) and ends, closing the
//! channel, when the connection breaks or stops answering pings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use redis::Msg;
use tokio::sync::mpsc;

use crate::keys::Keys;
use crate::store::StoreError;
use crate::store::link::Link;
use crate::store::notice::NOTICE_BUFFER;

/// How often an idle subscription checks that Redis still answers: a
/// silently dead TCP path would otherwise look like a quiet farm forever.
const PING_EVERY: Duration = Duration::from_secs(15);

/// [`crate::Store::subscribe`].
pub(super) async fn subscribe(
    link: &Link,
    keys: &Keys,
    dropped: Arc<AtomicU64>,
) -> Result<mpsc::Receiver<String>, StoreError> {
    let mut pubsub = link.pubsub().await?;
    let channel = keys.events();
    tokio::time::timeout(link.timeout(), pubsub.subscribe(&channel))
        .await
        .map_err(|_| StoreError::Timeout)??;
    let (mut sink, mut stream) = pubsub.split();
    let (tx, rx) = mpsc::channel(NOTICE_BUFFER);
    let timeout = link.timeout();
    let peer = link.endpoint().to_owned();
    tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = tx.closed() => break,
                msg = stream.next() => match msg {
                    Some(msg) => forward(&tx, &msg, &dropped),
                    None => {
                        tracing::warn!(peer = %peer, "event subscription closed by redis");
                        break;
                    }
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        tracing::warn!(peer = %peer, "event subscription stopped answering");
                        break;
                    }
                }
            }
        }
    });
    tracing::debug!(channel = %channel, "subscribed to events");
    Ok(rx)
}

fn forward(tx: &mpsc::Sender<String>, msg: &Msg, dropped: &AtomicU64) {
    let payload = match msg.get_payload::<String>() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "non-UTF-8 event notice; skipped");
            return;
        }
    };
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(payload) {
        let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(dropped = n, "event subscriber full; notice dropped");
    }
}
