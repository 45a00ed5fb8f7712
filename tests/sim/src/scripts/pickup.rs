//! Call pickup with the vanilla dialplan (captures 03, 04, 22): the picker
//! dials `*8` or `**EXT`, its leg is answered, the dialplan reads the A-leg
//! uuid from mod_hash (`${domain}-last_dial_ext/{group|ext}`) and runs
//! `intercept`: the ringing B-leg ends `PICKED_OFF`, the A-leg is answered
//! and bridged to the picker. With nothing in the hash (the wrong box),
//! `intercept` runs with empty data, then `sleep 2000`, then hangup.

use crate::error::SimError;
use crate::state::Core;

impl Core {
    /// `picker` dials `*8`; `group` is the callgroup whose last call is
    /// picked (normally the picker's own `callgroup`). Returns the picker's
    /// leg, now bridged to the caller.
    pub fn intercept_group(&mut self, picker: &str, group: &str) -> Result<String, SimError> {
        let key = format!("{}-last_dial_ext/{group}", self.cfg.domain);
        self.intercept(picker, "*8", &key)
    }

    /// `picker` dials `**EXT`.
    pub fn intercept_ext(&mut self, picker: &str, ext: &str) -> Result<String, SimError> {
        let key = format!("{}-last_dial_ext/{ext}", self.cfg.domain);
        self.intercept(picker, &format!("**{ext}"), &key)
    }

    fn intercept(&mut self, picker: &str, dest: &str, key: &str) -> Result<String, SimError> {
        let p = self.new_inbound(picker, dest)?;
        self.dialplan_preamble(&p, picker, dest);
        self.exec_answer(&p);
        self.api_event("hash", Some(&format!("select/{key}")));
        let target = self.feat.hash.get(key).cloned().filter(|a| {
            self.chan(a).is_some_and(|c| {
                !c.answered && c.peer.as_ref().is_some_and(|b| self.chan(b).is_some())
            })
        });
        let Some(a) = target else {
            self.exec(&p, "intercept", "", |_| {});
            self.exec(&p, "sleep", "2000", |_| {});
            self.hangup_single(&p, "NORMAL_CLEARING");
            return Err(SimError::Nothing(format!("pick up ({key} is empty)")));
        };
        let Some(b) = self.chan(&a).and_then(|c| c.peer.clone()) else {
            return Err(SimError::NoSuchCall(a));
        };
        self.exec_start(&p, "intercept", &a);
        let callee = self.chan(&b).map(|c| c.user.clone()).unwrap_or_default();
        self.with_chan(&a, |c| {
            if let Some(p) = c.profile.as_mut() {
                p.callee_name = "Outbound Call".into();
                p.callee_number = callee;
            }
        });
        self.mark_answered(&a);
        self.with_chan(&b, |c| c.vars.set("park_after_bridge", "true"));
        self.hangup_mark(&b, "PICKED_OFF", false);
        self.uuid_bridge_prep(&p, &a, true);
        self.exec_done(&p);
        self.enter_soft_execute(&p);
        self.with_chan(&b, |c| {
            c.vars.set("call_completed_elsewhere", "true");
            c.vars.set("sip_hangup_disposition", "send_cancel");
            c.vars.set("sip_invite_failure_status", "487");
            c.vars.set("sip_invite_failure_phrase", "CANCEL");
        });
        self.leg_hangup_state(&b);
        self.leg_report(&b);
        self.leg_complete(&b);
        self.uuid_bridge_prep(&a, &p, false);
        self.with_chan(&a, |c| c.read_codec = None);
        self.codec(&a, crate::legs::CodecEv::Read);
        self.leg_destroy(&b);
        self.leg_gone(&b);
        self.with_chan(&a, |c| {
            c.vars.set("last_bridge_hangup_cause", "PICKED_OFF");
            c.vars.set("sip_to_tag", format!("{}T", &c.uuid[..8]));
            c.vars.set("sip_cseq", "2");
            c.vars.set("originate_causes", format!("{b};PICKED_OFF"));
            c.vars.set("originate_failed_cause", "PICKED_OFF");
            c.vars.set("originate_disposition", "PICKED_OFF");
            c.peer = None;
        });
        self.exec_done(&a);
        self.enter_soft_execute(&a);
        self.bridge(&p, &a, true);
        Ok(p)
    }
}
