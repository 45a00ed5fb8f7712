//! Channel and call transitions, one test per kind of channel event, on
//! synthetic events.

use locus_esl::Event;
use locus_schema::Table;
use serde_json::json;

use super::{calls, chan, custom, json, model, table};
use crate::model::{Model, Update};

pub(super) const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
pub(super) const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";
pub(super) const P: &str = "cccccccc-0000-0000-0000-000000000003";

/// The inbound leg of 1000 calling 1001, after its dialplan exported the
/// extension and set the group.
pub(super) fn a_leg(name: &str, extra: &[(&str, &str)]) -> Event {
    let mut h = vec![
        ("Call-Direction", "inbound"),
        ("Caller-Channel-Created-Time", "1000000000"),
        ("Caller-Orig-Caller-ID-Number", "1000"),
        ("Caller-Destination-Number", "1001"),
        ("variable_domain_name", "example.com"),
        ("variable_user_name", "1000"),
        ("variable_callgroup", "sales"),
        ("variable_dialed_extension", "1001"),
        ("variable_called_party_callgroup", "sales"),
        ("variable_sip_call_id", "cid-a"),
    ];
    h.extend_from_slice(extra);
    chan(name, A, &h)
}

pub(super) fn b_leg(name: &str, extra: &[(&str, &str)]) -> Event {
    let mut h = vec![
        ("Call-Direction", "outbound"),
        ("Caller-Channel-Created-Time", "1000500000"),
        ("Other-Leg-Unique-ID", A),
        ("variable_originator", A),
        ("variable_dialed_extension", "1001"),
        ("variable_dialed_domain", "example.com"),
        ("variable_sip_call_id", "cid-b"),
    ];
    h.extend_from_slice(extra);
    chan(name, B, &h)
}

