//! Inputs besides channel events: status and ESL link, registrations and
//! group membership, configuration, and the listings a resync reads.

use locus_esl::Event;
use locus_schema::{EslLink, RegClaim, Table};

use super::transitions::{A, B, P, a_leg, b_leg, state};
use super::{base, chan, custom, json, model, table};
use crate::listing::{ConferenceEntry, CoreStatus, QueueEntry, QueueKind, ValetEntry};
use crate::model::{MemberOp, Model, ModelConfig};
#[test]
fn heartbeat_status_and_esl() {
    let mut m = model();
    let mut hb = Event::new("HEARTBEAT");
    hb.push("Max-Sessions", "1000");
    hb.push("Session-Per-Sec", "30");
    hb.push("Session-Per-Sec-Last", "4");
    hb.push("Idle-CPU", "87.5");
    hb.push("FreeSWITCH-Version", "1.10.12-release~64bit");
    let s = m.apply(&hb, 10).change.status.unwrap();
    assert_eq!(
        (s.max_sessions, s.sps, s.idle_cpu, s.updated_ms),
        (1000, 4, 87.5, 10)
    );
    assert_eq!(s.sip_uri, base().sip_uri);
    // Same figures again: nothing to write.
    assert!(m.apply(&hb, 20).change.status.is_none());
    assert_eq!(m.status().updated_ms, 10);

    let up = m.set_esl(EslLink::Up, 30);
    assert_eq!(up.change.status.unwrap().esl, EslLink::Up);
    assert!(m.set_esl(EslLink::Up, 40).is_empty());

    let st = CoreStatus {
        sessions: 9,
        max_sessions: 2000,
        sps: 7,
        idle_cpu: 50.0,
        version: String::new(),
        ..CoreStatus::default()
    };
    let s = m.apply_status(&st, 50).change.status.unwrap();
    assert_eq!((s.max_sessions, s.sps, s.idle_cpu), (2000, 7, 50.0));
    assert_eq!(
        s.version, "1.10.12-release~64bit",
        "empty version keeps the known one"
    );
    assert_eq!(s.calls, 0, "counts come from the model, not Session-Count");
}

#[test]
fn registrations_and_callers_announce_membership_once() {
    let mut m = model();
    let reg = |cg: Option<&str>| {
        let mut h = vec![
            ("profile-name", "internal"),
            ("from-user", "1001"),
            ("from-host", "example.com"),
            ("contact", "\"\" <sip:1001@10.0.0.9:5060>"),
            ("call-id", "reg-1"),
            ("domain_name", "example.com"),
        ];
        h.extend(cg.map(|g| ("callgroup", g)));
        custom("sofia::register", &h)
    };
    let claim = RegClaim {
        call_id: "reg-1".into(),
        contact: "\"\" <sip:1001@10.0.0.9:5060>".into(),
        profile: "internal".into(),
    };
    let add = |ext: &str, groups: &[&str], reg: Option<RegClaim>| MemberOp::Add {
        domain: "example.com".into(),
        ext: ext.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        reg,
    };
    assert_eq!(
        m.apply(&reg(Some("sales, support")), 1).members,
        vec![add("1001", &["sales", "support"], Some(claim.clone()))]
    );
    assert_eq!(
        m.apply(&reg(None), 2).members,
        vec![MemberOp::Lookup {
            domain: "example.com".into(),
            ext: "1001".into(),
            reg: Some(claim),
        }]
    );
    let expire = custom(
        "sofia::expire",
        &[
            ("call-id", "reg-1"),
            ("user", "1001"),
            ("host", "example.com"),
        ],
    );
    assert_eq!(
        m.apply(&expire, 3).members,
        vec![MemberOp::Remove {
            domain: "example.com".into(),
            ext: "1001".into(),
            call_id: Some("reg-1".into()),
        }]
    );
    let unreg = custom(
        "sofia::unregister",
        &[("from-user", "1002"), ("from-host", "example.com")],
    );
    assert!(
        matches!(&m.apply(&unreg, 4).members[..], [MemberOp::Remove { ext, .. }] if ext == "1002")
    );

    // A caller's channel teaches its group, once.
    assert_eq!(
        m.apply(&a_leg("CHANNEL_CREATE", &[]), 5).members,
        vec![add("1000", &["sales"], None)]
    );
    assert!(
        m.apply(&a_leg("CHANNEL_EXECUTE", &[]), 6)
            .members
            .is_empty()
    );
    // The B-leg inherits `callgroup` but has no user: it teaches nothing.
    assert!(
        m.apply(
            &b_leg("CHANNEL_CREATE", &[("variable_callgroup", "sales")]),
            7
        )
        .members
        .is_empty()
    );
}

