//! Dialogs (RFC 3261 12) of the box, one per Call-ID: the answering side of
//! a phone's INVITE (UAS) or the box's own INVITE to the proxy (UAC), the
//! two linked as partners when bridged. ACK, BYE and CANCEL end them and
//! run the hangup scripts; in-dialog requests follow the route set.

use std::net::SocketAddr;

use locus_proxy::sip::{Headers, SipMessage, Uri};

use super::endpoint::{Endpoint, Out, SipState};
use super::wire;

/// Which side of the dialog the box is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// It answered an INVITE.
    Uas,
    /// It sent the INVITE.
    Uac,
}

/// Where the dialog is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// INVITE without a final response yet.
    Early,
    /// 2xx sent or received.
    Confirmed,
    /// A final non-2xx was sent; waiting for the ACK.
    Failed,
    /// The box CANCELled its INVITE; waiting for the 487 (or a late 200).
    Cancelled,
}

/// One dialog.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub role: Role,
    pub phase: Phase,
    /// The INVITE: theirs (UAS) or ours (UAC).
    pub invite: SipMessage,
    /// The box's tag.
    pub local_tag: String,
    /// From of the box's in-dialog requests (tag included).
    pub ours: String,
    /// To of the box's in-dialog requests (their tag included, once known).
    pub theirs: String,
    /// The remote target (their Contact).
    pub target: Option<Uri>,
    /// Route set, in request order.
    pub routes: Vec<String>,
    /// Where to send when neither route nor target gives an address.
    pub dest: SocketAddr,
    /// The box's next CSeq.
    pub cseq: u32,
    /// The ESL channel of this side, once it exists.
    pub uuid: Option<String>,
    /// Call-ID of the bridged dialog.
    pub partner: Option<String>,
    /// UAS: the last response to the INVITE (for retransmissions).
    pub last: Option<bytes::Bytes>,
    /// UAS: the ACK for the 2xx arrived. UAC: a response arrived (the
    /// INVITE is no longer retransmitted).
    pub acked: bool,
    /// UAS: hang up (BYE) as soon as the ACK arrives.
    pub bye_after_ack: bool,
    /// UAC: caller and callee of the bridge (for the ring script), and
    /// whether the callee rang yet.
    pub bridge: Option<(String, String)>,
    pub rang: bool,
    /// The box's own re-INVITE in this dialog: its CSeq and the final
    /// status, once it came.
    pub reinvite: Option<(u32, Option<u16>)>,
    /// UAC of a scripted call ([`crate::SimHandle::sip_call_held`]): stays
    /// up after its 2xx until the box hangs up.
    pub held: bool,
}

impl Dialog {
    /// An in-dialog request (BYE, ACK for a 2xx) and where it goes.
    pub(super) fn request(&mut self, method: &str, local: SocketAddr) -> (SipMessage, SocketAddr) {
        self.request_with(method, local, None)
    }

    /// [`Dialog::request`] with a Contact and an SDP body (a re-INVITE).
    /// An ACK takes the CSeq of the box's pending re-INVITE, if any.
    pub(super) fn request_with(
        &mut self,
        method: &str,
        local: SocketAddr,
        offer: Option<(String, String)>,
    ) -> (SipMessage, SocketAddr) {
        let uri = self
            .target
            .clone()
            .or_else(|| self.invite.request_uri().cloned())
            .unwrap_or_else(|| Uri {
                scheme: locus_proxy::sip::Scheme::Sip,
                user: None,
                host: self.dest.ip().to_string(),
                port: Some(self.dest.port()),
                params: Default::default(),
                headers: None,
            });
        let cseq = if method == "ACK" {
            match self.reinvite {
                Some((n, _)) => n,
                None => self.invite.cseq().map_or(1, |c| c.0),
            }
        } else {
            self.cseq += 1;
            self.cseq
        };
        let mut h = Headers::default();
        h.push(
            "Via",
            &format!("SIP/2.0/UDP {local};branch={};rport", wire::branch()),
        );
        h.push("Max-Forwards", "70");
        for r in &self.routes {
            h.push("Route", r);
        }
        h.push("From", &self.ours);
        h.push("To", &self.theirs);
        h.push("Call-ID", self.invite.call_id().unwrap_or_default());
        h.push("CSeq", &format!("{cseq} {method}"));
        h.push("User-Agent", wire::AGENT);
        let body = offer.map(|(contact, sdp)| {
            h.push("Contact", &contact);
            sdp
        });
        let to = wire::first_hop(&self.routes)
            .or_else(|| self.target.as_ref().and_then(wire::addr_of))
            .unwrap_or(self.dest);
        (wire::request(method, uri, h, body), to)
    }
}

