//! The node shared secret (`[proxy.policy] node_secret`, `node_secrets`):
//! over UDP a source address proves nothing where the network lets
//! anyone forge it (no BCP 38 filtering, a shared LAN), so a farm that
//! cannot keep its node network closed has each box send
//! `X-Locus-Auth: <secret>` (a `sip_h_X-Locus-Auth` channel variable or a
//! sofia profile header). The header is checked at admission, removed
//! from every request, and its verdict kept for the routing step that
//! follows ([`Vouched`]): the forwarded request never carries it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::proxy::Flow;
use crate::sip::SipMessage;

/// The header a box proves itself with.
pub const AUTH_HEADER: &str = "X-Locus-Auth";

/// Compares a received value with a secret without an early exit on the
/// first differing byte (the length is not secret).
pub(crate) fn same_secret(got: &str, want: &str) -> bool {
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// How long an admission verdict waits for the routing step of its request.
const VOUCH_TTL: Duration = Duration::from_secs(5);

/// Most admission verdicts held at once; past it, new ones are not kept
/// (the request is then routed as a stranger's: it fails closed).
const VOUCH_CAP: usize = 4096;

/// Requests that proved a node's secret at admission, until their routing
/// step asks (`take`): admission removes the header, routing needs to know.
/// Keyed by the request's identity on its flow (source, transport,
/// Call-ID, CSeq, top Via branch); entries whose routing never came (the
/// core answered the request itself) expire.
#[derive(Debug, Default)]
pub struct Vouched {
    map: Mutex<HashMap<String, Instant>>,
}

fn vouch_key(req: &SipMessage, flow: &Flow) -> Option<String> {
    let via = req.top_via().ok()?;
    let (seq, method) = req.cseq().ok()?;
    Some(format!(
        "{:?}/{}/{}/{seq} {method}/{}",
        flow.transport,
        flow.source,
        req.call_id().ok()?,
        via.branch().unwrap_or_default()
    ))
}

impl Vouched {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // Every update is one insert, remove or retain: a poisoned map is
        // still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `req` from `flow` carried a valid node secret.
    pub fn insert(&self, req: &SipMessage, flow: &Flow) {
        let Some(key) = vouch_key(req, flow) else {
            return;
        };
        let now = Instant::now();
        let mut m = self.lock();
        if m.len() >= VOUCH_CAP / 2 {
            m.retain(|_, at| now.duration_since(*at) < VOUCH_TTL);
        }
        if m.len() < VOUCH_CAP {
            m.insert(key, now);
        } else {
            tracing::warn!(peer = %flow.source, "node secret verdicts full; request routed as a stranger's");
        }
    }

    /// Whether `req` from `flow` was vouched for at admission (forgotten
    /// once asked).
    pub fn take(&self, req: &SipMessage, flow: &Flow) -> bool {
        let Some(key) = vouch_key(req, flow) else {
            return false;
        };
        self.lock()
            .remove(&key)
            .is_some_and(|at| at.elapsed() < VOUCH_TTL)
    }

    /// Verdicts held (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::sip::Transport;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeg", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcde", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }

    #[test]
    fn a_verdict_serves_its_own_request_once() {
        let req = |branch: &str| {
            SipMessage::parse(
                format!(
                    "INVITE sip:1@d SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch={branch}\r\n\
                     From: <sip:a@d>;tag=1\r\nTo: <sip:1@d>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
                     Content-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let flow = |src: &str| Flow {
            source: src.parse().unwrap(),
            transport: Transport::Udp,
            conn: None,
            local: "10.0.0.100:5060".parse().unwrap(),
        };
        let v = Vouched::default();
        v.insert(&req("z9hG4bKa"), &flow("10.0.0.1:5060"));
        assert!(
            !v.take(&req("z9hG4bKb"), &flow("10.0.0.1:5060")),
            "other branch"
        );
        assert!(
            !v.take(&req("z9hG4bKa"), &flow("10.0.0.1:5061")),
            "other source"
        );
        assert!(v.take(&req("z9hG4bKa"), &flow("10.0.0.1:5060")));
        assert!(!v.take(&req("z9hG4bKa"), &flow("10.0.0.1:5060")), "once");
        assert!(v.is_empty());
    }
}