#[test]
fn custom_variable_names() {
    let cfg: ModelConfig = serde_json::from_str(
        r#"{"ext_var":"target","group_var":"pickup","default_domain":"tenant.test"}"#,
    )
    .unwrap();
    assert_eq!(cfg.caller_group_var, "callgroup");
    assert!(serde_json::from_str::<ModelConfig>(r#"{"extension":"x"}"#).is_err());
    let mut m = Model::new(cfg, base());
    m.apply(
        &chan(
            "CHANNEL_CREATE",
            A,
            &[("Call-Direction", "inbound"), ("variable_pickup", "ops")],
        ),
        1,
    );
    m.apply(
        &chan(
            "CHANNEL_CREATE",
            B,
            &[
                ("Call-Direction", "outbound"),
                ("variable_originator", A),
                ("variable_target", "2002"),
            ],
        ),
        2,
    );
    let img = m.image();
    assert!(json(&img, Table::Ringing, "tenant.test/2002").is_some());
    assert!(json(&img, Table::Groups, "tenant.test/ops").is_some());
}

#[test]
fn listings_are_the_whole_truth() {
    let mut m = model();
    m.apply(&a_leg("CHANNEL_ANSWER", &[]), 1);
    m.apply(
        &chan(
            "CHANNEL_ANSWER",
            P,
            &[
                ("Call-Direction", "inbound"),
                ("variable_domain_name", "example.com"),
            ],
        ),
        2,
    );
    let lot = |uuid: &str| ValetEntry {
        lot: "lot".into(),
        slot: "6001".into(),
        uuid: uuid.into(),
    };
    m.apply_valet(&[lot(A), lot("not-a-channel")], 3);
    assert_eq!(
        table(&m.image(), Table::Lots)
            .get("example.com/lot/6001")
            .map(String::as_str),
        Some(A)
    );
    m.apply_valet(&[], 4);
    assert!(table(&m.image(), Table::Lots).is_empty());

    let conf = |members: &[&str]| ConferenceEntry {
        name: "3000-example.com".into(),
        members: members.iter().map(|s| (*s).to_owned()).collect(),
    };
    m.apply_conferences(&[conf(&[A, P])], 5);
    assert_eq!(
        table(&m.image(), Table::Rooms)
            .get("example.com/3000")
            .map(String::as_str),
        Some("2")
    );
    let up = m.apply_conferences(&[conf(&[P])], 6);
    assert_eq!(
        up.change
            .ops
            .iter()
            .filter(|o| o.table == Table::Rooms)
            .count(),
        1
    );
    assert_eq!(
        table(&m.image(), Table::Rooms)
            .get("example.com/3000")
            .map(String::as_str),
        Some("1")
    );
    m.apply_conferences(&[], 7);

    let q = QueueEntry {
        kind: QueueKind::Fifo,
        name: "5900@example.com".into(),
        waiting: vec![A.into()],
    };
    m.apply_queues(&[q], 8);
    assert_eq!(
        table(&m.image(), Table::Queues)
            .get("example.com/5900")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(state(&m), "queued");
    m.apply_queues(&[], 9);
    assert!(!m.image().tables.contains_key(&Table::Queues));
    assert_eq!(state(&m), "answered");
}
