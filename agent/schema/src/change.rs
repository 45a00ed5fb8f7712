//! Changes to a node's published keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::NodeStatus;

/// One of the hashes a node owns (besides `{id}:node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// call uuid -> [`crate::CallRecord`] JSON.
    Calls,
    /// `{domain}/{ext}` -> JSON list of [`crate::RingEntry`].
    Ringing,
    /// `{domain}/{group}` -> JSON list of [`crate::GroupEntry`].
    Groups,
    /// `{domain}/{lot}/{slot}` -> call uuid.
    Lots,
    /// `{domain}/{room}` -> member count.
    Rooms,
    /// `{domain}/{queue}` -> waiting count.
    Queues,
    /// SIP Call-ID -> call uuid.
    Sipcalls,
    /// `{domain}/{ext}` -> [`crate::MemberEntry`] JSON: this node's claim
    /// that the user is registered here (and its pickup groups).
    Members,
}

impl Table {
    /// Every table, in key order.
    pub const ALL: [Table; 8] = [
        Table::Calls,
        Table::Ringing,
        Table::Groups,
        Table::Lots,
        Table::Rooms,
        Table::Queues,
        Table::Sipcalls,
        Table::Members,
    ];

    /// The key suffix (`calls`, `ringing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Calls => "calls",
            Table::Ringing => "ringing",
            Table::Groups => "groups",
            Table::Lots => "lots",
            Table::Rooms => "rooms",
            Table::Queues => "queues",
            Table::Sipcalls => "sipcalls",
            Table::Members => "members",
        }
    }

    /// Parses a key suffix.
    pub fn parse(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Set (`Some`) or delete (`None`) one field of one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashOp {
    /// Which hash.
    pub table: Table,
    /// The field.
    pub field: String,
    /// New value, or `None` to delete the field.
    pub value: Option<String>,
}

impl HashOp {
    /// Sets (`Some`) or deletes (`None`) the node's claim on `ext@domain`
    /// in `{id}:members` (field `{domain}/{ext}`).
    pub fn member(domain: &str, ext: &str, entry: Option<&crate::MemberEntry>) -> HashOp {
        HashOp {
            table: Table::Members,
            field: format!("{domain}/{ext}"),
            // A MemberEntry is strings only: serialising cannot fail.
            value: entry.map(|e| serde_json::to_string(e).unwrap_or_default()),
        }
    }
}

/// One atomic change of one node's keys: what one ESL event did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeChange {
    /// Field writes and deletes, applied in order.
    pub ops: Vec<HashOp>,
    /// New status, when it changed.
    pub status: Option<NodeStatus>,
}

impl NodeChange {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.status.is_none()
    }
}

/// A node's whole published content: what a resync or a republish writes,
/// deleting every field that is not in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeImage {
    /// The status hash.
    pub status: NodeStatus,
    /// Every table's fields.
    pub tables: BTreeMap<Table, BTreeMap<String, String>>,
}

impl NodeImage {
    /// Fields of one table (empty if none).
    pub fn table(&self, t: Table) -> impl Iterator<Item = (&String, &String)> {
        self.tables.get(&t).into_iter().flat_map(|m| m.iter())
    }
}
