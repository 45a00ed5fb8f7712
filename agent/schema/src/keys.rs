//! Redis key construction. Every key of a node carries the node id as a
//! Redis Cluster hash tag (`locus:{fs1}:calls`), so all of one node's keys
//! live in one slot and one event is one MULTI/EXEC.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::change::Table;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "locus:";

/// A node id: 1-64 characters of `[A-Za-z0-9._-]` (it is embedded in keys
/// and hash tags, so braces, colons and spaces are refused).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

/// Why a node id was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid node id {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ -")]
pub struct NodeIdError(pub String);

impl NodeId {
    /// Validates and wraps a node id.
    pub fn new(id: impl Into<String>) -> Result<Self, NodeIdError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id))
        } else {
            Err(NodeIdError(id))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = NodeIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = NodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Builds every Redis key of the schema under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl Keys {
    /// Keys under `prefix` (e.g. `locus:`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `nodes`: ZSET node id -> last heartbeat (ms).
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// `{id}:node`: HASH of the node's status, with a lease (EXPIRE).
    pub fn node(&self, id: &NodeId) -> String {
        format!("{}{{{}}}:node", self.prefix, id)
    }

    /// `{id}:<table>`: one of the node's hashes.
    pub fn table(&self, id: &NodeId, table: Table) -> String {
        format!("{}{{{}}}:{}", self.prefix, id, table.as_str())
    }

    /// `{id}:unreg`: LIST of [`crate::UnregRequest`] JSON for the node's
    /// agent (written by proxies, popped by the agent).
    pub fn unreg(&self, id: &NodeId) -> String {
        format!("{}{{{}}}:unreg", self.prefix, id)
    }

    /// `reg:{domain}:{user}`: HASH contact -> binding (written by proxies).
    /// Domain and user are lower-cased, so `1000@Example.COM` and
    /// `1000@example.com` are one key whatever case a phone used.
    pub fn reg(&self, domain: &str, user: &str) -> String {
        format!(
            "{}reg:{}:{}",
            self.prefix,
            domain.to_lowercase(),
            user.to_lowercase()
        )
    }

    /// `proxy:{id}`: a live proxy's [`crate::ProxyLease`] (JSON, PX TTL).
    pub fn proxy(&self, id: &str) -> String {
        format!("{}proxy:{}", self.prefix, id)
    }

    /// `tenant:{domain}`: pinned node.
    pub fn tenant(&self, domain: &str) -> String {
        format!("{}tenant:{}", self.prefix, domain)
    }

    /// Pattern matching every `tenant:` key.
    pub fn tenant_pattern(&self) -> String {
        format!("{}tenant:*", self.prefix)
    }

    /// `events`: pub/sub channel of change notices.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Every key owned by a node.
    pub fn node_keys(&self, id: &NodeId) -> Vec<String> {
        std::iter::once(self.node(id))
            .chain(Table::ALL.iter().map(|t| self.table(id, *t)))
            .chain(std::iter::once(self.unreg(id)))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn node_keys_share_a_hash_tag() {
        let k = Keys::default();
        let id = NodeId::new("fs1").unwrap();
        assert_eq!(k.node(&id), "locus:{fs1}:node");
        assert_eq!(k.table(&id, Table::Calls), "locus:{fs1}:calls");
        assert!(k.node_keys(&id).iter().all(|key| key.contains("{fs1}")));
    }

    #[test]
    fn node_id_rejects_tag_breakers() {
        for bad in ["", "a}b", "a:b", "a b", "{x}", &"x".repeat(65)] {
            assert!(NodeId::new(bad).is_err(), "{bad}");
        }
        assert!(NodeId::new("fs-1.dc_2").is_ok());
    }
}
