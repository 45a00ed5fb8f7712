//! Valet, conference, call-center and FIFO captures, and the concurrent
//! calls capture seen through a full and a filtered subscription.

use std::collections::BTreeMap;

use locus_esl::Event;
use locus_schema::{NodeImage, Table};
use serde_json::json;

use super::{calls, capture_events, json, model, table, timeline, when};

fn inbound(tl: &[(Event, NodeImage, usize)]) -> Vec<String> {
    tl.iter()
        .filter(|(e, _, _)| {
            e.name() == Some("CHANNEL_CREATE") && e.get("Call-Direction") == Some("inbound")
        })
        .filter_map(|(e, _, _)| e.unique_id().map(str::to_owned))
        .collect()
}

fn custom_at<'a>(
    tl: &'a [(Event, NodeImage, usize)],
    header: &str,
    action: &str,
    nth: usize,
) -> (&'a Event, &'a NodeImage) {
    tl.iter()
        .filter(|(e, _, _)| e.get(header) == Some(action))
        .nth(nth)
        .map(|(e, i, _)| (e, i))
        .unwrap_or_else(|| panic!("no {header}: {action} #{nth}"))
}

fn bridge(tl: &[(Event, NodeImage, usize)]) -> (&NodeImage, usize) {
    tl.iter()
        .find(|(e, _, _)| e.name() == Some("CHANNEL_BRIDGE"))
        .map(|(_, i, n)| (i, *n))
        .unwrap()
}

fn assert_empty_at_end(tl: &[(Event, NodeImage, usize)]) {
    let (_, img, n) = tl.last().unwrap();
    assert!(img.tables.is_empty(), "left over: {:?}", img.tables);
    assert_eq!(*n, 0);
}

#[test]
fn valet_park_and_retrieve() {
    let tl = timeline("05-valet-park.json.txt");
    let ids = inbound(&tl);
    let (parked, retriever) = (&ids[0], &ids[1]);
    let (ev, img) = custom_at(&tl, "Action", "hold", 0);
    assert_eq!(ev.unique_id(), Some(parked.as_str()));
    let lots = table(img, Table::Lots);
    assert_eq!(lots.get("127.0.0.1/valet_parking_lot/6001"), Some(parked));
    let rec = json(img, Table::Calls, parked).unwrap();
    assert_eq!(
        (&rec["state"], &rec["lot"], &rec["slot"]),
        (
            &json!("parked"),
            &json!("valet_parking_lot"),
            &json!("6001")
        )
    );

    let (_, img) = custom_at(&tl, "Action", "bridge", 0);
    assert!(table(img, Table::Lots).is_empty());
    let (img, n) = bridge(&tl);
    assert_eq!(n, 1);
    assert_eq!(calls(img), vec![(parked.clone(), "answered".into())]);
    assert_eq!(
        json(img, Table::Calls, parked).unwrap()["legs"],
        json!([parked, retriever])
    );
    assert_empty_at_end(&tl);
}

#[test]
fn conference_counts_members_under_the_short_room_name() {
    let tl = timeline("06-conference.json.txt");
    let ids = inbound(&tl);
    let (_, img) = custom_at(&tl, "Action", "add-member", 1);
    let rooms = table(img, Table::Rooms);
    assert_eq!(
        rooms,
        BTreeMap::from([("127.0.0.1/3000".to_owned(), "2".to_owned())])
    );
    for id in &ids {
        let rec = json(img, Table::Calls, id).unwrap();
        assert_eq!(
            (&rec["state"], &rec["room"]),
            (&json!("conference"), &json!("3000"))
        );
    }
    let (_, img) = custom_at(&tl, "Action", "del-member", 0);
    assert_eq!(
        table(img, Table::Rooms)
            .get("127.0.0.1/3000")
            .map(String::as_str),
        Some("1")
    );
    let (_, img) = custom_at(&tl, "Action", "del-member", 1);
    assert!(table(img, Table::Rooms).is_empty());
    assert_empty_at_end(&tl);
}

#[test]
fn callcenter_caller_waits_until_an_agent_answers() {
    let tl = timeline("07-callcenter.json.txt");
    let member = &inbound(&tl)[0];
    let (_, img) = custom_at(&tl, "CC-Action", "member-queue-start", 0);
    assert_eq!(
        table(img, Table::Queues),
        BTreeMap::from([("127.0.0.1/support@default".to_owned(), "1".to_owned())])
    );
    let rec = json(img, Table::Calls, member).unwrap();
    assert_eq!(
        (&rec["state"], &rec["queue"]),
        (&json!("queued"), &json!("support@default"))
    );

    // The agent's leg rings as a call of its own, with no extension var.
    let (_, img) = custom_at(&tl, "CC-Action", "agent-offering", 0);
    assert_eq!(img.status.calls, 1);
    let (_, img) = custom_at(&tl, "CC-Action", "bridge-agent-start", 0);
    assert!(table(img, Table::Queues).is_empty());
    assert_eq!(img.status.calls, 2);
    assert!(table(img, Table::Ringing).is_empty());
    let (img, n) = bridge(&tl);
    assert_eq!(n, 1);
    assert_eq!(calls(img), vec![(member.clone(), "answered".into())]);
    assert_empty_at_end(&tl);
}

#[test]
fn fifo_caller_waits_until_popped() {
    let tl = timeline("08-fifo.json.txt");
    let caller = &inbound(&tl)[0];
    let (_, img) = custom_at(&tl, "FIFO-Action", "push", 0);
    assert_eq!(
        table(img, Table::Queues)
            .get("127.0.0.1/5900")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(json(img, Table::Calls, caller).unwrap()["state"], "queued");
    let (_, img) = custom_at(&tl, "FIFO-Action", "caller_pop", 0);
    assert!(table(img, Table::Queues).is_empty());
    let (img, n) = bridge(&tl);
    assert_eq!(n, 1);
    assert_eq!(calls(img), vec![(caller.clone(), "answered".into())]);
    assert_empty_at_end(&tl);
}

/// The image just before the first channel starts hanging up.
fn peak(file: &str) -> NodeImage {
    let mut m = model();
    let mut best = None;
    for ev in capture_events(file) {
        if ev.get("Answer-State") == Some("hangup") && best.is_none() {
            best = Some(m.image());
        }
        m.apply(&ev, when(&ev));
    }
    assert_eq!((m.call_count(), m.channel_count()), (0, 0));
    best.expect("nobody hung up")
}

#[test]
fn three_concurrent_calls() {
    let img = peak("10-concurrent-calls.json.txt");
    assert_eq!((img.status.calls, img.status.channels), (3, 4));
    assert_eq!(
        table(&img, Table::Rooms),
        BTreeMap::from([("127.0.0.1/3001".into(), "1".into())])
    );
    let lots = table(&img, Table::Lots);
    assert_eq!(
        lots.keys().collect::<Vec<_>>(),
        ["127.0.0.1/valet_parking_lot/6002"]
    );
    let mut states: Vec<String> = calls(&img).into_iter().map(|c| c.1).collect();
    states.sort();
    assert_eq!(states, ["answered", "conference", "parked"]);
}

#[test]
fn filtered_subscription_gives_the_same_peak() {
    // Capture 11 is the run of capture 10 seen with only the events the
    // agent needs at minimum; the model must not depend on the rest.
    let full = peak("10-concurrent-calls.json.txt");
    let filtered = peak("11-filtered-subscription.json.txt");
    assert_eq!(full.tables, filtered.tables);
}
