//! Creating legs: an inbound leg from a phone (through authentication and
//! routing into the dialplan) and an outbound leg the box places, each
//! announced with the events FreeSWITCH fires while setting them up.

use crate::channel::{
    Activity, CallState, Channel, CsState, Direction, OtherType, Profile, Times, Vars,
};
use crate::error::SimError;
use crate::legs::PresenceFrom;
use crate::sofia::{self, BoxId};
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

impl Core {
    /// An inbound leg from `user` dialling `dest`, authenticated and routed
    /// into the dialplan: CS_NEW, the digest-auth sofia events, CS_INIT,
    /// CHANNEL_CREATE, RINGING, CS_ROUTING, presence, CS_EXECUTE.
    pub fn new_inbound(&mut self, user: &str, dest: &str) -> Result<String, SimError> {
        let NewLeg { uuid, now, session } = self.new_leg(user)?;
        let host = self.cfg.from_host().to_owned();
        let name = format!("sofia/internal/{user}@{host}");
        self.chans
            .push(blank(&uuid, &name, Direction::Inbound, user));
        self.state(&uuid, CsState::New, CsState::New);
        let sip = self.next_sip.take();
        let call_id = match &sip {
            Some(s) => s.call_id.clone(),
            None => format!("{session}-{}@{host}", sofia::phone_port(user)),
        };
        self.invite_auth_events(user, dest, &call_id);
        let b = BoxId {
            cfg: &self.cfg,
            core_uuid: &self.core_uuid,
        };
        let mut vars = sofia::inbound(&b, &uuid, user, dest, session, &call_id, now);
        if let Some(s) = &sip {
            for (k, v) in &mut vars {
                match *k {
                    "sip_network_ip" | "sip_received_ip" => *v = s.source.ip().to_string(),
                    "sip_network_port" | "sip_received_port" => *v = s.source.port().to_string(),
                    _ => {}
                }
            }
        }
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
            ..sofia_profile(&uuid, &name, now)
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
        let NewLeg { uuid, now, session } = self.new_leg(user)?;
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
            ..sofia_profile(&uuid, &name, now)
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

    /// What every new leg starts from, once `user` is known and the box has
    /// room (FreeSWITCH refuses past `max-sessions` before any event).
    fn new_leg(&mut self, user: &str) -> Result<NewLeg, SimError> {
        if self.cfg.directory.get(user).is_none() {
            return Err(SimError::NoSuchUser(user.to_owned()));
        }
        self.check_capacity()?;
        Ok(NewLeg {
            uuid: stamp::uuid(),
            now: stamp::now_us(),
            session: self.next_session(),
        })
    }

    fn check_capacity(&self) -> Result<(), SimError> {
        if self.session_count() >= u64::from(self.cfg.max_sessions) {
            return Err(SimError::Capacity(self.cfg.max_sessions));
        }
        Ok(())
    }
}

/// The SIP INVITE an inbound leg answers (set on [`Core::next_sip`] by
/// the SIP side just before the script that creates the leg).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipLeg {
    /// Its Call-ID (`sip_call_id`).
    pub call_id: String,
    /// Where it came from (`sip_network_ip` / `sip_network_port`).
    pub source: std::net::SocketAddr,
}

/// A leg's identity, creation time and session number.
struct NewLeg {
    uuid: String,
    now: i64,
    session: u64,
}

/// The profile fields every new sofia leg starts with, whichever way it
/// goes.
fn sofia_profile(uuid: &str, name: &str, now: i64) -> Profile {
    Profile {
        uuid: uuid.into(),
        source: "mod_sofia".into(),
        context: "default".into(),
        chan_name: name.into(),
        index: Some(1),
        times: Times {
            profile_created: now,
            created: now,
            ..Times::default()
        },
        ..Profile::default()
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
