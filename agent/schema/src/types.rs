//! Values stored in Redis: node status fields and JSON call records.

use serde::{Deserialize, Serialize};

/// A call's state as published (DESIGN.md `{id}:calls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Being set up, a leg alerting (180) or not yet.
    Ringing,
    /// Early media (183).
    Early,
    /// Answered and talking.
    Answered,
    /// On hold.
    Held,
    /// Parked (valet lot or `park`).
    Parked,
    /// In a conference room.
    Conference,
    /// Waiting in a call-center or FIFO queue.
    Queued,
}

impl CallState {
    /// The published word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::Early => "early",
            Self::Answered => "answered",
            Self::Held => "held",
            Self::Parked => "parked",
            Self::Conference => "conference",
            Self::Queued => "queued",
        }
    }

    /// True while nobody has answered (what directed pickup can take).
    pub fn is_ringing(self) -> bool {
        matches!(self, Self::Ringing | Self::Early)
    }
}

/// Call direction, from the first leg's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Came into the box (from a phone or carrier).
    Inbound,
    /// Placed by the box (originate).
    Outbound,
}

/// One call (all its legs) on one node: the value of `{id}:calls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The call's uuid (its first leg's channel uuid).
    pub uuid: String,
    /// SIP domain (tenant).
    pub domain: String,
    /// Direction of the first leg.
    pub direction: Direction,
    /// Caller id number.
    pub from: String,
    /// Dialled extension (what `**EXT` names).
    pub to_ext: String,
    /// Current state.
    pub state: CallState,
    /// Pickup group of the called party, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Valet lot, when parked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Valet slot (extension), when parked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Conference room, when in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Queue (call center or FIFO), when waiting in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Channel uuids of the call's legs.
    #[serde(default)]
    pub legs: Vec<String>,
    /// SIP Call-IDs of the call's legs.
    #[serde(default)]
    pub sip_call_ids: Vec<String>,
    /// When the call was created (ms since epoch).
    pub created_ms: u64,
    /// When it was answered (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_ms: Option<u64>,
}

/// An entry of `{id}:ringing`: a call ringing an extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingEntry {
    /// Call uuid.
    pub uuid: String,
    /// Ringing since (ms since epoch).
    pub since_ms: u64,
}

/// An entry of `{id}:groups`: a call of a pickup group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Call uuid.
    pub uuid: String,
    /// Its state (ringing or answered, ...).
    pub state: CallState,
    /// Since (ms since epoch).
    pub since_ms: u64,
}

/// A value of `{id}:members`: one user as the node knows it. The node
/// claims the user while it holds a registration of it (`regs`), or since a
/// call of the user showed its groups; readers take the union of the live
/// nodes' claims ([`crate::FarmView::members`]), so a binding expiring on
/// one box never hides one still registered on another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Pickup groups (sorted, no duplicates); may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The user's registrations on this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regs: Vec<RegClaim>,
}

/// One registration on a node, as its `sofia::register` event named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegClaim {
    /// SIP Call-ID of the REGISTER (what `flush_inbound_reg` takes).
    pub call_id: String,
    /// The Contact as the box stored it (may carry `fs_path`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// The sofia profile holding it.
    #[serde(default = "default_profile")]
    pub profile: String,
}

fn default_profile() -> String {
    "internal".into()
}

/// An entry of `{id}:unreg`: a registration the node's agent must drop
/// (`sofia profile <profile> flush_inbound_reg <target>`), queued by a
/// proxy that relayed the user's unregister to another box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnregRequest {
    /// The sofia profile.
    pub profile: String,
    /// A Call-ID, or `user@domain` for every registration of the user.
    pub target: String,
}

/// Role of a node in the farm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Takes calls.
    #[default]
    Active,
    /// Stands by to take a dead node's tenants.
    Spare,
}

/// Administrative state of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Takes new calls.
    #[default]
    Active,
    /// Takes only calls bound to what it already holds.
    Draining,
}

impl NodeState {
    /// The published word (`active`, `draining`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
        }
    }

    /// Parses the published word; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "draining" => Some(Self::Draining),
            _ => None,
        }
    }
}