impl Endpoint {
    /// The box re-INVITEs the far end of confirmed dialog `call_id` (as
    /// FreeSWITCH does to hold, resume or refresh a session), through the
    /// dialog's route set; `false` without such a dialog. The 2xx is ACKed
    /// ([`Endpoint::reinvite_answered`]).
    pub(crate) async fn reinvite(&self, call_id: &str) -> bool {
        let out = {
            let mut st = self.state();
            let Some(d) = st
                .dialogs
                .get_mut(call_id)
                .filter(|d| d.phase == Phase::Confirmed)
            else {
                return false;
            };
            let user = d
                .invite
                .from()
                .ok()
                .and_then(|f| f.uri.user_name().map(str::to_owned))
                .unwrap_or_default();
            let offer = (self.contact(&user), crate::sofia::local_sdp(2));
            let (req, to) = d.request_with("INVITE", self.local, Some(offer));
            d.reinvite = req.cseq().ok().map(|c| (c.0, None));
            vec![(req.to_bytes(), to)]
        };
        self.send_all(out).await;
        true
    }

    /// A response to the box's re-INVITE of `call_id`, if one is pending
    /// with that CSeq: noted, and a 2xx ACKed. `None` when it is not one.
    pub(super) fn reinvite_answered(
        &self,
        st: &mut SipState,
        call_id: &str,
        cseq: u32,
        status: u16,
    ) -> Option<Out> {
        let d = st.dialogs.get_mut(call_id)?;
        let (_, got) = d.reinvite.as_mut().filter(|(n, _)| *n == cseq)?;
        if status < 200 {
            return Some(vec![]);
        }
        *got = Some(status);
        if status >= 300 {
            return Some(vec![]);
        }
        let (ack, to) = d.request("ACK", self.local);
        Some(vec![(ack.to_bytes(), to)])
    }

    /// ACK: the 2xx stops being retransmitted (and a dialog the box must
    /// leave is left now); a non-2xx transaction is over.
    pub(super) fn ack(&self, st: &mut SipState, call_id: &str) -> Out {
        let Some(d) = st.dialogs.get_mut(call_id).filter(|d| d.role == Role::Uas) else {
            return vec![];
        };
        match d.phase {
            Phase::Failed => {
                st.dialogs.remove(call_id);
                vec![]
            }
            Phase::Confirmed if d.bye_after_ack => {
                let (bye, to) = d.request("BYE", self.local);
                st.dialogs.remove(call_id);
                vec![(bye.to_bytes(), to)]
            }
            _ => {
                d.acked = true;
                vec![]
            }
        }
    }

    /// BYE: 200 (481 for an unknown dialog), then the dialog ends.
    pub(super) fn bye(
        &self,
        st: &mut SipState,
        msg: &SipMessage,
        call_id: &str,
        src: SocketAddr,
    ) -> Out {
        if !st.dialogs.contains_key(call_id) {
            return vec![(wire::respond(msg, 481, None).to_bytes(), src)];
        }
        let mut out = vec![(wire::respond(msg, 200, None).to_bytes(), src)];
        out.extend(self.end_dialog(st, call_id, false));
        out
    }

    /// Ends dialog `call_id`: its ESL legs hang up, its partner ends too.
    /// `ours`: the box hangs up (it sends the BYE, or 487/CANCEL while
    /// unanswered); otherwise the far end did and is already gone.
    pub(super) fn end_dialog(&self, st: &mut SipState, call_id: &str, ours: bool) -> Out {
        let Some(mut d) = st.dialogs.remove(call_id) else {
            return vec![];
        };
        let mut out = vec![];
        let partner = d.partner.take();
        if ours {
            st.dialogs.insert(call_id.to_owned(), d.clone());
            out.extend(self.end_partner(st, Some(call_id)));
        } else if d.role == Role::Uas && d.phase == Phase::Early {
            // A BYE before the answer also ends the INVITE (RFC 3261 15.1.2).
            let r = wire::respond(&d.invite, 487, Some(&d.local_tag)).to_bytes();
            out.push((r, d.dest));
        }
        if let Some(uuid) = &d.uuid {
            let mut core = self.shared.core();
            if core.chan(uuid).is_some() {
                core.hangup_call(uuid, "NORMAL_CLEARING");
            }
        }
        out.extend(self.end_partner(st, partner.as_deref()));
        out
    }

