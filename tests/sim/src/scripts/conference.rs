//! Conferences (capture 06): `conference <room>-<domain>@default`, with
//! `conference::maintenance` events: `conference-create` (size 0),
//! `add-member` (size after joining), `floor-change` for the first member,
//! `del-member` (size after leaving) and `conference-destroy` once empty.
//! Member events carry the channel's basic data but no variables; the
//! announcements (`play-file`, `play-file-done`) and the room's presence go
//! out where the captured box sent them.

use crate::channel::Activity;
use crate::error::SimError;
use crate::features::{Conference, Member};
use crate::sofia;
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

use super::conference_events::{ALONE, ENTER, EXIT, MOH};

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
                presence_count: 0,
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
        self.codec(&c, crate::legs::CodecEv::Read);
        if first {
            self.conf_play(&name, ALONE);
        }
        self.member_event(&c, &name, id, "add-member", at::CONF_ADD);
        let conf_uuid = self
            .feat
            .confs
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.uuid.clone())
            .unwrap_or_default();
        let key = format!("conference_{name}_{}_{caller}", self.cfg.domain);
        self.with_chan(&c, |ch| {
            ch.vars.set("conference_name", name.clone());
            ch.vars.set("app_session_uuid", conf_uuid.clone());
            ch.vars.set("conference_member_id", id.to_string());
            ch.vars.set("conference_moderator", "false");
            ch.vars.set("conference_ghost", "false");
            ch.vars.set("conference_uuid", conf_uuid);
            ch.vars.set("conference_call_key", key);
            ch.vars.set("sip_to_tag", format!("{}T", &ch.uuid[..8]));
            ch.vars.set("sip_cseq", "2");
        });
        self.conf_presence(&name);
        if !first {
            let n = self
                .feat
                .confs
                .iter()
                .find(|x| x.name == name)
                .map_or(0, |x| x.members.len());
            if n == 2 {
                self.conf_play_done(&name, MOH, true, (1, 1740, 13_920));
            }
            self.conf_play_done(&name, ENTER, false, (0, 400, 3200));
        }
        if first {
            let mut pre = self.conf_headers(&name);
            pre.push(("Action", "floor-change".to_owned()));
            pre.push(("Old-ID", "none".to_owned()));
            pre.extend(self.conf_headers(&name));
            let (floor, mut post) = Self::member_flags(id, true);
            pre.extend(floor);
            post.push(("New-ID", id.to_string()));
            self.chan_fire(
                &c,
                "CUSTOM conference::maintenance",
                at::CONF_FLOOR,
                pre,
                false,
                post,
            );
        }
        Ok(MemberId {
            room: name,
            id,
            uuid: c,
        })
    }

    /// A member's leg hangs up: floor change when it held the floor,
    /// presence, `del-member` with the size after leaving, the read codec
    /// back to PCMU.
    pub(crate) fn conference_hangup(&mut self, uuid: &str, room: &str, id: u32) {
        let Some(conf) = self.feat.confs.iter_mut().find(|x| x.name == room) else {
            return;
        };
        let had_floor = conf.members.first().is_some_and(|m| m.id == id);
        conf.members.retain(|m| m.id != id);
        let left = conf.members.len();
        if had_floor {
            let next = conf
                .members
                .first()
                .map_or("none".to_owned(), |m| m.id.to_string());
            let extra = vec![("Old-ID", "none".to_owned()), ("New-ID", next)];
            self.conf_plain(room, "floor-change", at::CONF_FLOOR, extra);
        }
        self.conf_presence(room);
        if left == 1 {
            self.conf_play(room, ALONE);
        }
        self.member_event(uuid, room, id, "del-member", at::CONF_DEL);
        self.with_chan(uuid, |c| {
            c.read_codec = None;
            c.vars.remove("conference_call_key");
        });
        self.codec(uuid, crate::legs::CodecEv::Read);
        self.feat.conf_left.push(room.to_owned());
    }

    /// After a member's channel is gone: its exit sound; an empty
    /// conference is destroyed.
    pub(crate) fn conference_gc(&mut self) {
        for room in std::mem::take(&mut self.feat.conf_left) {
            let Some(n) = self
                .feat
                .confs
                .iter()
                .find(|c| c.name == room)
                .map(|c| c.members.len())
            else {
                continue;
            };
            if n > 0 {
                self.conf_play_done(&room, EXIT, false, (1, 1000, 8000));
                continue;
            }
            self.conf_presence(&room);
            self.conf_play_done(&room, MOH, true, (1, 1940, 15_520));
            self.conf_plain(&room, "conference-destroy", at::CONF_DESTROY, vec![]);
            self.feat.confs.retain(|c| c.name != room);
        }
    }
}
