//! The vanilla default dialplan as the captures show it executing: the
//! common preamble (`set open=true`, the default-password warnings, the
//! `spymap`/`last_dial` hash inserts, `RFC2822_DATE`) and `Local_Extension`
//! up to its `bridge`, including the pickup keys
//! `${domain_name}-last_dial_ext/{ext|callgroup|global}` that `*8` and
//! `**EXT` read back.

use crate::config::Directory;
use crate::stamp;
use crate::state::Core;

/// Where the vanilla dialplan sends a dialled number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `Local_Extension`: a directory user.
    User(String),
    /// `*8`: group intercept.
    GroupPickup,
    /// `**EXT`: directed intercept.
    ExtPickup(String),
    /// `6xxx`: valet park / retrieve in `valet_parking_lot`.
    Valet(String),
    /// `3xxx`: conference `NNNN-domain@default`.
    Conference(String),
    /// `7001`: `callcenter support@default` (the captured box's extra).
    CallCenter,
    /// `5900`: `fifo 5900@domain in`.
    FifoIn,
    /// `5901`: `fifo 5900@domain out nowait`.
    FifoOut,
    /// `9196`: vanilla `echo` (answered on the box; a standard call that
    /// stays local).
    Echo,
    /// Anything else.
    Unknown,
}

/// Routes a destination like the vanilla dialplan.
pub fn route(dest: &str, dir: &Directory) -> Route {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if dest == "*8" {
        return Route::GroupPickup;
    }
    if let Some(ext) = dest.strip_prefix("**").filter(|e| digits(e)) {
        return Route::ExtPickup(ext.to_owned());
    }
    if dir.get(dest).is_some() {
        return Route::User(dest.to_owned());
    }
    match dest {
        "7001" => Route::CallCenter,
        "5900" => Route::FifoIn,
        "5901" => Route::FifoOut,
        "9196" => Route::Echo,
        _ if dest.len() == 4 && dest.starts_with('6') && digits(dest) => {
            Route::Valet(dest.to_owned())
        }
        _ if dest.len() == 4 && dest.starts_with('3') && digits(dest) => {
            Route::Conference(dest.to_owned())
        }
        _ => Route::Unknown,
    }
}

const WARNING: &str =
    "CRIT WARNING WARNING WARNING WARNING WARNING WARNING WARNING WARNING WARNING ";

impl Core {
    /// Fires the `API` event of an api call (`API-Command-Argument` only
    /// when there is an argument).
    pub fn api_event(&mut self, cmd: &str, arg: Option<&str>) {
        let mut ev = self.event("API", crate::templates::at::API);
        ev.push("API-Command", cmd);
        if let Some(a) = arg.filter(|a| !a.is_empty()) {
            ev.push("API-Command-Argument", a);
        }
        self.fire(ev);
    }

    /// `hash insert/realm/key/value` as a dialplan application.
    pub fn exec_hash_insert(&mut self, uuid: &str, realm: &str, key: &str, value: &str) {
        let data = format!("insert/{realm}/{key}/{value}");
        self.exec(uuid, "hash", &data, |core| {
            core.feat
                .hash
                .insert(format!("{realm}/{key}"), value.to_owned());
        });
    }

    /// The dialplan's first steps for `caller` dialling `dest`.
    pub fn dialplan_preamble(&mut self, uuid: &str, caller: &str, dest: &str) {
        let digits = dest.bytes().all(|b| b.is_ascii_digit());
        // DP_MATCH holds the regex captures: numeric extensions `^(\d+)$`
        // and `^\*\*(\d+)$` capture, `^\*8$` does not.
        let capture = if digits {
            Some(dest)
        } else {
            dest.strip_prefix("**")
        };
        if let Some(cap) = capture {
            self.set_vars(uuid, vec![("DP_MATCH", format!("ARRAY::{dest}|:{cap}"))]);
        }
        self.exec_set(uuid, "open", "true");
        if !digits {
            return;
        }
        for line in [
            WARNING.to_owned(),
            "CRIT Open /etc/freeswitch/vars.xml and change the default_password.".to_owned(),
            "CRIT Once changed type 'reloadxml' at the console.".to_owned(),
            WARNING.to_owned(),
        ] {
            self.exec(uuid, "log", &line, |_| {});
        }
        let domain = self.cfg.domain.clone();
        self.exec_hash_insert(uuid, &format!("{domain}-spymap"), caller, uuid);
        self.exec_hash_insert(uuid, &format!("{domain}-last_dial"), caller, dest);
        self.exec_hash_insert(uuid, &format!("{domain}-last_dial"), "global", uuid);
        self.api_event("strftime", Some("%a, %d %b %Y %T %z"));
        let date = stamp::rfc2822(stamp::now_us());
        self.exec_export(uuid, "RFC2822_DATE", &date);
    }

