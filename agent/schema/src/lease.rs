//! [`ProxyLease`]: a live `locus proxy`, as it announces itself in
//! `proxy:{id}` (JSON, expiring unless refreshed). Proxies find each other
//! through these (trust of a sibling's requests, takeover of a dead one's
//! phones), and two processes never run under one id.

use serde::{Deserialize, Serialize};

/// One proxy's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyLease {
    /// The proxy id (`proxy.core.id`; the owner named in bindings).
    pub id: String,
    /// Random per process: tells a restart of the same proxy (a new
    /// instance once the old lease lapsed) from a second live process
    /// under the same id.
    pub instance: String,
    /// Where it listens, as `sip:` URIs (`;transport=tcp` for TCP).
    pub sockets: Vec<String>,
    /// `proxy.core.advertise`, when set (a floating address a backup may
    /// take over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// When the process started, ms since the Unix epoch.
    pub started_ms: u64,
}

impl ProxyLease {
    /// Parses a stored value; `None` (logged) for anything else.
    pub fn parse_stored(key: &str, raw: &str) -> Option<ProxyLease> {
        match serde_json::from_str(raw) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable proxy lease; skipped");
                None
            }
        }
    }
}
