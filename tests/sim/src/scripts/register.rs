//! Registrations (`sofia::register`, `sofia::unregister`, `sofia::expire`)
//! and the `pre_register` / `register_attempt` pair every digest-checked
//! request fires, INVITEs included (with the dialled number as `from-user`,
//! a trap the agent must not mistake for a registration).

use locus_esl::Event;

use crate::error::SimError;
use crate::features::Registration;
use crate::sofia::phone_port;
use crate::stamp;
use crate::state::Core;
use crate::templates::{at, directory_vars};

/// Default registration lifetime (seconds).
pub const EXPIRES: u32 = 3600;

/// Where a REGISTER really came from (the SIP side); without one the
/// scripts make up a phone address per user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Contact URI as registered (`sip:1000@127.0.0.1:5062`).
    pub contact: String,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// Source address of the packet (`network-ip`).
    pub ip: String,
    /// Source port of the packet (`network-port`).
    pub port: u16,
}

impl Core {
    /// The headers every sofia registration event (`(subclass, origin)`)
    /// starts with; `to_user` is the authenticating user (also the
    /// Contact's user).
    fn reg_common(
        &mut self,
        (sub, origin): (&str, crate::templates::Origin),
        from_user: &str,
        to_user: &str,
        call_id: &str,
        expires: u32,
        bind: Option<&Binding>,
    ) -> Event {
        // `force-register-domain`: the user is looked up in the domain
        // (capture 20 shows `from-host` = domain, `to-host` = From host).
        let domain = self.cfg.domain.clone();
        let host = self.cfg.from_host_name().to_owned();
        let contact_user = to_user;
        let port = phone_port(contact_user);
        let source_port = match self.cfg.from_host().rsplit_once(':') {
            Some((_, p)) if self.cfg.behind_proxy() => p.to_owned(),
            _ => port.to_string(),
        };
        let mut ev = self.custom(sub, origin);
        ev.push("profile-name", "internal");
        ev.push("from-user", from_user);
        ev.push("from-host", domain);
        let (contact, ip, source_port) = match bind {
            Some(b) => (
                format!("\"\" <{}>", b.contact),
                b.ip.clone(),
                b.port.to_string(),
            ),
            None => (
                format!("\"\" <sip:{contact_user}@127.0.0.1:{port}>"),
                "127.0.0.1".to_owned(),
                source_port,
            ),
        };
        ev.push("contact", contact);
        ev.push("call-id", call_id);
        ev.push("rpid", "unknown");
        ev.push("status", "Registered(UDP)");
        ev.push("expires", expires.to_string());
        ev.push("to-user", to_user);
        ev.push("to-host", host.as_str());
        ev.push("network-ip", ip);
        ev.push("network-port", source_port);
        ev
    }

    /// `sofia::pre_register` + `sofia::register_attempt` for a request from
    /// `user` to `to` (REGISTER: `to` = user; INVITE: the dialled number as
    /// `from-user`).
    pub fn auth_events(&mut self, from_user: &str, auth_user: &str, call_id: &str, expires: u32) {
        self.auth_events_at(from_user, auth_user, call_id, expires, None);
    }

    /// [`Core::auth_events`] for a request from a known address.
    fn auth_events_at(
        &mut self,
        from_user: &str,
        auth_user: &str,
        call_id: &str,
        expires: u32,
        bind: Option<&Binding>,
    ) {
        let domain = self.cfg.domain.clone();
        let mut ev = self.reg_common(
            ("sofia::pre_register", at::PRE_REGISTER),
            from_user,
            auth_user,
            call_id,
            expires,
            bind,
        );
        ev.push("user-agent", "locus-sim");
        self.fire(ev);
        let mut ev = self.reg_common(
            ("sofia::register_attempt", at::REGISTER_ATTEMPT),
            from_user,
            auth_user,
            call_id,
            expires,
            bind,
        );
        ev.push("username", auth_user);
        ev.push("realm", domain);
        ev.push("user-agent", "locus-sim");
        ev.push("auth-result", "RENEWED");
        self.fire(ev);
    }

    /// The auth events an INVITE from `user` for `dest` fires.
    pub fn invite_auth_events(&mut self, user: &str, dest: &str, call_id: &str) {
        self.auth_events(dest, user, call_id, 300);
    }

    /// A REGISTER from `user`: pre_register, register_attempt, register
    /// (with the directory variables, `callgroup` included), and for a new
    /// binding MESSAGE_QUERY.
    pub fn register(&mut self, user: &str, expires: u32) -> Result<(), SimError> {
        self.register_at(user, expires, None)
    }

