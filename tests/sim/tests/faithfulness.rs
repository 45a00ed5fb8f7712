//! Scripted scenarios against the real captures: the same events, kind by
//! kind, with the same header names in the same order and the same
//! variable names. The basic call must match capture 02 in global order;
//! scenarios whose legs run on separate FreeSWITCH threads are compared
//! leg by leg (the interleaving between legs varies from run to run on a
//! real box, the order within a leg does not).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use locus_esl::Event;
use locus_sim::{Sim, SimConfig, SimHandle};
use support::*;

fn assert_same(what: &str, diffs: Vec<String>) {
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

async fn basic_call(format: &str, file: &str) {
    let sim = sim().await;
    // 1001 was registered before the capture started (a refresh, no MWI query).
    sim.register("1001").await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some(&format!("{format} ALL"))).await;
    sim.register("1001").await.unwrap();
    sim.register("1000").await.unwrap();
    let call = sim.call("1000", "1001").await.unwrap();
    sim.answer(&call).await.unwrap();
    sim.hangup(&call).await.unwrap();
    sim.unregister("1000").await.unwrap();
    sim.heartbeat().await;
    let got = events_until_marker(&mut c).await;
    let want = scenario_events(file, &[]);
    assert_same(file, compare(&got, &want));
}

#[tokio::test]
async fn basic_call_matches_capture_02_json() {
    basic_call("json", "02-register-and-basic-call.json.txt").await;
}

#[tokio::test]
async fn basic_call_matches_capture_02_plain() {
    basic_call("plain", "02-register-and-basic-call.plain.txt").await;
}

async fn check_per_leg(sim: &SimHandle, c: &mut Client, file: &str, skip: &[&str]) -> Vec<Event> {
    sim.heartbeat().await;
    let got = events_until_marker(c).await;
    assert_same(file, compare_per_leg(&got, &scenario_events(file, skip)));
    got
}

#[tokio::test]
async fn group_intercept_matches_capture_03() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.register("1001").await.unwrap();
    sim.call("1000", "1001").await.unwrap();
    let picked = sim.intercept_group("1002", "techsupport").await.unwrap();
    sim.hangup(&picked).await.unwrap();
    let got = check_per_leg(&sim, &mut c, "03-group-intercept.json.txt", &[]).await;
    let causes: Vec<_> = got
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .filter_map(|e| e.get("Hangup-Cause"))
        .collect();
    assert_eq!(causes, ["PICKED_OFF", "NORMAL_CLEARING", "NORMAL_CLEARING"]);
}

#[tokio::test]
async fn directed_intercept_matches_capture_04() {
    let sim = sim().await;
    sim.register("1001").await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.register("1001").await.unwrap();
    sim.call("1000", "1001").await.unwrap();
    let picked = sim.intercept_ext("1002", "1001").await.unwrap();
    sim.hangup(&picked).await.unwrap();
    check_per_leg(&sim, &mut c, "04-directed-intercept.json.txt", &[]).await;
}

#[tokio::test]
async fn valet_park_matches_capture_05_in_global_order() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.valet_park("1000", "valet_parking_lot", "6001")
        .await
        .unwrap();
    let r = sim
        .valet_retrieve("1002", "valet_parking_lot", "6001")
        .await
        .unwrap();
    sim.hangup(&r).await.unwrap();
    sim.heartbeat().await;
    let got = events_until_marker(&mut c).await;
    assert_same(
        "05",
        compare(&got, &scenario_events("05-valet-park.json.txt", &[])),
    );
}

#[tokio::test]
async fn conference_matches_capture_06_in_global_order() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let a = sim.conference_join("1000", "3000").await.unwrap();
    let b = sim.conference_join("1002", "3000").await.unwrap();
    assert_eq!((a.room.as_str(), a.id, b.id), ("3000-127.0.0.1", 1, 2));
    sim.conference_leave(&b).await.unwrap();
    sim.conference_leave(&a).await.unwrap();
    sim.heartbeat().await;
    let got = events_until_marker(&mut c).await;
    assert_same(
        "06",
        compare(&got, &scenario_events("06-conference.json.txt", &[])),
    );
}

#[tokio::test]
async fn fifo_matches_capture_08() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.fifo_push("1000", "5900").await.unwrap();
    let k = sim.fifo_pop("1002", "5900").await.unwrap();
    sim.hangup(&k).await.unwrap();
    check_per_leg(&sim, &mut c, "08-fifo.json.txt", &[]).await;
}

#[tokio::test]
async fn hold_matches_capture_12() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.register("1001").await.unwrap();
    let call = sim.call("1000", "1001").await.unwrap();
    sim.answer(&call).await.unwrap();
    sim.hold(&call).await.unwrap();
    sim.unhold(&call).await.unwrap();
    sim.hangup(&call).await.unwrap();
    // The moh broadcast's COMMAND event is not simulated.
    check_per_leg(&sim, &mut c, "12-hold-unhold.json.txt", &["COMMAND"]).await;
}

