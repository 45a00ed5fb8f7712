//! One pass over an event's headers, keeping only what the model reads.
//!
//! A channel event carries ~200 headers and `Event::get` scans them all, so
//! looking up twenty names one by one would cost more than the rest of the
//! model together. [`Facts::read`] walks the headers once. Like `Event::get`
//! the first occurrence of a header wins (duplicates exist: `Conference-Name`,
//! `Hangup-Cause`), and like `Event::var` empty variables count as absent.

use locus_esl::Event;

use super::ModelConfig;

/// Channel variables the model tracks (`variable_<name>`, non-empty).
#[derive(Debug, Default)]
pub(crate) struct Vars<'a> {
    /// `cfg.ext_var` (`dialed_extension`).
    pub ext: Option<&'a str>,
    /// `cfg.group_var` (`called_party_callgroup`).
    pub group: Option<&'a str>,
    /// `cfg.caller_group_var` (`callgroup`).
    pub caller_group: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub domain_name: Option<&'a str>,
    pub dialed_domain: Option<&'a str>,
    pub sip_call_id: Option<&'a str>,
    pub originator: Option<&'a str>,
    pub bridge_to: Option<&'a str>,
    pub current_application: Option<&'a str>,
}

/// What one event says, as borrowed strings.
#[derive(Debug, Default)]
pub(crate) struct Facts<'a> {
    pub name: &'a str,
    pub subclass: Option<&'a str>,
    pub uuid: Option<&'a str>,
    pub call_state: Option<&'a str>,
    pub answer_state: Option<&'a str>,
    pub channel_state: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub call_uuid: Option<&'a str>,
    pub other_leg: Option<&'a str>,
    pub bridge_a: Option<&'a str>,
    pub bridge_b: Option<&'a str>,
    pub created_us: Option<u64>,
    pub answered_us: Option<u64>,
    pub caller_num: Option<&'a str>,
    pub orig_caller_num: Option<&'a str>,
    pub dest: Option<&'a str>,
    /// `Application` of `CHANNEL_EXECUTE`.
    pub application: Option<&'a str>,
    /// True when at least one `variable_*` header was present.
    pub has_vars: bool,
    pub vars: Vars<'a>,
    // CUSTOM valet / conference / callcenter / fifo.
    pub action: Option<&'a str>,
    pub valet_lot: Option<&'a str>,
    pub valet_ext: Option<&'a str>,
    pub conf_name: Option<&'a str>,
    pub conf_domain: Option<&'a str>,
    pub cc_action: Option<&'a str>,
    pub cc_queue: Option<&'a str>,
    pub cc_member: Option<&'a str>,
    pub fifo_action: Option<&'a str>,
    pub fifo_name: Option<&'a str>,
    pub fifo_caller: Option<&'a str>,
    // CUSTOM sofia::* (lowercase headers plus the user's directory variables).
    pub from_user: Option<&'a str>,
    pub from_host: Option<&'a str>,
    pub user: Option<&'a str>,
    pub host: Option<&'a str>,
    pub dir_domain: Option<&'a str>,
    pub dir_user: Option<&'a str>,
    pub dir_caller_group: Option<&'a str>,
    pub reg_call_id: Option<&'a str>,
    pub reg_contact: Option<&'a str>,
    pub reg_profile: Option<&'a str>,
    // HEARTBEAT.
    pub max_sessions: Option<&'a str>,
    pub sps: Option<&'a str>,
    pub sps_last: Option<&'a str>,
    pub idle_cpu: Option<&'a str>,
    pub version: Option<&'a str>,
}

fn keep<'a>(slot: &mut Option<&'a str>, v: &'a str) {
    if slot.is_none() && !v.is_empty() {
        *slot = Some(v);
    }
}

fn keep_num(slot: &mut Option<u64>, v: &str) {
    if slot.is_none() {
        *slot = v.parse().ok();
    }
}

