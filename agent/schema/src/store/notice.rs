//! The change notice published on `events` after every write, so reader
//! caches know which node to re-read without polling the whole farm.

use serde::{Deserialize, Serialize};

use crate::change::{NodeChange, Table};
use crate::keys::NodeId;

/// The pseudo-table name a notice uses for `{id}:node` (the status hash).
pub const STATUS_TABLE: &str = "node";

/// Capacity of the channel [`crate::FarmRead::subscribe`] returns; notices that
/// do not fit are dropped and counted (a reader that falls behind re-reads
/// the farm anyway).
pub const NOTICE_BUFFER: usize = 1024;

/// What kind of write a notice reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// [`crate::NodeStore::apply`]: the listed tables changed.
    Change,
    /// [`crate::NodeStore::replace`]: the node's whole content was rewritten.
    Replace,
    /// [`crate::FarmAdmin::set_node_state`]: drain or undrain.
    State,
    /// [`crate::FarmAdmin::delete_node`] (or the janitor): the node is gone.
    Delete,
}

/// One message on `events`:
/// `{"node":"fs1","kind":"change","tables":["calls","ringing"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The node whose keys changed.
    pub node: NodeId,
    /// What happened.
    pub kind: NoticeKind,
    /// Key suffixes that changed (`calls`, ..., and `node` for the status).
    #[serde(default)]
    pub tables: Vec<String>,
}

impl Notice {
    /// The notice for an [`crate::NodeStore::apply`] of `change`: its tables in
    /// first-touched order, then `node` if the status changed.
    pub fn change(node: &NodeId, change: &NodeChange) -> Self {
        let mut tables: Vec<String> = Vec::new();
        for op in &change.ops {
            let name = op.table.as_str();
            if !tables.iter().any(|t| t == name) {
                tables.push(name.to_owned());
            }
        }
        if change.status.is_some() {
            tables.push(STATUS_TABLE.to_owned());
        }
        Self {
            node: node.clone(),
            kind: NoticeKind::Change,
            tables,
        }
    }

    /// A notice naming every key of the node (replace, delete).
    pub fn whole(node: &NodeId, kind: NoticeKind) -> Self {
        let tables = std::iter::once(STATUS_TABLE)
            .chain(Table::ALL.iter().map(|t| t.as_str()))
            .map(str::to_owned)
            .collect();
        Self {
            node: node.clone(),
            kind,
            tables,
        }
    }

    /// The notice for a state change (`node` only).
    pub fn state(node: &NodeId) -> Self {
        Self {
            node: node.clone(),
            kind: NoticeKind::State,
            tables: vec![STATUS_TABLE.to_owned()],
        }
    }

    /// The compact JSON published on `events`.
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes; the fallback only keeps
        // this infallible without an unwrap.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a message received from `events`.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::change::HashOp;
    use crate::types::NodeStatus;

    fn op(table: Table, field: &str) -> HashOp {
        HashOp {
            table,
            field: field.into(),
            value: None,
        }
    }

    #[test]
    fn change_notice_lists_tables_once_in_order() {
        let id = NodeId::new("fs1").unwrap();
        let change = NodeChange {
            ops: vec![
                op(Table::Calls, "a"),
                op(Table::Ringing, "b"),
                op(Table::Calls, "c"),
            ],
            status: Some(NodeStatus::default()),
        };
        let json = Notice::change(&id, &change).to_json();
        assert_eq!(
            json,
            r#"{"node":"fs1","kind":"change","tables":["calls","ringing","node"]}"#
        );
        let back = Notice::parse(&json).unwrap();
        assert_eq!(back.node, id);
        assert_eq!(back.kind, NoticeKind::Change);
    }

    #[test]
    fn whole_notice_names_every_key() {
        let id = NodeId::new("fs2").unwrap();
        let n = Notice::whole(&id, NoticeKind::Replace);
        assert_eq!(n.tables.len(), 1 + Table::ALL.len());
        assert!(n.tables.iter().any(|t| t == "sipcalls"));
        assert!(Notice::parse(r#"{"node":"a}b","kind":"change"}"#).is_err());
    }
}
