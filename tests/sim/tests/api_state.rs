//! api answers reflect the simulated state, in the captured shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use locus_sim::{Activity, CallState, Load, Sim, SimConfig, SimError};
use support::*;

#[tokio::test]
async fn pickup_hash_keys_as_the_vanilla_dialplan_writes() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let call = sim.call("1000", "1001").await.unwrap();
    for key in ["1001", "techsupport", "global"] {
        let f = c
            .api(&format!("hash select/127.0.0.1-last_dial_ext/{key}"))
            .await;
        assert_eq!(f.text(), call.0, "bare uuid, no newline, for {key}");
    }
    assert_eq!(
        c.api("hash select/127.0.0.1-call_return/1001").await.text(),
        "1000"
    );
    assert_eq!(
        c.api("hash select/127.0.0.1-last_dial_ext/nobody")
            .await
            .text(),
        "-ERR no reply\n"
    );
    assert_eq!(
        c.api("user_data 1001@127.0.0.1 var callgroup").await.text(),
        "techsupport"
    );
    assert_eq!(
        sim.var(&call.0, "called_party_callgroup").as_deref(),
        Some("techsupport")
    );
}

#[tokio::test]
async fn uuid_dump_and_kill() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let call = sim.originate_park("1001").await.unwrap();
    let dump = c.api(&format!("uuid_dump {} json", call.0)).await;
    let ev = locus_esl::Event::from_json(&dump.body).unwrap();
    assert_eq!(ev.name(), Some("CHANNEL_DATA"));
    assert_eq!(ev.unique_id(), Some(call.0.as_str()));
    assert_eq!(ev.var("dialed_user"), Some("1001"));
    assert_eq!(ev.headers().filter(|(k, _)| *k == "Unique-ID").count(), 1);
    assert_eq!(
        c.api("uuid_dump 00000000-0000-0000-0000-000000000000 json")
            .await
            .text(),
        "-ERR No such channel!\n"
    );
    assert_eq!(
        c.api(&format!("uuid_kill {}", call.0)).await.text(),
        "+OK\n"
    );
    assert!(sim.channels().is_empty());
    assert_eq!(
        c.api(&format!("uuid_kill {}", call.0)).await.text(),
        "-ERR No such channel!\n"
    );
}

#[tokio::test]
async fn registrations_listing_and_events() {
    let sim = sim().await;
    let mut c = Client::ready(
        sim.esl_addr(),
        Some("json CUSTOM sofia::register sofia::expire"),
    )
    .await;
    sim.register("1001").await.unwrap();
    let reg = c.frame().await.event().unwrap();
    assert_eq!(
        (reg.get("from-user"), reg.get("callgroup")),
        (Some("1001"), Some("techsupport"))
    );
    let cap = capture_events("02-register-and-basic-call.json.txt");
    let want = cap
        .iter()
        .find(|e| e.subclass() == Some("sofia::register"))
        .unwrap();
    assert_eq!(nonvar_names(&reg), nonvar_names(want));
    let body = c.api("show registrations as json").await.text();
    let cap = captured(
        "01-auth-and-api.json.txt",
        "api show registrations as json",
        0,
    );
    assert_eq!(keys(&body), keys(&cap));
    sim.expire("1001").await.unwrap();
    let exp = c.frame().await.event().unwrap();
    let cap = capture_events("02b-register-expire.json.txt");
    let want = cap
        .iter()
        .find(|e| e.subclass() == Some("sofia::expire"))
        .unwrap();
    assert_eq!(nonvar_names(&exp), nonvar_names(want));
    assert!(
        exp.get("expires").unwrap().parse::<i64>().unwrap() > 1_700_000_000,
        "an epoch"
    );
    assert_eq!(
        c.api("show registrations as json").await.text(),
        "{\"row_count\": 0}\n"
    );
    assert!(matches!(
        sim.unregister("1001").await,
        Err(SimError::NoSuchCall(_))
    ));
    assert!(matches!(
        sim.register("999").await,
        Err(SimError::NoSuchUser(_))
    ));
}

