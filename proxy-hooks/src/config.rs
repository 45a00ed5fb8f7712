//! The routing configuration (`RoutingConfig`, `[proxy.routing]` in
//! `locus.toml`): feature-code patterns, the standard-call algorithm,
//! tenant pins and spares, static nodes without an agent, and the farm-view
//! sync timings. Defaults match FreeSWITCH's vanilla dialplan
//! (`conf/vanilla/dialplan/default.xml`).

use std::collections::BTreeMap;
use std::time::Duration;

use locus_schema::NodeId;
use serde::Deserialize;

use crate::features::Features;

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

/// Directed pickup: `pattern` matched against the request-URI user, `ext`
/// the extension to pick up (regex replacement syntax: `$1`, `${1}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Extension template.
    pub ext: String,
}

/// Valet parking: `lot` names the lot, `slot` the slot when the code names
/// one (absent for "retrieve by asking", vanilla `6000`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValetCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Lot name template (vanilla: `valet_parking_lot`).
    pub lot: String,
    /// Slot template.
    #[serde(default)]
    pub slot: Option<String>,
}

/// A conference room code.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Room name template as the agent publishes it (`3001` for vanilla's
    /// `3001-${domain_name}@default`).
    pub room: String,
}

/// A call-center or FIFO queue code.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueCode {
    /// Regex on the R-URI user.
    pub pattern: String,
    /// Queue name template as the agent publishes it (`5900` for
    /// `5900@${domain_name}`, `support@default` for mod_callcenter).
    pub queue: String,
}

/// `[proxy.routing.features]`. Codes are tried in this order (group,
/// directed, valet, conference, queue; list order within each) and the
/// first match wins.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Group pickup (vanilla `group-intercept`).
    pub group_pickup: Vec<String>,
    /// Directed pickup.
    pub directed_pickup: Vec<ExtCode>,
    /// Valet parking.
    pub valet: Vec<ValetCode>,
    /// Conference rooms.
    pub conference: Vec<RoomCode>,
    /// Queues.
    pub queue: Vec<QueueCode>,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        let ext = |p: &str| ExtCode {
            pattern: p.into(),
            ext: "$1".into(),
        };
        let room = |p: &str| RoomCode {
            pattern: p.into(),
            room: "$1".into(),
        };
        let queue = |p: &str, q: &str| QueueCode {
            pattern: p.into(),
            queue: q.into(),
        };
        let lot = "valet_parking_lot".to_owned();
        Self {
            group_pickup: vec![r"^\*8$".into()],
            // Vanilla `intercept-ext`; `*4EXT` is not in vanilla but common
            // on other PBXes and harmless there (no vanilla code starts *4).
            directed_pickup: vec![ext(r"^\*\*(\d+)$"), ext(r"^\*4(\d+)$")],
            // Vanilla `^(6000)$` (ask for the slot) and `^((?!6000)60\d{2})$`;
            // the regex crate has no look-ahead, so 6000 simply comes first.
            valet: vec![
                ValetCode {
                    pattern: r"^(6000)$".into(),
                    lot: lot.clone(),
                    slot: None,
                },
                ValetCode {
                    pattern: r"^(60\d{2})$".into(),
                    lot,
                    slot: Some("$1".into()),
                },
            ],
            // nb, wb, uwb, cdquality and video-mcu-stereo conferences.
            conference: ["30", "31", "32", "33", "35"]
                .iter()
                .map(|p| room(&format!(r"^({p}\d{{2}})$")))
                .collect(),
            // FIFO park 5900 (in), unpark 5901 (out of 5900), Snom park+N.
            queue: vec![
                queue(r"^(5900)$", "$1"),
                queue(r"^5901$", "5900"),
                queue(r"^park\+(\d+)$", "$1"),
            ],
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
        assert_eq!(cfg.features.conference.len(), 5);
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
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.algorithm, Algorithm::HashRuri);
        assert_eq!(cfg.tenants.pins["t1.example.com"].as_str(), "fs2");
        assert_eq!(cfg.static_nodes[0].weight, 1);
        assert_eq!(cfg.sync.coalesce, Duration::from_millis(20));
        // A section given replaces its lists; others keep their defaults.
        assert!(cfg.features.directed_pickup.len() == 2 && cfg.features.queue.len() == 1);
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
    }
}
