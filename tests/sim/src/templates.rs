//! Where each event "comes from" and the fixed header sets, copied from the
//! captures in `shared/fixtures/esl/` (FreeSWITCH 1.10.12): the
//! `Event-Calling-File/Function/Line-Number` triple per event kind, and the
//! ordered header names of the events that are not channel events.

/// The source location FreeSWITCH stamps on an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `Event-Calling-File`.
    pub file: &'static str,
    /// `Event-Calling-Function`.
    pub func: &'static str,
    /// `Event-Calling-Line-Number`.
    pub line: u32,
}

const fn o(file: &'static str, func: &'static str, line: u32) -> Origin {
    Origin { file, func, line }
}

/// The 13 headers every event starts with (after `Event-Subclass` for CUSTOM).
pub const PREFIX: [&str; 13] = [
    "Event-Name",
    "Core-UUID",
    "FreeSWITCH-Hostname",
    "FreeSWITCH-Switchname",
    "FreeSWITCH-IPv4",
    "FreeSWITCH-IPv6",
    "Event-Date-Local",
    "Event-Date-GMT",
    "Event-Date-Timestamp",
    "Event-Calling-File",
    "Event-Calling-Function",
    "Event-Calling-Line-Number",
    "Event-Sequence",
];

#[allow(missing_docs)]
pub mod at {
    use super::{Origin, o};