    /// CANCEL: 200, and an unanswered INVITE gets 487 and its legs hang
    /// up (`ORIGINATOR_CANCEL`); an answered one is left alone.
    pub(super) fn cancel(
        &self,
        st: &mut SipState,
        msg: &SipMessage,
        call_id: &str,
        src: SocketAddr,
    ) -> Out {
        let Some(d) = st.dialogs.get_mut(call_id).filter(|d| d.role == Role::Uas) else {
            return vec![(wire::respond(msg, 481, None).to_bytes(), src)];
        };
        let mut out = vec![(wire::respond(msg, 200, None).to_bytes(), src)];
        if d.phase != Phase::Early {
            return out;
        }
        let terminated = wire::respond(&d.invite, 487, Some(&d.local_tag)).to_bytes();
        d.phase = Phase::Failed;
        d.last = Some(terminated.clone());
        out.push((terminated, src));
        let (uuid, partner) = (d.uuid.take(), d.partner.take());
        if let Some(uuid) = uuid {
            let mut core = self.shared.core();
            if core.chan(&uuid).is_some() {
                core.hangup_call(&uuid, "ORIGINATOR_CANCEL");
            }
        }
        out.extend(self.end_partner(st, partner.as_deref()));
        out
    }

    /// The partner of an ended dialog ends too: BYE when confirmed, CANCEL
    /// when the box's INVITE is still pending, 487 when the box had not
    /// answered it yet.
    pub(super) fn end_partner(&self, st: &mut SipState, partner: Option<&str>) -> Out {
        let Some(p) = partner else {
            return vec![];
        };
        let Some(mut d) = st.dialogs.remove(p) else {
            return vec![];
        };
        match (d.role, d.phase) {
            (_, Phase::Confirmed) => {
                let (bye, to) = d.request("BYE", self.local);
                vec![(bye.to_bytes(), to)]
            }
            (Role::Uac, Phase::Early) => {
                let out = vec![(cancel_of(&d.invite).to_bytes(), d.dest)];
                d.phase = Phase::Cancelled;
                d.partner = None;
                st.dialogs.insert(p.to_owned(), d);
                out
            }
            (Role::Uas, Phase::Early) => {
                let r = wire::respond(&d.invite, 487, Some(&d.local_tag)).to_bytes();
                d.phase = Phase::Failed;
                d.last = Some(r.clone());
                d.partner = None;
                let to = d.dest;
                st.dialogs.insert(p.to_owned(), d);
                vec![(r, to)]
            }
            _ => {
                st.dialogs.insert(p.to_owned(), d);
                vec![]
            }
        }
    }
}

/// CANCEL for a pending INVITE (RFC 3261 9.1): same Via branch, R-URI,
/// From, To, Call-ID and Route, CSeq number with method CANCEL.
pub(super) fn cancel_of(invite: &SipMessage) -> SipMessage {
    hop_by_hop(invite, "CANCEL", None)
}

/// ACK for a non-2xx final response (RFC 3261 17.1.1.3): as the INVITE
/// but with the response's To.
pub(super) fn ack_of(invite: &SipMessage, to: Option<&str>) -> SipMessage {
    hop_by_hop(invite, "ACK", to)
}

fn hop_by_hop(invite: &SipMessage, method: &str, to: Option<&str>) -> SipMessage {
    let mut h = Headers::default();
    for name in ["Via", "Max-Forwards", "Route", "From", "To", "Call-ID"] {
        for v in invite.headers.get_all(name) {
            let v = match (name, to) {
                ("To", Some(t)) => t,
                _ => v,
            };
            h.push(name, v);
        }
    }
    let n = invite.cseq().map_or(1, |c| c.0);
    h.push("CSeq", &format!("{n} {method}"));
    let uri = invite.request_uri().cloned().unwrap_or_else(|| Uri {
        scheme: locus_proxy::sip::Scheme::Sip,
        user: None,
        host: "invalid".into(),
        port: None,
        params: Default::default(),
        headers: None,
    });
    wire::request(method, uri, h, None)
}
