//! The `conference::maintenance` events and the room's presence, with the
//! headers capture 06 shows (member events: conference headers, `Floor`,
//! the channel's basic data, the member flags).

use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

pub(crate) const ALONE: &str =
    "/usr/share/freeswitch/sounds/en/us/callie/conference/conf-alone.wav";
pub(crate) const MOH: &str = "local_stream://moh";
pub(crate) const ENTER: &str = "tone_stream://%(200,0,500,600,700)";
pub(crate) const EXIT: &str = "tone_stream://%(500,0,300,200,100,50,25)";

impl Core {
    pub(crate) fn conf_headers(&self, room: &str) -> Headers {
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

    pub(crate) fn member_flags(id: u32, floor: bool) -> (Headers, Headers) {
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

    pub(crate) fn conf_plain(&mut self, room: &str, action: &str, origin: Origin, extra: Headers) {
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

    pub(crate) fn member_event(
        &mut self,
        uuid: &str,
        room: &str,
        id: u32,
        action: &str,
        origin: Origin,
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

    /// `conference_send_presence`: the room's BLF state.
    pub(crate) fn conf_presence(&mut self, room: &str) {
        let domain = self.cfg.domain.clone();
        let Some(conf) = self.feat.confs.iter_mut().find(|c| c.name == room) else {
            return;
        };
        let n = conf.members.len();
        let count = conf.presence_count;
        conf.presence_count += 1;
        let origin = Origin {
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
    pub(crate) fn conf_play(&mut self, room: &str, file: &str) {
        let extra = vec![
            ("File", file.to_owned()),
            ("Async", "false".to_owned()),
            ("Error", "File could not be played".to_owned()),
        ];
        self.conf_plain(room, "play-file", at::CONF_PLAY, extra);
    }

    /// `play-file-done` with the played length.
    pub(crate) fn conf_play_done(
        &mut self,
        room: &str,
        file: &str,
        is_async: bool,
        len: (u32, u32, u32),
    ) {
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
