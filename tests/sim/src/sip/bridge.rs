//! `bridge user/EXT@domain` on the SIP side: the box sends its own INVITE
//! `sip:EXT@domain` (new Call-ID, its SDP) to the proxy, as the farm's
//! `dial-string` with `sip_route_uri` does, or without a proxy to the
//! user's registration at this box (its Path as the route). The callee's
//! 180 becomes a 180 to the caller and rings the B-leg; its 2xx is ACKed,
//! answers the caller and bridges; a failure goes back to the caller with
//! the same status and hangs both legs up.

use std::sync::Arc;

use locus_proxy::sip::{SipMessage, Uri};

use super::dialog::{Dialog, Phase, Role, ack_of};
use super::endpoint::{Endpoint, Out, SipState};
use super::invite::status_of;
use super::{timers, wire};
use crate::spawn::SipLeg;

impl Endpoint {
    /// The caller's INVITE `a_cid` reached `Local_Extension` for `ext`:
    /// the legs up to `bridge`, and the box's own INVITE.
    pub(super) fn bridge(
        self: &Arc<Self>,
        st: &mut SipState,
        a_cid: &str,
        caller: &str,
        ext: &str,
    ) -> Out {
        let legs = {
            let mut core = self.shared.core();
            core.next_sip = sip_leg(st, a_cid);
            let legs = core.call_begin(caller, ext);
            core.next_sip = None;
            legs
        };
        let (a, b) = match legs {
            Ok(l) => l,
            Err(e) => return self.reject(st, a_cid, status_of(&e)),
        };
        let domain = self.domain();
        // A binding sofia flushed (`flush_inbound_reg`) is no binding.
        let registered = self.shared.core().feat.regs.contains_key(ext);
        let binding = st.regs.get(ext).filter(|_| registered);
        let (dest, routes) = match (self.proxy, binding) {
            (Some(p), _) => (Some(p), vec![]),
            (None, Some(reg)) => {
                let hop = wire::first_hop(&reg.path).or_else(|| {
                    Uri::parse(&reg.contact)
                        .ok()
                        .and_then(|u| wire::addr_of(&u))
                });
                (hop, reg.path.clone())
            }
            (None, None) => (None, vec![]),
        };
        let Some(dest) = dest else {
            let mut core = self.shared.core();
            core.hangup_single(&b, "USER_NOT_REGISTERED");
            core.hangup_single(&a, "USER_NOT_REGISTERED");
            drop(core);
            return self.reject(st, a_cid, 480);
        };
        let ruri = match (self.proxy, binding) {
            (None, Some(reg)) => Uri::parse(&reg.contact).ok(),
            _ => None,
        };
        let ruri = ruri.or_else(|| Uri::parse(&format!("sip:{ext}@{domain}")).ok());
        let Some(ruri) = ruri else {
            return self.reject(st, a_cid, 500);
        };
        let n = self.new_invite(caller, ext, ruri, &routes);
        let (invite, b_cid, tag, ours, theirs) = (n.invite, n.call_id, n.tag, n.ours, n.theirs);
        self.shared
            .core()
            .with_chan(&b, |c| c.vars.set("sip_call_id", b_cid.as_str()));
        let bytes = invite.to_bytes();
        st.dialogs.insert(
            b_cid.clone(),
            Dialog {
                role: Role::Uac,
                phase: Phase::Early,
                invite,
                local_tag: tag,
                ours,
                theirs,
                target: None,
                routes: vec![],
                dest,
                cseq: 1,
                uuid: Some(b),
                partner: Some(a_cid.to_owned()),
                last: None,
                acked: false,
                bye_after_ack: false,
                bridge: Some((caller.to_owned(), ext.to_owned())),
                rang: false,
                reinvite: None,
                held: false,
            },
        );
        if let Some(d) = st.dialogs.get_mut(a_cid) {
            d.uuid = Some(a);
            d.partner = Some(b_cid.clone());
        }
        timers::retransmit_invite(self, b_cid, bytes.clone(), dest);
        vec![(bytes, dest)]
    }

    /// A response to one of the box's requests.
    pub(super) fn response(self: &Arc<Self>, st: &mut SipState, msg: &SipMessage) -> Out {
        let (Ok(call_id), Ok((_, method)), Some(status)) =
            (msg.call_id(), msg.cseq(), msg.status())
        else {
            return vec![];
        };
        if method != "INVITE" {
            return vec![];
        }
        if let Ok((n, _)) = msg.cseq()
            && let Some(out) = self.reinvite_answered(st, call_id, n, status)
        {
            return out;
        }
        let call_id = call_id.to_owned();
        let ours = st
            .dialogs
            .get(&call_id)
            .is_some_and(|d| d.role == Role::Uac);
        if ours && status >= 200 {
            st.record_final(&call_id, status);
        }
        let Some(d) = st.dialogs.get_mut(&call_id).filter(|d| d.role == Role::Uac) else {
            return vec![];
        };
        d.acked = true;
        let to = msg.headers.get("To").map(str::to_owned);
        match status {
            100 => vec![],
            101..=199 => self.b_progress(st, &call_id),
            200..=299 => {
                // The dialog's route set is the Record-Route reversed
                // (RFC 3261 12.1.2); ACK every 2xx, retransmissions too.
                if let Some(t) = &to {
                    d.theirs = t.clone();
                }
                d.target = msg
                    .contacts()
                    .ok()
                    .and_then(|c| c.into_iter().next())
                    .map(|c| c.uri);
                let mut rr: Vec<String> = msg
                    .headers
                    .get_all("Record-Route")
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                rr.reverse();
                d.routes = rr;
                let (ack, ack_to) = d.request("ACK", self.local);
                let mut out = vec![(ack.to_bytes(), ack_to)];
                out.extend(self.b_answered(st, &call_id));
                out
            }
            _ => {
                let ack = ack_of(&d.invite, to.as_deref()).to_bytes();
                let mut out = vec![(ack, d.dest)];
                out.extend(self.b_failed(st, &call_id, status));
                out
            }
        }
    }

