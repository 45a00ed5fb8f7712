//! Bridging two answered legs: the Other-Leg profiles, the bridge
//! variables, CHANNEL_BRIDGE on the owning (A) side and CALL_UPDATE on
//! both, as `switch_ivr_multi_threaded_bridge` and sofia do.

use crate::channel::{CsState, OtherType};
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

/// How two legs get bridged (each leaves its own traces in the events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The `bridge` dialplan application (basic call).
    App,
    /// `uuid_bridge` (intercept, valet retrieval).
    UuidBridge,
    /// mod_fifo's own bridge of a consumer to a caller.
    Fifo,
}

impl Core {
    /// Bridges `a` (the owner, `Bridge-A-Unique-ID`) with `b`.
    /// `soft`: through `uuid_bridge` (intercept, valet, queues): both legs
    /// go HIBERNATE/RESET/SOFT_EXECUTE and run a soft `uuid_bridge` first.
    pub fn bridge(&mut self, a: &str, b: &str, soft: bool) {
        self.bridge_as(a, b, if soft { Via::UuidBridge } else { Via::App });
    }

    /// Bridges `a` with `b` the way `via` does.
    pub fn bridge_as(&mut self, a: &str, b: &str, via: Via) {
        let soft = via == Via::UuidBridge;
        let now = stamp::now_us();
        if soft {
            // Each side's media is re-offered once (a re-INVITE: To-tag, CSeq 2).
            let reinvite = |c: &mut crate::channel::Channel| {
                if c.vars.get("sip_cseq") != Some("2") {
                    c.vars.set("sip_to_tag", format!("{}T", &c.uuid[..8]));
                    c.vars.set("sip_cseq", "2");
                }
            };
            self.with_chan(a, |c| {
                c.vars.remove("uuid_bridge");
                reinvite(c);
            });
            self.soft_execute(a, b, at::SOFT_EXECUTE_A);
            self.with_chan(b, reinvite);
            self.soft_execute(b, a, at::SOFT_EXECUTE_B);
        }
        let (Some(pa), Some(pb)) = (
            self.chan(a).and_then(|c| c.profile.clone()),
            self.chan(b).and_then(|c| c.profile.clone()),
        ) else {
            return;
        };
        let name_a = self.chan(a).map(|c| c.name.clone()).unwrap_or_default();
        let name_b = self.chan(b).map(|c| c.name.clone()).unwrap_or_default();
        let strip = |mut p: crate::channel::Profile| {
            p.index = None;
            p
        };
        let b_tag = self
            .chan(b)
            .and_then(|c| c.vars.get("sip_from_tag").map(str::to_owned));
        self.with_chan(a, |c| {
            c.peer = Some(b.to_owned());
            c.bridge_a = true;
            if via == Via::App {
                c.other = Some((OtherType::Originatee, strip(pb.clone())));
            }
            if via == Via::App {
                // The 200 OK to the caller's INVITE (a new To-tag, CSeq).
                c.vars.set("sip_to_tag", b_tag.unwrap_or_default());
                c.vars.set("sip_cseq", "2");
                c.vars
                    .set("originate_causes", format!("ARRAY::{b};NONE|:{b};NONE"));
            }
            if let Some(p) = c.profile.as_mut() {
                p.times.bridged = now;
                p.callee_name = pb.callee_name.clone();
                p.callee_number = pb.destination.clone();
                if p.callee_name.is_empty() {
                    p.callee_name = pb.cid_name.clone();
                    p.callee_number = pb.cid_number.clone();
                }
            }
            match via {
                Via::App => {
                    c.vars.set("originate_disposition", "SUCCESS");
                    c.vars.set("DIALSTATUS", "SUCCESS");
                    c.vars.remove("originate_signal_bond");
                    c.vars.set("signal_bond", b);
                }
                Via::Fifo => {
                    c.vars.set("signal_bond", b);
                    c.vars.set("fifo_initiated_bridge", "true");
                    c.vars.set("fifo_bridge_role", "consumer");
                }
                Via::UuidBridge => {}
            }
        });
        self.with_chan(b, |c| {
            c.peer = Some(a.to_owned());
            c.bridge_a = false;
            if let Some(p) = c.profile.as_mut() {
                p.times.bridged = now;
            }
            // An originated leg keeps pointing at its originator's profile.
            if via == Via::App && !matches!(c.other, Some((OtherType::Originator, _))) {
                c.other = Some((OtherType::Originator, strip(pa.clone())));
            }
        });
        let pre = vec![
            ("Bridge-A-Unique-ID", a.to_owned()),
            ("Bridge-B-Unique-ID", b.to_owned()),
        ];
        self.chan_fire(a, "CHANNEL_BRIDGE", at::BRIDGE, pre, true, vec![]);
        if via == Via::Fifo {
            self.state(b, CsState::ConsumeMedia, CsState::ConsumeMedia);
            self.with_chan(b, |c| {
                c.vars.set("fifo_initiated_bridge", "true");
                c.vars.set("fifo_bridge_role", "caller");
                c.vars.set("signal_bond", a);
            });
        }
        self.state(b, CsState::ExchangeMedia, CsState::ExchangeMedia);
        let domain = self.cfg.domain.clone();
        // Outbound legs to users get the callee's directory variables here.
        if let Some(user) = self
            .chan(b)
            .filter(|c| c.direction == crate::channel::Direction::Outbound)
            .map(|c| c.user.clone())
        {
            let group = self.cfg.directory.callgroup(&user).map(str::to_owned);
            let vars = crate::templates::directory_vars(&user, &domain, group.as_deref());
            self.with_chan(b, |c| {
                c.vars.set("endpoint_disposition", "ANSWER");
                for (k, v) in vars.into_iter().skip(6) {
                    c.vars.set(k, v);
                }
            });
        }
        let (cn, cnum) =
            if self.chan(b).map(|c| c.direction) == Some(crate::channel::Direction::Outbound) {
                ("Outbound Call".to_owned(), pb.destination.clone())
            } else {
                (pb.cid_name.clone(), pb.cid_number.clone())
            };
        // sofia answers the B side first on a bridge; a uuid_bridge updates
        // its owner first.
        if soft {
            self.call_update(a, b, &name_b, &cn, &cnum);
            self.call_update(b, a, &name_a, &pa.cid_name, &pa.cid_number);
        } else {
            self.call_update(b, a, &name_a, &pa.cid_name, &pa.cid_number);
            self.call_update(a, b, &name_b, &cn, &cnum);
        }
    }

