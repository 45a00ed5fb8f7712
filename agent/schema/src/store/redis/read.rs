//! Reading the whole farm back from Redis. Garbage (a wrong key type,
//! bytes that are not UTF-8, a node id that breaks the key rules) is
//! logged and skipped: a reader must keep working on whatever is readable.

use std::collections::{BTreeMap, BTreeSet};

use redis::{RedisResult, Value};

use crate::change::{NodeImage, Table};
use crate::keys::{Keys, NodeId};
use crate::store::link::Link;
use crate::store::{FarmView, NodeView, StoreError};
use crate::types::NodeStatus;

/// Keys asked per `SCAN` round.
const SCAN_COUNT: usize = 1000;
/// Upper bound on `SCAN` rounds (a cursor that never returns to 0 would
/// otherwise loop forever).
const MAX_SCAN_ROUNDS: usize = 100_000;

/// [`crate::Store::read_farm`].
pub(super) async fn farm(link: &Link, keys: &Keys) -> Result<FarmView, StoreError> {
    let nodes_key = keys.nodes();
    let entries: Vec<(Vec<u8>, f64)> = link
        .run(|mut c| async move {
            redis::cmd("ZRANGE")
                .arg(nodes_key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut ids = Vec::with_capacity(entries.len());
    for (raw, score) in entries {
        match NodeId::new(String::from_utf8_lossy(&raw)) {
            Ok(id) => ids.push((id, score_ms(score))),
            Err(e) => tracing::warn!(error = %e, "skipping bad member of nodes"),
        }
    }
    // Concurrent reads share the multiplexed connection as one pipeline.
    let views = futures::future::join_all(
        ids.into_iter()
            .map(|(id, hb)| read_node(link, keys, id, hb)),
    )
    .await;
    let mut farm = FarmView::default();
    for view in views {
        let view = view?;
        if let Some(id) = view.id.clone() {
            farm.nodes.insert(id, view);
        }
    }
    farm.tenants = super::location::tenants(link, keys).await?;
    Ok(farm)
}

fn score_ms(score: f64) -> u64 {
    if score.is_finite() && score > 0.0 {
        // Saturating float-to-int conversion is what we want here.
        score as u64
    } else {
        0
    }
}

/// One node's keys, in one MULTI so the view is a consistent snapshot.
async fn read_node(
    link: &Link,
    keys: &Keys,
    id: NodeId,
    heartbeat_ms: u64,
) -> Result<NodeView, StoreError> {
    let node_key = keys.node(&id);
    let mut p = redis::pipe();
    p.atomic().ignore_errors();
    p.cmd("HGETALL").arg(&node_key);
    p.cmd("PTTL").arg(&node_key);
    for t in Table::ALL {
        p.cmd("HGETALL").arg(keys.table(&id, t));
    }
    let res: Vec<RedisResult<Value>> = link
        .run(|mut c| async move { p.query_async(&mut c).await })
        .await?;
    let mut res = res.into_iter();
    let mut next = || {
        res.next()
            .unwrap_or_else(|| Err((redis::ErrorKind::Parse, "short reply").into()))
    };
    let status = hash(&id, "node", next());
    let pttl: i64 = next()
        .and_then(|v| Ok(redis::from_redis_value(v)?))
        .unwrap_or(-2);
    let mut image = NodeImage {
        status: NodeStatus::from_fields(
            status
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        tables: BTreeMap::new(),
    };
    for t in Table::ALL {
        if let Some(fields) = hash(&id, t.as_str(), next()).filter(|f| !f.is_empty()) {
            image.tables.insert(t, fields);
        }
    }
    // PTTL is -1 without a TTL and -2 without the key; 0 is a lease in
    // its last millisecond, still alive.
    let live = status.is_some_and(|s| !s.is_empty()) && pttl >= 0;
    Ok(NodeView {
        id: Some(id),
        image,
        heartbeat_ms,
        live,
    })
}

/// A `HGETALL` reply as strings (invalid UTF-8 replaced, not refused);
/// `None` with a warning when the key is not a hash.
fn hash(id: &NodeId, table: &str, v: RedisResult<Value>) -> Option<BTreeMap<String, String>> {
    let parsed = v.and_then(|v| Ok(redis::from_redis_value::<BTreeMap<Vec<u8>, Vec<u8>>>(v)?));
    match parsed {
        Ok(m) => Some(
            m.into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(node.id = %id, table, error = %e, "unreadable node key; skipped");
            None
        }
    }
}

/// Every key matching `pattern` (a glob, already escaped), deduplicated
/// and sorted; a SCAN that does not finish in [`MAX_SCAN_ROUNDS`] rounds
/// gives what it found (logged with `what`).
pub(super) async fn scan(
    link: &Link,
    pattern: &str,
    what: &'static str,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut found = BTreeSet::new();
    let mut cursor: u64 = 0;
    for round in 0.. {
        if round == MAX_SCAN_ROUNDS {
            tracing::warn!(
                rounds = round,
                scan = what,
                "SCAN did not finish; partial view"
            );
            break;
        }
        let (next, batch): (u64, Vec<Vec<u8>>) = link
            .run(|mut c| async move {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        found.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(found.into_iter().collect())
}

/// Escapes glob metacharacters of a literal key prefix (keeps the final
/// `*`), so a prefix like `a[1]:` does not turn into a character class.
pub(super) fn escape_glob(pattern: &str) -> String {
    let (lit, star) = match pattern.strip_suffix('*') {
        Some(lit) => (lit, "*"),
        None => (pattern, ""),
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    for ch in lit.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push_str(star);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn glob_escaping_keeps_the_trailing_star() {
        assert_eq!(escape_glob("locus:tenant:*"), "locus:tenant:*");
        assert_eq!(escape_glob("a[1]*?:tenant:*"), "a\\[1\\]\\*\\?:tenant:*");
    }

    #[test]
    fn scores_saturate() {
        assert_eq!(score_ms(f64::NAN), 0);
        assert_eq!(score_ms(-5.0), 0);
        assert_eq!(score_ms(1_700_000_000_123.0), 1_700_000_000_123);
    }
}