#[tokio::test]
async fn text_interface_drives_the_same_scripts() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    let r = c.api("sim call 1000 1001").await.text();
    let uuid = r.strip_prefix("+OK ").unwrap().trim().to_owned();
    assert_eq!(c.api(&format!("sim answer {uuid}")).await.text(), "+OK\n");
    let calls = sim.calls();
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].answered && calls[0].callstate == CallState::Active && calls[0].legs.len() == 2
    );
    assert!(
        c.api("sim fly")
            .await
            .text()
            .starts_with("-ERR usage: sim register")
    );
    assert!(
        c.api("sim answer nope")
            .await
            .text()
            .starts_with("-ERR no such call")
    );
    assert_eq!(sim.command(&format!("hangup {uuid}")), "+OK\n");
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn heartbeat_reports_load() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json HEARTBEAT")).await;
    sim.call("1000", "1001").await.unwrap();
    sim.set_load(Load {
        idle_cpu: 42.5,
        sps: 7,
        extra_sessions: 10,
    });
    sim.heartbeat().await;
    let hb = c.frame().await.event().unwrap();
    let cap = capture_events("02-register-and-basic-call.json.txt");
    let want = cap.iter().find(|e| e.name() == Some("HEARTBEAT")).unwrap();
    assert_eq!(nonvar_names(&hb), nonvar_names(want));
    assert_eq!(hb.get("Session-Count"), Some("12"));
    assert_eq!(hb.get("Idle-CPU"), Some("42.500000"));
    assert_eq!(hb.get("Session-Per-Sec-Last"), Some("7"));
    assert_eq!(hb.get("FreeSWITCH-Version"), Some("1.10.12-release~64bit"));
    let status = c.api("status").await.text();
    let lines: Vec<_> = status.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines[1],
        "FreeSWITCH (Version 1.10.12-release  64bit) is ready"
    );
    assert!(
        lines[3].starts_with("12 session(s) - peak") && lines[3].ends_with(' '),
        "{status}"
    );
    assert_eq!(lines[6], "min idle cpu 0.00/42.50");
}

