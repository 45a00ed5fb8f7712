//! Building blocks every scripted call is made of: state and call-state
//! changes, presence and codec events on an existing leg. Each fires the
//! same events, with the same headers, as the FreeSWITCH function named in
//! its doc.

use crate::channel::{CallState, Channel, CsState};
use crate::sofia;
use crate::state::Core;
use crate::templates::at;

/// Where a PRESENCE_IN comes from (its `Presence-Calling-*` headers).
#[derive(Clone, Copy, Debug)]
pub enum PresenceFrom {
    /// `check_presence` in the state machine: status is the state name.
    StateMachine,
    /// `switch_channel_perform_mark_answered`: status `answered`.
    Answered,
    /// `switch_core_media_toggle_hold` putting the call on hold.
    Hold,
    /// `switch_core_media_toggle_hold` resuming it.
    Unhold,
}

/// Which CODEC event (`switch_core_session_set_*_codec`).
#[derive(Clone, Copy, Debug)]
pub enum CodecEv {
    /// `set_real_read_codec`.
    RealRead,
    /// `set_write_codec`.
    Write,
    /// `set_read_codec`.
    Read,
}

impl Core {
    /// Mutates a channel if it exists.
    pub fn with_chan(&mut self, uuid: &str, f: impl FnOnce(&mut Channel)) {
        if let Some(c) = self.chan_mut(uuid) {
            f(c);
        }
    }

    /// Sets channel variables in order.
    pub fn set_vars(&mut self, uuid: &str, vars: Vec<(&'static str, String)>) {
        self.with_chan(uuid, |c| c.vars.extend(vars));
    }

    /// Changes state and fires CHANNEL_STATE (`switch_channel_perform_set_running_state`).
    pub fn state(&mut self, uuid: &str, running: CsState, state: CsState) {
        self.with_chan(uuid, |c| c.set_state(running, state));
        self.chan_fire(uuid, "CHANNEL_STATE", at::STATE, vec![], false, vec![]);
    }

    /// Changes call state and fires CHANNEL_CALLSTATE (no variables, as captured).
    pub fn callstate(&mut self, uuid: &str, to: CallState) {
        let Some(from) = self.chan(uuid).map(|c| c.callstate) else {
            return;
        };
        self.with_chan(uuid, |c| c.callstate = to);
        let pre = vec![
            ("Original-Channel-Call-State", from.name().to_owned()),
            ("Channel-Call-State-Number", to.number().to_string()),
        ];
        self.chan_fire(uuid, "CHANNEL_CALLSTATE", at::CALLSTATE, pre, false, vec![]);
    }

    /// Fires PRESENCE_IN for a channel (`switch_channel_perform_presence`).
    pub fn presence(&mut self, uuid: &str, from: PresenceFrom, info: &str) {
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let (status, file, func, line) = match from {
            PresenceFrom::StateMachine => (
                c.running.name(),
                "src/switch_core_state_machine.c",
                "check_presence",
                "521",
            ),
            PresenceFrom::Answered => (
                "answered",
                "src/switch_channel.c",
                "switch_channel_perform_mark_answered",
                "3904",
            ),
            PresenceFrom::Hold => (
                "hold",
                "src/switch_core_media.c",
                "switch_core_media_toggle_hold",
                "6494",
            ),
            PresenceFrom::Unhold => (
                "unhold",
                "src/switch_core_media.c",
                "switch_core_media_toggle_hold",
                "6604",
            ),
        };
        let post = vec![
            ("proto", "any".to_owned()),
            ("login", "src/switch_channel.c".to_owned()),
            (
                "from",
                c.vars.get("presence_id").unwrap_or_default().to_owned(),
            ),
            ("rpid", "unknown".to_owned()),
            ("status", status.to_owned()),
            ("event_type", "presence".to_owned()),
            ("alt_event_type", "dialog".to_owned()),
            ("presence-call-info-state", info.to_owned()),
            ("presence-call-direction", c.direction.name().to_owned()),
            ("event_count", c.presence_count.to_string()),
            ("Presence-Calling-File", file.to_owned()),
            ("Presence-Calling-Function", func.to_owned()),
            ("Presence-Calling-Line", line.to_owned()),
        ];
        self.chan_fire(uuid, "PRESENCE_IN", at::PRESENCE, vec![], false, post);
        self.with_chan(uuid, |c| c.presence_count += 1);
    }

    /// Fires a CODEC event; the first one also sets the channel's codecs.
    pub fn codec(&mut self, uuid: &str, which: CodecEv) {
        self.with_chan(uuid, |c| {
            c.codec.get_or_insert(sofia::CODEC);
        });
        let Some(c) = self.chan(uuid) else {
            return;
        };
        let (name, bits) = c.read_codec.or(c.codec).unwrap_or(sofia::CODEC);
        let (origin, post) = match which {
            CodecEv::RealRead | CodecEv::Read => (
                if matches!(which, CodecEv::Read) {
                    at::CODEC_READ
                } else {
                    at::CODEC_REAL_READ
                },
                vec![
                    ("channel-read-codec-name", name.to_owned()),
                    ("channel-read-codec-rate", "8000".to_owned()),
                    ("channel-read-codec-bit-rate", bits.to_string()),
                ],
            ),
            CodecEv::Write => (
                at::CODEC_WRITE,
                vec![
                    ("Channel-Write-Codec-Name", sofia::CODEC.0.to_owned()),
                    ("Channel-Write-Codec-Rate", "8000".to_owned()),
                    // Lowercase `codec-bit-rate`: a FreeSWITCH typo, as captured.
                    ("Channel-Write-codec-bit-rate", sofia::CODEC.1.to_string()),
                ],
            ),
        };
        self.chan_fire(uuid, "CODEC", origin, vec![], false, post);
    }
}
