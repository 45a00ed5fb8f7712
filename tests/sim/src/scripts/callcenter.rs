//! mod_callcenter (capture 07): `callcenter <queue>` fires
//! `callcenter::info` `member-queue-start` and `members-count`; a caller
//! who hangs up while waiting ends with `member-queue-end` (`CC-Cause:
//! Cancel`, `CC-Cancel-Reason: BREAK_OUT`). Agents are not simulated.

use crate::channel::Activity;
use crate::error::SimError;
use crate::features::CcMember;
use crate::stamp;
use crate::state::{Core, Headers};
use crate::templates::at;

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
        let n = self
            .feat
            .cc
            .members
            .iter()
            .filter(|m| m.queue == queue)
            .count();
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
        self.exec_answer_acked(&c);
        self.exec_start(&c, "callcenter", queue);
        let now = stamp::secs(stamp::now_us());
        let member_uuid = stamp::uuid();
        self.set_vars(
            &c,
            vec![
                ("cc_side", "member".to_owned()),
                ("cc_member_uuid", member_uuid.clone()),
                ("cc_queue", queue.to_owned()),
                ("cc_queue_joined_epoch", now.to_string()),
            ],
        );
        self.feat.cc.members.push(CcMember {
            queue: queue.to_owned(),
            member_uuid,
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
        self.chan_fire(
            &c,
            "CUSTOM callcenter::info",
            at::CC_MEMBER_START,
            vec![],
            true,
            post,
        );
        self.cc_count(queue);
        self.playback_start(&c);
        Ok(c)
    }

    /// A waiting call-center caller hangs up (abandons).
    pub(crate) fn cc_hangup(&mut self, uuid: &str, queue: &str) {
        self.playback_stop(uuid, "break");
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
            (
                "CC-Member-Leaving-Time",
                stamp::secs(stamp::now_us()).to_string(),
            ),
            ("CC-Member-Joined-Time", joined.to_string()),
            ("CC-Cause", "Cancel".to_owned()),
            ("CC-Cancel-Reason", "BREAK_OUT".to_owned()),
        ];
        post.extend(self.cc_member_headers(uuid));
        self.chan_fire(
            uuid,
            "CUSTOM callcenter::info",
            at::CC_MEMBER_END,
            vec![],
            true,
            post,
        );
        self.feat.cc.members.retain(|m| m.session_uuid != uuid);
        self.cc_count(queue);
    }
}
