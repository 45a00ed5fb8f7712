//! Membership claims (`{id}:members`), learnt from registrations and from
//! callers' channels.
//!
//! Only `sofia::register` is a registration: every digest-checked INVITE
//! fires `sofia::pre_register` and `sofia::register_attempt` with the
//! *dialled* number as `from-user`, so those are ignored. `sofia::register`
//! carries the user's directory variables (`callgroup`) when the directory
//! has them; `sofia::expire` names the user in `user`/`host`.

use locus_schema::RegClaim;

use super::facts::Facts;
use super::{MemberOp, Model};

/// The registration a `sofia::*` event names (without a Call-ID, none).
fn reg_claim(f: &Facts<'_>) -> Option<RegClaim> {
    Some(RegClaim {
        call_id: f.reg_call_id.filter(|c| !c.is_empty())?.to_owned(),
        contact: f.reg_contact.unwrap_or_default().to_owned(),
        profile: f.reg_profile.unwrap_or("internal").to_owned(),
    })
}

/// A group list as FreeSWITCH writes it (`a,b`), cleaned.
fn groups(v: &str) -> Vec<String> {
    let mut out: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Model {
    /// A `sofia::*` event.
    pub(crate) fn on_sofia(&mut self, f: &Facts<'_>) {
        match f.subclass {
            Some("sofia::register") => {
                let (Some(domain), Some(ext)) =
                    (f.dir_domain.or(f.from_host), f.from_user.or(f.dir_user))
                else {
                    return;
                };
                let found = f.dir_caller_group.map(groups).unwrap_or_default();
                let key = (domain.to_owned(), ext.to_owned());
                let reg = reg_claim(f);
                if found.is_empty() {
                    self.known_members.remove(&key);
                    self.members.push(MemberOp::Lookup {
                        domain: key.0,
                        ext: key.1,
                        reg,
                    });
                } else {
                    // A registration refresh repeats the Add on purpose: it
                    // heals a membership lost from the store.
                    self.known_members.insert(key.clone(), found.clone());
                    self.members.push(MemberOp::Add {
                        domain: key.0,
                        ext: key.1,
                        groups: found,
                        reg,
                    });
                }
            }
            Some("sofia::unregister" | "sofia::expire") => {
                let domain = f.dir_domain.or(f.from_host).or(f.host);
                let ext = f.from_user.or(f.user).or(f.dir_user);
                let (Some(domain), Some(ext)) = (domain, ext) else {
                    return;
                };
                self.known_members
                    .remove(&(domain.to_owned(), ext.to_owned()));
                self.members.push(MemberOp::Remove {
                    domain: domain.to_owned(),
                    ext: ext.to_owned(),
                    call_id: f.reg_call_id.map(str::to_owned),
                });
            }
            _ => {}
        }
    }

    /// A caller's channel shows its user's groups (FreeSWITCH sets
    /// `user_name` and `callgroup` when it authenticates an INVITE): announce
    /// them once.
    pub(crate) fn learn_member(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.member_checked {
            return;
        }
        ch.member_checked = true;
        let (Some(user), Some(cg)) = (ch.user.as_deref(), ch.caller_group.as_deref()) else {
            return;
        };
        let Some(domain) = ch.domain_name.as_deref() else {
            return;
        };
        let found = groups(cg);
        if found.is_empty() {
            return;
        }
        let key = (domain.to_owned(), user.to_owned());
        if self.known_members.get(&key) == Some(&found) {
            return;
        }
        self.known_members.insert(key.clone(), found.clone());
        self.members.push(MemberOp::Add {
            domain: key.0,
            ext: key.1,
            groups: found,
            reg: None,
        });
    }
}
