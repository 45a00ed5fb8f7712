//! The channel variables mod_sofia sets on legs, in the order the captures
//! show them: an authenticated inbound INVITE, an outbound leg to a user,
//! the SIP reply on progress, the media block on early media / answer, and
//! the billing block at hangup. Values are synthesised; names and order
//! follow capture 02.

use crate::channel::Times;
use crate::config::SimConfig;
use crate::stamp;
use crate::templates::directory_vars;

/// Variables as name/value pairs in order.
pub type VarList = Vec<(&'static str, String)>;

/// PCMU: the only codec the captured calls used.
pub const CODEC: (&str, u32) = ("PCMU", 64_000);
/// Conference members read signed linear (capture 06).
pub const CONF_READ_CODEC: (&str, u32) = ("L16", 128_000);

const EP_CODEC: &str = "CORE_PCM_MODULE.PCMU@8000h@20i@64000b";

/// The phone's SIP port: derived from the user so it is stable per user.
pub fn phone_port(user: &str) -> u16 {
    let n: u32 = user.bytes().map(u32::from).sum();
    5100 + u16::try_from(n % 800).unwrap_or(0)
}

fn sdp(origin: &str, port: u16) -> String {
    format!(
        "v=0\r\no={origin} 1795660836 1795660838 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
    )
}

/// Identity needed to fill the REQUEST_PARAMS copy sofia leaves on a leg.
pub struct BoxId<'a> {
    /// Configuration.
    pub cfg: &'a SimConfig,
    /// Core uuid.
    pub core_uuid: &'a str,
}

