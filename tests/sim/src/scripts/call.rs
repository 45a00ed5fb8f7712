//! A basic call between two directory users, as capture 02 shows it: the
//! caller's leg runs the vanilla dialplan to `bridge user/<to>@<domain>`,
//! the callee's leg rings (early media to the caller), answers, both legs
//! bridge; hold and unhold by re-INVITE (capture 12).

use crate::channel::CallState;
use crate::error::SimError;
use crate::legs::CodecEv;
use crate::scripts::dialplan::{Route, route};
use crate::sofia;
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

impl Core {
    /// `from` calls `to` (a directory user); returns the caller's leg uuid
    /// once the callee rings.
    pub fn call(&mut self, from: &str, to: &str) -> Result<String, SimError> {
        let (a, b) = self.call_begin(from, to)?;
        self.call_ring(&a, &b, from, to);
        Ok(a)
    }

    /// The first half of [`Core::call`]: the caller's leg through the
    /// dialplan to `bridge`, and the callee's leg placed but not yet
    /// ringing (the SIP side waits for the 180). Returns `(a, b)`.
    pub fn call_begin(&mut self, from: &str, to: &str) -> Result<(String, String), SimError> {
        if route(to, &self.cfg.directory) != Route::User(to.to_owned()) {
            return Err(SimError::NoSuchUser(to.to_owned()));
        }
        let a = self.new_inbound(from, to)?;
        self.dialplan_preamble(&a, from, to);
        self.local_extension(&a, from, to);
        let domain = self.cfg.domain.clone();
        self.exec_start(&a, "bridge", &format!("user/{to}@{domain}"));
        if !self.cfg.behind_proxy() {
            // The vanilla dial-string; the farm's points at the proxy.
            self.api_event("sofia_contact", Some(&format!("*/{to}@{domain}")));
            self.api_event("verto_contact", Some(&format!("{to}@{domain}")));
        }
        let cid = format!("Extension {from}");
        let b = match self.new_outbound(Some(&a), to, (&cid, from)) {
            Ok(b) => b,
            Err(e) => {
                self.hangup_single(&a, "NORMAL_TEMPORARY_FAILURE");
                return Err(e);
            }
        };
        self.with_chan(&a, |c| c.peer = Some(b.clone()));
        self.with_chan(&b, |c| c.peer = Some(a.clone()));
        Ok((a, b))
    }

    /// The second half of [`Core::call`]: `b` rings, early media to `a`.
    pub fn call_ring(&mut self, a: &str, b: &str, from: &str, to: &str) {
        let domain = self.cfg.domain.clone();
        self.ring(b, from);
        let now = stamp::now_us();
        self.with_chan(a, |c| {
            if let Some(p) = c.profile.as_mut() {
                p.times.progress = now;
            }
        });
        let extra = vec![
            ("dialed_user", to.to_owned()),
            ("dialed_domain", domain),
            ("originate_disposition", "failure".to_owned()),
            ("DIALSTATUS", "INVALIDARGS".to_owned()),
            ("originate_signal_bond", b.to_owned()),
            ("originated_legs", format!("ARRAY::{b};Outbound Call;{to}")),
        ];
        self.early_media(a, extra);
        // Ringback: the caller's read codec is linear while it plays.
        self.with_chan(a, |c| c.read_codec = Some(sofia::CONF_READ_CODEC));
        self.codec(a, CodecEv::Read);
    }

    /// The outbound leg `b` rings (180): CHANNEL_PROGRESS, RINGING.
    pub fn ring(&mut self, b: &str, caller: &str) {
        let now = stamp::now_us();
        let domain = self.cfg.domain.clone();
        let proxy = self.cfg.behind_proxy();
        let (user, session) = match self.chan(b) {
            Some(c) => (
                c.user.clone(),
                c.vars
                    .get("session_id")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            ),
            None => return,
        };
        self.with_chan(b, |c| {
            let mut vars = sofia::progress(caller, &user, &domain, session, proxy);
            // A leg the SIP side placed already has its real Call-ID.
            if let Some(id) = c.vars.get("sip_call_id") {
                for (k, v) in &mut vars {
                    if *k == "sip_call_id" {
                        *v = id.to_owned();
                    }
                }
            }
            c.vars.extend(vars);
            if let Some(p) = c.profile.as_mut() {
                p.times.progress = now;
            }
        });
        self.chan_fire(b, "CHANNEL_PROGRESS", at::PROGRESS, vec![], true, vec![]);
        self.callstate(b, CallState::Ringing);
    }

