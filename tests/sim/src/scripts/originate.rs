//! `originate {vars}user/<user>@<domain> &park()` (capture 13): an
//! outbound leg rings, answers, runs `park` (CHANNEL_PARK); `uuid_kill`
//! ends it with CHANNEL_UNPARK.

use crate::channel::{Activity, CsState};
use crate::error::SimError;
use crate::legs::CodecEv;
use crate::state::Core;
use crate::templates::at;

/// What `originate` runs on the answered leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginateApp {
    /// `&park()`.
    Park,
}

impl Core {
    /// `originate user/<user> &park()` as a script; returns the parked leg.
    pub fn originate_park(&mut self, user: &str) -> Result<String, SimError> {
        let b = self.originate(user, ("FreeSWITCH", "0000000000"))?;
        self.originate_app(&b, OriginateApp::Park);
        Ok(b)
    }

    /// Originates a call to `user` with caller id `(name, number)`; returns
    /// the answered leg's uuid. The application runs with [`Core::originate_app`].
    pub fn originate(&mut self, user: &str, cid: (&str, &str)) -> Result<String, SimError> {
        let domain = self.cfg.domain.clone();
        self.api_event("sofia_contact", Some(&format!("*/{user}@{domain}")));
        self.api_event("verto_contact", Some(&format!("{user}@{domain}")));
        let b = self.new_outbound(None, user, cid)?;
        self.with_chan(&b, |c| {
            if let Some(p) = c.profile.as_mut() {
                p.network_addr = "127.0.0.1".into();
            }
        });
        self.ring(&b, cid.1);
        self.codec(&b, CodecEv::RealRead);
        self.codec(&b, CodecEv::Write);
        self.mark_answered(&b);
        self.chan_fire(&b, "CHANNEL_OUTGOING", at::OUTGOING, vec![], false, vec![]);
        self.with_chan(&b, |c| {
            c.hit_dialplan = true;
            if let Some(p) = c.profile.as_mut() {
                // The answered leg shows the originate's caller id as callee.
                p.cid_name = "Outbound Call".into();
                p.cid_number = user.into();
                p.callee_name = cid.0.into();
                p.callee_number = cid.1.into();
            }
        });
        let domain = self.cfg.domain.clone();
        let group = self.cfg.directory.callgroup(user).map(str::to_owned);
        let dir = crate::templates::directory_vars(user, &domain, group.as_deref());
        self.with_chan(&b, |c| {
            c.vars.set("endpoint_disposition", "ANSWER");
            for (k, v) in dir.into_iter().skip(6) {
                c.vars.set(k, v);
            }
            c.vars.set("pre_transfer_caller_id_name", cid.0);
            c.vars.set("pre_transfer_caller_id_number", cid.1);
            c.vars.set("channel_cid_flipped", "yes");
        });
        let pre = vec![("Direction", "RECV".to_owned())];
        self.chan_fire(&b, "CALL_UPDATE", at::CALL_UPDATE_FLIP, pre, true, vec![]);
        Ok(b)
    }

    /// Runs the originate's application on the answered leg.
    pub fn originate_app(&mut self, b: &str, app: OriginateApp) {
        match app {
            OriginateApp::Park => {
                self.state(b, CsState::Execute, CsState::Execute);
                self.exec_start(b, "park", "");
                self.with_chan(b, |c| c.activity = Activity::Parked);
                self.chan_fire(b, "CHANNEL_PARK", at::PARK, vec![], true, vec![]);
            }
        }
    }

    /// `uuid_kill <uuid> [cause]`: FreeSWITCH hangs the leg (and its
    /// bridged peer) up and sends the BYE itself.
    pub fn kill(&mut self, uuid: &str, cause: &'static str) -> Result<(), SimError> {
        if self.chan(uuid).is_none() {
            return Err(SimError::NoSuchCall(uuid.to_owned()));
        }
        self.with_chan(uuid, |c| c.killed = true);
        self.hangup_call(uuid, cause);
        Ok(())
    }

    /// The phone of leg `uuid` hangs up (sends BYE); its peer follows.
    pub fn hangup(&mut self, uuid: &str) -> Result<(), SimError> {
        if self.chan(uuid).is_none() {
            return Err(SimError::NoSuchCall(uuid.to_owned()));
        }
        self.hangup_call(uuid, "NORMAL_CLEARING");
        Ok(())
    }
}