    fn b_progress(self: &Arc<Self>, st: &mut SipState, b_cid: &str) -> Out {
        let Some(d) = st
            .dialogs
            .get_mut(b_cid)
            .filter(|d| d.phase == Phase::Early)
        else {
            return vec![];
        };
        if d.rang {
            return vec![];
        }
        d.rang = true;
        let partner = d.partner.clone();
        self.ring_legs(d);
        let Some(a) = partner.and_then(|p| st.dialogs.get_mut(&p)) else {
            return vec![];
        };
        if a.phase != Phase::Early {
            return vec![];
        }
        let user = wire::ruri_user(&a.invite).unwrap_or_default();
        let ringing =
            wire::respond_dialog(&a.invite, 180, &a.local_tag, &self.contact(&user), None);
        let b = ringing.to_bytes();
        a.last = Some(b.clone());
        vec![(b, a.dest)]
    }

    /// The ring script for the UAC dialog's legs.
    fn ring_legs(&self, d: &Dialog) {
        let Some((caller, ext)) = &d.bridge else {
            return;
        };
        let Some(b) = &d.uuid else {
            return;
        };
        let mut core = self.shared.core();
        let a = core.chan(b).and_then(|c| c.peer.clone());
        if let Some(a) = a {
            core.call_ring(&a, b, caller, ext);
        }
    }

    fn b_answered(self: &Arc<Self>, st: &mut SipState, b_cid: &str) -> Out {
        let Some(d) = st.dialogs.get_mut(b_cid) else {
            return vec![];
        };
        match d.phase {
            Phase::Early => {}
            // A 200 crossing the box's CANCEL: the call is gone, BYE it.
            Phase::Cancelled => {
                let (bye, to) = d.request("BYE", self.local);
                st.dialogs.remove(b_cid);
                return vec![(bye.to_bytes(), to)];
            }
            _ => return vec![],
        }
        d.phase = Phase::Confirmed;
        if d.held {
            return vec![];
        }
        if !d.rang {
            d.rang = true;
            self.ring_legs(d);
        }
        let a_cid = d.partner.clone().unwrap_or_default();
        let a_uuid = st.dialogs.get(&a_cid).and_then(|a| a.uuid.clone());
        let Some(a_uuid) = a_uuid else {
            return self.end_partner_of(st, b_cid);
        };
        if let Err(e) = self.shared.core().answer(&a_uuid) {
            tracing::debug!(call.uuid = %a_uuid, error = %e, "answer script");
        }
        self.accept(st, &a_cid, &a_uuid)
    }

    /// The caller is gone: BYE the callee's confirmed dialog.
    fn end_partner_of(&self, st: &mut SipState, b_cid: &str) -> Out {
        let Some(mut d) = st.dialogs.remove(b_cid) else {
            return vec![];
        };
        let (bye, to) = d.request("BYE", self.local);
        vec![(bye.to_bytes(), to)]
    }

    fn b_failed(&self, st: &mut SipState, b_cid: &str, status: u16) -> Out {
        let Some(d) = st.dialogs.remove(b_cid) else {
            return vec![];
        };
        if d.phase != Phase::Early {
            return vec![];
        }
        let cause = cause_of(status);
        if let Some(b) = &d.uuid {
            let mut core = self.shared.core();
            let a = core.chan(b).and_then(|c| c.peer.clone());
            core.hangup_single(b, cause);
            if let Some(a) = a.filter(|a| core.chan(a).is_some()) {
                core.hangup_single(&a, cause);
            }
        }
        let Some(a) = d.partner.and_then(|p| st.dialogs.get_mut(&p)) else {
            return vec![];
        };
        if a.phase != Phase::Early {
            return vec![];
        }
        let r = wire::respond(&a.invite, status, Some(&a.local_tag)).to_bytes();
        a.phase = Phase::Failed;
        a.uuid = None;
        a.partner = None;
        a.last = Some(r.clone());
        vec![(r, a.dest)]
    }
}

/// The SIP INVITE `call_id` as the leg it creates records it.
pub(super) fn sip_leg(st: &SipState, call_id: &str) -> Option<SipLeg> {
    st.dialogs.get(call_id).map(|d| SipLeg {
        call_id: call_id.to_owned(),
        source: d.dest,
    })
}

/// The hangup cause sofia records for a failed outbound INVITE.
fn cause_of(status: u16) -> &'static str {
    match status {
        486 | 600 => "USER_BUSY",
        408 | 480 => "NO_ANSWER",
        404 => "UNALLOCATED_NUMBER",
        487 => "ORIGINATOR_CANCEL",
        603 => "CALL_REJECTED",
        503 => "NORMAL_TEMPORARY_FAILURE",
        _ => "NORMAL_UNSPECIFIED",
    }
}