    pub const API: Origin = o("switch_loadable_module.c", "switch_api_execute", 2954);
    pub const BACKGROUND_JOB: Origin = o("mod_event_socket.c", "api_exec", 1572);
    pub const CALL_UPDATE: Origin = o("mod_sofia.c", "sofia_receive_message", 2100);
    pub const ANSWER: Origin = o(
        "switch_channel.c",
        "switch_channel_perform_mark_answered",
        3846,
    );
    pub const BRIDGE: Origin = o(
        "switch_ivr_bridge.c",
        "switch_ivr_multi_threaded_bridge",
        1689,
    );
    pub const UNBRIDGE: Origin = o(
        "switch_ivr_bridge.c",
        "switch_ivr_multi_threaded_bridge",
        1879,
    );
    pub const CALLSTATE: Origin = o(
        "switch_channel.c",
        "switch_channel_perform_set_callstate",
        301,
    );
    pub const CREATE: Origin = o(
        "switch_core_state_machine.c",
        "switch_core_session_run",
        626,
    );
    pub const ORIGINATE: Origin = o(
        "switch_core_state_machine.c",
        "switch_core_session_run",
        632,
    );
    pub const DESTROY: Origin = o(
        "switch_core_session.c",
        "switch_core_session_perform_destroy",
        1584,
    );
    pub const EXECUTE: Origin = o("switch_core_session.c", "switch_core_session_exec", 2944);
    pub const EXECUTE_COMPLETE: Origin =
        o("switch_core_session.c", "switch_core_session_exec", 2967);
    pub const SOFT_EXECUTE_A: Origin =
        o("switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1236);
    pub const SOFT_EXECUTE_B: Origin =
        o("switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1243);
    pub const HANGUP: Origin = o("switch_channel.c", "switch_channel_perform_hangup", 3445);
    pub const HANGUP_COMPLETE: Origin = o(
        "switch_core_state_machine.c",
        "switch_core_session_reporting_state",
        943,
    );
    pub const HOLD: Origin = o("switch_channel.c", "switch_channel_mark_hold", 875);
    pub const OUTGOING: Origin = o(
        "switch_core_session.c",
        "switch_core_session_outgoing_channel",
        768,
    );
    pub const PARK: Origin = o("switch_ivr.c", "switch_ivr_park", 1002);
    pub const UNPARK: Origin = o("switch_ivr.c", "switch_ivr_park", 1213);
    pub const PROGRESS: Origin = o(
        "switch_channel.c",
        "switch_channel_perform_mark_ring_ready_value",
        3505,
    );
    pub const PROGRESS_MEDIA: Origin = o(
        "switch_channel.c",
        "switch_channel_perform_mark_pre_answered",
        3560,
    );
    pub const STATE: Origin = o(
        "switch_channel.c",
        "switch_channel_perform_set_running_state",
        2408,
    );
    pub const CODEC_REAL_READ: Origin = o(
        "switch_core_codec.c",
        "switch_core_session_set_real_read_codec",
        168,
    );
    pub const CODEC_WRITE: Origin = o(
        "switch_core_codec.c",
        "switch_core_session_set_write_codec",
        450,
    );
    pub const CODEC_READ: Origin = o(
        "switch_core_codec.c",
        "switch_core_session_set_read_codec",
        279,
    );
    pub const PRESENCE: Origin = o("switch_channel.c", "switch_channel_perform_presence", 805);
    pub const PRESENCE_REGISTER: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 2103);
    pub const PRESENCE_EXPIRE: Origin = o("sofia_reg.c", "sofia_reg_del_callback", 741);
    pub const PLAYBACK_START: Origin = o("switch_ivr_play_say.c", "switch_ivr_play_file", 1646);
    pub const PLAYBACK_STOP: Origin = o("switch_ivr_play_say.c", "switch_ivr_play_file", 2020);
    pub const HEARTBEAT: Origin = o("switch_core.c", "send_heartbeat", 95);
    pub const SHUTDOWN: Origin = o("switch_core.c", "switch_core_destroy", 3023);
    pub const MESSAGE_QUERY: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 2168);
    pub const CHANNEL_DATA: Origin = o("mod_commands.c", "uuid_dump_function", 6468);
    pub const PRE_REGISTER: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 1810);
    pub const REGISTER_ATTEMPT: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 1606);
    pub const REGISTER: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 2059);
    pub const UNREGISTER: Origin = o("sofia_reg.c", "sofia_reg_handle_register_token", 2213);
    pub const EXPIRE: Origin = o("sofia_reg.c", "sofia_reg_del_callback", 726);
    pub const REINVITE: Origin = o("sofia.c", "sofia_handle_sip_i_state", 8489);
    pub const VALET_HOLD: Origin = o("mod_valet_parking.c", "valet_parking_function", 684);
    pub const VALET_BRIDGE: Origin = o("mod_valet_parking.c", "valet_parking_function", 579);
    pub const VALET_EXIT: Origin = o("mod_valet_parking.c", "valet_parking_function", 749);
    pub const CONF_CREATE: Origin = o("mod_conference.c", "conference_new", 3848);
    pub const CONF_DESTROY: Origin = o("mod_conference.c", "conference_thread_run", 863);
    pub const CONF_ADD: Origin = o("conference_member.c", "conference_member_add", 962);
    pub const CONF_DEL: Origin = o("conference_member.c", "conference_member_del", 1355);
    pub const CONF_FLOOR: Origin = o(
        "conference_member.c",
        "conference_member_set_floor_holder",
        1158,
    );
    pub const CONF_PLAY: Origin = o("conference_file.c", "conference_file_play", 268);
    pub const CONF_PLAY_DONE: Origin = o("conference_file.c", "conference_file_close", 52);
    pub const CC_AGENT_ADD: Origin = o("mod_callcenter.c", "cc_agent_add", 915);
    pub const CC_AGENT_UPDATE_STATUS: Origin = o("mod_callcenter.c", "cc_agent_update", 1043);
    pub const CC_AGENT_UPDATE_STATE: Origin = o("mod_callcenter.c", "cc_agent_update", 1067);
    pub const CC_AGENT_UPDATE_CONTACT: Origin = o("mod_callcenter.c", "cc_agent_update", 1091);
    pub const CC_MEMBERS_COUNT: Origin = o("mod_callcenter.c", "cc_queue_count", 878);
    pub const CC_MEMBER_START: Origin = o("mod_callcenter.c", "callcenter_function", 3113);
    pub const CC_OFFERING: Origin = o("mod_callcenter.c", "outbound_agent_thread_run", 1717);
    pub const CC_BRIDGE_START: Origin = o("mod_callcenter.c", "outbound_agent_thread_run", 1934);
    pub const CC_BRIDGE_END: Origin = o("mod_callcenter.c", "outbound_agent_thread_run", 2062);
    pub const CC_MEMBER_END: Origin = o("mod_callcenter.c", "outbound_agent_thread_run", 2098);
    pub const FIFO_PUSH: Origin = o("mod_fifo.c", "fifo_function", 2743);
    pub const FIFO_CONSUMER_START: Origin = o("mod_fifo.c", "fifo_function", 2983);
    pub const FIFO_CALLER_POP: Origin = o("mod_fifo.c", "fifo_function", 3224);
    pub const FIFO_CONSUMER_POP: Origin = o("mod_fifo.c", "fifo_function", 3242);
    pub const FIFO_CHANNEL_CONSUMER_START: Origin = o("mod_fifo.c", "fifo_function", 3378);
    pub const FIFO_BRIDGE_CONSUMER_START: Origin = o("mod_fifo.c", "fifo_function", 3392);
    pub const FIFO_BRIDGE_CALLER_START: Origin = o("mod_fifo.c", "fifo_function", 3403);
    pub const FIFO_CHANNEL_CONSUMER_STOP: Origin = o("mod_fifo.c", "fifo_function", 3461);
    pub const FIFO_BRIDGE_CONSUMER_STOP: Origin = o("mod_fifo.c", "fifo_function", 3489);
    pub const FIFO_BRIDGE_CALLER_STOP: Origin = o("mod_fifo.c", "fifo_function", 3499);
    pub const FIFO_CONSUMER_STOP: Origin = o("mod_fifo.c", "fifo_function", 3632);
    pub const FIFO_ABORT: Origin = o("mod_fifo.c", "fifo_function", 2866);
    pub const CALL_UPDATE_FLIP: Origin = o("switch_channel.c", "switch_channel_flip_cid", 3277);
}

