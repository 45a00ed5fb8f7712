//! Bridging two answered legs: the Other-Leg profiles, the bridge
//! variables, CHANNEL_BRIDGE on the owning (A) side and CALL_UPDATE on
//! both, as `switch_ivr_multi_threaded_bridge` and sofia do.

use crate::channel::{CsState, OtherType};
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

impl Core {
    /// Bridges `a` (the owner, `Bridge-A-Unique-ID`) with `b`.
    /// `soft`: through `uuid_bridge` (intercept, valet, queues): both legs
    /// go HIBERNATE/RESET/SOFT_EXECUTE and run a soft `uuid_bridge` first.
    pub fn bridge(&mut self, a: &str, b: &str, soft: bool) {
        let now = stamp::now_us();
        if soft {
            self.soft_execute(a, b, at::SOFT_EXECUTE_A);
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
        let b_tag = self.chan(b).and_then(|c| c.vars.get("sip_from_tag").map(str::to_owned));
        self.with_chan(a, |c| {
            c.peer = Some(b.to_owned());
            c.bridge_a = true;
            c.other = Some((OtherType::Originatee, strip(pb.clone())));
            if !soft {
                // The 200 OK to the caller's INVITE (a new To-tag, CSeq).
                c.vars.set("sip_to_tag", b_tag.unwrap_or_default());
                c.vars.set("sip_cseq", "2");
                c.vars.set("originate_causes", format!("ARRAY::{b};NONE|:{b};NONE"));
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
            c.vars.set("originate_disposition", "SUCCESS");
            c.vars.set("DIALSTATUS", "SUCCESS");
            c.vars.remove("originate_signal_bond");
            c.vars.set("signal_bond", b);
        });
        self.with_chan(b, |c| {
            c.peer = Some(a.to_owned());
            c.bridge_a = false;
            if let Some(p) = c.profile.as_mut() {
                p.times.bridged = now;
            }
            // An originated leg keeps pointing at its originator's profile.
            if !matches!(c.other, Some((OtherType::Originator, _))) {
                c.other = Some((OtherType::Originator, strip(pa.clone())));
            }
        });
        let pre = vec![
            ("Bridge-A-Unique-ID", a.to_owned()),
            ("Bridge-B-Unique-ID", b.to_owned()),
        ];
        self.chan_fire(a, "CHANNEL_BRIDGE", at::BRIDGE, pre, true, vec![]);
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
        self.call_update(b, a, &name_a, &pa.cid_name, &pa.cid_number);
        let (cn, cnum) = (pb.cid_name.clone(), pb.cid_number.clone());
        let (cn, cnum) = if self.chan(b).map(|c| c.direction) == Some(crate::channel::Direction::Outbound) {
            ("Outbound Call".to_owned(), pb.destination.clone())
        } else {
            (cn, cnum)
        };
        self.call_update(a, b, &name_b, &cn, &cnum);
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

    /// HIBERNATE, RESET, SOFT_EXECUTE: a leg leaving its application for a
    /// `uuid_bridge`.
    pub fn to_soft_execute(&mut self, uuid: &str) {
        self.state(uuid, CsState::Hibernate, CsState::Hibernate);
        self.state(uuid, CsState::Reset, CsState::Reset);
        self.state(uuid, CsState::SoftExecute, CsState::SoftExecute);
    }
}