/// State of the agent's ESL link to FreeSWITCH.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EslLink {
    /// Connected and subscribed.
    Up,
    /// Not connected.
    #[default]
    Down,
}

/// The node's status: the fields of `{id}:node`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Where the proxy sends SIP for this node.
    pub sip_uri: String,
    /// Active or spare.
    pub role: NodeRole,
    /// Active or draining (set by `locus node drain`; the agent keeps it).
    pub state: NodeState,
    /// Relative weight for weighted balancing.
    pub weight: u32,
    /// Live calls.
    pub calls: u32,
    /// Live channels.
    pub channels: u32,
    /// FreeSWITCH `max-sessions`.
    pub max_sessions: u32,
    /// Idle CPU percent, from HEARTBEAT.
    pub idle_cpu: f64,
    /// Sessions per second, from HEARTBEAT.
    pub sps: u32,
    /// ESL link state.
    pub esl: EslLink,
    /// FreeSWITCH version.
    pub version: String,
    /// When this status was written (ms since epoch).
    pub updated_ms: u64,
}

impl NodeStatus {
    /// The status as hash fields (what `HSET {id}:node` takes).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let word = |v: &dyn erased::Word| v.word();
        vec![
            ("sip_uri", self.sip_uri.clone()),
            ("role", word(&self.role)),
            ("state", word(&self.state)),
            ("weight", self.weight.to_string()),
            ("calls", self.calls.to_string()),
            ("channels", self.channels.to_string()),
            ("max_sessions", self.max_sessions.to_string()),
            ("idle_cpu", format!("{:.2}", self.idle_cpu)),
            ("sps", self.sps.to_string()),
            ("esl", word(&self.esl)),
            ("version", self.version.clone()),
            ("updated_ms", self.updated_ms.to_string()),
        ]
    }

    /// Reads a status back from hash fields; unknown or garbled fields keep
    /// their defaults (a reader must survive garbage in Redis).
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut s = Self::default();
        for (k, v) in fields {
            match k {
                "sip_uri" => s.sip_uri = v.to_owned(),
                "role" => s.role = erased::parse(v).unwrap_or_default(),
                "state" => s.state = erased::parse(v).unwrap_or_default(),
                "weight" => s.weight = v.parse().unwrap_or_default(),
                "calls" => s.calls = v.parse().unwrap_or_default(),
                "channels" => s.channels = v.parse().unwrap_or_default(),
                "max_sessions" => s.max_sessions = v.parse().unwrap_or_default(),
                "idle_cpu" => s.idle_cpu = v.parse().unwrap_or_default(),
                "sps" => s.sps = v.parse().unwrap_or_default(),
                "esl" => s.esl = erased::parse(v).unwrap_or_default(),
                "version" => s.version = v.to_owned(),
                "updated_ms" => s.updated_ms = v.parse().unwrap_or_default(),
                _ => {}
            }
        }
        s
    }
}

mod erased {
    //! Unit enums <-> their snake_case word, via serde.
    use serde::{Serialize, de::DeserializeOwned};

    pub trait Word {
        fn word(&self) -> String;
    }
    impl<T: Serialize> Word for T {
        fn word(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                _ => String::new(),
            }
        }
    }
    pub fn parse<T: DeserializeOwned>(v: &str) -> Option<T> {
        serde_json::from_value(serde_json::Value::String(v.to_owned())).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_fields() {
        let s = NodeStatus {
            sip_uri: "sip:127.0.0.1:5060".into(),
            state: NodeState::Draining,
            esl: EslLink::Up,
            calls: 3,
            idle_cpu: 97.5,
            ..Default::default()
        };
        let fields = s.to_fields();
        let back = NodeStatus::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(back, s);
        assert_eq!(
            fields
                .iter()
                .find(|(k, _)| *k == "state")
                .map(|f| f.1.as_str()),
            Some("draining")
        );
    }

    #[test]
    fn garbage_fields_fall_back_to_defaults() {
        let s = NodeStatus::from_fields([("calls", "lots"), ("state", "weird"), ("x", "y")]);
        assert_eq!(s.calls, 0);
        assert_eq!(s.state, NodeState::Active);
    }
}
