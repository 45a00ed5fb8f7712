//! A phone's INVITE arriving at the box (through the proxy): 100 Trying,
//! the scripted outcome ([`Answer`]), then the vanilla dialplan: users are
//! bridged (`bridge`), everything else is a local feature (`features`).
//! Retransmitted INVITEs get the last response again; a re-INVITE gets the
//! same SDP back (hold is not simulated on the SIP side).

use std::net::SocketAddr;
use std::sync::Arc;

use locus_proxy::sip::SipMessage;

use super::auth::Verdict;
use super::dialog::{Dialog, Phase, Role};
use super::endpoint::{Endpoint, Out, SipState};
use super::{Answer, timers, wire};
use crate::error::SimError;
use crate::scripts::dialplan::{Route, route};

impl Endpoint {
    /// INVITE: a retransmission gets the last response, a re-INVITE 200
    /// with SDP, a new one 100 and then the scripted outcome.
    pub(super) fn invite(
        self: &Arc<Self>,
        st: &mut SipState,
        msg: SipMessage,
        call_id: &str,
        src: SocketAddr,
    ) -> Out {
        // The same Call-ID with a new CSeq after a final refusal is a new
        // attempt (as after an auth challenge), not a retransmission.
        let retry = st.dialogs.get(call_id).is_some_and(|d| {
            d.phase == Phase::Failed
                && d.invite.cseq().ok().map(|c| c.0) != msg.cseq().ok().map(|c| c.0)
        });
        if retry {
            st.dialogs.remove(call_id);
        }
        if let Some(d) = st.dialogs.get_mut(call_id) {
            let in_dialog = msg.to().is_ok_and(|t| t.tag().is_some());
            if in_dialog && d.phase == Phase::Confirmed {
                let user = wire::ruri_user(&msg).unwrap_or_default();
                let ok = wire::respond_dialog(
                    &msg,
                    200,
                    &d.local_tag,
                    &self.contact(&user),
                    Some(crate::sofia::local_sdp(1)),
                );
                return vec![(ok.to_bytes(), src)];
            }
            return d.last.clone().map(|b| vec![(b, src)]).unwrap_or_default();
        }
        let tag = wire::token();
        let trying = wire::respond(&msg, 100, None).to_bytes();
        let from = msg.headers.get("From").unwrap_or_default().to_owned();
        let to = msg.headers.get("To").unwrap_or_default().to_owned();
        let mut d = Dialog {
            role: Role::Uas,
            phase: Phase::Early,
            ours: format!("{to};tag={tag}"),
            theirs: from,
            local_tag: tag,
            target: msg
                .contacts()
                .ok()
                .and_then(|c| c.into_iter().next())
                .map(|c| c.uri),
            routes: msg
                .headers
                .get_all("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            dest: src,
            cseq: 0,
            uuid: None,
            partner: None,
            last: Some(trying.clone()),
            acked: false,
            bye_after_ack: false,
            bridge: None,
            rang: false,
            reinvite: None,
            held: false,
            invite: msg,
        };
        // A box refusing calls (503, as sofia at max sessions or shutting
        // down: capture h-box-down) or stuck after its 100 does so before
        // any challenge; the dialplan's outcomes come after it.
        let box_level = matches!(st.answer, Answer::Unavailable | Answer::NoAnswer);
        let auth_calls = self.shared.core().cfg.auth_calls && !box_level;
        if auth_calls && let Verdict::Refused(r) = self.authorise(st, &d.invite, &d.local_tag) {
            // Kept until its ACK; the retry (new CSeq) is a new attempt.
            let b = r.to_bytes();
            d.phase = Phase::Failed;
            d.last = Some(b.clone());
            st.dialogs.insert(call_id.to_owned(), d);
            return vec![(b, src)];
        }
        let mut out = vec![(trying, src)];
        let fail = |d: &mut Dialog, status| {
            let r = wire::respond(&d.invite, status, Some(&d.local_tag));
            d.phase = Phase::Failed;
            r
        };
        let answer = st.answer.clone();
        let early = match &answer {
            Answer::Normal => None,
            Answer::Busy => Some(fail(&mut d, 486)),
            Answer::Unavailable => Some(fail(&mut d, 503)),
            Answer::NoAnswer => None,
            Answer::Redirect(node) => {
                let mut r = fail(&mut d, 302);
                let domain = self.domain();
                let user = wire::ruri_user(&d.invite).unwrap_or_default();
                r.headers.push("Contact", &format!("<sip:{user}@{domain}>"));
                r.headers.push("X-Locus-Node", node);
                Some(r)
            }
            Answer::Ring(_) => {
                let user = wire::ruri_user(&d.invite).unwrap_or_default();
                Some(wire::respond_dialog(
                    &d.invite,
                    180,
                    &d.local_tag,
                    &self.contact(&user),
                    None,
                ))
            }
        };
        if let Some(r) = early {
            let b = r.to_bytes();
            d.last = Some(b.clone());
            out.push((b, src));
        }
        st.dialogs.insert(call_id.to_owned(), d);
        match &answer {
            Answer::Normal => out.extend(self.proceed(st, call_id)),
            Answer::Ring(after) => timers::proceed_after(self, call_id.to_owned(), *after),
            _ => {}
        }
        out
    }

    /// Routes a pending INVITE by the vanilla dialplan.
    pub(super) fn proceed(self: &Arc<Self>, st: &mut SipState, call_id: &str) -> Out {
        let Some(d) = st.dialogs.get(call_id).filter(|d| d.phase == Phase::Early) else {
            return vec![];
        };
        let caller = wire::from_user(&d.invite).unwrap_or_default();
        let dest = wire::ruri_user(&d.invite).unwrap_or_default();
        let r = route(&dest, &self.shared.core().cfg.directory);
        match r {
            Route::User(ext) => self.bridge(st, call_id, &caller, &ext),
            Route::Unknown => self.reject(st, call_id, 404),
            feature => self.feature(st, call_id, &caller, feature),
        }
    }

    /// A final non-2xx to the pending INVITE `call_id`.
    pub(super) fn reject(&self, st: &mut SipState, call_id: &str, status: u16) -> Out {
        let Some(d) = st
            .dialogs
            .get_mut(call_id)
            .filter(|d| d.phase == Phase::Early)
        else {
            return vec![];
        };
        let r = wire::respond(&d.invite, status, Some(&d.local_tag)).to_bytes();
        d.phase = Phase::Failed;
        d.last = Some(r.clone());
        vec![(r, d.dest)]
    }

    /// 200 OK with SDP to the pending INVITE `call_id`, retransmitted until
    /// the ACK; `uuid` is the ESL channel now answering it.
    pub(super) fn accept(self: &Arc<Self>, st: &mut SipState, call_id: &str, uuid: &str) -> Out {
        let Some(d) = st
            .dialogs
            .get_mut(call_id)
            .filter(|d| d.phase == Phase::Early)
        else {
            return vec![];
        };
        let user = wire::ruri_user(&d.invite).unwrap_or_default();
        let ok = wire::respond_dialog(
            &d.invite,
            200,
            &d.local_tag,
            &self.contact(&user),
            Some(crate::sofia::local_sdp(rand::random::<u16>().into())),
        )
        .to_bytes();
        d.phase = Phase::Confirmed;
        d.uuid = Some(uuid.to_owned());
        d.last = Some(ok.clone());
        timers::retransmit_until_ack(self, call_id.to_owned(), ok.clone(), d.dest);
        vec![(ok, d.dest)]
    }
}

/// The SIP status for a script's refusal.
pub(super) fn status_of(e: &SimError) -> u16 {
    match e {
        SimError::NoSuchUser(_) => 404,
        SimError::Capacity(_) => 503,
        SimError::Nothing(_) => 480,
        _ => 500,
    }
}
