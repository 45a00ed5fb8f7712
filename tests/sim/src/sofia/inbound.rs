//! Variables of an inbound leg: an INVITE from a phone, digest-checked
//! against the directory (so the user's directory variables are on it),
//! directly or through a proxy (capture 20).

use super::{BoxId, EP_CODEC, VarList, phone_port, sdp};
use crate::stamp;
use crate::templates::directory_vars;

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
