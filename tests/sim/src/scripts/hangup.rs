//! Tearing legs down in FreeSWITCH's order (capture 02): CHANNEL_HANGUP on
//! both legs, CS_HANGUP and call state HANGUP, CHANNEL_UNBRIDGE on the
//! bridge owner, the running application completes, presence, CS_REPORTING,
//! CHANNEL_HANGUP_COMPLETE (with `Hangup-Cause` twice), CHANNEL_DESTROY,
//! CS_DESTROY. Module-specific events (queues, conference, valet) are
//! inserted where the modules fire them.

use crate::channel::{Activity, CallState, CsState};
use crate::legs::PresenceFrom;
use crate::sofia;
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

/// Q.850 code of a hangup cause.
fn q850(cause: &str) -> u32 {
    match cause {
        "NORMAL_CLEARING" => 16,
        "USER_BUSY" => 17,
        "NO_ANSWER" => 19,
        "CALL_REJECTED" => 21,
        "ORIGINATOR_CANCEL" => 487,
        "PICKED_OFF" => 0,
        "SYSTEM_SHUTDOWN" => 0,
        _ => 0,
    }
}

impl Core {
    /// Marks a leg hung up (CHANNEL_HANGUP). `first`: the side that sent
    /// the BYE (sofia records the 200 it answered with); otherwise the side
    /// FreeSWITCH sent the BYE to.
    pub fn hangup_mark(&mut self, uuid: &str, cause: &'static str, first: bool) {
        let now = stamp::now_us();
        self.with_chan(uuid, |c| {
            c.down = true;
            c.hangup_cause = Some(cause);
            c.state = CsState::Hangup;
            if let Some(p) = c.profile.as_mut() {
                p.times.hungup = now;
            }
            let bridged = c.vars.get("bridge_to").is_some();
            if first && cause == "NORMAL_CLEARING" && !c.killed {
                c.vars.set("sip_term_status", "200");
                c.vars.set("proto_specific_hangup_cause", "sip:200");
                c.vars.set("sip_term_cause", "16");
            } else if !first && bridged {
                c.vars.set("sip_hangup_phrase", "OK");
            }
            if bridged {
                if first {
                    c.vars.set(
                        "last_bridge_role",
                        if c.bridge_a {
                            "originator"
                        } else {
                            "originatee"
                        },
                    );
                } else {
                    c.vars.set("last_bridge_hangup_cause", cause);
                    c.vars
                        .set("last_bridge_proto_specific_hangup_cause", "sip:200");
                    c.vars.remove("bridge_to");
                }
            }
        });
        self.chan_fire(uuid, "CHANNEL_HANGUP", at::HANGUP, vec![], true, vec![]);
    }

    /// CS_HANGUP (where FreeSWITCH stamps the billing variables) and call
    /// state HANGUP.
    pub(crate) fn leg_hangup_state(&mut self, uuid: &str) {
        self.set_billing(uuid);
        self.state(uuid, CsState::Hangup, CsState::Hangup);
        self.callstate(uuid, CallState::Hangup);
    }

    pub(crate) fn leg_report(&mut self, uuid: &str) {
        self.with_chan(uuid, |c| c.state = CsState::Reporting);
        self.presence(uuid, PresenceFrom::StateMachine, "idle");
        self.state(uuid, CsState::Reporting, CsState::Reporting);
    }

    fn set_billing(&mut self, uuid: &str) {
        let now = stamp::now_us();
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let cause = c.hangup_cause.unwrap_or("NORMAL_CLEARING");
        let p = c.profile.clone().unwrap_or_default();
        let caller_id = format!("\"{}\" <{}>", p.cid_name, p.cid_number);
        let last = c.last_app.clone();
        let mut vars = sofia::billing(
            &p.times,
            now,
            cause,
            q850(cause),
            last.as_ref().map(|(a, d)| (a.as_str(), d.as_str())),
            &caller_id,
        );
        if !c.holds.is_empty() {
            let list: Vec<String> = c
                .holds
                .iter()
                .map(|(s, e)| format!("{{{s},{e}}}"))
                .collect();
            vars.insert(1, ("hold_events", format!("{{{}}}", list.join(","))));
        }
        self.with_chan(uuid, |c| c.vars.extend(vars));
    }

    /// CHANNEL_HANGUP_COMPLETE (`Hangup-Cause` twice), with the RTP
    /// statistics of a leg that had media.
    pub(crate) fn leg_complete(&mut self, uuid: &str) {
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let cause = c.hangup_cause.unwrap_or("NORMAL_CLEARING");
        if c.codec.is_some() {
            self.set_vars(uuid, sofia::rtp_stats());
        }
        let pre = vec![("Hangup-Cause", cause.to_owned())];
        self.chan_fire(
            uuid,
            "CHANNEL_HANGUP_COMPLETE",
            at::HANGUP_COMPLETE,
            pre,
            true,
            vec![],
        );
    }

    /// CHANNEL_DESTROY, then CS_DESTROY and the channel is gone.
    pub(crate) fn leg_destroy(&mut self, uuid: &str) {
        self.with_chan(uuid, |c| c.state = CsState::Destroy);
        self.chan_fire(uuid, "CHANNEL_DESTROY", at::DESTROY, vec![], true, vec![]);
    }

    pub(crate) fn leg_gone(&mut self, uuid: &str) {
        self.state(uuid, CsState::Destroy, CsState::Destroy);
        self.chans.retain(|c| c.uuid != uuid);
        self.feat.forget_channel(uuid);
        self.conference_gc();
    }

