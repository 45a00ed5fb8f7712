//! One FreeSWITCH channel (a call leg) as the model keeps it: only the
//! fields that decide what is published, refreshed from every event that
//! names the channel.

use super::facts::Facts;

/// Internal id of a call (calls are renamed and merged, so their published
/// uuid cannot be the map key).
pub(crate) type CallId = u64;

/// Membership of a channel in a conference or a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Membership {
    /// The name as FreeSWITCH gives it (`3000-127.0.0.1`, `support@default`).
    pub name: String,
    /// Domain the event named, used when the call's own domain is unknown
    /// (`Conference-Domain`).
    pub domain_hint: Option<String>,
}

/// A channel.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub uuid: String,
    pub call: CallId,
    /// `Caller-Channel-Created-Time`, in microseconds (orders the legs).
    pub created_us: u64,
    /// `Call-Direction: outbound`: a leg the box placed (B-leg, originate).
    pub outbound: bool,
    pub answered_ms: Option<u64>,
    /// Last seen as early media (183) and not answered.
    pub early: bool,
    /// `CHANNEL_HANGUP` seen (it lingers until `HANGUP_COMPLETE`).
    pub hungup: bool,
    pub bridged: bool,
    pub held: bool,
    /// Parked by the `park` application (valet parking is `valet`).
    pub parked: bool,
    pub caller: String,
    pub dest: String,
    pub ext: Option<String>,
    pub group: Option<String>,
    pub caller_group: Option<String>,
    pub user: Option<String>,
    pub domain_name: Option<String>,
    pub dialed_domain: Option<String>,
    pub sip_call_id: Option<String>,
    /// Valet lot and slot, while parked there.
    pub valet: Option<(String, String)>,
    pub room: Option<Membership>,
    pub queue: Option<Membership>,
    /// Its user's group membership was already considered.
    pub member_checked: bool,
}

fn set_opt(slot: &mut Option<String>, v: Option<&str>) -> bool {
    match v {
        Some(v) if slot.as_deref() != Some(v) => {
            *slot = Some(v.to_owned());
            true
        }
        _ => false,
    }
}

fn set_str(slot: &mut String, v: Option<&str>) -> bool {
    match v {
        Some(v) if slot != v => {
            v.clone_into(slot);
            true
        }
        _ => false,
    }
}

fn set_flag(slot: &mut bool, v: bool) -> bool {
    let changed = *slot != v;
    *slot = v;
    changed
}

impl Channel {
    /// A new channel of call `call`, from the event that revealed it.
    pub fn new(uuid: &str, call: CallId, f: &Facts<'_>, now_ms: u64) -> Self {
        Channel {
            uuid: uuid.to_owned(),
            call,
            created_us: f
                .created_us
                .filter(|t| *t > 0)
                .unwrap_or(now_ms.saturating_mul(1000)),
            outbound: f.direction == Some("outbound"),
            answered_ms: None,
            early: false,
            hungup: false,
            bridged: false,
            held: false,
            parked: false,
            caller: String::new(),
            dest: String::new(),
            ext: None,
            group: None,
            caller_group: None,
            user: None,
            domain_name: None,
            dialed_domain: None,
            sip_call_id: None,
            valet: None,
            room: None,
            queue: None,
            member_checked: false,
        }
    }

    /// Published creation time.
    pub fn created_ms(&self) -> u64 {
        self.created_us / 1000
    }

    /// Not yet hung up.
    pub fn alive(&self) -> bool {
        !self.hungup
    }

    /// A leg the box is still trying to reach: what ringing means.
    pub fn is_ringing_callee(&self) -> bool {
        self.outbound && self.alive() && self.answered_ms.is_none()
    }

    /// Applies what `f` says about this channel. Returns true when a field
    /// that can change the published image changed.
    pub fn update(&mut self, f: &Facts<'_>, now_ms: u64) -> bool {
        let mut changed = false;
        let answered = f.answer_state == Some("answered")
            || matches!(f.call_state, Some("ACTIVE" | "HELD" | "UNHELD"))
            || f.name == "CHANNEL_ANSWER";
        if answered && self.answered_ms.is_none() {
            let at = f.answered_us.filter(|t| *t > 0).map(|t| t / 1000);
            self.answered_ms = Some(at.unwrap_or(now_ms));
            changed = true;
        }
        if f.answer_state.is_some() || f.call_state.is_some() {
            let early = f.answer_state == Some("early") || f.call_state == Some("EARLY");
            changed |= set_flag(&mut self.early, early && self.answered_ms.is_none());
        }
        if (f.is_ending() || f.name == "CHANNEL_HANGUP") && !self.hungup {
            self.hungup = true;
            changed = true;
        }
        match f.call_state {
            Some("HELD") => changed |= set_flag(&mut self.held, true),
            Some("ACTIVE" | "UNHELD") => changed |= set_flag(&mut self.held, false),
            _ => {}
        }
        match f.name {
            "CHANNEL_HOLD" => changed |= set_flag(&mut self.held, true),
            "CHANNEL_UNHOLD" => changed |= set_flag(&mut self.held, false),
            // `park` runs from its CHANNEL_EXECUTE on: a snapshot taken
            // before CHANNEL_PARK already says `current_application=park`.
            "CHANNEL_PARK" => changed |= set_flag(&mut self.parked, true),
            "CHANNEL_EXECUTE" if f.application == Some("park") => {
                changed |= set_flag(&mut self.parked, true);
            }
            "CHANNEL_UNPARK" => changed |= set_flag(&mut self.parked, false),
            "CHANNEL_BRIDGE" => changed |= set_flag(&mut self.bridged, true),
            "CHANNEL_UNBRIDGE" => changed |= set_flag(&mut self.bridged, false),
            "CHANNEL_DATA" => {
                // A snapshot (`uuid_dump`) has no PARK/BRIDGE history: read
                // the state it implies.
                let parked = f.vars.current_application == Some("park");
                changed |= set_flag(&mut self.parked, parked);
                changed |= set_flag(&mut self.bridged, f.vars.bridge_to.is_some());
            }
            _ => {}
        }
        changed |= set_str(&mut self.caller, f.caller());
        changed |= set_str(&mut self.dest, f.dest);
        let v = &f.vars;
        changed |= set_opt(&mut self.ext, v.ext);
        changed |= set_opt(&mut self.group, v.group);
        let domain = set_opt(&mut self.domain_name, v.domain_name);
        changed |= domain;
        changed |= set_opt(&mut self.dialed_domain, v.dialed_domain);
        changed |= set_opt(&mut self.sip_call_id, v.sip_call_id);
        // Not published directly (only learnt as group membership).
        let group = set_opt(&mut self.caller_group, v.caller_group);
        let user = set_opt(&mut self.user, v.user_name);
        if domain || group || user {
            self.member_checked = false;
        }
        changed
    }
}
