//! mod_fifo (capture 08): `fifo <name> in` fires `push`; a consumer's
//! `fifo <name> out nowait` pops the oldest caller (`consumer_start`,
//! `caller_pop`, `consumer_pop`, the `*-start` bridge events) and bridges;
//! the bridge's end fires the `*-stop` events. A caller hanging up while
//! waiting fires `abort`.

use crate::channel::{Activity, OtherType, Profile};
use crate::error::SimError;
use crate::scripts::bridge::Via;
use crate::stamp;
use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

impl Core {
    fn fifo_event(&mut self, uuid: &str, name: &str, action: &str, origin: Origin, extra: Headers) {
        let mut post: Headers = vec![
            ("FIFO-Name", name.to_owned()),
            ("FIFO-Action", action.to_owned()),
        ];
        post.extend(extra);
        self.chan_fire(uuid, "CUSTOM fifo::info", origin, vec![], true, post);
    }

    /// FIFO name for `fifo` (`5900` -> `5900@domain`).
    pub fn fifo_name(&self, fifo: &str) -> String {
        if fifo.contains('@') {
            fifo.to_owned()
        } else {
            format!("{fifo}@{}", self.cfg.domain)
        }
    }

    /// `caller` dials 5900 and waits in FIFO `fifo`.
    pub fn fifo_push(&mut self, caller: &str, fifo: &str) -> Result<String, SimError> {
        let name = self.fifo_name(fifo);
        let c = self.new_inbound(caller, "5900")?;
        self.dialplan_preamble(&c, caller, "5900");
        self.exec_set(&c, "fifo_music", "local_stream://moh");
        self.early_media(&c, vec![]);
        let session = self
            .chan(&c)
            .and_then(|x| x.vars.get("session_id")?.parse().ok())
            .unwrap_or(0);
        self.set_vars(
            &c,
            vec![("rtp_local_sdp_str", crate::sofia::local_sdp(session))],
        );
        self.exec_start(&c, "fifo", &format!("{name} in"));
        self.mark_answered(&c);
        let now_us = stamp::now_us();
        let now = stamp::secs(now_us);
        let fifo = self.feat.fifo_mut(&name);
        fifo.callers.push((c.clone(), caller.to_owned(), now));
        let position = fifo.callers.len();
        self.with_chan(&c, |ch| {
            ch.activity = Activity::Fifo { name: name.clone() };
            ch.vars.set("sip_to_tag", format!("{}T", &ch.uuid[..8]));
            ch.vars.set("sip_cseq", "2");
        });
        self.fifo_event(
            &c,
            &name,
            "push",
            at::FIFO_PUSH,
            vec![("FIFO-Slot", "0".to_owned())],
        );
        self.fifo_presence(&name);
        self.set_vars(
            &c,
            vec![
                ("fifo_position", position.to_string()),
                ("fifo_priority", "0".to_owned()),
                ("fifo_status", "WAITING".to_owned()),
                ("fifo_timestamp", stamp::local(now_us)),
                ("fifo_push_timestamp", stamp::local(now_us)),
            ],
        );
        self.playback_start(&c);
        Ok(c)
    }

    /// `consumer` dials 5901 (`fifo <name> out nowait`) and is bridged to
    /// the oldest caller; returns the consumer's leg.
    pub fn fifo_pop(&mut self, consumer: &str, fifo: &str) -> Result<String, SimError> {
        let name = self.fifo_name(fifo);
        let k = self.new_inbound(consumer, "5901")?;
        self.dialplan_preamble(&k, consumer, "5901");
        self.exec_answer_acked(&k);
        self.exec_start(&k, "fifo", &format!("{name} out nowait"));
        let caller = self
            .feat
            .fifo_mut(&name)
            .callers
            .first()
            .map(|c| c.0.clone());
        let Some(c) = caller else {
            self.hangup_single(&k, "NORMAL_CLEARING");
            return Err(SimError::Nothing(format!("pop from {name}")));
        };
        let now_us = stamp::now_us();
        self.fifo_event(&k, &name, "consumer_start", at::FIFO_CONSUMER_START, vec![]);
        self.fifo_event(&c, &name, "caller_pop", at::FIFO_CALLER_POP, vec![]);
        self.set_vars(
            &k,
            vec![
                ("fifo_status", "WAITING".to_owned()),
                ("fifo_timestamp", stamp::local(now_us)),
            ],
        );
        self.fifo_event(
            &k,
            &name,
            "consumer_pop",
            at::FIFO_CONSUMER_POP,
            vec![("FIFO-Caller-UUID", c.clone())],
        );
        self.set_vars(
            &c,
            vec![
                ("fifo_serviced_by", k.clone()),
                ("fifo_serviced_uuid", k.clone()),
            ],
        );
        self.playback_stop(&c, "done");
        self.feat.fifo_mut(&name).callers.retain(|x| x.0 != c);
        self.with_chan(&c, |ch| ch.activity = Activity::Normal);
        self.exec_done(&c);
        self.state(
            &c,
            crate::channel::CsState::Hibernate,
            crate::channel::CsState::Hibernate,
        );
        self.fifo_presence(&name);
        let epoch = stamp::secs(now_us).to_string();
        let (cp, kp) = (
            self.chan(&c).and_then(|x| x.profile.clone()),
            self.chan(&k).and_then(|x| x.profile.clone()),
        );
        self.with_chan(&k, |ch| {
            ch.activity = Activity::FifoConsumer {
                name: name.clone(),
                caller: c.clone(),
            };
            ch.vars.set("fifo_target", c.clone());
            ch.vars.set("fifo_epoch_start_bridge", epoch.clone());
            ch.vars.set("fifo_role", "consumer");
            ch.other = cp.map(|p| (OtherType::Originatee, Profile { index: None, ..p }));
        });
        let onhook = vec![("FIFO-Type", "onhook".to_owned())];
        self.fifo_event(
            &k,
            &name,
            "channel-consumer-start",
            at::FIFO_CHANNEL_CONSUMER_START,
            onhook,
        );
        self.fifo_event(
            &k,
            &name,
            "bridge-consumer-start",
            at::FIFO_BRIDGE_CONSUMER_START,
            vec![],
        );
        self.with_chan(&c, |ch| {
            ch.vars.set("fifo_epoch_start_bridge", epoch.clone());
            ch.vars.set("fifo_target", k.clone());
            ch.vars.set("fifo_role", "caller");
            if let (Some(p), Some(kp)) = (ch.profile.as_mut(), kp.as_ref()) {
                p.callee_name = kp.cid_name.clone();
                p.callee_number = kp.cid_number.clone();
            }
            ch.other = kp.map(|p| (OtherType::Originator, Profile { index: None, ..p }));
        });
        self.fifo_event(
            &c,
            &name,
            "bridge-caller-start",
            at::FIFO_BRIDGE_CALLER_START,
            vec![],
        );
        self.bridge_as(&k, &c, Via::Fifo);
        Ok(k)
    }

