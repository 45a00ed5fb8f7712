//! Whole captures replayed through the model, with the published image
//! checked at the moments that matter.

use locus_esl::Event;
use locus_schema::{NodeImage, Table};
use serde_json::json;

use super::{calls, json, table, timeline, when};
use crate::model::MemberOp;

fn is(ev: &Event, name: &str, uuid: &str) -> bool {
    ev.name() == Some(name) && ev.unique_id() == Some(uuid)
}

/// Uuids of channels as they are created, by direction.
fn created(tl: &[(Event, NodeImage, usize)], direction: &str) -> Vec<String> {
    tl.iter()
        .filter(|(e, _, _)| {
            e.name() == Some("CHANNEL_CREATE") && e.get("Call-Direction") == Some(direction)
        })
        .filter_map(|(e, _, _)| e.unique_id().map(str::to_owned))
        .collect()
}

/// The image right after the first event matching `pred`.
fn after(tl: &[(Event, NodeImage, usize)], pred: impl Fn(&Event) -> bool) -> (&NodeImage, usize) {
    let (_, img, n) = tl
        .iter()
        .find(|(e, _, _)| pred(e))
        .expect("moment not in capture");
    (img, *n)
}

fn assert_empty_at_end(tl: &[(Event, NodeImage, usize)]) {
    let (_, img, n) = tl.last().unwrap();
    assert!(img.tables.is_empty(), "left over: {:?}", img.tables);
    assert_eq!((*n, img.status.calls, img.status.channels), (0, 0, 0));
}

#[test]
fn basic_call_rings_then_answers_then_ends() {
    let file = "02-register-and-basic-call.json.txt";
    let tl = timeline(file);
    let a = &created(&tl, "inbound")[0];
    let b = &created(&tl, "outbound")[0];

    let (img, _) = after(&tl, |e| is(e, "CHANNEL_PROGRESS", b));
    let ring = json(img, Table::Ringing, "127.0.0.1/1001").unwrap();
    assert_eq!(ring[0]["uuid"], json!(a));
    assert_eq!(ring.as_array().unwrap().len(), 1);
    let group = json(img, Table::Groups, "127.0.0.1/techsupport").unwrap();
    assert_eq!(
        (&group[0]["uuid"], &group[0]["state"]),
        (&json!(a), &json!("ringing"))
    );
    let rec = json(img, Table::Calls, a).unwrap();
    assert_eq!(rec["legs"], json!([a, b]));
    assert_eq!(rec["to_ext"], "1001");
    assert_eq!(rec["from"], "1000");
    assert_eq!(rec["direction"], "inbound");
    assert_eq!(rec["group"], "techsupport");
    let sip = table(img, Table::Sipcalls);
    assert!(sip.values().all(|u| u == a) && !sip.is_empty());
    assert_eq!((img.status.calls, img.status.channels), (1, 2));

    let (img, _) = after(&tl, |e| is(e, "CHANNEL_ANSWER", b));
    assert!(table(img, Table::Ringing).is_empty());
    assert_eq!(json(img, Table::Calls, a).unwrap()["state"], "answered");
    let group = json(img, Table::Groups, "127.0.0.1/techsupport").unwrap();
    assert_eq!(group[0]["state"], "answered");
    assert_empty_at_end(&tl);
}

#[test]
fn registrations_become_member_ops_and_invite_auth_does_not() {
    let mut ops = Vec::new();
    super::replay("02-register-and-basic-call.json.txt", |_, up, _| {
        ops.extend(up.members.iter().cloned());
    });
    // Every op names the registration (its Call-ID): compare without it.
    let ops: Vec<MemberOp> = ops
        .into_iter()
        .map(|op| match op {
            MemberOp::Add {
                domain,
                ext,
                groups,
                reg,
            } => {
                let reg = reg.expect("a registration's Add names it");
                assert!(!reg.call_id.is_empty() && reg.contact.contains(&ext));
                assert_eq!(reg.profile, "internal");
                MemberOp::Add {
                    domain,
                    ext,
                    groups,
                    reg: None,
                }
            }
            MemberOp::Remove {
                domain,
                ext,
                call_id,
            } => {
                assert!(call_id.is_some_and(|c| !c.is_empty()));
                MemberOp::Remove {
                    domain,
                    ext,
                    call_id: None,
                }
            }
            other => other,
        })
        .collect();
    let add = |ext: &str| MemberOp::Add {
        domain: "127.0.0.1".into(),
        ext: ext.into(),
        groups: vec!["techsupport".into()],
        reg: None,
    };
    // pre_register / register_attempt (fired for the INVITE with the
    // dialled 1001 as from-user) must add nothing; the caller's channel
    // repeats what its registration said, so it adds nothing either.
    let remove = MemberOp::Remove {
        domain: "127.0.0.1".into(),
        ext: "1000".into(),
        call_id: None,
    };
    assert_eq!(ops, vec![add("1001"), add("1000"), remove]);
}

