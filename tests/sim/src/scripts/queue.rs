//! Queues (captures 07, 08). mod_callcenter: `callcenter <queue>` fires
//! `callcenter::info` `member-queue-start` and `members-count`; a caller
//! who hangs up while waiting ends with `member-queue-end` (`CC-Cause:
//! Cancel`). mod_fifo: `fifo <name> in` fires `push`; a consumer's
//! `fifo <name> out nowait` pops the oldest caller (`consumer_start`,
//! `caller_pop`, `consumer_pop`, the `*-start` bridge events) and the
//! bridge's end fires the `*-stop` events.

use crate::channel::Activity;
use crate::error::SimError;
use crate::features::CcMember;
use crate::stamp;
use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

impl Core {
    fn cc_member_headers(&self, uuid: &str) -> Headers {
        let Some(m) = self.feat.cc.members.iter().find(|m| m.session_uuid == uuid) else {
            return vec![];
        };
        vec![
            ("CC-Member-UUID", m.member_uuid.clone()),
            ("CC-Member-Session-UUID", m.session_uuid.clone()),
            ("CC-Member-CID-Name", m.cid.clone()),
            ("CC-Member-CID-Number", m.cid.clone()),
        ]
    }

    fn cc_count(&mut self, queue: &str) {
        let n = self.feat.cc.members.iter().filter(|m| m.queue == queue).count();
        let mut ev = self.custom("callcenter::info", at::CC_MEMBERS_COUNT);
        ev.push("CC-Queue", queue);
        ev.push("CC-Action", "members-count");
        ev.push("CC-Count", n.to_string());
        ev.push("CC-Selection", "Single-Queue");
        self.fire(ev);
    }

    /// `caller` dials 7001 and waits in call-center `queue`.
    pub fn callcenter_enter(&mut self, caller: &str, queue: &str) -> Result<String, SimError> {
        if !self.feat.cc.queues.iter().any(|q| q == queue) {
            return Err(SimError::NoSuchCall(format!("queue {queue}")));
        }
        let c = self.new_inbound(caller, "7001")?;
        self.dialplan_preamble(&c, caller, "7001");
        self.exec_answer(&c);
        self.exec_start(&c, "callcenter", queue);
        let now = stamp::secs(stamp::now_us());
        self.feat.cc.members.push(CcMember {
            queue: queue.to_owned(),
            member_uuid: stamp::uuid(),
            session_uuid: c.clone(),
            cid: caller.to_owned(),
            joined: now,
            agent: None,
            bridged: 0,
        });
        self.with_chan(&c, |ch| {
            ch.activity = Activity::CallCenter {
                queue: queue.to_owned(),
            };
        });
        let mut post: Headers = vec![
            ("CC-Queue", queue.to_owned()),
            ("CC-Action", "member-queue-start".to_owned()),
        ];
        post.extend(self.cc_member_headers(&c));
        self.chan_fire(&c, "CUSTOM callcenter::info", at::CC_MEMBER_START, vec![], true, post);
        self.cc_count(queue);
        self.playback(&c, true);
        Ok(c)
    }