    /// mod_fifo's `send_presence` for a FIFO.
    fn fifo_presence(&mut self, name: &str) {
        let n = self.feat.fifo_mut(name).callers.len();
        let origin = Origin {
            file: "mod_fifo.c",
            func: "send_presence",
            line: 2239,
        };
        let mut ev = self.event("PRESENCE_IN", origin);
        ev.push("proto", "queue");
        ev.push("login", name);
        ev.push("from", name);
        if n > 0 {
            ev.push("force-status", format!("Active ({n} waiting)"));
        } else {
            ev.push("force-status", "Idle");
        }
        ev.push("rpid", "unknown");
        ev.push("event_type", "presence");
        ev.push("alt_event_type", "dialog");
        ev.push("event_count", "0");
        ev.push(
            "channel-state",
            if n > 0 { "CS_ROUTING" } else { "CS_HANGUP" },
        );
        ev.push("unique-id", name);
        ev.push(
            "answer-state",
            if n > 0 { "confirmed" } else { "terminated" },
        );
        ev.push("presence-call-direction", "inbound");
        self.fire(ev);
    }

    /// A waiting FIFO caller hangs up.
    pub(crate) fn fifo_abort(&mut self, uuid: &str, name: &str) {
        self.playback_stop(uuid, "break");
        self.feat.fifo_mut(name).callers.retain(|x| x.0 != uuid);
        self.fifo_event(uuid, name, "abort", at::FIFO_ABORT, vec![]);
    }

    /// A FIFO bridge ends (either side hung up).
    pub(crate) fn fifo_bridge_end(&mut self, consumer: &str, caller: &str, name: &str) {
        let now = stamp::now_us();
        let start = self
            .chan(consumer)
            .and_then(|c| c.profile.as_ref())
            .map_or(now, |p| p.times.bridged);
        let talk = now - start;
        let times = |prefix: &'static [&'static str; 3], us: i64| -> Headers {
            vec![
                (prefix[0], us.to_string()),
                (prefix[1], (us / 1000).to_string()),
                (prefix[2], (us / 1_000_000).to_string()),
            ]
        };
        let mut stop = vec![("FIFO-Type", "onhook".to_owned())];
        stop.extend(times(
            &[
                "FIFO-Consumer-Bridge-Time-us",
                "FIFO-Consumer-Bridge-Time-ms",
                "FIFO-Consumer-Bridge-Time-s",
            ],
            start,
        ));
        stop.extend(times(
            &[
                "FIFO-Consumer-Talk-Time-us",
                "FIFO-Consumer-Talk-Time-ms",
                "FIFO-Consumer-Talk-Time-s",
            ],
            talk,
        ));
        stop.extend(times(
            &[
                "FIFO-Consumer-Hold-Time-us",
                "FIFO-Consumer-Hold-Time-ms",
                "FIFO-Consumer-Hold-Time-s",
            ],
            0,
        ));
        self.fifo_event(
            consumer,
            name,
            "channel-consumer-stop",
            at::FIFO_CHANNEL_CONSUMER_STOP,
            stop,
        );
        self.fifo_event(
            consumer,
            name,
            "bridge-consumer-stop",
            at::FIFO_BRIDGE_CONSUMER_STOP,
            vec![],
        );
        let mut caller_stop = times(
            &[
                "FIFO-Caller-Talk-Time-us",
                "FIFO-Caller-Talk-Time-ms",
                "FIFO-Caller-Talk-Time-s",
            ],
            talk,
        );
        caller_stop.extend(times(
            &[
                "FIFO-Caller-Hold-Time-us",
                "FIFO-Caller-Hold-Time-ms",
                "FIFO-Caller-Hold-Time-s",
            ],
            0,
        ));
        self.fifo_event(
            caller,
            name,
            "bridge-caller-stop",
            at::FIFO_BRIDGE_CALLER_STOP,
            caller_stop,
        );
        self.fifo_presence(name);
        let bridge = vec![
            ("fifo_epoch_stop_bridge", stamp::secs(now).to_string()),
            ("fifo_bridge_seconds", (talk / 1_000_000).to_string()),
        ];
        self.set_vars(consumer, bridge.clone());
        self.fifo_event(
            consumer,
            name,
            "consumer_stop",
            at::FIFO_CONSUMER_STOP,
            vec![],
        );
        self.set_vars(caller, bridge);
    }
}
