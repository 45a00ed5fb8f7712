//! What a 2xx to a REGISTER means for the mirror (RFC 3261 10.2 and
//! 10.3): which contacts to save, with which expiry, and which to remove.
//! Pure functions over the request as forwarded and the box's response.

use crate::sip::{NameAddr, SipError, SipMessage, Uri};

/// RFC 3261 10.2.1.1: a registrar's default when the UA asks nothing.
const DEFAULT_EXPIRES: u32 = 3600;

/// One change to the user's bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Upsert the request's contact for `expires` seconds.
    Save {
        /// The contact URI as the phone sent it.
        contact: Uri,
        /// Seconds, clamped.
        expires: u32,
    },
    /// Remove one contact (`expires=0`).
    Remove(Uri),
    /// Remove all (`Contact: *` with `Expires: 0`).
    RemoveAll,
}

fn expires_header(msg: &SipMessage) -> Option<u32> {
    msg.headers
        .get("Expires")
        .and_then(|v| v.trim().parse().ok())
}

fn expires_param(c: &NameAddr) -> Option<u32> {
    c.params.get("expires").flatten()?.trim().parse().ok()
}

/// Loose URI equality for matching the 200's contacts to the request's
/// (RFC 3261 19.1.4, plus an absent port meaning the default one, since
/// registrars are free to write it out).
pub(crate) fn same_contact(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| u.port.unwrap_or(5060);
    let transport = |u: &Uri| {
        u.params
            .get("transport")
            .flatten()
            .unwrap_or("udp")
            .to_ascii_lowercase()
    };
    a.scheme == b.scheme
        && a.user_name() == b.user_name()
        && a.host.eq_ignore_ascii_case(&b.host)
        && port(a) == port(b)
        && transport(a) == transport(b)
}