/// Driven over ESL as the capture was: `bgapi originate ... &park()` then
/// `api uuid_kill`.
#[tokio::test]
async fn originate_park_matches_capture_13() {
    let sim = sim().await;
    sim.register("1001").await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.register("1001").await.unwrap();
    c.send("bgapi originate {origination_caller_id_number=9999,origination_caller_id_name=Parker}user/1001@127.0.0.1 &park()").await;
    let mut got = Vec::new();
    let uuid = loop {
        let f = c.frame().await;
        if let Some(ev) = f.event() {
            let park =
                (ev.name() == Some("CHANNEL_PARK")).then(|| ev.unique_id().unwrap().to_owned());
            got.push(ev);
            if let Some(u) = park {
                break u;
            }
        }
    };
    assert_eq!(c.api(&format!("uuid_kill {uuid}")).await.text(), "+OK\n");
    sim.heartbeat().await;
    got.extend(events_until_marker(&mut c).await);
    // The harness's own api commands are not part of the comparison.
    got.retain(|e| {
        !(e.name() == Some("API")
            && matches!(e.get("API-Command"), Some("originate" | "uuid_kill")))
    });
    let job = got
        .iter()
        .find(|e| e.name() == Some("BACKGROUND_JOB"))
        .unwrap();
    assert_eq!(job.body(), Some(format!("+OK {uuid}\n").as_str()));
    assert_same(
        "13",
        compare_per_leg(&got, &scenario_events("13-originate-park.json.txt", &[])),
    );
}

/// The call-center capture also shows agents being rung, which the
/// simulator does not do; the caller's side up to waiting in the queue
/// must match, and the queue events must have the captured headers.
#[tokio::test]
async fn callcenter_member_matches_capture_07() {
    let sim = sim().await;
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    let call = sim
        .callcenter_enter("1000", "support@default")
        .await
        .unwrap();
    sim.heartbeat().await;
    let got = events_until_marker(&mut c).await;
    let cap = scenario_events("07-callcenter.json.txt", &[]);
    let caller = |evs: &[Event]| -> Vec<Event> {
        let legs = support::per_leg(evs);
        legs[1].clone()
    };
    let (mine, theirs) = (caller(&got), caller(&cap));
    let start = theirs
        .iter()
        .position(|e| e.get("CC-Action") == Some("member-queue-start"))
        .unwrap();
    // Up to and including PLAYBACK_START (music while waiting).
    assert_same("07 caller", compare(&mine, &theirs[..start + 2]));
    for action in ["member-queue-start", "members-count"] {
        let a = got
            .iter()
            .find(|e| e.get("CC-Action") == Some(action))
            .unwrap();
        let b = cap
            .iter()
            .find(|e| e.get("CC-Action") == Some(action))
            .unwrap();
        assert_eq!(nonvar_names(a), nonvar_names(b), "{action}");
    }
    sim.callcenter_leave(&call).await.unwrap();
    sim.heartbeat().await;
    let after = events_until_marker(&mut c).await;
    let end = after
        .iter()
        .find(|e| e.get("CC-Action") == Some("member-queue-end"))
        .unwrap();
    assert_eq!(end.get("CC-Cause"), Some("Cancel"));
    let count = after
        .iter()
        .rev()
        .find(|e| e.get("CC-Action") == Some("members-count"))
        .unwrap();
    assert_eq!(count.get("CC-Count"), Some("0"));
}

/// Capture 11: a client subscribed to a few kinds gets exactly those, for
/// the three concurrent calls of capture 10.
#[tokio::test]
async fn filtered_subscription_delivers_what_capture_11_shows() {
    let sim = sim().await;
    let records = records("11-filtered-subscription.json.txt");
    let sub = records
        .iter()
        .find(|r| r.data.starts_with(b"event "))
        .map(|r| String::from_utf8_lossy(&r.data).trim().to_owned())
        .unwrap();
    let mut c = Client::ready(sim.esl_addr(), None).await;
    c.send(&sub).await;
    assert_eq!(
        c.frame().await.get("Reply-Text"),
        Some("+OK event listener enabled json")
    );
    sim.register("1001").await.unwrap();
    let conf = sim.conference_join("1002", "3001").await.unwrap();
    let call = sim.call("1000", "1001").await.unwrap();
    let parked = sim
        .valet_park("1003", "valet_parking_lot", "6002")
        .await
        .unwrap();
    sim.answer(&call).await.unwrap();
    sim.heartbeat().await;
    sim.hangup(&parked).await.unwrap();
    sim.conference_leave(&conf).await.unwrap();
    sim.hangup(&call).await.unwrap();
    sim.heartbeat().await;
    let mut got = c
        .events_until(|e| e.name() == Some("HEARTBEAT") && e.get("Session-Count") == Some("0"))
        .await;
    got.pop();
    let label = |e: &Event| format!("{} {}", kind(e), e.get("Action").unwrap_or_default());
    let mut mine: Vec<String> = got.iter().map(label).collect();
    let mut theirs: Vec<String> = capture_events("11-filtered-subscription.json.txt")
        .iter()
        .map(label)
        .collect();
    mine.sort();
    theirs.sort();
    assert_eq!(mine, theirs);
}

/// Capture 20: box A of a farm (domain `farm.test`, phones behind a proxy
/// at 127.0.0.1:5090, no registrations on the box) picks up with `*8`.
#[tokio::test]
async fn farm_group_intercept_matches_capture_20() {
    let cfg = SimConfig {
        heartbeat: None,
        domain: "farm.test".into(),
        from_host: Some("127.0.0.1:5090".into()),
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await.unwrap();
    let mut c = Client::ready(sim.esl_addr(), Some("json ALL")).await;
    sim.call("1000", "1001").await.unwrap();
    let picked = sim.intercept_group("1002", "techsupport").await.unwrap();
    sim.hangup(&picked).await.unwrap();
    let got = check_per_leg(&sim, &mut c, "20-farm-group-intercept-boxA.json.txt", &[]).await;
    let create = got
        .iter()
        .find(|e| e.name() == Some("CHANNEL_CREATE"))
        .unwrap();
    assert_eq!(
        create.get("Channel-Name"),
        Some("sofia/internal/1000@127.0.0.1:5090")
    );
    assert_eq!(create.get("Channel-Presence-ID"), Some("1000@127.0.0.1"));
    assert_eq!(create.var("domain_name"), Some("farm.test"));
}
