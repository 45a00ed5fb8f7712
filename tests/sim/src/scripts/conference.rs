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
use crate::state::{Core, Headers};
use crate::templates::at;

const ALONE: &str = "/usr/share/freeswitch/sounds/en/us/callie/conference/conf-alone.wav";
const MOH: &str = "local_stream://moh";
const ENTER: &str = "tone_stream://%(200,0,500,600,700)";
const EXIT: &str = "tone_stream://%(500,0,300,200,100,50,25)";

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

    fn conf_plain(
        &mut self,
        room: &str,
        action: &str,
        origin: crate::templates::Origin,
        extra: Headers,
    ) {
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

    fn member_event(
        &mut self,
        uuid: &str,
        room: &str,
        id: u32,
        action: &str,
        origin: crate::templates::Origin,
    ) {
        let mut pre = self.conf_headers(room);
        let (floor, mut post) = Self::member_flags(id, false);
        pre.extend(floor);
        post.push(("Action", action.to_owned()));
        self.chan_fire(
            uuid,
            "CUSTOM conference::maintenance",
            origin,
            pre,
            false,
            post,
        );
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

    /// `conference_send_presence`: the room's BLF state.
    fn conf_presence(&mut self, room: &str) {
        let domain = self.cfg.domain.clone();
        let Some(conf) = self.feat.confs.iter_mut().find(|c| c.name == room) else {
            return;
        };
        let n = conf.members.len();
        let count = conf.presence_count;
        conf.presence_count += 1;
        let origin = crate::templates::Origin {
            file: "mod_conference.c",
            func: "conference_send_presence",
            line: 3870,
        };
        let mut ev = self.event("PRESENCE_IN", origin);
        ev.push("proto", "conf");
        ev.push("login", room);
        ev.push("from", format!("{room}@{domain}"));
        ev.push("event_type", "presence");
        ev.push("alt_event_type", "dialog");
        ev.push("event_count", count.to_string());
        ev.push("unique-id", room);
        if n == 0 {
            ev.push("force-status", "Inactive");
            ev.push("channel-state", "CS_HANGUP");
            ev.push("answer-state", "terminated");
            ev.push("call-direction", "inbound");
        } else {
            ev.push(
                "force-status",
                format!("Active ({n} caller{})", if n == 1 { "" } else { "s" }),
            );
            ev.push("channel-state", "CS_ROUTING");
            ev.push("answer-state", if n == 1 { "early" } else { "confirmed" });
            ev.push(
                "presence-call-direction",
                if n == 1 { "outbound" } else { "inbound" },
            );
        }
        self.fire(ev);
    }

    /// `play-file` (the simulated box has no sound files, as the captured
    /// one had not: FreeSWITCH reports the error and goes on).
    fn conf_play(&mut self, room: &str, file: &str) {
        let extra = vec![
            ("File", file.to_owned()),
            ("Async", "false".to_owned()),
            ("Error", "File could not be played".to_owned()),
        ];
        self.conf_plain(room, "play-file", at::CONF_PLAY, extra);
    }

    /// `play-file-done` with the played length.
    fn conf_play_done(&mut self, room: &str, file: &str, is_async: bool, len: (u32, u32, u32)) {
        let headers = self.conf_headers(room);
        let mut ev = self.custom("conference::maintenance", at::CONF_PLAY_DONE);
        for (k, v) in headers {
            ev.push(k, v);
        }
        ev.push("seconds", len.0.to_string());
        ev.push("milliseconds", len.1.to_string());
        ev.push("samples", len.2.to_string());
        ev.push("Action", "play-file-done");
        ev.push("File", file);
        if is_async {
            ev.push("Async", "true");
        }
        self.fire(ev);
    }
}