    /// The callee answers a ringing call and both legs are bridged.
    pub fn answer(&mut self, a: &str) -> Result<(), SimError> {
        let Some(c) = self.chan(a) else {
            return Err(SimError::NoSuchCall(a.to_owned()));
        };
        let Some(b) = c
            .peer
            .clone()
            .filter(|b| self.chan(b).is_some_and(|c| !c.answered))
        else {
            return Err(SimError::BadState {
                call: a.to_owned(),
                state: c.callstate.name().to_owned(),
                action: "answer",
            });
        };
        self.codec(&b, CodecEv::RealRead);
        self.codec(&b, CodecEv::Write);
        self.mark_answered(&b);
        let callee = self.chan(&b).map(|c| c.user.clone()).unwrap_or_default();
        let b_profile = self.chan(&b).and_then(|c| c.profile.clone());
        self.with_chan(a, |c| {
            c.read_codec = None;
            if let Some(p) = c.profile.as_mut() {
                p.callee_name = "Outbound Call".into();
                p.callee_number = callee;
            }
            c.vars.set(
                "switch_m_sdp",
                c.vars.get("switch_r_sdp").unwrap_or_default().to_owned(),
            );
        });
        let a_profile = self.chan(a).and_then(|c| c.profile.clone());
        // The B-leg's Other-Leg is the A-leg's profile, callee id included.
        self.with_chan(&b, |c| {
            if let (Some((_, other)), Some(pa)) = (c.other.as_mut(), a_profile) {
                *other = crate::channel::Profile {
                    index: None,
                    times: crate::channel::Times::default(),
                    ..pa
                };
            }
        });
        let _ = b_profile;
        self.codec(a, CodecEv::Read);
        self.mark_answered(a);
        self.chan_fire(&b, "CHANNEL_OUTGOING", at::OUTGOING, vec![], false, vec![]);
        self.bridge(a, &b, false);
        Ok(())
    }

    /// The caller puts the call on hold (re-INVITE `a=sendonly`): HELD,
    /// CHANNEL_HOLD, music on hold to the other leg, `sofia::reinvite`.
    pub fn hold(&mut self, a: &str) -> Result<(), SimError> {
        let peer = self.active_peer(a, "hold", CallState::Active)?;
        let now = stamp::now_us();
        self.with_chan(a, |c| {
            if let Some(p) = c.profile.as_mut() {
                p.times.last_hold = now;
            }
        });
        self.callstate(a, CallState::Held);
        self.chan_fire(a, "CHANNEL_HOLD", at::HOLD, vec![], true, vec![]);
        self.presence(a, crate::legs::PresenceFrom::Hold, "held");
        self.set_vars(
            &peer,
            vec![
                ("current_loop", "1".to_owned()),
                ("total_loops", "-1".to_owned()),
            ],
        );
        self.exec_start(&peer, "playback", "local_stream://moh");
        self.playback_start(&peer);
        self.reinvite(a);
        Ok(())
    }

    /// The caller resumes (re-INVITE `a=sendrecv`): UNHELD, CHANNEL_UNHOLD,
    /// then ACTIVE.
    pub fn unhold(&mut self, a: &str) -> Result<(), SimError> {
        let peer = self.active_peer(a, "unhold", CallState::Held)?;
        self.playback_stop(&peer, "break");
        self.set_vars(
            &peer,
            vec![("current_application_response", "FILE PLAYED".to_owned())],
        );
        self.exec_done(&peer);
        self.with_chan(&peer, |c| {
            c.vars.remove("current_loop");
            c.vars.remove("total_loops");
        });
        let now = stamp::now_us();
        self.with_chan(a, |c| {
            if let Some(p) = c.profile.as_mut() {
                p.times.hold_accum += now - p.times.last_hold;
                c.holds.push((p.times.last_hold, now));
            }
        });
        self.callstate(a, CallState::Unheld);
        self.chan_fire(a, "CHANNEL_UNHOLD", at::HOLD, vec![], true, vec![]);
        self.presence(a, crate::legs::PresenceFrom::Unhold, "active");
        self.reinvite(a);
        self.callstate(a, CallState::Active);
        Ok(())
    }

    fn active_peer(
        &self,
        a: &str,
        action: &'static str,
        want: CallState,
    ) -> Result<String, SimError> {
        let c = self
            .chan(a)
            .ok_or_else(|| SimError::NoSuchCall(a.to_owned()))?;
        match &c.peer {
            Some(p) if c.callstate == want && c.answered => Ok(p.clone()),
            _ => Err(SimError::BadState {
                call: a.to_owned(),
                state: c.callstate.name().to_owned(),
                action,
            }),
        }
    }

    fn reinvite(&mut self, uuid: &str) {
        let mut ev = self.custom("sofia::reinvite", at::REINVITE);
        ev.push("Unique-ID", uuid);
        self.fire(ev);
    }

    /// PLAYBACK_START of music on hold on a leg.
    pub fn playback_start(&mut self, uuid: &str) {
        let post = vec![
            ("Playback-File-Type", "local_stream".to_owned()),
            ("Playback-File-Path", "local_stream://moh".to_owned()),
        ];
        self.chan_event(uuid, "PLAYBACK_START", at::PLAYBACK_START, post);
    }

    /// PLAYBACK_STOP of music on hold; `status` is `done` when the
    /// application ended it, `break` when interrupted.
    pub fn playback_stop(&mut self, uuid: &str, status: &str) {
        self.set_vars(
            uuid,
            vec![
                ("playback_last_offset_pos", "13280".to_owned()),
                ("playback_seconds", "1".to_owned()),
                ("playback_ms", "1690".to_owned()),
                ("playback_samples", "13520".to_owned()),
            ],
        );
        let post = vec![
            ("Playback-File-Type", "local_stream".to_owned()),
            ("Playback-File-Path", "local_stream://moh".to_owned()),
            ("Playback-Status", status.to_owned()),
        ];
        self.chan_event(uuid, "PLAYBACK_STOP", at::PLAYBACK_STOP, post);
    }
}