/// Variables of an inbound leg from `user` dialling `dest`, after digest
/// authentication (so the directory variables are on it).
pub fn inbound(
    b: &BoxId<'_>,
    uuid: &str,
    user: &str,
    dest: &str,
    session: u64,
    call_id: &str,
    now: i64,
) -> VarList {
    // Behind a proxy (capture 20) the From/To/R-URI carry its host:port and
    // the INVITE a Record-Route; phones talking to the box directly do not.
    let from = b.cfg.from_host();
    let (host, proxy_port) = match from.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
        _ => (from, None),
    };
    let domain = b.cfg.domain.as_str();
    let phone = phone_port(user).to_string();
    let port = proxy_port.unwrap_or(&phone).to_owned();
    let mut v: VarList = vec![
        ("direction", "inbound".into()),
        ("uuid", uuid.into()),
        ("call_uuid", uuid.into()),
        ("session_id", session.to_string()),
        ("sip_from_user", user.into()),
    ];
    if let Some(p) = proxy_port {
        v.push(("sip_from_port", p.into()));
    }
    v.extend([
        ("sip_from_uri", format!("{user}@{from}")),
        ("sip_from_host", host.into()),
        ("video_media_flow", "disabled".into()),
        ("audio_media_flow", "disabled".into()),
        ("text_media_flow", "disabled".into()),
        ("channel_name", format!("sofia/internal/{user}@{from}")),
        ("sip_call_id", call_id.into()),
        ("sip_local_network_addr", "127.0.0.1".into()),
        ("sip_network_ip", "127.0.0.1".into()),
        ("sip_network_port", port.clone()),
        ("sip_invite_stamp", now.to_string()),
        ("sip_received_ip", "127.0.0.1".into()),
        ("sip_received_port", port.clone()),
        ("sip_via_protocol", "udp".into()),
        ("sip_authorized", "true".into()),
        ("Event-Name", "REQUEST_PARAMS".into()),
        ("Core-UUID", b.core_uuid.into()),
        ("FreeSWITCH-Hostname", b.cfg.hostname.clone()),
        ("FreeSWITCH-Switchname", b.cfg.node_id.clone()),
        ("FreeSWITCH-IPv4", b.cfg.ipv4.clone()),
        ("FreeSWITCH-IPv6", b.cfg.ipv6.clone()),
        ("Event-Date-Local", stamp::local(now)),
        ("Event-Date-GMT", stamp::gmt(now)),
        ("Event-Date-Timestamp", now.to_string()),
        ("Event-Calling-File", "sofia.c".into()),
        ("Event-Calling-Function", "sofia_handle_sip_i_invite".into()),
        ("Event-Calling-Line-Number", "10723".into()),
        ("Event-Sequence", "0".into()),
    ]);
    let dir = directory_vars(user, domain, b.cfg.directory.callgroup(user));
    // requested_* sit between number_alias and record_stereo.
    for (k, val) in dir {
        v.push((k, val));
        if k == "number_alias" {
            v.push(("requested_user_name", user.into()));
            v.push(("requested_domain_name", domain.into()));
        }
    }
    // user_name / domain_name come after callgroup on legs.
    if let Some(i) = v.iter().position(|(k, _)| *k == "user_name") {
        let u = v.remove(i);
        let d = v.remove(i);
        v.push(u);
        v.push(d);
    }
    let tag = format!("{}SIPpTag01", session);
    v.extend([
        ("sip_from_user_stripped", user.into()),
        ("sip_from_tag", tag.clone()),
        ("sofia_profile_name", "internal".into()),
        ("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060".into()),
        ("recovery_profile_name", "internal".into()),
    ]);
    if proxy_port.is_some() {
        let rr = format!("<sip:{from};lr=on;ftag={tag}>");
        v.push(("sip_invite_route_uri", rr.clone()));
        v.push(("sip_invite_record_route", rr));
    }
    v.extend([
        (
            "sip_full_via",
            format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{session};rport={port}"),
        ),
        ("sip_from_display", user.into()),
        (
            "sip_full_from",
            format!("\"{user}\" <sip:{user}@{from}>;tag={tag}"),
        ),
        ("sip_full_to", format!("<sip:{dest}@{from}>")),
        ("sip_req_user", dest.into()),
    ]);
    if let Some(p) = proxy_port {
        v.push(("sip_req_port", p.into()));
    }
    v.extend([
        ("sip_req_uri", format!("{dest}@{from}")),
        ("sip_req_host", host.into()),
        ("sip_to_user", dest.into()),
    ]);
    if let Some(p) = proxy_port {
        v.push(("sip_to_port", p.into()));
    }
    v.extend([
        ("sip_to_uri", format!("{dest}@{from}")),
        ("sip_to_host", host.into()),
        ("sip_contact_user", user.into()),
        ("sip_contact_port", phone.clone()),
        ("sip_contact_uri", format!("{user}@127.0.0.1:{phone}")),
        ("sip_contact_host", "127.0.0.1".into()),
        (
            "rtp_use_codec_string",
            "OPUS,G722,PCMU,PCMA,H264,VP8".into(),
        ),
        ("sip_user_agent", "locus-sim".into()),
        ("sip_via_host", "127.0.0.1".into()),
        ("sip_via_port", port.clone()),
    ]);
    if proxy_port.is_none() {
        v.push(("sip_via_rport", port));
    }
    v.extend([
        ("max_forwards", "70".into()),
        ("presence_id", format!("{user}@{host}")),
        ("switch_r_sdp", sdp("user1", 41_000 + phone_port(user))),
        ("ep_codec_string", EP_CODEC.into()),
        ("endpoint_disposition", "DELAYED NEGOTIATION".into()),
    ]);
    v
}

/// Variables of an outbound leg to `user` (dial string `user/<user>@<domain>`),
/// originated by `originator`.
pub fn outbound(
    cfg: &SimConfig,
    uuid: &str,
    user: &str,
    name: &str,
    originator: &str,
    session: u64,
) -> VarList {
    let domain = cfg.domain.as_str();
    let url = name.strip_prefix("sofia/internal/").unwrap_or(name);
    vec![
        ("direction", "outbound".into()),
        ("is_outbound", "true".into()),
        ("uuid", uuid.into()),
        ("session_id", session.to_string()),
        ("sip_local_network_addr", "127.0.0.1".into()),
        ("sip_profile_name", "internal".into()),
        ("text_media_flow", "disabled".into()),
        ("channel_name", name.into()),
        ("sip_destination_url", format!("sip:{url}")),
        ("max_forwards", "69".into()),
        ("originator_codec", EP_CODEC.into()),
        ("originator", originator.into()),
        ("signal_bond", originator.into()),
        ("call_uuid", originator.into()),
        ("dialed_user", user.into()),
        ("dialed_domain", domain.into()),
        ("sip_invite_domain", domain.into()),
        ("presence_id", format!("{user}@{domain}")),
        ("originate_early_media", "true".into()),
        ("originating_leg_uuid", originator.into()),
        ("originate_endpoint", "sofia".into()),
        ("rtp_use_codec_string", EP_CODEC.into()),
        ("local_media_ip", "127.0.0.1".into()),
        ("local_media_port", (20_000 + session % 10_000).to_string()),
        ("advertised_media_ip", "127.0.0.1".into()),
        ("audio_media_flow", "sendrecv".into()),
        ("video_media_flow", "sendrecv".into()),
        (
            "sip_outgoing_contact_uri",
            "<sip:mod_sofia@127.0.0.1:5060>".into(),
        ),
        ("sip_req_uri", url.into()),
        (
            "sip_to_host",
            url.split('@').nth(1).unwrap_or(domain).into(),
        ),
        ("sip_from_host", domain.into()),
        ("sofia_profile_name", "internal".into()),
        ("recovery_profile_name", "internal".into()),
        ("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060".into()),
    ]
}

