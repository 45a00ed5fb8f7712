//! Dialplan features on an INVITE: pickup (`*8`, `**EXT`), valet park and
//! retrieval, conferences, the call-center queue and FIFOs, and the echo
//! test. Each runs its
//! ESL script and answers 200; a leg the script bridged to another call
//! makes the two SIP dialogs partners (a BYE on one ends the other). With
//! nothing to pick up, pop or retrieve, the box answers and hangs up right
//! after the ACK (vanilla answers, then hangs up after `sleep 2000`).

use std::sync::Arc;

use super::dialog::{Phase, Role};
use super::endpoint::{Endpoint, Out, SipState};
use super::invite::status_of;
use crate::error::SimError;
use crate::scripts::dialplan::Route;
use crate::state::Core;

/// Vanilla `valet_park` lot.
const VALET_LOT: &str = "valet_parking_lot";
/// The captured box's call-center queue (`7001`).
const CC_QUEUE: &str = "support@default";
/// Vanilla FIFO of `5900`/`5901`.
const FIFO: &str = "5900";

impl Endpoint {
    /// Runs `feature` for the INVITE `call_id` from `caller` and answers.
    pub(super) fn feature(
        self: &Arc<Self>,
        st: &mut SipState,
        call_id: &str,
        caller: &str,
        feature: Route,
    ) -> Out {
        let result = {
            let mut core = self.shared.core();
            core.next_sip = super::bridge::sip_leg(st, call_id);
            let r = run(&mut core, caller, &feature);
            core.next_sip = None;
            r
        };
        match result {
            Ok(uuid) => {
                let mut out = self.accept(st, call_id, &uuid);
                out.extend(self.link_peer(st, call_id, &uuid));
                out
            }
            // The script already hung its leg up; answer, then BYE.
            Err(SimError::Nothing(what)) => {
                tracing::debug!(sip.call_id = call_id, nothing = %what, "feature found nothing");
                let out = self.accept(st, call_id, "");
                if let Some(d) = st.dialogs.get_mut(call_id) {
                    d.uuid = None;
                    d.bye_after_ack = true;
                }
                out
            }
            Err(e) => {
                tracing::debug!(sip.call_id = call_id, error = %e, "feature refused");
                self.reject(st, call_id, status_of(&e))
            }
        }
    }

    /// After a script bridged `uuid` to an existing channel: the dialog of
    /// that channel becomes this one's partner; if it was still ringing
    /// elsewhere (a pickup), it is answered now and the box's INVITE to the
    /// old callee is cancelled.
    fn link_peer(self: &Arc<Self>, st: &mut SipState, call_id: &str, uuid: &str) -> Out {
        let peer = self.shared.core().chan(uuid).and_then(|c| c.peer.clone());
        let Some(peer) = peer else {
            return vec![];
        };
        let other = st
            .dialogs
            .iter()
            .find(|(id, d)| d.uuid.as_deref() == Some(peer.as_str()) && id.as_str() != call_id)
            .map(|(id, _)| id.clone());
        let Some(other) = other else {
            return vec![];
        };
        let mut out = vec![];
        let (phase, role, old) = match st.dialogs.get_mut(&other) {
            Some(d) => (d.phase, d.role, d.partner.take()),
            None => return out,
        };
        if let Some(old) = old.filter(|o| o != call_id) {
            // The old partner's channel is gone (picked off): no ESL here.
            if let Some(d) = st.dialogs.get_mut(&old) {
                d.uuid = None;
            }
            out.extend(self.end_partner(st, Some(&old)));
        }
        if role == Role::Uas && phase == Phase::Early {
            out.extend(self.accept(st, &other, &peer));
        }
        if let Some(d) = st.dialogs.get_mut(&other) {
            d.partner = Some(call_id.to_owned());
        }
        if let Some(d) = st.dialogs.get_mut(call_id) {
            d.partner = Some(other);
        }
        out
    }
}

/// Runs the feature's script; returns the caller's leg.
fn run(core: &mut Core, caller: &str, feature: &Route) -> Result<String, SimError> {
    match feature {
        Route::GroupPickup => {
            let group = core
                .cfg
                .directory
                .callgroup(caller)
                .unwrap_or_default()
                .to_owned();
            core.intercept_group(caller, &group)
        }
        Route::ExtPickup(ext) => core.intercept_ext(caller, ext),
        Route::Valet(slot) => {
            let parked = core
                .feat
                .valet
                .get(VALET_LOT)
                .is_some_and(|l| l.contains_key(slot));
            if parked {
                core.valet_retrieve(caller, VALET_LOT, slot)
            } else {
                core.valet_park(caller, VALET_LOT, slot)
            }
        }
        Route::Conference(room) => core.conference_join(caller, room).map(|m| m.uuid),
        Route::CallCenter => core.callcenter_enter(caller, CC_QUEUE),
        Route::FifoIn => core.fifo_push(caller, FIFO),
        Route::FifoOut => core.fifo_pop(caller, FIFO),
        Route::Echo => core.echo(caller),
        Route::User(_) | Route::Unknown => {
            Err(SimError::NoSuchCall(format!("feature {feature:?}")))
        }
    }
}