pub(super) fn state(m: &Model) -> String {
    json(&m.image(), Table::Calls, A).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A ringing call: A in the dialplan, B placed and ringing.
fn ringing() -> Model {
    let mut m = model();
    m.apply(&a_leg("CHANNEL_CREATE", &[]), 1);
    m.apply(&b_leg("CHANNEL_CREATE", &[]), 2);
    m.apply(
        &b_leg("CHANNEL_CALLSTATE", &[("Channel-Call-State", "RINGING")]),
        3,
    );
    m
}

#[test]
fn a_leg_alone_is_a_ringing_call_with_no_ringing_entry() {
    let mut m = model();
    let up = m.apply(&a_leg("CHANNEL_CREATE", &[]), 5);
    assert_eq!(state(&m), "ringing");
    assert!(table(&m.image(), Table::Ringing).is_empty());
    let s = up.change.status.unwrap();
    assert_eq!((s.calls, s.channels, s.updated_ms), (1, 1, 5));
}

#[test]
fn b_leg_joins_and_rings_the_extension() {
    let m = ringing();
    let img = m.image();
    assert_eq!(m.call_count(), 1);
    assert_eq!(
        json(&img, Table::Ringing, "example.com/1001").unwrap(),
        json!([{"uuid": A, "since_ms": 1000500}])
    );
    assert_eq!(
        json(&img, Table::Groups, "example.com/sales").unwrap()[0]["state"],
        "ringing"
    );
    let sip = table(&img, Table::Sipcalls);
    assert_eq!((sip["cid-a"].as_str(), sip["cid-b"].as_str()), (A, A));
    let rec = json(&img, Table::Calls, A).unwrap();
    assert_eq!(rec["created_ms"], 1000000);
    assert_eq!(rec["sip_call_ids"], json!(["cid-a", "cid-b"]));
}

#[test]
fn early_media_then_answer_then_hangup() {
    let mut m = ringing();
    m.apply(
        &b_leg("CHANNEL_PROGRESS_MEDIA", &[("Answer-State", "early")]),
        4,
    );
    assert_eq!(state(&m), "early");
    let up = m.apply(
        &b_leg(
            "CHANNEL_ANSWER",
            &[("Caller-Channel-Answered-Time", "1002000000")],
        ),
        5,
    );
    assert_eq!(state(&m), "answered");
    assert!(
        up.change
            .ops
            .iter()
            .any(|op| op.table == Table::Ringing && op.value.is_none())
    );
    let rec = json(&m.image(), Table::Calls, A).unwrap();
    assert_eq!(rec["answered_ms"], 1002000);
    let group = json(&m.image(), Table::Groups, "example.com/sales").unwrap();
    assert_eq!(
        group,
        json!([{"uuid": A, "state": "answered", "since_ms": 1002000}])
    );

    m.apply(&b_leg("CHANNEL_HANGUP", &[]), 6);
    m.apply(&b_leg("CHANNEL_HANGUP_COMPLETE", &[]), 7);
    assert_eq!((m.call_count(), m.channel_count()), (1, 1));
    m.apply(&a_leg("CHANNEL_DESTROY", &[]), 8);
    assert!(m.image().tables.is_empty());
    assert_eq!(m.status().calls, 0);
}

#[test]
fn hold_by_event_and_by_callstate() {
    let mut m = ringing();
    m.apply(&b_leg("CHANNEL_ANSWER", &[]), 4);
    m.apply(&a_leg("CHANNEL_HOLD", &[]), 5);
    assert_eq!(state(&m), "held");
    m.apply(&a_leg("CHANNEL_UNHOLD", &[]), 6);
    assert_eq!(state(&m), "answered");
    m.apply(
        &chan("CHANNEL_CALLSTATE", B, &[("Channel-Call-State", "HELD")]),
        7,
    );
    assert_eq!(state(&m), "held");
    m.apply(
        &chan("CHANNEL_CALLSTATE", B, &[("Channel-Call-State", "ACTIVE")]),
        8,
    );
    assert_eq!(state(&m), "answered");
}

#[test]
fn park_only_counts_when_not_bridged() {
    let mut m = model();
    m.apply(&a_leg("CHANNEL_ANSWER", &[]), 1);
    m.apply(&a_leg("CHANNEL_PARK", &[]), 2);
    assert_eq!(state(&m), "parked");
    m.apply(&a_leg("CHANNEL_UNPARK", &[]), 3);
    assert_eq!(state(&m), "answered");

    // Bridged, a park does not count; once unbridged it does.
    let mut m = ringing();
    m.apply(&b_leg("CHANNEL_ANSWER", &[]), 4);
    m.apply(&a_leg("CHANNEL_BRIDGE", &[("Other-Leg-Unique-ID", B)]), 5);
    m.apply(&b_leg("CHANNEL_PARK", &[]), 6);
    assert_eq!(state(&m), "answered");
    m.apply(&a_leg("CHANNEL_UNBRIDGE", &[("Other-Leg-Unique-ID", B)]), 7);
    assert_eq!(state(&m), "parked");
    // The park application starting is enough (a snapshot shows it).
    let mut m = model();
    m.apply(&a_leg("CHANNEL_ANSWER", &[]), 1);
    m.apply(&a_leg("CHANNEL_EXECUTE", &[("Application", "park")]), 2);
    assert_eq!(state(&m), "parked");
}

#[test]
fn bridge_merges_two_calls_under_the_older_leg() {
    let mut m = ringing();
    // 1002 picks up: its own call first, then bridged to A (as intercept).
    let picker = |name: &str, extra: &[(&str, &str)]| {
        let mut h = vec![
            ("Call-Direction", "inbound"),
            ("Caller-Channel-Created-Time", "1009000000"),
            ("variable_domain_name", "example.com"),
        ];
        h.extend_from_slice(extra);
        chan(name, P, &h)
    };
    m.apply(&picker("CHANNEL_ANSWER", &[]), 4);
    assert_eq!(m.call_count(), 2);
    m.apply(&a_leg("CHANNEL_ANSWER", &[]), 5);
    m.apply(
        &b_leg("CHANNEL_HANGUP", &[("Hangup-Cause", "PICKED_OFF")]),
        6,
    );
    m.apply(&b_leg("CHANNEL_HANGUP_COMPLETE", &[]), 7);
    let up = m.apply(
        &picker(
            "CHANNEL_BRIDGE",
            &[
                ("Other-Leg-Unique-ID", A),
                ("Bridge-A-Unique-ID", P),
                ("Bridge-B-Unique-ID", A),
            ],
        ),
        8,
    );
    assert_eq!(m.call_count(), 1);
    assert_eq!(
        calls(&m.image()),
        vec![(A.to_owned(), "answered".to_owned())]
    );
    assert!(
        up.change
            .ops
            .iter()
            .any(|op| op.table == Table::Calls && op.field == P && op.value.is_none())
    );
    assert_eq!(
        json(&m.image(), Table::Calls, A).unwrap()["legs"],
        json!([A, P])
    );
}

#[test]
fn snapshot_b_leg_before_a_leg_still_makes_one_call() {
    let mut m = model();
    m.apply(&b_leg("CHANNEL_DATA", &[("Answer-State", "ringing")]), 1);
    m.apply(&a_leg("CHANNEL_DATA", &[("Answer-State", "ringing")]), 2);
    assert_eq!(m.call_count(), 1);
    assert_eq!(
        calls(&m.image()),
        vec![(A.to_owned(), "ringing".to_owned())]
    );
    // A parked, unbridged snapshot reads as parked.
    let mut m = model();
    m.apply(
        &a_leg(
            "CHANNEL_DATA",
            &[
                ("Answer-State", "answered"),
                ("variable_current_application", "park"),
            ],
        ),
        1,
    );
    assert_eq!(state(&m), "parked");
}

#[test]
fn unknown_and_late_events_change_nothing() {
    let mut m = ringing();
    let before = m.image();
    for ev in [
        chan("CHANNEL_HANGUP_COMPLETE", P, &[]),
        chan("CHANNEL_DESTROY", P, &[]),
        chan("CHANNEL_HANGUP", P, &[("Answer-State", "hangup")]),
        chan("CHANNEL_STATE", P, &[("Answer-State", "ringing")]),
        chan("CHANNEL_UNBRIDGE", P, &[]),
        chan("SOMETHING_NEW", A, &[("Channel-Call-State", "HELD")]),
        custom(
            "valet_parking::info",
            &[("Action", "exit"), ("Unique-ID", P)],
        ),
        custom("no_such::thing", &[("Unique-ID", A)]),
        custom(
            "sofia::pre_register",
            &[("from-user", "*8"), ("from-host", "x")],
        ),
        custom(
            "sofia::register_attempt",
            &[("from-user", "1001"), ("from-host", "x")],
        ),
        Event::new(""),
        Event::default(),
        Event::new("CUSTOM"),
        Event::new("HEARTBEAT"),
    ] {
        let up = m.apply(&ev, 100);
        assert_eq!(up, Update::default(), "{ev:?}");
    }
    let mut garbage = Event::new("HEARTBEAT");
    garbage.push("Idle-CPU", "NaN");
    garbage.push("Max-Sessions", "-5");
    assert!(m.apply(&garbage, 100).is_empty());
    assert_eq!(m.image(), before);

    // After a channel is gone, its late events do not bring it back.
    m.apply(&b_leg("CHANNEL_DESTROY", &[]), 101);
    let n = m.channel_count();
    m.apply(
        &b_leg("CHANNEL_EXECUTE", &[("Answer-State", "answered")]),
        102,
    );
    assert_eq!(m.channel_count(), n);
}
