//! Conferences (capture 06): `conference <room>-<domain>@default`, with
//! `conference::maintenance` events: `conference-create` (size 0),
//! `add-member` (size after joining), `floor-change` for the first member,
//! `del-member` (size after leaving) and `conference-destroy` once empty.
//! Member events carry the channel's basic data but no variables.
//! (`play-file` / `play-file-done` announcements are not simulated.)

use crate::channel::Activity;
use crate::error::SimError;
use crate::features::{Conference, Member};
use crate::sofia;
use crate::stamp;
use crate::state::{Core, Headers};
use crate::templates::at;

/// A conference member, as returned by [`Core::conference_join`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberId {
    /// Full conference name (`3000-127.0.0.1`).
    pub room: String,
    /// `Member-ID`.
    pub id: u32,
    /// The member's channel uuid.
    pub uuid: String,
}

impl Core {
    fn conf_headers(&self, room: &str) -> Headers {
        let Some(c) = self.feat.confs.iter().find(|c| c.name == room) else {
            return vec![];
        };
        vec![
            ("Conference-Name", c.name.clone()),
            ("Conference-Domain", self.cfg.domain.clone()),
            ("Conference-Size", c.members.len().to_string()),
            ("Conference-Ghosts", "0".to_owned()),
            ("Conference-Profile-Name", "default".to_owned()),
            ("Conference-Unique-ID", c.uuid.clone()),
        ]
    }

    fn member_flags(id: u32, floor: bool) -> (Headers, Headers) {
        let pre = vec![("Floor", floor.to_string())];
        let post = vec![
            ("Video", "false".to_owned()),
            ("Hear", "true".to_owned()),
            ("See", "true".to_owned()),
            ("Speak", "true".to_owned()),
            ("Talking", "false".to_owned()),
            ("Mute-Detect", "false".to_owned()),
            ("Hold", "false".to_owned()),
            ("Member-ID", id.to_string()),
            ("Member-Type", "member".to_owned()),
            ("Member-Ghost", "false".to_owned()),
            ("Energy-Level", "100".to_owned()),
            ("Current-Energy", "0".to_owned()),
        ];
        (pre, post)
    }

    fn conf_plain(&mut self, room: &str, action: &str, origin: crate::templates::Origin, extra: Headers) {
        let headers = self.conf_headers(room);
        let mut ev = self.custom("conference::maintenance", origin);
        for (k, v) in headers {
            ev.push(k, v);
        }
        ev.push("Action", action);
        for (k, v) in extra {
            ev.push(k, v);
        }
        self.fire(ev);
    }

    fn member_event(&mut self, uuid: &str, room: &str, id: u32, action: &str, origin: crate::templates::Origin) {
        let mut pre = self.conf_headers(room);
        let (floor, mut post) = Self::member_flags(id, false);
        pre.extend(floor);
        post.push(("Action", action.to_owned()));
        self.chan_fire(uuid, "CUSTOM conference::maintenance", origin, pre, false, post);
    }

    /// `caller` dials `room` and joins conference `room-domain`.
    pub fn conference_join(&mut self, caller: &str, room: &str) -> Result<MemberId, SimError> {
        let c = self.new_inbound(caller, room)?;
        self.dialplan_preamble(&c, caller, room);
        self.exec_answer(&c);
        let name = format!("{room}-{}", self.cfg.domain);
        self.exec_start(&c, "conference", &format!("{name}@default"));
        if !self.feat.confs.iter().any(|x| x.name == name) {
            self.feat.confs.push(Conference {
                name: name.clone(),
                uuid: stamp::uuid(),
                created: stamp::secs(stamp::now_us()),
                members: Vec::new(),
                last_id: 0,
            });
            self.conf_plain(&name, "conference-create", at::CONF_CREATE, vec![]);
        }
        let chan_name = self.chan(&c).map(|x| x.name.clone()).unwrap_or_default();
        let Some(conf) = self.feat.confs.iter_mut().find(|x| x.name == name) else {
            return Err(SimError::NoSuchCall(name));
        };
        conf.last_id += 1;
        let id = conf.last_id;
        let first = conf.members.is_empty();
        conf.members.push(Member {
            id,
            uuid: c.clone(),
            channel: chan_name,
            cid: caller.to_owned(),
            joined: stamp::secs(stamp::now_us()),
        });
        self.with_chan(&c, |ch| {
            ch.read_codec = Some(sofia::CONF_READ_CODEC);
            ch.activity = Activity::Conference {
                room: name.clone(),
                member: id,
            };
        });
        self.member_event(&c, &name, id, "add-member", at::CONF_ADD);
        if first {
            let mut pre = self.conf_headers(&name);
            pre.push(("Action", "floor-change".to_owned()));
            pre.push(("Old-ID", "none".to_owned()));
            pre.extend(self.conf_headers(&name));
            let (floor, mut post) = Self::member_flags(id, true);
            pre.extend(floor);
            post.push(("New-ID", id.to_string()));
            self.chan_fire(&c, "CUSTOM conference::maintenance", at::CONF_FLOOR, pre, false, post);
        }
        Ok(MemberId { room: name, id, uuid: c })
    }

    /// A member's leg hangs up: floor change when it held the floor, then
    /// `del-member` with the size after leaving.
    pub(crate) fn conference_hangup(&mut self, uuid: &str, room: &str, id: u32) {
        let Some(conf) = self.feat.confs.iter_mut().find(|x| x.name == room) else {
            return;
        };
        let had_floor = conf.members.first().is_some_and(|m| m.id == id);
        conf.members.retain(|m| m.id != id);
        if had_floor {
            let extra = vec![("Old-ID", "none".to_owned()), ("New-ID", "none".to_owned())];
            self.conf_plain(room, "floor-change", at::CONF_FLOOR, extra);
        }
        self.member_event(uuid, room, id, "del-member", at::CONF_DEL);
    }

    /// Destroys conferences left without members.
    pub(crate) fn conference_gc(&mut self) {
        let empty: Vec<String> = self
            .feat
            .confs
            .iter()
            .filter(|c| c.members.is_empty())
            .map(|c| c.name.clone())
            .collect();
        for name in empty {
            self.conf_plain(&name, "conference-destroy", at::CONF_DESTROY, vec![]);
            self.feat.confs.retain(|c| c.name != name);
        }
    }
}
