//! Mid-registrar mode (`[proxy.registrar] mode = "mid"`, as OpenSIPS'
//! mid_registrar): phones are given a short expiry (`phone_expires`,
//! default 60 s: it holds the NAT pinhole and finds dead phones within a
//! minute), the boxes a long one (`box_expires`, default 1 h), and the
//! refreshes in between are answered by the proxy.
//!
//! Authentication stays with FreeSWITCH. A REGISTER is answered here
//! only when it is a plain refresh of what the box accepted:
//!
//! * it comes over the same flow (source address, transport, connection)
//!   as the REGISTER the box accepted, with the same Call-ID and a higher
//!   CSeq (RFC 3261 10.2.4: a refresh reuses its Call-ID);
//! * it lists exactly the contacts registered with that Call-ID, none
//!   with expiry 0, and no `*`;
//! * the box's binding outlives the phone's next refresh by a whole
//!   `phone_expires`.
//!
//! Anything else goes to a box: the first REGISTER, a new or changed
//! contact, a new flow (the phone moved to another NAT port), an
//! unregister, and the refresh that comes when the box's binding is about
//! to lapse (the box challenges; the phone answers; its 200 renews the box
//! side for another `box_expires`). A forwarded REGISTER asks the box for
//! `box_expires`; its 200 is relayed with the phone's expiry.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use locus_schema::now_ms;

use super::config::RegistrarMode;
use super::keepalive::ContactKey;
use super::{Registrar, contact_key};
use crate::proxy::Flow;
use crate::sip::{NameAddr, SipMessage};

/// When each box-side binding lapses (ms since the epoch), by contact.
#[derive(Default)]
pub(crate) struct BoxLeases(Mutex<HashMap<ContactKey, u64>>);

/// Writes between two sweeps of lapsed leases (bounds the map).
const SWEEP_EVERY: usize = 1024;

impl BoxLeases {
    pub(crate) fn set(&self, key: ContactKey, until_ms: u64, now: u64) {
        let mut m = locus_schema::lock(&self.0);
        if m.len().is_multiple_of(SWEEP_EVERY) {
            m.retain(|_, t| *t > now);
        }
        m.insert(key, until_ms);
    }

    pub(crate) fn remove(&self, key: &ContactKey) {
        locus_schema::lock(&self.0).remove(key);
    }

    fn until(&self, key: &ContactKey) -> Option<u64> {
        locus_schema::lock(&self.0).get(key).copied()
    }
}

fn expires_of(c: &NameAddr, header: Option<u32>) -> Option<u32> {
    c.params
        .get("expires")
        .flatten()
        .and_then(|v| v.trim().parse().ok())
        .or(header)
}

fn expires_header(msg: &SipMessage) -> Option<u32> {
    msg.headers
        .get("Expires")
        .and_then(|v| v.trim().parse().ok())
}

/// Rewrites every non-zero expiry of `msg`'s contacts (and its Expires
/// header) with `f(old)`; contacts are rewritten only when they parse.
fn rewrite_expiries(msg: &mut SipMessage, f: impl Fn(u32) -> u32) {
    let header = expires_header(msg);
    if let Some(e) = header.filter(|e| *e != 0) {
        msg.headers.set("Expires", &f(e).to_string());
    }
    let Ok(mut contacts) = msg.contacts() else {
        return;
    };
    if contacts.is_empty() {
        return;
    }
    for c in &mut contacts {
        if let Some(e) = c
            .params
            .get("expires")
            .flatten()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|e| *e != 0)
        {
            c.params.set("expires", Some(&f(e).to_string()));
        }
    }
    msg.headers.remove_all("Contact");
    for c in contacts {
        msg.headers.push("Contact", &c.to_string());
    }
}

impl Registrar {
    fn mid(&self) -> bool {
        self.cfg.mode == RegistrarMode::Mid
    }

    fn phone_secs(&self) -> u32 {
        u32::try_from(self.cfg.phone_expires.as_secs()).unwrap_or(u32::MAX)
    }

    /// Mid mode: a REGISTER on its way to a box asks for `box_expires`
    /// (an unregister stays one).
    pub(super) fn to_box(&self, req: &mut SipMessage) {
        if self.mid() {
            let long = u32::try_from(self.cfg.box_expires.as_secs()).unwrap_or(u32::MAX);
            rewrite_expiries(req, |_| long);
        }
    }