/// Variables of a leg made by `originate` (no originator), with the
/// `origination_caller_id_*` it was given.
pub fn originated(
    cfg: &SimConfig,
    uuid: &str,
    user: &str,
    name: &str,
    cid: (&str, &str),
    session: u64,
) -> VarList {
    let domain = cfg.domain.as_str();
    let url = name.strip_prefix("sofia/internal/").unwrap_or(name);
    vec![
        ("direction", "outbound".into()),
        ("is_outbound", "true".into()),
        ("uuid", uuid.into()),
        ("call_uuid", uuid.into()),
        ("session_id", session.to_string()),
        ("sip_local_network_addr", "127.0.0.1".into()),
        ("sip_profile_name", "internal".into()),
        ("video_media_flow", "disabled".into()),
        ("text_media_flow", "disabled".into()),
        ("channel_name", name.into()),
        ("sip_destination_url", format!("sip:{url}")),
        ("origination_caller_id_number", cid.1.into()),
        ("origination_caller_id_name", cid.0.into()),
        ("dialed_user", user.into()),
        ("dialed_domain", domain.into()),
        ("sip_invite_domain", domain.into()),
        ("presence_id", format!("{user}@{domain}")),
        ("originate_early_media", "true".into()),
        ("originate_endpoint", "sofia".into()),
        (
            "rtp_use_codec_string",
            "OPUS,G722,PCMU,PCMA,H264,VP8".into(),
        ),
        ("local_media_ip", "127.0.0.1".into()),
        ("local_media_port", (20_000 + session % 10_000).to_string()),
        ("advertised_media_ip", "127.0.0.1".into()),
        ("audio_media_flow", "sendrecv".into()),
        ("rtp_local_sdp_str", local_sdp(session)),
        (
            "sip_outgoing_contact_uri",
            "<sip:mod_sofia@127.0.0.1:5060>".into(),
        ),
        ("sip_req_uri", url.into()),
        (
            "sip_to_host",
            url.split('@').nth(1).unwrap_or(domain).into(),
        ),
        ("sip_from_host", domain.into()),
        ("sofia_profile_name", "internal".into()),
        ("recovery_profile_name", "internal".into()),
        ("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060".into()),
    ]
}

/// SIP variables set when the phone answers the INVITE with 180 (B-leg).
pub fn progress(caller: &str, user: &str, domain: &str, session: u64, via_proxy: bool) -> VarList {
    let port = phone_port(user).to_string();
    let via = format!("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bKsim{session}");
    let from_tag = format!("sim{session}F");
    let mut v: VarList = vec![
        ("sip_reply_host", "127.0.0.1".into()),
        ("sip_reply_port", port.clone()),
        ("sip_network_ip", "127.0.0.1".into()),
        ("sip_network_port", port.clone()),
        (
            "sip_recover_contact",
            format!("<sip:127.0.0.1:{port};transport=UDP>"),
        ),
        ("sip_full_via", via.clone()),
        ("sip_recover_via", via),
        ("sip_from_display", format!("Extension {caller}")),
        (
            "sip_full_from",
            format!("\"Extension {caller}\" <sip:{caller}@{domain}>;tag={from_tag}"),
        ),
        (
            "sip_full_to",
            format!("<sip:{user}@127.0.0.1:{port}>;tag={session}SIPpTag02"),
        ),
        ("sip_from_user", caller.into()),
        ("sip_from_uri", format!("{caller}@{domain}")),
        ("sip_to_user", user.into()),
        ("sip_to_port", port.clone()),
        ("sip_to_uri", format!("{user}@127.0.0.1:{port}")),
        ("sip_contact_params", "transport=UDP".into()),
        ("sip_contact_user", user.into()),
        ("sip_contact_port", port.clone()),
        ("sip_contact_uri", format!("{user}@127.0.0.1:{port}")),
        ("sip_contact_host", "127.0.0.1".into()),
        ("sip_to_tag", format!("{session}SIPpTag02")),
        ("sip_from_tag", from_tag),
        ("sip_cseq", (100 + session).to_string()),
        (
            "sip_call_id",
            format!("{}-sim-{session}", crate::stamp::uuid()),
        ),
    ];
    if via_proxy {
        // The INVITE went to `user@domain` through the proxy: no To port.
        v.retain(|(k, _)| *k != "sip_to_port");
        for (k, val) in &mut v {
            if *k == "sip_to_uri" {
                *val = format!("{user}@{domain}");
            }
        }
    }
    v
}