impl<'a> Facts<'a> {
    /// Reads the headers of `ev` in one pass.
    pub fn read(ev: &'a Event, cfg: &ModelConfig) -> Self {
        let mut f = Facts::default();
        let mut name = None;
        for (k, v) in ev.headers() {
            if let Some(var) = k.strip_prefix("variable_") {
                f.has_vars = true;
                f.read_var(var, v, cfg);
                continue;
            }
            match k {
                "Event-Name" => keep(&mut name, v),
                "Event-Subclass" => keep(&mut f.subclass, v),
                "Unique-ID" => keep(&mut f.uuid, v),
                "Channel-Call-State" => keep(&mut f.call_state, v),
                "Answer-State" => keep(&mut f.answer_state, v),
                "Channel-State" => keep(&mut f.channel_state, v),
                "Call-Direction" => keep(&mut f.direction, v),
                "Channel-Call-UUID" => keep(&mut f.call_uuid, v),
                "Other-Leg-Unique-ID" => keep(&mut f.other_leg, v),
                "Bridge-A-Unique-ID" => keep(&mut f.bridge_a, v),
                "Bridge-B-Unique-ID" => keep(&mut f.bridge_b, v),
                "Caller-Channel-Created-Time" => keep_num(&mut f.created_us, v),
                "Caller-Channel-Answered-Time" => keep_num(&mut f.answered_us, v),
                "Caller-Caller-ID-Number" => keep(&mut f.caller_num, v),
                "Caller-Orig-Caller-ID-Number" => keep(&mut f.orig_caller_num, v),
                "Caller-Destination-Number" => keep(&mut f.dest, v),
                "Application" => keep(&mut f.application, v),
                "Action" => keep(&mut f.action, v),
                "Valet-Lot-Name" => keep(&mut f.valet_lot, v),
                "Valet-Extension" => keep(&mut f.valet_ext, v),
                "Conference-Name" => keep(&mut f.conf_name, v),
                "Conference-Domain" => keep(&mut f.conf_domain, v),
                "CC-Action" => keep(&mut f.cc_action, v),
                "CC-Queue" => keep(&mut f.cc_queue, v),
                "CC-Member-Session-UUID" => keep(&mut f.cc_member, v),
                "FIFO-Action" => keep(&mut f.fifo_action, v),
                "FIFO-Name" => keep(&mut f.fifo_name, v),
                "FIFO-Caller-UUID" => keep(&mut f.fifo_caller, v),
                "from-user" => keep(&mut f.from_user, v),
                "from-host" => keep(&mut f.from_host, v),
                "user" => keep(&mut f.user, v),
                "call-id" => keep(&mut f.reg_call_id, v),
                "contact" => keep(&mut f.reg_contact, v),
                "profile-name" => keep(&mut f.reg_profile, v),
                "host" => keep(&mut f.host, v),
                "domain_name" => keep(&mut f.dir_domain, v),
                "user_name" => keep(&mut f.dir_user, v),
                "Max-Sessions" => keep(&mut f.max_sessions, v),
                "Session-Per-Sec" => keep(&mut f.sps, v),
                "Session-Per-Sec-Last" => keep(&mut f.sps_last, v),
                "Idle-CPU" => keep(&mut f.idle_cpu, v),
                "FreeSWITCH-Version" => keep(&mut f.version, v),
                _ => {
                    if k == cfg.caller_group_var {
                        keep(&mut f.dir_caller_group, v);
                    }
                }
            }
        }
        f.name = name.unwrap_or("");
        f
    }

    fn read_var(&mut self, var: &str, v: &'a str, cfg: &ModelConfig) {
        let vars = &mut self.vars;
        // The configured names may coincide with each other or with the
        // fixed ones, so every match is checked.
        if var == cfg.ext_var {
            keep(&mut vars.ext, v);
        }
        if var == cfg.group_var {
            keep(&mut vars.group, v);
        }
        if var == cfg.caller_group_var {
            keep(&mut vars.caller_group, v);
        }
        match var {
            "user_name" => keep(&mut vars.user_name, v),
            "domain_name" => keep(&mut vars.domain_name, v),
            "dialed_domain" => keep(&mut vars.dialed_domain, v),
            "sip_call_id" => keep(&mut vars.sip_call_id, v),
            "originator" => keep(&mut vars.originator, v),
            "bridge_to" => keep(&mut vars.bridge_to, v),
            "current_application" => keep(&mut vars.current_application, v),
            _ => {}
        }
    }

    /// The caller's number: the original one, since FreeSWITCH rewrites
    /// `Caller-Caller-ID-Number` on the A-leg after an intercept.
    pub fn caller(&self) -> Option<&'a str> {
        self.orig_caller_num.or(self.caller_num)
    }

    /// True when the channel this event describes is hanging up or gone.
    /// Such events (a `CHANNEL_STATE` after `CHANNEL_DESTROY`, a
    /// `callcenter::info` after hangup) must not bring a channel back.
    pub fn is_ending(&self) -> bool {
        self.answer_state == Some("hangup")
            || self.call_state == Some("HANGUP")
            || matches!(
                self.channel_state,
                Some("CS_HANGUP" | "CS_REPORTING" | "CS_DESTROY")
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_nonempty_wins_and_vars_use_config_names() {
        let mut ev = Event::new("CHANNEL_EXECUTE");
        ev.push("Unique-ID", "u1");
        ev.push("Conference-Name", "a");
        ev.push("Conference-Name", "b");
        ev.push("variable_ext", "");
        ev.push("variable_ext", "1001");
        ev.push("variable_dialed_extension", "9999");
        ev.push("Caller-Channel-Created-Time", "garbage");
        let cfg = ModelConfig {
            ext_var: "ext".into(),
            ..ModelConfig::default()
        };
        let f = Facts::read(&ev, &cfg);
        assert_eq!(f.name, "CHANNEL_EXECUTE");
        assert_eq!(f.conf_name, Some("a"));
        assert_eq!(f.vars.ext, Some("1001"));
        assert_eq!(f.created_us, None);
        assert!(f.has_vars);
    }

    #[test]
    fn ending_states() {
        let mut ev = Event::new("CHANNEL_STATE");
        ev.push("Channel-State", "CS_DESTROY");
        assert!(Facts::read(&ev, &ModelConfig::default()).is_ending());
        let ev = Event::new("CHANNEL_STATE");
        assert!(!Facts::read(&ev, &ModelConfig::default()).is_ending());
    }
}