    /// [`Core::register`] for a REGISTER that really arrived (`bind`).
    pub fn register_at(
        &mut self,
        user: &str,
        expires: u32,
        bind: Option<&Binding>,
    ) -> Result<(), SimError> {
        let callgroup = match self.cfg.directory.get(user) {
            Some(u) => u.callgroup.clone(),
            None => return Err(SimError::NoSuchUser(user.to_owned())),
        };
        let domain = self.cfg.domain.clone();
        let call_id = match bind {
            Some(b) => b.call_id.clone(),
            None => format!("reg-{user}-{}", &stamp::uuid()[..8]),
        };
        self.auth_events_at(user, user, &call_id, expires, bind);
        let host = self.cfg.from_host_name().to_owned();
        let mut ev = self.reg_common(
            ("sofia::register", at::REGISTER),
            user,
            user,
            &call_id,
            expires,
            bind,
        );
        // presence-hosts sits after from-host.
        let mut headers: Vec<(String, String)> = ev
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(i) = headers.iter().position(|(k, _)| k == "from-host") {
            headers.insert(i + 1, ("presence-hosts".into(), format!("{domain},{host}")));
        }
        ev = Event::default();
        for (k, v) in headers {
            ev.push(k, v);
        }
        ev.push("username", user);
        ev.push("realm", domain.as_str());
        ev.push("user-agent", "locus-sim");
        for (k, v) in directory_vars(user, &domain, callgroup.as_deref()) {
            ev.push(k, v);
        }
        self.fire(ev);
        let (contact, port) = match bind {
            Some(b) => (
                b.contact
                    .split_once('@')
                    .map_or(b.contact.as_str(), |(_, h)| h)
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                b.port,
            ),
            None => (format!("127.0.0.1:{}", phone_port(user)), phone_port(user)),
        };
        // sofia queries MWI for a new binding, not for a refresh.
        let new = !self.feat.regs.contains_key(user);
        self.feat.regs.insert(
            user.to_owned(),
            Registration {
                user: user.to_owned(),
                call_id: call_id.clone(),
                contact,
                network_port: port,
                expires,
                expires_at: stamp::secs(stamp::now_us()) + i64::from(expires),
            },
        );
        if new {
            let mut ev = self.event("MESSAGE_QUERY", at::MESSAGE_QUERY);
            ev.push("Message-Account", format!("sip:{user}@{domain}"));
            ev.push("VM-Sofia-Profile", "internal");
            ev.push("VM-Call-ID", call_id);
            self.fire(ev);
        }
        Ok(())
    }

    /// Removes `user`'s registration; ending one that does not exist is the
    /// caller's mistake, reported rather than ignored.
    fn take_registration(&mut self, user: &str) -> Result<Registration, SimError> {
        self.feat
            .regs
            .remove(user)
            .ok_or_else(|| SimError::NoSuchCall(format!("registration of {user}")))
    }

    /// A REGISTER with `Expires: 0`: pre_register, register_attempt,
    /// PRESENCE_IN Unregistered, unregister.
    pub fn unregister(&mut self, user: &str) -> Result<(), SimError> {
        let reg = self.take_registration(user)?;
        let domain = self.cfg.domain.clone();
        let host = self.cfg.from_host_name().to_owned();
        self.auth_events(user, user, &reg.call_id, 0);
        let mut ev = self.event("PRESENCE_IN", at::PRESENCE_REGISTER);
        ev.push("proto", "sip");
        ev.push("rpid", "unknown");
        ev.push("login", "sip:mod_sofia@127.0.0.1:5060");
        ev.push("user-agent", "locus-sim");
        ev.push("from", format!("{user}@{domain}"));
        ev.push("status", "Unregistered");
        ev.push("presence-source", "register");
        ev.push("event_type", "presence");
        self.fire(ev);
        let callgroup = self.cfg.directory.callgroup(user).map(str::to_owned);
        let mut ev = self.custom("sofia::unregister", at::UNREGISTER);
        ev.push("profile-name", "internal");
        ev.push("username", user);
        ev.push("from-user", user);
        ev.push("from-host", host.as_str());
        ev.push("contact", format!("\"\" <sip:{user}@{}>", reg.contact));
        ev.push("call-id", reg.call_id.as_str());
        ev.push("rpid", "unknown");
        ev.push("realm", domain.as_str());
        ev.push("network-ip", "127.0.0.1");
        ev.push("network-port", reg.network_port.to_string());
        ev.push("user-agent", "locus-sim");
        ev.push("expires", "0");
        for (k, v) in directory_vars(user, &domain, callgroup.as_deref()) {
            ev.push(k, v);
        }
        self.fire(ev);
        Ok(())
    }

    /// The registration lapses: `sofia::expire` (its `expires` is the epoch
    /// it lapsed at), then PRESENCE_IN Unregistered.
    pub fn expire(&mut self, user: &str) -> Result<(), SimError> {
        let reg = self.take_registration(user)?;
        let domain = self.cfg.domain.clone();
        let mut ev = self.custom("sofia::expire", at::EXPIRE);
        ev.push("profile-name", "internal");
        ev.push("call-id", reg.call_id.as_str());
        ev.push("user", user);
        ev.push("username", user);
        ev.push("host", domain.as_str());
        ev.push("contact", format!("\"\" <sip:{user}@{}>", reg.contact));
        ev.push("expires", reg.expires_at.to_string());
        ev.push("user-agent", "locus-sim");
        ev.push("realm", domain.as_str());
        ev.push("network-ip", "127.0.0.1");
        ev.push("network-port", reg.network_port.to_string());
        self.fire(ev);
        let mut ev = self.event("PRESENCE_IN", at::PRESENCE_EXPIRE);
        ev.push("proto", "sip");
        ev.push("rpid", "away");
        ev.push("login", "sip:mod_sofia@127.0.0.1:5060");
        ev.push("user-agent", "Registered(UDP)");
        ev.push("from", format!("{user}@{domain}"));
        ev.push("status", "Unregistered");
        ev.push("event_type", "presence");
        self.fire(ev);
        Ok(())
    }
}
