//! Building blocks every scripted call is made of: creating inbound and
//! outbound legs, state and call-state changes, presence and codec events.
//! Each fires the same events, with the same headers, as the FreeSWITCH
//! function named in its doc.

use crate::channel::{
    Activity, CallState, Channel, CsState, Direction, OtherType, Profile, Times, Vars,
};
use crate::error::SimError;
use crate::sofia::{self, BoxId};
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

/// Where a PRESENCE_IN comes from (its `Presence-Calling-*` headers).
#[derive(Clone, Copy, Debug)]
pub enum PresenceFrom {
    /// `check_presence` in the state machine: status is the state name.
    StateMachine,
    /// `switch_channel_perform_mark_answered`: status `answered`.
    Answered,
    /// `switch_core_media_toggle_hold` putting the call on hold.
    Hold,
    /// `switch_core_media_toggle_hold` resuming it.
    Unhold,
}

/// Which CODEC event (`switch_core_session_set_*_codec`).
#[derive(Clone, Copy, Debug)]
pub enum CodecEv {
    /// `set_real_read_codec`.
    RealRead,
    /// `set_write_codec`.
    Write,
    /// `set_read_codec`.
    Read,
}

impl Core {
    /// Mutates a channel if it exists.
    pub fn with_chan(&mut self, uuid: &str, f: impl FnOnce(&mut Channel)) {
        if let Some(c) = self.chan_mut(uuid) {
            f(c);
        }
    }

