//! RFC 5626 ("outbound") at the edge: a phone that sends `+sip.instance`
//! and `reg-id` in its Contact keeps one flow per (instance, reg-id). Its
//! REGISTER over a new flow (another NAT port, another proxy) replaces
//! the binding of the old one, even when its Contact URI changed, so no
//! call is forked to a flow the phone has left. The 200 it gets says how
//! often the proxy pings it (`Flow-Timer`, RFC 5626 4.4.1) when
//! keepalives are on.

use locus_schema::Binding;

use super::{Registrar, contact_key};
use crate::sip::{SipMessage, Uri};

/// `(+sip.instance, reg-id)` of the request's Contact for `contact`.
pub(super) fn ids(req: &SipMessage, contact: &Uri) -> (Option<String>, Option<u32>) {
    let Ok(all) = req.contacts() else {
        return (None, None);
    };
    let Some(c) = all.iter().find(|c| c.uri == *contact) else {
        return (None, None);
    };
    let instance = c
        .params
        .get("+sip.instance")
        .flatten()
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty());
    let reg_id = c
        .params
        .get("reg-id")
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    match (instance, reg_id) {
        (Some(i), Some(r)) => (Some(i), Some(r)),
        // One without the other means nothing (RFC 5626 4.2).
        _ => (None, None),
    }
}

/// Whether the REGISTER asks for outbound (a Contact with `reg-id`).
pub(super) fn asks(req: &SipMessage) -> bool {
    req.contacts()
        .is_ok_and(|all| all.iter().any(|c| c.params.get("reg-id").is_some()))
}

impl Registrar {
    /// After saving `saved`: drops every other binding of the same
    /// (instance, reg-id), ours or another proxy's.
    pub(super) async fn replace_flow(&self, domain: &str, user: &str, saved: &Binding) {
        let (Some(instance), Some(reg_id)) = (&saved.instance, saved.reg_id) else {
            return;
        };
        let all = match self.store.bindings(domain, user).await {
            Ok(b) => b,
            Err(e) => {
                self.store_failed("lookup", &format!("{user}@{domain}"), &e);
                self.flows.live(domain, user, locus_schema::now_ms())
            }
        };
        let stale = all.into_iter().filter(|b| {
            b.contact != saved.contact
                && b.instance.as_ref() == Some(instance)
                && b.reg_id == Some(reg_id)
        });
        for b in stale {
            tracing::debug!(aor = %format!("{user}@{domain}"), old = b.contact, new = saved.contact, "outbound: the phone's new flow replaces its old binding");
            let key = contact_key(domain, user, &b.contact);
            self.flows.remove(domain, user, &b.contact);
            self.leases.remove(&key);
            if let Some(ka) = &self.keepalive {
                ka.untrack(&key);
            }
            if let Err(e) = self.store.remove_binding(domain, user, &b.contact).await {
                self.store_failed("write", &format!("{user}@{domain}"), &e);
            }
        }
    }

    /// `Flow-Timer` on the 200 to an outbound REGISTER: our ping interval.
    pub(super) fn flow_timer(&self, req: &SipMessage, resp: &mut SipMessage) {
        let Some(ka) = &self.keepalive else { return };
        if ka.enabled() && asks(req) && resp.headers.get("Flow-Timer").is_none() {
            let secs = ka.interval().as_secs().max(1);
            resp.headers.push("Flow-Timer", &secs.to_string());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn instance_and_reg_id_come_together_or_not_at_all() {
        let m = super::super::test_register(
            "Contact: <sip:1000@192.168.1.2:5060>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"\r\n\
             Contact: <sip:1000@192.168.1.3:5060>;reg-id=2\r\n",
        );
        let a = Uri::parse("sip:1000@192.168.1.2:5060").unwrap();
        let b = Uri::parse("sip:1000@192.168.1.3:5060").unwrap();
        assert_eq!(
            ids(&m, &a),
            (
                Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>".into()),
                Some(1)
            )
        );
        assert_eq!(ids(&m, &b), (None, None));
        assert!(asks(&m));
    }
}