    /// A waiting call-center caller hangs up (abandons).
    pub(crate) fn cc_hangup(&mut self, uuid: &str, queue: &str) {
        self.playback(uuid, false);
        let joined = self
            .feat
            .cc
            .members
            .iter()
            .find(|m| m.session_uuid == uuid)
            .map_or(0, |m| m.joined);
        let mut post: Headers = vec![
            ("CC-Queue", queue.to_owned()),
            ("CC-Action", "member-queue-end".to_owned()),
            ("CC-Member-Leaving-Time", stamp::secs(stamp::now_us()).to_string()),
            ("CC-Member-Joined-Time", joined.to_string()),
            ("CC-Cause", "Cancel".to_owned()),
            ("CC-Cancel-Reason", "BREAK_OUT".to_owned()),
        ];
        post.extend(self.cc_member_headers(uuid));
        self.chan_fire(uuid, "CUSTOM callcenter::info", at::CC_MEMBER_END, vec![], true, post);
        self.feat.cc.members.retain(|m| m.session_uuid != uuid);
        self.cc_count(queue);
    }

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
        self.exec_start(&c, "fifo", &format!("{name} in"));
        self.mark_answered(&c);
        let now = stamp::secs(stamp::now_us());
        self.feat
            .fifo_mut(&name)
            .callers
            .push((c.clone(), caller.to_owned(), now));
        self.with_chan(&c, |ch| ch.activity = Activity::Fifo { name: name.clone() });
        self.fifo_event(&c, &name, "push", at::FIFO_PUSH, vec![("FIFO-Slot", "0".to_owned())]);
        self.playback(&c, true);
        Ok(c)
    }

    /// `consumer` dials 5901 (`fifo <name> out nowait`) and is bridged to
    /// the oldest caller; returns the consumer's leg.
    pub fn fifo_pop(&mut self, consumer: &str, fifo: &str) -> Result<String, SimError> {
        let name = self.fifo_name(fifo);
        let k = self.new_inbound(consumer, "5901")?;
        self.dialplan_preamble(&k, consumer, "5901");
        self.exec_answer(&k);
        self.exec_start(&k, "fifo", &format!("{name} out nowait"));
        let caller = self.feat.fifo_mut(&name).callers.first().map(|c| c.0.clone());
        let Some(c) = caller else {
            self.hangup_single(&k, "NORMAL_CLEARING");
            return Err(SimError::Nothing(format!("pop from {name}")));
        };
        self.fifo_event(&k, &name, "consumer_start", at::FIFO_CONSUMER_START, vec![]);
        self.fifo_event(&c, &name, "caller_pop", at::FIFO_CALLER_POP, vec![]);
        self.fifo_event(&k, &name, "consumer_pop", at::FIFO_CONSUMER_POP, vec![("FIFO-Caller-UUID", c.clone())]);
        self.playback(&c, false);
        self.feat.fifo_mut(&name).callers.retain(|x| x.0 != c);
        self.with_chan(&c, |ch| ch.activity = Activity::Normal);
        self.exec_done(&c);
        self.with_chan(&k, |ch| {
            ch.activity = Activity::FifoConsumer {
                name: name.clone(),
                caller: c.clone(),
            };
        });
        let onhook = vec![("FIFO-Type", "onhook".to_owned())];
        self.fifo_event(&k, &name, "channel-consumer-start", at::FIFO_CHANNEL_CONSUMER_START, onhook);
        self.fifo_event(&k, &name, "bridge-consumer-start", at::FIFO_BRIDGE_CONSUMER_START, vec![]);
        self.fifo_event(&c, &name, "bridge-caller-start", at::FIFO_BRIDGE_CALLER_START, vec![]);
        self.bridge(&k, &c, false);
        Ok(k)
    }

    /// A waiting FIFO caller hangs up.
    pub(crate) fn fifo_abort(&mut self, uuid: &str, name: &str) {
        self.playback(uuid, false);
        self.feat.fifo_mut(name).callers.retain(|x| x.0 != uuid);
        self.fifo_event(uuid, name, "abort", at::FIFO_ABORT, vec![]);
    }

    /// A FIFO bridge ends (either side hung up).
    pub(crate) fn fifo_bridge_end(&mut self, consumer: &str, caller: &str, name: &str) {
        let onhook = vec![("FIFO-Type", "onhook".to_owned())];
        self.fifo_event(consumer, name, "channel-consumer-stop", at::FIFO_CHANNEL_CONSUMER_STOP, onhook);
        self.fifo_event(consumer, name, "bridge-consumer-stop", at::FIFO_BRIDGE_CONSUMER_STOP, vec![]);
        self.fifo_event(caller, name, "bridge-caller-stop", at::FIFO_BRIDGE_CALLER_STOP, vec![]);
        self.fifo_event(consumer, name, "consumer_stop", at::FIFO_CONSUMER_STOP, vec![]);
    }
}
