//! The janitor's side of [`super::RedisStore`]: removing nodes whose lease
//! expired more than a grace period ago. Two small scripts, one per slot
//! (the node's keys, then the `nodes` ZSET), each checking before deleting,
//! so a node that renews its lease during a sweep keeps its keys.

use std::time::Duration;

use redis::Script;

use super::write::{REAP_KEYS_LUA, ZREM_IF_OLD_LUA};
use crate::keys::{Keys, NodeId};
use crate::store::link::Link;
use crate::store::notice::{Notice, NoticeKind};
use crate::store::{StoreError, now_ms};

/// [`crate::Store::reap_expired`].
pub(super) async fn reap(
    link: &Link,
    keys: &Keys,
    grace: Duration,
) -> Result<Vec<NodeId>, StoreError> {
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let cutoff = now_ms().saturating_sub(grace_ms);
    let nodes_key = keys.nodes();
    let nk = nodes_key.as_str();
    let stale: Vec<Vec<u8>> = link
        .run(|mut c| async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(nk)
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .query_async(&mut c)
                .await
        })
        .await?;
    let zrem = Script::new(ZREM_IF_OLD_LUA);
    let reap_keys = Script::new(REAP_KEYS_LUA);
    let mut reaped = Vec::new();
    for member in stale {
        let id = match NodeId::new(String::from_utf8_lossy(&member)) {
            Ok(id) => id,
            Err(e) => {
                // No keys can be built for it; only its ZSET entry exists.
                tracing::warn!(error = %e, "removing bad member of nodes");
                let mut inv = zrem.key(nk);
                inv.arg(&member).arg(cutoff);
                link.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await })
                    .await?;
                continue;
            }
        };
        let inv = reap_keys.key(keys.node_keys(&id));
        let deleted: i64 = link
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        if deleted < 0 {
            tracing::debug!(node.id = %id, "stale heartbeat but lease alive; kept");
            continue;
        }
        let mut inv = zrem.key(nk);
        inv.arg(id.as_str()).arg(cutoff);
        let removed: i64 = link
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        if deleted > 0 || removed > 0 {
            let notice = Notice::whole(&id, NoticeKind::Delete).to_json();
            let events = keys.events();
            link.run(|mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(events)
                    .arg(notice)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
            tracing::info!(node.id = %id, keys = deleted, "reaped expired node");
            reaped.push(id);
        }
    }
    Ok(reaped)
}
