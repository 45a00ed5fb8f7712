//! The channel variables mod_sofia sets on legs, in the order the captures
//! show them: an authenticated inbound INVITE (`inbound`), an outbound or
//! originated leg and its 180 (`outbound`), the media block on early media
//! or answer (here), and the billing block at hangup (`billing`). Values
//! are synthesised; names and order follow captures 02, 13 and 20.

mod billing;
mod inbound;
mod outbound;

pub use billing::{billing, rtp_stats};
pub use inbound::inbound;
pub use outbound::{originated, outbound, progress};

use crate::config::SimConfig;

/// Variables as name/value pairs in order.
pub type VarList = Vec<(&'static str, String)>;

/// PCMU: the only codec the captured calls used.
pub const CODEC: (&str, u32) = ("PCMU", 64_000);
/// Conference members read signed linear (capture 06).
pub const CONF_READ_CODEC: (&str, u32) = ("L16", 128_000);

pub(crate) const EP_CODEC: &str = "CORE_PCM_MODULE.PCMU@8000h@20i@64000b";

/// The phone's SIP port: derived from the user so it is stable per user.
pub fn phone_port(user: &str) -> u16 {
    let n: u32 = user.bytes().map(u32::from).sum();
    5100 + u16::try_from(n % 800).unwrap_or(0)
}

pub(crate) fn sdp(origin: &str, port: u16) -> String {
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