#[tokio::test]
async fn heartbeat_timer_fires_on_its_interval() {
    let cfg = SimConfig {
        heartbeat: Some(Duration::from_millis(30)),
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json HEARTBEAT")).await;
    let a = c.frame().await.event().unwrap();
    let b = c.frame().await.event().unwrap();
    let seq = |e: &locus_esl::Event| e.get("Event-Sequence").unwrap().parse::<u64>().unwrap();
    assert!(seq(&b) > seq(&a));
}

#[tokio::test]
async fn snapshots_and_limits() {
    let cfg = SimConfig {
        heartbeat: None,
        max_sessions: 3,
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await.unwrap();
    let call = sim.call("1000", "1001").await.unwrap();
    let chans = sim.channels();
    assert_eq!(chans.len(), 2);
    assert_eq!(
        (chans[0].callstate, chans[1].callstate),
        (CallState::Early, CallState::Ringing)
    );
    assert_eq!(chans[1].peer.as_deref(), Some(call.0.as_str()));
    let parked = sim
        .valet_park("1002", "valet_parking_lot", "6001")
        .await
        .unwrap();
    assert!(matches!(sim.calls()[1].activity, Activity::Valet { .. }));
    assert!(matches!(
        sim.call("1003", "1004").await,
        Err(SimError::Capacity(3))
    ));
    assert!(matches!(
        sim.valet_retrieve("1003", "valet_parking_lot", "6009")
            .await,
        Err(SimError::Nothing(_))
    ));
    assert!(matches!(
        sim.answer(&parked).await,
        Err(SimError::BadState { .. })
    ));
    sim.hangup(&parked).await.unwrap();
    sim.answer(&call).await.unwrap();
    assert!(matches!(
        sim.answer(&call).await,
        Err(SimError::BadState { .. })
    ));
}

/// Farm mode (captures 20-22): the domain is a name, phones' From carries
/// the proxy, so leg names and presence use it while `domain_name` does
/// not; nobody is registered, so the B-leg dials the domain.
#[tokio::test]
async fn farm_identity() {
    let cfg = SimConfig {
        heartbeat: None,
        domain: "farm.test".into(),
        from_host: Some("127.0.0.1".into()),
        node_id: "vm-b".into(),
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json CHANNEL_CREATE")).await;
    let call = sim.call("1000", "1001").await.unwrap();
    let a = c.frame().await.event().unwrap();
    let b = c.frame().await.event().unwrap();
    assert_eq!(a.get("FreeSWITCH-Switchname"), Some("vm-b"));
    assert_eq!(a.get("Channel-Presence-ID"), Some("1000@127.0.0.1"));
    assert_eq!(a.var("domain_name"), Some("farm.test"));
    assert_eq!(b.get("Channel-Name"), Some("sofia/internal/1001@farm.test"));
    assert_eq!(b.var("dialed_domain"), Some("farm.test"));
    assert_eq!(
        c.api("hash select/farm.test-last_dial_ext/techsupport")
            .await
            .text(),
        call.0
    );
    assert_eq!(c.api("global_getvar switchname").await.text(), "vm-b");
    // The wrong box (capture 22): nothing to pick up.
    let err = sim.intercept_group("1002", "unknown-group").await;
    assert!(matches!(err, Err(SimError::Nothing(_))));
}

/// `sofia profile <p> flush_inbound_reg <call_id | user@domain>` as
/// mod_sofia answers it: the matching registrations go, each with a
/// `sofia::expire` naming its Call-ID; others stay.
#[tokio::test]
async fn flush_inbound_reg_expires_the_matching_registrations() {
    let sim = sim().await;
    let mut events = Client::ready(
        sim.esl_addr(),
        Some("json CUSTOM sofia::register sofia::expire"),
    )
    .await;
    let mut c = Client::ready(sim.esl_addr(), None).await;
    sim.register("1001").await.unwrap();
    sim.register("1002").await.unwrap();
    let regs = events
        .events_until(|e| {
            e.subclass() == Some("sofia::register") && e.get("from-user") == Some("1002")
        })
        .await;
    let call_id = regs
        .iter()
        .find(|e| e.get("from-user") == Some("1001"))
        .and_then(|e| e.get("call-id"))
        .unwrap()
        .to_owned();

    let reply = c
        .api(&format!(
            "sofia profile internal flush_inbound_reg {call_id}"
        ))
        .await;
    assert_eq!(
        reply.text(),
        "+OK flushing all registrations matching specified call_id\n"
    );
    let exp = events
        .events_until(|e| e.subclass() == Some("sofia::expire"))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (exp.get("user"), exp.get("call-id")),
        (Some("1001"), Some(call_id.as_str()))
    );
    assert!(!sim.registered("1001"));
    assert!(sim.registered("1002"), "another user's registration stays");

    // By user@domain (the form the agent uses), and unknown profiles.
    let domain = SimConfig::default().domain;
    let reply = c
        .api(&format!(
            "sofia profile internal flush_inbound_reg 1002@{domain}"
        ))
        .await;
    assert_eq!(
        reply.text(),
        "+OK flushing all registrations matching specified call_id\n"
    );
    let exp = events
        .events_until(|e| e.subclass() == Some("sofia::expire"))
        .await
        .pop()
        .unwrap();
    assert_eq!(exp.get("user"), Some("1002"));
    assert!(!sim.registered("1002"));
    assert_eq!(
        c.api("sofia profile external flush_inbound_reg 1@x")
            .await
            .text(),
        "Invalid Profile [external]"
    );
}