fn check_intercept(file: &str, domain: &str) {
    let tl = timeline(file);
    let inbound = created(&tl, "inbound");
    let (a, picker) = (&inbound[0], &inbound[1]);
    let b = &created(&tl, "outbound")[0];
    let ring_key = format!("{domain}/1001");
    let group_key = format!("{domain}/techsupport");

    let (img, n) = after(&tl, |e| is(e, "CHANNEL_PROGRESS", b));
    assert_eq!(n, 1);
    assert_eq!(
        json(img, Table::Ringing, &ring_key).unwrap()[0]["uuid"],
        json!(a)
    );
    assert_eq!(
        json(img, Table::Groups, &group_key).unwrap()[0]["state"],
        "ringing"
    );

    // While the picker's channel is in the dialplan, 1001 still rings.
    let (img, n) = after(&tl, |e| is(e, "CHANNEL_ANSWER", picker));
    assert_eq!(n, 2);
    assert!(json(img, Table::Ringing, &ring_key).is_some());

    let (img, _) = after(&tl, |e| is(e, "CHANNEL_DESTROY", b));
    assert!(
        table(img, Table::Ringing).is_empty(),
        "picked-off leg still rings"
    );

    let (img, n) = after(&tl, |e| e.name() == Some("CHANNEL_BRIDGE"));
    assert_eq!(n, 1, "intercept leaves one call");
    assert_eq!(calls(img), vec![(a.clone(), "answered".to_owned())]);
    let rec = json(img, Table::Calls, a).unwrap();
    assert_eq!(rec["legs"], json!([a, picker]));
    assert_eq!(rec["domain"], domain);
    assert!(table(img, Table::Ringing).is_empty());
    let group = json(img, Table::Groups, &group_key).unwrap();
    assert_eq!(
        group,
        json!([{"uuid": a, "state": "answered", "since_ms": rec["answered_ms"]}])
    );
    assert_empty_at_end(&tl);
}

#[test]
fn group_intercept_single_box() {
    check_intercept("03-group-intercept.json.txt", "127.0.0.1");
}

#[test]
fn directed_intercept_single_box() {
    check_intercept("04-directed-intercept.json.txt", "127.0.0.1");
}

#[test]
fn group_intercept_farm_uses_directory_domain_not_presence_host() {
    check_intercept("20-farm-group-intercept-boxA.json.txt", "farm.test");
}

#[test]
fn directed_intercept_farm() {
    check_intercept("21-farm-directed-intercept-boxA.json.txt", "farm.test");
}

#[test]
fn wrong_box_sees_only_the_picker() {
    let tl = timeline("22-farm-intercept-wrong-box-boxB.json.txt");
    assert!(tl.iter().all(|(_, img, n)| {
        *n <= 1 && table(img, Table::Ringing).is_empty() && table(img, Table::Groups).is_empty()
    }));
    assert!(tl.iter().any(|(_, _, n)| *n == 1));
    assert_empty_at_end(&tl);
}

#[test]
fn hold_and_unhold() {
    let tl = timeline("12-hold-unhold.json.txt");
    let a = &created(&tl, "inbound")[0];
    let (img, _) = after(&tl, |e| is(e, "CHANNEL_HOLD", a));
    assert_eq!(json(img, Table::Calls, a).unwrap()["state"], "held");
    let group = json(img, Table::Groups, "127.0.0.1/techsupport").unwrap();
    assert_eq!(group[0]["state"], "held");
    let (img, _) = after(&tl, |e| is(e, "CHANNEL_UNHOLD", a));
    assert_eq!(json(img, Table::Calls, a).unwrap()["state"], "answered");
    assert_empty_at_end(&tl);
}

#[test]
fn originate_then_park() {
    let tl = timeline("13-originate-park.json.txt");
    let o = &created(&tl, "outbound")[0];
    let (img, _) = after(&tl, |e| is(e, "CHANNEL_PROGRESS", o));
    let rec = json(img, Table::Calls, o).unwrap();
    assert_eq!(
        (&rec["state"], &rec["direction"]),
        (&json!("ringing"), &json!("outbound"))
    );
    // originate sets no dialed_extension: nothing for **EXT to find.
    assert!(table(img, Table::Ringing).is_empty());
    let (img, _) = after(&tl, |e| is(e, "CHANNEL_PARK", o));
    assert_eq!(json(img, Table::Calls, o).unwrap()["state"], "parked");
    assert_empty_at_end(&tl);
}

#[test]
fn heartbeat_sets_load_figures() {
    let mut seen = false;
    super::replay("01-auth-and-api.json.txt", |ev, up, _| {
        if ev.name() == Some("HEARTBEAT") && !seen {
            seen = true;
            let s = up.change.status.as_ref().expect("status changed");
            assert_eq!(s.max_sessions, 1000);
            assert_eq!(s.version, "1.10.12-release~64bit");
            assert!((s.idle_cpu - 96.3).abs() < 1e-9);
            assert_eq!(s.sps, 0, "Session-Per-Sec-Last, not the budget (30)");
            assert_eq!(s.updated_ms, when(ev));
        }
    });
    assert!(seen);
}
