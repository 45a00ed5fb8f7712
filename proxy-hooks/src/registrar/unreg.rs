//! An unregister through the proxy reaches one box, the one the REGISTER
//! was routed to; after a failover the user may still be registered on
//! another (`docs/location.md`). After that box's 2xx, the registrar looks
//! up the other live nodes' claims (`{id}:members`) and queues, for each
//! node still holding a matching registration, a request its agent turns
//! into `sofia profile <profile> flush_inbound_reg <user>@<domain>`
//! (`{id}:unreg`, `docs/redis-schema.md`).

use locus_schema::{RegClaim, UnregRequest};

use super::Registrar;
use super::contact::Change;
use crate::proxy::Target;
use crate::sip::{SipMessage, Uri};

/// The URI inside a Contact as sofia reports it (`"" <sip:u@h:p;fs_path=<...>>`),
/// parameters dropped.
fn claim_uri(contact: &str) -> Option<Uri> {
    let inner = contact.split_once('<').map_or(contact, |(_, rest)| rest);
    let end = inner.find([';', '>']).unwrap_or(inner.len());
    Uri::parse(inner[..end].trim()).ok()
}

/// Same phone: scheme, user, host and port (the box may have dropped the
/// phone's URI parameters).
fn same_phone(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| u.port.unwrap_or(u.scheme.default_port());
    a.scheme == b.scheme
        && a.user_name() == b.user_name()
        && a.host.eq_ignore_ascii_case(&b.host)
        && port(a) == port(b)
}

/// Whether a registration a box holds is the one `change` removes.
fn matches(change: &Change, call_id: &str, reg: &RegClaim) -> bool {
    match change {
        Change::RemoveAll => true,
        Change::Remove(c) => {
            reg.call_id == call_id || claim_uri(&reg.contact).is_some_and(|u| same_phone(&u, c))
        }
        Change::Save { .. } => false,
    }
}

/// `user@domain` when both are plain tokens: the target goes into an api
/// command line on the box, so nothing that could end or extend it (spaces,
/// a second `@`, control characters) and never the word `reboot`.
pub(crate) fn flush_target(user: &str, domain: &str) -> Option<String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()+%".contains(&b))
    };
    (token(user) && token(domain) && !user.eq_ignore_ascii_case("reboot"))
        .then(|| format!("{user}@{}", domain.to_ascii_lowercase()))
}

impl Registrar {
    /// Queues a flush on every other live node holding a registration that
    /// `change` removes (one request per node).
    pub(super) async fn unregister_elsewhere(
        &self,
        req: &SipMessage,
        target: &Target,
        domain: &str,
        user: &str,
        change: &Change,
    ) {
        let Some(farm) = &self.farm else {
            return;
        };
        if matches!(change, Change::Save { .. }) {
            return;
        }
        let snap = farm.snapshot();
        let call_id = req.call_id().unwrap_or_default();
        let elsewhere = snap
            .registered_on(domain, user)
            .iter()
            .filter(|(node, _)| target.node.as_ref() != Some(node))
            .filter_map(|(node, regs)| {
                let reg = regs.iter().find(|r| matches(change, call_id, r))?;
                Some((node, reg.profile.clone()))
            });
        let mut queued = false;
        for (node, profile) in elsewhere {
            let Some(target) = flush_target(user, domain) else {
                tracing::warn!(
                    user,
                    domain,
                    "user or domain unfit for flush_inbound_reg; not forwarded"
                );
                return;
            };
            let request = UnregRequest { profile, target };
            match self.store.request_unregister(node, &request).await {
                Ok(()) => {
                    queued = true;
                    self.stats.remote_unregisters.inc();
                    tracing::info!(node.id = %node, target = request.target, "unregister forwarded to another box");
                }
                Err(e) => self.store_failed("unregister", &request.target, &e),
            }
        }
        if !queued {
            tracing::trace!(user, domain, "no other box holds the removed binding");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn reg(call_id: &str, contact: &str) -> RegClaim {
        RegClaim {
            call_id: call_id.into(),
            contact: contact.into(),
            profile: "internal".into(),
        }
    }

    #[test]
    fn a_sofia_contact_matches_the_phone_it_names() {
        // As box A reported it in x2-member-loss-after-failback.
        let fs = r#""" <sip:1009@127.0.0.1:5109;fs_path=<sip:127.0.0.3:5060;lr;flow=u~127.0.0.1:5109~0>>"#;
        let phone = Change::Remove(Uri::parse("sip:1009@127.0.0.1:5109;transport=udp").unwrap());
        assert!(matches(
            &phone,
            "other-call-id",
            &reg("1-17057@127.0.0.1", fs)
        ));
        let other = Change::Remove(Uri::parse("sip:1009@127.0.0.1:5110").unwrap());
        assert!(!matches(
            &other,
            "other-call-id",
            &reg("1-17057@127.0.0.1", fs)
        ));
        // Same Call-ID, whatever the contact says.
        assert!(matches(
            &other,
            "1-17057@127.0.0.1",
            &reg("1-17057@127.0.0.1", fs)
        ));
        assert!(matches(&Change::RemoveAll, "x", &reg("y", "garbage")));
        assert!(!matches(&other, "x", &reg("y", "garbage <")));
    }

    #[test]
    fn flush_targets_are_plain_tokens() {
        assert_eq!(
            flush_target("1009", "Farm.Test").as_deref(),
            Some("1009@farm.test")
        );
        for (u, d) in [
            ("10 09", "farm.test"),
            ("1009", "farm.test\nmore"),
            ("a@b", "farm.test"),
            ("reboot", "farm.test"),
            ("", "farm.test"),
            ("1009", ""),
        ] {
            assert_eq!(flush_target(u, d), None, "{u:?}@{d:?}");
        }
    }
}