/// Event names FreeSWITCH knows (`switch_name_event`); others are ignored
/// in `event` commands, as FreeSWITCH ignores them.
pub const KNOWN_EVENTS: &[&str] = &[
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
    "ALL",
];

/// HEARTBEAT headers after the prefix (capture 02 #109).
pub const HEARTBEAT: [&str; 14] = [
    "Event-Info",
    "Up-Time",
    "FreeSWITCH-Version",
    "Uptime-msec",
    "Session-Count",
    "Max-Sessions",
    "Session-Per-Sec",
    "Session-Per-Sec-Last",
    "Session-Per-Sec-Max",
    "Session-Per-Sec-FiveMin",
    "Session-Since-Startup",
    "Session-Peak-Max",
    "Session-Peak-FiveMin",
    "Idle-CPU",
];

/// Directory variables a user carries in sofia register events and on legs
/// it authenticated (vanilla `directory/default/*.xml` plus the domain's).
pub fn directory_vars(
    user: &str,
    domain: &str,
    callgroup: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("sip_number_alias", user.to_owned()),
        ("sip_auth_username", user.to_owned()),
        ("sip_auth_realm", domain.to_owned()),
        ("number_alias", user.to_owned()),
        ("user_name", user.to_owned()),
        ("domain_name", domain.to_owned()),
        ("record_stereo", "true".to_owned()),
        ("default_gateway", "example.com".to_owned()),
        ("default_areacode", "918".to_owned()),
        ("transfer_fallback_extension", "operator".to_owned()),
        ("toll_allow", "domestic,international,local".to_owned()),
        ("accountcode", user.to_owned()),
        ("user_context", "default".to_owned()),
        ("effective_caller_id_name", format!("Extension {user}")),
        ("effective_caller_id_number", user.to_owned()),
        ("outbound_caller_id_name", "FreeSWITCH".to_owned()),
        ("outbound_caller_id_number", "0000000000".to_owned()),
    ];
    if let Some(g) = callgroup {
        v.push(("callgroup", g.to_owned()));
    }
    v
}
