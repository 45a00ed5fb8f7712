//! Variables of legs the box places: to a user for a `bridge`, by
//! `originate`, and what the phone's 180 adds.

use super::{EP_CODEC, VarList, local_sdp, phone_port};
use crate::config::SimConfig;

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
    let mut v: VarList = vec![
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
    ];
    v.extend(sip_addressing(url, domain));
    v
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
    let mut v: VarList = vec![
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
    ];
    v.extend(sip_addressing(url, domain));
    v
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

/// The contact, request-URI and profile variables every placed leg ends
/// with; `url` is the channel name without `sofia/internal/`.
fn sip_addressing(url: &str, domain: &str) -> VarList {
    vec![
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