/// RTP variables set when media starts on a leg.
pub fn media(session: u64) -> VarList {
    vec![
        ("remote_video_media_flow", "inactive".into()),
        ("remote_text_media_flow", "inactive".into()),
        ("remote_audio_media_flow", "sendrecv".into()),
        ("rtp_audio_recv_pt", "0".into()),
        ("rtp_use_codec_name", "PCMU".into()),
        ("rtp_use_codec_rate", "8000".into()),
        ("rtp_use_codec_ptime", "20".into()),
        ("rtp_use_codec_channels", "1".into()),
        ("rtp_last_audio_codec_string", "PCMU@8000h@20i@1c".into()),
        ("read_codec", "PCMU".into()),
        ("original_read_codec", "PCMU".into()),
        ("read_rate", "8000".into()),
        ("original_read_rate", "8000".into()),
        ("write_codec", "PCMU".into()),
        ("write_rate", "8000".into()),
        ("dtmf_type", "rfc2833".into()),
        ("local_media_ip", "127.0.0.1".into()),
        ("local_media_port", (30_000 + session % 10_000).to_string()),
        ("advertised_media_ip", "127.0.0.1".into()),
        ("rtp_use_timer_name", "soft".into()),
        ("rtp_use_pt", "0".into()),
        ("rtp_use_ssrc", (2_399_997_848u64 + session).to_string()),
        ("rtp_2833_send_payload", "101".into()),
        ("rtp_2833_recv_payload", "101".into()),
        ("remote_media_ip", "127.0.0.1".into()),
        ("remote_media_port", (41_000 + session % 10_000).to_string()),
    ]
}

/// The SDP we answered with.
pub fn local_sdp(session: u64) -> String {
    sdp(
        "FreeSWITCH",
        30_000 + u16::try_from(session % 10_000).unwrap_or(0),
    )
}

/// Billing variables set at hangup (`switch_channel_set_timestamps`),
/// then the RTP statistics sofia adds, in capture 02's order.
pub fn billing(
    t: &Times,
    ended: i64,
    cause: &str,
    q850: u32,
    last_app: Option<(&str, &str)>,
    caller_id: &str,
) -> VarList {
    let secs = |us: i64| if us == 0 { 0 } else { stamp::secs(us) };
    let since = |us: i64| if us == 0 { 0 } else { us - t.created };
    let mut v: VarList = vec![
        ("hangup_cause", cause.into()),
        ("hangup_cause_q850", q850.to_string()),
        ("digits_dialed", "none".into()),
        ("start_stamp", stamp::local(t.created)),
        ("profile_start_stamp", stamp::local(t.profile_created)),
    ];
    for (name, us) in [
        ("answer_stamp", t.answered),
        ("bridge_stamp", t.bridged),
        ("progress_stamp", t.progress),
        ("progress_media_stamp", t.progress_media),
    ] {
        if us != 0 {
            v.push((name, stamp::local(us)));
        }
    }
    if t.last_hold != 0 {
        v.push(("hold_stamp", stamp::local(t.last_hold)));
    }
    v.push(("end_stamp", stamp::local(ended)));
    for (name, us) in [
        ("start", t.created),
        ("profile_start", t.profile_created),
        ("answer", t.answered),
        ("bridge", t.bridged),
        ("last_hold", t.last_hold),
    ] {
        v.push((epoch_name(name), secs(us).to_string()));
        v.push((uepoch_name(name), us.to_string()));
    }
    v.extend([
        ("hold_accum_seconds", (t.hold_accum / 1_000_000).to_string()),
        ("hold_accum_usec", t.hold_accum.to_string()),
        ("hold_accum_ms", (t.hold_accum / 1000).to_string()),
    ]);
    for (name, us) in [
        ("resurrect", t.resurrected),
        ("progress", t.progress),
        ("progress_media", t.progress_media),
        ("end", ended),
    ] {
        v.push((epoch_name(name), secs(us).to_string()));
        v.push((uepoch_name(name), us.to_string()));
    }
    if let Some((app, arg)) = last_app {
        v.push(("last_app", app.into()));
        if !arg.is_empty() {
            v.push(("last_arg", arg.into()));
        }
    }
    v.push(("caller_id", caller_id.into()));
    let dur = ended - t.created;
    let bill = if t.answered == 0 {
        0
    } else {
        ended - t.answered
    };
    let wait = since(if t.bridged != 0 {
        t.bridged
    } else {
        t.answered
    });
    let spans = [
        ("duration", "mduration", "uduration", dur),
        ("billsec", "billmsec", "billusec", bill),
        (
            "progresssec",
            "progressmsec",
            "progressusec",
            since(t.progress),
        ),
        ("answersec", "answermsec", "answerusec", since(t.answered)),
        ("waitsec", "waitmsec", "waitusec", wait),
        (
            "progress_mediasec",
            "progress_mediamsec",
            "progress_mediausec",
            since(t.progress_media),
        ),
        ("flow_billsec", "flow_billmsec", "flow_billusec", dur),
    ];
    for (s, _, _, us) in spans {
        v.push((s, (us / 1_000_000).to_string()));
    }
    for (_, ms, _, us) in spans {
        v.push((ms, (us / 1000).to_string()));
    }
    for (_, _, u, us) in spans {
        v.push((u, us.to_string()));
    }
    v
}