    /// `export name=value` (also records the name in `export_vars`).
    pub fn exec_export(&mut self, uuid: &str, name: &'static str, value: &str) {
        let data = format!("{name}={value}");
        self.exec(uuid, "export", &data, |core| {
            core.with_chan(uuid, |c| {
                c.vars.set(name, value);
                let list = match c.vars.get("export_vars") {
                    Some(l) if !l.split(',').any(|n| n == name) => format!("{l},{name}"),
                    Some(l) => l.to_owned(),
                    None => name.to_owned(),
                };
                c.vars.set("export_vars", list);
            });
        });
    }

    /// `Local_Extension` up to `bridge`; returns the callee's callgroup.
    pub fn local_extension(&mut self, uuid: &str, caller: &str, dest: &str) -> Option<String> {
        let domain = self.cfg.domain.clone();
        self.exec_export(uuid, "dialed_extension", dest);
        self.exec(
            uuid,
            "bind_meta_app",
            "1 b s execute_extension::dx XML features",
            |_| {},
        );
        self.api_event("strftime", Some("%Y-%m-%d-%H-%M-%S"));
        let rec = format!(
            "2 b s record_session::/var/lib/freeswitch/recordings/{caller}.{}.wav",
            stamp::dashed(stamp::now_us())
        );
        self.exec(uuid, "bind_meta_app", &rec, |_| {});
        self.exec(
            uuid,
            "bind_meta_app",
            "3 b s execute_extension::cf XML features",
            |_| {},
        );
        self.exec(
            uuid,
            "bind_meta_app",
            "4 b s execute_extension::att_xfer XML features",
            |_| {},
        );
        self.exec_set(uuid, "ringback", "%(2000,4000,440,480)");
        self.exec_set(uuid, "transfer_ringback", "local_stream://moh");
        self.exec_set(uuid, "call_timeout", "30");
        self.exec_set(uuid, "hangup_after_bridge", "true");
        self.exec_set(uuid, "continue_on_fail", "true");
        self.exec_hash_insert(uuid, &format!("{domain}-call_return"), dest, caller);
        let ext_realm = format!("{domain}-last_dial_ext");
        self.exec_hash_insert(uuid, &ext_realm, dest, uuid);
        self.api_event("user_data", Some(&format!("{dest}@{domain} var callgroup")));
        let group = self.cfg.directory.callgroup(dest).map(str::to_owned);
        self.exec_set(
            uuid,
            "called_party_callgroup",
            group.as_deref().unwrap_or_default(),
        );
        self.exec_hash_insert(uuid, &ext_realm, group.as_deref().unwrap_or_default(), uuid);
        self.exec_hash_insert(uuid, &ext_realm, "global", uuid);
        self.exec_hash_insert(
            uuid,
            &format!("{domain}-last_dial"),
            group.as_deref().unwrap_or_default(),
            uuid,
        );
        group
    }
}

impl Core {
    /// `9196`: the vanilla echo test: an inbound leg from `caller`,
    /// answered, running `echo` until hung up. Returns the leg.
    pub fn echo(&mut self, caller: &str) -> Result<String, crate::error::SimError> {
        let c = self.new_inbound(caller, "9196")?;
        self.dialplan_preamble(&c, caller, "9196");
        self.exec_answer(&c);
        self.exec_start(&c, "echo", "");
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_vanilla() {
        let d = Directory::vanilla();
        assert_eq!(route("1001", &d), Route::User("1001".into()));
        assert_eq!(route("*8", &d), Route::GroupPickup);
        assert_eq!(route("**1001", &d), Route::ExtPickup("1001".into()));
        assert_eq!(route("6001", &d), Route::Valet("6001".into()));
        assert_eq!(route("3000", &d), Route::Conference("3000".into()));
        assert_eq!(route("5900", &d), Route::FifoIn);
        assert_eq!(route("9999", &d), Route::Unknown);
    }
}
