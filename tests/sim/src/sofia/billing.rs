//! What a hangup adds: `switch_channel_set_timestamps`' billing variables
//! and sofia's RTP statistics.

use super::VarList;
use crate::channel::Times;
use crate::stamp;

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
