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
            self.chan(a)
                .is_some_and(|c| !c.answered && c.peer.as_ref().is_some_and(|b| self.chan(b).is_some()))
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
        self.with_chan(&a, |c| c.read_codec = None);
        self.mark_answered(&a);
        self.hangup_mark(&b, "PICKED_OFF", false);
        self.exec_done(&p);
        self.to_soft_execute(&p);
        self.finish_leg(&b);
        self.with_chan(&a, |c| {
            c.vars.set("originate_disposition", "PICKED_OFF");
            c.peer = None;
        });
        self.exec_done(&a);
        self.to_soft_execute(&a);
        self.bridge(&p, &a, true);
        Ok(p)
    }
}
