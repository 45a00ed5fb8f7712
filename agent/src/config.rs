//! The agent's configuration (`[agent]` in `locus.toml`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use locus_schema::{NodeId, NodeRole};
use serde::Deserialize;

use crate::model::ModelConfig;

/// `[agent]`: one agent beside one FreeSWITCH.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This box's id in the farm.
    pub node_id: NodeId,
    /// Where the proxy sends SIP for this box.
    pub sip_uri: String,
    /// Active or spare.
    pub role: NodeRole,
    /// Weight for weighted balancing.
    pub weight: u32,
    /// Lease of `{id}:node`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Lease and load refresh interval.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
    /// Janitor: delete nodes whose lease expired this long ago.
    #[serde(with = "humantime_serde")]
    pub reap_after: Duration,
    /// `/metrics` and `/healthz` listener (none when absent).
    pub http: Option<SocketAddr>,
    /// ESL connection.
    pub esl: EslSection,
    /// Channel variable names.
    #[serde(default)]
    pub model: ModelConfig,
}

/// `[agent.esl]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslSection {
    /// `host:port` of mod_event_socket.
    pub addr: String,
    /// ESL password (redacted in logs).
    pub password: String,
    /// TCP connect + auth time limit.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time limit of one command.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Silence after which the link is probed.
    #[serde(with = "humantime_serde")]
    pub liveness: Duration,
    /// Events buffered between reader and model.
    pub event_queue: usize,
    /// Largest ESL body accepted.
    pub max_body: usize,
    /// Reconnect backoff start.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Reconnect backoff cap.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
}

impl fmt::Debug for EslSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslSection")
            .field("addr", &self.addr)
            .field("password", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("liveness", &self.liveness)
            .field("event_queue", &self.event_queue)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl AgentConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.refresh.is_zero() || self.lease <= self.refresh {
            return bad("agent.lease must be longer than agent.refresh (> 0)");
        }
        if !self.sip_uri.starts_with("sip:") && !self.sip_uri.starts_with("sips:") {
            return bad("agent.sip_uri must be a sip: or sips: URI");
        }
        if self.esl.addr.is_empty() {
            return bad("agent.esl.addr is empty");
        }
        if self.esl.event_queue == 0 || self.esl.max_body < 1024 {
            return bad("agent.esl.event_queue must be > 0 and agent.esl.max_body >= 1024");
        }
        if self.esl.backoff_base.is_zero() || self.esl.backoff_cap < self.esl.backoff_base {
            return bad("agent.esl.backoff_base must be > 0 and <= agent.esl.backoff_cap");
        }
        Ok(())
    }
}
