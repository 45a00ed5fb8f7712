//! Renders a [`Channel`] into event headers exactly as FreeSWITCH's
//! `switch_channel_event_set_basic_data` / `_extended_data` and
//! `switch_caller_profile_event_set_data` do: fixed order, optional headers
//! only when set, `Other-Leg` without `Profile-Index`, variables last.

use locus_esl::Event;

use crate::channel::{Channel, OtherType, Profile};

/// Channel headers without variables (`switch_channel_event_set_basic_data`).
pub fn basic_data(ch: &Channel, ev: &mut Event) {
    ev.push("Channel-State", ch.running.name());
    ev.push("Channel-Call-State", ch.callstate.name());
    ev.push("Channel-State-Number", ch.state.number().to_string());
    ev.push("Channel-Name", ch.name.as_str());
    ev.push("Unique-ID", ch.uuid.as_str());
    ev.push("Call-Direction", ch.direction.name());
    ev.push("Presence-Call-Direction", ch.direction.name());
    let hit = ch.direction == crate::channel::Direction::Inbound || ch.hit_dialplan;
    ev.push("Channel-HIT-Dialplan", if hit { "true" } else { "false" });
    if let Some(p) = ch.vars.get("presence_id") {
        ev.push("Channel-Presence-ID", p);
    }
    ev.push("Channel-Call-UUID", ch.call_uuid());
    ev.push("Answer-State", ch.answer_state());
    if let Some(cause) = ch.hangup_cause {
        ev.push("Hangup-Cause", cause);
    }
    if let Some((name, bits)) = ch.read_codec.or(ch.codec) {
        ev.push("Channel-Read-Codec-Name", name);
        ev.push("Channel-Read-Codec-Rate", "8000");
        ev.push("Channel-Read-Codec-Bit-Rate", bits.to_string());
    }
    if let Some((name, bits)) = ch.codec {
        ev.push("Channel-Write-Codec-Name", name);
        ev.push("Channel-Write-Codec-Rate", "8000");
        ev.push("Channel-Write-Codec-Bit-Rate", bits.to_string());
    }
    if let Some(p) = &ch.profile {
        profile(p, "Caller", ev);
    }
    if let Some((kind, other)) = &ch.other {
        let kind = match kind {
            OtherType::Originator => "originator",
            OtherType::Originatee => "originatee",
        };
        ev.push("Other-Type", kind);
        profile(other, "Other-Leg", ev);
    }
}

/// The channel's variables as `variable_*` headers.
pub fn extended_data(ch: &Channel, ev: &mut Event) {
    for (k, v) in ch.vars.iter() {
        ev.push(format!("variable_{k}"), v);
    }
}

/// Caller profile headers under `prefix` (`Caller`, `Other-Leg`).
pub fn profile(p: &Profile, prefix: &str, ev: &mut Event) {
    let mut put = |name: &str, value: &str| {
        if !value.is_empty() {
            ev.push(format!("{prefix}-{name}"), value);
        }
    };
    put("Direction", p.direction.map_or("", |d| d.name()));
    put(
        "Logical-Direction",
        p.logical_direction.map_or("", |d| d.name()),
    );
    put("Username", &p.username);
    put("Dialplan", &p.dialplan);
    put("Caller-ID-Name", &p.cid_name);
    put("Caller-ID-Number", &p.cid_number);
    if !p.cid_name.is_empty() {
        put("Orig-Caller-ID-Name", &p.orig_cid_name);
    }
    if !p.cid_number.is_empty() {
        put("Orig-Caller-ID-Number", &p.orig_cid_number);
    }
    put("Callee-ID-Name", &p.callee_name);
    put("Callee-ID-Number", &p.callee_number);
    put("Network-Addr", &p.network_addr);
    put("ANI", &p.ani);
    put("Destination-Number", &p.destination);
    put("Unique-ID", &p.uuid);
    put("Source", &p.source);
    put("Transfer-Source", &p.transfer_source);
    put("Context", &p.context);
    put("Channel-Name", &p.chan_name);
    if let Some(i) = p.index {
        put("Profile-Index", &i.to_string());
    }
    let t = &p.times;
    let times = [
        ("Profile-Created-Time", t.profile_created),
        ("Channel-Created-Time", t.created),
        ("Channel-Answered-Time", t.answered),
        ("Channel-Progress-Time", t.progress),
        ("Channel-Progress-Media-Time", t.progress_media),
        ("Channel-Hangup-Time", t.hungup),
        ("Channel-Transfer-Time", t.transferred),
        ("Channel-Resurrect-Time", t.resurrected),
        ("Channel-Bridged-Time", t.bridged),
        ("Channel-Last-Hold", t.last_hold),
        ("Channel-Hold-Accum", t.hold_accum),
    ];
    for (name, value) in times {
        ev.push(format!("{prefix}-{name}"), value.to_string());
    }
    ev.push(format!("{prefix}-Screen-Bit"), "true");
    ev.push(format!("{prefix}-Privacy-Hide-Name"), "false");
    ev.push(format!("{prefix}-Privacy-Hide-Number"), "false");
}