    /// CALL_UPDATE on `uuid` now bridged to `to`.
    fn call_update(&mut self, uuid: &str, to: &str, to_name: &str, name: &str, number: &str) {
        self.with_chan(uuid, |c| {
            c.vars.set("bridge_to", to);
            c.vars.set("last_bridge_to", to);
            c.vars.set("bridge_channel", to_name);
            c.vars.set("bridge_uuid", to);
            c.vars.set("last_sent_callee_id_name", name);
            c.vars.set("last_sent_callee_id_number", number);
        });
        let pre = vec![
            ("Direction", "SEND".to_owned()),
            ("Sent-Callee-ID-Name", name.to_owned()),
            ("Sent-Callee-ID-Number", number.to_owned()),
            ("Bridged-To", to.to_owned()),
        ];
        self.chan_fire(uuid, "CALL_UPDATE", at::CALL_UPDATE, pre, true, vec![]);
    }

    /// What `switch_ivr_uuid_bridge` does to a leg about to be bridged to
    /// `other`: bridge variables, the `original_*` / `transfer_*` record, and
    /// a new caller profile (index + 1) with `Transfer-Source`.
    /// `initiator`: the leg whose application asked (it gets `uuid_bridge`).
    pub fn uuid_bridge_prep(&mut self, uuid: &str, other: &str, initiator: bool) {
        let now = stamp::now_us();
        let Some(o) = self.chan(other).cloned() else {
            return;
        };
        let op = o.profile.clone().unwrap_or_default();
        let source = format!("{}:{}:uuid_br:{other}", stamp::secs(now), stamp::uuid());
        self.with_chan(uuid, |c| {
            if initiator {
                c.vars.set("uuid_bridge", other);
            }
            c.vars.set("bridge_channel", o.name.clone());
            c.vars.set("bridge_uuid", other);
            c.vars.set("signal_bond", other);
            let p = c.profile.clone().unwrap_or_default();
            c.vars
                .set("original_destination_number", p.destination.clone());
            c.vars.set("original_caller_id_name", p.cid_name.clone());
            c.vars
                .set("original_caller_id_number", p.cid_number.clone());
            c.vars.set("transfer_history", source.clone());
            c.vars.set("transfer_source", source.clone());
            if let Some(p) = c.profile.as_mut() {
                p.index = Some(p.index.unwrap_or(1) + 1);
                p.transfer_source = source.clone();
                p.times.profile_created = now;
                p.callee_name = op.cid_name.clone();
                p.callee_number = op.cid_number.clone();
            }
            let kind = if initiator {
                OtherType::Originatee
            } else {
                OtherType::Originator
            };
            let mut other_profile = op.clone();
            other_profile.index = None;
            other_profile.transfer_source.clear();
            if !initiator {
                other_profile.callee_name.clear();
                other_profile.callee_number.clear();
            }
            c.other = Some((kind, other_profile));
        });
    }

    /// HIBERNATE, RESET, SOFT_EXECUTE: a leg leaving its application for a
    /// `uuid_bridge`.
    pub fn enter_soft_execute(&mut self, uuid: &str) {
        self.state(uuid, CsState::Hibernate, CsState::Hibernate);
        self.state(uuid, CsState::Reset, CsState::Reset);
        self.state(uuid, CsState::SoftExecute, CsState::SoftExecute);
    }
}