/// The changes a 2xx to `req` asks for. `max_expires` clamps saves.
///
/// The 200 lists the bindings the registrar holds (RFC 3261 10.3 step 8),
/// so a request contact is saved only when the 200 lists it, with the
/// 200's expiry. FreeSWITCH answers with the one contact it stored, which
/// its NAT handling may have rewritten (host/port of the packet source),
/// so one request contact and one listed contact match even when their
/// URIs differ. A 200 without any Contact (allowed for a fetch, seen from
/// lax registrars) keeps the request's own expiry.
pub(crate) fn plan(
    req: &SipMessage,
    resp: &SipMessage,
    max_expires: u32,
) -> Result<Vec<Change>, SipError> {
    let req_expires = expires_header(req);
    if req.headers.get_all("Contact").contains(&"*") {
        // RFC 3261 10.2.2: `*` only with Expires: 0; anything else is a
        // malformed request the box should have refused.
        return Ok(match req_expires {
            Some(0) => vec![Change::RemoveAll],
            _ => Vec::new(),
        });
    }
    let asked = req.contacts()?;
    let listed = resp.contacts()?;
    let resp_expires = expires_header(resp);
    let mut out = Vec::new();
    let saving = asked
        .iter()
        .filter(|c| expires_param(c).or(req_expires) != Some(0))
        .count();
    for c in &asked {
        let wanted = expires_param(c).or(req_expires);
        if wanted == Some(0) {
            out.push(Change::Remove(c.uri.clone()));
            continue;
        }
        let matched = listed
            .iter()
            .find(|l| same_contact(&l.uri, &c.uri))
            .or_else(|| (saving == 1 && listed.len() == 1).then(|| &listed[0]));
        let granted = match matched {
            Some(l) => expires_param(l).or(resp_expires),
            None if listed.is_empty() => None,
            None => {
                tracing::debug!(contact = %c.uri, "contact not in the 200; not mirrored");
                continue;
            }
        };
        match granted.or(wanted).unwrap_or(DEFAULT_EXPIRES) {
            0 => out.push(Change::Remove(c.uri.clone())),
            e => out.push(Change::Save {
                contact: c.uri.clone(),
                expires: e.min(max_expires),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn msg(start: &str, headers: &[&str]) -> SipMessage {
        let mut s = format!("{start}\r\n");
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        SipMessage::parse(s.as_bytes()).unwrap()
    }

    fn req(h: &[&str]) -> SipMessage {
        let mut all = vec![
            "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1",
            "From: <sip:1000@d>;tag=a",
            "To: <sip:1000@d>",
            "Call-ID: c1",
            "CSeq: 2 REGISTER",
        ];
        all.extend_from_slice(h);
        msg("REGISTER sip:d SIP/2.0", &all)
    }

    fn ok(h: &[&str]) -> SipMessage {
        let mut all = vec![
            "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1",
            "From: <sip:1000@d>;tag=a",
            "To: <sip:1000@d>;tag=b",
            "Call-ID: c1",
            "CSeq: 2 REGISTER",
        ];
        all.extend_from_slice(h);
        msg("SIP/2.0 200 OK", &all)
    }

    fn uri(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn expiry_comes_from_the_200_and_is_clamped() {
        let r = req(&["Contact: <sip:1000@192.0.2.7:5060>", "Expires: 3600"]);
        let p = plan(
            &r,
            &ok(&["Contact: <sip:1000@192.0.2.7>;expires=120"]),
            7200,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![Change::Save {
                contact: uri("sip:1000@192.0.2.7:5060"),
                expires: 120
            }]
        );
        let p = plan(
            &r,
            &ok(&["Contact: <sip:1000@192.0.2.7:5060>", "Expires: 9999"]),
            600,
        );
        assert!(matches!(&p.unwrap()[0], Change::Save { expires: 600, .. }));
        // No Contact in the 200: the request's expiry.
        let p = plan(&r, &ok(&[]), 7200).unwrap();
        assert!(matches!(&p[0], Change::Save { expires: 3600, .. }));
    }

    #[test]
    fn removals_and_unlisted_contacts() {
        let r = req(&[
            "Contact: <sip:1000@a>;expires=0, <sip:1000@b>",
            "Expires: 60",
        ]);
        let p = plan(
            &r,
            &ok(&["Contact: <sip:1000@b>;expires=60, <sip:1000@z>;expires=9"]),
            7200,
        );
        assert_eq!(
            p.unwrap(),
            vec![
                Change::Remove(uri("sip:1000@a")),
                Change::Save {
                    contact: uri("sip:1000@b"),
                    expires: 60
                }
            ]
        );
        // Two candidates and none matches: nothing is guessed.
        let r = req(&["Contact: <sip:1000@a>, <sip:1000@b>"]);
        assert!(
            plan(&r, &ok(&["Contact: <sip:1000@z>"]), 7200)
                .unwrap()
                .is_empty()
        );
        // One and one: FreeSWITCH's NAT rewrite of the host still matches.
        let r = req(&["Contact: <sip:1000@10.1.1.1:5060>"]);
        let p = plan(
            &r,
            &ok(&["Contact: <sip:1000@192.0.2.7:40000>;expires=30"]),
            7200,
        );
        assert!(matches!(&p.unwrap()[0], Change::Save { expires: 30, .. }));
    }

    #[test]
    fn freeswitch_200_with_fs_path_and_fs_nat_matches() {
        // sofia_reg.c answers with the contact it stored: the phone's URI
        // plus `fs_nat`/`fs_path` URI params and an `expires` param.
        let r =
            req(&["Contact: <sip:1000@192.168.1.20:5060;transport=tcp>, <sip:1000@x>;expires=0"]);
        let stored = "Contact: \"user\" <sip:1000@192.168.1.20:5060;transport=tcp;fs_nat=yes;\
                      fs_path=%3Csip%3A10.0.0.1%3A5060%3Btransport%3Dtcp%3Blr%3E>;expires=300";
        let p = plan(&r, &ok(&[stored]), 7200).unwrap();
        assert_eq!(
            p,
            vec![
                Change::Save {
                    contact: uri("sip:1000@192.168.1.20:5060;transport=tcp"),
                    expires: 300
                },
                Change::Remove(uri("sip:1000@x")),
            ]
        );
    }

    #[test]
    fn star_removes_all_only_with_expires_zero() {
        let all = plan(&req(&["Contact: *", "Expires: 0"]), &ok(&[]), 7200).unwrap();
        assert_eq!(all, vec![Change::RemoveAll]);
        assert!(
            plan(&req(&["Contact: *"]), &ok(&[]), 7200)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn contact_matching() {
        assert!(same_contact(
            &uri("sip:a@H.example"),
            &uri("sip:a@h.example:5060")
        ));
        assert!(!same_contact(&uri("sip:a@h"), &uri("sip:b@h")));
        assert!(!same_contact(
            &uri("sip:a@h;transport=tcp"),
            &uri("sip:a@h")
        ));
        assert!(!same_contact(&uri("sip:a@h:5070"), &uri("sip:a@h")));
    }
}
