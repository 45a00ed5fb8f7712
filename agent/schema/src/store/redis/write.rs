//! The write transactions of [`super::RedisStore`], built as pipelines
//! (no I/O here). Each one is a single MULTI/EXEC over keys of one node's
//! hash-tag slot; `PUBLISH` has no key, so it may ride along on Cluster.
//! The `nodes` ZSET lives in another slot and is never inside them.

use redis::Pipeline;

use crate::change::{HashOp, NodeChange, NodeImage, Table};
use crate::keys::{Keys, NodeId};
use crate::store::notice::{Notice, NoticeKind};
use crate::store::status_fields;
use crate::types::{NodeState, NodeStatus};

fn hset_status(p: &mut Pipeline, key: &str, status: &NodeStatus) {
    p.cmd("HSET").arg(key);
    for (k, v) in status_fields(status) {
        p.arg(k).arg(v);
    }
    p.ignore();
}

fn publish(p: &mut Pipeline, keys: &Keys, notice: &Notice) {
    p.cmd("PUBLISH")
        .arg(keys.events())
        .arg(notice.to_json())
        .ignore();
}

/// [`crate::Store::apply`]: consecutive ops on one table of one kind (set or
/// delete) become one `HSET`/`HDEL`; order between runs is kept, so
/// "set then delete the same field" ends deleted.
pub(crate) fn apply(keys: &Keys, node: &NodeId, change: &NodeChange) -> Pipeline {
    let mut p = redis::pipe();
    p.atomic();
    for run in change
        .ops
        .chunk_by(|a, b| a.table == b.table && a.value.is_some() == b.value.is_some())
    {
        let Some(first) = run.first() else { continue };
        let key = keys.table(node, first.table);
        if first.value.is_some() {
            p.cmd("HSET").arg(key);
            for HashOp { field, value, .. } in run {
                p.arg(field).arg(value.as_deref().unwrap_or_default());
            }
        } else {
            p.cmd("HDEL").arg(key);
            for op in run {
                p.arg(&op.field);
            }
        }
        p.ignore();
    }
    if let Some(status) = &change.status {
        hset_status(&mut p, &keys.node(node), status);
    }
    publish(&mut p, keys, &Notice::change(node, change));
    p
}

/// [`crate::Store::replace`]: every table is deleted and rewritten in the
/// same transaction, so stale fields vanish and no reader sees the gap.
pub(crate) fn replace(keys: &Keys, node: &NodeId, image: &NodeImage) -> Pipeline {
    let mut p = redis::pipe();
    p.atomic();
    for table in Table::ALL {
        let key = keys.table(node, table);
        p.cmd("DEL").arg(&key).ignore();
        let mut fields = image.table(table).peekable();
        if fields.peek().is_some() {
            p.cmd("HSET").arg(&key);
            for (f, v) in fields {
                p.arg(f).arg(v);
            }
            p.ignore();
        }
    }
    hset_status(&mut p, &keys.node(node), &image.status);
    publish(&mut p, keys, &Notice::whole(node, NoticeKind::Replace));
    p
}

/// [`crate::Store::lease`]: status and TTL together, so a node hash never
/// exists with a fresh status but an old lease. The `nodes` ZADD follows
/// separately (another slot on Cluster).
pub(crate) fn lease(keys: &Keys, node: &NodeId, status: &NodeStatus, ttl_ms: u64) -> Pipeline {
    let key = keys.node(node);
    let mut p = redis::pipe();
    p.atomic();
    // The one reply of the pipeline: did the lease exist before?
    p.cmd("EXISTS").arg(&key);
    hset_status(&mut p, &key, status);
    p.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
    p
}

/// [`crate::Store::set_node_state`].
pub(crate) fn set_state(keys: &Keys, node: &NodeId, state: NodeState) -> Pipeline {
    let mut p = redis::pipe();
    p.atomic();
    p.cmd("HSET")
        .arg(keys.node(node))
        .arg("state")
        .arg(state.as_str())
        .ignore();
    publish(&mut p, keys, &Notice::state(node));
    p
}

/// [`crate::Store::delete_node`], the node's slot part: returns how many
/// keys `DEL` removed.
pub(crate) fn delete(keys: &Keys, node: &NodeId) -> Pipeline {
    let mut p = redis::pipe();
    p.atomic();
    p.cmd("DEL").arg(keys.node_keys(node));
    publish(&mut p, keys, &Notice::whole(node, NoticeKind::Delete));
    p
}

/// Deletes a node's keys unless its lease is alive (`PTTL` >= 0: the key
/// exists with a TTL), in one step, so the janitor cannot delete a node
/// that renewed a moment ago. Returns -1 when alive, else the number of
/// keys deleted.
pub(crate) const REAP_KEYS_LUA: &str = r"
if redis.call('PTTL', KEYS[1]) >= 0 then return -1 end
return redis.call('DEL', unpack(KEYS))
";

/// Removes ARGV[1] from the `nodes` ZSET only if its heartbeat is still
/// older than ARGV[2] (ms): a node that came back keeps its entry.
pub(crate) const ZREM_IF_OLD_LUA: &str = r"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) < tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
";

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn packed(p: &Pipeline) -> String {
        String::from_utf8_lossy(&p.get_packed_pipeline()).into_owned()
    }

    fn set(table: Table, f: &str, v: Option<&str>) -> HashOp {
        HashOp {
            table,
            field: f.into(),
            value: v.map(str::to_owned),
        }
    }

    #[test]
    fn apply_groups_runs_and_keeps_order() {
        let keys = Keys::default();
        let id = NodeId::new("fs1").unwrap();
        let change = NodeChange {
            ops: vec![
                set(Table::Calls, "a", Some("1")),
                set(Table::Calls, "b", Some("2")),
                set(Table::Calls, "a", None),
                set(Table::Ringing, "x", Some("3")),
            ],
            status: Some(NodeStatus::default()),
        };
        let text = packed(&apply(&keys, &id, &change));
        let cmds: Vec<&str> = ["MULTI", "HSET", "HDEL", "HSET", "HSET", "PUBLISH", "EXEC"].into();
        let mut pos = 0;
        for c in cmds {
            let at = text[pos..]
                .find(&format!("\r\n{c}\r\n"))
                .unwrap_or_else(|| {
                    panic!("{c} missing after {pos} in {text:?}");
                });
            pos += at + 1;
        }
        assert_eq!(text.matches("\r\nHSET\r\n").count(), 3);
        assert!(
            !text.contains("\r\nstate\r\n"),
            "status write must skip state"
        );
    }

    #[test]
    fn replace_deletes_every_table_and_skips_empty_hsets() {
        let keys = Keys::default();
        let id = NodeId::new("fs1").unwrap();
        let mut image = NodeImage::default();
        image
            .tables
            .entry(Table::Lots)
            .or_default()
            .insert("d/l/1".into(), "uuid".into());
        let text = packed(&replace(&keys, &id, &image));
        assert_eq!(text.matches("\r\nDEL\r\n").count(), Table::ALL.len());
        // One HSET for lots, one for the status.
        assert_eq!(text.matches("\r\nHSET\r\n").count(), 2);
    }
}