    /// Sets channel variables in order.
    pub fn set_vars(&mut self, uuid: &str, vars: Vec<(&'static str, String)>) {
        self.with_chan(uuid, |c| c.vars.extend(vars));
    }

    /// Changes state and fires CHANNEL_STATE (`switch_channel_perform_set_running_state`).
    pub fn state(&mut self, uuid: &str, running: CsState, state: CsState) {
        self.with_chan(uuid, |c| c.set_state(running, state));
        self.chan_fire(uuid, "CHANNEL_STATE", at::STATE, vec![], false, vec![]);
    }

    /// Changes call state and fires CHANNEL_CALLSTATE (no variables, as captured).
    pub fn callstate(&mut self, uuid: &str, to: CallState) {
        let Some(from) = self.chan(uuid).map(|c| c.callstate) else {
            return;
        };
        self.with_chan(uuid, |c| c.callstate = to);
        let pre = vec![
            ("Original-Channel-Call-State", from.name().to_owned()),
            ("Channel-Call-State-Number", to.number().to_string()),
        ];
        self.chan_fire(uuid, "CHANNEL_CALLSTATE", at::CALLSTATE, pre, false, vec![]);
    }

    /// Fires PRESENCE_IN for a channel (`switch_channel_perform_presence`).
    pub fn presence(&mut self, uuid: &str, from: PresenceFrom, info: &str) {
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let (status, file, func, line) = match from {
            PresenceFrom::StateMachine => (
                c.running.name(),
                "src/switch_core_state_machine.c",
                "check_presence",
                "521",
            ),
            PresenceFrom::Answered => (
                "answered",
                "src/switch_channel.c",
                "switch_channel_perform_mark_answered",
                "3904",
            ),
            PresenceFrom::Hold => (
                "hold",
                "src/switch_core_media.c",
                "switch_core_media_toggle_hold",
                "6494",
            ),
            PresenceFrom::Unhold => (
                "unhold",
                "src/switch_core_media.c",
                "switch_core_media_toggle_hold",
                "6604",
            ),
        };
        let post = vec![
            ("proto", "any".to_owned()),
            ("login", "src/switch_channel.c".to_owned()),
            (
                "from",
                c.vars.get("presence_id").unwrap_or_default().to_owned(),
            ),
            ("rpid", "unknown".to_owned()),
            ("status", status.to_owned()),
            ("event_type", "presence".to_owned()),
            ("alt_event_type", "dialog".to_owned()),
            ("presence-call-info-state", info.to_owned()),
            ("presence-call-direction", c.direction.name().to_owned()),
            ("event_count", c.presence_count.to_string()),
            ("Presence-Calling-File", file.to_owned()),
            ("Presence-Calling-Function", func.to_owned()),
            ("Presence-Calling-Line", line.to_owned()),
        ];
        self.chan_fire(uuid, "PRESENCE_IN", at::PRESENCE, vec![], false, post);
        self.with_chan(uuid, |c| c.presence_count += 1);
    }

    /// Fires a CODEC event; the first one also sets the channel's codecs.
    pub fn codec(&mut self, uuid: &str, which: CodecEv) {
        self.with_chan(uuid, |c| {
            c.codec.get_or_insert(sofia::CODEC);
        });
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let (name, bits) = c.read_codec.or(c.codec).unwrap_or(sofia::CODEC);
        let (origin, post) = match which {
            CodecEv::RealRead | CodecEv::Read => (
                if matches!(which, CodecEv::Read) {
                    at::CODEC_READ
                } else {
                    at::CODEC_REAL_READ
                },
                vec![
                    ("channel-read-codec-name", name.to_owned()),
                    ("channel-read-codec-rate", "8000".to_owned()),
                    ("channel-read-codec-bit-rate", bits.to_string()),
                ],
            ),
            CodecEv::Write => (
                at::CODEC_WRITE,
                vec![
                    ("Channel-Write-Codec-Name", sofia::CODEC.0.to_owned()),
                    ("Channel-Write-Codec-Rate", "8000".to_owned()),
                    // Lowercase `codec-bit-rate`: a FreeSWITCH typo, as captured.
                    ("Channel-Write-codec-bit-rate", sofia::CODEC.1.to_string()),
                ],
            ),
        };
        self.chan_fire(uuid, "CODEC", origin, vec![], false, post);
    }

    /// An inbound leg from `user` dialling `dest`, authenticated and routed
    /// into the dialplan: CS_NEW, the digest-auth sofia events, CS_INIT,
    /// CHANNEL_CREATE, RINGING, CS_ROUTING, presence, CS_EXECUTE.
    pub fn new_inbound(&mut self, user: &str, dest: &str) -> Result<String, SimError> {
        if self.cfg.directory.get(user).is_none() {
            return Err(SimError::NoSuchUser(user.to_owned()));
        }
        self.check_capacity()?;
        let uuid = stamp::uuid();
        let now = stamp::now_us();
        let session = self.next_session();
        let host = self.cfg.from_host().to_owned();
        let name = format!("sofia/internal/{user}@{host}");
        self.chans
            .push(blank(&uuid, &name, Direction::Inbound, user));
        self.state(&uuid, CsState::New, CsState::New);
        let call_id = format!("{session}-{}@{host}", sofia::phone_port(user));
        self.invite_auth_events(user, dest, &call_id);
        let b = BoxId {
            cfg: &self.cfg,
            core_uuid: &self.core_uuid,
        };
        let vars = sofia::inbound(&b, &uuid, user, dest, session, &call_id, now);
        let profile = Profile {
            direction: Some(Direction::Inbound),
            logical_direction: Some(Direction::Inbound),
            username: user.into(),
            dialplan: "XML".into(),
            cid_name: user.into(),
            cid_number: user.into(),
            orig_cid_name: user.into(),
            orig_cid_number: user.into(),
            network_addr: "127.0.0.1".into(),
            ani: user.into(),
            destination: dest.into(),
            uuid: uuid.clone(),
            source: "mod_sofia".into(),
            context: "default".into(),
            chan_name: name,
            index: Some(1),
            times: Times {
                profile_created: now,
                created: now,
                ..Times::default()
            },
            ..Profile::default()
        };
        self.with_chan(&uuid, |c| {
            c.vars.extend(vars);
            c.profile = Some(profile);
        });
        self.state(&uuid, CsState::Init, CsState::Init);
        self.with_chan(&uuid, |c| c.state = CsState::Routing);
        self.chan_fire(&uuid, "CHANNEL_CREATE", at::CREATE, vec![], true, vec![]);
        self.with_chan(&uuid, |c| c.running = CsState::Routing);
        self.callstate(&uuid, CallState::Ringing);
        self.state(&uuid, CsState::Routing, CsState::Routing);
        self.with_chan(&uuid, |c| c.state = CsState::Execute);
        self.presence(&uuid, PresenceFrom::StateMachine, "alerting");
        self.state(&uuid, CsState::Execute, CsState::Execute);
        Ok(uuid)
    }

    /// An outbound leg to `user` originated by `originator` (bridge or
    /// originate): CHANNEL_OUTGOING, CS_INIT, CREATE, ORIGINATE, CS_ROUTING,
    /// presence, CS_CONSUME_MEDIA. Not yet ringing.
    pub fn new_outbound(
        &mut self,
        originator: Option<&str>,
        user: &str,
        cid: (&str, &str),
    ) -> Result<String, SimError> {
        if self.cfg.directory.get(user).is_none() {
            return Err(SimError::NoSuchUser(user.to_owned()));
        }
        self.check_capacity()?;
        let uuid = stamp::uuid();
        let now = stamp::now_us();
        let session = self.next_session();
        let name = match self.feat.regs.get(user) {
            Some(r) if !self.cfg.behind_proxy() => format!("sofia/internal/{user}@{}", r.contact),
            _ => format!("sofia/internal/{user}@{}", self.cfg.domain),
        };
        let mut ch = blank(&uuid, &name, Direction::Outbound, user);
        ch.running = CsState::None;
        ch.state = CsState::Init;
        let other = originator
            .and_then(|o| self.chan(o))
            .and_then(|o| o.profile.clone());
        // An `originate`d leg has no dialplan and no address until it rings.
        let (dialplan, addr) = if originator.is_some() {
            ("XML", "127.0.0.1")
        } else {
            ("", "")
        };
        ch.profile = Some(Profile {
            direction: Some(Direction::Outbound),
            logical_direction: Some(Direction::Outbound),
            username: other
                .as_ref()
                .map(|p| p.username.clone())
                .unwrap_or_default(),
            dialplan: dialplan.into(),
            cid_name: cid.0.into(),
            cid_number: cid.1.into(),
            orig_cid_name: cid.1.into(),
            orig_cid_number: cid.1.into(),
            callee_name: "Outbound Call".into(),
            callee_number: user.into(),
            network_addr: addr.into(),
            ani: cid.1.into(),
            destination: user.into(),
            uuid: uuid.clone(),
            source: "mod_sofia".into(),
            context: "default".into(),
            chan_name: name.clone(),
            index: Some(1),
            times: Times {
                profile_created: now,
                created: now,
                ..Times::default()
            },
            ..Profile::default()
        });
        ch.other = other.map(|mut p| {
            p.index = None;
            p.times = Times::default();
            (OtherType::Originator, p)
        });
        self.chans.push(ch);
        self.chan_fire(
            &uuid,
            "CHANNEL_OUTGOING",
            at::OUTGOING,
            vec![],
            false,
            vec![],
        );
        let mut vars = match originator {
            Some(o) => sofia::outbound(&self.cfg, &uuid, user, &name, o, session),
            None => sofia::originated(&self.cfg, &uuid, user, &name, cid, session),
        };
        // Exported variables and the offered SDP travel from the originator.
        if let Some(o) = originator.and_then(|o| self.chan(o)) {
            let at = vars
                .iter()
                .position(|(k, _)| *k == "call_uuid")
                .unwrap_or(vars.len());
            let mut inherited: Vec<(&'static str, String)> = vec![];
            if let Some(sdp) = o.vars.get("switch_r_sdp") {
                inherited.push(("switch_m_sdp", sdp.to_owned()));
            }
            for (i, x) in inherited.into_iter().enumerate() {
                vars.insert(at + i, x);
            }
            let dd = vars
                .iter()
                .position(|(k, _)| *k == "dialed_domain")
                .map_or(vars.len(), |i| i + 1);
            let mut exported: Vec<(&'static str, String)> = vec![];
            if let Some(list) = o.vars.get("export_vars") {
                exported.push(("export_vars", list.to_owned()));
                for name in list.split(',') {
                    if let (Some(k), Some(v)) = (exported_name(name), o.vars.get(name)) {
                        exported.push((k, v.to_owned()));
                    }
                }
            }
            for (i, x) in exported.into_iter().enumerate() {
                vars.insert(dd + i, x);
            }
            vars.push(("rtp_local_sdp_str", sofia::local_sdp(session)));
        }
        self.with_chan(&uuid, |c| c.vars.extend(vars));
        self.state(&uuid, CsState::Init, CsState::Init);
        self.with_chan(&uuid, |c| c.state = CsState::Routing);
        self.chan_fire(&uuid, "CHANNEL_CREATE", at::CREATE, vec![], true, vec![]);
        self.chan_fire(
            &uuid,
            "CHANNEL_ORIGINATE",
            at::ORIGINATE,
            vec![],
            true,
            vec![],
        );
        self.state(&uuid, CsState::Routing, CsState::Routing);
        self.with_chan(&uuid, |c| c.state = CsState::ConsumeMedia);
        self.presence(&uuid, PresenceFrom::StateMachine, "progressing");
        self.state(&uuid, CsState::ConsumeMedia, CsState::ConsumeMedia);
        Ok(uuid)
    }

    fn check_capacity(&self) -> Result<(), SimError> {
        if self.session_count() >= u64::from(self.cfg.max_sessions) {
            return Err(SimError::Capacity(self.cfg.max_sessions));
        }
        Ok(())
    }
}

/// Names the vanilla dialplan exports (static for the `'static` var list).
fn exported_name(name: &str) -> Option<&'static str> {
    match name {
        "RFC2822_DATE" => Some("RFC2822_DATE"),
        "dialed_extension" => Some("dialed_extension"),
        _ => None,
    }
}

fn blank(uuid: &str, name: &str, direction: Direction, user: &str) -> Channel {
    Channel {
        uuid: uuid.to_owned(),
        name: name.to_owned(),
        direction,
        running: CsState::New,
        state: CsState::New,
        callstate: CallState::Down,
        answered: false,
        early: false,
        down: false,
        hangup_cause: None,
        codec: None,
        read_codec: None,
        profile: None,
        hit_dialplan: false,
        other: None,
        vars: Vars::default(),
        user: user.to_owned(),
        peer: None,
        bridge_a: false,
        activity: Activity::Normal,
        application: None,
        last_app: None,
        presence_count: 0,
        holds: Vec::new(),
        killed: false,
    }
}