    /// Hangs up `first` and, if it has one, its peer, in capture order.
    pub fn hangup_call(&mut self, first: &str, cause: &'static str) {
        let second = self
            .chan(first)
            .and_then(|c| c.peer.clone())
            .filter(|p| self.chan(p).is_some());
        let Some(second) = second else {
            self.hangup_single(first, cause);
            return;
        };
        let bridged = self.chan(first).is_some_and(|c| c.answered)
            && self.chan(&second).is_some_and(|c| c.answered);
        if bridged && self.chan(&second).is_some_and(|c| c.bridge_a) {
            self.hangup_from_b_side(first, &second, cause);
            return;
        }
        let peer_cause = if bridged { cause } else { "ORIGINATOR_CANCEL" };
        self.hangup_mark(first, cause, true);
        self.hangup_mark(&second, peer_cause, false);
        self.leg_hangup_state(&second);
        if bridged {
            self.with_chan(first, |c| {
                c.vars.set("sip_hangup_disposition", "recv_bye");
                c.vars.set("bridge_hangup_cause", cause);
                c.vars.remove("bridge_to");
            });
            let pre = vec![
                ("Bridge-A-Unique-ID", first.to_owned()),
                ("Bridge-B-Unique-ID", second.clone()),
            ];
            self.chan_fire(first, "CHANNEL_UNBRIDGE", at::UNBRIDGE, pre, true, vec![]);
            self.with_chan(&second, |c| c.vars.set("bridge_hangup_cause", cause));
        }
        self.module_hangup(first);
        self.module_hangup(&second);
        self.exec_done(first);
        self.leg_report(&second);
        self.leg_hangup_state(first);
        self.exec_done(&second);
        if bridged {
            self.with_chan(&second, |c| {
                c.vars.set("sip_hangup_disposition", "send_bye")
            });
        }
        self.leg_complete(&second);
        self.leg_destroy(&second);
        self.leg_report(first);
        self.leg_gone(&second);
        self.leg_complete(first);
        self.leg_destroy(first);
        self.leg_gone(first);
    }

    /// The B side of a bridge (`first`) hangs up: it is torn down, the
    /// owner unbridges, returns to its dialplan and hangs up after the
    /// bridge (`hangup_after_bridge`), as capture 05 shows.
    fn hangup_from_b_side(&mut self, first: &str, owner: &str, cause: &'static str) {
        self.hangup_mark(first, cause, true);
        self.module_hangup(first);
        self.exec_done(first);
        self.leg_hangup_state(first);
        self.leg_report(first);
        self.with_chan(first, |c| {
            c.vars.set("sip_hangup_disposition", "recv_bye");
            c.vars.remove("bridge_to");
        });
        self.leg_complete(first);
        self.with_chan(owner, |c| {
            c.vars.set("sip_hangup_phrase", "OK");
            c.vars.set("last_bridge_hangup_cause", cause);
            c.vars
                .set("last_bridge_proto_specific_hangup_cause", "sip:200");
            c.vars.set("bridge_hangup_cause", cause);
            c.vars.remove("bridge_to");
        });
        let pre = vec![
            ("Bridge-A-Unique-ID", owner.to_owned()),
            ("Bridge-B-Unique-ID", first.to_owned()),
        ];
        self.chan_fire(owner, "CHANNEL_UNBRIDGE", at::UNBRIDGE, pre, true, vec![]);
        self.exec_done(owner);
        if self
            .chan(owner)
            .is_some_and(|c| c.running != CsState::Execute)
        {
            self.state(owner, CsState::Execute, CsState::Execute);
        }
        self.hangup_mark(owner, cause, false);
        self.module_hangup(owner);
        self.leg_hangup_state(owner);
        self.leg_destroy(first);
        self.leg_gone(first);
        self.leg_report(owner);
        self.with_chan(owner, |c| c.vars.set("sip_hangup_disposition", "send_bye"));
        self.leg_complete(owner);
        self.leg_destroy(owner);
        self.leg_gone(owner);
    }

    /// Events the module holding a leg fires when it hangs up.
    fn module_hangup(&mut self, uuid: &str) {
        let Some(activity) = self.chan(uuid).map(|c| c.activity.clone()) else {
            return;
        };
        match activity {
            Activity::Normal => {}
            Activity::Valet { lot, slot } => self.valet_hangup(uuid, &lot, &slot),
            Activity::Conference { room, member } => self.conference_hangup(uuid, &room, member),
            Activity::CallCenter { queue } => self.cc_hangup(uuid, &queue),
            Activity::Fifo { name } => self.fifo_abort(uuid, &name),
            Activity::FifoConsumer { name, caller } => self.fifo_bridge_end(uuid, &caller, &name),
            Activity::Parked => {
                self.chan_fire(uuid, "CHANNEL_UNPARK", at::UNPARK, vec![], true, vec![]);
            }
        }
        self.with_chan(uuid, |c| c.activity = Activity::Normal);
    }

    /// Hangs up a leg without a peer.
    pub fn hangup_single(&mut self, uuid: &str, cause: &'static str) {
        self.hangup_mark(uuid, cause, true);
        self.module_hangup(uuid);
        let killed = self.chan(uuid).is_some_and(|c| c.killed);
        if cause == "NORMAL_CLEARING" && !killed {
            self.with_chan(uuid, |c| c.vars.set("sip_hangup_disposition", "recv_bye"));
        }
        self.exec_done(uuid);
        self.leg_hangup_state(uuid);
        self.leg_report(uuid);
        if killed {
            self.with_chan(uuid, |c| c.vars.set("sip_hangup_disposition", "send_bye"));
        }
        self.leg_complete(uuid);
        self.leg_destroy(uuid);
        self.leg_gone(uuid);
    }
}
