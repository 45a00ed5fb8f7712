//! [`Binding`]: one registered contact of a user, as the proxies mirror it
//! into `reg:{domain}:{user}` (a HASH: contact URI -> this JSON) from the
//! 200 OK a farm node gave to a REGISTER. It makes the proxies the farm's
//! location service (DESIGN.md, routing rules 2 and 7).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::NodeId;

/// How long a `reg:` key outlives its latest binding. Readers filter by
/// [`Binding::expires_ms`] anyway; the key TTL only garbage-collects, so a
/// little slack keeps a re-REGISTER racing the expiry from finding an
/// empty key for no reason.
pub const KEY_GRACE: Duration = Duration::from_secs(60);

/// One contact of a user: where the phone is, and which proxy holds the
/// flow it registered from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI as the phone sent it (also the HASH field).
    pub contact: String,
    /// The phone's address as seen by the proxy (`ip:port`; the NAT
    /// binding, RFC 3581 style).
    pub received: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Id of the proxy that owns the flow.
    pub proxy: String,
    /// The owning proxy's socket the REGISTER arrived on, as a `sip:` URI
    /// another proxy can send to (`;transport=tcp` for TCP).
    pub socket: String,
    /// The owning proxy's flow token (`u~ADDR~0`, `t~ADDR~CONN`): the
    /// `flow=` parameter of the Route another proxy pushes to reach the
    /// phone through it.
    pub flow: String,
    /// `Path` values the REGISTER already carried when it reached us
    /// (proxies between the phone and us, RFC 3327), top first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// When the binding expires, ms since the Unix epoch.
    pub expires_ms: u64,
    /// The phone's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The farm node that accepted the REGISTER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// The phone is behind a NAT (its Via or Contact names another address
    /// than the one its REGISTER came from, or a private one): it is
    /// reached only through its flow, never at its Contact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nat: bool,
    /// The owning proxy's keepalives went unanswered `fail_after` times,
    /// or its TCP connection closed: no call is forked to it until it
    /// answers again or re-registers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
    /// RFC 5626 `+sip.instance` of the Contact (the device), with
    /// `reg_id`: one flow per (instance, reg-id); a REGISTER for it over a
    /// new flow replaces the old binding even when the Contact changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// RFC 5626 `reg-id` of the Contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER (RFC 3261 10.3: a re-REGISTER with the same
    /// Call-ID and a lower CSeq is stale).
    pub call_id: String,
    /// CSeq number of the REGISTER.
    pub cseq: u32,
}

impl Binding {
    /// Still valid at `now_ms`.
    pub fn live_at(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }

    /// Parses a stored value; `None` (with a warning naming the key) for
    /// anything that is not a binding, so one bad field never hides the
    /// others.
    pub fn parse_stored(key: &str, field: &str, raw: &str) -> Option<Binding> {
        match serde_json::from_str(raw) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(key, field, error = %e, "unreadable binding; skipped");
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_omitted_and_read_back() {
        let b = Binding {
            contact: "sip:1000@192.0.2.7:5060".into(),
            received: "192.0.2.7:40000".into(),
            transport: "udp".into(),
            proxy: "p1".into(),
            socket: "sip:10.0.0.1:5060".into(),
            flow: "u~192.0.2.7:40000~0".into(),
            path: vec![],
            expires_ms: 10,
            user_agent: None,
            node: None,
            nat: false,
            unreachable: false,
            instance: None,
            reg_id: None,
            call_id: "c".into(),
            cseq: 1,
        };
        let json = serde_json::to_string(&b).unwrap();
        assert!(
            !json.contains("path")
                && !json.contains("node")
                && !json.contains("nat")
                && !json.contains("unreachable"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Binding>(&json).unwrap(), b);
        assert!(b.live_at(9) && !b.live_at(10));
        assert!(Binding::parse_stored("k", "f", "{\"contact\":1}").is_none());
    }
}