/// RTP statistics sofia sets when media stops (no RTP flows in the sim).
pub fn rtp_stats() -> VarList {
    let zero = [
        "rtp_audio_in_raw_bytes",
        "rtp_audio_in_media_bytes",
        "rtp_audio_in_packet_count",
        "rtp_audio_in_media_packet_count",
        "rtp_audio_in_skip_packet_count",
        "rtp_audio_in_jitter_packet_count",
        "rtp_audio_in_dtmf_packet_count",
        "rtp_audio_in_cng_packet_count",
        "rtp_audio_in_flush_packet_count",
        "rtp_audio_in_largest_jb_size",
    ];
    let mut v: VarList = zero.iter().map(|k| (*k, "0".to_owned())).collect();
    for k in [
        "rtp_audio_in_jitter_min_variance",
        "rtp_audio_in_jitter_max_variance",
        "rtp_audio_in_jitter_loss_rate",
        "rtp_audio_in_jitter_burst_rate",
        "rtp_audio_in_mean_interval",
    ] {
        v.push((k, "0.00".into()));
    }
    v.push(("rtp_audio_in_flaw_total", "0".into()));
    v.push(("rtp_audio_in_quality_percentage", "100.00".into()));
    v.push(("rtp_audio_in_mos", "4.50".into()));
    for k in [
        "rtp_audio_out_raw_bytes",
        "rtp_audio_out_media_bytes",
        "rtp_audio_out_packet_count",
        "rtp_audio_out_media_packet_count",
        "rtp_audio_out_skip_packet_count",
        "rtp_audio_out_dtmf_packet_count",
        "rtp_audio_out_cng_packet_count",
        "rtp_audio_rtcp_packet_count",
        "rtp_audio_rtcp_octet_count",
    ] {
        v.push((k, "0".into()));
    }
    v
}

fn epoch_name(base: &str) -> &'static str {
    match base {
        "start" => "start_epoch",
        "profile_start" => "profile_start_epoch",
        "answer" => "answer_epoch",
        "bridge" => "bridge_epoch",
        "last_hold" => "last_hold_epoch",
        "resurrect" => "resurrect_epoch",
        "progress" => "progress_epoch",
        "progress_media" => "progress_media_epoch",
        _ => "end_epoch",
    }
}

fn uepoch_name(base: &str) -> &'static str {
    match base {
        "start" => "start_uepoch",
        "profile_start" => "profile_start_uepoch",
        "answer" => "answer_uepoch",
        "bridge" => "bridge_uepoch",
        "last_hold" => "last_hold_uepoch",
        "resurrect" => "resurrect_uepoch",
        "progress" => "progress_uepoch",
        "progress_media" => "progress_media_uepoch",
        _ => "end_uepoch",
    }
}
