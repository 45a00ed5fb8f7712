//! The routing configuration (`RoutingConfig`, `[proxy.routing]` in
//! `locus.toml`): feature-code patterns, the standard-call algorithm,
//! tenant pins and spares, static nodes without an agent, and the farm-view
//! sync timings. Defaults match FreeSWITCH's vanilla dialplan
//! (`conf/vanilla/dialplan/default.xml`).

use std::collections::BTreeMap;
use std::time::Duration;

use locus_schema::NodeId;
use serde::Deserialize;

use crate::routing::affinity::AffinityConfig;
use crate::routing::features::Features;

mod codes;

pub use codes::{ExtCode, FeatureConfig, QueueCode, RoomCode, ValetCode};

/// How standard calls (rule 5) are spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Fewest live calls (agent figure plus the proxy's in-flight INVITEs).
    #[default]
    LeastCalls,
    /// Weighted rendezvous hash of the Call-ID (share proportional to weight).
    Weighted,
    /// Each node in turn.
    RoundRobin,
    /// Rendezvous hash of the Call-ID.
    HashCallid,
    /// Rendezvous hash of the request URI (`user@domain`).
    HashRuri,
}

/// `[proxy.routing]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Standard-call algorithm.
    pub algorithm: Algorithm,
    /// Feature codes (rule 3).
    pub features: FeatureConfig,
    /// Tenant pins (rule 4).
    pub tenants: TenantConfig,
    /// Nodes that take a dead pinned node's domains, first live one first,
    /// besides those whose agent publishes `role = spare`.
    pub spares: Vec<NodeId>,
    /// Nodes without an agent (a benchmark backend, a box not yet
    /// migrated): routed by their OPTIONS probe alone.
    pub static_nodes: Vec<StaticNode>,
    /// Farm-view sync timings.
    pub sync: SyncConfig,
    /// Call-ID pins: the retry of a challenged request goes to the box
    /// that challenged it (`affinity.rs`).
    pub affinity: AffinityConfig,
}

/// `[proxy.routing.tenants]`: SIP domains bound to one node.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// Explicit pins: domain -> node.
    pub pins: BTreeMap<String, NodeId>,
    /// Pin every other domain by rendezvous hash of the domain over the
    /// active nodes (multi-tenant mode: each tenant on one box).
    pub hash_all: bool,
}

/// `[[proxy.routing.static_nodes]]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNode {
    /// Node id (the same rules as an agent's).
    pub id: NodeId,
    /// Where SIP goes (`sip:host:port`).
    pub sip_uri: String,
    /// Weight for the weighted algorithm.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// `[proxy.routing.sync]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// At most one rebuild per this period while notices keep coming.
    #[serde(with = "humantime_serde")]
    pub coalesce: Duration,
    /// Full re-read of the farm even without notices (pub/sub is
    /// at-most-once and load figures come without notices).
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            coalesce: Duration::from_millis(50),
            refresh: Duration::from_secs(2),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A feature-code pattern does not compile.
    #[error("proxy.routing.features: bad pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        #[source]
        source: Box<regex::Error>,
    },
    /// Any other unusable value.
    #[error("proxy.routing: {0}")]
    Invalid(String),
}

impl RoutingConfig {
    /// Checks what parses but cannot work (patterns compile, templates and
    /// URIs are non-empty, timings positive).
    pub fn validate(&self) -> Result<(), ConfigError> {
        Features::compile(&self.features)?;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for n in &self.static_nodes {
            if !n.sip_uri.starts_with("sip:") && !n.sip_uri.starts_with("sips:") {
                return bad(format!(
                    "static node {}: sip_uri must be sip: or sips:",
                    n.id
                ));
            }
        }
        if self.sync.coalesce.is_zero() || self.sync.refresh <= self.sync.coalesce {
            return bad("sync.refresh must be longer than sync.coalesce (> 0)".into());
        }
        if self.affinity.ttl.is_zero() || self.affinity.capacity == 0 {
            return bad("affinity.ttl and affinity.capacity must be > 0".into());
        }
        Ok(())
    }

    /// True when `node` is a spare by configuration.
    pub fn is_spare(&self, node: &NodeId) -> bool {
        self.spares.contains(node)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn empty_config_means_vanilla_defaults() {
        let cfg: RoutingConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, RoutingConfig::default());
        assert_eq!(cfg.algorithm, Algorithm::LeastCalls);
        assert_eq!(cfg.features.conference.len(), 8);
        cfg.validate().unwrap();
    }

    #[test]
    fn full_config_parses() {
        let cfg: RoutingConfig = toml::from_str(
            r#"
            algorithm = "hash_ruri"
            spares = ["fs9"]
            [tenants]
            pins = { "t1.example.com" = "fs2" }
            hash_all = true
            [[static_nodes]]
            id = "bench1"
            sip_uri = "sip:127.0.0.1:5090"
            [features]
            group_pickup = ['^\*\*8$']
            queue = [{ pattern = '^7001$', queue = "support@default" }]
            [sync]
            coalesce = "20ms"
            refresh = "1s"
            [affinity]
            ttl = "10s"
            capacity = 1000
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.algorithm, Algorithm::HashRuri);
        assert_eq!(cfg.tenants.pins["t1.example.com"].as_str(), "fs2");
        assert_eq!(cfg.static_nodes[0].weight, 1);
        assert_eq!(cfg.sync.coalesce, Duration::from_millis(20));
        assert_eq!(cfg.affinity.ttl, Duration::from_secs(10));
        assert_eq!(cfg.affinity.capacity, 1000);
        // A section given replaces its lists; others keep their defaults.
        assert!(cfg.features.directed_pickup.len() == 1 && cfg.features.queue.len() == 1);
    }

    #[test]
    fn readme_sample_is_the_default() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n").unwrap() + 8;
        let len = readme[start..].find("```").unwrap();
        let doc: toml::Table = toml::from_str(&readme[start..start + len]).unwrap();
        let routing = doc["proxy"]["routing"].clone();
        let cfg: RoutingConfig = routing.try_into().unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.features, FeatureConfig::default());
        assert_eq!(cfg.sync, SyncConfig::default());
        assert_eq!(cfg.affinity, AffinityConfig::default());
        assert_eq!(cfg.static_nodes.len(), 1);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<RoutingConfig>("algoritm = \"weighted\"").is_err());
        assert!(toml::from_str::<RoutingConfig>("algorithm = \"random\"").is_err());
        assert!(toml::from_str::<RoutingConfig>("spares = [\"a b\"]").is_err());
        let bad: RoutingConfig = toml::from_str("[features]\ngroup_pickup = ['(']").unwrap();
        assert!(matches!(bad.validate(), Err(ConfigError::Pattern { .. })));
        let uri: RoutingConfig =
            toml::from_str("[[static_nodes]]\nid = \"b\"\nsip_uri = \"127.0.0.1\"").unwrap();
        assert!(uri.validate().is_err());
        let sync: RoutingConfig = toml::from_str("[sync]\nrefresh = \"10ms\"").unwrap();
        assert!(sync.validate().is_err());
        let pins: RoutingConfig = toml::from_str("[affinity]\nttl = \"0s\"").unwrap();
        assert!(pins.validate().is_err());
        assert!(toml::from_str::<RoutingConfig>("[affinity]\nttll = \"1s\"").is_err());
    }
}
