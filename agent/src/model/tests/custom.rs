//! Transitions driven by the modules' CUSTOM events, on synthetic events.

use locus_esl::Event;
use locus_schema::Table;

use super::{chan, custom, json, model, table};
use crate::model::Model;

const A: &str = "aaaaaaaa-1111-0000-0000-000000000001";
const G: &str = "eeeeeeee-1111-0000-0000-000000000002";

/// An answered caller of example.com.
fn answered() -> Model {
    let mut m = model();
    let ev = chan(
        "CHANNEL_ANSWER",
        A,
        &[
            ("Call-Direction", "inbound"),
            ("variable_domain_name", "example.com"),
        ],
    );
    m.apply(&ev, 1);
    m
}

/// A module event about channel `uuid` (with its channel data).
fn about(subclass: &str, uuid: &str, extra: &[(&str, &str)]) -> Event {
    let mut ev = custom(subclass, extra);
    ev.push("Unique-ID", uuid);
    ev.push("Channel-State", "CS_EXECUTE");
    ev.push("Answer-State", "answered");
    ev
}

fn state(m: &Model) -> String {
    let rec = json(&m.image(), Table::Calls, A).unwrap();
    rec["state"].as_str().unwrap().to_owned()
}

fn field(m: &Model, t: Table, key: &str) -> Option<String> {
    table(&m.image(), t).get(key).cloned()
}

#[test]
fn valet_hold_bridge_exit() {
    let mut m = answered();
    let lot = [("Valet-Lot-Name", "vip"), ("Valet-Extension", "6005")];
    let hold = [&[("Action", "hold")][..], &lot].concat();
    m.apply(&about("valet_parking::info", A, &hold), 2);
    assert_eq!(
        field(&m, Table::Lots, "example.com/vip/6005").as_deref(),
        Some(A)
    );
    assert_eq!(state(&m), "parked");
    let exit = [&[("Action", "exit")][..], &lot].concat();
    m.apply(&about("valet_parking::info", A, &exit), 3);
    assert!(table(&m.image(), Table::Lots).is_empty());
    assert_eq!(state(&m), "answered");
    m.apply(&about("valet_parking::info", A, &hold), 4);
    let bridge = [&[("Action", "bridge")][..], &lot].concat();
    m.apply(&about("valet_parking::info", A, &bridge), 5);
    assert!(table(&m.image(), Table::Lots).is_empty());
}

#[test]
fn conference_members_with_repeated_headers() {
    let mut m = answered();
    // Real events repeat Conference-* headers; the first one counts.
    let add = [
        ("Conference-Name", "3000-example.com"),
        ("Conference-Domain", "example.com"),
        ("Conference-Name", "3000-example.com"),
        ("Action", "add-member"),
    ];
    m.apply(&about("conference::maintenance", A, &add), 2);
    assert_eq!(
        field(&m, Table::Rooms, "example.com/3000").as_deref(),
        Some("1")
    );
    assert_eq!(state(&m), "conference");
    let del = [
        ("Conference-Name", "3000-example.com"),
        ("Action", "del-member"),
    ];
    m.apply(&about("conference::maintenance", A, &del), 3);
    assert!(table(&m.image(), Table::Rooms).is_empty());

    m.apply(&about("conference::maintenance", A, &add), 4);
    let destroy = custom(
        "conference::maintenance",
        &[
            ("Conference-Name", "3000-example.com"),
            ("Action", "conference-destroy"),
        ],
    );
    m.apply(&destroy, 5);
    assert!(table(&m.image(), Table::Rooms).is_empty());
    assert_eq!(state(&m), "answered");
}

#[test]
fn conference_domain_header_names_the_room_when_the_call_has_no_domain() {
    let mut m = model();
    let add = [
        ("Conference-Name", "77-conf.test"),
        ("Conference-Domain", "conf.test"),
        ("Action", "add-member"),
    ];
    m.apply(&about("conference::maintenance", A, &add), 1);
    assert_eq!(
        field(&m, Table::Rooms, "conf.test/77").as_deref(),
        Some("1")
    );
}

#[test]
fn callcenter_member_waits_until_agent_bridge() {
    let mut m = answered();
    let start = [
        ("CC-Queue", "support@default"),
        ("CC-Action", "member-queue-start"),
        ("CC-Member-Session-UUID", A),
    ];
    m.apply(&about("callcenter::info", A, &start), 2);
    assert_eq!(
        field(&m, Table::Queues, "example.com/support@default").as_deref(),
        Some("1")
    );
    assert_eq!(state(&m), "queued");
    // Fired on the agent's leg, naming the member.
    let bridged = [
        ("CC-Queue", "support@default"),
        ("CC-Action", "bridge-agent-start"),
        ("CC-Member-Session-UUID", A),
    ];
    let mut ev = about("callcenter::info", G, &bridged);
    ev.push("Call-Direction", "outbound");
    m.apply(&ev, 3);
    assert!(table(&m.image(), Table::Queues).is_empty());
    assert_eq!(m.call_count(), 2);

    let resume = [
        ("CC-Queue", "support@default"),
        ("CC-Action", "member-queue-resume"),
        ("CC-Member-Session-UUID", A),
    ];
    m.apply(&about("callcenter::info", A, &resume), 4);
    assert_eq!(state(&m), "queued");
    let end = [
        ("CC-Queue", "support@default"),
        ("CC-Action", "member-queue-end"),
        ("CC-Member-Session-UUID", A),
    ];
    m.apply(&about("callcenter::info", A, &end), 5);
    assert_eq!(state(&m), "answered");
    let count = custom(
        "callcenter::info",
        &[
            ("CC-Queue", "support@default"),
            ("CC-Action", "members-count"),
            ("CC-Count", "3"),
        ],
    );
    assert!(m.apply(&count, 6).is_empty());
}

#[test]
fn fifo_push_then_each_way_out() {
    for (action, by_consumer) in [
        ("abort", false),
        ("timeout", false),
        ("caller_pop", false),
        ("consumer_pop", true),
    ] {
        let mut m = answered();
        let push = [("FIFO-Name", "5900@example.com"), ("FIFO-Action", "push")];
        m.apply(&about("fifo::info", A, &push), 2);
        assert_eq!(
            field(&m, Table::Queues, "example.com/5900").as_deref(),
            Some("1"),
            "{action}"
        );
        let ev = if by_consumer {
            let h = [
                ("FIFO-Name", "5900@example.com"),
                ("FIFO-Action", action),
                ("FIFO-Caller-UUID", A),
            ];
            about("fifo::info", G, &h)
        } else {
            about(
                "fifo::info",
                A,
                &[("FIFO-Name", "5900@example.com"), ("FIFO-Action", action)],
            )
        };
        m.apply(&ev, 3);
        assert!(table(&m.image(), Table::Queues).is_empty(), "{action}");
        assert_eq!(state(&m), "answered");
    }
}

#[test]
fn hangup_takes_memberships_with_it() {
    let mut m = answered();
    let push = [("FIFO-Name", "5900@example.com"), ("FIFO-Action", "push")];
    m.apply(&about("fifo::info", A, &push), 2);
    m.apply(&chan("CHANNEL_HANGUP_COMPLETE", A, &[]), 3);
    assert!(m.image().tables.is_empty());
    // A late abort about the gone channel changes nothing.
    let abort = about(
        "fifo::info",
        A,
        &[("FIFO-Name", "5900@example.com"), ("FIFO-Action", "abort")],
    );
    assert!(m.apply(&abort, 4).is_empty());
}