    /// Mid mode: the box's 200 goes to the phone with the phone's expiry.
    pub(super) fn to_phone(&self, resp: &mut SipMessage) {
        if self.mid() {
            let short = self.phone_secs();
            rewrite_expiries(resp, |e| e.min(short));
        }
    }

    /// Mid mode: the phone's lifetime of a binding the box granted for
    /// `granted` seconds, and when the box's own lapses.
    pub(super) fn lifetimes(&self, granted: u32) -> (u32, Option<u64>) {
        if !self.mid() {
            return (granted, None);
        }
        let box_until = now_ms().saturating_add(u64::from(granted) * 1000);
        (granted.min(self.phone_secs()), Some(box_until))
    }

    /// The 200 to a REGISTER that is a plain refresh (module docs), with
    /// the bindings renewed; `None` sends it to a box.
    pub async fn absorb(&self, req: &SipMessage, flow: &Flow) -> Option<SipMessage> {
        if !self.mid() || req.headers.get_all("Contact").contains(&"*") {
            return None;
        }
        let to = req.to().ok()?;
        let (user, domain) = (to.uri.user_name()?, to.uri.host.as_str());
        let call_id = req.call_id().ok()?;
        let (cseq, _) = req.cseq().ok()?;
        let asked = req.contacts().ok()?;
        let header = expires_header(req);
        let now = now_ms();
        let phone_ms = u64::from(self.phone_secs()) * 1000;
        let mine: Vec<_> = self
            .flows
            .live_with_flows(domain, user, now)
            .into_iter()
            .filter(|(b, _)| b.call_id == call_id)
            .collect();
        if asked.is_empty() || asked.len() != mine.len() {
            return None;
        }
        let mut renewed = Vec::with_capacity(asked.len());
        for c in &asked {
            let text = c.uri.to_string();
            let (b, f) = mine.iter().find(|(b, _)| b.contact == text)?;
            let wanted = expires_of(c, header).unwrap_or(self.phone_secs());
            let lease = self.leases.until(&contact_key(domain, user, &text))?;
            let fresh = f == flow && cseq > b.cseq && wanted != 0;
            if !fresh || lease <= now.saturating_add(phone_ms * 2) {
                return None;
            }
            renewed.push((b.clone(), c.uri.clone(), wanted.min(self.phone_secs())));
        }
        let grace = u64::try_from(self.cfg.grace.as_millis()).unwrap_or(u64::MAX);
        let mut resp = req.reply(200, "OK", Some(&tag(call_id, cseq)));
        for (mut b, uri, secs) in renewed {
            b.cseq = cseq;
            b.unreachable = false;
            b.expires_ms = now
                .saturating_add(u64::from(secs) * 1000)
                .saturating_add(grace);
            self.flows.save(domain, user, b.clone(), *flow, now);
            self.track(flow, domain, user, &b, &uri);
            if let Err(e) = self.store.put_binding(domain, user, &b).await {
                self.store_failed("write", &format!("{user}@{domain}"), &e);
            }
            resp.headers
                .push("Contact", &format!("<{uri}>;expires={secs}"));
        }
        self.stats.absorbed.inc();
        tracing::debug!(aor = %format!("{user}@{domain}"), cseq, "REGISTER refresh absorbed");
        Some(resp)
    }
}

/// A To tag for our own 200: stable per request, so a retransmission
/// answered again gets the same.
fn tag(call_id: &str, cseq: u32) -> String {
    use std::sync::OnceLock;
    static SALT: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let h = SALT
        .get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one((call_id, cseq));
    format!("lm{h:x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn expiries_are_rewritten_except_zero() {
        let mut m = super::super::test_register(
            "Expires: 300\r\nContact: <sip:1000@192.0.2.7>;expires=120, <sip:1000@192.0.2.8>;expires=0\r\n\
             Contact: <sip:1000@192.0.2.9>\r\n",
        );
        rewrite_expiries(&mut m, |_| 3600);
        assert_eq!(m.headers.get("Expires"), Some("3600"));
        let c: Vec<String> = m
            .contacts()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            c,
            vec![
                "<sip:1000@192.0.2.7>;expires=3600",
                "<sip:1000@192.0.2.8>;expires=0",
                "<sip:1000@192.0.2.9>",
            ]
        );
        rewrite_expiries(&mut m, |e| e.min(60));
        assert_eq!(m.headers.get("Expires"), Some("60"));
        assert_eq!(
            m.contacts().unwrap()[0].to_string(),
            "<sip:1000@192.0.2.7>;expires=60"
        );
    }
}
