//! Dialplan applications on a channel: CHANNEL_EXECUTE /
//! CHANNEL_EXECUTE_COMPLETE around the application's effect, with the
//! `current_application*` variables moved as `switch_core_session_exec`
//! moves them, plus answering and early media.

use crate::channel::{App, CallState, CsState};
use crate::legs::{CodecEv, PresenceFrom};
use crate::sofia;
use crate::stamp;
use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

impl Core {
    /// Starts an application: sets `current_application(_data)` and fires
    /// CHANNEL_EXECUTE. Long-running ones (bridge, park) complete later.
    pub fn exec_start(&mut self, uuid: &str, app: &str, data: &str) {
        let app_uuid = stamp::uuid();
        self.with_chan(uuid, |c| {
            c.vars.set("current_application", app);
            if data.is_empty() {
                c.vars.remove("current_application_data");
            } else {
                c.vars.set("current_application_data", data);
            }
            c.vars.remove("current_application_response");
            c.last_app = Some((app.to_owned(), data.to_owned()));
            c.application = Some(App {
                name: app.to_owned(),
                data: data.to_owned(),
                uuid: Some(app_uuid.clone()),
            });
        });
        let post = app_headers(app, data, None, Some(&app_uuid));
        self.chan_fire(uuid, "CHANNEL_EXECUTE", at::EXECUTE, vec![], true, post);
        self.with_chan(uuid, |c| c.vars.set("current_application", app));
    }

    /// Completes the running application: CHANNEL_EXECUTE_COMPLETE.
    pub fn exec_done(&mut self, uuid: &str) {
        let Some(app) = self.chan_mut(uuid).and_then(|c| c.application.take()) else {
            return;
        };
        let resp = self
            .chan(uuid)
            .and_then(|c| c.vars.get("current_application_response"))
            .unwrap_or("_none_")
            .to_owned();
        let post = app_headers(&app.name, &app.data, Some(&resp), app.uuid.as_deref());
        self.chan_fire(
            uuid,
            "CHANNEL_EXECUTE_COMPLETE",
            at::EXECUTE_COMPLETE,
            vec![],
            true,
            post,
        );
    }

    /// Runs a short application: EXECUTE, its effect, EXECUTE_COMPLETE.
    pub fn exec(&mut self, uuid: &str, app: &str, data: &str, effect: impl FnOnce(&mut Core)) {
        self.exec_start(uuid, app, data);
        effect(self);
        self.exec_done(uuid);
    }

    /// `set name=value`: the variable is set by the application.
    pub fn exec_set(&mut self, uuid: &str, name: &'static str, value: &str) {
        let data = format!("{name}={value}");
        self.exec(uuid, "set", &data, |core| {
            core.set_vars(uuid, vec![(name, value.to_owned())]);
        });
    }

    /// A `uuid_bridge` soft execute (no Application-UUID, no COMPLETE).
    pub fn soft_execute(&mut self, uuid: &str, other: &str, origin: Origin) {
        self.with_chan(uuid, |c| c.running = CsState::SoftExecute);
        let post = app_headers("uuid_bridge", other, None, None);
        self.chan_fire(uuid, "CHANNEL_EXECUTE", origin, vec![], true, post);
    }

    /// Early media on an inbound leg (ringback or `answer`'s pre-answer):
    /// CODEC x2, CHANNEL_PROGRESS_MEDIA, callstate EARLY.
    pub fn early_media(&mut self, uuid: &str, extra: Vec<(&'static str, String)>) {
        let now = stamp::now_us();
        self.codec(uuid, CodecEv::RealRead);
        self.codec(uuid, CodecEv::Write);
        let session = self.session_of(uuid);
        self.with_chan(uuid, |c| {
            c.early = true;
            c.vars.extend(extra);
            c.vars.extend(sofia::media(session));
            if let Some(p) = c.profile.as_mut() {
                p.times.progress_media = now;
            }
        });
        self.chan_fire(
            uuid,
            "CHANNEL_PROGRESS_MEDIA",
            at::PROGRESS_MEDIA,
            vec![],
            true,
            vec![],
        );
        self.callstate(uuid, CallState::Early);
    }

    /// Marks a leg answered: CHANNEL_ANSWER, presence `active`, callstate ACTIVE.
    pub fn mark_answered(&mut self, uuid: &str) {
        let now = stamp::now_us();
        let session = self.session_of(uuid);
        self.with_chan(uuid, |c| {
            c.answered = true;
            if c.vars.get("rtp_use_codec_name").is_none() {
                c.vars.extend(sofia::media(session));
            }
            if c.direction == crate::channel::Direction::Inbound {
                c.vars.set("rtp_local_sdp_str", sofia::local_sdp(session));
            }
            if c.direction == crate::channel::Direction::Inbound {
                c.vars.set("endpoint_disposition", "ANSWER");
            } else {
                // The phone's 200 OK carries its SDP.
                c.vars.set("switch_r_sdp", sofia::local_sdp(session + 1));
                c.vars
                    .set("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b");
            }
            if let Some(p) = c.profile.as_mut() {
                p.times.answered = now;
            }
        });
        self.chan_fire(uuid, "CHANNEL_ANSWER", at::ANSWER, vec![], true, vec![]);
        self.presence(uuid, PresenceFrom::Answered, "active");
        self.callstate(uuid, CallState::Active);
    }

    /// The `answer` application on an inbound leg.
    pub fn exec_answer(&mut self, uuid: &str) {
        self.exec(uuid, "answer", "", |core| {
            core.early_media(uuid, vec![]);
            core.mark_answered(uuid);
        });
    }

    /// `answer` where the phone's ACK (a To-tag, CSeq 2) is in before the
    /// application completes, as captures 07 and 08 show.
    pub fn exec_answer_acked(&mut self, uuid: &str) {
        self.exec(uuid, "answer", "", |core| {
            core.early_media(uuid, vec![]);
            core.mark_answered(uuid);
            core.with_chan(uuid, |c| {
                c.vars.set("sip_to_tag", format!("{}T", &c.uuid[..8]));
                c.vars.set("sip_cseq", "2");
            });
        });
    }

    /// Generic channel event with variables and extra trailing headers.
    pub fn chan_event(&mut self, uuid: &str, name: &str, origin: Origin, post: Headers) {
        self.chan_fire(uuid, name, origin, vec![], true, post);
    }

    fn session_of(&self, uuid: &str) -> u64 {
        self.chan(uuid)
            .and_then(|c| c.vars.get("session_id"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

fn app_headers(app: &str, data: &str, resp: Option<&str>, app_uuid: Option<&str>) -> Headers {
    let mut h: Headers = vec![("Application", app.to_owned())];
    if !data.is_empty() {
        h.push(("Application-Data", data.to_owned()));
    }
    if let Some(r) = resp {
        h.push(("Application-Response", r.to_owned()));
    }
    if let Some(u) = app_uuid {
        h.push(("Application-UUID", u.to_owned()));
    }
    h
}
